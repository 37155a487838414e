"""Make a new connection, Re-connect, Delete connection, roles and the audit trail, through
signed Slack requests and the fake Web API."""

import logging
import threading
from dataclasses import replace

import pytest
from sqlalchemy import select, text

from sources.base import Credentials
from storage.models import AuditEvent, Connection
from support import assert_not_stored, shown, texts, wait_modal_text

PLANT = "4242424242"  # a unique number planted in typed secrets


def open_form(fake, user):
    """`/connections new`, choosing the demo source if a picker shows."""
    user.command("/connections", "new", channel="C0DATA")
    view = fake.wait_for(lambda: fake.modal(user.id))
    if view.callback_id == "connection.new.source":
        user.submit(view, {"source": {"value": "demo"}})
        view = fake.modal(user.id)
    assert view.callback_id == "connection.new.credentials"
    return view


def audit_rows(ctx):
    with ctx.db.begin() as session:
        return session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()


def test_make_a_new_connection_checks_then_stores_and_sends_the_card(fake, driver, app_ctx):
    ada = driver.user("UADMIN")
    view = open_form(fake, ada)
    result = ada.submit(
        view, {"token": {"value": "demo:business=globex,accounts=7"}, "sync_mode": {"value": "selected"}}
    )
    assert result.ok and "is connected" in texts(result.view.blocks)  # a quick check answers in the ack
    dm = fake.wait_for(lambda: fake.messages(fake.im("UADMIN").id))
    assert "Globex" in texts(dm[-1].blocks)
    with app_ctx.db.begin() as session:
        c = session.scalars(select(Connection)).one()
        assert (c.business_account_name, c.account_sync_mode, c.credentials_status) == (
            "Globex Travel",
            "selected",
            "active",
        )
        assert c.created_by == "UADMIN"
    fake.wait_for(lambda: [r for r in audit_rows(app_ctx) if r.action == "accounts.sync"] or _synced(app_ctx))
    # The card in the DM is brought up to date by the first sync, in place.
    fake.wait_for(lambda: "of 7" in texts(fake.messages(fake.im("UADMIN").id)[-1].blocks))
    assert len(fake.messages(fake.im("UADMIN").id)) == 1
    assert "Extract is unavailable" not in texts(fake.messages(fake.im("UADMIN").id)[-1].blocks)


def _synced(ctx):
    with ctx.db.begin() as session:
        return session.execute(text("select count(*) from accounts")).scalar() == 7


@pytest.mark.parametrize(
    "token, reason",
    [
        ("demo-expired", "do not work"),
        ("demo-noperm", "lack a permission"),
        ("nonsense", "do not work"),
    ],
)
def test_failed_check_returns_to_the_form_with_the_reason_and_stores_nothing(fake, driver, app_ctx, token, reason):
    ada = driver.user("UADMIN")
    ada.submit(open_form(fake, ada), {"token": {"value": token}})
    wait_modal_text(fake, "UADMIN", reason)
    assert fake.modal("UADMIN").callback_id == "connection.new.credentials"  # back on the form
    with app_ctx.db.begin() as session:
        assert session.scalars(select(Connection)).all() == []


def test_transient_check_says_try_again_not_invalid(fake, driver, app_ctx, monkeypatch):
    import operations.connections

    monkeypatch.setattr(operations.connections, "CHECK_RETRIES", 0)  # the platform keeps refusing
    ada = driver.user("UADMIN")
    ada.submit(open_form(fake, ada), {"token": {"value": "demo-flaky"}})
    view = wait_modal_text(fake, "UADMIN", "Nothing was saved; try again in a moment")
    assert "do not work" not in shown(view)


def test_a_rate_limited_check_is_retried_once(fake, driver, app_ctx):
    ada = driver.user("UADMIN")
    ada.submit(open_form(fake, ada), {"token": {"value": "demo-flaky"}})  # every first request refused
    wait_modal_text(fake, "UADMIN", "is connected")
    with app_ctx.db.begin() as session:
        assert len(session.scalars(select(Connection)).all()) == 1


def test_empty_or_control_characters_are_refused_inline(fake, driver):
    ada = driver.user("UADMIN")
    view = open_form(fake, ada)
    result = ada.submit(view, {"token": {"value": "demo\x07"}})
    assert "control characters" in result.view.errors.get("token", "")


