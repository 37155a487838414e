"""The client side against a tiny real bolt App served in-process.

The app (``bolt_app`` in conftest) verifies signatures, acks, responds through
response_urls and calls the fake Web API with slack_sdk -- so these tests show
that what the driver sends is what bolt accepts, and that what the app answers
is shown the way Slack would show it.
"""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, urlencode

import pytest
from slack_sdk.signature import SignatureVerifier

from fakeslack import ConfirmationRequired, ElementNotFound, NotSubmittable, sign

from .slackworld import ALICE, BOB, GENERAL, OPS


# --- signing -------------------------------------------------------------------------------
def test_signature_matches_slack_sdk_verifier():
    body, ts = b"token=x&text=hello", str(int(time.time()))
    assert SignatureVerifier("s3cret").is_valid(body, ts, sign("s3cret", ts, body))
    assert not SignatureVerifier("other").is_valid(body, ts, sign("s3cret", ts, body))


def test_bolt_accepts_right_signature_and_rejects_wrong_or_stale(fake, driver):
    body = json.dumps({"type": "url_verification", "challenge": "c", "token": "t"}).encode()
    status, _, answer = driver.send_raw(body, "application/json")
    assert status == 200 and json.loads(answer)["challenge"] == "c"
    assert driver.send_raw(body, "application/json", secret="wrong-secret")[0] == 401
    stale = str(int(time.time()) - 600)  # bolt refuses timestamps more than 5 minutes old
    assert driver.send_raw(body, "application/json", timestamp=stale)[0] == 401
    assert fake.failures == []  # raw sends are not interactions


def test_url_verification(driver):
    assert driver.url_verification("abc123")


# --- slash commands ----------------------------------------------------------------------------
def test_slash_command_payload_and_ack_text_becomes_an_ephemeral(fake, alice, bolt_app):
    result = alice.command("/hello", "some text", channel=GENERAL)
    assert result.ok and result.status == 200
    [body] = bolt_app.seen["commands"]
    assert {
        k: body[k]
        for k in (
            "command",
            "text",
            "user_id",
            "user_name",
            "channel_id",
            "channel_name",
            "team_id",
            "team_domain",
            "api_app_id",
            "is_enterprise_install",
        )
    } == {
        "command": "/hello",
        "text": "some text",
        "user_id": ALICE,
        "user_name": "alice",
        "channel_id": GENERAL,
        "channel_name": "general",
        "team_id": fake.team.id,
        "team_domain": fake.team.domain,
        "api_app_id": fake.app_id,
        "is_enterprise_install": "false",
    }
    assert body["trigger_id"] == result.trigger_id and body["response_url"] == result.response_url
    [eph] = fake.ephemerals(ALICE, GENERAL)
    assert eph.text == f"Hello <@{ALICE}>" and result.message is eph
    assert fake.ephemerals(BOB) == [] and fake.messages(GENERAL) == []


def test_response_url_of_a_command_replaces_its_ack_message(fake, alice):
    from slack_sdk.webhook import WebhookClient

    result = alice.command("/hello", channel=GENERAL)
    WebhookClient(result.response_url).send(text="Updated", replace_original=True)
    assert [m.text for m in fake.ephemerals(ALICE)] == ["Updated"] and result.message.text == "Updated"


def test_in_channel_ack_posts_to_the_channel(fake, alice):
    alice.command("/announce", channel=GENERAL)
    assert [m.text for m in fake.messages(GENERAL)] == ["Announcement for everyone"]


def test_private_channel_command_needs_membership(fake, driver):
    with pytest.raises(ElementNotFound):
        driver.user(BOB).command("/hello", channel=OPS)
    assert driver.user(ALICE).command("/hello", channel=OPS).ok


def test_slow_ack_is_an_operation_timeout_failure(fake, alice):
    result = alice.command("/slow", channel=GENERAL)
    assert not result.ok and result.failure.kind == "operation_timeout"
    assert fake.ephemerals(ALICE) == []  # Slack stopped waiting: the late ack is not shown
    assert [f.kind for f in fake.failures] == ["operation_timeout"]
    fake.clear_records()


def test_crashing_listener_is_an_http_error_failure(fake, alice, caplog):
    result = alice.command("/boom", channel=GENERAL)
    assert result.status == 500 and result.failure.kind == "http_error"
    with pytest.raises(AssertionError, match="user-visible failure"):
        fake.assert_clean()
    fake.clear_records()


