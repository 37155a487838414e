"""Credentials alerts, reminders, resolution in place, escalation threads and `@connbot status`."""

import logging
from datetime import timedelta

from sqlalchemy import select

from operations.auth import Actor, Role
from operations.connections import delete_connection, reconnect
from storage.models import Connection
from support import alerts_in, break_credentials, fix, texts


def test_one_alert_with_fix_buttons_then_resolved_in_place(fake, services, alerting, connect):
    cid = connect()
    break_credentials(alerting, cid)
    alert = fake.wait_for(lambda: alerts_in(fake) and alerts_in(fake)[-1])
    shown = texts(alert.blocks)
    assert "token_expired" in shown and f'"Connection:* {cid}' not in shown
    for action in ("connection.reconnect", "connection.open", "connection.escalate"):
        assert alert.find(action) is not None
    break_credentials(alerting, cid, times=1)  # still broken: no second alert
    services.alerts.flush()
    assert len(alerts_in(fake)) == 1

    fix(alerting, cid)
    fake.wait_for(lambda: "Resolved" in texts(fake.message("C0ALERT", alert.ts).blocks))
    updated = fake.message("C0ALERT", alert.ts)
    assert updated.find("connection.reconnect") is None and "<@UADMIN>" in texts(updated.blocks)
    replies = fake.wait_for(lambda: fake.thread("C0ALERT", alert.ts)[1:])
    assert "Resolved by <@UADMIN>" in replies[-1].text


def test_a_resolved_alert_keeps_the_business_account_it_fired_for(fake, services, alerting, connect):
    cid = connect("demo:business=acme,accounts=3")
    break_credentials(alerting, cid)
    alert = fake.wait_for(lambda: alerts_in(fake) and alerts_in(fake)[-1])
    assert "Acme Retail" in texts(alert.blocks)
    admin = Actor("T0FAKE001", "UADMIN", Role.ADMIN)
    reconnect(alerting, admin, cid, {"token": "demo:business=hooli,accounts=3"}, confirm_business_change=True)
    fake.wait_for(lambda: "Resolved" in texts(fake.message("C0ALERT", alert.ts).blocks))
    resolved = texts(fake.message("C0ALERT", alert.ts).blocks)
    assert "Acme Retail" in resolved and "Hooli" not in resolved


def test_a_resolution_slack_refuses_is_posted_by_a_later_flush(fake, services, alerting, connect):
    cid = connect()
    break_credentials(alerting, cid)
    alert = fake.wait_for(lambda: alerts_in(fake) and alerts_in(fake)[-1])
    fake.fail_next("chat.update", status=500, times=3)  # beyond the client's retries
    fix(alerting, cid)
    fake.wait_for(lambda: len([c for c in fake.calls("chat.update") if c.status == 500]) == 3, timeout=20)
    services.alerts.flush()
    fake.wait_for(lambda: "Resolved" in texts(fake.message("C0ALERT", alert.ts).blocks))
    assert fake.message("C0ALERT", alert.ts).find("connection.reconnect") is None
    fake.clear_records()  # the refused updates are the behaviour under test


def test_deleting_a_broken_connection_closes_its_alert_without_calling_it_fixed(fake, services, alerting, connect):
    cid = connect()
    break_credentials(alerting, cid)
    alert = fake.wait_for(lambda: alerts_in(fake) and alerts_in(fake)[-1])
    delete_connection(alerting, Actor("T0FAKE001", "UADMIN", Role.ADMIN), cid)
    fake.wait_for(lambda: "Closed" in texts(fake.message("C0ALERT", alert.ts).blocks))
    reply = fake.wait_for(lambda: fake.thread("C0ALERT", alert.ts)[1:])[-1]
    closed = fake.message("C0ALERT", alert.ts)
    for shown in (texts(closed.blocks), closed.text, reply.text):
        assert "Resolved" not in shown and "resolved" not in shown, shown
    assert "the connection was deleted by <@UADMIN>" in reply.text and closed.find("connection.reconnect") is None


def test_an_alert_for_a_public_channel_connbot_left_is_posted_after_joining_it(fake, services, alerting, connect):
    fake.channel("C0ALERT").bot_member = False
    cid = connect()
    break_credentials(alerting, cid)
    fake.wait_for(lambda: alerts_in(fake))
    assert fake.channel("C0ALERT").bot_member
    fake.clear_records()  # the refused first post is the behaviour under test


