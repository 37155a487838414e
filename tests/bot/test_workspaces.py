"""Installs to many workspaces, as Slack drives them: "Add to Slack" (GET /slack/install), Slack's
authorize page (the fake), the redirect back with code and state to connbot's real HTTP server
(waitress), `oauth.v2.access` (the fake); then requests, scheduled jobs and alerts of each
workspace with its own bot token, uninstalls, reinstalls and the purge after the retention period."""

from __future__ import annotations

import html
import logging
import re
import urllib.error
import urllib.request
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.app import create_app
from bot.installations import BOT_SCOPES, INSTALL_PATH, REDIRECT_PATH
from connbot.runtime import scheduled_purge
from connbot.server import wsgi_app
from core.clock import FrozenClock
from engine.account_sync import sync_accounts
from engine.scheduler import Scheduler, default_runners
from fakeslack import AppDriver, FakeSlack
from operations.auth import Actor, Role
from operations.connections import make_connection
from operations.workspaces import (
    InstalledBot,
    WorkspaceSettings,
    bot_for_team,
    note_workspace,
    record_installation,
    save_workspace_settings,
)
from sources.base import Credentials
from storage.models import AuditEvent, Connection, ExtractionOrder, Installation, Workspace
from support import assert_not_stored, demo_order, make_context, serving_http, texts

A, B = "T0AAAAAA", "T0BBBBBB"
PUBLIC = "https://connbot.example.com"
CLIENT_ID, CLIENT_SECRET = "1111.2222", "planted-client-secret"
SECRET = "test-signing-secret"


class World:
    """Two workspaces, connbot served over HTTP in distribution mode, the fake Slack."""

    def __init__(self, fake: FakeSlack, ctx, services, base: str, clock: FrozenClock):
        self.fake, self.ctx, self.services, self.base, self.clock = fake, ctx, services, base, clock
        self.driver = AppDriver(fake, base + "/slack/events", signing_secret=SECRET)

    def get(self, url: str, cookie: str | None = None) -> tuple[int, dict[str, str], str]:
        """A browser's GET, without following redirects."""
        request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read().decode()

    def start_install(self) -> tuple[str, str]:
        """The "Add to Slack" page: (the authorize link it offers, the state cookie it sets)."""
        status, headers, page = self.get(self.base + INSTALL_PATH)
        assert status == 200 and headers["cache-control"] == "no-store", page  # a fresh state each time
        link = html.unescape(re.search(r'<a href="([^"]+)"', page)[1])
        assert link.startswith("https://slack.com/oauth/v2/authorize?")
        return link, headers["set-cookie"].split(";")[0]

    def back_from_slack(self, redirect: str, cookie: str | None) -> tuple[int, str]:
        """The browser sent back by Slack to CONNBOT_PUBLIC_URL, which reaches this server."""
        assert redirect.startswith(PUBLIC + REDIRECT_PATH + "?")
        status, _, page = self.get(self.base + redirect.removeprefix(PUBLIC), cookie)
        return status, page

    def install(self, user_id: str) -> str:
        """The whole flow for the user's workspace; returns the bot token Slack issued."""
        link, cookie = self.start_install()
        status, page = self.back_from_slack(self.fake.authorize(link, user_id), cookie)
        assert status == 200 and "connbot is installed" in page, page
        return self.fake.teams[self.fake.users[user_id].team_id].bot_token

    def audit(self, action: str) -> list[tuple[str, str | None]]:
        with self.ctx.db.begin() as session:
            return session.execute(
                select(AuditEvent.team_id, AuditEvent.user_id)
                .where(AuditEvent.action == action)
                .order_by(AuditEvent.id)
            ).all()


