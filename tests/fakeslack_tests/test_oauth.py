"""Installs through the fake Slack: the authorize page, `oauth.v2.access` as Slack documents it
(errors included), revoked tokens, `usergroups.list`, and external selects' options."""

from __future__ import annotations

import base64
import json
import urllib.request
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from fakeslack import AppDriver, SlackError, bolt_target

from .slackworld import ALICE, BOB, GENERAL, SECRET

REDIRECT = "https://app.example.com/slack/oauth_redirect"


@pytest.fixture
def app_client(fake) -> WebClient:
    fake.configure_oauth("111.222", "app-secret", redirect_urls=[REDIRECT], scopes=["chat:write", "commands"])
    return WebClient(base_url=fake.base_url)  # no token: the exchange authenticates the app


def _link(**query) -> str:
    base = {"client_id": "111.222", "scope": "chat:write,commands", "redirect_uri": REDIRECT, "state": "s1"}
    return "https://slack.com/oauth/v2/authorize?" + urlencode({**base, **query})


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_an_approved_install_gives_a_code_worth_one_bot_token(fake, app_client):
    back = fake.authorize(_link(), ALICE)
    assert back.startswith(REDIRECT + "?") and _query(back)["state"] == "s1"
    answer = app_client.oauth_v2_access(
        client_id="111.222", client_secret="app-secret", code=_query(back)["code"], redirect_uri=REDIRECT
    )
    assert answer["token_type"] == "bot" and answer["scope"] == "chat:write,commands"
    assert answer["team"] == {"id": fake.team.id, "name": fake.team.name}
    assert answer["authed_user"] == {"id": ALICE} and answer["is_enterprise_install"] is False
    installed = WebClient(token=answer["access_token"], base_url=fake.base_url)
    assert installed.auth_test()["team_id"] == fake.team.id
    assert "client_secret" not in fake.last("oauth.v2.access").args  # a secret is never recorded
    with pytest.raises(SlackApiError) as again:  # a code works once
        app_client.oauth_v2_access(client_id="111.222", client_secret="app-secret", code=_query(back)["code"])
    assert again.value.response["error"] == "invalid_code"


@pytest.mark.parametrize(
    "change, error",
    [
        ({"client_id": "999.999"}, "invalid_client_id"),
        ({"client_secret": "wrong"}, "bad_client_secret"),
        ({"redirect_uri": "https://elsewhere.example.com/cb"}, "bad_redirect_uri"),
        ({"code": "made-up"}, "invalid_code"),
        ({"grant_type": "refresh_token"}, "invalid_grant_type"),
    ],
)
def test_the_exchange_refuses_as_slack_documents(fake, app_client, change, error):
    code = _query(fake.authorize(_link(), ALICE))["code"]
    args = {"client_id": "111.222", "client_secret": "app-secret", "code": code, "redirect_uri": REDIRECT, **change}
    with pytest.raises(SlackApiError) as refused:
        app_client.oauth_v2_access(**args)
    assert refused.value.response.status_code == 200  # Slack's errors come as ok: false
    assert refused.value.response.data == {"ok": False, "error": error}


def test_client_credentials_are_read_from_http_basic_auth(fake, app_client):
    code = _query(fake.authorize(_link(), ALICE))["code"]
    request = urllib.request.Request(
        fake.base_url + "oauth.v2.access",
        data=urlencode({"code": code, "redirect_uri": REDIRECT}).encode(),
        headers={"Authorization": "Basic " + base64.b64encode(b"111.222:app-secret").decode()},
    )
    with urllib.request.urlopen(request) as response:
        assert json.loads(response.read())["ok"] is True


def test_an_expired_code_is_refused(fake, fake_clock, app_client):
    code = _query(fake.authorize(_link(), ALICE))["code"]
    fake_clock.advance(fake.code_ttl + 1)
    with pytest.raises(SlackApiError) as refused:
        app_client.oauth_v2_access(client_id="111.222", client_secret="app-secret", code=code, redirect_uri=REDIRECT)
    assert refused.value.response["error"] == "invalid_code"


def test_the_authorize_page_refuses_what_the_app_did_not_configure_and_a_cancel_says_so(fake, app_client):
    for query, error in (
        ({"client_id": "999"}, "invalid_client_id"),
        ({"redirect_uri": "https://elsewhere.example.com/cb"}, "bad_redirect_uri"),
        ({"scope": "chat:write,admin"}, "invalid_scope"),
    ):
        with pytest.raises(SlackError) as refused:
            fake.authorize(_link(**query), ALICE)
        assert refused.value.error == error
    assert _query(fake.authorize(_link(), ALICE, approve=False)) == {"error": "access_denied", "state": "s1"}


