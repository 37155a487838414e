"""Account sync: re-read a connection's account list from its source.

New accounts are added (enabled for extraction when the sync mode is `all`), vanished ones are
marked inactive with the date (never deleted), changed ones updated. Writes are proportional to
what changed. A source with a catalog (an Airbyte connector) is asked to `discover` first: its
streams, kept with the connection, are the connection's extraction templates. Transient source
errors are retried with back-off and never touch the credentials status; definitive auth errors
feed it (engine/credentials.py); an error the source does not recognise is retried once, a
definitive one never.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import cast

from sqlalchemy import Integer, String, Table, bindparam, exists, insert, literal, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import logcontext
from core.errors import Conflict, NotFound
from core.events import ConnectionChanged, Event, SyncFinished
from engine.catalogs import is_catalog_source, save_catalog
from engine.context import Context
from engine.credentials import record_auth_failure, record_auth_success
from engine.executor import CONNECTION_DELETED, UNINSTALLED, AlreadyUnderWay, Work, WorkerStopping
from engine.leases import SYNCS, Lease, LeaseHeld, fail_orphans
from sources.base import CheckStatus, SourceAccount, SourceError, attempts_for
from sources.registry import UnknownSource
from storage.bulk import insert_rows, one_of
from storage.db import Database
from storage.models import (
    UNFINISHED,
    Account,
    AccountSyncRun,
    Connection,
    CredentialsStatus,
    RunStatus,
    SyncMode,
    UTCDateTime,
    Workspace,
)
from storage.repositories import Accounts, Connections, SyncRuns, installed

log = logging.getLogger(__name__)

TRANSIENT_ATTEMPTS = 4
# A sync still "running" after this long was interrupted by a process that died.
STALE_AFTER = timedelta(hours=1)
BACKOFF_SECONDS = (2.0, 8.0, 30.0)


@dataclass(frozen=True)
class SyncResult:
    run_id: int
    status: RunStatus
    accounts_read: int
    added: int
    removed: int
    changed: int
    error: str | None = None


def start_sync(
    ctx: Context,
    team_id: str,
    connection_id: int,
    *,
    trigger: str,
    user_id: str | None = None,
    scheduled_for: datetime | None = None,
) -> int:
    """Claim the connection for a sync: one queued or running sync per connection (a unique
    index says so). Inline, carry it out next in this process (engine.executor.carry_out);
    queued, its job commits with the row and a worker takes it."""
    queued = ctx.executor.queues
    for _ in range(2):
        try:
            lease = None
            with ctx.db.begin() as session:
                run_id = (
                    session.connection()
                    .execute(
                        _CLAIM,
                        dict(
                            cid=connection_id,
                            team=team_id,
                            run_trigger=trigger,
                            by=user_id,
                            occurrence=scheduled_for,
                            now=ctx.clock.now(),
                            status=RunStatus.QUEUED if queued else RunStatus.RUNNING,
                            attempts=0 if queued else 1,
                        ),
                    )
                    .scalar()
                )
                if run_id is None:
                    raise Connections.not_found(connection_id)
                if queued:  # the job commits with the row, or neither does
                    job_id = ctx.executor.defer(session, Work("sync", team_id, run_id, connection_id))
                    session.execute(update(AccountSyncRun).where(AccountSyncRun.id == run_id).values(job_id=job_id))
                    return run_id
                target = session.connection().execute(_TARGET, {"run_id": run_id, "team": team_id}).one()
                # Held before the row is visible, so recovery never takes a live sync for a dead one.
                lease = Lease.take(ctx, SYNCS, run_id)
            if lease is not None:  # None only if a recreated database reuses an id this process still holds
                Lease.keep(ctx, SYNCS, run_id, lease)
            _claimed.setdefault(ctx.db, {})[team_id, run_id] = target
            return run_id
        except IntegrityError:
            _free_or_refuse(ctx, connection_id, scheduled=scheduled_for is not None)
    raise _already_syncing_now(ctx, connection_id)


def _free_or_refuse(ctx: Context, connection_id: int, *, scheduled: bool) -> None:
    """After a refused claim: frees the connection from a sync whose process died (a sync takes
    minutes at most), or says why the claim was refused. Returns when a new claim may succeed."""
    with ctx.db.begin() as session:
        running = SyncRuns(session).running(connection_id)
        if running is None:
            if scheduled:  # the occurrence has its row already: it ran, or another scheduler runs it
                raise Conflict("This sync has already run.")
            return  # the sync in the way has just finished
        now = ctx.clock.now()
        # A queued sync waits for a worker, and the queue retries one whose worker stopped.
        if running.job_id is not None or running.started_at >= now - STALE_AFTER:
            raise _already_syncing(running)
        _finish(
            running,
            now,
            RunStatus.FAILED,
            {"read": running.accounts_read, "added": running.added, "changed": running.changed},
            running.removed,
            "Interrupted (the process stopped).",
        )


def _already_syncing_now(ctx: Context, connection_id: int) -> Conflict:
    with ctx.db.read() as session:
        running = SyncRuns(session).running(connection_id)
    return _already_syncing(running) if running is not None else Conflict("Accounts are already syncing.")


def _already_syncing(run: AccountSyncRun) -> AlreadyUnderWay:
    who = f"<@{run.triggered_by}>" if run.triggered_by else "the daily schedule"
    if run.status == RunStatus.QUEUED:
        return AlreadyUnderWay(
            f"An account sync is already queued, by {who} at {run.started_at:%Y-%m-%d %H:%M} UTC; "
            "the Accounts tab shows how many are ahead of it.",
            run.id,
        )
    return AlreadyUnderWay(
        f"Accounts are already syncing, started by {who} at {run.started_at:%Y-%m-%d %H:%M} UTC.", run.id
    )


def run_sync(
    ctx: Context,
    team_id: str,
    run_id: int,
    *,
    progress: Callable[[int], None] | None = None,
    stopping: Callable[[], bool] | None = None,
) -> SyncResult:
    """Carry out a claimed sync run to its end; always leaves the run finished, except when
    `stopping` (a queue worker shutting down) says so between pages: then it is queued again
    and WorkerStopping is raised."""
    lease = Lease.pop(ctx, SYNCS, run_id) or Lease.take(ctx, SYNCS, run_id)
    try:
        carry_out = partial(_run_sync, ctx, team_id, run_id, progress, stopping, leased=lease is not None)
        return logcontext.isolated(carry_out, team=team_id, sync_id=run_id)
    finally:
        if lease is not None:
            lease.release()


def recover_interrupted_syncs(ctx: Context) -> int:
    """Fail the running syncs whose process died (nobody holds their lease); returns how many."""
    return fail_orphans(ctx, SYNCS, AccountSyncRun, "Interrupted: the process stopped.")


def _run_sync(
    ctx: Context,
    team_id: str,
    run_id: int,
    progress: Callable[[int], None] | None,
    stopping: Callable[[], bool] | None,
    *,
    leased: bool,
) -> SyncResult:
    row = _claimed.get(ctx.db, {}).pop((team_id, run_id), None)
    claimed_here = row is not None  # inline, by this process: started when claimed
    if row is None:  # claimed by another process (a queue worker starts it), or before a restart
        with ctx.db.read() as session:
            row = session.connection().execute(_TARGET, {"run_id": run_id, "team": team_id}).first()
    if row is None:
        raise NotFound(f"There is no account sync {run_id}.")
    connection_id, source_name, token, sync_mode = row
    logcontext.bind(connection_id=connection_id)
    if not claimed_here and _start(ctx, run_id, leased=leased):
        ctx.events.publish(ConnectionChanged(team_id, connection_id, "accounts"))
    started = ctx.clock.now()

    counts: dict[str, int] = {"read": 0, "added": 0, "changed": 0}
    seen: set[str] = set()
    events: list[Event] = []
    try:
        if token is None:
            raise _Cancelled()
        try:
            source = ctx.source(source_name)
        except UnknownSource as missing:  # a removed connector: its message says how to add it back
            raise _Missing(str(missing)) from None
        for attempt in range(1, TRANSIENT_ATTEMPTS + 1):
            try:
                counts = {"read": 0, "added": 0, "changed": 0}
                seen.clear()
                credentials = ctx.vault.decrypt(token)
                if is_catalog_source(source):
                    with ctx.sync_slots:
                        catalog = source.discover(credentials)
                    save_catalog(ctx, connection_id, catalog)
                # Each page is written in its own unit of work; the last one with the run's end.
                pages = _in_slots(ctx, source.list_accounts(credentials))
                for number, (page, last) in enumerate(_with_last(pages)):
                    whole = last and number == 0
                    counts["read"] += len(page)
                    with ctx.db.begin() as session:
                        now = ctx.clock.now()
                        current = _apply_page(session, now, connection_id, sync_mode, page, seen, counts, whole=whole)
                        if last:
                            removed, finished = _succeed(session, now, connection_id, run_id, seen, counts, current)
                        else:
                            _record_progress(session, connection_id, run_id, counts["read"])
                    if progress:
                        progress(counts["read"])
                    if not last and stopping is not None and stopping():
                        raise _Requeue()
                break
            except SourceError as error:
                # Definitive errors fail at once; unrecognised ones are retried once.
                if attempt >= attempts_for(error, TRANSIENT_ATTEMPTS):
                    raise
                wait = error.retry_after or BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS)) - 1]
                log.info("account sync %s: source error (%s), retrying in %.0fs", run_id, error.code, wait)
                ctx.sleep(wait)
        events += finished
        result = SyncResult(run_id, RunStatus.SUCCEEDED, counts["read"], counts["added"], removed, counts["changed"])
    except _Requeue:
        with ctx.db.begin() as session:
            session.execute(
                update(AccountSyncRun)
                .where(AccountSyncRun.id == run_id, AccountSyncRun.status == RunStatus.RUNNING)
                .values(status=RunStatus.QUEUED)
            )
        log.info("account sync %s: its worker is stopping; queued again", run_id)
        ctx.events.publish(ConnectionChanged(team_id, connection_id, "accounts"))
        raise WorkerStopping(f"account sync {run_id} queued again") from None
    except _Cancelled as cancelled:
        with ctx.db.begin() as session:
            run = _run_row(session, run_id)
            _finish(run, ctx.clock.now(), RunStatus.CANCELLED, counts, 0, cancelled.reason)
            result = _result(run)
    except _Missing as missing:
        with ctx.db.begin() as session:
            run = _run_row(session, run_id)
            _finish(run, ctx.clock.now(), RunStatus.FAILED, counts, 0, missing.message)
            result = _result(run)
    except SourceError as error:
        with ctx.db.begin() as session:
            now = ctx.clock.now()
            if error.status is not CheckStatus.TRANSIENT:
                events += record_auth_failure(_connection_row(session, connection_id), error, now)
            run = _run_row(session, run_id)
            _finish(run, now, RunStatus.FAILED, counts, 0, error.message)
            result = _result(run)
    except Exception:
        log.exception("account sync %s failed", run_id)
        with ctx.db.begin() as session:
            run = _run_row(session, run_id)
            _finish(run, ctx.clock.now(), RunStatus.FAILED, counts, 0, "Internal error; see the logs.")
            result = _result(run)
    seconds = (ctx.clock.now() - started).total_seconds()
    events += [
        ConnectionChanged(team_id, connection_id, "accounts"),
        SyncFinished(team_id, connection_id, source_name, result.status.value, seconds, result.accounts_read),
    ]
    for event in events:
        ctx.events.publish(event)
    return result


def sync_accounts(
    ctx: Context,
    team_id: str,
    connection_id: int,
    *,
    trigger: str,
    user_id: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> SyncResult:
    run_id = start_sync(ctx, team_id, connection_id, trigger=trigger, user_id=user_id)
    return run_sync(ctx, team_id, run_id, progress=progress)


def sync_threads(concurrency: int) -> int:
    """Threads for scheduled syncs: twice the source requests allowed in flight, so a sync
    writing its page to the database does not hold a slot a waiting sync could use for its
    source; the slots, not the threads, bound what a source sees."""
    return 2 * concurrency


def _run_row(session: Session, run_id: int) -> AccountSyncRun:
    run = session.get(AccountSyncRun, run_id)
    if run is None:  # purged with its workspace meanwhile
        raise NotFound(f"There is no account sync {run_id}.")
    return run


def _connection_row(session: Session, connection_id: int) -> Connection:
    connection = session.get(Connection, connection_id)
    if connection is None:  # purged with its workspace meanwhile
        raise NotFound(f"There is no connection {connection_id}.")
    return connection


class _Cancelled(Exception):
    def __init__(self, reason: str = CONNECTION_DELETED):
        super().__init__(reason)
        self.reason = reason


def _cancelled_because(session: Session, connection_id: int) -> str:
    """Why a sync under way was stopped at a page: its connection was deleted, or connbot
    uninstalled from its workspace (its pages would be written for nobody)."""
    row = session.execute(
        select(Connection.deleted_at, Workspace.uninstalled_at)
        .outerjoin(Workspace, Workspace.team_id == Connection.team_id)
        .where(Connection.id == connection_id)
    ).first()
    return UNINSTALLED if row is not None and row[0] is None and row[1] is not None else CONNECTION_DELETED


class _Missing(Exception):
    """The connection's data source is not installed."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class _Requeue(Exception):
    pass