@pytest.fixture
def world(db_url, tmp_path, clock):
    fake = FakeSlack(team_id=A, team_name="Acme", bot_token="xoxb-before-install-a")
    fake.add_team(B, name="Bolt", bot_token="xoxb-before-install-b")
    fake.add_user("UADA", "ada", is_admin=True)
    fake.add_user("UOLA", "ola")
    fake.add_user("UBEA", "bea", team_id=B, is_admin=True)
    fake.add_channel("C0ADATA", "a-data")
    fake.add_channel("C0AALERT", "a-alerts")
    fake.add_channel("C0BDATA", "b-data", team_id=B)
    fake.add_channel("C0BALERT", "b-alerts", team_id=B)
    fake.configure_oauth(CLIENT_ID, CLIENT_SECRET, redirect_urls=[PUBLIC + REDIRECT_PATH], scopes=BOT_SCOPES)
    with fake:
        ctx = make_context(
            db_url,
            tmp_path,
            clock,
            SLACK_BOT_TOKEN="",
            SLACK_API_URL=fake.base_url,
            CONNBOT_SLACK_CLIENT_ID=CLIENT_ID,
            CONNBOT_SLACK_CLIENT_SECRET=CLIENT_SECRET,
            CONNBOT_PUBLIC_URL=PUBLIC,
        )
        app, services = create_app(ctx)
        try:
            with serving_http(wsgi_app(app)) as base:
                yield World(fake, ctx, services, base, clock)
        finally:
            services.executor.shutdown(wait=True)
            ctx.db.dispose()
    fake.assert_clean()


def connect(world: World, team: str, business: str) -> int:
    cid = make_connection(world.ctx, Actor.system(team), "demo", {"token": f"demo:business={business},accounts=3"})
    sync_accounts(world.ctx, team, cid, trigger="connect")
    return cid


def listed(world: World, user: str, channel: str) -> str:
    return texts(world.driver.user(user).command("/connections", channel=channel).message.blocks)


def test_two_workspaces_install_through_the_flow_and_each_sees_only_its_own(world, caplog):
    caplog.set_level(logging.DEBUG)
    token_a, token_b = world.install("UADA"), world.install("UBEA")
    assert token_a != token_b
    with world.ctx.db.begin() as session:
        installed = session.execute(
            select(Installation.team_id, Installation.bot_user_id).order_by(Installation.team_id)
        )
        assert installed.all() == [(A, world.fake.teams[A].bot_user_id), (B, world.fake.teams[B].bot_user_id)]
    for token in (token_a, token_b, CLIENT_SECRET):  # encrypted with the vault's keys, never in clear
        assert_not_stored(world.ctx, token)
    assert world.audit("workspace.installed") == [(A, "UADA"), (B, "UBEA")]

    connect(world, A, "acme")
    connect(world, B, "hooli")
    seen_by_a, seen_by_b = listed(world, "UADA", "C0ADATA"), listed(world, "UBEA", "C0BDATA")
    assert "Acme Retail" in seen_by_a and "Hooli" not in seen_by_a
    assert "Hooli" in seen_by_b and "Acme Retail" not in seen_by_b

    for user, token in (("UADA", token_a), ("UBEA", token_b)):  # each App Home with its workspace's token
        world.driver.user(user).open_home()
        published = world.fake.wait_for(
            lambda u=user: [c for c in world.fake.calls("views.publish") if c.args["user_id"] == u]
        )
        assert {c.token for c in published} == {token}
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert not [secret for secret in (token_a, token_b, CLIENT_SECRET) if secret in logged]


def test_a_job_of_each_workspace_posts_with_its_own_token(world):
    tokens = {A: world.install("UADA"), B: world.install("UBEA")}
    for team, admin, channel in ((A, "UADA", "C0AALERT"), (B, "UBEA", "C0BALERT")):
        save_workspace_settings(world.ctx, Actor(team, admin, Role.ADMIN), WorkspaceSettings(alert_channel=channel))
        cid = connect(world, team, "acme")
        with world.ctx.db.begin() as session:  # the login stops working
            session.get(Connection, cid).credentials = world.ctx.vault.encrypt(Credentials({"token": "demo-expired"}))
    scheduler = Scheduler(world.ctx, node_id="test", runners=default_runners(world.ctx))
    day = world.clock.now().replace(hour=4, minute=30)
    for later in (1, 2):  # two daily syncs fail: the credentials are broken, an alert goes out
        assert len(scheduler.run_due(day + timedelta(days=later))) == 2
    for team, channel in ((A, "C0AALERT"), (B, "C0BALERT")):
        alert = world.fake.wait_for(lambda ch=channel: world.fake.messages(ch))[-1]
        assert "token_expired" in texts(alert.blocks)
        posts = [c for c in world.fake.calls("chat.postMessage") if c.args["channel"] == channel]
        assert [(c.token, c.team_id) for c in posts] == [(tokens[team], team)]


