"""What benchmarks set up and throw away: a PostgreSQL database of their own, and a case run in
a process of its own (so its peak memory is its own)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADMIN_PG = os.environ.get("CONNBOT_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def create_pg_database() -> str:
    """A new, empty database on the benchmark server; its URL."""
    from sqlalchemy import create_engine, text

    name = f"connbot_bench_{uuid.uuid4().hex[:8]}"
    engine = create_engine(ADMIN_PG, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return ADMIN_PG.rsplit("/", 1)[0] + f"/{name}"


def drop_pg_database(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(ADMIN_PG, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    engine.dispose()


def sqlite_context(workdir: Path):
    """A context on fresh files in `workdir`: SQLite as the system of record, a DuckDB warehouse
    (`workdir/warehouse.duckdb`), a new credentials key."""
    from core.settings import load_settings
    from engine.context import Context
    from storage.db import Database
    from storage.vault import Vault, generate_key

    settings = load_settings(
        {
            "CONNBOT_DATABASE_URL": f"sqlite:///{workdir}/connbot.db",
            "CONNBOT_DATA_DIR": str(workdir),
            "CONNBOT_WAREHOUSE": str(workdir / "warehouse.duckdb"),
        },
        dotenv=False,
    )
    db = Database(settings.database_url)
    db.upgrade()
    return Context(settings=settings, db=db, vault=Vault([generate_key()]))


def in_own_process(module: str, case: str, rows: int) -> dict:
    """Runs `python -m bench.<module> --case CASE --rows ROWS --workdir DIR` in a fresh temporary
    directory; the JSON object it prints last."""
    with tempfile.TemporaryDirectory(prefix="connbot-bench-") as workdir:
        out = subprocess.run(
            [sys.executable, "-m", f"bench.{module}", "--case", case, "--rows", str(rows), "--workdir", workdir],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    return json.loads(out.strip().splitlines()[-1])
