"""Render-and-place helpers shared by the handlers: load a read model, build blocks, put them
where the user is."""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError

from bot.blocks.connections import card_fallback, connection_card, connection_list, tombstone
from bot.blocks.home import home_view
from bot.roles import person
from bot.services import Services
from bot.surface import Surface
from core.errors import Unavailable
from operations.auth import Actor, Role
from operations.cards import Card, load_card
from operations.cards import connection_list as load_list
from operations.workspaces import workspace_settings

log = logging.getLogger(__name__)


def card_message(services: Services, actor: Actor, connection_id: int, tab: str = "orders", page: int = 0):
    """(blocks, fallback text) of a connection's card, or of its tombstone."""
    card = load_card(services.ctx, actor, connection_id, tab, page)
    blocks = connection_card(card) if isinstance(card, Card) else tombstone(card)
    return blocks, card_fallback(card)


def list_message(services: Services, actor: Actor, offset: int = 0, search: str | None = None):
    data = load_list(services.ctx, actor, offset=offset, search=search)
    return connection_list(data), f"{data.page.total} connected sources"


UNDELIVERED = "Slack did not accept the updated card just now; nothing you asked for was lost. Open it again with `/connections {id}`."


def refresh_card(
    services: Services, surface: Surface, actor: Actor, connection_id: int, tab: str, page: int = 0
) -> bool:
    """Replace the card in place; when Slack refuses even after retries, tell the user."""
    blocks, text = card_message(services, actor, connection_id, tab, page)
    client = services.client_for(surface.team_id)
    if surface.replace(client, blocks, text):
        return True
    surface.tell(client, UNDELIVERED.format(id=connection_id))
    return False


def publish_home(services: Services, actor: Actor, offset: int = 0) -> None:
    data = load_list(services.ctx, actor, offset=offset)
    settings = workspace_settings(services.ctx, actor.team_id)
    user_id = person(actor)
    try:
        can_change = services.roles.role(actor.team_id, user_id, settings) >= Role.ADMIN
    except Unavailable:  # Slack could not tell the role just now: the settings are shown read-only
        can_change = False
    try:
        services.client_for(actor.team_id).views_publish(
            user_id=user_id, view=home_view(data, settings, can_change=can_change)
        )
    except SlackApiError as error:
        log.warning("views.publish failed: %s", error.response.get("error"))


OUTDATED = "The card you pressed {action} on, above, is out of date; the current one follows."


def replace_card_after_modal(
    services: Services,
    actor: Actor,
    connection_id: int,
    tab: str,
    card: Surface | None,
    channel: str | None,
    ts: str | None,
    *,
    action: str,
    from_ephemeral: bool,
) -> None:
    """After a modal's work, the card it was opened from shows the result: an ephemeral one is
    replaced in place through its response_url (`card`, kept while Slack allows: 30 minutes,
    5 uses), a channel copy is updated. When an ephemeral card can no longer be replaced, a fresh
    card follows a note saying the one above is out of date."""
    client = services.client_for(actor.team_id)
    if card is not None:
        blocks, text = card_message(services, actor, connection_id, tab)
        if card.replace(client, blocks, text):
            return
    if from_ephemeral and channel and not ts:
        try:
            client.chat_postEphemeral(channel=channel, user=person(actor), text=OUTDATED.format(action=action))
        except SlackApiError as error:
            log.warning("could not say the card is out of date: %s", error.response.get("error"))
    show_card_after_modal(services, actor, connection_id, tab, channel, ts)


def show_card_after_modal(
    services: Services, actor: Actor, connection_id: int, tab: str, channel: str | None, ts: str | None, page: int = 0
) -> None:
    """After a modal's work: update the card it was opened from when that is a channel message,
    else show a fresh card to the user in that channel (an ephemeral card cannot be updated)."""
    if not channel:
        return
    user_id = person(actor)
    blocks, text = card_message(services, actor, connection_id, tab, page)
    client = services.client_for(actor.team_id)
    try:
        if ts:
            client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)
        else:
            client.chat_postEphemeral(channel=channel, user=user_id, text=text, blocks=blocks)
    except SlackApiError as error:
        log.warning("could not show the card after the modal: %s", error.response.get("error"))
        try:  # as refresh_card does: the user must not be left with a card that is wrong
            client.chat_postEphemeral(channel=channel, user=user_id, text=UNDELIVERED.format(id=connection_id))
        except SlackApiError as again:
            log.warning("could not tell the user either: %s", again.response.get("error"))
