"""Sync accounts from the card: progress in place, the refreshed tab, a second press refused."""

from engine.account_sync import start_sync
from sources.base import Credentials
from sources.demo import DemoSource
from sources.registry import get_source
from storage.models import Connection
from support import open_accounts, texts


def test_sync_shows_progress_then_what_changed(fake, driver, connect, app_ctx, clock):
    # Pages of the source take 3 s of (controlled) time each, so progress is worth showing.
    slow = DemoSource(sleep=lambda seconds: clock.advance(seconds=seconds))
    slow.page_size = 500
    app_ctx.source = lambda name: slow if name == "demo" else get_source(name)
    cid = connect("demo:accounts=1000")
    with app_ctx.db.begin() as session:
        session.get(Connection, cid).credentials = app_ctx.vault.encrypt(
            Credentials({"token": "demo:accounts=1500,latency=3000"})
        )
    otto = driver.user("UOPS")
    card = open_accounts(fake, otto, cid)
    otto.click(card, "connection.sync_accounts")
    fake.wait_for(lambda: "+500 added" in texts(fake.ephemerals("UOPS")[-1].blocks), timeout=10)
    posted = [texts(c.args) for c in fake.calls("response_url")]
    assert any("Syncing accounts… 1,000 read" in p or "Syncing accounts… 500 read" in p for p in posted)
    final = fake.ephemerals("UOPS")[-1]
    assert "by <@UOPS>" in texts(final.blocks) and "of 1,500" in texts(final.blocks)
    assert len(fake.calls("response_url")) <= 5  # Slack allows five uses of a response_url


def test_a_second_press_while_syncing_says_who_started_it(fake, driver, connect, app_ctx):
    cid = connect("demo:accounts=5")
    otto = driver.user("UOPS")
    card = open_accounts(fake, otto, cid)
    start_sync(app_ctx, "T0FAKE001", cid, trigger="manual", user_id="UADMIN")
    otto.click(card, "connection.sync_accounts")
    fake.wait_for(
        lambda: [m for m in fake.ephemerals("UOPS") if "already syncing, started by <@UADMIN>" in m.visible_text]
    )
    shown = fake.wait_for(lambda: [m for m in fake.ephemerals("UOPS") if "Syncing accounts…" in texts(m.blocks)])[0]
    assert shown.find("connection.sync_accounts") is None  # no button while a sync runs


def test_viewer_cannot_sync(fake, driver, connect, services):
    from dataclasses import replace

    services.ctx.settings = replace(services.ctx.settings, operators=("UOPS",))
    cid = connect("demo:accounts=5")
    vera = driver.user("UVIEW")
    vera.click(open_accounts(fake, vera, cid), "connection.sync_accounts")
    fake.wait_for(lambda: [m for m in fake.ephemerals("UVIEW") if "operator role to sync accounts" in m.visible_text])


def test_a_sync_refused_by_the_source_says_why_and_to_re_connect(fake, driver, connect, app_ctx):
    cid = connect("demo:accounts=5")
    with app_ctx.db.begin() as session:  # as the console's broken connection: the token expired, its alert is out
        c = session.get(Connection, cid)
        c.credentials = app_ctx.vault.encrypt(Credentials({"token": "demo-expired"}))
        c.credentials_status, c.credentials_error_message = "error", "The demo token has expired"
    otto = driver.user("UOPS")
    otto.click(open_accounts(fake, otto, cid), "connection.sync_accounts")
    final = fake.wait_for(lambda: "failed" in texts(fake.ephemerals("UOPS")[-1].blocks) and fake.ephemerals("UOPS")[-1])
    shown = texts(final.blocks)
    assert "Why: " in shown and "expired" in shown.lower(), shown
    assert "*Re-connect* with working credentials" in shown
    assert final.find("connection.reconnect") is not None  # the fix, on the same card


def test_by_default_guests_and_deactivated_people_only_view(fake, driver, connect, app_ctx):
    from storage.models import AccountSyncRun

    fake.add_user("UGUEST", "gus", is_restricted=True)
    fake.add_user("USINGLE", "sam", is_ultra_restricted=True)
    fake.add_user("UGONE", "gone", deleted=True)
    cid = connect("demo:accounts=5")
    for user_id in ("UGUEST", "USINGLE", "UGONE"):
        user = driver.user(user_id)
        user.click(open_accounts(fake, user, cid), "connection.sync_accounts")
        refusal = fake.wait_for(lambda u=user_id: [m for m in fake.ephemerals(u) if "operator role" in m.visible_text])
        assert "except guests" in refusal[-1].visible_text
    with app_ctx.db.begin() as session:
        assert session.query(AccountSyncRun).filter(AccountSyncRun.trigger == "manual").count() == 0
    otto = driver.user("UOPS")  # a full member
    otto.click(open_accounts(fake, otto, cid), "connection.sync_accounts")
    fake.wait_for(lambda: "by <@UOPS>" in texts(fake.ephemerals("UOPS")[-1].blocks))