def _start(ctx: Context, run_id: int, *, leased: bool) -> bool:
    """A sync deferred to the task queue starts here (again, after its worker stopped): True.
    Inline claims are started when claimed: False."""
    with ctx.db.begin() as session:
        run = session.get(AccountSyncRun, run_id)
        if run is None or run.job_id is None:
            return False
        if run.status not in UNFINISHED:
            raise Conflict(f"Account sync {run_id} has already finished ({run.status}).")
        if not leased:
            raise LeaseHeld("This account sync is being carried out by another connbot process.")
        if run.status == RunStatus.QUEUED:
            run.status, run.started_at = RunStatus.RUNNING, ctx.clock.now()
        run.attempts += 1
        return True


def _in_slots(ctx: Context, pages: Iterable[Sequence[SourceAccount]]) -> Iterator[Sequence[SourceAccount]]:
    """The pages of a source, each request made holding one of `ctx.sync_slots`."""
    iterator = iter(pages)
    while True:
        with ctx.sync_slots:
            try:
                page = next(iterator)
            except StopIteration:
                return
        yield page


def _with_last(pages: Iterable[Sequence[SourceAccount]]) -> Iterator[tuple[Sequence[SourceAccount], bool]]:
    """Each page with whether it is the last, known once the next has come; a login without
    accounts is one empty last page."""
    iterator = iter(pages)
    current = next(iterator, [])
    for following in iterator:
        yield current, False
        current = following
    yield current, True


