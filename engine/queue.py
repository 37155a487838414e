"""The task queue: extraction runs and account syncs on `connbot worker` processes.

Procrastinate keeps its jobs in the PostgreSQL connbot already uses, so nothing new runs beside
it, and a job is deferred on the connection of the unit of work that claims the run
(`configure(connection=...)`): the `queued` row and its job commit together, or neither does.
What is used of it, all documented Procrastinate features:

- two queues, `connbot.syncs` and `connbot.runs`, each with a worker of its own in every
  `connbot worker` process, so long extractions never take the slots of the daily syncs (the
  runs' concurrency is CONNBOT_SYNC_CONCURRENCY, the syncs get twice that, as inline);
- locks: `run:<order id>` and `sync:<connection id>` as both lock and queueing lock, so one run
  per order and one sync per connection are carried out (and waiting) at a time across workers;
- heartbeats and stalled jobs: each worker beats every HEARTBEAT_SECONDS; every worker looks for
  jobs of workers silent for STALLED_AFTER_SECONDS every STALLED_CHECK_SECONDS and retries them
  (`get_stalled_jobs` / `retry_job`), so a worker killed mid-run is detected within about a
  minute (at most STALLED_AFTER_SECONDS + STALLED_CHECK_SECONDS + one beat) and its job runs
  again on a worker with a free slot. This is done beside the workers rather than as a periodic
  job, which would wait for a free slot behind hours-long extractions;
- graceful shutdown: on SIGTERM a worker takes no new job and gives running ones `grace`
  seconds, then asks them to abort (`should_abort`): a run stops at its next batch and a sync
  after its page, each is queued again, and the job is retried on another worker;
- cancellation: deleting a connection or order cancels its waiting jobs and asks running ones to
  abort (`cancel_job_by_id(abort=True)`), in the deletion's own unit of work.

The run rows stay the record: a job always ends "succeeded" once its run is recorded, whatever
the run's outcome.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVarTuple, cast

import procrastinate
import psycopg
from procrastinate import exceptions as queue_errors
from procrastinate.job_context import AbortReason, JobContext
from procrastinate.jobs import Job
from procrastinate.retry import BaseRetryStrategy, RetryDecision
from procrastinate.schema import SchemaManager
from sqlalchemy import Connection, CursorResult, Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from core.errors import ConfigError, Conflict, NotFound
from engine.context import Context
from engine.executor import QueueStats, Waiting, Work, WorkerStopping, execute
from engine.leases import LeaseHeld
from storage.models import UNFINISHED, AccountSyncRun, ExtractionRun, RunStatus

log = logging.getLogger(__name__)

Args = TypeVarTuple("Args")

QUEUES = {"sync": "connbot.syncs", "run": "connbot.runs"}
HEARTBEAT_SECONDS = 10.0  # Procrastinate's defaults
STALLED_AFTER_SECONDS = 30.0
STALLED_CHECK_SECONDS = 30.0
LEASE_RETRY_SECONDS = 30  # a worker that lost its database session may still be finishing
FOLLOW_EVERY_SECONDS = 1.0

# Deferral, cancellation and reads happen on connections of ours: this connector's pool is never
# opened. Workers run with an asynchronous connector of their own (`run_workers`).
app = procrastinate.App(connector=procrastinate.SyncPsycopgConnector())


class _Retry(BaseRetryStrategy):
    """Again on another worker after a shutdown abort (Procrastinate retries only those
    aborts); later while another process still holds the run's lease; never otherwise: a
    run's failures are recorded on its row, and the job itself ends."""

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        if isinstance(exception, queue_errors.JobAborted):
            return RetryDecision(retry_in={"seconds": 0})
        if isinstance(exception, LeaseHeld):
            return RetryDecision(retry_in={"seconds": LEASE_RETRY_SECONDS})
        return None


@app.task(name="connbot.run", queue=QUEUES["run"], pass_context=True, retry=_Retry())
def run_job(context: JobContext, team_id: str, run_id: int, target_id: int) -> str:
    return _carry_out(context, Work("run", team_id, run_id, target_id))


@app.task(name="connbot.sync", queue=QUEUES["sync"], pass_context=True, retry=_Retry())
def sync_job(context: JobContext, team_id: str, run_id: int, target_id: int) -> str:
    return _carry_out(context, Work("sync", team_id, run_id, target_id))