# --- block actions in messages ------------------------------------------------------------------
def open_menu(fake, alice):
    alice.command("/menu", channel=GENERAL)
    return fake.wait_for(lambda: [m for m in fake.ephemerals(ALICE) if m.blocks])[-1]


def test_click_updates_the_ephemeral_via_response_url(fake, alice, bolt_app):
    menu = open_menu(fake, alice)
    result = alice.click(menu, "sync")
    assert result.ok
    fake.wait_for(lambda: menu.text.startswith("Synced"))
    assert fake.ephemerals(ALICE) == [menu] and menu.text == "Synced connection 42" and menu.blocks is None
    [action_body] = bolt_app.seen["actions"]
    assert action_body["container"] == {
        "type": "message",
        "message_ts": menu.ts,
        "channel_id": GENERAL,
        "is_ephemeral": True,
    }
    assert "message" not in action_body  # Slack does not echo ephemeral content
    assert action_body["channel"] == {"id": GENERAL, "name": "general"}
    assert action_body["user"] == {"id": ALICE, "username": "alice", "name": "alice", "team_id": fake.team.id}
    assert action_body["team"] == {"id": fake.team.id, "domain": fake.team.domain}
    assert action_body["trigger_id"] == result.trigger_id and action_body["response_url"] == result.response_url
    [action] = action_body["actions"]
    assert {k: action[k] for k in ("action_id", "block_id", "type", "value", "style")} == {
        "action_id": "sync",
        "block_id": "menu",
        "type": "button",
        "value": "42",
        "style": "primary",
    }
    assert action["text"]["text"] == "Sync accounts" and action["action_ts"]


def test_click_on_a_channel_message_sends_the_message(fake, alice, bolt_app):
    alice.command("/post-menu", channel=GENERAL)
    msg = fake.wait_for(lambda: fake.messages(GENERAL))[0]
    alice.click(msg, "sync")
    fake.wait_for(lambda: msg.text.startswith("Synced"))
    body = bolt_app.seen["actions"][0]
    assert body["container"]["is_ephemeral"] is False and body["message"]["ts"] == msg.ts
    assert body["message"]["blocks"][1]["elements"][0]["action_id"] == "sync"


def test_clicking_what_is_not_rendered_fails_clearly(fake, alice):
    menu = open_menu(fake, alice)
    with pytest.raises(ElementNotFound, match=r"no element action_id='pause'.*rendered"):
        alice.click(menu, "pause")
    with pytest.raises(ElementNotFound, match="value='43'"):
        alice.click(menu, "sync", value="43")
    with pytest.raises(ElementNotFound, match="is a overflow"):
        alice.click(menu, "more")
    with pytest.raises(ElementNotFound, match="shown to"):
        alice.driver.user(BOB).click(menu, "sync")
    assert fake.calls("response_url")[-1].args["text"] == "Menu"  # nothing was sent


def test_confirm_dialog_must_be_accepted(fake, alice, bolt_app):
    menu = open_menu(fake, alice)
    with pytest.raises(ConfirmationRequired, match="Delete Ads"):
        alice.click(menu, "delete")
    with pytest.raises(AssertionError, match="no confirm dialog"):
        alice.click(menu, "sync", confirm=True)
    alice.click(menu, "delete", confirm=True)
    fake.wait_for(lambda: menu.deleted)
    assert fake.ephemerals(ALICE) == []
    [shown] = fake.confirmations
    assert (shown.title, shown.text, shown.confirm, shown.deny) == (
        "Delete Ads?",
        "This removes the connection.",
        "Delete",
        "Cancel",
    )


def test_overflow_choice(fake, alice, bolt_app):
    menu = open_menu(fake, alice)
    with pytest.raises(ElementNotFound, match="offers no option"):
        alice.choose(menu, "more", "nope")
    alice.choose(menu, "more", "archive")
    fake.wait_for(lambda: menu.text == "Chose archive")
    action = bolt_app.seen["actions"][0]["actions"][0]
    assert action["type"] == "overflow" and action["selected_option"] == {
        "text": {"type": "plain_text", "text": "Archive"},
        "value": "archive",
    }


