"""The Web API side, driven with slack_sdk's real WebClient as an app would."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from types import SimpleNamespace

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import builtin_handlers
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from fakeslack import FakeSlack

from .slackworld import ALICE, BOB, GENERAL, OPS, RANDOM


def pt(text):
    return {"type": "plain_text", "text": text}


def section(text):
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def modal(title="Settings", **extra):
    return {"type": "modal", "title": pt(title), "blocks": [section("Hello")], **extra}


def slack_error(excinfo) -> str:
    return excinfo.value.response["error"]


# --- auth and request checking -------------------------------------------------------
def test_auth_test_names_team_user_and_bot(fake, client):
    r = client.auth_test()
    assert (r["team_id"], r["user_id"], r["bot_id"]) == (
        fake.team.id,
        fake.team.bot_user_id,
        fake.team.bot_id,
    )


def test_every_answer_lists_the_tokens_scopes_as_slack_does(fake, client):
    from fakeslack.models import DEFAULT_SCOPES

    assert client.auth_test().headers["x-oauth-scopes"] == ",".join(DEFAULT_SCOPES)
    narrow = fake.add_team("T0NARROW", bot_token="xoxb-narrow", scopes=("commands", "chat:write"))
    other = WebClient(token=narrow.bot_token, base_url=fake.base_url)
    assert other.auth_test().headers["x-oauth-scopes"] == "commands,chat:write"
    with pytest.raises(SlackApiError) as err:
        other.chat_postMessage(channel="C0NOWHERE", text="x")
    assert err.value.response.headers["x-oauth-scopes"] == "commands,chat:write"  # refusals too


def test_bad_token_is_invalid_auth(fake):
    bad = WebClient(token="xoxb-wrong", base_url=fake.base_url)
    with pytest.raises(SlackApiError) as err:
        bad.auth_test()
    assert slack_error(err) == "invalid_auth"
    with pytest.raises(SlackApiError) as err:
        WebClient(base_url=fake.base_url).chat_postMessage(channel=GENERAL, text="x")
    assert slack_error(err) == "not_authed"
    fake.clear_records()


def test_token_in_form_body_is_accepted(fake):
    body = f"token={fake.team.bot_token}&channel={GENERAL}&text=hi".encode()
    req = urllib.request.Request(
        fake.base_url + "chat.postMessage",
        data=body,
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    with urllib.request.urlopen(req) as resp:
        assert b'"ok": true' in resp.read()
    assert fake.last("chat.postMessage").transport == "form"


def test_unknown_method(fake, client):
    with pytest.raises(SlackApiError) as err:
        client.api_call("chat.postMesage", json={"channel": GENERAL, "text": "x"})
    assert slack_error(err) == "unknown_method"
    assert [c.error for c in fake.errors()] == ["unknown_method"]
    fake.clear_records()


def test_unknown_argument_is_rejected_to_catch_typos(fake, client):
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel=GENERAL, text="x", thread_tss="123.456")
    assert slack_error(err) == "invalid_arg_name"
    assert err.value.response["response_metadata"]["messages"] == ["[ERROR] unknown argument: thread_tss"]
    assert fake.messages(GENERAL) == []
    fake.clear_records()


def test_missing_required_argument(fake, client):
    with pytest.raises(SlackApiError) as err:
        client.api_call("chat.update", json={"channel": GENERAL, "text": "x"})
    assert slack_error(err) == "invalid_arguments"
    assert "[ERROR] missing required field: ts" in err.value.response["response_metadata"]["messages"]
    fake.clear_records()


def test_json_body_to_a_form_only_method_is_refused(fake, client):
    with pytest.raises(SlackApiError) as err:
        client.api_call("users.info", json={"user": ALICE})
    assert slack_error(err) == "invalid_arguments"
    assert client.users_info(user=ALICE)["ok"]  # slack_sdk sends it as query parameters
    fake.clear_records()


def test_retired_method(fake, client):
    with pytest.raises(SlackApiError) as err, pytest.warns(UserWarning, match="deprecated"):
        client.api_call("workflows.stepCompleted", json={"workflow_step_execute_id": "1"})
    assert slack_error(err) == "method_deprecated"
    fake.clear_records()


def test_known_but_unimplemented_method_says_so_and_can_be_added(fake, client):
    with pytest.raises(SlackApiError) as err:
        client.reactions_add(channel=GENERAL, name="tada", timestamp="1.2")
    assert slack_error(err) == "fakeslack_not_implemented"
    fake.clear_records()
    fake.on("reactions.add", lambda fake, team, args: {"ok": True})
    assert client.reactions_add(channel=GENERAL, name="tada", timestamp="1.2")["ok"]
    with pytest.raises(ValueError):
        fake.on("reactions.ad", lambda *a: {})


# --- chat -----------------------------------------------------------------------------------
def test_post_message_returns_ts_channel_message_and_is_stored(fake, client):
    blocks = [section("Connection *Ads*")]
    r = client.chat_postMessage(channel=GENERAL, text="Ads", blocks=blocks)
    assert r["channel"] == GENERAL and r["ts"] == r["message"]["ts"]
    assert r["message"]["bot_id"] == fake.team.bot_id and r["message"]["text"] == "Ads"
    assert r["message"]["blocks"][0]["block_id"]  # Slack fills in missing block_ids
    [msg] = fake.messages(GENERAL)
    assert (msg.ts, msg.text, msg.raw_blocks) == (r["ts"], "Ads", blocks)
    assert "Connection *Ads*" in msg.visible_text
    call = fake.last("chat.postMessage")
    assert call.args["blocks"] == blocks and call.transport == "json" and call.ok


def test_post_by_channel_name_and_form_encoding(fake, client):
    r = client.api_call(
        "chat.postMessage", data={"channel": "#general", "text": "form", "blocks": '[{"type": "divider"}]'}
    )
    assert r["channel"] == GENERAL
    assert fake.last("chat.postMessage").args["blocks"] == [{"type": "divider"}]  # decoded for tests
    assert fake.messages(GENERAL)[0].blocks[0]["type"] == "divider"


def test_timestamps_are_unique_and_increasing(fake, client):
    ts = [client.chat_postMessage(channel=GENERAL, text=str(i))["ts"] for i in range(5)]
    assert ts == sorted(ts) and len(set(ts)) == 5


def test_thread_replies_and_broadcast(fake, client):
    parent = client.chat_postMessage(channel=GENERAL, text="parent")["ts"]
    client.chat_postMessage(channel=GENERAL, text="quiet reply", thread_ts=parent)
    client.chat_postMessage(channel=GENERAL, text="loud reply", thread_ts=parent, reply_broadcast=True)
    assert [m.text for m in fake.messages(GENERAL)] == ["parent", "loud reply"]
    assert [m.text for m in fake.thread(GENERAL, parent)] == ["parent", "quiet reply", "loud reply"]
    replies = client.conversations_replies(channel=GENERAL, ts=parent)
    assert [m["text"] for m in replies["messages"]] == ["parent", "quiet reply", "loud reply"]
    assert replies["messages"][0]["reply_count"] == 2
    page = client.conversations_replies(channel=GENERAL, ts=parent, limit=2)
    assert page["has_more"] and len(page["messages"]) == 2
    rest = client.conversations_replies(channel=GENERAL, ts=parent, cursor=page["response_metadata"]["next_cursor"])
    assert [m["text"] for m in rest["messages"]] == ["loud reply"]


def test_reply_to_unknown_thread(fake, client):
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel=GENERAL, text="x", thread_ts="1.000001")
    assert slack_error(err) == "thread_not_found"
    with pytest.raises(SlackApiError) as err:
        client.conversations_replies(channel=GENERAL, ts="1.000001")
    assert slack_error(err) == "thread_not_found"


def test_update_keeps_ts_records_edit_and_keeps_blocks_when_omitted(fake, client):
    ts = client.chat_postMessage(channel=GENERAL, text="v1", blocks=[section("one")])["ts"]
    r = client.chat_update(channel=GENERAL, ts=ts, text="v2")
    assert r["ts"] == ts and r["text"] == "v2"
    msg = fake.message(GENERAL, ts)
    assert msg.text == "v2" and msg.blocks[0]["text"]["text"] == "one"  # blocks kept
    assert msg.edited["user"] == fake.team.bot_user_id and msg.versions[0]["text"] == "v1"
    client.chat_update(channel=GENERAL, ts=ts, text="v3", blocks=[])
    assert fake.message(GENERAL, ts).blocks == []


def test_update_errors(fake, client):
    alice_says = fake.post_message(fake.channel(GENERAL), fake.team, text="mine", user=ALICE)
    with pytest.raises(SlackApiError) as err:
        client.chat_update(channel=GENERAL, ts=alice_says.ts, text="edited")
    assert slack_error(err) == "cant_update_message"
    with pytest.raises(SlackApiError) as err:
        client.chat_update(channel=GENERAL, ts="1.000001", text="edited")
    assert slack_error(err) == "message_not_found"


def test_ephemeral_messages_cannot_be_updated(fake, client):
    ts = client.chat_postEphemeral(channel=GENERAL, user=ALICE, text="only you")["message_ts"]
    with pytest.raises(SlackApiError) as err:
        client.chat_update(channel=GENERAL, ts=ts, text="edited")
    assert slack_error(err) == "message_not_found"


def test_update_text_over_4000_is_msg_too_long_and_a_violation(fake, client):
    ts = client.chat_postMessage(channel=GENERAL, text="short")["ts"]
    with pytest.raises(SlackApiError) as err:
        client.chat_update(channel=GENERAL, ts=ts, text="x" * 4_001)
    assert slack_error(err) == "msg_too_long"
    assert [v.source for v in fake.violations] == ["chat.update"]
    fake.clear_records()


def test_delete(fake, client):
    ts = client.chat_postMessage(channel=GENERAL, text="bye")["ts"]
    assert client.chat_delete(channel=GENERAL, ts=ts)["ok"]
    assert fake.messages(GENERAL) == [] and fake.messages(GENERAL, include_deleted=True)[0].deleted
    with pytest.raises(SlackApiError) as err:
        client.chat_delete(channel=GENERAL, ts=ts)
    assert slack_error(err) == "message_not_found"


def test_post_ephemeral(fake, client):
    r = client.chat_postEphemeral(channel=GENERAL, user=ALICE, text="psst", blocks=[section("psst")])
    [eph] = fake.ephemerals(ALICE)
    assert eph.ts == r["message_ts"] and eph.ephemeral and eph.recipient == ALICE
    assert fake.ephemerals(BOB) == [] and fake.messages(GENERAL) == []
    with pytest.raises(SlackApiError) as err:
        client.chat_postEphemeral(channel=OPS, user=BOB, text="not for bob")
    assert slack_error(err) == "user_not_in_channel"
    with pytest.raises(SlackApiError) as err:
        client.chat_postEphemeral(channel=GENERAL, user="U404", text="nobody")
    assert slack_error(err) == "user_not_found"


def test_permalink(fake, client):
    ts = client.chat_postMessage(channel=GENERAL, text="x")["ts"]
    link = client.chat_getPermalink(channel=GENERAL, message_ts=ts)["permalink"]
    assert link == f"https://{fake.team.domain}.slack.com/archives/{GENERAL}/p{ts.replace('.', '')}"
    reply = client.chat_postMessage(channel=GENERAL, text="r", thread_ts=ts)["ts"]
    assert f"thread_ts={ts}" in client.chat_getPermalink(channel=GENERAL, message_ts=reply)["permalink"]


# --- channels --------------------------------------------------------------------------------
def test_not_in_channel_and_channel_not_found(fake, client):
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel=RANDOM, text="x")
    assert slack_error(err) == "not_in_channel"
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel="C404", text="x")
    assert slack_error(err) == "channel_not_found"


def test_join_then_post(fake, client):
    assert client.conversations_join(channel=RANDOM)["channel"]["id"] == RANDOM
    assert client.chat_postMessage(channel=RANDOM, text="hello")["ok"]
    again = client.conversations_join(channel=RANDOM)
    assert again["warning"] == "already_in_channel"


def test_private_channel_the_bot_is_not_in_is_invisible(fake, client):
    fake.add_channel("C09SECRET", "secret", private=True, bot_member=False, members=[ALICE])
    for call in (
        lambda: client.conversations_info(channel="C09SECRET"),
        lambda: client.chat_postMessage(channel="C09SECRET", text="x"),
        lambda: client.conversations_join(channel="C09SECRET"),
    ):
        with pytest.raises(SlackApiError) as err:
            call()
        assert slack_error(err) == "channel_not_found"


def test_chat_write_public_allows_posting_without_joining(fake_clock):
    with FakeSlack(chat_write_public=True, clock=fake_clock, wall=fake_clock) as fake:
        fake.add_channel(RANDOM, "random", bot_member=False)
        client = WebClient(token=fake.team.bot_token, base_url=fake.base_url)
        assert client.chat_postMessage(channel=RANDOM, text="x")["ok"]


def test_conversations_info(fake, client):
    info = client.conversations_info(channel=OPS, include_num_members=True)["channel"]
    assert info["is_private"] and info["name"] == "ops" and info["num_members"] == 1
    assert client.conversations_info(channel=GENERAL)["channel"]["is_member"]


def test_direct_message_by_user_id(fake, client):
    r = client.chat_postMessage(channel=ALICE, text="dm")
    assert r["channel"].startswith("D") and fake.messages(r["channel"])[0].text == "dm"
    assert client.conversations_open(users=ALICE)["channel"]["id"] == r["channel"]


# --- users -------------------------------------------------------------------------------------
def test_users_info(fake, client):
    user = client.users_info(user=ALICE)["user"]
    assert (user["name"], user["is_admin"], user["tz"], user["tz_offset"]) == (
        "alice",
        True,
        "Europe/Paris",
        3600,
    )
    assert client.users_info(user=BOB)["user"]["is_admin"] is False
    with pytest.raises(SlackApiError) as err:
        client.users_info(user="U404")
    assert slack_error(err) == "user_not_found"


def test_usergroups(fake, client):
    fake.add_usergroup("S01CSM", [ALICE, BOB], handle="csm")
    assert client.usergroups_users_list(usergroup="S01CSM")["users"] == [ALICE, BOB]
    with pytest.raises(SlackApiError) as err:
        client.usergroups_users_list(usergroup="S404")
    assert slack_error(err) == "no_such_subteam"


def test_teams_are_isolated(fake, client):
    other = fake.add_team("T0OTHER", "other")
    fake.add_user("U9ZED", "zed", team_id=other.id)
    fake.add_channel("C9THEIRS", "theirs", team_id=other.id)
    theirs = WebClient(token=other.bot_token, base_url=fake.base_url)
    assert theirs.auth_test()["team_id"] == "T0OTHER"
    assert theirs.chat_postMessage(channel="C9THEIRS", text="x")["ok"]
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel="C9THEIRS", text="x")
    assert slack_error(err) == "channel_not_found"
    with pytest.raises(SlackApiError) as err:
        client.users_info(user="U9ZED")
    assert slack_error(err) == "user_not_found"


# --- views --------------------------------------------------------------------------------------
def test_views_open_needs_a_fresh_unused_trigger(fake, client, fake_clock):
    trigger = fake.issue_trigger(ALICE)
    view = client.views_open(trigger_id=trigger, view=modal(external_id="settings-1"))["view"]
    assert view["id"] and view["hash"] and view["root_view_id"] == view["id"]
    assert fake.modal(ALICE).id == view["id"] and fake.modal(BOB) is None
    with pytest.raises(SlackApiError) as err:
        client.views_open(trigger_id=trigger, view=modal())
    assert slack_error(err) == "exchanged_trigger_id"
    late = fake.issue_trigger(ALICE)
    fake_clock.advance(3.01)
    with pytest.raises(SlackApiError) as err:
        client.views_open(trigger_id=late, view=modal())
    assert slack_error(err) == "expired_trigger_id"
    with pytest.raises(SlackApiError) as err:
        client.views_open(trigger_id="123.456.abc", view=modal())
    assert slack_error(err) == "invalid_trigger_id"
    assert {c.error for c in fake.errors()} == {
        "exchanged_trigger_id",
        "expired_trigger_id",
        "invalid_trigger_id",
    }
    fake.clear_records()


def test_trigger_is_valid_just_under_three_seconds(fake, client, fake_clock):
    trigger = fake.issue_trigger(ALICE)
    fake_clock.advance(2.99)
    assert client.views_open(trigger_id=trigger, view=modal())["ok"]


def test_view_ids_are_never_reused_by_another_fake(fake, client, fake_clock):
    """Slack's view ids are unique for good: a console started again must not reuse them (a
    form's view id is the idempotency key of what it makes)."""
    first = client.views_open(trigger_id=fake.issue_trigger(ALICE), view=modal())["view"]["id"]
    with FakeSlack(clock=fake_clock, wall=fake_clock) as again:
        again.add_user(ALICE, "alice")
        other = WebClient(token=again.team.bot_token, base_url=again.base_url)
        assert other.views_open(trigger_id=again.issue_trigger(ALICE), view=modal())["view"]["id"] != first