TASKS = {"run": run_job, "sync": sync_job}


def _carry_out(context: JobContext, work: Work) -> str:
    ctx: Context = context.additional_context["ctx"]
    try:
        result = execute(ctx, work, stopping=lambda: context.abort_reason() is AbortReason.SHUTDOWN)
    except WorkerStopping:
        raise queue_errors.JobAborted("the worker is stopping; queued again for another worker") from None
    except LeaseHeld:
        raise
    except (NotFound, Conflict) as gone:  # finished or cancelled meanwhile: nothing left to do
        log.info("%s %s: nothing to do (%s)", work.kind, work.run_id, gone.message)
        return "skipped"
    if result.status == RunStatus.CANCELLED and context.should_abort():
        raise queue_errors.JobAborted("cancelled: its connection or order was deleted")
    return str(result.status)


# -- the executor ----------------------------------------------------------------------------


class QueueExecutor:
    """Claims are `queued` rows with a job; `connbot worker` processes carry them out."""

    name = "queue"
    queues = True

    def __init__(self, ctx: Context):
        self._db = ctx.db
        self._follower: _Follower | None = None
        self._guard = threading.Lock()

    def defer(self, session: Session, work: Work) -> int:
        lock = f"{work.kind}:{work.target_id}"
        return (
            TASKS[work.kind]
            .configure(lock=lock, queueing_lock=lock, connection=_psycopg(session.connection()))
            .defer(team_id=work.team_id, run_id=work.run_id, target_id=work.target_id)
        )

    def carry_out(
        self,
        ctx: Context,
        work: Work,
        *,
        progress: Callable[[int], None] | None = None,
        then: Callable[[], None] | None = None,
    ) -> None:
        if progress is None and then is None:
            return  # the job runs on a worker; nobody here waits for it
        with self._guard:
            if self._follower is None:
                self._follower = _Follower(ctx)
        self._follower.follow(work, progress, then)

    def cancel(self, session: Session, job_ids: Iterable[int]) -> None:
        connection = _psycopg(session.connection())
        for job_id in job_ids:
            # Waiting: cancelled. Being carried out: asked to abort (the run also sees the deletion).
            app.job_manager.cancel_job_by_id(job_id, abort=True, connection=connection)

    def waiting(self, session: Session, job_ids: Iterable[int]) -> dict[int, Waiting]:
        return waiting(session, job_ids)

    def stats(self) -> QueueStats:
        return queue_stats(self._db.engine)

    def close(self) -> None:
        if self._follower is not None:
            self._follower.stop()


def _psycopg(conn: Connection) -> psycopg.Connection[Any]:
    """The psycopg connection under a SQLAlchemy connection (and its transaction)."""
    driver = conn.connection.driver_connection
    if not isinstance(driver, psycopg.Connection):
        raise TypeError(f"the task queue needs PostgreSQL through psycopg, not {type(driver).__name__}")
    return driver