def test_with_token_rotation_the_bot_token_is_renewed_before_it_expires_for_requests_and_jobs(world, caplog):
    caplog.set_level(logging.DEBUG)
    world.fake.configure_oauth(
        CLIENT_ID, CLIENT_SECRET, redirect_urls=[PUBLIC + REDIRECT_PATH], scopes=BOT_SCOPES, token_rotation=True
    )
    first = world.install("UADA")
    assert first.startswith("xoxe.xoxb-")
    with world.ctx.db.begin() as session:
        row = session.scalars(select(Installation)).one()
        assert row.bot_refresh_token is not None
        left = row.bot_token_expires_at - world.clock.now()
        assert timedelta(hours=11, minutes=59) < left <= timedelta(hours=12)
    assert_not_stored(world.ctx, first)
    ada = world.driver.user("UADA")

    def published_with() -> str:
        before = len(world.fake.calls("views.publish"))
        ada.open_home()
        return world.fake.wait_for(lambda: world.fake.calls("views.publish")[before:])[-1].token

    def renewals() -> list:
        return [c for c in world.fake.calls("oauth.v2.access") if c.args.get("grant_type") == "refresh_token"]

    world.clock.advance(hours=9, minutes=59)  # more than 2 hours left: the token in hand
    assert published_with() == first and renewals() == []

    world.clock.advance(minutes=2)  # less than 2 hours left: the next request renews it, once
    second = published_with()
    assert second.startswith("xoxe.xoxb-") and second != first
    assert len(renewals()) == 1
    assert listed(world, "UADA", "C0ADATA") and published_with() == second and len(renewals()) == 1
    world.clock.advance(minutes=1)
    assert world.services.client_for(A).token == second  # a job's client: the same token, not renewed again
    assert len(renewals()) == 1
    with world.ctx.db.begin() as session:
        row = session.scalars(select(Installation)).one()
        assert row.bot_token_expires_at - world.clock.now() > timedelta(hours=11)
    assert world.audit("workspace.installed") == [(A, "UADA")]  # a renewal is no new install
    assert_not_stored(world.ctx, second)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert first not in logged and second not in logged and "xoxe-1-" not in logged
    assert f"renewed the bot token of T:{A}" in logged


def test_a_renewal_slack_refuses_serves_the_old_token_while_it_lasts_then_asks_for_a_reinstall(world, caplog):
    world.fake.configure_oauth(
        CLIENT_ID, CLIENT_SECRET, redirect_urls=[PUBLIC + REDIRECT_PATH], scopes=BOT_SCOPES, token_rotation=True
    )
    first = world.install("UADA")
    world.fake.configure_oauth(  # the app's secret was changed in Slack, not in connbot's settings
        CLIENT_ID, "a-new-secret", redirect_urls=[PUBLIC + REDIRECT_PATH], scopes=BOT_SCOPES, token_rotation=True
    )
    ada = world.driver.user("UADA")
    world.clock.advance(hours=11)
    ada.open_home()
    published = world.fake.wait_for(lambda: world.fake.calls("views.publish"))
    assert [c.token for c in published] == [first]  # the token in hand, while it lasts
    assert "Slack did not renew the bot token of T:T0AAAAAA (bad_client_secret)" in caplog.text
    world.clock.advance(hours=1)
    ada.command("/connections", channel="C0ADATA")  # expired: the person is told to install connbot again
    told = world.fake.wait_for(lambda: world.fake.ephemerals("UADA"))[-1]
    assert "connbot is not installed in this workspace any more" in told.text
    world.fake.clear_records()  # the refused renewals are what this test asked for