def test_viewer_and_operator_cannot_make_connections_and_are_told_who_can(fake, driver, services, app_ctx):
    services.ctx.settings = replace(services.ctx.settings, operators=("UOPS",))
    for user in ("UOPS", "UVIEW"):
        driver.user(user).command("/connections", "new", channel="C0DATA")
        note = fake.wait_for(lambda user=user: [m for m in fake.ephemerals(user) if "admin role" in m.visible_text])
        assert "workspace admins" in note[-1].visible_text
        assert fake.modal(user) is None
    refusals = [r for r in audit_rows(app_ctx) if r.outcome == "refused"]
    assert {r.user_id for r in refusals} == {"UOPS", "UVIEW"}


def test_configured_admin_group(fake, driver, services, connect):
    fake.add_usergroup("S0ADMINS", ["UVIEW"])
    services.ctx.settings = replace(services.ctx.settings, admins=("S0ADMINS",))
    open_form(fake, driver.user("UVIEW"))  # a group member is an admin now
    driver.user("UADMIN").command("/connections", "new", channel="C0DATA")  # workspace admin no longer is
    fake.wait_for(lambda: [m for m in fake.ephemerals("UADMIN") if "<!subteam^S0ADMINS>" in texts(m.blocks)])


def _open_settings(fake, user, cid, channel="C0DATA"):
    user.command("/connections", str(cid), channel=channel)
    user.click(fake.ephemerals(user.id)[-1], "connection.tab.settings")
    return fake.wait_for(
        lambda: "Delete connection" in texts(fake.ephemerals(user.id)[-1].blocks) and fake.ephemerals(user.id)[-1]
    )


def test_reconnect_replaces_credentials_only_after_they_pass(fake, driver, connect, app_ctx):
    cid = connect("demo:business=acme,accounts=5")
    with app_ctx.db.begin() as session:
        c = session.get(Connection, cid)
        c.credentials = app_ctx.vault.encrypt(Credentials({"token": "demo-expired:business=acme"}))
        c.credentials_status, c.credentials_error_code = "error", "token_expired"
    ada = driver.user("UADMIN")
    card = _open_settings(fake, ada, cid)
    ada.click(card, "connection.reconnect", block_id="settings_actions")
    form = fake.wait_for(lambda: fake.modal("UADMIN"))
    assert "In use now" in texts(form.blocks)
    assert all(b.get("element", {}).get("initial_value") is None for b in form.blocks)  # never pre-filled
    ada.submit(form, {"token": {"value": "demo-expired:business=acme"}})
    wait_modal_text(fake, "UADMIN", "do not work")
    with app_ctx.db.begin() as session:
        assert app_ctx.vault.decrypt(session.get(Connection, cid).credentials)["token"] == "demo-expired:business=acme"
    ada.submit(fake.modal("UADMIN"), {"token": {"value": "demo:business=acme,accounts=5"}})
    wait_modal_text(fake, "UADMIN", "Re-connected")
    with app_ctx.db.begin() as session:
        c = session.get(Connection, cid)
        assert (c.credentials_status, c.auth_failures, c.last_authorized_by) == ("active", 0, "UADMIN")


def test_reconnect_to_another_business_account_needs_explicit_confirmation(fake, driver, connect, app_ctx):
    cid = connect("demo:business=acme,accounts=3")
    ada = driver.user("UADMIN")
    ada.click(_open_settings(fake, ada, cid), "connection.reconnect")
    form = fake.wait_for(lambda: fake.modal("UADMIN"))
    ada.submit(form, {"token": {"value": "demo:business=hooli,accounts=3"}})
    view = wait_modal_text(fake, "UADMIN", "Tick the box to confirm")
    with app_ctx.db.begin() as session:
        assert session.get(Connection, cid).business_account_name == "Acme Retail"
    ada.submit(view, {"token": {"value": "demo:business=hooli,accounts=3"}, "confirm_business": {"value": ["yes"]}})
    wait_modal_text(fake, "UADMIN", "Re-connected")
    with app_ctx.db.begin() as session:
        switched = session.get(Connection, cid)
        assert switched.business_account_name.startswith("Hooli") and switched.title == "Demo Ads · Hooli Media"
    ada.command("/connections", "acme", channel="C0DATA")  # searched by the business it reads now
    assert "No connection matches" in texts(fake.ephemerals("UADMIN")[-1].blocks)


