"""Order alerts under queue execution: runs carried out by a worker process of its own (whose
events this app never hears) are judged by the alert poster's flush all the same."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from connbot.runtime import start_executor
from engine.account_sync import sync_accounts
from operations.auth import Actor, Role
from operations.connections import make_connection
from operations.orders import request_run
from storage.models import ExtractionOrder, ExtractionRun
from support import alerts_in, demo_order, inline_execution, make_context, run_workers_in_thread, texts

TEAM = "T0FAKE001"
OPS = Actor(TEAM, "UOPS", Role.OPERATOR)


@pytest.fixture
def ctx(queue_ctx):
    return queue_ctx


@pytest.fixture
def worker(alerting, clock, tmp_path):
    """Another process's context on the same database: a `connbot worker` without Slack."""
    other = make_context(alerting.settings.database_url, tmp_path / "worker", clock)
    other.settings, other.vault = alerting.settings, alerting.vault
    start_executor(other)
    yield other
    other.executor.close()
    other.db.dispose()


def newest_run(ctx):
    with ctx.db.begin() as session:
        return session.scalars(select(ExtractionRun).order_by(ExtractionRun.id.desc())).first()


def set_fields(ctx, oid, fields):
    with ctx.db.begin() as session:
        session.execute(update(ExtractionOrder).where(ExtractionOrder.id == oid).values(fields=fields))


def test_runs_a_worker_carried_out_are_judged_and_run_now_from_the_alert_is_queued_for_it(
    fake, driver, services, alerting, worker, clock
):
    cid = make_connection(alerting, Actor.system(TEAM), "demo", {"token": "demo:accounts=5"})
    with inline_execution(alerting):
        sync_accounts(alerting, TEAM, cid, trigger="connect")
    oid = demo_order(alerting, TEAM, cid)
    fields = ["campaign_name", "impressions", "clicks", "spend"]
    set_fields(alerting, oid, [*fields, "removed_metric"])
    with run_workers_in_thread(worker):
        for _ in range(2):
            clock.advance(hours=1)
            run_id = request_run(alerting, OPS, cid, oid)
            fake.wait_for(
                lambda run_id=run_id: newest_run(alerting).id == run_id and newest_run(alerting).status == "failed",
                timeout=30,
            )
        services.alerts.flush()  # what the minute's flush does: this process heard nothing of the runs
        alert = fake.wait_for(lambda: alerts_in(fake) and alerts_in(fake)[-1])
        assert "Failing: Campaigns" in texts(alert.blocks) and "the platform refused" in texts(alert.blocks)

        set_fields(alerting, oid, fields)
        clock.advance(hours=1)
        driver.user("UOPS").click(alert, "alert.order.run")
        fake.wait_for(lambda: newest_run(alerting).status == "succeeded", timeout=30)
        services.alerts.flush()
        fake.wait_for(lambda: "Resolved" in texts(fake.message("C0ALERT", alert.ts).blocks))
    assert "a run started by <@UOPS> succeeded" in texts(fake.message("C0ALERT", alert.ts).blocks)
