"""The whole Slack flow against each platform's fake server: make a new connection in the modal,
its accounts synced, Extract in four steps, a run loading rows into the warehouse, the token
expiring, the alert, Re-connect from the alert, the alert resolved in place."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace

import duckdb
import pytest
from platforms.fakes_facebook import FakeGraph
from platforms.fakes_google import FakeGoogleAds
from sqlalchemy import func, select

from engine.account_sync import sync_accounts
from sources.facebook_ads import FacebookAdsSource
from sources.google_ads import GoogleAdsSource
from sources.http import HttpSettings
from storage.models import Account, AccountSyncRun, Connection, ExtractionRun
from support import texts, wait_modal_text

TEAM = "T0FAKE001"
CLIENT_ID = "1234-abc.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-fake-secret"


@dataclass
class Platform:
    source: str
    fake: FakeGraph | FakeGoogleAds
    instance: object  # the source, pointed at the fake
    issue: Callable[[], str]  # a new login's token
    form: Callable[[str], dict]  # the form's values for that token
    expire: Callable[[str], None]  # the platform stops accepting it
    error_code: str  # what the platform then says
    accounts: int  # accounts the login lists (managers are not)
    active: int


def facebook() -> Platform:
    graph = FakeGraph()

    def issue() -> str:
        token = f"EAAB{uuid.uuid4().hex}"
        graph.add_login(token, businesses=[{"id": "900", "name": "Acme Retail"}])
        return token

    source = FacebookAdsSource(env={"CONNBOT_FACEBOOK_API_URL": graph.url}, http=HttpSettings(timeout=5, attempts=1))
    return Platform(
        "facebook_ads",
        graph,
        source,
        issue,
        lambda token: {"access_token": {"value": token}},
        expire=lambda token: graph.logins.pop(token),
        error_code="190",
        accounts=9,
        active=2,
    )


def google() -> Platform:
    fake = FakeGoogleAds()

    def issue() -> str:
        token = f"1//{uuid.uuid4().hex}"
        fake.add_client(CLIENT_ID, CLIENT_SECRET, token)
        return token

    def expire(token: str) -> None:
        fake.clients[CLIENT_ID].refresh_tokens.discard(token)
        fake.revoke_access_tokens()

    def form(token: str) -> dict:
        return {
            "refresh_token": {"value": token},
            "client_id": {"value": CLIENT_ID},
            "client_secret": {"value": CLIENT_SECRET},
        }

    source = GoogleAdsSource(
        env={
            "CONNBOT_GOOGLE_ADS_API_URL": fake.url,
            "CONNBOT_GOOGLE_TOKEN_URL": fake.token_url,
            "CONNBOT_GOOGLE_DEVELOPER_TOKEN": "DEV-TOKEN",
        },
        http=HttpSettings(timeout=5, attempts=1),
    )
    return Platform("google_ads", fake, source, issue, form, expire, error_code="invalid_grant", accounts=4, active=2)


@pytest.fixture(params=[facebook, google], ids=["facebook_ads", "google_ads"])
def platform(request, app_ctx, fake, monkeypatch):
    monkeypatch.delenv("CONNBOT_PUBLIC_URL", raising=False)  # no sign-in button here: paste
    made = request.param()
    sources = {made.source: made.instance, "demo": app_ctx.source("demo")}
    app_ctx.source = sources.__getitem__
    app_ctx.sources = lambda: sources
    fake.add_channel("C0ALERT", "oncall")
    app_ctx.settings = replace(app_ctx.settings, alert_channel="C0ALERT")
    yield made
    made.fake.close()
    assert not made.fake.server.errors, made.fake.server.errors[0]


# Small helpers, as in test_connect.py, test_extract.py and test_alerts.py.


def scalar(ctx, query):
    with ctx.db.begin() as session:
        return session.scalar(query)


def runs(ctx):
    with ctx.db.begin() as session:
        return session.scalars(select(ExtractionRun).order_by(ExtractionRun.id)).all()


def four_steps(fake, user, cid) -> dict:
    user.command("/connections", str(cid), channel="C0DATA")
    user.click(fake.ephemerals(user.id)[-1], "connection.extract")
    step1 = fake.wait_for(
        lambda: fake.modal(user.id) and fake.modal(user.id).callback_id == "extract.accounts" and fake.modal(user.id)
    )
    block = next(b for b in step1.blocks if b.get("block_id", "").startswith("accounts:"))
    user.fill(step1, {block["block_id"]: {"value": [block["element"]["options"][0]["value"]]}})
    step2 = user.submit(step1).view
    assert step2.callback_id == "extract.template", texts(step2.errors)
    step3 = user.submit(step2, {"template": {"value": "campaign_daily"}}).view
    step4 = user.submit(step3, {"history_days": {"value": "3"}}).view
    assert step4.callback_id == "extract.review", step4.errors
    return step4


def alerts_in(fake):
    return [m for m in fake.messages("C0ALERT") if not m.is_reply]


def test_connect_extract_expire_alert_reconnect(fake, driver, app_ctx, platform):
    ada = driver.user("UADMIN")

    # Make a new connection, pasting the token.
    ada.command("/connections", "new", channel="C0DATA")
    form = ada.submit(fake.wait_for(lambda: fake.modal("UADMIN")), {"source": {"value": platform.source}}).view
    ada.submit(form, platform.form(platform.issue()))
    wait_modal_text(fake, "UADMIN", "is connected")
    cid = scalar(app_ctx, select(Connection.id))

    # Its accounts, read from the fake.
    fake.wait_for(
        lambda: (
            scalar(
                app_ctx, select(func.count()).select_from(AccountSyncRun).where(AccountSyncRun.status == "succeeded")
            )
            == 1
        )
    )
    assert scalar(app_ctx, select(func.count()).select_from(Account)) == platform.accounts
    assert scalar(app_ctx, select(func.count()).select_from(Account).where(Account.active)) == platform.active

    # Extract: one account, campaigns by day, today and the 3 days before.
    done = ada.submit(four_steps(fake, ada, cid)).view
    assert "Created the extraction order" in texts(done.blocks)
    run = fake.wait_for(lambda: runs(app_ctx) and runs(app_ctx)[0].status != "running" and runs(app_ctx)[0], timeout=20)
    assert run.status == "succeeded", run.error
    with duckdb.connect(app_ctx.settings.warehouse, read_only=True) as warehouse:
        table = f"{platform.source}__campaign_daily"
        loaded = warehouse.execute(
            f'select count(*), count(distinct campaign_id), sum(impressions) from "{table}"'
        ).fetchone()
    assert loaded[:2] == (2 * 4, 2) and loaded[2] > 0 and run.rows == 8  # 2 campaigns × 4 days

    # The token expires: two scheduled syncs in a row turn the status to Error and alert on-call.
    token = platform.issue()  # the one the re-connect will paste
    with app_ctx.db.begin() as session:
        old = app_ctx.vault.decrypt(session.get(Connection, cid).credentials)
    platform.expire(old.get("access_token") or old.get("refresh_token"))
    for _ in range(2):
        sync_accounts(app_ctx, TEAM, cid, trigger="schedule")
    with app_ctx.db.begin() as session:
        connection = session.get(Connection, cid)
        assert (connection.credentials_status, connection.credentials_error_code) == ("error", platform.error_code)
    alert = fake.wait_for(lambda: alerts_in(fake) and alerts_in(fake)[-1])
    assert platform.error_code in texts(alert.blocks)

    # Re-connect from the alert with a fresh token: the alert is resolved in place.
    ada.click(alert, "connection.reconnect")
    form = fake.wait_for(
        lambda: (
            fake.modal("UADMIN")
            and fake.modal("UADMIN").callback_id == "connection.reconnect.submit"
            and fake.modal("UADMIN")
        )
    )
    ada.submit(form, platform.form(token))
    wait_modal_text(fake, "UADMIN", "Re-connected")
    fake.wait_for(lambda: "Resolved" in texts(fake.message("C0ALERT", alert.ts).blocks))
    assert scalar(app_ctx, select(Connection.credentials_status)) == "active"
    fake.wait_for(
        lambda: (
            scalar(app_ctx, select(AccountSyncRun.status).where(AccountSyncRun.trigger == "reconnect")) == "succeeded"
        )
    )
    updates = [c.args for c in fake.calls("chat.update") if c.args.get("ts") == alert.ts]
    assert updates and all("Resolved" in texts(u.get("blocks")) for u in updates)  # never a card over it
