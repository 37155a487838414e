"""Queue execution with several `connbot worker` processes on one PostgreSQL (slow: real
processes, real heartbeats): every occurrence once across workers, a worker killed or stopped
mid-run, a deletion while a worker runs the order. In-process behaviour: test_queue.py."""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text
from test_queue import ADMIN, connect, jobs, order, run_row, wait_for

from core.clock import Clock
from engine.executor import CONNECTION_DELETED
from engine.extraction import start_run
from operations.cards import load_card
from operations.connections import delete_connection
from storage.models import ExtractionOrder, ExtractionRun

pytestmark = pytest.mark.slow

WORKER = Path(__file__).with_name("queue_worker.py")
TABLE = "warehouse.demo__campaign_daily"
BATCH_ROWS = 20


@pytest.fixture
def spawn(queue_ctx, tmp_path):
    """Starts `connbot worker` processes on the test's database; kills what is left at the end."""
    started: list[subprocess.Popen] = []

    def start(*, grace: float = 5.0, scheduler: bool = False) -> subprocess.Popen:
        ctx = queue_ctx
        args = [
            sys.executable,
            str(WORKER),
            ctx.settings.database_url,
            ctx.settings.warehouse,
            str(tmp_path / f"worker{len(started)}"),
            ctx.test_key,
            str(grace),
            str(BATCH_ROWS),
        ]
        log = open(tmp_path / f"worker{len(started)}.log", "w")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(args + (["scheduler"] if scheduler else []), stdout=log, stderr=subprocess.STDOUT)
        process.log = tmp_path / f"worker{len(started)}.log"
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def warehouse(ctx, sql: str):
    with ctx.db.engine.connect() as conn:
        return conn.execute(text(sql)).one()


def loaded(ctx) -> int:
    with ctx.db.engine.connect() as conn:
        if conn.scalar(text("SELECT to_regclass(:t)"), {"t": TABLE}) is None:
            return 0
        return conn.scalar(text(f"SELECT count(*) FROM {TABLE}"))


def content(ctx) -> tuple:
    """Rows, distinct merge keys, and a checksum of what the rows say (lineage aside)."""
    return warehouse(
        ctx,
        f"SELECT count(*), count(DISTINCT (date, account_id, campaign_id, _connection_id)), "
        f"md5(string_agg(concat_ws('|', date, account_id, campaign_id, campaign_name, impressions, clicks, spend), "
        f"',' ORDER BY date, account_id, campaign_id)) FROM {TABLE}",
    )


def slow_order(ctx, *, latency_ms=250, days=10) -> tuple[int, int]:
    """A connection whose runs take `days` batches of BATCH_ROWS rows, `latency_ms` each."""
    cid = connect(ctx, f"demo-slow:accounts=5,latency={latency_ms}")
    return cid, order(ctx, cid, history_days=days - 1)


def test_two_workers_run_each_of_50_orders_due_at_once_exactly_once_between_them(queue_ctx, spawn):
    ctx = queue_ctx
    ctx.clock = Clock()  # the workers' schedulers run on the wall clock
    cid = connect(ctx, "demo:accounts=2,campaigns=2")
    orders = [order(ctx, cid, history_days=1) for _ in range(50)]
    created = ctx.clock.now() - timedelta(hours=2)  # an hourly occurrence is due, missed while down
    with ctx.db.begin() as session:
        for row in session.scalars(select(ExtractionOrder)):
            row.schedule, row.created_at = {"kind": "hourly", "every_hours": 1}, created
    workers = [spawn(scheduler=True), spawn(scheduler=True)]

    def runs():
        with ctx.db.begin() as session:
            return session.scalars(select(ExtractionRun).order_by(ExtractionRun.order_id)).all()

    done = wait_for(lambda: len(runs()) == 50 and all(r.status == "succeeded" for r in runs()) and runs(), 120)
    assert [r.order_id for r in done] == orders  # once each
    assert {(r.trigger, r.attempts) for r in done} == {("schedule", 1)}
    assert len({r.scheduled_for for r in done}) == 1  # the same occurrence: the newest hour
    with ctx.db.engine.connect() as conn:
        by_worker = conn.execute(
            text(
                "SELECT worker_id, count(*) FROM procrastinate_jobs WHERE task_name = 'connbot.run' GROUP BY worker_id"
            )
        ).all()
        claims = conn.scalar(text("SELECT count(*) FROM job_claims WHERE job_key LIKE 'order:%'"))
    assert claims == 50
    assert sum(n for _, n in by_worker) == 50 and len(by_worker) == 2, by_worker  # spread over both workers
    assert len({r.rows for r in done}) == 1 and loaded(ctx) == done[0].rows  # the same rows, merged
    for process in workers:
        process.send_signal(signal.SIGTERM)
    assert [process.wait(30) for process in workers] == [0, 0]