def test_views_update_with_hash_conflict_and_external_id(fake, client):
    view = client.views_open(trigger_id=fake.issue_trigger(ALICE), view=modal(external_id="ext-1"))["view"]
    updated = client.views_update(view_id=view["id"], hash=view["hash"], view=modal("Step 2"))["view"]
    assert updated["id"] == view["id"] and updated["hash"] != view["hash"]
    with pytest.raises(SlackApiError) as err:  # a stale hash: someone updated it in between
        client.views_update(view_id=view["id"], hash=view["hash"], view=modal("Step 3"))
    assert slack_error(err) == "hash_conflict"
    by_ext = client.views_update(external_id="ext-1", view=modal("By ext"))["view"]
    assert by_ext["id"] == view["id"] and fake.view(view["id"]).title == "By ext"
    with pytest.raises(SlackApiError) as err:
        client.views_update(view_id="V404", view=modal())
    assert slack_error(err) == "not_found"


def test_views_push_stack_limit(fake, client):
    root = client.views_open(trigger_id=fake.issue_trigger(ALICE), view=modal("One"))["view"]
    second = client.views_push(trigger_id=fake.issue_trigger(ALICE), view=modal("Two"))["view"]
    assert second["previous_view_id"] == root["id"] and second["root_view_id"] == root["id"]
    client.views_push(trigger_id=fake.issue_trigger(ALICE), view=modal("Three"))
    with pytest.raises(SlackApiError) as err:
        client.views_push(trigger_id=fake.issue_trigger(ALICE), view=modal("Four"))
    assert slack_error(err) == "push_limit_reached"
    assert [v.title for v in fake.views(ALICE)] == ["One", "Two", "Three"]


