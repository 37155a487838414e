"""The workspace's settings: their summary in the App Home (everyone reads it; admins get the
Settings button) and the Settings modal (admins).

The user-group pickers are `external_select`s: Block Kit has no user-group select, and a static
one holds 100 options at most, fewer than a large workspace's groups; their options are loaded
from `usergroups.list` as the admin types (bot/handlers/settings.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.blocks.common import (
    OPTION_TEXT_MAX,
    SELECT_OPTIONS_MAX,
    actions,
    button,
    context,
    divider,
    mrkdwn,
    plain,
    searched_select,
    section,
    slack_date,
    user_mention,
)
from bot.ids import Action, Callback, SettingsField
from operations.workspaces import WorkspaceSettings

SETTINGS_BLOCK = "workspace_settings"
MAX_SHOWN = 30  # ids named in the summary; more are counted


def _mentions(ids: tuple[str, ...], nobody: str) -> str:
    if not ids:
        return nobody
    named = [f"<!subteam^{i}>" if i.startswith("S") else f"<@{i}>" for i in ids[:MAX_SHOWN]]
    more = f" and {len(ids) - MAX_SHOWN} more" if len(ids) > MAX_SHOWN else ""
    return ", ".join(named) + more


def _channel(channel: str | None) -> str:
    return f"<#{channel}>" if channel else "none"


def settings_summary(s: WorkspaceSettings, *, can_change: bool) -> list[dict[str, Any]]:
    """What the App Home shows of the settings: to everyone, read-only; the Settings button to admins."""
    text = "\n".join(
        [
            "*Workspace settings*",
            f"*Alert channel:* {_channel(s.alert_channel)} (a connection may choose its own in its Settings tab)",
            f"*Escalation channel:* {_channel(s.escalation_channel)}",
            f"*CSM group:* {f'<!subteam^{s.csm_group}>' if s.csm_group else 'none'}",
            f"*Admins:* {_mentions(s.admins, 'the workspace admins and owners')}",
            f"*Operators:* {_mentions(s.operators, 'all members of the workspace except guests')}",
        ]
    )
    blocks = [divider(), section(mrkdwn(text), block_id=SETTINGS_BLOCK)]
    if can_change:
        blocks.append(actions(button("Settings", Action.WORKSPACE_SETTINGS, "open"), block_id="settings_actions"))
    saved = (
        f"Saved by {user_mention(s.saved_by)} {slack_date(s.saved_at)}."
        if s.saved_at
        else "connbot's defaults: nobody has saved settings for this workspace yet."
    )
    if not can_change:
        saved += " Only connbot admins can change them."
    blocks.append(context(mrkdwn(saved)))
    return blocks


def _input(field: SettingsField, label: str, element: dict[str, Any], hint: str) -> dict[str, Any]:
    return {
        "type": "input",
        "block_id": field,
        "optional": True,
        "label": plain(label, 2000),
        "hint": plain(hint, 2000),
        "element": element,
    }


def _conversation(field: SettingsField, channel: str | None) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "conversations_select",
        "action_id": field,
        "placeholder": plain("Choose a channel"),
        "filter": {"include": ["public", "private"], "exclude_bot_users": True},
    }
    if channel:
        element["initial_conversation"] = channel
    return element


def _groups(ids: tuple[str, ...], names: Mapping[str, str], *, multiple: bool) -> dict[str, Any]:
    element = searched_select(Action.USER_GROUPS, "Type a user group's name", multiple=multiple)
    if ids and multiple:
        element["initial_options"] = group_options([(i, names.get(i, i)) for i in ids])
    elif ids:
        element["initial_option"] = group_options([(ids[0], names.get(ids[0], ids[0]))])[0]
    return element


def _people(field: SettingsField, ids: tuple[str, ...]) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "multi_users_select", "action_id": field, "placeholder": plain("Choose people")}
    people = [i for i in ids if not i.startswith("S")]
    if people:
        element["initial_users"] = people[:100]
    return element


def settings_modal(s: WorkspaceSettings, group_names: Mapping[str, str]) -> dict[str, Any]:
    """The Settings modal, filled with the settings in force. `group_names`: user-group id →
    "@handle (name)", for the groups already chosen."""
    admin_groups = tuple(i for i in s.admins if i.startswith("S"))
    operator_groups = tuple(i for i in s.operators if i.startswith("S"))
    return {
        "type": "modal",
        "callback_id": Callback.WORKSPACE_SETTINGS,
        "title": plain("Settings"),
        "submit": plain("Save"),
        "close": plain("Cancel"),
        "blocks": [
            section(
                mrkdwn(
                    "connbot's settings for this workspace. They apply at once; until they are saved here, "
                    "connbot's defaults apply."
                )
            ),
            _input(
                SettingsField.ALERT_CHANNEL,
                "Alert channel",
                _conversation(SettingsField.ALERT_CHANNEL, s.alert_channel),
                "Credentials alerts are posted here, unless a connection chooses its own. connbot joins a public "
                "channel; invite it to a private one first.",
            ),
            _input(
                SettingsField.ESCALATION_CHANNEL,
                "Escalation channel",
                _conversation(SettingsField.ESCALATION_CHANNEL, s.escalation_channel),
                "Escalate to CSM starts a thread per connection here.",
            ),
            _input(
                SettingsField.CSM_GROUP,
                "CSM group",
                _groups((s.csm_group,) if s.csm_group else (), group_names, multiple=False),
                "The Customer Success Managers' user group, mentioned in escalations.",
            ),
            divider(),
            _input(
                SettingsField.ADMINS,
                "Admins: people",
                _people(SettingsField.ADMINS, s.admins),
                "Admins make, re-connect and delete connections and change these settings. With no people and no "
                "groups, the workspace admins and owners are admins.",
            ),
            _input(
                SettingsField.ADMIN_GROUPS,
                "Admins: user groups",
                _groups(admin_groups, group_names, multiple=True),
                "Every member of these groups is an admin.",
            ),
            _input(
                SettingsField.OPERATORS,
                "Operators: people",
                _people(SettingsField.OPERATORS, s.operators),
                "Operators extract, sync accounts, run and pause orders. With no people and no groups, every member "
                "but guests is an operator.",
            ),
            _input(
                SettingsField.OPERATOR_GROUPS,
                "Operators: user groups",
                _groups(operator_groups, group_names, multiple=True),
                "Every member of these groups is an operator.",
            ),
        ],
    }


def group_options(groups: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """The options a user-group picker offers: (id, label) pairs, at most 100."""
    return [
        {"text": plain(label, OPTION_TEXT_MAX), "value": group_id} for group_id, label in groups[:SELECT_OPTIONS_MAX]
    ]