def test_double_click_on_a_stale_copy(fake, alice, bolt_app):
    menu = open_menu(fake, alice)
    stale = menu.copy()
    alice.click(menu, "sync")
    fake.wait_for(lambda: menu.text.startswith("Synced"))
    with pytest.raises(ElementNotFound):
        alice.click(menu, "sync")  # the button is gone from what Alice sees now
    alice.click(stale, "sync")  # ...but a second click from the old render still arrives
    assert len(bolt_app.seen["actions"]) == 2


def test_each_interaction_gets_fresh_trigger_and_response_url(fake, alice):
    menu = open_menu(fake, alice)
    stale = menu.copy()
    first, second = alice.click(menu, "sync"), alice.click(stale, "sync")
    assert first.trigger_id != second.trigger_id and first.response_url != second.response_url
    fake.wait_calls("response_url", 3)


# --- modals ----------------------------------------------------------------------------------------
def open_modal(fake, alice):
    alice.command("/new", channel=GENERAL)
    return fake.wait_for(lambda: fake.modal(ALICE))


def test_modal_opened_with_trigger_then_submitted_with_errors_then_success(fake, alice, bolt_app):
    view = open_modal(fake, alice)
    assert view.title == "New connection" and fake.last("views.open").ok
    with pytest.raises(NotSubmittable, match="required input 'Name'"):
        alice.submit(view, {"kind": {"kind": "demo"}})
    result = alice.submit(view, {"name": {"name": "taken"}, "kind": {"kind": "demo"}})
    assert result.ok and result.view is view and view.errors == {"name": "That name is taken"}
    submitted = bolt_app.seen["submissions"][0]
    assert submitted["type"] == "view_submission" and submitted["view"]["id"] == view.id
    assert submitted["view"]["state"]["values"] == {
        "name": {"name": {"type": "plain_text_input", "value": "taken"}},
        "kind": {
            "kind": {
                "type": "static_select",
                "selected_option": {"text": {"type": "plain_text", "text": "Demo"}, "value": "demo"},
            }
        },
        "note": {"note": {"type": "plain_text_input", "value": None}},
    }
    result = alice.submit(view, {"name": {"name": "Ads EU"}})  # kind is still selected
    assert result.ok and result.view is None and view.closed and view.errors == {}
    fake.wait_for(lambda: fake.messages(GENERAL))
    assert fake.messages(GENERAL)[0].text == "Created Ads EU (demo)"


def test_client_side_validation_of_inputs(fake, alice):
    view = open_modal(fake, alice)
    with pytest.raises(NotSubmittable, match="at most 40"):
        alice.submit(view, {"name": {"name": "x" * 41}, "kind": {"kind": "demo"}})
    with pytest.raises(ElementNotFound, match="no input block 'nmae'"):
        alice.fill(view, {"nmae": {"name": "x"}})
    with pytest.raises(ElementNotFound, match="offers no option"):
        alice.fill(view, {"kind": {"kind": "google"}})


def test_response_action_push_update_and_clear(fake, alice):
    view = open_modal(fake, alice)
    alice.submit(view, {"name": {"name": "rename"}, "kind": {"kind": "demo"}})
    assert fake.modal(ALICE) is view and view.title == "Renamed"
    assert view.state_values()["name"]["name"]["value"] == "rename"  # input kept across the update
    alice.submit(view, {"name": {"name": "next"}})
    top = fake.modal(ALICE)
    assert top.title == "Step two" and top.previous_view_id == view.id
    assert [v.id for v in fake.views(ALICE)] == [view.id, top.id]
    alice.close(top)  # back to the first modal (no notify_on_close on step two)
    assert fake.modal(ALICE) is view
    alice.submit(view, {"name": {"name": "cancel all"}})
    assert fake.views(ALICE) == []


def test_invalid_response_action_view_is_a_failure_and_violation(fake, alice):
    view = open_modal(fake, alice)
    result = alice.submit(view, {"name": {"name": "too long title"}, "kind": {"kind": "demo"}})
    assert result.failure.kind == "invalid_response" and fake.modal(ALICE) is view
    assert [v.source for v in fake.violations] == ["response_action"]
    fake.clear_records()


def test_close_sends_view_closed_when_asked(fake, alice, bolt_app):
    view = open_modal(fake, alice)
    result = alice.close(view)
    assert result.ok and fake.modal(ALICE) is None
    [closed] = bolt_app.seen["closed"]
    assert closed["type"] == "view_closed" and closed["view"]["id"] == view.id and closed["is_cleared"] is False


