"""The workspace's settings in Slack: the App Home shows them (read-only to non-admins), admins
change them in the Settings modal, and the change applies at once: alerts, escalations and roles
use it without a restart. A non-admin cannot change them, whatever they send."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select

from bot.blocks.settings import settings_modal
from bot.ids import Action, SettingsField
from engine.account_sync import sync_accounts
from operations.workspaces import WorkspaceSettings, workspace_settings
from sources.base import Credentials
from storage.models import AuditEvent, Connection
from support import texts

TEAM = "T0FAKE001"


@pytest.fixture
def workspace(fake, app_ctx):
    fake.add_channel("C0ALERT", "oncall")
    fake.add_channel("C0ESC", "escalations", bot_member=False)  # public: connbot joins it
    fake.add_channel("C0PRIV", "secret-room", private=True, bot_member=False)  # connbot must be invited
    fake.add_usergroup("S0CSM", ["UADMIN"], handle="csm", name="Customer Success")
    fake.add_usergroup("S0LEADS", ["UOPS"], handle="data-leads", name="Data leads")
    # The server's defaults: no alert or escalation channel, admins are the workspace's.
    app_ctx.settings = replace(app_ctx.settings, alert_channel=None, escalation_channel=None, csm_group=None)
    return app_ctx


def home(fake, driver, user):
    driver.user(user).open_home()
    return fake.wait_for(
        lambda: fake.home(user) and "Workspace settings" in texts(fake.home(user).blocks) and fake.home(user)
    )


def open_settings(fake, driver, user="UADMIN"):
    driver.user(user).click(home(fake, driver, user), Action.WORKSPACE_SETTINGS)
    return fake.wait_for(lambda: fake.modal(user))


def audits(ctx, action):
    with ctx.db.begin() as session:
        return session.execute(
            select(AuditEvent.user_id, AuditEvent.outcome, AuditEvent.details).where(AuditEvent.action == action)
        ).all()


def test_admins_see_a_settings_button_and_others_read_the_settings(fake, driver, workspace):
    admin_home = home(fake, driver, "UADMIN")
    assert admin_home.find(Action.WORKSPACE_SETTINGS) is not None
    viewer_home = home(fake, driver, "UVIEW")
    assert viewer_home.find(Action.WORKSPACE_SETTINGS) is None
    shown = texts(viewer_home.blocks)
    assert "Only connbot admins can change them" in shown and "the workspace admins and owners" in shown
    assert "nobody has saved settings" in shown


def test_settings_saved_in_the_modal_apply_at_once(fake, driver, services, workspace, connect):
    ada, otto = driver.user("UADMIN"), driver.user("UOPS")
    otto.command("/connections", "new", channel="C0DATA")  # not an admin yet
    fake.wait_for(lambda: [m for m in fake.ephemerals("UOPS") if "admin role" in m.visible_text])

    modal = open_settings(fake, driver)
    csm = ada.suggest(modal, SettingsField.CSM_GROUP, "cust")
    leads = ada.suggest(modal, SettingsField.ADMIN_GROUPS, "")
    assert [o["value"] for o in csm] == ["S0CSM"] and [o["value"] for o in leads] == ["S0CSM", "S0LEADS"]
    result = ada.submit(
        modal,
        {
            SettingsField.ALERT_CHANNEL: {SettingsField.ALERT_CHANNEL: "C0ALERT"},
            SettingsField.ESCALATION_CHANNEL: {SettingsField.ESCALATION_CHANNEL: "C0ESC"},
            SettingsField.CSM_GROUP: {Action.USER_GROUPS: csm[0]},
            SettingsField.ADMINS: {SettingsField.ADMINS: ["UADMIN"]},
            SettingsField.ADMIN_GROUPS: {Action.USER_GROUPS: [leads[1]]},
        },
    )
    assert result.ok and result.view is None  # saved and closed
    assert fake.channel("C0ESC").bot_member  # joined, so escalations can be posted there
    saved = workspace_settings(workspace, TEAM)
    assert (saved.alert_channel, saved.escalation_channel, saved.csm_group, saved.admins, saved.saved_by) == (
        "C0ALERT",
        "C0ESC",
        "S0CSM",
        ("UADMIN", "S0LEADS"),
        "UADMIN",
    )
    [(user, outcome, details)] = audits(workspace, "workspace.settings")
    assert (user, outcome, details["changed"]) == (
        "UADMIN",
        "ok",
        ["alert_channel", "escalation_channel", "csm_group", "admins"],
    )
    fake.wait_for(lambda: "<#C0ESC>" in texts(fake.home("UADMIN").blocks))  # the Home shows them

    # Roles: a member of the group chosen as admins is one now, without a restart.
    otto.command("/connections", "new", channel="C0DATA")
    fake.wait_for(lambda: fake.modal("UOPS"))
    # Alerts: posted in the channel chosen, with no CONNBOT_ALERT_CHANNEL.
    cid = connect()
    with workspace.db.begin() as session:
        session.get(Connection, cid).credentials = workspace.vault.encrypt(Credentials({"token": "demo-expired"}))
    for _ in range(2):  # the daily sync fails twice: the credentials are broken
        sync_accounts(workspace, TEAM, cid, trigger="schedule")
    alert = fake.wait_for(lambda: fake.messages("C0ALERT"))[-1]
    # Escalations: in the escalation channel chosen, mentioning the CSM group chosen.
    ada.click(alert, Action.ESCALATE)
    ada.submit(fake.wait_for(lambda: fake.modal("UADMIN")), {"reason": {"value": "Broken since Monday"}})
    escalation = fake.wait_for(lambda: fake.messages("C0ESC"))[-1]
    assert "<!subteam^S0CSM>" in texts(escalation.blocks)


def test_a_channel_connbot_cannot_post_in_or_a_lockout_is_refused_on_its_field(fake, driver, workspace):
    ada = driver.user("UADMIN")
    modal = open_settings(fake, driver)
    result = ada.submit(modal, {SettingsField.ALERT_CHANNEL: {SettingsField.ALERT_CHANNEL: "C0PRIV"}})
    assert "Invite it there" in result.view.errors[SettingsField.ALERT_CHANNEL]
    result = ada.submit(
        modal,
        {
            SettingsField.ALERT_CHANNEL: {SettingsField.ALERT_CHANNEL: None},
            SettingsField.ADMINS: {SettingsField.ADMINS: ["UOPS"]},
        },
    )
    assert "no longer be an admin" in result.view.errors[SettingsField.ADMINS]
    assert workspace_settings(workspace, TEAM).saved_at is None  # nothing saved
    assert audits(workspace, "workspace.settings") == []


def test_a_non_admin_cannot_change_the_settings_and_is_told_who_can(fake, driver, workspace):
    vera = driver.user("UVIEW")
    # Her Home has no Settings button; a forged submission of the modal is refused all the same.
    opened = fake.api(
        "views.open", trigger_id=fake.issue_trigger("UVIEW"), view=settings_modal(WorkspaceSettings(), {})
    )
    result = vera.submit(
        fake.view(opened["view"]["id"]),
        {SettingsField.ADMINS: {SettingsField.ADMINS: ["UVIEW"]}},
    )
    assert result.ok
    notice = texts(fake.wait_for(lambda: fake.modal("UVIEW")).blocks)
    assert "You need the admin role to change the workspace settings" in notice
    assert "the workspace admins and owners" in notice
    assert workspace_settings(workspace, TEAM).saved_at is None
    assert [(user, outcome) for user, outcome, _ in audits(workspace, "change the workspace settings")] == [
        ("UVIEW", "refused")
    ]