def test_views_publish_home_per_user(fake, client):
    home = {"type": "home", "blocks": [section("Welcome")]}
    first = client.views_publish(user_id=ALICE, view=home)["view"]
    assert fake.home(ALICE).id == first["id"] and fake.home(BOB) is None
    again = client.views_publish(user_id=ALICE, view={**home, "blocks": [section("Again")]}, hash=first["hash"])
    assert again["view"]["id"] == first["id"] and "Again" in fake.home(ALICE).visible_text
    with pytest.raises(SlackApiError) as err:
        client.views_publish(user_id=ALICE, view=home, hash=first["hash"])
    assert slack_error(err) == "hash_conflict"
    with pytest.raises(SlackApiError) as err:
        client.views_publish(user_id=ALICE, view=modal())
    assert slack_error(err) == "invalid_arguments"
    fake.clear_records()


def test_invalid_view_is_invalid_arguments_and_a_violation(fake, client):
    with pytest.raises(SlackApiError) as err:
        client.views_open(trigger_id=fake.issue_trigger(ALICE), view=modal("A modal title that is too long"))
    assert slack_error(err) == "invalid_arguments"
    assert err.value.response["response_metadata"]["messages"] == [
        "[ERROR] must be less than 25 characters [json-pointer:/view/title/text]"
    ]
    [violation] = fake.violations
    assert violation.source == "views.open"
    with pytest.raises(AssertionError, match="Block Kit violation"):
        fake.assert_clean()
    fake.clear_records()


