"""Builds the running application from settings: database, vault, clock, sources."""

from __future__ import annotations

import logging

from core.clock import Clock
from core.errors import ConfigError
from core.settings import Settings
from engine.context import Context
from storage.db import Database, pool_size_for
from storage.vault import Vault, resolve_keys, verify_keys

log = logging.getLogger(__name__)


def open_database(settings: Settings) -> Database:
    """The embedded SQLite default upgrades itself; PostgreSQL must be upgraded on purpose."""
    db = Database(settings.database_url, pool_size=pool_size_for(settings.sync_concurrency))
    if settings.is_sqlite:
        db.upgrade()
        return db
    from alembic.script import ScriptDirectory

    from storage.db import alembic_config

    head = ScriptDirectory.from_config(alembic_config(settings.database_url)).get_current_head()
    try:
        current = db.current_revision()
    except Exception as exc:  # the driver's own error may carry the URL
        raise ConfigError(
            f"CONNBOT_DATABASE_URL: cannot reach the database ({type(exc).__name__}); check the host, port and user"
        ) from None
    if current != head:
        raise ConfigError("CONNBOT_DATABASE_URL: the database schema is not up to date; run `connbot db upgrade` first")
    return db


def build_context(settings: Settings, *, clock: Clock | None = None) -> Context:
    db = open_database(settings)
    vault = Vault(resolve_keys(settings.secret_keys, settings.data_dir))
    with db.begin() as session:
        verify_keys(vault, session)
    return Context(settings=settings, db=db, vault=vault, clock=clock or Clock())


def check_execution(settings: Settings) -> None:
    """Before anything starts: queue execution needs a warehouse that takes several writer
    processes. Refused with one line otherwise."""
    if settings.execution != "queue":
        return
    from engine.warehouse import one_writer_process

    try:
        single = one_writer_process(settings.warehouse)
    except ValueError as bad:
        raise ConfigError(str(bad)) from None
    if single:
        raise ConfigError(
            "CONNBOT_EXECUTION=queue: the warehouse is a DuckDB file, which takes one writer process and the queue's "
            "workers are several; set CONNBOT_WAREHOUSE to PostgreSQL or a dlt destination, or CONNBOT_EXECUTION=inline"
        )


def start_executor(ctx: Context) -> None:
    """For `connbot run`, `serve` and `worker`: CONNBOT_EXECUTION=queue hands runs and syncs to
    the task queue (engine/queue.py). Refused with one line when the warehouse takes one writer
    process only (`check_execution`), or when the queue's schema is missing."""
    if ctx.settings.execution != "queue":
        return
    from engine.queue import QueueExecutor, check_schema

    check_execution(ctx.settings)
    check_schema(ctx.db.engine)
    ctx.executor = QueueExecutor(ctx)


def recover(ctx: Context) -> None:
    """Runs and syncs left `running` by a process that died are marked failed; the schedule fills
    the gap. Those of queue workers are the queue's: it runs them again (engine/queue.py)."""
    from engine.account_sync import recover_interrupted_syncs
    from engine.extraction import recover_interrupted

    if count := recover_interrupted(ctx):
        log.warning("marked %d interrupted extraction run(s) as failed", count)
    if count := recover_interrupted_syncs(ctx):
        log.warning("marked %d interrupted account sync(s) as failed", count)
