"""Leases: proof that a live process carries out a run, released by the OS or the database
server when that process dies, so that recovery at start-up fails only runs nobody carries out.

PostgreSQL: a session advisory lock on a connection held for the run. SQLite: an exclusive
`flock` on a file under the data directory.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from sqlalchemy import CursorResult, select, text, update
from sqlalchemy.engine import Connection as DbConnection

from core.errors import Conflict
from engine.context import Context
from storage.models import AccountSyncRun, ExtractionRun, RunStatus

# Two-key advisory locks live apart from the scheduler's one-key leader lock (ASCII names).
RUNS = ("runs", 0x72756E73)
SYNCS = ("syncs", 0x73796E63)


class LeaseHeld(Conflict):
    """Another live process holds the run's lease: it is carrying the run out."""


class Lease:
    # Leases taken when a run is claimed, until it is carried out; by database, as ids are per database.
    _kept: dict[tuple[object, str, int], Lease] = {}
    _guard = threading.Lock()

    def __init__(self, release: Callable[[], None]):
        self.release = release

    @classmethod
    def take(cls, ctx: Context, kind: tuple[str, int], run_id: int) -> Lease | None:
        """The run's lease without waiting, or None when another holder has it."""
        name, key = kind
        if ctx.db.dialect == "sqlite":
            return cls._flock(ctx.settings.data_dir / name / f"{run_id}.lock")
        return cls._advisory(ctx.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT"), key, run_id)

    @classmethod
    def keep(cls, ctx: Context, kind: tuple[str, int], run_id: int, lease: Lease) -> None:
        with cls._guard:
            cls._kept[ctx.db, kind[0], run_id] = lease

    @classmethod
    def pop(cls, ctx: Context, kind: tuple[str, int], run_id: int) -> Lease | None:
        with cls._guard:
            return cls._kept.pop((ctx.db, kind[0], run_id), None)

    @classmethod
    def release_kept(cls) -> None:
        """Releases every lease this process keeps (tests, between databases)."""
        with cls._guard:
            kept, cls._kept = list(cls._kept.values()), {}
        for lease in kept:
            lease.release()

    @classmethod
    def _advisory(cls, conn: DbConnection, key: int, run_id: int) -> Lease | None:
        # Ids past 2**31 wrap: only two runs 2**31 apart, both running, could share a lease.
        args = {"class": key, "run": run_id % 2**31}

        def discard() -> None:
            conn.invalidate()  # ends the session, and with it any lock it holds
            conn.close()

        def release() -> None:
            # Unlocked, the connection goes back to the pool (a new session per run costs the
            # server a process); if the unlock cannot be confirmed, the session is ended instead.
            try:
                unlocked = conn.scalar(text("SELECT pg_advisory_unlock(:class, :run)"), args)
            except Exception:
                unlocked = False
            if unlocked:
                conn.close()
            else:
                discard()

        try:
            got = conn.scalar(text("SELECT pg_try_advisory_lock(:class, :run)"), args)
        except BaseException:
            discard()
            raise
        if not got:
            conn.close()
            return None
        return cls(release)

    @classmethod
    def _flock(cls, path: Path) -> Lease | None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None

        def release() -> None:
            # Unlinked while locked, after the run row is finished: a recovery that opens the
            # path meanwhile finds the run no longer running.
            path.unlink(missing_ok=True)
            os.close(fd)

        return cls(release)


def fail_orphans(
    ctx: Context, kind: tuple[str, int], model: type[ExtractionRun] | type[AccountSyncRun], error: str
) -> int:
    """Fail the running rows of `model` (a run table) whose process died: nobody holds their
    lease. A live process's rows are left alone, and so are rows with a task-queue job: the
    queue retries those on another worker (engine/queue.py). Returns how many were failed."""
    with ctx.db.begin() as session:
        running = list(
            session.scalars(select(model.id).where(model.status == RunStatus.RUNNING, model.job_id.is_(None)))
        )
    failed = 0
    for row_id in running:
        lease = Lease.take(ctx, kind, row_id)
        if lease is None:  # a live process is carrying it out
            continue
        try:
            with ctx.db.begin() as session:
                # An UPDATE's result is a CursorResult (it has a rowcount); Session.execute is typed
                # for every statement.
                updated = cast(
                    CursorResult[Any],
                    session.execute(
                        update(model)
                        .where(model.id == row_id, model.status == RunStatus.RUNNING)
                        .values(status=RunStatus.FAILED, error=error, finished_at=ctx.clock.now())
                    ),
                )
                failed += updated.rowcount
        finally:
            lease.release()
    return failed