class _Follower:
    """Follows runs and syncs carried out by workers for this process's Slack handlers: one
    query a second for all of them, callbacks on a small pool of their own."""

    def __init__(self, ctx: Context):
        self._ctx = ctx
        # work → (progress, then, [accounts read last reported])
        self._followed: dict[Work, tuple[Callable[[int], None] | None, Callable[[], None] | None, list[int]]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._callbacks = ThreadPoolExecutor(4, thread_name_prefix="connbot-follow")
        self._thread = threading.Thread(target=self._loop, name="connbot-queue-follower", daemon=True)
        self._thread.start()

    def follow(self, work: Work, progress: Callable[[int], None] | None, then: Callable[[], None] | None) -> None:
        with self._lock:
            self._followed[work] = (progress, then, [0])
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        self._callbacks.shutdown(wait=False)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(FOLLOW_EVERY_SECONDS)
            self._wake.clear()
            with self._lock:
                followed = dict(self._followed)
            if not followed:
                continue
            try:
                rows = self._read(followed)
            except Exception:
                log.warning("could not read the runs followed for their cards; trying again", exc_info=True)
                continue
            for work, (progress, then, last_read) in followed.items():
                status, read = rows.get((work.kind, work.run_id), (None, 0))
                if progress is not None and read > last_read[0]:
                    last_read[0] = read
                    self._callbacks.submit(_guarded, progress, read)
                if status is None or status not in UNFINISHED:
                    with self._lock:
                        self._followed.pop(work, None)
                    if then is not None:
                        self._callbacks.submit(_guarded, then)

    def _read(self, followed: Iterable[Work]) -> dict[tuple[str, int], tuple[str, int]]:
        syncs = [w.run_id for w in followed if w.kind == "sync"]
        runs = [w.run_id for w in followed if w.kind == "run"]
        found: dict[tuple[str, int], tuple[str, int]] = {}
        with self._ctx.db.read() as session:
            if syncs:
                for run_id, status, read in session.execute(
                    AccountSyncRun.__table__.select()
                    .with_only_columns(AccountSyncRun.id, AccountSyncRun.status, AccountSyncRun.accounts_read)
                    .where(AccountSyncRun.id.in_(syncs))
                ):
                    found["sync", run_id] = (status, read)
            if runs:
                for run_id, status in session.execute(
                    ExtractionRun.__table__.select()
                    .with_only_columns(ExtractionRun.id, ExtractionRun.status)
                    .where(ExtractionRun.id.in_(runs))
                ):
                    found["run", run_id] = (status, 0)
        return found


def _guarded(fn: Callable[[*Args], None], *args: *Args) -> None:
    try:
        fn(*args)
    except Exception:
        log.exception("updating a card after a queued run failed")


# -- reading the queue -----------------------------------------------------------------------

_WAITING = text(
    """
    SELECT job.id,
           (SELECT count(*) FROM procrastinate_jobs AS other
             WHERE other.status = 'todo' AND other.queue_name = job.queue_name
               AND (other.priority > job.priority OR (other.priority = job.priority AND other.id < job.id))
           ) AS ahead
      FROM procrastinate_jobs AS job
     WHERE job.id = ANY(:ids) AND job.status = 'todo'
    """
)
_WORKERS_ALIVE = text(
    "SELECT count(*) FROM procrastinate_workers WHERE last_heartbeat >= now() - make_interval(secs => :seconds)"
)


def waiting(session: Session, job_ids: Iterable[int]) -> dict[int, Waiting]:
    """Waiting jobs among `job_ids`: how many jobs of their queue a worker takes first (by
    Procrastinate's order: priority, then id), and how many workers are alive."""
    ids = list(job_ids)
    if not ids:
        return {}
    alive = session.scalar(_WORKERS_ALIVE, {"seconds": STALLED_AFTER_SECONDS})
    return {job_id: Waiting(ahead, alive) for job_id, ahead in session.execute(_WAITING, {"ids": ids})}


_BY_QUEUE = text(
    """
    SELECT job.queue_name, job.status, count(*),
           max(CASE WHEN job.status = 'todo' THEN now() - deferred.at END)
      FROM procrastinate_jobs AS job
      LEFT JOIN LATERAL (
           SELECT min(at) AS at FROM procrastinate_events
            WHERE job_id = job.id AND type = 'deferred'
           ) AS deferred ON job.status = 'todo'
     WHERE job.status IN ('todo', 'doing')
     GROUP BY job.queue_name, job.status
    """
)
_STALLED = text(
    """
    SELECT count(*) FROM procrastinate_jobs AS job
     WHERE job.status = 'doing'
       AND (job.worker_id IS NULL OR NOT EXISTS (
            SELECT 1 FROM procrastinate_workers AS w
             WHERE w.id = job.worker_id AND w.last_heartbeat >= now() - make_interval(secs => :seconds)))
    """
)
_WORKERS = text("SELECT id, now() - last_heartbeat FROM procrastinate_workers ORDER BY id")


def queue_stats(engine: Engine) -> QueueStats:
    """Depth and oldest waiting job per queue, workers alive, jobs of stopped workers. Raises
    when the queue cannot be read (database unreachable, schema missing)."""
    depth = dict.fromkeys(QUEUES.values(), 0)
    running = dict.fromkeys(QUEUES.values(), 0)
    oldest: dict[str, timedelta] = {}
    with engine.connect() as conn:
        for queue, status, count, age in conn.execute(_BY_QUEUE):
            (depth if status == "todo" else running)[queue] = count
            if age is not None:
                oldest[queue] = age
        workers = conn.execute(_WORKERS).all()
        stalled = conn.scalar(_STALLED, {"seconds": STALLED_AFTER_SECONDS})
    alive = [(worker_id, age) for worker_id, age in workers if age.total_seconds() <= STALLED_AFTER_SECONDS]
    return QueueStats(depth, running, oldest, len(alive), stalled, {"workers": alive})


# -- schema ----------------------------------------------------------------------------------

_SCHEMA_MARK = "connbot: procrastinate schema "


def package_version() -> str:
    return metadata.version("procrastinate")


def schema_version(conn: Connection) -> str | None:
    """The Procrastinate version whose schema the database has (as `upgrade_schema` marked
    it), "" when present but unmarked, None when absent."""
    if conn.scalar(text("SELECT to_regclass('procrastinate_jobs')")) is None:
        return None
    comment = conn.scalar(text("SELECT obj_description('procrastinate_jobs'::regclass, 'pg_class')")) or ""
    return comment.removeprefix(_SCHEMA_MARK) if comment.startswith(_SCHEMA_MARK) else ""


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".")[:3] if part.isdigit())


