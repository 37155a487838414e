"""The scheduler: the daily account sync of every connection and the schedules of extraction orders.

The database is the source of truth. The leader (engine/leader.py) rebuilds its jobs from the
tables into APScheduler's in-memory store and reconciles them every minute and after each
`ConnectionChanged`; APScheduler never shares a job store between processes. Every occurrence is
claimed with a unique `JobClaim` row before it runs, so no two schedulers ever run the same one.
See docs/ARCHITECTURE-NOTES.md, "Scheduling".
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from core.errors import Conflict, InvalidInput, NotFound
from core.events import ConnectionChanged, WorkspaceChanged
from engine.account_sync import start_sync, sync_threads
from engine.context import Context
from engine.executor import Work, carry_out
from engine.leader import leader_lock
from engine.schedules import account_sync_trigger, order_trigger
from storage.models import Connection, ExtractionOrder, JobClaim, OrderStatus, Workspace
from storage.repositories import installed

log = logging.getLogger(__name__)

# (team_id, target id, the occurrence being run)
Runner = Callable[[str, int, datetime], None]

# Occurrences missed by at most this much (downtime, a leader change) still run, once.
DEFAULT_GRACE = timedelta(hours=6)


@dataclass(frozen=True, eq=False)
class JobSpec:
    """A job as the tables want it. `key` is the APScheduler job id and the claim key."""

    key: str  # "sync:12", "order:7"
    kind: str  # picks the runner
    team_id: str
    target_id: int
    trigger: BaseTrigger
    # Occurrences before this were never due: the row did not exist yet.
    since: datetime

    @property
    def fingerprint(self) -> tuple[str, str, int, str]:
        # Triggers have no equality; their repr carries every field, time zone included.
        return (self.kind, self.team_id, self.target_id, repr(self.trigger))


# Uninstalled workspaces whose retention period is over are purged (operations/workspaces.py):
# hourly, so data is deleted within an hour of its time; the job exists when a runner is given.
PURGE = JobSpec("purge", "purge", "", 0, CronTrigger(minute=40, timezone=UTC), datetime(2000, 1, 1, tzinfo=UTC))


def table_jobs(ctx: Context) -> list[JobSpec]:
    """The daily sync of every live connection and every active order of a live connection, in
    workspaces that have not uninstalled connbot; the purge of uninstalled workspaces."""
    settings = ctx.settings
    with ctx.db.begin() as session:
        connections = session.execute(
            select(Connection.id, Connection.team_id, Connection.created_at).where(
                Connection.deleted_at.is_(None), installed(Connection.team_id)
            )
        ).all()
        orders = session.execute(
            select(
                ExtractionOrder.id,
                ExtractionOrder.team_id,
                ExtractionOrder.schedule,
                ExtractionOrder.timezone,
                ExtractionOrder.created_at,
            )
            .join(Connection, Connection.id == ExtractionOrder.connection_id)
            .where(
                ExtractionOrder.deleted_at.is_(None),
                ExtractionOrder.status != OrderStatus.PAUSED,
                Connection.deleted_at.is_(None),
                installed(Connection.team_id),
            )
        ).all()
    jobs = [
        JobSpec(
            f"sync:{cid}", "sync", team_id, cid, account_sync_trigger(cid, settings.sync_at, settings.timezone), created
        )
        for cid, team_id, created in connections
    ]
    for order_id, team_id, schedule, timezone, created in orders:
        try:
            trigger = order_trigger(schedule, timezone)
        except (KeyError, ValueError, InvalidInput):
            log.warning("extraction order %s has an invalid schedule %r; not scheduled", order_id, schedule)
            continue
        jobs.append(JobSpec(f"order:{order_id}", "order", team_id, order_id, trigger, created))
    jobs.append(PURGE)
    return jobs


def latest_occurrence(trigger: BaseTrigger, earliest: datetime, now: datetime) -> datetime | None:
    """The newest fire time of `trigger` in [earliest, now], or None.

    Walks forward from `earliest`, so the cost is the number of occurrences in the window: keep
    the grace window to a few occurrences of the most frequent trigger.
    """
    latest = None
    fire = trigger.get_next_fire_time(None, earliest)
    while fire is not None and fire <= now:
        latest = fire
        fire = trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))
    return latest


class Scheduler:
    def __init__(
        self,
        ctx: Context,
        *,
        node_id: str,
        runners: Mapping[str, Runner],
        jobs: Callable[[Context], Iterable[JobSpec]] = table_jobs,
        grace: timedelta = DEFAULT_GRACE,
        retry_seconds: float = 5.0,
        reconcile_seconds: float = 60.0,
    ):
        self.ctx = ctx
        self.node_id = node_id
        self.runners = dict(runners)
        self.grace = grace
        self._jobs = jobs
        self._retry_seconds = retry_seconds
        self._reconcile_seconds = reconcile_seconds
        self._lock = leader_lock(ctx, node_id)
        self._mutex = threading.RLock()  # guards self._aps, replaced at each change of leadership
        self._aps = self._new_apscheduler()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.is_leader = False
        # The newest occurrence handled per job in this term, to report the ones coalesced away.
        self._last_handled: dict[str, datetime] = {}
        # Published by request threads: only wake the leader, which reconciles in its own thread.
        # The job set depends on connections and orders, not on accounts or runs.
        ctx.events.subscribe(
            ConnectionChanged, lambda event: None if event.what in ("accounts", "run") else self._wake.set()
        )
        ctx.events.subscribe(WorkspaceChanged, lambda event: None if event.what == "settings" else self._wake.set())

    # -- the job set ---------------------------------------------------------------------------

    def jobs(self) -> dict[str, JobSpec]:
        """The jobs in APScheduler's in-memory store, by key."""
        with self._mutex:
            return {job.id: job.args[0] for job in self._aps.get_jobs()}

    def reconcile(self, now: datetime | None = None) -> None:
        """Bring the in-memory jobs in line with the tables: add, remove, replace changed triggers."""
        now = now or self.ctx.clock.now()
        wanted = {spec.key: spec for spec in self._jobs(self.ctx) if spec.kind in self.runners}
        with self._mutex:
            current = self.jobs()
            gone = current.keys() - wanted.keys()
            for key in gone:
                self._aps.remove_job(key)
            changed = [
                # A changed schedule starts now: its occurrences before the change were never due.
                replace(spec, since=max(spec.since, now)) if key in current else spec
                for key, spec in wanted.items()
                if key not in current or current[key].fingerprint != spec.fingerprint
            ]
            missed = self._unclaimed_due(changed, now)
            for spec in changed:
                if spec.key in current:
                    # Not replace_existing: before start() APScheduler would keep both as pending.
                    self._aps.remove_job(spec.key)
                # A missed occurrence becomes the first run time: APScheduler runs it at once.
                first = {"next_run_time": missed[spec.key]} if spec.key in missed else {}
                self._aps.add_job(
                    self._fire, spec.trigger, args=[spec], id=spec.key, name=spec.key, executor=spec.kind, **first
                )
        if gone or changed:
            log.info(
                "scheduler %s: %d jobs (%d removed, %d added or changed, %d missed runs to catch up)",
                self.node_id,
                len(wanted),
                len(gone),
                len(changed),
                len(missed),
            )

    # -- running occurrences -------------------------------------------------------------------

    def run_due(self, now: datetime) -> list[tuple[str, datetime]]:
        """Reconcile, then claim and run, synchronously, the occurrence of every job due at `now`.

        What APScheduler does in real time, for a controlled clock; returns what this call ran.
        """
        self.reconcile(now)
        ran = []
        for spec in self.jobs().values():
            occurrence = self._due(spec, now)
            if occurrence is not None and self._claim_and_run(spec, occurrence):
                ran.append((spec.key, occurrence))
        return ran

    def _due(self, spec: JobSpec, now: datetime) -> datetime | None:
        # Coalesced: only the newest occurrence within the grace window is ever due.
        occurrence = latest_occurrence(spec.trigger, max(now - self.grace, spec.since), now)
        return occurrence and occurrence.astimezone(UTC)

    def _unclaimed_due(self, specs: list[JobSpec], now: datetime) -> dict[str, datetime]:
        """Occurrences due at `now` that nobody claimed: missed while no scheduler ran them."""
        due = {spec.key: occurrence for spec in specs if (occurrence := self._due(spec, now))}
        if not due:
            return {}
        with self.ctx.db.begin() as session:
            claimed = {
                (key, at)
                for key, at in session.execute(
                    select(JobClaim.job_key, JobClaim.scheduled_for).where(
                        JobClaim.job_key.in_(list(due)), JobClaim.scheduled_for >= now - self.grace
                    )
                )
            }
        return {key: at for key, at in due.items() if (key, at) not in claimed}

    def _fire(self, spec: JobSpec) -> None:
        """Called by APScheduler, which does not say which occurrence it fires: with coalescing,
        the newest one due."""
        occurrence = self._due(spec, self.ctx.clock.now())
        if occurrence is not None:
            self._claim_and_run(spec, occurrence)

    def _claim_and_run(self, spec: JobSpec, occurrence: datetime) -> bool:
        self._report_coalesced(spec, occurrence)
        if spec.team_id and self._uninstalled(spec.team_id):  # before the next reconcile drops it
            log.info("scheduler %s: %s skipped: its workspace uninstalled connbot", self.node_id, spec.key)
            return False
        if not self._claim(spec.key, occurrence):
            return False
        try:
            self.runners[spec.kind](spec.team_id, spec.target_id, occurrence)
        except Exception:
            log.exception("scheduled job %s for %s failed", spec.key, occurrence.isoformat())
        return True

    def _report_coalesced(self, spec: JobSpec, occurrence: datetime) -> None:
        """Warn when occurrences since this term's previous run are skipped: the previous run was
        still going (one instance per job) or the scheduler was late, and coalescing kept the newest."""
        previous = self._last_handled.get(spec.key)
        if previous is not None and occurrence <= previous:
            return
        self._last_handled[spec.key] = occurrence
        if previous is None:
            return
        expected = spec.trigger.get_next_fire_time(previous, previous + timedelta(microseconds=1))
        if expected is not None and expected.astimezone(UTC) < occurrence:
            log.warning(
                "scheduler %s: %s skipped the occurrences from %s, coalesced into %s "
                "(its previous run was still going or the scheduler was late)",
                self.node_id,
                spec.key,
                expected.astimezone(UTC).isoformat(),
                occurrence.isoformat(),
            )

    def _uninstalled(self, team_id: str) -> bool:
        with self.ctx.db.read() as session:
            return session.scalar(select(Workspace.uninstalled_at).where(Workspace.team_id == team_id)) is not None

    def _claim(self, key: str, occurrence: datetime) -> bool:
        try:
            with self.ctx.db.begin() as session:
                session.add(
                    JobClaim(
                        job_key=key, scheduled_for=occurrence, claimed_by=self.node_id, claimed_at=self.ctx.clock.now()
                    )
                )
        except IntegrityError:
            log.debug(
                "scheduler %s: %s at %s is claimed by another scheduler", self.node_id, key, occurrence.isoformat()
            )
            return False
        return True

    # -- leadership ----------------------------------------------------------------------------

    def start(self) -> None:
        """Stand as a candidate in a background thread; only the leader runs jobs."""
        self._stopping.clear()
        self._thread = threading.Thread(target=self._campaign, name=f"scheduler-{self.node_id}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop; running jobs finish before the leadership is released."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _campaign(self) -> None:
        while not self._stopping.is_set():
            try:
                if self._lock.acquire():
                    self._lead()
            except Exception:
                log.exception("scheduler %s: leader election failed; retrying", self.node_id)
            self._stopping.wait(self._retry_seconds)

    def _lead(self) -> None:
        log.info("scheduler %s: leader", self.node_id)
        self._last_handled.clear()
        try:
            with self._mutex:
                self._aps.start()
            self.is_leader = True
            while not self._stopping.is_set():
                self._wake.clear()
                try:
                    self.reconcile()
                except Exception:
                    log.exception("scheduler %s: reconcile failed; keeping the current jobs", self.node_id)
                self._wake.wait(self._reconcile_seconds)
                if not self._lock.held():
                    log.warning("scheduler %s: lost the leader lock; stepping down", self.node_id)
                    break
        finally:
            self.is_leader = False
            with self._mutex:
                if self._aps.running:
                    self._aps.shutdown(wait=True)
                # A shut-down APScheduler cannot start again; the next term starts empty.
                self._aps = self._new_apscheduler()
            self._lock.release()
            log.info("scheduler %s: no longer leader", self.node_id)

    def _new_apscheduler(self) -> BackgroundScheduler:
        size = self.ctx.settings.sync_concurrency
        threads = {"sync": sync_threads(size)}
        return BackgroundScheduler(
            jobstores={"default": MemoryJobStore()},
            # One bounded pool per kind, so long extractions cannot starve the daily syncs.
            executors={kind: ThreadPoolExecutor(threads.get(kind, size)) for kind in self.runners},
            job_defaults={"coalesce": True, "misfire_grace_time": int(self.grace.total_seconds()), "max_instances": 1},
            timezone=self.ctx.settings.timezone,
        )


def run_scheduled_sync(ctx: Context, team_id: str, connection_id: int, scheduled_for: datetime) -> None:
    try:
        run_id = start_sync(ctx, team_id, connection_id, trigger="schedule", scheduled_for=scheduled_for)
    except (Conflict, NotFound) as error:
        log.info(
            "daily sync of connection %s for %s skipped: %s", connection_id, scheduled_for.isoformat(), error.message
        )
        return
    carry_out(ctx, Work("sync", team_id, run_id, connection_id))  # inline: here; queued: by a worker


def default_runners(ctx: Context) -> dict[str, Runner]:
    """Daily account syncs and extraction orders."""
    from engine.extraction import scheduled_order_runner

    return {"sync": partial(run_scheduled_sync, ctx), "order": scheduled_order_runner(ctx)}


def node_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def start_in_process(ctx: Context, runners: Mapping[str, Runner] | None = None) -> Scheduler:
    """For `connbot run`: a scheduler candidate inside the app process. Call `stop()` on exit."""
    scheduler = Scheduler(ctx, node_id=node_id(), runners=runners or default_runners(ctx))
    scheduler.start()
    return scheduler


def wait_for_termination() -> None:
    """Block the main thread until SIGTERM or SIGINT."""
    received = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: received.set())
    received.wait()