def test_reconnect_to_a_login_that_sees_no_accounts_needs_explicit_confirmation(fake, driver, connect, app_ctx):
    cid = connect("demo:business=acme,accounts=3")
    ada = driver.user("UADMIN")
    ada.click(_open_settings(fake, ada, cid), "connection.reconnect")
    form = fake.wait_for(lambda: fake.modal("UADMIN"))
    assert "confirm_no_accounts" not in texts(form.blocks)  # asked only when it applies
    ada.submit(form, {"token": {"value": "demo-empty:business=acme"}})
    view = wait_modal_text(fake, "UADMIN", "login sees no accounts")
    assert "tick the box to save it anyway" in shown(view)
    with app_ctx.db.begin() as session:  # nothing saved
        assert (
            app_ctx.vault.decrypt(session.get(Connection, cid).credentials)["token"] == "demo:business=acme,accounts=3"
        )
    ada.submit(view, {"token": {"value": "demo-empty:business=acme"}, "confirm_no_accounts": {"value": ["yes"]}})
    done = wait_modal_text(fake, "UADMIN", "Re-connected")
    assert "they see no accounts" in shown(done)  # said in the result too
    with app_ctx.db.begin() as session:
        assert app_ctx.vault.decrypt(session.get(Connection, cid).credentials)["token"] == "demo-empty:business=acme"
    (event,) = [e for e in audit_rows(app_ctx) if e.action == "connection.reconnect"]
    assert event.details["sees_no_accounts"] is True


def test_reconnect_to_a_login_with_accounts_is_not_asked_about_them(fake, driver, connect, app_ctx):
    cid = connect("demo:business=acme,accounts=3")
    ada = driver.user("UADMIN")
    ada.click(_open_settings(fake, ada, cid), "connection.reconnect")
    ada.submit(fake.wait_for(lambda: fake.modal("UADMIN")), {"token": {"value": "demo:business=acme,accounts=4"}})
    done = wait_modal_text(fake, "UADMIN", "Re-connected")
    assert "no accounts" not in shown(done)


def _break(app_ctx, cid, token="demo-expired:business=acme"):
    with app_ctx.db.begin() as session:
        c = session.get(Connection, cid)
        c.credentials = app_ctx.vault.encrypt(Credentials({"token": token}))
        c.credentials_status, c.credentials_error_code = "error", "token_expired"


def test_reconnect_replaces_the_ephemeral_card_it_was_pressed_on(fake, driver, connect, app_ctx):
    cid = connect("demo:business=acme,accounts=5")
    _break(app_ctx, cid)
    ada = driver.user("UADMIN")
    card = _open_settings(fake, ada, cid)
    assert "Error" in card.visible_text
    shown, clicks = len(fake.ephemerals("UADMIN")), len(replacements(fake))  # clicks: the tabs pressed so far
    ada.click(card, "connection.reconnect", block_id="settings_actions")
    form = fake.wait_for(lambda: fake.modal("UADMIN"))
    ada.submit(form, {"token": {"value": "demo:business=acme,accounts=5"}})
    wait_modal_text(fake, "UADMIN", "Re-connected")
    # The card pressed on now shows the working credentials and the accounts the sync read.
    fake.wait_for(lambda: len(replacements(fake)) == clicks + 2, timeout=15)  # now, and after the sync
    assert "Active" in fake.live_message(card).visible_text and "Error" not in fake.live_message(card).visible_text
    assert len(fake.ephemerals("UADMIN")) == shown  # replaced in place, no second card beside it
    assert not [m for m in fake.ephemerals("UADMIN") if "out of date" in m.text]


def replacements(fake):
    return [c for c in fake.calls("response_url") if c.args.get("replace_original") in (True, "true")]