def test_a_worker_killed_mid_run_leaves_the_run_to_another_which_loads_what_a_clean_run_does(queue_ctx, spawn):
    ctx = queue_ctx
    cid, oid = slow_order(ctx)
    first = spawn()
    run_id = start_run(ctx, "T1", oid, trigger="manual", user_id="U1")
    wait_for(lambda: run_row(ctx, run_id).status == "running" and loaded(ctx) >= 3 * BATCH_ROWS, 60)
    first.kill()  # SIGKILL: no drain, no goodbye
    first.wait(10)
    assert run_row(ctx, run_id).status == "running"  # nobody knows yet
    spawn()
    run = wait_for(lambda: run_row(ctx, run_id).status == "succeeded" and run_row(ctx, run_id), 60)
    assert (run.attempts, run.rows) == (2, 10 * 20)  # started twice; the second loaded the range
    [card_row] = load_card(ctx, ADMIN, cid, "orders").content.orders
    assert card_row.last_run.retried
    killed = content(ctx)
    assert killed[:2] == (10 * 20, 10 * 20)  # no duplicate key, nothing missing

    clean = start_run(ctx, "T1", oid, trigger="manual")  # the same range, run without incident
    wait_for(lambda: run_row(ctx, clean).status == "succeeded", 60)
    assert run_row(ctx, clean).attempts == 1
    assert content(ctx) == killed


def test_sigterm_drains_then_queues_the_run_again_for_another_worker(queue_ctx, spawn):
    ctx = queue_ctx
    cid, oid = slow_order(ctx, latency_ms=400)
    first = spawn(grace=0.5)
    run_id = start_run(ctx, "T1", oid, trigger="manual")
    wait_for(lambda: run_row(ctx, run_id).status == "running" and loaded(ctx) >= BATCH_ROWS, 60)
    first.send_signal(signal.SIGTERM)
    assert first.wait(30) == 0  # drained: the grace, then the run stopped at its next batch
    assert "queued again" in first.log.read_text()
    run = run_row(ctx, run_id)
    assert (run.status, run.attempts) == ("queued", 1)
    [(_, _, _, _, _, status, _)] = [job for job in jobs(ctx) if job[2] == "connbot.run"]
    assert status == "todo"  # retried by Procrastinate, for whichever worker comes
    spawn()
    run = wait_for(lambda: run_row(ctx, run_id).status == "succeeded" and run_row(ctx, run_id), 60)
    assert run.attempts == 2 and content(ctx)[:2] == (10 * 20, 10 * 20)
    [card_row] = load_card(ctx, ADMIN, cid, "orders").content.orders
    assert card_row.last_run.retried


def test_deleting_the_connection_stops_the_run_on_its_worker_within_a_batch(queue_ctx, spawn):
    ctx = queue_ctx
    cid, oid = slow_order(ctx, latency_ms=400)
    spawn()
    run_id = start_run(ctx, "T1", oid, trigger="manual")
    wait_for(lambda: run_row(ctx, run_id).status == "running" and loaded(ctx) >= 2 * BATCH_ROWS, 60)
    at_delete = loaded(ctx)
    delete_connection(ctx, ADMIN, cid)
    run = wait_for(lambda: run_row(ctx, run_id).status == "cancelled" and run_row(ctx, run_id), 30)
    assert run.error == CONNECTION_DELETED
    assert loaded(ctx) == run.rows <= at_delete + BATCH_ROWS  # at most the batch under way
    job = wait_for(lambda: [j for j in jobs(ctx) if j[2] == "connbot.run" and j[5] != "doing"], 30)
    assert job[0][5] == "aborted"  # Procrastinate's record of the abort the deletion asked for