# A claim of a live connection of the team, in one statement.
_CLAIM = (
    insert(AccountSyncRun)
    .from_select(
        [
            "connection_id",
            "trigger",
            "triggered_by",
            "scheduled_for",
            "started_at",
            "status",
            "accounts_read",
            "added",
            "removed",
            "changed",
            "attempts",
        ],
        select(
            Connection.id,
            bindparam("run_trigger", type_=String),
            bindparam("by", type_=String),
            bindparam("occurrence", type_=UTCDateTime),
            bindparam("now", type_=UTCDateTime),
            bindparam("status", type_=String),
            literal(0),
            literal(0),
            literal(0),
            literal(0),
            bindparam("attempts", type_=Integer),
        ).where(
            Connection.id == bindparam("cid"), Connection.team_id == bindparam("team"), Connection.deleted_at.is_(None)
        ),
    )
    .returning(AccountSyncRun.id)
)
# What a sync needs of its connection, read with the claim and handed to the run when both
# happen in this process (the common case): by database (weakly: tests make many), then team and
# run id, so another team's run id finds nothing here either.
_TARGET = (
    select(Connection.id, Connection.source, Connection.credentials, Connection.account_sync_mode)
    .join(AccountSyncRun, AccountSyncRun.connection_id == Connection.id)
    .where(AccountSyncRun.id == bindparam("run_id"), Connection.team_id == bindparam("team"))
)
_claimed: weakref.WeakKeyDictionary[Database, dict[tuple[str, int], Row[int, str, bytes | None, str]]] = (
    weakref.WeakKeyDictionary()
)
# The statements of every sync, built once: a sync is a handful of them, and building one costs
# about as much as running it.
_LIVE = exists().where(
    Connection.id == bindparam("cid"), Connection.deleted_at.is_(None), installed(Connection.team_id)
)
_COMPARED = (Account.name, Account.currency, Account.timezone, Account.status, Account.active)
_KNOWN = select(Account.id, Account.external_id, *_COMPARED, Account.removed_at.is_not(None).label("removed"))
_ALL_KNOWN = _KNOWN.where(Account.connection_id == bindparam("cid"))
_CURRENT = select(Account.id, Account.external_id).where(
    Account.connection_id == bindparam("cid"), Account.removed_at.is_(None)
)
_THIS_RUN = update(AccountSyncRun).where(AccountSyncRun.id == bindparam("run_id"), _LIVE)
_PROGRESS = _THIS_RUN.values(accounts_read=bindparam("read"))
_SUCCEEDED = _THIS_RUN.values(
    finished_at=bindparam("now"),
    status=RunStatus.SUCCEEDED,
    accounts_read=bindparam("read"),
    added=bindparam("n_added"),
    changed=bindparam("n_changed"),
    removed=bindparam("n_removed"),
    error=None,
)
_UPDATE_ACCOUNT = update(Account).where(Account.id == bindparam("aid"))
_STILL_FINE = (
    update(Connection)
    .where(
        Connection.id == bindparam("cid"),
        Connection.credentials_status == CredentialsStatus.ACTIVE,
        Connection.auth_failures == 0,
    )
    .values(credentials_checked_at=bindparam("now"), **Accounts.counted(bindparam("cid")))
)


