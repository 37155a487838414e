"""The App Home tab: the same connected sources list, with Make a new connection."""

from __future__ import annotations

from typing import Any

from bot.blocks.common import actions, button, context, mrkdwn
from bot.blocks.connections import connection_list
from bot.ids import Action
from operations.cards import ConnectionList


def home_view(data: ConnectionList) -> dict[str, Any]:
    blocks = connection_list(data)
    blocks[1:1] = [
        actions(
            button("Make a new connection", Action.NEW_CONNECTION, "new", style="primary"), block_id="home_actions"
        ),
    ]
    blocks.append(context(mrkdwn("Type `/connections help` in any channel for the commands.")))
    return {"type": "home", "blocks": blocks}
