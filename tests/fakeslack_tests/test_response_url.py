"""response_urls: 5 uses in 30 minutes, replace/delete the original, in_channel posts."""

from __future__ import annotations

import urllib.error
import urllib.request

from slack_sdk.webhook import WebhookClient

from .slackworld import ALICE, GENERAL


def post_menu(fake):
    return fake.post_message(
        fake.channel(GENERAL),
        fake.team,
        text="menu",
        blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "Pick one"}}],
    )


def test_replace_original_replaces_the_channel_message(fake):
    msg = post_menu(fake)
    hook = WebhookClient(fake.issue_response_url(ALICE, GENERAL, source=msg))
    assert hook.send(text="Done", replace_original=True).status_code == 200
    [shown] = fake.messages(GENERAL)
    assert shown is msg and shown.text == "Done" and shown.blocks is None and shown.edited


def test_replace_original_replaces_an_ephemeral(fake):
    eph = fake.post_ephemeral(fake.channel(GENERAL), fake.team, ALICE, text="only you")
    WebhookClient(fake.issue_response_url(ALICE, GENERAL, source=eph)).send(
        text="still only you", replace_original=True
    )
    assert [m.text for m in fake.ephemerals(ALICE)] == ["still only you"]
    assert fake.messages(GENERAL) == []


def test_default_is_a_new_ephemeral_and_in_channel_posts(fake):
    msg = post_menu(fake)
    hook = WebhookClient(fake.issue_response_url(ALICE, GENERAL, source=msg))
    hook.send(text="just for you")
    hook.send(text="for everyone", response_type="in_channel")
    assert [m.text for m in fake.ephemerals(ALICE)] == ["just for you"]
    assert [m.text for m in fake.messages(GENERAL)] == ["menu", "for everyone"]
    assert fake.messages(GENERAL)[1].bot_id == fake.team.bot_id


def test_delete_original(fake):
    msg = post_menu(fake)
    hook = WebhookClient(fake.issue_response_url(ALICE, GENERAL, source=msg))
    assert hook.send(delete_original=True).status_code == 200
    assert fake.messages(GENERAL) == [] and msg.deleted


def test_five_uses_then_used_url(fake):
    url = fake.issue_response_url(ALICE, GENERAL)
    hook = WebhookClient(url)
    assert [hook.send(text=str(i)).status_code for i in range(5)] == [200] * 5
    sixth = hook.send(text="6")
    assert sixth.status_code == 404 and '"used_url"' in sixth.body
    assert len(fake.ephemerals(ALICE)) == 5
    assert [c.error for c in fake.errors()] == ["used_url"]
    fake.clear_records()


def test_expires_after_30_minutes(fake, fake_clock):
    hook = WebhookClient(fake.issue_response_url(ALICE, GENERAL))
    fake_clock.advance(29 * 60)
    assert hook.send(text="in time").status_code == 200
    fake_clock.advance(61)
    late = hook.send(text="too late")
    assert late.status_code == 404 and '"expired_url"' in late.body
    fake.clear_records()


def test_blocks_are_checked_and_violations_recorded(fake):
    hook = WebhookClient(fake.issue_response_url(ALICE, GENERAL))
    response = hook.send(text="x", blocks=[{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}])
    assert response.status_code == 400 and "invalid_blocks" in response.body
    assert [v.source for v in fake.violations] == ["response_url"]
    assert fake.ephemerals(ALICE) == []
    fake.clear_records()


def test_unknown_field_is_rejected(fake):
    response = WebhookClient(fake.issue_response_url(ALICE, GENERAL)).send_dict({"text": "x", "replace_orginal": True})
    assert response.status_code == 400 and "invalid_arg_name" in response.body
    fake.clear_records()


def test_must_be_json(fake):
    url = fake.issue_response_url(ALICE, GENERAL)
    req = urllib.request.Request(
        url, data=b"text=hi", method="POST", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    try:
        urllib.request.urlopen(req)
        raise AssertionError("form body accepted")
    except urllib.error.HTTPError as err:
        assert err.code == 400
    fake.clear_records()


def test_posts_are_recorded_and_can_be_failed(fake):
    url = fake.issue_response_url(ALICE, GENERAL)
    fake.fail_next("response_url", status=500)
    assert WebhookClient(url).send(text="x").status_code == 500
    assert WebhookClient(url).send(text="y").status_code == 200
    assert [(c.status, c.args.get("text"), c.url) for c in fake.calls("response_url")] == [
        (500, "x", url),
        (200, "y", url),
    ]


def test_thread_ts_posts_into_a_thread(fake):
    msg = post_menu(fake)
    WebhookClient(fake.issue_response_url(ALICE, GENERAL)).send_dict(
        {"text": "in thread", "response_type": "in_channel", "thread_ts": msg.ts}
    )
    assert [m.text for m in fake.thread(GENERAL, msg.ts)] == ["menu", "in thread"]