def test_expired_trigger_when_the_app_is_too_slow(fake, alice):
    alice.command("/new-late", channel=GENERAL)
    call = fake.wait_calls("views.open")[0]
    assert call.error == "expired_trigger_id" and fake.modal(ALICE) is None
    assert [c.error for c in fake.errors()] == ["expired_trigger_id"]
    fake.clear_records()


def test_acting_on_a_closed_or_covered_view_fails(fake, alice):
    view = open_modal(fake, alice)
    alice.submit(view, {"name": {"name": "next"}, "kind": {"kind": "demo"}})
    with pytest.raises(ElementNotFound, match="not the modal on top"):
        alice.submit(view)
    alice.submit(fake.modal(ALICE))  # step two: empty ack closes it
    alice.close(view)
    with pytest.raises(ElementNotFound, match="no open modal"):
        alice.submit(view)


# --- events ------------------------------------------------------------------------------------------
def test_app_mention_delivered_and_retried(fake, alice, bolt_app):
    first = alice.mention(GENERAL, "status?")
    assert first.ok and first.payload["type"] == "event_callback"
    envelope = first.payload
    assert envelope["team_id"] == fake.team.id and envelope["api_app_id"] == fake.app_id
    assert envelope["event_id"].startswith("Ev") and isinstance(envelope["event_time"], int)
    event = envelope["event"]
    assert event["type"] == "app_mention" and event["text"] == f"<@{fake.team.bot_user_id}> status?"
    assert fake.messages(GENERAL)[0].user == ALICE  # the mention itself is in the channel
    retry = alice.driver.retry(first, reason="http_timeout")
    assert retry.ok and retry.body == first.body
    assert retry.headers["X-Slack-Retry-Num"] == "1" and retry.headers["X-Slack-Retry-Reason"] == "http_timeout"
    fake.wait_for(lambda: len(bolt_app.seen["events"]) == 2)
    (e1, n1), (e2, n2) = bolt_app.seen["events"]
    assert e1 == e2 and (n1, n2) == (None, "1")
    replies = fake.wait_for(lambda: fake.thread(GENERAL, event["ts"])[1:] or None)
    assert replies[0].text == "Hi!"


def test_app_home_opened_publishes_home(fake, alice):
    alice.open_home()
    home = fake.wait_for(lambda: fake.home(ALICE))
    assert home.type == "home" and "Welcome home" in home.visible_text
    assert fake.last("views.publish").args["user_id"] == ALICE
    event = alice.driver.interactions[-1].payload["event"]
    assert event["channel"] == fake.im(ALICE).id and event["tab"] == "home"


def test_interaction_bodies_are_form_encoded_payloads(fake, alice):
    menu = open_menu(fake, alice)
    result = alice.click(menu, "sync")
    assert result.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert json.loads(parse_qs(result.body.decode())["payload"][0]) == result.payload
    assert result.body == urlencode({"payload": json.dumps(result.payload)}).encode()
    fake.wait_calls("response_url", 2)


# --- every input type of a view_submission ----------------------------------------------------------
def _input(block_id, element, optional=False):
    return {
        "type": "input",
        "block_id": block_id,
        "label": {"type": "plain_text", "text": block_id},
        "optional": optional,
        "element": {"action_id": block_id, **element},
    }


def _opts(*values):
    return [{"text": {"type": "plain_text", "text": v.title()}, "value": v} for v in values]


ALL_INPUTS = {
    "type": "modal",
    "callback_id": "all_inputs",
    "title": {"type": "plain_text", "text": "Everything"},
    "submit": {"type": "plain_text", "text": "Save"},
    "blocks": [
        _input("text", {"type": "plain_text_input", "multiline": True}),
        _input("select", {"type": "static_select", "options": _opts("daily", "weekly")}),
        _input("multi", {"type": "multi_static_select", "options": _opts("a", "b", "c")}),
        _input("boxes", {"type": "checkboxes", "options": _opts("x", "y")}, optional=True),
        _input(
            "radio",
            {"type": "radio_buttons", "options": _opts("on", "off"), "initial_option": _opts("on", "off")[0]},
        ),
        _input("date", {"type": "datepicker"}),
        _input("time", {"type": "timepicker"}),
        _input(
            "number",
            {"type": "number_input", "is_decimal_allowed": False, "min_value": "1", "max_value": "31"},
        ),
    ],
}