def test_an_uninstalled_apps_tokens_are_revoked(fake, client):
    fake.uninstall(fake.team.id)
    with pytest.raises(SlackApiError) as refused:
        client.chat_postMessage(channel=GENERAL, text="still here?")
    assert refused.value.response["error"] == "token_revoked"


def test_usergroups_list_shows_the_teams_enabled_groups(fake, client):
    fake.add_usergroup("S0CSM", [ALICE, BOB], handle="csm", name="Customer Success")
    fake.add_usergroup("S0OLD", [BOB], handle="old", disabled=True)
    fake.add_team("T0OTHER")
    fake.add_usergroup("S0THEIRS", [], team_id="T0OTHER")
    groups = client.usergroups_list()["usergroups"]
    assert [(g["id"], g["handle"], g["name"]) for g in groups] == [("S0CSM", "csm", "Customer Success")]
    assert "users" not in groups[0]
    full = client.usergroups_list(include_disabled=True, include_users=True, include_count=True)["usergroups"]
    assert [(g["id"], g.get("users"), g["user_count"], g["date_delete"] > 0) for g in full] == [
        ("S0CSM", [ALICE, BOB], 2, False),
        ("S0OLD", [BOB], 1, True),
    ]


def test_suggest_asks_the_app_for_an_external_selects_options(fake, client):
    from slack_bolt import App

    app = App(signing_secret=SECRET, client=client)
    asked = []

    @app.options("group")
    def options(ack, body):
        asked.append(body["value"])
        ack(options=[{"text": {"type": "plain_text", "text": "@csm"}, "value": "S0CSM"}])

    opened = client.views_open(
        trigger_id=fake.issue_trigger(ALICE),
        view={
            "type": "modal",
            "title": {"type": "plain_text", "text": "Settings"},
            "submit": {"type": "plain_text", "text": "Save"},
            "blocks": [
                {
                    "type": "input",
                    "block_id": "csm",
                    "label": {"type": "plain_text", "text": "CSM group"},
                    "element": {"type": "external_select", "action_id": "group", "min_query_length": 0},
                }
            ],
        },
    )
    alice = AppDriver(fake, bolt_target(app), signing_secret=SECRET).user(ALICE)
    view = fake.view(opened["view"]["id"])
    found = alice.suggest(view, "csm", "cs")
    assert found == [{"text": {"type": "plain_text", "text": "@csm"}, "value": "S0CSM"}] and asked == ["cs"]
    alice.fill(view, {"csm": {"group": found[0]}})
    assert view.state_values()["csm"]["group"]["selected_option"]["value"] == "S0CSM"


def test_with_token_rotation_bot_tokens_expire_and_each_refresh_token_renews_once(fake):
    fake.configure_oauth(
        "111.222", "app-secret", redirect_urls=[REDIRECT], scopes=["chat:write", "commands"], token_rotation=True
    )
    fake.token_ttl = 3600.0
    app = WebClient(base_url=fake.base_url)

    def renew(refresh_token: str, secret: str = "app-secret"):
        return app.oauth_v2_access(
            client_id="111.222", client_secret=secret, grant_type="refresh_token", refresh_token=refresh_token
        )

    code = _query(fake.authorize(_link(), ALICE))["code"]
    first = app.oauth_v2_access(client_id="111.222", client_secret="app-secret", code=code, redirect_uri=REDIRECT)
    assert first["access_token"].startswith("xoxe.xoxb-") and first["expires_in"] == 3600
    assert first["refresh_token"].startswith("xoxe-1-")

    renewed = renew(first["refresh_token"])
    assert renewed["access_token"] != first["access_token"] and renewed["refresh_token"] != first["refresh_token"]
    assert renewed["team"]["id"] == fake.team.id and renewed["token_type"] == "bot"
    assert "refresh_token" not in fake.last("oauth.v2.access").args  # a secret is never recorded
    with pytest.raises(SlackApiError) as used:  # a refresh token works once
        renew(first["refresh_token"])
    assert used.value.response.data == {"ok": False, "error": "invalid_refresh_token"}
    with pytest.raises(SlackApiError) as wrong:
        renew(renewed["refresh_token"], "wrong")
    assert wrong.value.response.data == {"ok": False, "error": "bad_client_secret"}

    old = WebClient(token=first["access_token"], base_url=fake.base_url)
    assert old.auth_test()["ok"]  # the old bot token lasts until it expires
    fake.token_ttl = 0.0  # tokens issued from now on are already expired
    expired = renew(renewed["refresh_token"])
    with pytest.raises(SlackApiError) as late:
        WebClient(token=expired["access_token"], base_url=fake.base_url).auth_test()
    assert late.value.response.data["error"] == "token_expired"

    fake.uninstall(fake.team.id)  # an uninstall revokes the refresh tokens too
    with pytest.raises(SlackApiError) as gone:
        renew(expired["refresh_token"])
    assert gone.value.response.data["error"] == "invalid_refresh_token"
