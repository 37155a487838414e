"""Queue execution seen from Slack: Run now and Sync accounts are queued on the card, with how
many are ahead and a word when no worker is alive; the HTTP process runs nothing, and the card
is updated when a worker has carried the work out."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from engine.account_sync import sync_accounts
from operations.auth import Actor
from operations.connections import make_connection
from storage.models import AccountSyncRun, ExtractionRun
from support import demo_order, inline_execution, run_workers_in_thread, texts

TEAM = "T0FAKE001"  # the fake workspace (conftest.py)


@pytest.fixture
def ctx(queue_ctx):
    return queue_ctx


@pytest.fixture
def connect(app_ctx):
    def make(token: str = "demo:accounts=5") -> int:
        cid = make_connection(app_ctx, Actor.system(TEAM), "demo", {"token": token})
        with inline_execution(app_ctx):
            sync_accounts(app_ctx, TEAM, cid, trigger="connect")
        return cid

    return make


def latest(ctx, model):
    with ctx.db.begin() as session:
        return session.scalars(select(model).order_by(model.id.desc())).first()


def test_run_now_without_a_worker_is_queued_said_on_the_card_and_run_when_a_worker_starts(
    fake, driver, connect, app_ctx
):
    cid = connect()
    oid = demo_order(app_ctx, TEAM, cid)
    otto = driver.user("UOPS")
    otto.command("/connections", str(cid), channel="C0DATA")
    card = fake.ephemerals("UOPS")[-1]
    otto.choose(card, "order.menu", json.dumps({"c": cid, "o": oid, "a": "run", "p": 0}, separators=(",", ":")))
    queued = fake.wait_for(
        lambda: "*Queued*" in texts(fake.ephemerals("UOPS")[-1].blocks) and fake.ephemerals("UOPS")[-1]
    )
    assert "next in line" in texts(queued.blocks) and "No worker" not in texts(queued.blocks)
    assert latest(app_ctx, ExtractionRun).status == "queued"  # this process runs nothing

    otto.choose(queued, "order.menu", json.dumps({"c": cid, "o": oid, "a": "run", "p": 0}, separators=(",", ":")))
    refusal = fake.wait_for(lambda: [c for c in fake.calls("response_url") if "already queued" in texts(c.args)])
    assert "how many runs are ahead" in texts(refusal[-1].args)

    app_ctx.clock.advance(minutes=11)
    otto.command("/connections", str(cid), channel="C0DATA")
    alone = fake.ephemerals("UOPS")[-1]
    assert "No worker has picked this up for 11 minutes: is `connbot worker` running?" in texts(alone.blocks)
    assert latest(app_ctx, ExtractionRun).status == "queued"

    with run_workers_in_thread(app_ctx):
        done = fake.wait_for(lambda: [m for m in fake.ephemerals("UOPS") if "succeeded" in texts(m.blocks)], timeout=30)
    run = latest(app_ctx, ExtractionRun)
    assert (run.status, run.attempts) == ("succeeded", 1)
    assert "*Active*" in texts(done[-1].blocks)  # the card the menu was on, refreshed when the worker finished


def test_sync_accounts_is_queued_then_carried_out_by_a_worker_with_the_tab_updated(fake, driver, connect, app_ctx):
    cid = connect()
    otto = driver.user("UOPS")
    otto.command("/connections", str(cid), channel="C0DATA")
    otto.click(fake.ephemerals("UOPS")[-1], "connection.tab.accounts")
    tab = fake.wait_for(
        lambda: "Sync accounts" in texts(fake.ephemerals("UOPS")[-1].blocks) and fake.ephemerals("UOPS")[-1]
    )
    otto.click(tab, "connection.sync_accounts")
    queued = fake.wait_for(
        lambda: "Sync queued" in texts(fake.ephemerals("UOPS")[-1].blocks) and fake.ephemerals("UOPS")[-1]
    )
    assert "next in line · requested by <@UOPS>" in texts(queued.blocks)
    assert "Sync accounts" not in texts(queued.blocks)  # no second sync while one waits
    with run_workers_in_thread(app_ctx):
        fake.wait_for(lambda: latest(app_ctx, AccountSyncRun).status == "succeeded", timeout=30)
        synced = fake.wait_for(
            lambda: "Sync accounts" in texts(fake.ephemerals("UOPS")[-1].blocks) and fake.ephemerals("UOPS")[-1]
        )
    assert "Sync queued" not in texts(synced.blocks) and "Last sync" in texts(synced.blocks)