def _choose_alert_channel(fake, ada, cid, channel):
    ada.command("/connections", str(cid), channel="C0DATA")
    ada.click(fake.ephemerals("UADMIN")[-1], "connection.tab.settings")
    card = fake.wait_for(
        lambda: fake.ephemerals("UADMIN")[-1].find("connection.alert_channel") and fake.ephemerals("UADMIN")[-1]
    )
    return ada.choose(card, "connection.alert_channel", channel)


def test_an_alert_channel_connbot_cannot_post_to_is_refused_and_changes_nothing(fake, driver, app_ctx, connect):
    fake.add_channel("C0SECRET", "secret-oncall", private=True, bot_member=False)
    cid = connect()
    ada = driver.user("UADMIN")
    assert _choose_alert_channel(fake, ada, cid, "C0SECRET").ok
    note = fake.wait_for(lambda: [m for m in fake.ephemerals("UADMIN") if "/invite @connbot" in m.visible_text])
    assert "<#C0SECRET>" in note[-1].visible_text and "choose it again" in note[-1].visible_text
    assert _alert_channel(app_ctx, cid) is None

    assert _choose_alert_channel(fake, ada, cid, "C0QUIET").ok  # public: connbot joins it
    fake.wait_for(lambda: _alert_channel(app_ctx, cid) == "C0QUIET")
    assert fake.channel("C0QUIET").bot_member


def _alert_channel(ctx, cid):
    with ctx.db.begin() as session:
        return session.get(Connection, cid).alert_channel


def test_at_most_one_reminder_a_day_as_a_thread_reply(fake, services, alerting, connect, clock):
    cid = connect()
    break_credentials(alerting, cid)
    alert = fake.wait_for(lambda: alerts_in(fake) and alerts_in(fake)[-1])
    services.alerts.flush(clock.now() + timedelta(hours=5))
    assert fake.thread("C0ALERT", alert.ts)[1:] == []
    services.alerts.flush(clock.now() + timedelta(hours=25))
    services.alerts.flush(clock.now() + timedelta(hours=30))
    assert len(fake.thread("C0ALERT", alert.ts)[1:]) == 1
    services.alerts.flush(clock.now() + timedelta(hours=50))
    assert len(fake.thread("C0ALERT", alert.ts)[1:]) == 2


def test_an_alert_that_cannot_be_posted_is_logged_and_retried(fake, services, alerting, connect, caplog):
    fake.channel("C0ALERT").is_private = True  # connbot cannot join it: it must be invited
    fake.channel("C0ALERT").bot_member = False
    cid = connect()
    with caplog.at_level(logging.ERROR):
        break_credentials(alerting, cid)
        fake.wait_for(lambda: "could not be posted" in caplog.text)
    assert "channel_not_found" in caplog.text and "invite connbot" in caplog.text
    fake.clear_records()  # the refused post is the behaviour under test
    fake.channel("C0ALERT").bot_member = True
    services.alerts.flush()
    assert len(alerts_in(fake)) == 1


def test_escalation_thread_with_follow_ups(fake, driver, services, alerting, connect):
    cid = connect()
    break_credentials(alerting, cid)
    alert = fake.wait_for(lambda: alerts_in(fake) and alerts_in(fake)[-1])
    otto = driver.user("UOPS")
    otto.click(alert, "connection.escalate")
    modal = fake.wait_for(lambda: fake.modal("UOPS"))
    done = otto.submit(modal, {"reason": {"value": "Token expired, <!channel> nobody can re-connect"}}).view
    assert "Escalated in <#C0ESC>" in texts(done.blocks)
    thread = fake.wait_for(lambda: fake.messages("C0ESC") and fake.messages("C0ESC")[0])
    shown = texts(thread.blocks)
    assert "<!subteam^S0CSM>" in shown and "<@UOPS>" in shown
    reason_objects = [t for b in thread.blocks for t in [b.get("text")] if t and "nobody can re-connect" in t["text"]]
    assert all(t["type"] == "plain_text" for t in reason_objects)  # a typed <!channel> pings no one

    fix(alerting, cid)
    replies = fake.wait_for(lambda: [m for m in fake.thread("C0ESC", thread.ts)[1:] if "Re-connected" in m.text])
    assert "credentials are fixed" in replies[-1].text
    otto.mention("C0ESC", f"<@U0FAKEBOT> status {cid}", thread_ts=thread.ts)
    card = fake.wait_for(lambda: [m for m in fake.thread("C0ESC", thread.ts) if m.find("connection.tab.orders")])
    assert card
    # One follow-up per event: the re-connect that fixed the credentials is not also "Resolved".
    fixed = [m.text for m in fake.thread("C0ESC", thread.ts)[1:] if "Re-connected" in m.text or "Resolved" in m.text]
    assert fixed == [replies[-1].text]
    delete_connection(alerting, Actor("T0FAKE001", "UADMIN", Role.ADMIN), cid)
    deleted = fake.wait_for(lambda: [m for m in fake.thread("C0ESC", thread.ts) if "deleted" in m.text])
    assert "deleted by <@UADMIN>" in deleted[-1].text