# --- Block Kit limits through the API ----------------------------------------------------------
def test_too_many_blocks_is_invalid_blocks_and_a_violation(fake, client):
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel=GENERAL, text="x", blocks=[section("b")] * 51)
    assert slack_error(err) == "invalid_blocks"
    assert err.value.response["response_metadata"]["messages"] == [
        "[ERROR] must provide no more than 50 items [json-pointer:/blocks]"
    ]
    assert fake.messages(GENERAL) == [] and len(fake.violations) == 1
    fake.clear_records()


def test_ephemeral_and_update_are_checked_too(fake, client):
    ts = client.chat_postMessage(channel=GENERAL, text="ok")["ts"]
    long_button = [{"type": "actions", "elements": [{"type": "button", "action_id": "b", "text": pt("x" * 76)}]}]
    for call in (
        lambda: client.chat_postEphemeral(channel=GENERAL, user=ALICE, text="x", blocks=long_button),
        lambda: client.chat_update(channel=GENERAL, ts=ts, text="x", blocks=long_button),
    ):
        with pytest.raises(SlackApiError) as err:
            call()
        assert slack_error(err) == "invalid_blocks"
    assert [v.source for v in fake.violations] == ["chat.postEphemeral", "chat.update"]
    fake.clear_records()


def test_no_text_no_blocks(fake, client):
    with pytest.raises(SlackApiError) as err, pytest.warns(UserWarning, match="text"):
        client.chat_postMessage(channel=GENERAL)
    assert slack_error(err) == "no_text"
    fake.clear_records()


