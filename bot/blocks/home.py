"""The App Home tab: the same connected sources list, with Make a new connection, and the
workspace's settings (read-only; admins get the Settings button)."""

from __future__ import annotations

from typing import Any

from bot.blocks.common import actions, button, context, mrkdwn
from bot.blocks.connections import connection_list
from bot.blocks.settings import settings_summary
from bot.ids import Action
from operations.cards import ConnectionList
from operations.workspaces import WorkspaceSettings


def home_view(data: ConnectionList, settings: WorkspaceSettings, *, can_change: bool) -> dict[str, Any]:
    blocks = connection_list(data)
    blocks[1:1] = [
        actions(
            button("Make a new connection", Action.NEW_CONNECTION, "new", style="primary"), block_id="home_actions"
        ),
    ]
    blocks.append(context(mrkdwn("Type `/connections help` in any channel for the commands.")))
    blocks += settings_summary(settings, can_change=can_change)
    return {"type": "home", "blocks": blocks}