def test_a_forged_replayed_expired_or_cancelled_install_is_refused(world, caplog):
    caplog.set_level(logging.INFO)
    link, cookie = world.start_install()
    status, page = world.back_from_slack(
        f"{PUBLIC}{REDIRECT_PATH}?code=1.abc&state=forged", "slack-app-oauth-state=forged"
    )
    assert status == 401 and "expired or was already used" in page
    redirect = world.fake.authorize(link, "UADA")
    status, page = world.back_from_slack(redirect, None)  # not the browser that started it
    assert status == 400 and "another browser" in page
    assert world.back_from_slack(redirect, cookie)[0] == 200
    status, page = world.back_from_slack(redirect, cookie)  # the same answer again: a replay
    assert status == 401 and "expired or was already used" in page
    assert len(world.fake.calls("oauth.v2.access")) == 1

    link, cookie = world.start_install()
    world.clock.advance(minutes=11)
    status, page = world.back_from_slack(world.fake.authorize(link, "UBEA"), cookie)
    assert status == 401 and "expired" in page

    link, cookie = world.start_install()
    status, page = world.back_from_slack(world.fake.authorize(link, "UBEA", approve=False), cookie)
    assert "cancelled" in page
    code = "9.planted-code"  # a code Slack does not know: refused by oauth.v2.access, never logged
    link, cookie = world.start_install()
    state = re.search(r"state=([^&]+)", link)[1]
    status, page = world.back_from_slack(f"{PUBLIC}{REDIRECT_PATH}?code={code}&state={state}", cookie)
    assert status == 401 and "did not accept" in page
    assert world.fake.last("oauth.v2.access").error == "invalid_code"
    assert not any(code in record.getMessage() for record in caplog.records)
    with world.ctx.db.begin() as session:
        assert session.execute(select(Installation.team_id)).scalars().all() == [A]  # only the genuine install


def test_an_uninstall_stops_the_jobs_and_a_reinstall_within_the_period_restores_them(world):
    token_a = world.install("UADA")
    world.install("UBEA")
    jobs = {}
    for team, business in ((A, "acme"), (B, "hooli")):
        cid = connect(world, team, business)
        jobs[team] = {f"sync:{cid}", f"order:{demo_order(world.ctx, team, cid)}"}
    scheduler = Scheduler(
        world.ctx, node_id="test", runners={**default_runners(world.ctx), "purge": scheduled_purge(world.ctx)}
    )
    scheduler.reconcile()
    assert set(scheduler.jobs()) == jobs[A] | jobs[B] | {"purge"}

    for delivered in world.driver.uninstalled(A):
        assert delivered.ok
    world.fake.wait_for(lambda: world.audit("workspace.uninstalled"))  # handled after the ack
    scheduler.reconcile()
    assert set(scheduler.jobs()) == jobs[B] | {"purge"}  # A's jobs stop; B's go on
    ran = scheduler.run_due(world.clock.now() + timedelta(days=1, hours=-2))
    assert {key for key, _ in ran} <= jobs[B] | {"purge"} and {key for key, _ in ran} & jobs[B]
    assert world.audit("workspace.uninstalled") == [(A, None)]  # once, for the two events
    with world.ctx.db.begin() as session:
        assert session.scalars(select(Installation.team_id)).all() == [B]  # A's revoked token is gone
        assert session.get(Workspace, A).uninstall_reason in ("tokens_revoked", "app_uninstalled")
        assert session.scalar(select(func.count()).select_from(Connection).where(Connection.team_id == A)) == 1

    world.clock.advance(days=29)  # within the retention period (30 days by default)
    scheduler.run_due(world.clock.now())
    token_again = world.install("UADA")
    assert token_again != token_a
    assert world.audit("workspace.reinstalled") == [(A, "UADA")]
    scheduler.reconcile()
    assert set(scheduler.jobs()) == jobs[A] | jobs[B] | {"purge"}
    assert "Acme Retail" in listed(world, "UADA", "C0ADATA")  # everything back


def test_an_uninstalled_workspace_is_purged_after_the_retention_period_and_the_audit_trail_kept(world):
    world.install("UADA")
    world.install("UBEA")
    kept = connect(world, A, "acme")
    gone = connect(world, B, "hooli")
    demo_order(world.ctx, B, gone)
    world.driver.uninstalled(B)
    world.fake.wait_for(lambda: world.audit("workspace.uninstalled"))
    scheduler = Scheduler(world.ctx, node_id="test", runners={"purge": scheduled_purge(world.ctx)})
    world.clock.advance(days=29, hours=23)
    scheduler.run_due(world.clock.now())
    with world.ctx.db.begin() as session:
        assert session.scalar(select(func.count()).select_from(Connection).where(Connection.team_id == B)) == 1
    world.clock.advance(hours=2)  # 30 days and an hour after the uninstall: the next hourly purge
    assert [key for key, _ in scheduler.run_due(world.clock.now())] == ["purge"]
    with world.ctx.db.begin() as session:
        assert session.scalars(select(Connection.id)).all() == [kept]
        assert session.scalars(select(ExtractionOrder.team_id)).all() == []
        assert session.get(Workspace, B) is None and session.get(Workspace, A) is not None
    assert [team for team, _ in world.audit("workspace.purged")] == [B]
    assert [team for team, _ in world.audit("workspace.uninstalled")] == [B]  # the trail is kept


