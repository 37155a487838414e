"""The app driven as Slack drives it: signed requests to /slack/events through the WSGI
handler, and a local fake Web API that records every call and checks Slack's limits."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.app import create_app
from connbot.server import wsgi_app
from engine.account_sync import sync_accounts
from fakeslack.client import AppDriver, wsgi_target
from fakeslack.server import FakeSlack
from operations.auth import Actor
from operations.connections import make_connection

TEAM = "T0FAKE001"
SECRET = "test-signing-secret"


@pytest.fixture
def fake():
    slack = FakeSlack(team_id=TEAM, bot_token="xoxb-test-token")
    slack.add_user("UADMIN", "ada", is_admin=True)
    slack.add_user("UOPS", "otto")
    slack.add_user("UVIEW", "vera")
    slack.add_channel("C0DATA", "data-team")
    slack.add_channel("C0QUIET", "quiet", bot_member=False)
    with slack:
        yield slack
    slack.assert_clean()


@pytest.fixture
def app_ctx(ctx, fake):
    ctx.settings = type(ctx.settings)(**{**ctx.settings.__dict__, "slack_api_url": fake.base_url})
    return ctx


@pytest.fixture
def bolt(app_ctx):
    app, services = create_app(app_ctx)
    yield app, services
    # Listeners still at work after the test (a Home refresh after a delete) end before the fake
    # Slack they talk to does.
    app.listener_runner.listener_executor.shutdown(wait=True)
    services.executor.shutdown(wait=True)


@pytest.fixture
def driver(fake, bolt):
    app, _ = bolt
    return AppDriver(fake, wsgi_target(wsgi_app(app)), signing_secret=SECRET)


@pytest.fixture
def services(bolt):
    return bolt[1]


@pytest.fixture
def connect(app_ctx):
    """Makes a demo connection (and syncs its accounts) as the system would."""

    def make(token: str = "demo:accounts=30", team: str = TEAM, sync: bool = True) -> int:
        cid = make_connection(app_ctx, Actor.system(team), "demo", {"token": token})
        if sync:
            sync_accounts(app_ctx, team, cid, trigger="connect")
        return cid

    return make


@pytest.fixture
def alerting(fake, app_ctx):
    """Alerts go to #oncall (C0ALERT), escalations to #escalations (C0ESC), the CSM group is S0CSM."""
    fake.add_channel("C0ALERT", "oncall")
    fake.add_channel("C0ESC", "escalations")
    fake.add_usergroup("S0CSM", ["UADMIN"])
    app_ctx.settings = replace(app_ctx.settings, alert_channel="C0ALERT", escalation_channel="C0ESC", csm_group="S0CSM")
    return app_ctx
