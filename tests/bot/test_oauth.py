"""OAuth sign-in: the modal's button, /oauth/<source>/start and the callback, against the fake
Graph API and the fake Google Ads API, each with a fake authorization server added in front of
its token endpoint. The browser's part (following the redirect, consenting) is played here."""

from __future__ import annotations

import io
import logging
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from platforms.fakes_facebook import FakeGraph, fb_error
from platforms.fakes_google import FakeGoogleAds
from platforms.fakes_http import Reply
from sqlalchemy import func, select

from connbot.oauth import OAuthRoutes
from connbot.server import wsgi_app
from operations.auth import Actor
from operations.connections import make_connection
from operations.oauth import code_challenge
from sources.facebook_ads import FacebookAdsSource
from sources.google_ads import GoogleAdsSource
from sources.http import HttpSettings
from storage.models import AuditEvent, Connection, OAuthState
from support import assert_not_stored, texts, wait_modal_text

TEAM = "T0FAKE001"
PUBLIC_URL = "https://connbot.example.com"
FB_APP_ID = "1234567890"
GOOGLE_CLIENT_ID = "1234-abc.apps.googleusercontent.com"
ADWORDS = "https://www.googleapis.com/auth/adwords"
PLANT = uuid.uuid4().hex  # in the app secrets and codes: must never show anywhere


# --- the app, as Slack and a browser reach it ---------------------------------------------------


