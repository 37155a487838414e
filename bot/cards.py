"""Render-and-place helpers shared by the handlers: load a read model, build blocks, put them
where the user is."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError

from bot.blocks.connections import card_fallback, connection_card, connection_list, tombstone
from bot.blocks.home import home_view
from bot.services import Services
from bot.surface import Surface
from operations.auth import Actor
from operations.cards import Card, load_card
from operations.cards import connection_list as load_list


def card_message(services: Services, actor: Actor, connection_id: int, tab: str = "orders", page: int = 0):
    """(blocks, fallback text) of a connection's card, or of its tombstone."""
    card = load_card(services.ctx, actor, connection_id, tab, page)
    blocks = connection_card(card) if isinstance(card, Card) else tombstone(card)
    return blocks, card_fallback(card)


def list_message(services: Services, actor: Actor, offset: int = 0, search: str | None = None):
    data = load_list(services.ctx, actor, offset=offset, search=search)
    return connection_list(data), f"{data.page.total} connected sources"


UNDELIVERED = "Slack did not accept the updated card just now; nothing you asked for was lost. Open it again with `/connections {id}`."


def refresh_card(services: Services, surface: Surface, actor: Actor, connection_id: int, tab: str, page: int = 0) -> bool:
    """Replace the card in place; when Slack refuses even after retries, tell the user."""
    blocks, text = card_message(services, actor, connection_id, tab, page)
    if surface.replace(services.client, blocks, text):
        return True
    surface.tell(services.client, UNDELIVERED.format(id=connection_id))
    return False


def publish_home(services: Services, actor: Actor, offset: int = 0) -> None:
    data = load_list(services.ctx, actor, offset=offset)
    try:
        services.client.views_publish(user_id=actor.user_id, view=home_view(data))
    except SlackApiError as error:
        import logging

        logging.getLogger(__name__).warning("views.publish failed: %s", error.response.get("error"))
