"""Queue execution from the command line and /healthz: `connbot db upgrade` applies the task
queue's schema, `connbot status` shows the leader, the workers and the queue, a process in
queue mode refuses a DuckDB-file warehouse with one line, and the settings."""

from __future__ import annotations

import io
import json
import re

import pytest
from test_cli import run

from connbot.server import health_report, wsgi_app
from core.errors import ConfigError
from core.settings import load_settings
from engine.extraction import start_run
from support import demo_order, inline_execution

pytestmark = pytest.mark.postgres


def test_db_upgrade_applies_the_task_queue_schema_once(tmp_path, fresh_pg_url):
    url = fresh_pg_url.replace("+psycopg", "")
    first = run(["db", "upgrade"], tmp_path, CONNBOT_DATABASE_URL=url)
    assert first.returncode == 0, first.stderr
    assert re.search(r"Task queue: applied the task-queue schema \(Procrastinate 3\.10\.\d+\)\.", first.stdout)
    again = run(["db", "upgrade"], tmp_path, CONNBOT_DATABASE_URL=url)
    assert "Task queue: the task-queue schema is up to date" in again.stdout


def test_status_shows_the_leader_the_workers_and_the_queue(tmp_path, queue_ctx):
    from engine.account_sync import sync_accounts
    from operations.auth import Actor
    from operations.connections import make_connection

    cid = make_connection(queue_ctx, Actor.system("T1"), "demo", {"token": "demo:accounts=3"})
    with inline_execution(queue_ctx):
        sync_accounts(queue_ctx, "T1", cid, trigger="connect")
    start_run(queue_ctx, "T1", demo_order(queue_ctx, "T1", cid), trigger="manual")
    env = {
        "CONNBOT_DATABASE_URL": queue_ctx.settings.database_url,
        "CONNBOT_SECRET_KEYS": queue_ctx.test_key,
        "CONNBOT_DATA_DIR": str(tmp_path),
    }
    status = run(["status"], tmp_path, **env)
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert lines[:3] == [
        "Execution: queue",
        "Scheduler leader: none (no connbot run, serve or worker is up)",
        "Workers alive: 0",
    ]
    assert lines[3] == "Queue connbot.syncs: 0 waiting, 0 running"
    assert re.fullmatch(r"Queue connbot\.runs: 1 waiting, 0 running, oldest waiting \d+s", lines[4]), lines[4]


def test_a_queue_worker_refuses_a_duckdb_warehouse_with_one_line(tmp_path, pg_queue):
    refused = run(["worker"], tmp_path, CONNBOT_DATABASE_URL=pg_queue, CONNBOT_DATA_DIR=str(tmp_path))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.splitlines() == [
        "connbot: CONNBOT_EXECUTION=queue: the warehouse is a DuckDB file, which takes one writer process and the "
        "queue's workers are several; set CONNBOT_WAREHOUSE to PostgreSQL or a dlt destination, or "
        "CONNBOT_EXECUTION=inline"
    ]


def test_healthz_reports_the_queue(queue_ctx, monkeypatch):
    def get(report) -> tuple[str, dict]:
        answer = {}
        app = wsgi_app(None, health=lambda: report)
        body = app(
            {"PATH_INFO": "/healthz", "REQUEST_METHOD": "GET", "wsgi.input": io.BytesIO()},
            lambda status, headers: answer.update(status=status),
        )
        return answer["status"], json.loads(b"".join(body))

    status, body = get(health_report(queue_ctx))
    assert (status, body) == ("200 OK", {"ok": True, "queue": {"reachable": True, "workers": 0, "waiting": 0}})

    class Unreachable:
        queues = True

        def stats(self):
            raise OSError("the queue's database is gone")

    monkeypatch.setattr(queue_ctx, "executor", Unreachable())
    assert get(health_report(queue_ctx)) == ("503 Service Unavailable", {"ok": False, "queue": {"reachable": False}})


def test_execution_defaults_to_queue_on_postgresql_and_inline_on_sqlite():
    pg = {"CONNBOT_DATABASE_URL": "postgresql://u@h/db"}
    assert load_settings(pg, dotenv=False).execution == "queue"
    assert load_settings({}, dotenv=False).execution == "inline"
    assert load_settings({**pg, "CONNBOT_EXECUTION": "Inline"}, dotenv=False).execution == "inline"
    with pytest.raises(ConfigError, match="CONNBOT_EXECUTION: queue needs PostgreSQL"):
        load_settings({"CONNBOT_EXECUTION": "queue"}, dotenv=False)
    with pytest.raises(ConfigError, match="CONNBOT_EXECUTION: expected inline or queue, got 'threads'"):
        load_settings({**pg, "CONNBOT_EXECUTION": "threads"}, dotenv=False)