def upgrade_schema(engine: Engine) -> str:
    """Procrastinate's schema, for `connbot db upgrade`: applied whole when absent; otherwise
    its migration scripts newer than the version recorded (Procrastinate leaves tracking them to
    us), in their order. The version is recorded in a comment. Returns what was done."""
    target = package_version()
    with engine.begin() as conn:
        current = schema_version(conn)
        driver = _psycopg(conn)
        if current is None:
            driver.execute(SchemaManager.get_schema())
            done = f"applied the task-queue schema (Procrastinate {target})"
        elif current == target:
            return f"the task-queue schema is up to date (Procrastinate {target})"
        else:
            if not current:
                raise ConfigError(
                    "the database has a Procrastinate schema that connbot did not install; "
                    "apply its migrations by hand (procrastinate schema --migrations-path), then run again"
                )
            scripts = [
                path
                for path in sorted(Path(SchemaManager.get_migrations_path()).glob("*.sql"))
                if _version_tuple(current) < _version_tuple(path.name.split("_")[0]) <= _version_tuple(target)
            ]
            for path in scripts:
                driver.execute(path.read_text(encoding="utf-8"))
            done = f"migrated the task-queue schema from Procrastinate {current} to {target} ({len(scripts)} scripts)"
        driver.execute(f"COMMENT ON TABLE procrastinate_jobs IS '{_SCHEMA_MARK}{target}'")
    return done


def check_schema(engine: Engine) -> None:
    """At the start of a queue-mode process: the schema of the installed Procrastinate."""
    with engine.connect() as conn:
        current = schema_version(conn)
    if current != package_version():
        raise ConfigError(
            "CONNBOT_EXECUTION=queue: the task-queue schema is not up to date; run `connbot db upgrade` first"
        )


# -- reconciling rows with their jobs ----------------------------------------------------------

JOB_LOST = "Its task-queue job ended without finishing it; the schedule (or Run now) runs it again."


def fail_runs_without_job(ctx: Context) -> int:
    """No run without a job: a queued or running row whose job ended (or is gone) is failed,
    so it no longer blocks its order or connection. Returns how many."""
    failed = 0
    with ctx.db.begin() as session:
        for model in (ExtractionRun, AccountSyncRun):
            # An UPDATE's result is a CursorResult (it has a rowcount); Session.execute is typed
            # for every statement.
            updated = cast(
                CursorResult[Any],
                session.execute(
                    text(
                        f"""
                        UPDATE {model.__tablename__} AS run
                           SET status = 'failed', error = :error, finished_at = :now
                         WHERE run.status IN ('queued', 'running') AND run.job_id IS NOT NULL
                           AND NOT EXISTS (
                               SELECT 1 FROM procrastinate_jobs AS job
                                WHERE job.id = run.job_id AND job.status IN ('todo', 'doing'))
                        """
                    ),
                    {"error": JOB_LOST, "now": ctx.clock.now()},
                ),
            )
            failed += updated.rowcount
    if failed:
        log.warning("failed %d queued run(s) or sync(s) whose task-queue job had ended", failed)
    return failed