def test_the_manifest_asks_for_the_scopes_the_install_link_asks_for():
    from pathlib import Path

    import yaml

    manifest = yaml.safe_load((Path(__file__).parents[2] / "manifest.yml").read_text())
    assert manifest["oauth_config"]["scopes"]["bot"] == list(BOT_SCOPES)
    assert manifest["oauth_config"]["redirect_urls"] == ["https://connbot.example.com/slack/oauth_redirect"]
    assert manifest["settings"]["event_subscriptions"]["bot_events"] == [
        "app_home_opened",
        "app_mention",
        "app_uninstalled",
        "tokens_revoked",
        "team_access_granted",
        "team_access_revoked",
    ]
    assert manifest["settings"]["interactivity"]["message_menu_options_url"].endswith("/slack/events")


def test_with_one_token_an_uninstall_stops_the_jobs_until_someone_uses_connbot_there_again(
    fake, driver, app_ctx, connect
):
    cid = connect()
    scheduler = Scheduler(app_ctx, node_id="test", runners=default_runners(app_ctx))
    scheduler.reconcile()
    assert set(scheduler.jobs()) == {f"sync:{cid}"}

    def trail() -> list[str]:
        with app_ctx.db.begin() as session:
            return session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("workspace.%"))).all()

    assert driver.event({"type": "app_uninstalled"}).ok
    fake.wait_for(trail)  # handled after the ack
    assert driver.event({"type": "app_home_opened", "user": "UADMIN", "tab": "messages"}).ok  # a late event
    scheduler.reconcile()
    assert scheduler.jobs() == {}
    # Installed again (a new SLACK_BOT_TOKEN and a restart): the first person to use it brings it back.
    driver.user("UADMIN").command("/connections", channel="C0DATA")
    assert trail() == ["workspace.uninstalled", "workspace.reinstalled"]
    scheduler.reconcile()
    assert set(scheduler.jobs()) == {f"sync:{cid}"}


def test_an_org_admin_removing_a_workspace_from_the_org_wide_app_stops_it_and_adding_it_back_restores_it(
    fake, driver, app_ctx
):
    team = fake.team
    team.enterprise_id = "E0ORG"
    org_bot = InstalledBot(
        app_id="A0", enterprise_id="E0ORG", team_id=None, bot_token="xoxb-org", is_enterprise_install=True
    )
    record_installation(app_ctx, org_bot)
    note_workspace(app_ctx, team.id, "E0ORG", reinstall=False)
    cid = make_connection(app_ctx, Actor.system(team.id), "demo", {"token": "demo:business=acme,accounts=3"})

    def audited(action: str) -> list[str]:
        with app_ctx.db.begin() as session:
            return session.scalars(select(AuditEvent.team_id).where(AuditEvent.action == action)).all()

    # The organization is the one the envelope's authorization names (the team's, here).
    assert driver.event({"type": "team_access_revoked", "team_ids": [team.id, "T0OTHER"]}).ok
    fake.wait_for(lambda: audited("workspace.uninstalled"))
    assert audited("workspace.uninstalled") == [team.id] and bot_for_team(app_ctx, team.id) is None
    with app_ctx.db.begin() as session:
        assert session.get(Workspace, team.id).uninstall_reason == "team_access_revoked"
        assert session.get(Connection, cid) is not None  # kept for the retention period

    assert driver.event({"type": "team_access_granted", "team_ids": [team.id]}).ok
    fake.wait_for(lambda: audited("workspace.reinstalled"))
    assert bot_for_team(app_ctx, team.id).bot_token == "xoxb-org"
