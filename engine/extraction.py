"""Extraction runs: one execution of an extraction order, from the source's `extract` into the
warehouse named by CONNBOT_WAREHOUSE.

`start_run` claims the run row (one queued or running run per order, a scheduled occurrence
once) and fixes its date range; `execute_run` streams the batches into the warehouse, which
merges them on the template's key, and records the outcome. A Slack handler claims in the
request (so a refusal is answered at once) and hands the run to the executor
(engine/executor.py): executed in a thread of this process (inline), or deferred with the claim
and executed by a `connbot worker` (queue); the scheduler uses `scheduled_order_runner`.

Date ranges, as whole days in the order's time zone (`today` included, its figures partial):
- the first run ("created") is the backfill: from `load_since`, or `history_days` before the day
  the order was created;
- a later run ("schedule", "manual") reloads LOOKBACK_DAYS[kind] days back: every day since the
  previous occurrence (whose own day was still partial) plus SETTLE_DAYS before it, because
  platforms keep revising recent figures (late conversions, invalid-click refunds). It also
  reaches back to the end of the last successful run, so days missed while runs failed, the
  credentials were broken or the order was paused are filled in; and as long as no run has
  completed the backfill (the first run failed or was interrupted), a later run is the backfill;
- never earlier than the backfill start.

Source failures: a transient one (rate limits, timeouts, 5xx, the platform's own transient flag)
is retried, TRANSIENT_ATTEMPTS tries in all, waiting what the platform asks (up to
MAX_WAIT_SECONDS); an error the source does not recognise is retried once; a definitive one
(invalid credentials, a missing permission, a request the platform refuses as it is) fails the
run at once, saying the platform's reason and what to do.

Stopping: `should_stop` runs one small SELECT per batch; a deleted connection or order ends the
run at the next batch boundary as `cancelled`, and what was loaded stays, on whichever process
carries it out. (A source waiting on its platform yields empty batches, so that the boundary
comes at least every half second; an Airbyte connector's process is ended when its reader is
closed.) The same check keeps the run's row count up to date every PROGRESS_SECONDS, so a card
shows the records loaded so far. A queue worker that is shutting down stops the same way and
puts the run back in the queue (`WorkerStopping`); the worker that takes it again reloads its
range (an Airbyte read resumes from its saved state). Pausing an order does
not stop a run in progress: it stops the schedule (and refuses scheduled runs that race with it);
the run under way finishes, as a run started just before the pause would have.

Crash safety: the process executing a run holds a lease on it (a PostgreSQL session advisory lock,
or an flock on SQLite), taken before the run row is committed and dropped by the server or the
kernel when the process dies. `recover_interrupted` fails the running runs nobody holds, so it is
safe at the start-up of any process while others keep running theirs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, case, exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import logcontext
from core.errors import Conflict, NotFound
from core.events import ConnectionChanged, Event, RunFinished
from engine.catalogs import (
    connection_catalog,
    connection_templates,
    is_catalog_source,
    order_template,
    save_state,
    saved_state,
)
from engine.context import Context
from engine.credentials import record_auth_failure, record_auth_success
from engine.executor import CONNECTION_DELETED, UNINSTALLED, AlreadyUnderWay, Work, WorkerStopping, carry_out
from engine.leases import RUNS, Lease, LeaseHeld, fail_orphans
from engine.warehouse import LoadResult, WarehouseError, open_warehouse
from sources.base import Batch, Checkpoint, CheckStatus, RefusedRequest, SourceError, attempts_for
from sources.registry import UnknownSource
from storage.models import (
    UNFINISHED,
    Account,
    Connection,
    CredentialsStatus,
    ExtractionOrder,
    ExtractionRun,
    OrderAccount,
    OrderStatus,
    RunStatus,
    Workspace,
)
from storage.repositories import Connections, Orders
from storage.vault import VaultError

log = logging.getLogger(__name__)

TRIGGERS = ("created", "schedule", "manual")

SETTLE_DAYS = 2
# The longest gap between two occurrences, in days (an hourly order runs at least every 12 h,
# so its previous run was today or yesterday; a monthly one on day 1..28), plus SETTLE_DAYS.
LOOKBACK_DAYS = {
    "hourly": 1 + SETTLE_DAYS,
    "daily": 1 + SETTLE_DAYS,
    "weekly": 7 + SETTLE_DAYS,
    "monthly": 31 + SETTLE_DAYS,
}

TRANSIENT_ATTEMPTS = 4
BACKOFF_SECONDS = (2.0, 8.0, 30.0)
# A platform's retry_after is honoured up to this, so one answer cannot park a worker for hours.
MAX_WAIT_SECONDS = 300.0
PROGRESS_SECONDS = 2.0

INTERNAL_ERROR = "Internal error; see the logs."
WAREHOUSE_FAILED = "Loading into the warehouse failed: "
REFUSED = (
    "The platform refuses this request as it stands, so it was not retried: if the order asks for a field or an "
    "account the platform no longer offers, delete it and set up a new one with Extract; if not, tell whoever runs "
    "connbot."
)
INTERRUPTED = "Interrupted by a restart of connbot."
ORDER_DELETED = "The extraction order was deleted."


@dataclass(frozen=True)
class RunResult:
    run_id: int
    status: RunStatus
    rows: int
    error: str | None = None


def lookback_days(schedule: dict[str, Any]) -> int:
    """Days before today that a later run of an order with this schedule reloads."""
    kind = schedule.get("kind")
    # An order without a schedule is run by hand only: treated as daily.
    return LOOKBACK_DAYS.get(kind, LOOKBACK_DAYS["daily"]) if isinstance(kind, str) else LOOKBACK_DAYS["daily"]


# --- claiming a run -------------------------------------------------------------------------


def start_run(
    ctx: Context,
    team_id: str,
    order_id: int,
    *,
    trigger: str,
    user_id: str | None = None,
    scheduled_for: datetime | None = None,
) -> int:
    """Claim a run of the order and fix its date range; returns the run id.

    Raises NotFound (order or connection deleted) or Conflict (already running, occurrence
    already run, paused for a scheduled run, broken credentials, no account to extract).
    Inline, the lease taken here is released by `execute_run`: hand the run to
    `engine.executor.carry_out` next, in this process. Queued, a worker takes it.
    """
    if trigger not in TRIGGERS:
        raise ValueError(f"unknown run trigger {trigger!r}; expected one of {TRIGGERS}")
    try:
        run_id, connection_id, lease = _claim(ctx, team_id, order_id, trigger, user_id, scheduled_for)
    except IntegrityError:
        with ctx.db.begin() as session:
            running = _running(session, order_id)
        if running is None:  # the unique (order, scheduled_for): this occurrence already ran
            raise Conflict("This scheduled run of the order has already run.") from None
        raise _already_running(running) from None
    if lease is not None:
        Lease.keep(ctx, RUNS, run_id, lease)
    ctx.events.publish(ConnectionChanged(team_id, connection_id, "run"))  # the card shows Syncing
    return run_id


def _claim(
    ctx: Context, team_id: str, order_id: int, trigger: str, user_id: str | None, scheduled_for: datetime | None
) -> tuple[int, int, Lease | None]:
    lease = None
    try:
        with ctx.db.begin() as session:
            order = Orders(session, team_id).get(order_id)
            connection = Connections(session, team_id).get(order.connection_id, include_deleted=True)
            _check_runnable(session, order, connection, trigger)
            try:
                whole_history = is_catalog_source(ctx.source(connection.source))
            except UnknownSource as missing:  # a removed connector says how to add it back
                raise Conflict(str(missing)) from None
            now = ctx.clock.now()
            start, end = _run_range(session, order, trigger, now, whole_history=whole_history)
            queued = ctx.executor.queues
            run = ExtractionRun(
                order_id=order.id,
                connection_id=connection.id,
                trigger=trigger,
                triggered_by=user_id,
                scheduled_for=scheduled_for,
                range_start=start,
                range_end=end,
                started_at=now,  # while queued: when it was queued
                status=RunStatus.QUEUED if queued else RunStatus.RUNNING,
                attempts=0 if queued else 1,
            )
            session.add(run)
            session.flush()
            if queued:  # the job commits with the row, or neither does
                run.job_id = ctx.executor.defer(session, Work("run", team_id, run.id, order.id))
            else:
                # Held before the row is visible, so recovery never takes a live run for a dead one.
                lease = Lease.take(ctx, RUNS, run.id)
                if lease is None:
                    raise RuntimeError(f"extraction run {run.id} is new but its lease is held")
            log.info(
                "extraction run %s of order %s %s (%s): %s .. %s",
                run.id,
                order.id,
                "queued" if queued else "claimed",
                trigger,
                start,
                end,
            )
            return run.id, connection.id, lease
    except BaseException:
        if lease is not None:
            lease.release()
        raise


def _check_runnable(session: Session, order: ExtractionOrder, connection: Connection, trigger: str) -> None:
    if connection.is_deleted:
        raise NotFound("The connection of this extraction order was deleted, so the order no longer runs.")
    running = _running(session, order.id)
    if running is not None:
        raise _already_running(running)
    if trigger == "created" and session.scalar(select(exists().where(ExtractionRun.order_id == order.id))):
        raise Conflict("The first run of this extraction order has already started.")
    if trigger == "schedule" and order.status == OrderStatus.PAUSED:
        raise Conflict("This extraction order is paused; its schedule starts again when it is resumed.")
    if connection.credentials_status == CredentialsStatus.ERROR:
        raise Conflict(
            f"The credentials of this connection are not working ({connection.credentials_error_message}). "
            "Re-connect it, then run the order again."
        )
    if not _account_ids(session, order, limit=1):
        raise Conflict(
            "None of this order's accounts is active and enabled for extraction any more: the source no longer "
            "shows them to these credentials (see the Accounts tab). Re-connect with credentials that see them, "
            "or delete this order and set up a new one with Extract."
        )


def _running(session: Session, order_id: int) -> ExtractionRun | None:
    """The order's run that is queued or running, if any."""
    return session.scalars(
        select(ExtractionRun).where(ExtractionRun.order_id == order_id, ExtractionRun.status.in_(UNFINISHED))
    ).first()