# -- workers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerOptions:
    queues: tuple[str, ...] = ("sync", "run")
    concurrency: int = 8  # runs at once; syncs get twice as many
    grace: float = 25.0  # seconds a running job gets at SIGTERM before it is aborted and queued again
    heartbeat: float = HEARTBEAT_SECONDS
    stalled_after: float = STALLED_AFTER_SECONDS
    stalled_check: float = STALLED_CHECK_SECONDS
    polling: float = 5.0  # fallback to LISTEN/NOTIFY, as Procrastinate's default


def conninfo(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def run_workers(ctx: Context, options: WorkerOptions, stop: threading.Event | None = None) -> None:
    """Procrastinate workers for `options.queues` in this thread until SIGTERM/SIGINT (or `stop`),
    then a graceful drain (see the module)."""
    asyncio.run(_work(ctx, options, stop))


async def _work(ctx: Context, options: WorkerOptions, stop: threading.Event | None) -> None:
    from engine.account_sync import sync_threads

    loop = asyncio.get_running_loop()
    sizes = {"run": options.concurrency, "sync": sync_threads(options.concurrency)}
    # Sync tasks run in the loop's default executor: one thread for each job that may run.
    loop.set_default_executor(
        ThreadPoolExecutor(sum(sizes[q] for q in options.queues) + 2, thread_name_prefix="connbot-job")
    )
    connector = procrastinate.PsycopgConnector(conninfo=conninfo(ctx.settings.database_url), min_size=2, max_size=10)
    workers_app = app.with_connector(connector)
    fail_runs_without_job(ctx)
    async with workers_app.open_async():
        workers = [
            asyncio.create_task(
                workers_app.run_worker_async(
                    queues=[QUEUES[kind]],
                    name=f"connbot-{kind}s",
                    concurrency=sizes[kind],
                    shutdown_graceful_timeout=options.grace,
                    install_signal_handlers=False,  # one handler for both workers: below
                    additional_context={"ctx": ctx},
                    update_heartbeat_interval=options.heartbeat,
                    stalled_worker_timeout=options.stalled_after,
                    fetch_job_polling_interval=options.polling,
                    abort_job_polling_interval=min(options.polling, 5.0),
                ),
                name=f"worker-{kind}",
            )
            for kind in options.queues
        ]
        stalled = asyncio.create_task(_retry_stalled(workers_app, ctx, options), name="retry-stalled")
        stopping = asyncio.Event()
        signals = (signal.SIGTERM, signal.SIGINT) if threading.current_thread() is threading.main_thread() else ()
        for signum in signals:
            loop.add_signal_handler(signum, stopping.set)
        if stop is not None:
            loop.run_in_executor(None, stop.wait).add_done_callback(lambda _: loop.call_soon_threadsafe(stopping.set))
        log.info("connbot worker: queues %s, %d runs and %d syncs at once", options.queues, sizes["run"], sizes["sync"])
        done, _ = await asyncio.wait([*workers, asyncio.create_task(stopping.wait())], return_when="FIRST_COMPLETED")
        log.info("connbot worker: stopping; running jobs get %.0f s before they are queued again", options.grace)
        stalled.cancel()
        for task in workers:
            task.cancel()  # Procrastinate's documented stop: drain, then abort after the grace
        for task in workers:
            try:
                await task
            except asyncio.CancelledError:
                pass
        for signum in signals:
            loop.remove_signal_handler(signum)
    if stop is not None:
        stop.set()  # frees the thread waiting on it


async def _retry_stalled(workers_app: procrastinate.App, ctx: Context, options: WorkerOptions) -> None:
    """Jobs of workers that stopped beating (killed, host lost) go back to the queue."""
    while True:
        await asyncio.sleep(options.stalled_check)
        try:
            for job in await workers_app.job_manager.get_stalled_jobs(seconds_since_heartbeat=options.stalled_after):
                try:
                    await workers_app.job_manager.retry_job(job)
                except queue_errors.ConnectorException:
                    continue  # another worker retried it first
                log.warning("job %s of a worker that stopped (%s) is queued again", job.id, job.call_string)
            await asyncio.to_thread(fail_runs_without_job, ctx)
        except Exception:
            log.exception("looking for the jobs of stopped workers failed; trying again")
