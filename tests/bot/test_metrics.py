"""GET /metrics after driving the app as Slack does: the counters of what was done moved, and no
label carries an id, a name or a secret."""

from __future__ import annotations

import io
import json
import time
from dataclasses import replace
from urllib.parse import urlencode

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from connbot import metrics
from connbot.server import wsgi_app
from engine.account_sync import sync_accounts
from engine.extraction import start_run
from engine.scheduler import Scheduler
from operations.auth import Actor, Role
from operations.connections import make_connection
from operations.orders import OrderSpec, create_order
from sources.base import Credentials
from storage.db import Database
from storage.models import Account, Connection, ExtractionRun
from support import demo_order, inline_execution, open_accounts

TEAM = "T0FAKE001"


def read_metrics(routes) -> dict[tuple[str, frozenset], float]:
    """GET /metrics from WSGI `routes`: {(sample name, labels): value}."""
    answer = {}
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/metrics", "QUERY_STRING": "", "wsgi.input": io.BytesIO()}
    body = b"".join(routes(environ, lambda status, headers: answer.update(status=status)))
    assert answer["status"].startswith("200")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


@pytest.fixture
def scrape(bolt, app_ctx):
    """Reads /metrics through the app's HTTP routes."""
    app, _ = bolt
    metrics.watch(app_ctx)
    routes = wsgi_app(app)
    yield lambda: read_metrics(routes)
    metrics._scrape_time.__init__()  # the next test's context is not this one's


def moved(before, after, name, **labels) -> float:
    key = (name, frozenset(labels.items()))
    return after.get(key, 0.0) - before.get(key, 0.0)


def test_requests_syncs_runs_and_web_api_calls_are_counted(fake, driver, connect, app_ctx, scrape):
    cid = connect("demo:accounts=5")
    with app_ctx.db.begin() as session:
        account_ids = tuple(
            session.scalars(select(Account.id).where(Account.connection_id == cid, Account.active.is_(True)).limit(2))
        )
    order_id, _ = create_order(
        app_ctx,
        Actor(TEAM, "UOPS", Role.OPERATOR),
        cid,
        OrderSpec(
            account_ids,
            "campaign_daily",
            "Daily",
            ("impressions", "clicks"),
            schedule={"kind": "daily", "at": "06:00"},
            history_days=2,
        ),
        idempotency_key="metrics-test",
    )
    fake.fail_next("users.info", "ratelimited")  # the role lookup of the first request: waited out, retried
    before = scrape()

    otto = driver.user("UOPS")
    otto.click(open_accounts(fake, otto, cid), "connection.sync_accounts")
    # Counted once the sync's end is published, just after it is recorded.
    _scrape_until(
        scrape, lambda now: moved(before, now, "connbot_account_syncs_total", source="demo", outcome="succeeded")
    )
    otto.command("/connections", str(cid), channel="C0DATA")
    card = fake.ephemerals("UOPS")[-1]
    value = json.dumps({"c": cid, "o": order_id, "a": "run", "p": 0}, separators=(",", ":"))
    block = next(b for b in card.blocks if value in [o["value"] for o in b.get("accessory", {}).get("options", [])])
    otto.choose(card, "order.menu", value, block_id=block["block_id"])
    run = fake.wait_for(lambda: _finished(app_ctx, ExtractionRun), timeout=20)
    assert run.status == "succeeded" and run.rows > 0, run.error
    status, _, _ = driver.send_raw(urlencode({"command": "/connections", "team_id": TEAM}).encode(), secret="forged")
    assert status == 401
    after = _scrape_until(scrape, lambda now: moved(before, now, "connbot_extraction_run_seconds_count", source="demo"))

    assert moved(before, after, "connbot_slack_requests_total", kind="command", outcome="ok") == 2
    assert moved(before, after, "connbot_slack_requests_total", kind="block_actions", outcome="ok") == 3
    assert moved(before, after, "connbot_slack_requests_total", kind="unverified", outcome="refused") == 1
    assert moved(before, after, "connbot_slack_ack_seconds_count", kind="block_actions") == 3
    assert moved(before, after, "connbot_slack_ack_seconds_bucket", kind="command", le="3.0") == 2

    assert moved(before, after, "connbot_account_syncs_total", source="demo", outcome="succeeded") == 1
    assert moved(before, after, "connbot_account_sync_seconds_count", source="demo") == 1
    assert moved(before, after, "connbot_accounts_read_total", source="demo") == 5
    assert moved(before, after, "connbot_extraction_runs_total", source="demo", outcome="succeeded") == 1
    assert moved(before, after, "connbot_extraction_run_seconds_count", source="demo") == 1
    assert moved(before, after, "connbot_rows_loaded_total", source="demo") == run.rows

    assert moved(before, after, "connbot_slack_api_rate_limited_total", method="users.info") == 1
    assert moved(before, after, "connbot_slack_api_requests_total", method="users.info", outcome="ratelimited") == 1
    assert moved(before, after, "connbot_slack_api_requests_total", method="users.info", outcome="ok") == 1
    assert after[("connbot_database_up", frozenset())] == 1
    for kind in ("credentials", "failing", "stale", "silent"):
        assert after[("connbot_open_alerts", frozenset({("kind", kind)}))] == 0
    _no_label_names_anything(after, cid, order_id)