def _already_running(run: ExtractionRun) -> AlreadyUnderWay:
    who = f"<@{run.triggered_by}>" if run.triggered_by else "the schedule"
    if run.status == RunStatus.QUEUED:
        return AlreadyUnderWay(
            f"This order is already queued to run, by {who} at {run.started_at:%Y-%m-%d %H:%M} UTC; "
            "the card shows how many runs are ahead of it.",
            run.id,
        )
    return AlreadyUnderWay(
        f"This order is already running, started by {who} at {run.started_at:%Y-%m-%d %H:%M} UTC.", run.id
    )


def _account_ids(session: Session, order: ExtractionOrder, limit: int | None = None) -> list[str]:
    """External ids of the order's accounts that are active and enabled for extraction."""
    query = (
        select(Account.external_id)
        .join(OrderAccount, OrderAccount.account_id == Account.id)
        .where(
            OrderAccount.order_id == order.id,
            Account.connection_id == order.connection_id,
            Account.enabled.is_(True),
            Account.active.is_(True),
            Account.removed_at.is_(None),
        )
        .order_by(Account.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def _run_range(
    session: Session, order: ExtractionOrder, trigger: str, now: datetime, *, whole_history: bool = False
) -> tuple[date, date]:
    """`whole_history`: every run starts at the backfill start (a source whose saved state, not a
    date range, decides what it reads again)."""
    tz = ZoneInfo(order.timezone)
    today = now.astimezone(tz).date()
    backfill_start = order.load_since
    if backfill_start is None and order.history_days is not None:
        backfill_start = order.created_at.astimezone(tz).date() - timedelta(days=order.history_days)
    if whole_history and backfill_start is not None:
        if backfill_start > today:
            raise Conflict(
                f"This extraction order loads data from {backfill_start:%Y-%m-%d}; there is nothing to load before then."
            )
        return backfill_start, today
    first_start, last_end = session.execute(
        select(func.min(ExtractionRun.range_start), func.max(ExtractionRun.range_end)).where(
            ExtractionRun.order_id == order.id, ExtractionRun.status == RunStatus.SUCCEEDED
        )
    ).one()
    backfilled = backfill_start is None or (first_start is not None and first_start <= backfill_start)
    if trigger == "created" or not backfilled:
        start = backfill_start if backfill_start is not None else today - timedelta(days=lookback_days(order.schedule))
    else:
        start = today - timedelta(days=lookback_days(order.schedule))
        if last_end is not None:
            start = min(start, last_end)
        if backfill_start is not None:
            start = max(start, backfill_start)
    if start > today:
        raise Conflict(f"This extraction order loads data from {start:%Y-%m-%d}; there is nothing to load before then.")
    return start, today


# --- executing a run ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Job:
    """What a run needs, read in one unit of work; the credentials stay encrypted until used."""

    run_id: int
    order_id: int
    connection_id: int
    source: str
    template: str
    fields: tuple[str, ...]
    start: date
    end: date
    token: bytes | None
    account_ids: tuple[str, ...]
    key_fields: tuple[str, ...] | None = None  # the order's own key, for a template without one
    started: bool = False  # a queue worker started it here (it was queued, or its worker stopped)


class _RunFailed(Exception):
    """A failure explained to the user, without a traceback in the logs."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class _StopCheck:
    """should_stop for the loader: one small SELECT per batch boundary; and, every
    PROGRESS_SECONDS, the rows delivered so far written to the run's row (the card's progress).
    `stopping`: whether the queue worker carrying the run out is shutting down (it sets
    `requeue`)."""

    def __init__(
        self,
        ctx: Context,
        order_id: int,
        stopping: Callable[[], bool] | None = None,
        *,
        run_id: int | None = None,
        tally: _Tally | None = None,
    ):
        self.ctx = ctx
        self.order_id = order_id
        self.stopping = stopping
        self.run_id = run_id
        self.tally = tally
        self.reason: str | None = None
        self.requeue = False
        self._shown = (0, time.monotonic())

    def __call__(self) -> bool:
        self._progress()
        with self.ctx.db.read() as session:
            connection_deleted, order_deleted, uninstalled = session.execute(
                select(Connection.deleted_at, ExtractionOrder.deleted_at, Workspace.uninstalled_at)
                .join(Connection, Connection.id == ExtractionOrder.connection_id)
                .outerjoin(Workspace, Workspace.team_id == Connection.team_id)
                .where(ExtractionOrder.id == self.order_id)
            ).one()
        if connection_deleted is not None:
            self.reason = CONNECTION_DELETED
        elif order_deleted is not None:
            self.reason = ORDER_DELETED
        elif uninstalled is not None:
            self.reason = UNINSTALLED
        elif self.stopping is not None and self.stopping():
            self.requeue = True
            return True
        return self.reason is not None

    def _progress(self) -> None:
        if self.tally is None or self.run_id is None:
            return
        rows, at = self._shown
        if self.tally.rows == rows or time.monotonic() - at < PROGRESS_SECONDS:
            return
        with self.ctx.db.begin() as session:
            session.execute(
                update(ExtractionRun)
                .where(ExtractionRun.id == self.run_id, ExtractionRun.status == RunStatus.RUNNING)
                .values(rows=self.tally.rows)
            )
        self._shown = (self.tally.rows, time.monotonic())


@dataclass
class _Tally:
    """Rows the source delivered in the current attempt: what a failed run had loaded."""

    rows: int = 0


class _Checkpoints:
    """A CatalogSource's checkpoints, taken out of its batches and saved with the order once the
    warehouse has committed every row before them."""

    def __init__(self, ctx: Context, job: _Job):
        self.ctx = ctx
        self.job = job
        self.rows = 0  # rows handed to the loader
        self.pending: deque[tuple[int, object]] = deque()  # (rows before it, state)

    def batches(self, items: Iterable[Batch | Checkpoint]) -> Iterator[Batch]:
        iterator = iter(items)
        try:
            for item in iterator:
                if isinstance(item, Checkpoint):
                    self.pending.append((self.rows, item.state))
                    continue
                self.rows += len(item)
                yield item
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:  # the loader stopped: so does the source (its process ends)
                close()

    def committed(self, rows: int) -> None:
        """The loader committed the first `rows` rows: the latest checkpoint they cover is saved."""
        latest = None
        while self.pending and self.pending[0][0] <= rows:
            latest = self.pending.popleft()
        if latest is not None:
            save_state(self.ctx, self.job.order_id, self.job.run_id, latest[1])


def execute_run(ctx: Context, team_id: str, run_id: int, *, stopping: Callable[[], bool] | None = None) -> RunResult:
    """Carry out a claimed run to its end; whatever happens, the run is left finished, except
    when `stopping` (a queue worker shutting down) says so: then it is queued again and
    WorkerStopping is raised."""
    lease = Lease.pop(ctx, RUNS, run_id) or Lease.take(ctx, RUNS, run_id)
    if lease is None:
        raise LeaseHeld("This extraction run is being carried out by another connbot process.")
    try:
        return logcontext.isolated(_execute, ctx, team_id, run_id, stopping, team=team_id, run_id=run_id)
    finally:
        lease.release()


def _execute(ctx: Context, team_id: str, run_id: int, stopping: Callable[[], bool] | None) -> RunResult:
    job = _read_job(ctx, team_id, run_id)
    logcontext.bind(order_id=job.order_id, connection_id=job.connection_id)
    started = ctx.clock.now()
    if job.started:
        ctx.events.publish(ConnectionChanged(team_id, job.connection_id, "run"))  # the card shows Syncing
    tally = _Tally()
    stop = _StopCheck(ctx, job.order_id, stopping, run_id=run_id, tally=tally)
    auth_error: SourceError | None = None
    try:
        loaded = _extract_and_load(ctx, job, stop, tally)
        if stop.requeue:
            _requeue(ctx, team_id, job)
        status = RunStatus.CANCELLED if loaded.cancelled else RunStatus.SUCCEEDED
        rows, error = loaded.rows, stop.reason
    except _RunFailed as failure:
        status, rows, error = RunStatus.FAILED, tally.rows, failure.message
    except SourceError as failure:
        status, rows, error = RunStatus.FAILED, tally.rows, failure.message
        if isinstance(failure, RefusedRequest):
            error = f"{failure.message}. {REFUSED}"
        if failure.status is not CheckStatus.TRANSIENT:
            auth_error = failure
    except WarehouseError as failure:
        status, rows, error = RunStatus.FAILED, tally.rows, f"{WAREHOUSE_FAILED}{failure}"
    except WorkerStopping:
        raise
    except Exception:
        log.exception("extraction run %s failed", run_id)
        status, rows, error = RunStatus.FAILED, tally.rows, INTERNAL_ERROR
    events = _record(ctx, team_id, job, status, rows, error, auth_error)
    log.info("extraction run %s of order %s: %s, %d rows", run_id, job.order_id, status.value, rows)
    seconds = (ctx.clock.now() - started).total_seconds()
    finished = RunFinished(team_id, job.connection_id, job.order_id, run_id, status.value, job.source, seconds, rows)
    for event in events + [finished, ConnectionChanged(team_id, job.connection_id, "run")]:
        ctx.events.publish(event)
    return RunResult(run_id, status, rows, error)


def _read_job(ctx: Context, team_id: str, run_id: int) -> _Job:
    with ctx.db.begin() as session:
        found = session.execute(
            select(ExtractionRun, ExtractionOrder, Connection)
            .join(ExtractionOrder, ExtractionOrder.id == ExtractionRun.order_id)
            .join(Connection, Connection.id == ExtractionRun.connection_id)
            .where(ExtractionRun.id == run_id, ExtractionOrder.team_id == team_id)
        ).one_or_none()
        if found is None:
            raise NotFound(f"There is no extraction run {run_id}.")
        run, order, connection = found
        if run.status not in UNFINISHED:
            raise Conflict(f"Extraction run {run_id} has already finished ({run.status}).")
        if run.range_start is None or run.range_end is None:  # set by every claim
            raise ValueError(f"extraction run {run_id} has no date range")
        # A queued run starts here; one left running by a worker that stopped starts again.
        started = run.job_id is not None
        if started:
            if run.status == RunStatus.QUEUED:
                run.status, run.started_at = RunStatus.RUNNING, ctx.clock.now()
            run.attempts += 1
        return _Job(
            run_id=run.id,
            order_id=order.id,
            connection_id=connection.id,
            source=connection.source,
            template=order.template,
            fields=tuple(order.fields),
            start=run.range_start,
            end=run.range_end,
            token=connection.credentials,
            account_ids=tuple(_account_ids(session, order)),
            key_fields=tuple(order.key_fields) if order.key_fields else None,
            started=started,
        )


def _extract_and_load(ctx: Context, job: _Job, stop: _StopCheck, tally: _Tally) -> LoadResult:
    try:
        source = ctx.source(job.source)
    except UnknownSource as missing:
        raise _RunFailed(f"{missing}; install it again to run this order.") from None
    template = next((t for t in connection_templates(ctx, source, job.connection_id) if t.name == job.template), None)
    if template is None:
        raise _RunFailed(
            f"The data source no longer offers the report {job.template!r}; delete this order and set up a new one with Extract."
        )
    template = order_template(template, job.key_fields)
    unknown = sorted(set(job.fields) - {f.name for f in template.fields})
    if unknown:
        raise _RunFailed(
            f"The report no longer has the field(s) {', '.join(unknown)}; delete this order and set up a new one with Extract."
        )
    if not job.account_ids:
        raise _RunFailed(
            "None of this order's accounts is active and enabled for extraction any more (see the Accounts tab); "
            "Re-connect with credentials that see them, or delete this order and set up a new one with Extract."
        )
    with open_warehouse(ctx.settings.warehouse) as warehouse:
        attempt = 0
        while True:
            attempt += 1
            # Also after a back-off wait, so a deleted connection is never called again.
            if job.token is None or stop():
                if not stop.requeue:
                    stop.reason = stop.reason or CONNECTION_DELETED
                return LoadResult(rows=0, batches=0, cancelled=True)
            tally.rows = 0
            try:
                try:
                    credentials = ctx.vault.decrypt(job.token)
                except VaultError:
                    raise _RunFailed(
                        "The stored credentials cannot be decrypted with the configured keys "
                        "(CONNBOT_SECRET_KEYS); re-connect the connection."
                    ) from None
                checkpoints = None
                if is_catalog_source(source):
                    # A retry resumes from what the failed attempt committed.
                    checkpoints = _Checkpoints(ctx, job)
                    batches = checkpoints.batches(
                        source.read(
                            credentials,
                            connection_catalog(ctx, job.connection_id) or {},
                            account_ids=job.account_ids,
                            template=template,
                            fields=job.fields,
                            start=job.start,
                            state=saved_state(ctx, job.order_id),
                        )
                    )
                else:
                    batches = source.extract(
                        credentials, job.account_ids, template.name, job.fields, job.start, job.end
                    )
                # A retry after a failure half-way reloads the range: the merge keeps it exact.
                loaded = warehouse.load(
                    source=job.source,
                    template=template,
                    batches=_counted(batches, tally),
                    connection_id=job.connection_id,
                    run_id=job.run_id,
                    should_stop=stop,
                    on_commit=checkpoints.committed if checkpoints else lambda rows: None,
                )
                if checkpoints is not None:  # every row the loader took is committed
                    checkpoints.committed(checkpoints.rows)
                return loaded
            except SourceError as error:
                # Definitive errors fail at once; unrecognised ones are retried once.
                if attempt >= attempts_for(error, TRANSIENT_ATTEMPTS):
                    raise
                wait = min(error.retry_after or BACKOFF_SECONDS[attempt - 1], MAX_WAIT_SECONDS)
                log.info("extraction run %s: source error (%s), retrying in %.0fs", job.run_id, error.code, wait)
                ctx.sleep(wait)


def _requeue(ctx: Context, team_id: str, job: _Job) -> None:
    """Back in the queue, as it was before a worker took it; what it loaded stays (a later
    attempt reloads the range and the merge keeps it exact)."""
    with ctx.db.begin() as session:
        session.execute(
            update(ExtractionRun)
            .where(ExtractionRun.id == job.run_id, ExtractionRun.status == RunStatus.RUNNING)
            .values(status=RunStatus.QUEUED)
        )
    log.info("extraction run %s of order %s: its worker is stopping; queued again", job.run_id, job.order_id)
    ctx.events.publish(ConnectionChanged(team_id, job.connection_id, "run"))
    raise WorkerStopping(f"extraction run {job.run_id} queued again")


def _counted(batches: Iterable[Batch], tally: _Tally) -> Iterator[Batch]:
    iterator = iter(batches)
    try:
        for batch in iterator:
            tally.rows += len(batch)
            yield batch
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:  # the loader closes us when it stops: release the source too
            close()


def _record(
    ctx: Context,
    team_id: str,
    job: _Job,
    status: RunStatus,
    rows: int,
    error: str | None,
    auth_error: SourceError | None,
) -> list[Event]:
    events: list[Event] = []
    with ctx.db.begin() as session:
        now = ctx.clock.now()
        run = session.get(ExtractionRun, job.run_id)
        if run is None:  # purged with its workspace meanwhile
            raise NotFound(f"There is no extraction run {job.run_id}.")
        run.status, run.rows, run.error, run.finished_at = status, rows, error, now
        if status == RunStatus.CANCELLED:
            return events
        # One statement each, so a pause made meanwhile is never overwritten.
        order_status = ExtractionOrder.status
        values: dict[str, ColumnElement[Any] | str | None]
        if status == RunStatus.SUCCEEDED:
            values = {
                "status": case((order_status == OrderStatus.ERROR, OrderStatus.ACTIVE), else_=order_status),
                "error_message": None,
            }
        else:
            values = {
                "status": case((order_status == OrderStatus.PAUSED, order_status), else_=OrderStatus.ERROR),
                "error_message": error,
            }
        session.execute(update(ExtractionOrder).where(ExtractionOrder.id == job.order_id).values(**values))
        if status == RunStatus.SUCCEEDED or auth_error is not None:
            connection = Connections(session, team_id).get(job.connection_id, include_deleted=True, for_update=True)
            if not connection.is_deleted:
                if auth_error is not None:
                    events += record_auth_failure(connection, auth_error, now)
                else:
                    events += record_auth_success(connection, now)
    return events


def run_order(
    ctx: Context,
    team_id: str,
    order_id: int,
    *,
    trigger: str,
    user_id: str | None = None,
    scheduled_for: datetime | None = None,
) -> RunResult:
    """Claim and execute a run in the calling thread, whatever the executor (tests, benchmarks)."""
    run_id = start_run(ctx, team_id, order_id, trigger=trigger, user_id=user_id, scheduled_for=scheduled_for)
    return execute_run(ctx, team_id, run_id)


def execute_in_background(ctx: Context, team_id: str, run_id: int) -> threading.Thread:
    """Claim with `start_run`, then execute in a thread of this process, whatever the executor.
    A run cut short by the process exiting is failed by `recover_interrupted` at the next start."""

    def execute() -> None:
        try:
            execute_run(ctx, team_id, run_id)
        except Exception:
            log.exception("extraction run %s could not be carried out", run_id)

    thread = logcontext.thread(execute, name=f"extraction-run-{run_id}")
    thread.start()
    return thread


def scheduled_order_runner(ctx: Context) -> Callable[[str, int, datetime], None]:
    """The scheduler's "order" runner: a scheduled run, skipped when it cannot run now. Inline
    it runs in the scheduler's thread; queued, the leader only claims and defers it."""

    def run(team_id: str, order_id: int, scheduled_for: datetime) -> None:
        try:
            run_id = start_run(ctx, team_id, order_id, trigger="schedule", scheduled_for=scheduled_for)
        except (Conflict, NotFound) as refusal:
            log.info(
                "scheduled run of extraction order %s for %s skipped: %s",
                order_id,
                scheduled_for.isoformat(),
                refusal.message,
            )
            return
        carry_out(ctx, Work("run", team_id, run_id, order_id))

    return run


# --- crash safety -----------------------------------------------------------------------------


def recover_interrupted(ctx: Context) -> int:
    """Fail the running runs whose process died (nobody holds their lease); returns how many."""
    return fail_orphans(ctx, RUNS, ExtractionRun, INTERRUPTED)