def test_a_card_that_can_no_longer_be_replaced_is_posted_anew_and_said_out_of_date(fake, driver, connect, app_ctx):
    cid = connect("demo:business=acme,accounts=5")
    _break(app_ctx, cid)
    ada = driver.user("UADMIN")
    card = _open_settings(fake, ada, cid)
    ada.click(card, "connection.reconnect", block_id="settings_actions")
    form = fake.wait_for(lambda: fake.modal("UADMIN"))
    fake.fail_next("response_url", error="expired_url", status=404, times=None)  # e.g. 30 minutes later
    ada.submit(form, {"token": {"value": "demo:business=acme,accounts=5"}})
    wait_modal_text(fake, "UADMIN", "Re-connected")
    note = fake.wait_for(
        lambda: [m for m in fake.ephemerals("UADMIN") if "pressed Re-connect on, above, is out of date" in m.text],
        timeout=15,
    )
    fresh = fake.wait_for(
        lambda: fake.ephemerals("UADMIN")[-1] if fake.ephemerals("UADMIN")[-1].ts != note[0].ts else None
    )
    assert "Active" in fresh.visible_text  # the current card follows the note
    assert "Error" in fake.live_message(card).visible_text  # the old one could not be touched
    fake.clear_faults()
    fake.clear_records()  # the refused response_url posts are the behaviour under test


def test_delete_confirms_destroys_credentials_keeps_audit_and_is_idempotent(fake, driver, connect, app_ctx):
    cid = connect()
    ada = driver.user("UADMIN")
    card = _open_settings(fake, ada, cid)
    ada.click(card, "connection.share")  # a second copy of the card, in the channel
    shared = fake.wait_for(lambda: fake.messages("C0DATA") and fake.messages("C0DATA")[-1])
    with pytest.raises(AssertionError, match="confirm"):
        ada.click(shared, "connection.delete")  # Slack's confirmation dialog comes first
    ada.click(shared, "connection.delete", confirm=True)
    fake.wait_for(lambda: "was deleted" in texts(fake.message("C0DATA", shared.ts).blocks))
    ada.click(card, "connection.delete", confirm=True)  # the other, older copy
    fake.wait_for(lambda: [m for m in fake.ephemerals("UADMIN") if "already deleted" in m.visible_text])
    with app_ctx.db.begin() as session:
        c = session.get(Connection, cid)
        assert c.credentials is None and c.deleted_by == "UADMIN"
    assert [r.action for r in audit_rows(app_ctx) if r.action == "connection.delete"] == ["connection.delete"]
    driver.user("UVIEW").command("/connections", channel="C0DATA")
    assert "No connections yet" in texts(fake.ephemerals("UVIEW")[-1].blocks)


def test_operator_cannot_delete(fake, driver, connect, app_ctx):
    cid = connect()
    otto = driver.user("UOPS")
    otto.click(_open_settings(fake, otto, cid), "connection.delete", confirm=True)
    fake.wait_for(lambda: [m for m in fake.ephemerals("UOPS") if "admin role to delete a connection" in m.visible_text])
    with app_ctx.db.begin() as session:
        assert session.get(Connection, cid).deleted_at is None


def test_a_planted_secret_never_leaves_the_vault(fake, driver, app_ctx, caplog, json_log):
    caplog.set_level(logging.DEBUG)
    ada = driver.user("UADMIN")
    token = f"demo:seed={PLANT},accounts=3"
    ada.submit(open_form(fake, ada), {"token": {"value": token}})
    wait_modal_text(fake, "UADMIN", "is connected")
    cid = fake.wait_for(lambda: _connection_id(app_ctx))
    ada.click(_open_settings(fake, ada, cid), "connection.reconnect")
    form = fake.wait_for(
        lambda: (
            fake.modal("UADMIN")
            and fake.modal("UADMIN").callback_id == "connection.reconnect.submit"
            and fake.modal("UADMIN")
        )
    )
    ada.submit(form, {"token": {"value": token}})
    wait_modal_text(fake, "UADMIN", "Re-connected")
    # Slack saw nothing: not in any call the app made
    assert PLANT not in texts([c.args for c in fake.calls()])
    assert PLANT not in caplog.text
    assert json_log.records() and PLANT not in json_log.text  # CONNBOT_LOG_FORMAT=json
    # the database holds it only encrypted
    assert_not_stored(app_ctx, PLANT)
    assert PLANT not in texts([r.details for r in audit_rows(app_ctx)])


def _connection_id(ctx):
    with ctx.db.begin() as session:
        return session.scalar(select(Connection.id))


