"""Shared fixtures: databases (SQLite and the PostgreSQL on 127.0.0.1:5432), a context with a
controlled clock, and the app driven through a fake Slack."""

from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from core.clock import FrozenClock
from storage.db import Database
from storage.models import Base
from support import PG_ADMIN_URL, T0, create_pg_database, drop_pg_database, make_context, pg_reachable

__all__ = ["T0", "make_context"]  # also importable from `support`


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The admin URL of the PostgreSQL server. Under CI=true an unreachable server fails."""
    problem = pg_reachable()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at 127.0.0.1:5432 is unreachable under CI: {problem}")
        pytest.skip(f"PostgreSQL unreachable: {problem}")
    return PG_ADMIN_URL


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


@pytest.fixture(autouse=True)
def _release_leases():
    """A run claimed but never carried out in a test keeps its lease; free it for the next test."""
    yield
    from engine.leases import Lease

    Lease.release_kept()


# -- the ad platforms' fakes (tests/platforms), for the source suites and the Slack flows ----------


@pytest.fixture
def graph():
    from platforms.fakes_facebook import FakeGraph

    fake = FakeGraph()
    yield fake
    fake.close()
    assert not fake.server.errors, fake.server.errors[0]


@pytest.fixture
def google():
    from platforms.fakes_google import FakeGoogleAds

    fake = FakeGoogleAds()
    yield fake
    fake.close()
    assert not fake.server.errors, fake.server.errors[0]


# -- the real Airbyte connector airbyte-source-faker, installed once into .cache/ -------------------


@pytest.fixture(scope="session")
def faker_installed():
    """(executable, spec) of the cached airbyte-source-faker installation."""
    from faker_connector import faker_executable, faker_spec

    executable = faker_executable()
    return executable, faker_spec(executable)


@pytest.fixture
def faker_source(ctx, faker_installed) -> str:
    """`airbyte:faker` registered in the test's database; its source name."""
    from faker_connector import register_faker

    return register_faker(ctx, *faker_installed)


# -- the task queue (CONNBOT_EXECUTION=queue) -------------------------------------------------------


@pytest.fixture(scope="session")
def pg_queue(pg_server):
    """One PostgreSQL database for the queue suites, migrated with the task queue's schema (as
    `connbot db upgrade` does); tests truncate it."""
    from engine.queue import upgrade_schema

    url = create_pg_database(pg_server)
    db = Database(url)
    db.upgrade()
    upgrade_schema(db.engine)
    db.dispose()
    yield url
    drop_pg_database(pg_server, url)


def queue_warehouse(url: str) -> str:
    """The warehouse of the queue suites: a schema of their database (several writer processes)."""
    return url.replace("postgresql+psycopg://", "postgresql://") + "?schema=warehouse"


@pytest.fixture
def queue_ctx(pg_queue, tmp_path: Path, clock: FrozenClock):
    """A context in queue execution on an emptied database: claims defer jobs, workers run them."""
    from connbot.runtime import start_executor

    engine = create_engine(pg_queue)
    with engine.begin() as conn:
        tables = [f'"{t.name}"' for t in Base.metadata.sorted_tables]
        tables += [
            "procrastinate_jobs",
            "procrastinate_events",
            "procrastinate_workers",
            "procrastinate_periodic_defers",
        ]
        conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        conn.execute(text("DROP SCHEMA IF EXISTS warehouse CASCADE"))
    engine.dispose()
    context = make_context(
        pg_queue, tmp_path, clock, CONNBOT_EXECUTION="queue", CONNBOT_WAREHOUSE=queue_warehouse(pg_queue)
    )
    start_executor(context)
    yield context
    context.executor.close()
    context.db.dispose()


# -- the log as CONNBOT_LOG_FORMAT=json writes it --------------------------------------------------


class JsonLog:
    def __init__(self, stream):
        self.stream = stream

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def clear(self) -> None:
        self.stream.seek(0)
        self.stream.truncate()

    def records(self) -> list[dict]:
        """Every line, parsed: a line that is not one JSON object fails the test."""
        return [json.loads(line) for line in self.text.splitlines()]


@pytest.fixture
def json_log():
    """Every log record of the test, down to DEBUG, written by connbot's JSON formatter."""
    from connbot.logs import formatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter("json"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield JsonLog(stream)
    root.removeHandler(handler)
    root.setLevel(level)
