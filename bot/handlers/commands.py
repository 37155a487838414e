"""/connections — the connected sources list, search, a card by id, help."""

from __future__ import annotations

from slack_bolt import Ack, App

from bot.blocks.connections import help_message
from bot.cards import card_message, list_message
from bot.errors import guarded, user_message
from bot.handlers.connect import open_new_connection
from bot.services import Services
from core.errors import InvalidInput
from operations.cards import MAX_SEARCH
from storage.repositories import as_connection_id

COMMAND = "/connections"


def register(app: App, services: Services) -> None:
    guard = guarded(services)

    @app.command(COMMAND)
    @guard
    def connections(ack: Ack, command: dict, body: dict) -> None:
        if (command.get("text") or "").strip().lower() == "new":
            ack()
            open_new_connection(services, command["trigger_id"], command["team_id"], command["user_id"])
            return
        # The ack body carries the answer: the fastest visible response, and ephemeral.
        try:
            blocks, text = answer(services, command)
        except Exception as error:  # rendered here: the ack is the only reply
            ack(text=user_message(error))
            return
        ack(blocks=blocks, text=text)


def answer(services: Services, command: dict) -> tuple[list[dict], str]:
    text = " ".join((command.get("text") or "").split())
    actor = services.roles.viewer(command["team_id"], command["user_id"])
    if text.lower() in ("help", "?", "-h", "--help"):
        return help_message(), "connbot help"
    if (connection_id := as_connection_id(text)) is not None:
        return card_message(services, actor, connection_id)
    if len(text) > MAX_SEARCH:
        raise InvalidInput(f"Searches are limited to {MAX_SEARCH} characters; type a shorter part of the name or ID.")
    return list_message(services, actor, search=text or None)
