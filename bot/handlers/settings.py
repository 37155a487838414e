"""The workspace's Settings: the App Home's button (admins), the modal's user-group pickers, and
saving it (operations/workspaces.py). A submission by someone who is not an admin is refused with
the role message and audited, whatever the modal they had."""

from __future__ import annotations

import logging

from slack_bolt import Ack, App

from bot.blocks.settings import group_options, settings_modal
from bot.channels import join_channel
from bot.errors import guarded
from bot.forms import form_values
from bot.ids import Action, Callback, SettingsField
from bot.roles import person
from bot.services import Services
from bot.surface import Surface
from bot.usergroups import UserGroups
from core.errors import ConnbotError, InvalidInput
from operations.auth import Actor, Role
from operations.workspaces import WorkspaceSettings, save_workspace_settings, workspace_settings

log = logging.getLogger(__name__)

CHANGE = "change the workspace settings"


def register(app: App, services: Services) -> None:
    guard = guarded(services)
    groups = UserGroups(services)

    @app.action(Action.WORKSPACE_SETTINGS)
    @guard
    def open_settings(ack: Ack, body: dict) -> None:
        ack()
        surface = Surface.of(body)
        services.roles.actor(surface.team_id, surface.user_id).require(Role.ADMIN, CHANGE)
        current = workspace_settings(services.ctx, surface.team_id)
        chosen_groups = [i for i in (current.csm_group, *current.admins, *current.operators) if i and i[0] == "S"]
        labels = groups.labels(surface.team_id) if chosen_groups else {}
        services.client_for(surface.team_id).views_open(
            trigger_id=body["trigger_id"], view=settings_modal(current, labels)
        )

    @app.options(Action.USER_GROUPS)
    def user_group_options(ack: Ack, body: dict) -> None:
        try:
            found = groups.matching(Surface.of(body).team_id, body.get("value") or "")
        except Exception:  # the picker shows nothing; the person can try again
            log.exception("could not list the user groups for a picker")
            found = []
        ack(options=group_options([(group.id, group.label) for group in found]))

    @app.view_submission(Callback.WORKSPACE_SETTINGS)
    @guard
    def save(ack: Ack, body: dict, view: dict) -> None:
        surface = Surface.of(body)
        actor = services.roles.actor(surface.team_id, body["user"]["id"])
        try:
            save_workspace_settings(
                services.ctx, actor, _read(view), before_saving=lambda chosen: _usable(services, actor, chosen)
            )
        except InvalidInput as bad:  # said on the fields (the settings' names are the inputs' block ids)
            inputs = {b.get("block_id") for b in view.get("blocks") or () if b.get("type") == "input"}
            errors = {field: text for field, text in bad.fields.items() if field in inputs}
            ack(response_action="errors", errors=errors or {SettingsField.ALERT_CHANNEL: bad.message})
            return
        ack()
        services.home.show(actor.team_id, person(actor), None)  # the new settings, at once


def _read(view: dict) -> WorkspaceSettings:
    values = form_values(view)

    def ids(people: SettingsField, groups: SettingsField) -> tuple[str, ...]:
        return tuple([*(values.get(people) or ()), *(values.get(groups) or ())])

    return WorkspaceSettings(
        alert_channel=values.get(SettingsField.ALERT_CHANNEL) or None,
        escalation_channel=values.get(SettingsField.ESCALATION_CHANNEL) or None,
        csm_group=values.get(SettingsField.CSM_GROUP) or None,
        admins=ids(SettingsField.ADMINS, SettingsField.ADMIN_GROUPS),
        operators=ids(SettingsField.OPERATORS, SettingsField.OPERATOR_GROUPS),
    )


def _usable(services: Services, actor: Actor, chosen: WorkspaceSettings) -> None:
    """What Slack decides: connbot can post in the channels (it joins a public one), and the
    person saving is still an admin afterwards (nobody locks themselves out)."""
    fields: dict[str, str] = {}
    current = workspace_settings(services.ctx, actor.team_id)
    client = services.client_for(actor.team_id)
    for field in (SettingsField.ALERT_CHANNEL, SettingsField.ESCALATION_CHANNEL):
        channel = getattr(chosen, field)
        if channel and channel != getattr(current, field):
            try:
                join_channel(client, channel, then="save again")
            except ConnbotError as refused:
                fields[field] = refused.message
    if services.roles.role(actor.team_id, person(actor), chosen) < Role.ADMIN:
        fields[SettingsField.ADMINS] = (
            "You would no longer be an admin: add yourself, or a user group you are in (with no admins chosen, "
            "the workspace admins and owners are admins)."
        )
    if fields:
        raise InvalidInput("connbot cannot use these settings.", fields)
