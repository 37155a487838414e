"""Queue execution (engine/queue.py) in one process, on PostgreSQL: deferral with the claim,
locks, cancellation, the cards' view of the queue, a worker carrying runs out, the schema and
start-up checks. The multi-process behaviour is in test_queue_workers.py."""

from __future__ import annotations

import threading

import psycopg
import pytest
from sqlalchemy import create_engine, select, text

from connbot.runtime import start_executor
from core.errors import ConfigError, Conflict
from engine.account_sync import start_sync, sync_accounts
from engine.executor import CONNECTION_DELETED, UNINSTALLED, Work, carry_out
from engine.extraction import ORDER_DELETED, start_run
from engine.queue import JOB_LOST, WorkerOptions, fail_runs_without_job, queue_stats, upgrade_schema
from operations.auth import Actor, Role
from operations.cards import NO_WORKER_AFTER, load_card
from operations.connections import delete_connection, make_connection
from operations.orders import delete_order
from operations.workspaces import uninstall
from storage.models import AccountSyncRun, ExtractionRun, RunStatus
from support import demo_order, inline_execution, make_context, run_workers_in_thread

ADMIN = Actor("T1", "UADMIN", Role.ADMIN)
FAST = WorkerOptions(concurrency=2, grace=1.0, heartbeat=0.5, stalled_after=2.0, stalled_check=0.5, polling=0.2)


def connect(ctx, token="demo:accounts=5") -> int:
    cid = make_connection(ctx, ADMIN, "demo", {"token": token})
    with inline_execution(ctx):
        sync_accounts(ctx, "T1", cid, trigger="connect")
    return cid


def order(ctx, cid, *, history_days=2) -> int:
    return demo_order(ctx, "T1", cid, history_days=history_days)


def jobs(ctx) -> list[tuple]:
    with ctx.db.engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT id, queue_name, task_name, lock, queueing_lock, status, args FROM procrastinate_jobs ORDER BY id"
            )
        ).all()


def run_row(ctx, run_id) -> ExtractionRun:
    with ctx.db.begin() as session:
        return session.get(ExtractionRun, run_id)


def wait_for(predicate, timeout=30.0):
    done = threading.Event()
    for _ in range(int(timeout / 0.05)):
        value = predicate()
        if value:
            return value
        done.wait(0.05)
    raise AssertionError("timed out")


def test_a_claim_is_a_queued_row_and_its_job_committed_together(queue_ctx):
    ctx = queue_ctx
    oid = order(ctx, connect(ctx))
    run_id = start_run(ctx, "T1", oid, trigger="manual", user_id="U1")
    run = run_row(ctx, run_id)
    assert (run.status, run.attempts) == (RunStatus.QUEUED, 0)
    [(job_id, queue, task, lock, queueing_lock, status, args)] = jobs(ctx)
    assert run.job_id == job_id
    assert (queue, task, lock, queueing_lock, status) == (
        "connbot.runs",
        "connbot.run",
        f"run:{oid}",
        f"run:{oid}",
        "todo",
    )
    assert args == {"team_id": "T1", "run_id": run_id, "target_id": oid}

    with pytest.raises(Conflict, match="already queued to run, by <@U1>"):
        start_run(ctx, "T1", oid, trigger="manual", user_id="U2")
    assert len(jobs(ctx)) == 1


def test_no_job_without_its_run_and_no_run_without_its_job(queue_ctx, monkeypatch):
    ctx = queue_ctx
    oid = order(ctx, connect(ctx))
    deferred = ctx.executor.defer

    def defer_then_fail(session, work):
        deferred(session, work)
        raise RuntimeError("the claim fails after its job was deferred")

    monkeypatch.setattr(ctx.executor, "defer", defer_then_fail)
    with pytest.raises(RuntimeError):
        start_run(ctx, "T1", oid, trigger="manual")
    assert jobs(ctx) == []
    with ctx.db.begin() as session:
        assert session.scalars(select(ExtractionRun)).all() == []