# --- fault injection ---------------------------------------------------------------------------
def test_ratelimited_429_with_retry_after_is_honoured_by_the_retry_handler(fake, client, monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(builtin_handlers, "time", SimpleNamespace(sleep=slept.append))
    fake.fail_next("chat.update", "ratelimited", retry_after=2)
    ts = client.chat_postMessage(channel=GENERAL, text="v1")["ts"]
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=1))
    assert client.chat_update(channel=GENERAL, ts=ts, text="v2")["ok"]
    first, second = fake.calls("chat.update")
    assert (first.status, first.error, first.injected) == (429, "ratelimited", True)
    assert second.ok and fake.message(GENERAL, ts).text == "v2"
    assert len(slept) == 1 and 2 <= slept[0] < 3  # Retry-After: 2 (+ jitter below 1 s)


def test_ratelimited_without_retry_handler_raises(fake, client):
    fake.fail_next("chat.postMessage", "ratelimited")
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel=GENERAL, text="x")
    assert err.value.response.status_code == 429 and err.value.response.headers["Retry-After"] == "1"
    assert client.chat_postMessage(channel=GENERAL, text="x")["ok"]  # only the next call failed


def test_server_error_and_scripted_errors(fake, client):
    fake.fail_next("chat.postMessage", status=500)
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel=GENERAL, text="x")
    assert err.value.response.status_code == 500
    fake.fail_next("users.info", "user_not_found", times=2)
    for _ in range(2):
        with pytest.raises(SlackApiError):
            client.users_info(user=ALICE)
    assert client.users_info(user=ALICE)["ok"]
    fake.fail_next("*", "fatal_error", times=None)
    with pytest.raises(SlackApiError):
        client.auth_test()
    fake.clear_faults()
    assert client.auth_test()["ok"]