@pytest.mark.parametrize("delivery", ["again", "at once"])
def test_the_same_new_connection_form_delivered_twice_makes_one_connection(fake, driver, app_ctx, delivery):
    import threading

    from storage.models import AccountSyncRun

    ada = driver.user("UADMIN")
    view = open_form(fake, ada)
    ada.fill(view, {"token": {"value": "demo:business=globex,accounts=7"}})
    payload = fake.view(view.id).to_api()

    def deliver_again():
        body = {
            **ada._base("view_submission"),
            "trigger_id": fake.issue_trigger("UADMIN"),
            "view": payload,
            "response_urls": [],
        }
        return driver._interactive("view_submission", body, "UADMIN")

    if delivery == "again":
        first, second = ada.submit(view), deliver_again()
    else:
        results = []
        threads = [
            threading.Thread(target=lambda f=f: results.append(f())) for f in (lambda: ada.submit(view), deliver_again)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        first, second = results
    assert first.ok and second.ok, (first.failure, second.failure)
    dm = fake.im("UADMIN").id
    fake.wait_for(lambda: fake.messages(dm))  # the new card

    def column(attribute):
        with app_ctx.db.begin() as session:
            return session.scalars(select(attribute)).all()

    assert len(column(Connection.id)) == 1
    fake.wait_for(lambda: column(AccountSyncRun.status) == ["succeeded"])
    assert len([row for row in audit_rows(app_ctx) if row.action == "connection.create"]) == 1
    assert len(fake.messages(dm)) == 1


def test_a_second_connection_to_the_same_business_account_is_made_knowingly(fake, driver, app_ctx, connect):
    first = connect("demo:business=globex,accounts=3")
    ada = driver.user("UADMIN")
    ada.submit(open_form(fake, ada), {"token": {"value": "demo:business=globex,accounts=7"}})
    wait_modal_text(fake, "UADMIN", f"connection {first} already reads this business account")
    fake.close_views("UADMIN")
    ada.submit(open_form(fake, ada), {"token": {"value": "demo:business=hooli,accounts=2"}})
    assert "already read" not in shown(wait_modal_text(fake, "UADMIN", "is connected"))
    fake.close_views("UADMIN")
    # A re-connect that switches to a business account another connection reads says so too.
    switched = connect("demo:business=umbrella,accounts=2")
    ada.click(_open_settings(fake, ada, switched), "connection.reconnect")
    form = fake.wait_for(lambda: fake.modal("UADMIN"))
    token = {"token": {"value": "demo:business=globex,accounts=2"}, "confirm_business": {"value": ["yes"]}}
    ada.submit(form, token)
    wait_modal_text(fake, "UADMIN", f"connections {first}, ")


def test_a_slow_check_whose_modal_slack_will_not_update_is_told_in_a_dm(fake, driver, app_ctx, monkeypatch):
    import bot.handlers.connect as connect_handlers

    monkeypatch.setattr(connect_handlers, "QUICK_CHECK_SECONDS", 0.0)  # every check answers "Checking…" first
    # The check waits until the submission has been acked: a busy machine could otherwise finish
    # it within the quick window and answer it inline.
    acked = threading.Event()
    finish_new = connect_handlers._finish_new
    monkeypatch.setattr(connect_handlers, "_finish_new", lambda *a: (acked.wait(30), finish_new(*a))[1])
    ada = driver.user("UADMIN")
    view = open_form(fake, ada)
    fake.fail_next("views.update", status=500, times=None)
    ada.submit(view, {"token": {"value": "demo-expired"}})
    acked.set()
    dm = fake.wait_for(lambda: fake.messages(fake.im("UADMIN").id), timeout=15)
    assert "do not work" in dm[-1].text
    fake.clear_faults()
    fake.clear_records()  # the refused updates are the behaviour under test


def test_a_delete_whose_channel_card_slack_will_not_update_is_told_to_the_admin(fake, driver, connect, app_ctx):
    cid = connect()
    ada = driver.user("UADMIN")
    ada.click(_open_settings(fake, ada, cid), "connection.share")
    shared = fake.wait_for(lambda: fake.messages("C0DATA") and fake.messages("C0DATA")[-1])
    fake.fail_next("chat.update", status=500, times=None)
    ada.click(shared, "connection.delete", confirm=True)
    note = fake.wait_for(
        lambda: [m for m in fake.ephemerals("UADMIN") if "did not accept the updated card" in m.visible_text],
        timeout=15,
    )
    assert note
    with app_ctx.db.begin() as session:
        assert session.get(Connection, cid).deleted_at is not None  # deleted all the same
    fake.clear_faults()
    fake.clear_records()  # the refused updates are the behaviour under test