@pytest.fixture
def oauth_env(monkeypatch):
    settings = {
        "CONNBOT_PUBLIC_URL": PUBLIC_URL + "/",
        "CONNBOT_FACEBOOK_APP_ID": FB_APP_ID,
        "CONNBOT_FACEBOOK_APP_SECRET": f"fb-secret-{PLANT}",
        "CONNBOT_GOOGLE_CLIENT_ID": GOOGLE_CLIENT_ID,
        "CONNBOT_GOOGLE_CLIENT_SECRET": f"GOCSPX-{PLANT}",
        "CONNBOT_GOOGLE_DEVELOPER_TOKEN": "DEV-TOKEN",
    }
    for name in ("CONNBOT_FACEBOOK_LOGIN_URL", "CONNBOT_GOOGLE_AUTH_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    return settings


@pytest.fixture
def app_ctx(ctx, fake, graph, google, oauth_env):
    ctx.settings = type(ctx.settings)(**{**ctx.settings.__dict__, "slack_api_url": fake.base_url})
    quick = HttpSettings(timeout=5, attempts=1)
    sources = {
        "facebook_ads": FacebookAdsSource(env={"CONNBOT_FACEBOOK_API_URL": graph.url}, http=quick),
        "google_ads": GoogleAdsSource(
            env={
                "CONNBOT_GOOGLE_ADS_API_URL": google.url,
                "CONNBOT_GOOGLE_TOKEN_URL": google.token_url,
                "CONNBOT_GOOGLE_DEVELOPER_TOKEN": "DEV-TOKEN",
            },
            http=quick,
        ),
    }
    ctx.source = sources.__getitem__
    ctx.sources = lambda: sources
    return ctx


@dataclass
class Page:
    status: int
    headers: dict
    text: str


@pytest.fixture
def browser(bolt):
    """GET requests to the app's WSGI application, as a browser sends them."""
    app, services = bolt
    web = wsgi_app(app, oauth=OAuthRoutes(services))

    def get(url: str) -> Page:
        parts = urlsplit(url)
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": parts.path,
            "QUERY_STRING": parts.query,
            "SERVER_NAME": "connbot.example.com",
            "SERVER_PORT": "443",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "https",
            "wsgi.input": io.BytesIO(b""),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        started = {}

        def start_response(status, headers, exc_info=None):
            started.update(status=int(status.split()[0]), headers=dict(headers))

        body = b"".join(web(environ, start_response))
        return Page(started["status"], started["headers"], body.decode())

    return get


# --- the platforms' authorization servers ---------------------------------------------------------


class FacebookAuth:
    """Facebook Login in front of the Graph fake: a code per consent, exchanged once for a
    short-lived token, which is exchanged for a long-lived one (the only one the API accepts)."""

    def __init__(self, graph: FakeGraph, secret: str):
        self.graph, self.secret = graph, secret
        self.business = {"id": "900", "name": "Acme Retail"}  # of the person who signs in
        self.codes: dict[str, str] = {}  # code: redirect_uri
        self.short: set[str] = set()
        self.ads_read = True  # whether the person granted it
        self.fail_exchange: Callable[[dict], Reply] | None = None
        api = graph.server.handle
        graph.server.handle = lambda r: self.token(r) if r.path.endswith("/oauth/access_token") else api(r)

    def consent(self, location: str) -> tuple[str, dict]:
        query = dict(parse_qsl(urlsplit(location).query))
        assert query["client_id"] == FB_APP_ID and query["response_type"] == "code"
        assert "ads_read" in query["scope"].split(",")
        code = f"AQD{uuid.uuid4().hex}{PLANT}"
        self.codes[code] = query["redirect_uri"]
        return query["redirect_uri"], {"code": code, "state": query["state"]}

    def token(self, request) -> Reply:
        q = request.query
        if (q.get("client_id"), q.get("client_secret")) != (FB_APP_ID, self.secret):
            return fb_error(101, "Error validating client secret.")
        if q.get("grant_type") == "fb_exchange_token":
            if q.get("fb_exchange_token") not in self.short:
                return fb_error(190, "Invalid OAuth access token.")
            token = f"EAALONG{uuid.uuid4().hex}"
            self.graph.add_login(token, ads_read=self.ads_read, businesses=[self.business])
            return Reply(body={"access_token": token, "token_type": "bearer", "expires_in": 5183944})
        if self.fail_exchange:
            return self.fail_exchange(q)
        if self.codes.pop(q.get("code", ""), None) != q.get("redirect_uri"):
            return fb_error(100, "Invalid verification code format.", subcode=36009)
        token = f"EAASHORT{uuid.uuid4().hex}"
        self.short.add(token)
        return Reply(body={"access_token": token, "token_type": "bearer", "expires_in": 5400})

    def long_lived(self) -> list[str]:
        return [t for t in self.graph.logins if t.startswith("EAALONG")]


class GoogleAuth:
    """Google's authorization server in front of the Ads fake: codes bound to the client, the
    redirect URI and the PKCE challenge, exchanged once for a refresh token."""

    def __init__(self, google: FakeGoogleAds, secret: str):
        self.google, self.secret = google, secret
        self.codes: dict[str, tuple[str, str]] = {}  # code: (redirect_uri, challenge)
        self.fail_exchange: Callable[[dict], Reply] | None = None
        api = google.server.handle
        google.server.handle = lambda r: (
            self.token(r.form())
            if r.path == "/token" and r.form().get("grant_type") == "authorization_code"
            else api(r)
        )

    def consent(self, location: str) -> tuple[str, dict]:
        query = dict(parse_qsl(urlsplit(location).query))
        assert query["client_id"] == GOOGLE_CLIENT_ID and query["response_type"] == "code"
        assert (query["scope"], query["access_type"], query["code_challenge_method"]) == (ADWORDS, "offline", "S256")
        code = f"4/0A{uuid.uuid4().hex}{PLANT}"
        self.codes[code] = (query["redirect_uri"], query["code_challenge"])
        return query["redirect_uri"], {"code": code, "scope": ADWORDS, "state": query["state"]}

    def token(self, form: dict) -> Reply:
        if (form.get("client_id"), form.get("client_secret")) != (GOOGLE_CLIENT_ID, self.secret):
            return Reply(401, {"error": "invalid_client", "error_description": "Unauthorized"})
        if self.fail_exchange:
            return self.fail_exchange(form)
        redirect_uri, challenge = self.codes.pop(form.get("code", ""), ("", ""))
        if redirect_uri != form.get("redirect_uri") or code_challenge(form.get("code_verifier", "")) != challenge:
            return Reply(400, {"error": "invalid_grant", "error_description": "Bad Request"})
        refresh_token = f"1//0{uuid.uuid4().hex}"
        self.google.add_client(GOOGLE_CLIENT_ID, self.secret, refresh_token)
        return Reply(
            body={
                "access_token": f"ya29.{uuid.uuid4().hex}",
                "expires_in": 3599,
                "refresh_token": refresh_token,
                "scope": ADWORDS,
                "token_type": "Bearer",
            }
        )


@pytest.fixture
def fb_auth(graph, oauth_env):
    return FacebookAuth(graph, oauth_env["CONNBOT_FACEBOOK_APP_SECRET"])


@pytest.fixture
def google_auth(google, oauth_env):
    return GoogleAuth(google, oauth_env["CONNBOT_GOOGLE_CLIENT_SECRET"])


# --- helpers ---------------------------------------------------------------------------------------


def open_form(fake, user, source: str):
    user.command("/connections", "new", channel="C0DATA")
    picker = fake.wait_for(lambda: (m := fake.modal(user.id)) and m.callback_id == "connection.new.source" and m)
    return user.submit(picker, {"source": {"value": source}}).view


def button_url(view) -> str | None:
    for block in view.blocks:
        for element in block.get("elements") or ():
            if element.get("action_id") == "connection.sign_in":
                return element["url"]
    return None


def sign_in(browser, auth, view) -> Page:
    """Click the button, consent, come back: the callback's page."""
    start = browser(button_url(view))
    assert start.status == 302, start.text
    redirect_uri, answer = auth.consent(start.headers["Location"])
    return browser(f"{redirect_uri}?{urlencode(answer)}")


def connections(ctx) -> list[Connection]:
    with ctx.db.begin() as session:
        return session.scalars(select(Connection).order_by(Connection.id)).all()


def credentials(ctx, connection: Connection) -> dict:
    return ctx.vault.decrypt(connection.credentials).to_dict()


def view_ids(ctx) -> list[str | None]:
    with ctx.db.begin() as session:
        return session.scalars(select(OAuthState.view_id)).all()


def open_reconnect(fake, user, ctx, cid: int):
    user.command("/connections", str(cid), channel="C0DATA")
    user.click(fake.ephemerals(user.id)[-1], "connection.tab.settings")
    card = fake.wait_for(
        lambda: "Re-connect" in texts(fake.ephemerals(user.id)[-1].blocks) and fake.ephemerals(user.id)[-1]
    )
    user.click(card, "connection.reconnect")
    form = fake.wait_for(lambda: (m := fake.modal(user.id)) and m.callback_id == "connection.reconnect.submit" and m)
    fake.wait_for(lambda: form.id in view_ids(ctx))  # recorded once views.open has answered
    return form


# --- tests -----------------------------------------------------------------------------------------


def test_google_sign_in_makes_the_connection_with_pkce_and_updates_the_modal(
    fake, driver, browser, google_auth, app_ctx
):
    ada = driver.user("UADMIN")
    form = open_form(fake, ada, "google_ads")
    url = button_url(form)
    assert url.startswith(f"{PUBLIC_URL}/oauth/google_ads/start?state=")
    assert len(dict(parse_qsl(urlsplit(url).query))["state"]) >= 43
    assert ada.click(form, "connection.sign_in").ok  # Slack's block action for a URL button is acked

    start = browser(url)
    assert start.status == 302 and start.headers["Cache-Control"] == "no-store"
    location = start.headers["Location"]
    assert location.startswith("https://accounts.google.com/o/oauth2/v2/auth?")
    query = dict(parse_qsl(urlsplit(location).query))
    assert query["redirect_uri"] == f"{PUBLIC_URL}/oauth/google_ads/callback"
    assert query["prompt"] == "consent" and len(query["code_challenge"]) == 43
    redirect_uri, answer = google_auth.consent(location)
    page = browser(f"{redirect_uri}?{urlencode(answer)}")

    assert page.status == 200 and "Connected — you can close this tab" in page.text, page.text
    assert "Google Ads · Acme MCC is connected." in page.text
    wait_modal_text(fake, "UADMIN", "is connected")
    [connection] = connections(app_ctx)
    assert (connection.created_by, connection.business_account_id, connection.credentials_status) == (
        "UADMIN",
        "1111111111",
        "active",
    )
    stored = credentials(app_ctx, connection)
    assert stored["refresh_token"] in google_auth.google.clients[GOOGLE_CLIENT_ID].refresh_tokens
    assert stored["client_id"] == GOOGLE_CLIENT_ID
    fake.wait_for(lambda: fake.messages(fake.im("UADMIN").id))  # the card, as after a pasted token
    with app_ctx.db.begin() as session:
        assert session.scalars(select(AuditEvent.action).where(AuditEvent.action == "connection.create")).all()
        assert session.scalar(select(OAuthState.used_at)) is not None


def test_facebook_sign_in_keeps_the_long_lived_token_and_the_chosen_account_sync(
    fake, driver, browser, fb_auth, app_ctx
):
    fb_auth.business = {"id": "900", "name": '<b>Acme</b> & "Co"'}
    ada = driver.user("UADMIN")
    form = open_form(fake, ada, "facebook_ads")
    ada.choose(form, "value", "selected", block_id="sync_mode")  # sent at once: the button submits nothing
    start = browser(button_url(form))
    location = start.headers["Location"]
    assert location.startswith("https://www.facebook.com/v21.0/dialog/oauth?")
    assert "code_challenge" not in location  # Facebook's token flow has no PKCE
    redirect_uri, answer = fb_auth.consent(location)
    page = browser(f"{redirect_uri}?{urlencode(answer)}")

    assert page.status == 200, page.text
    assert "&lt;b&gt;Acme&lt;/b&gt; &amp; &quot;Co&quot;" in page.text and "<b>" not in page.text
    [connection] = connections(app_ctx)
    assert credentials(app_ctx, connection) == {"access_token": fb_auth.long_lived()[0]}
    assert connection.account_sync_mode == "selected"
    assert connection.business_account_name == '<b>Acme</b> & "Co"'


def test_reconnect_by_sign_in_keeps_the_login_customer_id(fake, driver, browser, google_auth, app_ctx, oauth_env):
    google_auth.google.add_client(GOOGLE_CLIENT_ID, oauth_env["CONNBOT_GOOGLE_CLIENT_SECRET"], "1//old")
    cid = make_connection(
        app_ctx,
        Actor.system(TEAM),
        "google_ads",
        {
            "refresh_token": "1//old",
            "client_id": GOOGLE_CLIENT_ID,
            "client_secret": oauth_env["CONNBOT_GOOGLE_CLIENT_SECRET"],
            "login_customer_id": "111-111-1111",
        },
    )
    form = open_reconnect(fake, driver.user("UADMIN"), app_ctx, cid)
    page = sign_in(browser, google_auth, form)

    assert page.status == 200 and "Re-connected" in page.text, page.text
    wait_modal_text(fake, "UADMIN", "Re-connected")
    [connection] = connections(app_ctx)
    stored = credentials(app_ctx, connection)
    assert stored["refresh_token"] != "1//old" and stored["login_customer_id"] == "111-111-1111"
    assert connection.last_authorized_by == "UADMIN"


def test_signing_in_as_another_business_needs_the_box_ticked_first(fake, driver, browser, fb_auth, app_ctx):
    fb_auth.graph.add_login("EAAOLD", businesses=[{"id": "900", "name": "Acme Retail"}])
    cid = make_connection(app_ctx, Actor.system(TEAM), "facebook_ads", {"access_token": "EAAOLD"})
    fb_auth.business = {"id": "901", "name": "Globex"}
    ada = driver.user("UADMIN")
    page = sign_in(browser, fb_auth, open_reconnect(fake, ada, app_ctx, cid))
    assert page.status == 400 and "Tick the box" in page.text, page.text
    assert credentials(app_ctx, connections(app_ctx)[0]) == {"access_token": "EAAOLD"}
    form = wait_modal_text(fake, "UADMIN", "Tick the box")
    ada.choose(form, "value", ["yes"], block_id="confirm_business")
    assert sign_in(browser, fb_auth, form).status == 200
    assert connections(app_ctx)[0].business_account_name == "Globex"


def test_signing_in_to_a_login_that_sees_no_accounts_needs_the_box_ticked_first(
    fake, driver, browser, fb_auth, app_ctx
):
    fb_auth.graph.add_login("EAAOLD", businesses=[{"id": "900", "name": "Acme Retail"}])
    cid = make_connection(app_ctx, Actor.system(TEAM), "facebook_ads", {"access_token": "EAAOLD"})
    fb_auth.graph.accounts = []  # the login about to sign in sees no ad account
    ada = driver.user("UADMIN")
    page = sign_in(browser, fb_auth, open_reconnect(fake, ada, app_ctx, cid))
    assert page.status == 400 and "sees no accounts" in page.text, page.text
    assert credentials(app_ctx, connections(app_ctx)[0]) == {"access_token": "EAAOLD"}
    form = wait_modal_text(fake, "UADMIN", "sees no accounts")
    ada.choose(form, "value", ["yes"], block_id="confirm_no_accounts")  # kept for the sign-in to come
    page = sign_in(browser, fb_auth, form)
    assert page.status == 200 and "see no accounts" in page.text, page.text
    assert credentials(app_ctx, connections(app_ctx)[0])["access_token"].startswith("EAALONG")


def test_expired_used_and_unknown_states_show_a_page_and_change_nothing(fake, driver, browser, fb_auth, app_ctx, clock):
    ada = driver.user("UADMIN")
    url = button_url(open_form(fake, ada, "facebook_ads"))
    clock.advance(minutes=11)
    expired = browser(url)
    assert expired.status == 400 and "expired" in expired.text
    assert browser(f"{PUBLIC_URL}/oauth/facebook_ads/start?state=made-up").status == 400
    assert connections(app_ctx) == []

    url = button_url(open_form(fake, ada, "facebook_ads"))
    redirect_uri, answer = fb_auth.consent(browser(url).headers["Location"])
    callback = f"{redirect_uri}?{urlencode(answer)}"
    assert browser(callback).status == 200
    again = browser(callback)  # a reload, or a replay
    assert again.status == 400 and "already used" in again.text
    wrong_source = browser(callback.replace("/facebook_ads/", "/google_ads/"))
    assert wrong_source.status == 400 and "not valid" in wrong_source.text
    assert len(connections(app_ctx)) == 1


def test_declined_consent_changes_nothing_and_the_button_still_works(fake, driver, browser, google_auth, app_ctx):
    ada = driver.user("UADMIN")
    form = open_form(fake, ada, "google_ads")
    redirect_uri, answer = google_auth.consent(browser(button_url(form)).headers["Location"])
    declined = browser(f"{redirect_uri}?{urlencode({'error': 'access_denied', 'state': answer['state']})}")
    assert declined.status == 400 and "did not give connbot access (access_denied)" in declined.text
    forged = browser(f"{redirect_uri}?{urlencode({'error': '<script>', 'state': answer['state']})}")
    assert "<script>" not in forged.text and "(no code)" in forged.text
    assert connections(app_ctx) == []
    assert sign_in(browser, google_auth, form).status == 200
    assert len(connections(app_ctx)) == 1


@pytest.mark.parametrize("source", ["google_ads", "facebook_ads"])
def test_a_failed_code_exchange_stores_nothing_and_offers_a_fresh_button(
    fake, driver, browser, fb_auth, google_auth, app_ctx, source
):
    auth = google_auth if source == "google_ads" else fb_auth
    auth.fail_exchange = lambda _: (
        Reply(400, {"error": "invalid_grant", "error_description": "Code <expired>"})
        if source == "google_ads"
        else fb_error(100, "This authorization code has expired. <Try again>", subcode=36007)
    )
    ada = driver.user("UADMIN")
    form = open_form(fake, ada, source)
    first_url = button_url(form)
    page = sign_in(browser, auth, form)
    assert page.status == 502 and "did not complete" in page.text and "expired" in page.text, page.text
    assert "<expired>" not in page.text and "<Try again>" not in page.text
    assert connections(app_ctx) == []
    shown = wait_modal_text(fake, "UADMIN", "did not complete")
    assert button_url(shown) not in (None, first_url)
    auth.fail_exchange = None
    assert sign_in(browser, auth, shown).status == 200  # the fresh button works


def test_a_failed_check_is_shown_like_for_a_pasted_token(fake, driver, browser, fb_auth, app_ctx):
    ada = driver.user("UADMIN")
    form = open_form(fake, ada, "facebook_ads")
    start = browser(button_url(form))
    redirect_uri, answer = fb_auth.consent(start.headers["Location"])
    fb_auth.ads_read = False  # unticked on the consent page
    page = browser(f"{redirect_uri}?{urlencode(answer)}")
    assert page.status == 400 and "lack a permission" in page.text, page.text
    wait_modal_text(fake, "UADMIN", "lack a permission")
    assert connections(app_ctx) == []


def test_closed_modal_the_user_is_told_in_a_dm(fake, driver, browser, fb_auth, app_ctx):
    ada = driver.user("UADMIN")
    form = open_form(fake, ada, "facebook_ads")
    fake.close_view(fake.modal("UADMIN"))
    assert sign_in(browser, fb_auth, form).status == 200
    dms = fake.wait_for(lambda: [m for m in fake.messages(fake.im("UADMIN").id) if "is connected" in (m.text or "")])
    assert "Facebook Ads · Acme Retail is connected." in dms[0].text
    fake.clear_records()  # the refused views.update is the behaviour under test


def test_without_a_client_id_there_is_no_button_and_start_answers_404(fake, driver, browser, app_ctx, monkeypatch):
    monkeypatch.delenv("CONNBOT_GOOGLE_CLIENT_ID")
    ada = driver.user("UADMIN")
    form = open_form(fake, ada, "google_ads")
    assert button_url(form) is None and "dispatch_action" not in texts(form.blocks)
    assert "refresh_token" in texts(form.blocks)  # pasting remains
    page = browser(f"{PUBLIC_URL}/oauth/google_ads/start?state=anything")
    assert page.status == 404 and "Sign-in is not set up" in page.text
    assert browser(f"{PUBLIC_URL}/oauth/demo/start?state=x").status == 404
    assert button_url(open_form(fake, ada, "facebook_ads"))  # the other source is unaffected
    with app_ctx.db.begin() as session:
        assert (
            session.scalar(select(func.count()).select_from(OAuthState).where(OAuthState.source == "google_ads")) == 0
        )


def test_planted_secrets_and_codes_never_show(fake, driver, browser, fb_auth, google_auth, app_ctx, caplog, json_log):
    caplog.set_level(logging.DEBUG)
    ada = driver.user("UADMIN")
    pages = [sign_in(browser, google_auth, open_form(fake, ada, "google_ads"))]
    pages.append(sign_in(browser, fb_auth, open_form(fake, ada, "facebook_ads")))
    fb_auth.fail_exchange = lambda query: fb_error(100, f"Invalid code {query['code']}")  # quoting the code
    pages.append(sign_in(browser, fb_auth, open_form(fake, ada, "facebook_ads")))
    assert [p.status for p in pages] == [200, 200, 502]
    fake.wait_for(lambda: len(fake.messages(fake.im("UADMIN").id)) == 2)
    assert PLANT not in texts([p.text for p in pages] + [list(p.headers.values()) for p in pages])
    assert PLANT not in texts([c.args for c in fake.calls()])
    assert PLANT not in caplog.text
    assert json_log.records() and PLANT not in json_log.text  # CONNBOT_LOG_FORMAT=json
    assert_not_stored(app_ctx, PLANT)
