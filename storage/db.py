"""Engine, sessions and schema upgrades.

Callers own the unit of work: `with db.begin() as session:` around one operation, as SQLAlchemy
recommends keeping the session lifecycle outside the functions that access data.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from core.errors import Unavailable

if TYPE_CHECKING:
    from alembic.config import Config  # for annotations; the functions import alembic when called

MIGRATIONS = Path(__file__).parent / "migrations"


class Database:
    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 10):
        self.url = make_url(url)
        self.engine = _create_engine(url, echo=echo, pool_size=pool_size)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer at a time. Threads of this process queue here, woken at once,
        # instead of in SQLite's busy handler, which sleeps up to 100 ms between tries.
        self._sqlite_lock = threading.RLock() if self.url.get_backend_name() == "sqlite" else None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def begin(self) -> Iterator[Session]:
        """One unit of work: commits on success, rolls back on error."""
        try:
            with self._serialised(), self.sessions.begin() as session:
                yield session
        except OperationalError as exc:
            if _is_disconnect(exc):
                raise Unavailable(
                    "The connbot database is temporarily unavailable. Nothing was changed; please try again in a minute."
                ) from exc
            raise

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only unit of work. On SQLite it neither queues behind writers nor takes the
        write lock (WAL readers see the last commit), so people opening cards do not wait for
        one another or for a sync."""
        if self._sqlite_lock is None:
            with self.begin() as session:
                yield session
            return
        try:
            with self.engine.connect().execution_options(connbot_read_only=True) as conn:
                with Session(bind=conn, expire_on_commit=False) as session, session.begin():
                    yield session
        except OperationalError as exc:
            if _is_disconnect(exc):
                raise Unavailable(
                    "The connbot database is temporarily unavailable. Please try again in a minute."
                ) from exc
            raise

    def _serialised(self) -> AbstractContextManager[object]:
        return self._sqlite_lock if self._sqlite_lock is not None else nullcontext()

    def upgrade(self) -> None:
        """Bring the schema to the newest migration."""
        from alembic import command

        with self.engine.begin() as conn:
            cfg = alembic_config(self.url.render_as_string(hide_password=False))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def has_schema(self) -> bool:
        return inspect(self.engine).has_table("connections")

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # `%` would be read as interpolation by configparser.
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def pool_size_for(sync_concurrency: int) -> int:
    """Connections a process keeps: each sync (up to twice `sync_concurrency` at a time, see
    engine.account_sync.sync_threads) and extraction run (up to `sync_concurrency`) holds its
    lease on one and works on another, and the HTTP server has 8 threads. Fewer, and the pool
    would close and reopen connections under load."""
    return 2 * (2 * sync_concurrency + sync_concurrency) + 8


def _create_engine(url: str, *, echo: bool, pool_size: int) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, echo=echo, pool_size=pool_size, connect_args={"timeout": 30, "check_same_thread": False}
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
            # Let SQLAlchemy, not pysqlite, decide when transactions begin.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            if conn.get_execution_options().get("connbot_read_only"):
                conn.exec_driver_sql("BEGIN")  # a reader: no write lock
                return
            # IMMEDIATE takes the write lock up front, so concurrent writers queue instead of
            # failing with "database is locked" half-way through a unit of work.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    # No server-side prepared statements: psycopg would reuse a plan costed while a table was still
    # small (the first sync of a big login), and a page lookup would scan instead of using its index.
    return create_engine(
        url,
        echo=echo,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=20,
        connect_args={"prepare_threshold": None},
    )


def _is_disconnect(exc: OperationalError) -> bool:
    return bool(getattr(exc, "connection_invalidated", False)) or "connect" in str(exc.orig).lower()
