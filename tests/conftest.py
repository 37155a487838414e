"""Shared fixtures: databases (SQLite and the PostgreSQL on 127.0.0.1:5432), a context with a
controlled clock, and the app driven through a fake Slack."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from core.clock import FrozenClock
from core.settings import load_settings
from engine.context import Context
from storage.db import Database
from storage.models import Base
from storage.vault import Vault, generate_key

PG_ADMIN_URL = os.environ.get("CONNBOT_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def _pg_reachable() -> str | None:
    try:
        engine = create_engine(PG_ADMIN_URL)
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"{type(exc).__name__}: {exc}"


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The admin URL of the PostgreSQL server. Under CI=true an unreachable server fails."""
    problem = _pg_reachable()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at 127.0.0.1:5432 is unreachable under CI: {problem}")
        pytest.skip(f"PostgreSQL unreachable: {problem}")
    return PG_ADMIN_URL


def create_pg_database(admin_url: str) -> str:
    name = f"connbot_test_{uuid.uuid4().hex[:10]}"
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def drop_pg_database(admin_url: str, url: str) -> None:
    name = url.rsplit("/", 1)[1]
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture
def fresh_pg_url(pg_server):
    """An empty PostgreSQL database of its own, dropped afterwards."""
    url = create_pg_database(pg_server)
    yield url
    drop_pg_database(pg_server, url)


@pytest.fixture(scope="session")
def pg_migrated(pg_server):
    """One migrated PostgreSQL database for the session; tests truncate it."""
    url = create_pg_database(pg_server)
    db = Database(url)
    db.upgrade()
    db.dispose()
    yield url
    drop_pg_database(pg_server, url)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/connbot.db"
        db = Database(url)
        db.upgrade()
        db.dispose()
        return url
    url = request.getfixturevalue("pg_migrated")
    engine = create_engine(url)
    with engine.begin() as conn:
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/connbot.db"
    db = Database(url)
    db.upgrade()
    db.dispose()
    return url


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


def make_context(url: str, tmp_path: Path, clock: FrozenClock, **env: str) -> Context:
    settings = load_settings(
        {
            "CONNBOT_DATABASE_URL": url,
            "CONNBOT_DATA_DIR": str(tmp_path),
            "CONNBOT_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
            "SLACK_BOT_TOKEN": "xoxb-test-token",
            "SLACK_SIGNING_SECRET": "test-signing-secret",
            **env,
        },
        dotenv=False,
    )
    waits: list[float] = []
    key = generate_key()
    ctx = Context(settings=settings, db=Database(settings.database_url), vault=Vault([key]), clock=clock)
    ctx.test_key = key
    ctx.sleep = waits.append  # back-off waits are recorded, not slept
    ctx.waits = waits
    return ctx


@pytest.fixture
def ctx(db_url: str, tmp_path: Path, clock: FrozenClock):
    context = make_context(db_url, tmp_path, clock)
    yield context
    context.db.dispose()


@pytest.fixture
def sqlite_ctx(sqlite_url: str, tmp_path: Path, clock: FrozenClock):
    context = make_context(sqlite_url, tmp_path, clock)
    yield context
    context.db.dispose()