def test_a_sync_is_queued_on_the_syncs_queue_with_its_connection_lock(queue_ctx):
    ctx = queue_ctx
    cid = connect(ctx)
    run_id = start_sync(ctx, "T1", cid, trigger="manual", user_id="U1")
    with pytest.raises(Conflict, match="already queued, by <@U1>"):
        start_sync(ctx, "T1", cid, trigger="manual")
    with ctx.db.begin() as session:
        sync = session.get(AccountSyncRun, run_id)
    [(job_id, queue, _, lock, _, _, _)] = jobs(ctx)
    assert (sync.status, sync.job_id, queue, lock) == ("queued", job_id, "connbot.syncs", f"sync:{cid}")
    ctx.clock.advance(hours=2)  # a queued sync is the queue's, however old: never taken for a dead one
    with pytest.raises(Conflict, match="already queued"):
        start_sync(ctx, "T1", cid, trigger="manual")


def test_the_card_says_queued_with_how_many_are_ahead_and_when_no_worker_is_alive(queue_ctx):
    ctx = queue_ctx
    cid = connect(ctx)
    first, second = order(ctx, cid), order(ctx, cid)
    start_run(ctx, "T1", first, trigger="manual")
    start_run(ctx, "T1", second, trigger="manual")
    start_sync(ctx, "T1", cid, trigger="manual")  # another queue: not ahead of runs
    rows = {row.id: row for row in load_card(ctx, ADMIN, cid, "orders").content.orders}
    assert [rows[o].status for o in (first, second)] == ["Queued", "Queued"]
    assert [rows[o].last_run.queue.ahead for o in (first, second)] == [0, 1]
    assert rows[first].last_run.queue.no_worker_minutes is None  # not waited long yet
    sync = load_card(ctx, ADMIN, cid, "accounts").content.running_sync
    assert (sync.status, sync.queue.ahead) == ("queued", 0)

    ctx.clock.advance(seconds=NO_WORKER_AFTER.total_seconds())
    rows = {row.id: row for row in load_card(ctx, ADMIN, cid, "orders").content.orders}
    assert rows[second].last_run.queue.no_worker_minutes == 10
    assert load_card(ctx, ADMIN, cid, "accounts").content.running_sync.queue.no_worker_minutes == 10


def test_a_worker_carries_out_queued_runs_and_syncs_and_the_card_follows(queue_ctx):
    ctx = queue_ctx
    cid = connect(ctx)
    oid = order(ctx, cid)
    run_id = start_run(ctx, "T1", oid, trigger="manual")
    sync_id = start_sync(ctx, "T1", cid, trigger="manual")
    finished = threading.Event()
    carry_out(ctx, Work("run", "T1", run_id, oid), then=finished.set)
    with run_workers_in_thread(ctx, FAST):
        assert finished.wait(30), "the card was never refreshed"
        run = run_row(ctx, run_id)
        assert (run.status, run.attempts, run.rows) == ("succeeded", 1, 3 * 4 * 5), run.error
        wait_for(lambda: dict((row[0], row[5]) for row in jobs(ctx)) == {run.job_id: "succeeded", 2: "succeeded"})
    with ctx.db.begin() as session:
        assert session.get(AccountSyncRun, sync_id).status == "succeeded"
    assert queue_stats(ctx.db.engine).workers_alive == 0  # unregistered at their stop


def test_deleting_a_connection_cancels_its_queued_runs_and_syncs_with_their_jobs(queue_ctx):
    ctx = queue_ctx
    cid = connect(ctx)
    run_id = start_run(ctx, "T1", order(ctx, cid), trigger="manual")
    sync_id = start_sync(ctx, "T1", cid, trigger="manual")
    delete_connection(ctx, ADMIN, cid)
    with ctx.db.begin() as session:
        sync = session.get(AccountSyncRun, sync_id)
        run = session.get(ExtractionRun, run_id)
    assert (run.status, run.error, sync.status, sync.error) == (
        "cancelled",
        CONNECTION_DELETED,
        "cancelled",
        CONNECTION_DELETED,
    )
    assert [row[5] for row in jobs(ctx)] == ["cancelled", "cancelled"]


def test_deleting_an_order_cancels_its_queued_run(queue_ctx):
    ctx = queue_ctx
    cid = connect(ctx)
    oid, other = order(ctx, cid), order(ctx, cid)
    run_id = start_run(ctx, "T1", oid, trigger="manual")
    kept = start_run(ctx, "T1", other, trigger="manual")
    delete_order(ctx, ADMIN, cid, oid)
    assert (run_row(ctx, run_id).status, run_row(ctx, run_id).error) == ("cancelled", ORDER_DELETED)
    assert run_row(ctx, kept).status == "queued"
    assert [row[5] for row in jobs(ctx)] == ["cancelled", "todo"]