def test_submit_every_input_type(fake, client, alice, bolt_app):
    client.views_open(trigger_id=fake.issue_trigger(ALICE), view=ALL_INPUTS)
    view = fake.modal(ALICE)
    with pytest.raises(NotSubmittable, match="at most 31"):
        alice.submit(
            view,
            {
                "text": {"text": "hi"},
                "select": {"select": "weekly"},
                "multi": {"multi": ["a"]},
                "date": {"date": "2026-01-31"},
                "time": {"time": "09:30"},
                "number": {"number": 40},
            },
        )
    result = alice.submit(view, {"number": {"number": 7}, "multi": {"multi": ["a", "c"]}})
    assert result.ok and view.closed
    values = bolt_app.seen["submissions"][0]["view"]["state"]["values"]
    assert values["text"]["text"] == {"type": "plain_text_input", "value": "hi"}
    assert values["select"]["select"]["selected_option"]["value"] == "weekly"
    assert [o["value"] for o in values["multi"]["multi"]["selected_options"]] == ["a", "c"]
    assert values["boxes"]["boxes"] == {"type": "checkboxes", "selected_options": []}
    assert values["radio"]["radio"]["selected_option"]["value"] == "on"  # initial option kept
    assert values["date"]["date"] == {"type": "datepicker", "selected_date": "2026-01-31"}
    assert values["time"]["time"] == {"type": "timepicker", "selected_time": "09:30"}
    assert values["number"]["number"] == {"type": "number_input", "value": "7"}


def test_optional_checkboxes_can_be_ticked(fake, client, alice, bolt_app):
    client.views_open(trigger_id=fake.issue_trigger(ALICE), view=ALL_INPUTS)
    alice.submit(
        None,
        {
            "text": {"text": "t"},
            "select": {"select": "daily"},
            "multi": {"multi": "b"},
            "boxes": {"boxes": ["x", "y"]},
            "date": {"date": "2026-02-01"},
            "time": {"time": "10:00"},
            "number": {"number": "2"},
        },
    )
    values = bolt_app.seen["submissions"][0]["view"]["state"]["values"]
    assert [o["value"] for o in values["boxes"]["boxes"]["selected_options"]] == ["x", "y"]


# --- block actions in modals and the Home tab --------------------------------------------------------
REFRESHABLE = {
    "type": "modal",
    "title": {"type": "plain_text", "text": "Accounts"},
    "blocks": [
        {
            "type": "actions",
            "block_id": "tools",
            "elements": [{"type": "button", "action_id": "refresh", "text": {"type": "plain_text", "text": "Refresh"}}],
        }
    ],
}


def test_button_in_a_modal_updates_the_view_with_its_hash(fake, client, alice, bolt_app):
    view = fake.view(client.views_open(trigger_id=fake.issue_trigger(ALICE), view=REFRESHABLE)["view"]["id"])
    result = alice.click(view, "refresh")
    assert result.ok and result.response_url is None
    body = bolt_app.seen["actions"][0]
    assert body["container"] == {"type": "view", "view_id": view.id}
    assert body["view"]["hash"] and "response_url" not in body and "channel" not in body
    update = fake.wait_calls("views.update")[0]
    assert update.ok and "Refreshed" in fake.modal(ALICE).visible_text


def test_button_on_the_home_tab(fake, client, alice, bolt_app):
    client.views_publish(user_id=ALICE, view={"type": "home", "blocks": REFRESHABLE["blocks"]})
    home = fake.home(ALICE)
    alice.click(home, "refresh")
    fake.wait_for(lambda: "Refreshed" in fake.home(ALICE).visible_text)
    assert bolt_app.seen["actions"][0]["view"]["type"] == "home"


def test_stale_view_hash_conflicts(fake, client, alice, bolt_app):
    view = fake.view(client.views_open(trigger_id=fake.issue_trigger(ALICE), view=REFRESHABLE)["view"]["id"])
    client.views_update(view_id=view.id, view=REFRESHABLE)  # someone else changed it first
    stale = view.to_api()["hash"]
    client.views_update(view_id=view.id, view=REFRESHABLE)
    with pytest.raises(Exception, match="hash_conflict"):
        client.views_update(view_id=view.id, hash=stale, view=REFRESHABLE)


def test_say_posts_as_the_person(fake, alice):
    msg = alice.say(GENERAL, "hello team")
    assert msg.user == ALICE and msg.bot_id is None and fake.messages(GENERAL) == [msg]
