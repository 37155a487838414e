"""Leader election: only one scheduler acts at a time.

Both locks are released by the operating system or the server when their holder dies, so a
killed leader never blocks a successor: PostgreSQL ends a session advisory lock with the
session, the kernel drops an flock with the process's last descriptor of the file.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from typing import Protocol

from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

from engine.context import Context

# Any constant shared by every connbot process on one database ("connbot" in ASCII).
ADVISORY_LOCK_KEY = 0x636F6E6E626F74
LOCK_FILE_NAME = "scheduler.lock"

log = logging.getLogger(__name__)


class LeaderLock(Protocol):
    def acquire(self) -> bool:
        """Take the lock without waiting; True when held (also when already held)."""

    def held(self) -> bool:
        """Whether the lock is still ours (a lost database session loses it)."""

    def release(self) -> None: ...


# The leader's session says who it is, for `connbot status` (pg_stat_activity.application_name).
LEADER_APPLICATION = "connbot leader "


class AdvisoryLock:
    """`pg_try_advisory_lock` on a connection of its own, kept open for the leader's lifetime."""

    def __init__(self, engine: Engine, key: int = ADVISORY_LOCK_KEY, node_id: str = ""):
        self._engine = engine
        self._key = key
        self._node_id = node_id
        self._conn: Connection | None = None

    def acquire(self) -> bool:
        if self._conn is not None:
            return True
        # Autocommit: a session lock must not depend on a transaction staying open.
        conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            got = conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key})
        except Exception:
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        conn.execute(text("SELECT set_config('application_name', :name, false)"), {"name": self._label()})
        self._conn = conn
        return True

    def _label(self) -> str:
        return (LEADER_APPLICATION + self._node_id)[:63]  # application_name's limit

    def held(self) -> bool:
        if self._conn is None:
            return False
        try:
            self._conn.scalar(text("SELECT 1"))
            return True
        except Exception:
            self.release()
            return False

    def release(self) -> None:
        if self._conn is None:
            return
        try:  # at once: the server ends a closed session's backend, and frees its locks, later
            self._conn.scalar(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
        except Exception:
            log.debug("advisory unlock failed; closing the session frees the lock")
        # And the session closed, not pooled: a lock held twice, or an unlock that failed, cannot
        # stay with a pooled connection.
        self._conn.invalidate()
        self._conn.close()
        self._conn = None


class FileLock:
    """An exclusive, non-blocking flock on a file (SQLite deployments: one host, one data dir).
    The holder writes its node id in it, for `connbot status`."""

    def __init__(self, path: Path, node_id: str = ""):
        self.path = path
        self._node_id = node_id
        self._fd: int | None = None

    def acquire(self) -> bool:
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.pwrite(fd, self._node_id.encode(), 0)
        self._fd = fd
        return True

    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


def leader_lock(ctx: Context, node_id: str = "") -> LeaderLock:
    if ctx.settings.is_sqlite:
        return FileLock(ctx.settings.data_dir / LOCK_FILE_NAME, node_id)
    return AdvisoryLock(ctx.db.engine, node_id=node_id)


def current_leader(ctx: Context) -> str | None:
    """The node id of the scheduler leader, or None when no scheduler leads."""
    if ctx.settings.is_sqlite:
        probe = FileLock(ctx.settings.data_dir / LOCK_FILE_NAME)
        if probe.path.exists() and not probe.acquire():
            return probe.path.read_text() or "(unknown)"
        probe.release()
        return None
    with ctx.db.engine.connect() as conn:
        name = conn.scalar(
            text(
                "SELECT a.application_name FROM pg_locks AS l JOIN pg_stat_activity AS a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :high AND l.objid = :low "
                "AND l.objsubid = 1 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ),
            {"high": ADVISORY_LOCK_KEY >> 32, "low": ADVISORY_LOCK_KEY & 0xFFFFFFFF},
        )
    if name is None:
        return None
    return name.removeprefix(LEADER_APPLICATION) or "(unknown)"