def test_an_uninstall_cancels_the_workspaces_queued_runs_and_syncs_with_their_jobs(queue_ctx):
    ctx = queue_ctx
    cid = connect(ctx)
    run_id = start_run(ctx, "T1", order(ctx, cid), trigger="manual")
    sync_id = start_sync(ctx, "T1", cid, trigger="manual")
    other = make_connection(ctx, Actor("T2", "U2", Role.ADMIN), "demo", {"token": "demo:accounts=5"})
    kept = start_sync(ctx, "T2", other, trigger="manual")  # another workspace's stays queued
    assert uninstall(ctx, team_id="T1", enterprise_id=None, is_enterprise_install=False, reason="app_uninstalled") == [
        "T1"
    ]
    with ctx.db.begin() as session:
        rows = [
            session.get(AccountSyncRun, sync_id),
            session.get(ExtractionRun, run_id),
            session.get(AccountSyncRun, kept),
        ]
    assert [(row.status, row.error) for row in rows] == [
        ("cancelled", UNINSTALLED),
        ("cancelled", UNINSTALLED),
        ("queued", None),
    ]
    assert sorted(row[5] for row in jobs(ctx)) == ["cancelled", "cancelled", "todo"]


def test_a_run_whose_job_ended_without_it_is_failed_so_its_order_runs_again(queue_ctx):
    ctx = queue_ctx
    oid = order(ctx, connect(ctx))
    run_id = start_run(ctx, "T1", oid, trigger="manual")
    assert fail_runs_without_job(ctx) == 0  # its job waits: nothing to do
    with ctx.db.engine.begin() as conn:
        conn.execute(text("UPDATE procrastinate_jobs SET status = 'failed'"))
    assert fail_runs_without_job(ctx) == 1
    assert (run_row(ctx, run_id).status, run_row(ctx, run_id).error) == ("failed", JOB_LOST)
    start_run(ctx, "T1", oid, trigger="manual")  # the order is free again


def test_db_upgrade_applies_the_queue_schema_once_and_records_its_version(fresh_pg_url):
    engine = create_engine(fresh_pg_url)
    assert "applied" in upgrade_schema(engine)
    assert "up to date" in upgrade_schema(engine)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT obj_description('procrastinate_jobs'::regclass, 'pg_class')")).startswith(
            "connbot: procrastinate schema 3.10."
        )
    engine.dispose()


def test_queue_mode_is_refused_at_start_up_with_a_duckdb_file_or_without_the_queue_schema(
    pg_queue, fresh_pg_url, tmp_path, clock
):
    ctx = make_context(pg_queue, tmp_path, clock, CONNBOT_EXECUTION="queue")  # the DuckDB file default
    with pytest.raises(ConfigError) as refused:
        start_executor(ctx)
    assert refused.value.message == (
        "CONNBOT_EXECUTION=queue: the warehouse is a DuckDB file, which takes one writer process and the queue's "
        "workers are several; set CONNBOT_WAREHOUSE to PostgreSQL or a dlt destination, or CONNBOT_EXECUTION=inline"
    )
    ctx.db.dispose()
    bare = make_context(fresh_pg_url, tmp_path, clock, CONNBOT_WAREHOUSE="postgresql://h/db")
    with pytest.raises(ConfigError, match="run `connbot db upgrade` first"):
        start_executor(bare)
    bare.db.dispose()
    assert make_context(pg_queue, tmp_path, clock, CONNBOT_EXECUTION="inline").executor.name == "inline"


def test_the_queue_tables_are_procrastinates(queue_ctx):
    """The schema applied is the one the installed Procrastinate expects (its own check)."""
    import procrastinate

    app = procrastinate.App(
        connector=procrastinate.SyncPsycopgConnector(
            conninfo=queue_ctx.settings.database_url.replace("+psycopg", ""), min_size=1, max_size=1
        )
    )
    with app.open():
        assert app.check_connection()
    with psycopg.connect(queue_ctx.settings.database_url.replace("+psycopg", "")) as conn:
        assert conn.execute("SELECT count(*) FROM procrastinate_jobs").fetchone() == (0,)