def test_two_escalations_at_once_open_one_thread_and_both_are_audited(fake, driver, alerting, connect):
    import threading

    from storage.models import AuditEvent, Escalation

    fake.add_user("UOPS2", "olga")
    cid = connect()
    break_credentials(alerting, cid)
    alert = fake.wait_for(lambda: alerts_in(fake) and alerts_in(fake)[-1])
    modals = {}
    for user_id in ("UOPS", "UOPS2"):
        driver.user(user_id).click(alert, "connection.escalate")
        modals[user_id] = fake.wait_for(lambda u=user_id: fake.modal(u))
    results = {}

    def submit(user_id):
        results[user_id] = driver.user(user_id).submit(modals[user_id], {"reason": {"value": f"help from {user_id}"}})

    threads = [threading.Thread(target=submit, args=(user_id,)) for user_id in modals]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(result.ok and "Escalated in" in texts(result.view.blocks) for result in results.values())
    roots = [m for m in fake.messages("C0ESC") if not m.is_reply]
    assert len(roots) == 1
    assert len(fake.thread("C0ESC", roots[0].ts)) == 2  # the second escalation is a reply in it
    with alerting.db.begin() as session:
        assert session.scalars(select(Escalation.thread_ts)).all() == [roots[0].ts]
        escalations = session.scalars(
            select(AuditEvent.user_id).where(AuditEvent.action == "connection.escalate")
        ).all()
    assert sorted(escalations) == ["UOPS", "UOPS2"]


def test_an_escalation_slack_refuses_frees_the_thread_for_the_next_try(fake, driver, alerting, connect):
    cid = connect()
    otto = driver.user("UOPS")
    otto.command("/connections", str(cid), channel="C0DATA")
    otto.click(fake.ephemerals("UOPS")[-1], "connection.tab.settings")
    card = fake.wait_for(
        lambda: fake.ephemerals("UOPS")[-1].find("connection.escalate") and fake.ephemerals("UOPS")[-1]
    )
    otto.click(card, "connection.escalate")
    modal = fake.wait_for(lambda: fake.modal("UOPS"))
    fake.fail_next("chat.postMessage", error="not_in_channel")
    refused = otto.submit(modal, {"reason": {"value": "first try"}})
    assert "invite connbot there" in texts(refused.view.errors)
    done = otto.submit(modal, {"reason": {"value": "second try"}}).view
    assert "Escalated in <#C0ESC>" in texts(done.blocks)
    assert len([m for m in fake.messages("C0ESC") if not m.is_reply]) == 1


def test_status_mention_answers_once_even_when_slack_retries(fake, driver, connect):
    cid = connect()
    asked = driver.user("UOPS").mention("C0DATA", f"<@U0FAKEBOT> status {cid}")
    question = fake.messages("C0DATA")[-1]
    fake.wait_for(lambda: fake.thread("C0DATA", question.ts)[1:])
    driver.retry(asked)
    driver.user("UOPS").mention("C0DATA", "<@U0FAKEBOT> status 999999")
    unknown = fake.messages("C0DATA")[-1]
    fake.wait_for(
        lambda: [m for m in fake.thread("C0DATA", unknown.ts) if "There is no connection 999999" in (m.text or "")]
    )
    replies = [m for m in fake.thread("C0DATA", question.ts)[1:] if m.find("connection.tab.orders")]
    assert len(replies) == 1
