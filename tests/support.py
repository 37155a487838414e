"""Helpers shared by tests (importable as `support`: pytest puts tests/ on the path)."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text

from core.clock import FrozenClock
from core.settings import load_settings
from engine.context import Context
from storage.db import Database
from storage.vault import Vault, generate_key

PG_ADMIN_URL = os.environ.get("CONNBOT_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def pg_reachable() -> str | None:
    try:
        engine = create_engine(PG_ADMIN_URL)
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"{type(exc).__name__}: {exc}"


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