def _record_progress(session: Session, connection_id: int, run_id: int, read: int) -> None:
    """For "Syncing accounts… 3,200 read" on the card. Last in the unit of work: a connection
    deleted meanwhile, or connbot uninstalled from its workspace, cancels the sync and undoes
    the page."""
    updated = session.connection().execute(_PROGRESS, {"run_id": run_id, "cid": connection_id, "read": read})
    if not updated.rowcount:
        raise _Cancelled(_cancelled_because(session, connection_id))


def _apply_page(
    session: Session,
    now: datetime,
    connection_id: int,
    sync_mode: str,
    page: Sequence[SourceAccount],
    seen: set[str],
    counts: dict[str, int],
    *,
    whole: bool,
) -> list[tuple[int, str]] | None:
    """Writes what changed in one page, and nothing for unchanged accounts. When the page is
    the whole list, the accounts known before it are read at once and their current ones
    (id, external id) returned, for `_succeed`."""
    fresh = {a.external_id: a for a in page if a.external_id not in seen}
    seen.update(fresh)
    # Core statements and plain rows, not ORM objects: a sync mostly finds nothing to change.
    conn = session.connection()
    if whole:
        known = conn.execute(_ALL_KNOWN, {"cid": connection_id}).all()
    elif fresh:
        known = conn.execute(
            _KNOWN.where(Account.connection_id == connection_id, one_of(conn, Account.external_id, list(fresh)))
        ).all()
    else:
        return None
    existing = {row.external_id: row for row in known if row.external_id in fresh}
    new = [
        dict(
            external_id=external_id,
            name=src.name,
            currency=src.currency,
            timezone=src.timezone,
            status=src.status,
            active=src.active,
        )
        for external_id, src in fresh.items()
        if external_id not in existing
    ]
    shared = dict(connection_id=connection_id, enabled=sync_mode == SyncMode.ALL, added_at=now, last_seen_at=now)
    # A mapped class's __table__ is its Table; SQLAlchemy types it as any FromClause.
    counts["added"] += insert_rows(conn, cast(Table, Account.__table__), shared, new)
    for external_id, row in existing.items():
        src = fresh[external_id]
        if row.removed or tuple(row[2:-1]) != _values(src):
            conn.execute(
                _UPDATE_ACCOUNT.values(
                    name=src.name,
                    currency=src.currency,
                    timezone=src.timezone,
                    status=src.status,
                    active=src.active,
                    removed_at=None,
                    last_seen_at=now,
                ),
                {"aid": row.id},
            )
            counts["changed"] += 1
    return [(row.id, row.external_id) for row in known if not row.removed] if whole else None


