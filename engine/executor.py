"""Where extraction runs and account syncs execute: the executor seam.

One code path decides what runs and records it: `engine.extraction.start_run` and
`engine.account_sync.start_sync` claim a row in one unit of work, `execute_run` and `run_sync`
carry it out and record the outcome. The executor only says where it executes:

- `InlineExecutor` (`CONNBOT_EXECUTION=inline`, the default on SQLite): the claimed row is
  `running` and the claiming process executes it in its own threads (a Slack handler's
  background thread, the scheduler's pools), as connbot always did.
- `engine.queue.QueueExecutor` (`CONNBOT_EXECUTION=queue`, the default on PostgreSQL): the
  claimed row is `queued` and a Procrastinate job is deferred in the same transaction (no run
  without a job, no job without a run); `connbot worker` processes execute it.

What callers use, the same in both modes:

- `defer(session, work)` inside the claim's unit of work: the job id (queue) or None (inline);
- `carry_out(ctx, work, progress=..., then=...)` once the claim committed: inline executes here
  and then calls `then`; the queue executor only watches the row, reports a sync's progress and
  calls `then` when a worker has finished it (nothing to watch: it returns at once);
- `cancel(session, job_ids)` when a connection or order is deleted, in the same unit of work;
- read side: `waiting(session, job_ids)` (how many jobs are ahead, whether a worker is alive)
  for the cards, `stats()` (queue depth and oldest waiting job per queue, workers alive) for
  `connbot status`, /healthz and metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol

from core.errors import Conflict

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement
    from sqlalchemy.orm import Session

    from engine.account_sync import SyncResult
    from engine.context import Context
    from engine.extraction import RunResult
    from storage.models import AccountSyncRun, ExtractionRun

Kind = Literal["sync", "run"]


@dataclass(frozen=True)
class Work:
    """A claimed run (`run`: an extraction run) or account sync (`sync`)."""

    kind: Kind
    team_id: str
    run_id: int
    # The order (run) or connection (sync): one at a time each, whichever process carries it out.
    target_id: int


@dataclass(frozen=True)
class Waiting:
    """A queued job as the card shows it."""

    ahead: int  # jobs of its queue that a worker takes before it
    workers_alive: int  # workers with a recent heartbeat, on any queue


@dataclass(frozen=True)
class QueueStats:
    """The queue as `connbot status`, /healthz and metrics see it."""

    depth: Mapping[str, int]  # jobs waiting, per queue
    running: Mapping[str, int]  # jobs being carried out, per queue
    oldest_wait: Mapping[str, timedelta]  # age of the oldest waiting job, per queue with one
    workers_alive: int
    stalled: int = 0  # jobs of workers that stopped sending heartbeats, not retried yet
    extra: Mapping[str, Any] = field(default_factory=dict)


class WorkerStopping(Exception):  # noqa: N818 - a signal, not an error
    """The worker carrying the run out is shutting down: the run was put back in the queue
    (status `queued`), to be carried out again by another worker."""


class AlreadyUnderWay(Conflict):
    """A claim refused because the order's run (or the connection's sync) `run_id` is already
    queued or running."""

    def __init__(self, message: str, run_id: int):
        super().__init__(message)
        self.run_id = run_id


class Executor(Protocol):
    name: str  # "inline" | "queue"
    queues: bool  # claims are `queued` rows with a job (True), or `running` rows executed here

    def defer(self, session: Session, work: Work) -> int | None: ...

    def carry_out(
        self,
        ctx: Context,
        work: Work,
        *,
        progress: Callable[[int], None] | None = None,
        then: Callable[[], None] | None = None,
    ) -> None: ...

    def cancel(self, session: Session, job_ids: Iterable[int]) -> None: ...

    def waiting(self, session: Session, job_ids: Iterable[int]) -> dict[int, Waiting]: ...

    def stats(self) -> QueueStats | None: ...


def execute(
    ctx: Context,
    work: Work,
    *,
    progress: Callable[[int], None] | None = None,
    stopping: Callable[[], bool] | None = None,
) -> RunResult | SyncResult:
    """Carry the work out in this thread: what the inline executor and a queue worker both call."""
    if work.kind == "run":
        from engine.extraction import execute_run

        return execute_run(ctx, work.team_id, work.run_id, stopping=stopping)
    from engine.account_sync import run_sync

    return run_sync(ctx, work.team_id, work.run_id, progress=progress, stopping=stopping)


class InlineExecutor:
    """Threads of the claiming process: the row is claimed `running`, with its lease."""

    name = "inline"
    queues = False

    def defer(self, session: Session, work: Work) -> None:
        return None

    def carry_out(
        self,
        ctx: Context,
        work: Work,
        *,
        progress: Callable[[int], None] | None = None,
        then: Callable[[], None] | None = None,
    ) -> None:
        try:
            execute(ctx, work, progress=progress)
        finally:
            if then is not None:
                then()

    def cancel(self, session: Session, job_ids: Iterable[int]) -> None:
        pass  # a running run stops at its next batch (engine.extraction._StopCheck)

    def waiting(self, session: Session, job_ids: Iterable[int]) -> dict[int, Waiting]:
        return {}

    def stats(self) -> None:
        return None


def carry_out(
    ctx: Context,
    work: Work,
    *,
    progress: Callable[[int], None] | None = None,
    then: Callable[[], None] | None = None,
) -> None:
    """After a claim: execute here (inline) or follow a worker's progress (queue); see the module."""
    ctx.executor.carry_out(ctx, work, progress=progress, then=then)


# Why a run or sync under way was cancelled (both stop at their next batch or page).
CONNECTION_DELETED = "The connection was deleted."
UNINSTALLED = "connbot was uninstalled from this workspace."


def cancel_unfinished(
    ctx: Context,
    session: Session,
    *,
    connection_id: int | None = None,
    order_id: int | None = None,
    team_id: str | None = None,
    reason: str,
) -> None:
    """At the deletion of a connection (its syncs and runs) or an order, or when a workspace
    uninstalls connbot (every sync and run of its connections), in that unit of work: queued
    ones are cancelled with their jobs; running ones are asked to stop, and they stop at their
    next batch or page, when they see the deletion or the uninstall, on whichever process
    carries them."""
    from sqlalchemy import select, update

    from storage.models import UNFINISHED, AccountSyncRun, Connection, ExtractionRun, RunStatus

    tables: list[tuple[type[ExtractionRun] | type[AccountSyncRun], ColumnElement[bool]]] = [
        (ExtractionRun, ExtractionRun.order_id == order_id)
    ]
    if connection_id is not None:
        tables = [
            (ExtractionRun, ExtractionRun.connection_id == connection_id),
            (AccountSyncRun, AccountSyncRun.connection_id == connection_id),
        ]
    elif team_id is not None:
        of_team = select(Connection.id).where(Connection.team_id == team_id)
        tables = [
            (ExtractionRun, ExtractionRun.connection_id.in_(of_team)),
            (AccountSyncRun, AccountSyncRun.connection_id.in_(of_team)),
        ]
    jobs: list[int] = []
    for model, of_target in tables:
        unfinished = (of_target, model.status.in_(UNFINISHED), model.job_id.is_not(None))
        jobs += [job for job in session.scalars(select(model.job_id).where(*unfinished)) if job is not None]
        session.execute(
            update(model)
            .where(*unfinished, model.status == RunStatus.QUEUED)
            .values(status=RunStatus.CANCELLED, error=reason, finished_at=ctx.clock.now())
        )
    if jobs:
        ctx.executor.cancel(session, jobs)