def test_delay_simulates_a_slow_slack(fake):
    fake.fail_next("chat.postMessage", delay=0.5)
    impatient = WebClient(token=fake.team.bot_token, base_url=fake.base_url, timeout=0.1)
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        impatient.chat_postMessage(channel=GENERAL, text="x")
    fake.wait_calls("chat.postMessage")  # still processed, late: a timeout is not a failure on Slack's side
    assert len(fake.messages(GENERAL)) == 1


# --- records and waiting -------------------------------------------------------------------------
def test_calls_and_last(fake, client):
    client.chat_postMessage(channel=GENERAL, text="a")
    client.chat_postMessage(channel=GENERAL, text="b")
    assert [c.args["text"] for c in fake.calls("chat.postMessage")] == ["a", "b"]
    assert fake.last("chat.postMessage").args["text"] == "b"
    assert fake.last("chat.postMessage").token == fake.team.bot_token
    with pytest.raises(LookupError, match="no views.open call"):
        fake.last("views.open")


def test_wait_calls_and_wait_for(fake, client):
    def later():
        time.sleep(0.05)
        client.chat_postMessage(channel=GENERAL, text="async")

    worker = threading.Thread(target=later)
    worker.start()
    [call] = fake.wait_calls("chat.postMessage", 1, timeout=5)
    assert call.args["text"] == "async"
    assert fake.wait_for(lambda: fake.messages(GENERAL))[0].text == "async"
    worker.join()
    with pytest.raises(TimeoutError, match="2 x chat.postMessage"):
        fake.wait_calls("chat.postMessage", 2, timeout=0.05)


def test_env_points_an_app_process_at_the_fake(fake):
    assert fake.env() == {"SLACK_API_URL": fake.base_url, "SLACK_BOT_TOKEN": fake.team.bot_token}
    assert fake.base_url.startswith("http://127.0.0.1:") and fake.base_url.endswith("/api/")
    assert "FakeSlack http://127.0.0.1:" in repr(fake)


def test_api_in_process(fake):
    assert fake.api("chat.postMessage", channel=GENERAL, text="direct")["ok"]
    assert fake.api("users.info", user=ALICE)["user"]["id"] == ALICE
    assert fake.messages(GENERAL)[0].text == "direct"


def test_base_url_needs_a_started_server():
    with pytest.raises(RuntimeError, match="not started"):
        _ = FakeSlack().base_url


def test_a_bug_in_the_fake_is_a_500_and_fails_assert_clean(fake, client):
    fake.on("reactions.add", lambda fake, team, args: 1 / 0)
    with pytest.raises(SlackApiError) as err:
        client.reactions_add(channel=GENERAL, name="tada", timestamp="1.2")
    assert err.value.response.status_code == 500
    assert "ZeroDivisionError" in fake.internal_errors[0]
    with pytest.raises(AssertionError, match="fakeslack internal error"):
        fake.assert_clean()
    fake.internal_errors.clear()