def _values(src: SourceAccount) -> tuple[str, str, str, str, bool]:
    return (src.name, src.currency, src.timezone, src.status, src.active)


def _succeed(
    session: Session,
    now: datetime,
    connection_id: int,
    run_id: int,
    seen: set[str],
    counts: dict[str, int],
    current: Sequence[tuple[int, str]] | None,
) -> tuple[int, list[Event]]:
    """The end of a sync that read every page: vanished accounts marked, counts kept on the
    connection, the run finished, the credentials known to work. `current`: the accounts not
    removed before the sync, when already read. Returns (removed, events)."""
    conn = session.connection()
    if current is None:
        current = conn.execute(_CURRENT, {"cid": connection_id}).all()
    gone = [account_id for account_id, external_id in current if external_id not in seen]
    for start in range(0, len(gone), 500):
        conn.execute(
            update(Account)
            .where(Account.id.in_(gone[start : start + 500]))
            .values(removed_at=now, active=False, status="REMOVED")
        )
    finished = conn.execute(
        _SUCCEEDED,
        {
            "run_id": run_id,
            "cid": connection_id,
            "now": now,
            "read": counts["read"],
            "n_added": counts["added"],
            "n_changed": counts["changed"],
            "n_removed": len(gone),
        },
    )
    if not finished.rowcount:  # deleted or uninstalled meanwhile
        raise _Cancelled(_cancelled_because(session, connection_id))
    # Credentials that were fine stay fine: one UPDATE; anything else takes the full path.
    if conn.execute(_STILL_FINE, {"cid": connection_id, "now": now}).rowcount:
        return len(gone), []
    Accounts(session, connection_id).recount()
    return len(gone), record_auth_success(_connection_row(session, connection_id), now)


def _finish(
    run: AccountSyncRun,
    now: datetime,
    status: RunStatus,
    counts: dict[str, int],
    removed: int,
    error: str | None = None,
) -> None:
    run.finished_at = now
    run.status = status
    run.accounts_read = counts["read"]
    run.added = counts["added"]
    run.changed = counts["changed"]
    run.removed = removed
    run.error = error


def _result(run: AccountSyncRun) -> SyncResult:
    return SyncResult(run.id, RunStatus(run.status), run.accounts_read, run.added, run.removed, run.changed, run.error)