def _finished(ctx, model):
    """The run of `model` pressed in Slack, once finished."""
    with ctx.db.begin() as session:
        run = session.scalars(select(model).where(model.trigger == "manual")).first()
        return run if run is not None and run.status != "running" else None


def _scrape_until(scrape, condition, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not condition(scraped := scrape()):
        assert time.monotonic() < deadline, "the metrics never showed it"
        time.sleep(0.02)
    return scraped


def test_broken_credentials_count_by_source_and_open_an_alert(fake, driver, connect, app_ctx, scrape):
    cid = connect("demo:accounts=5")
    with app_ctx.db.begin() as session:
        session.get(Connection, cid).credentials = app_ctx.vault.encrypt(Credentials({"token": "demo-expired"}))
    before = scrape()
    otto = driver.user("UOPS")
    for attempt in (1, 2):  # the second definitive refusal in a row turns the credentials to Error
        otto.click(open_accounts(fake, otto, cid), "connection.sync_accounts")
        after = _scrape_until(
            scrape,
            lambda now, n=attempt: (
                moved(before, now, "connbot_account_syncs_total", source="demo", outcome="failed") >= n
            ),
        )
    assert moved(before, after, "connbot_account_syncs_total", source="demo", outcome="failed") == 2
    assert moved(before, after, "connbot_credentials_errors_total", source="demo") == 1
    assert after[("connbot_open_alerts", frozenset({("kind", "credentials")}))] == 1
    _no_label_names_anything(after, cid)


def test_errors_shown_to_people_are_counted_by_kind(fake, driver, connect, scrape):
    connect("demo:accounts=5")
    before = scrape()
    driver.user("UOPS").command("/connections", "999", channel="C0DATA")  # no such connection
    fake.wait_for(lambda: fake.ephemerals("UOPS"))
    after = scrape()
    assert moved(before, after, "connbot_slack_errors_shown_total", error="NotFound") == 1


def test_scheduler_leadership_is_read_when_scraped(app_ctx, scrape):
    scheduler = Scheduler(app_ctx, node_id="metrics-test", runners={}, retry_seconds=0.05)
    metrics.watch(app_ctx, scheduler)
    assert scrape()[("connbot_scheduler_leader", frozenset())] == 0
    scheduler.start()
    try:
        _wait(lambda: scheduler.is_leader)
        assert scrape()[("connbot_scheduler_leader", frozenset())] == 1
    finally:
        scheduler.stop()
    scraped = scrape()
    assert scraped[("connbot_scheduler_leader", frozenset())] == 0
    assert not [key for key in scraped if key[0].startswith("connbot_queue_")]  # inline: no task queue


@pytest.mark.postgres
def test_the_task_queue_is_read_when_scraped(queue_ctx):
    cid = make_connection(queue_ctx, Actor.system(TEAM), "demo", {"token": "demo:accounts=3"})
    with inline_execution(queue_ctx):
        sync_accounts(queue_ctx, TEAM, cid, trigger="connect")
    first, second = demo_order(queue_ctx, TEAM, cid), demo_order(queue_ctx, TEAM, cid)
    start_run(queue_ctx, TEAM, first, trigger="manual")  # queued: no worker is running
    start_run(queue_ctx, TEAM, second, trigger="manual")
    metrics.watch(queue_ctx)
    try:
        scraped = read_metrics(wsgi_app(None))
    finally:
        metrics._scrape_time.__init__()
    assert scraped[("connbot_queue_jobs", frozenset({("queue", "connbot.runs")}))] == 2
    assert scraped[("connbot_queue_jobs", frozenset({("queue", "connbot.syncs")}))] == 0
    assert scraped[("connbot_queue_oldest_job_age_seconds", frozenset({("queue", "connbot.runs")}))] >= 0
    assert scraped[("connbot_queue_workers_alive", frozenset())] == 0


def test_an_unreachable_database_is_said_and_the_scrape_still_answers(app_ctx, scrape, tmp_path):
    gone = Database(f"sqlite:///{tmp_path}/no/such/dir/connbot.db")
    metrics.watch(replace(app_ctx, db=gone))
    scraped = scrape()
    assert scraped[("connbot_database_up", frozenset())] == 0
    assert not [key for key in scraped if key[0] == "connbot_open_alerts"]


def _wait(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.01)


def _no_label_names_anything(scraped, *ids):
    """Labels hold kinds, outcomes, methods and source names: no team, user, id or name."""
    forbidden = {TEAM, "UOPS", "UADMIN", "Daily", *map(str, ids)}
    for name, labels in scraped:
        if name.startswith("connbot_"):
            assert not forbidden & {value for _, value in labels}, (name, labels)
