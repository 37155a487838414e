"""Buttons on the list and the card: open, tabs and paging, share in channel."""

from __future__ import annotations

import logging
import re

from slack_bolt import Ack, App
from slack_sdk.errors import SlackApiError

from bot.cards import card_message, list_message, refresh_card
from bot.channels import join_channel
from bot.errors import guarded
from bot.ids import Action
from bot.routing import CardRef, ListRef, unpack
from bot.services import Services
from bot.surface import Surface
from core.errors import ConnbotError
from operations.cards import deleted_connection

log = logging.getLogger(__name__)


def _prefix(action: str) -> re.Pattern:
    return re.compile(rf"^{re.escape(action)}(\..+)?$")


def register(app: App, services: Services) -> None:
    guard = guarded(services)

    @app.action(Action.OPEN)
    @guard
    def open_card(ack: Ack, body: dict, action: dict) -> None:
        ack()
        ref = unpack(CardRef, action.get("value"))
        surface = Surface.of(body)
        actor = services.roles.viewer(surface.team_id, surface.user_id)
        blocks, text = card_message(services, actor, ref.c, ref.t, ref.p)
        if surface.kind == "view":
            # From the App Home: the card goes to the user's DM with connbot, where it can be updated.
            services.client.chat_postMessage(channel=surface.user_id, text=text, blocks=blocks)
        else:
            surface.tell(services.client, text, blocks)

    @app.action(_prefix(Action.TAB))
    @guard
    def switch_tab(ack: Ack, body: dict, action: dict) -> None:
        ack()
        ref = unpack(CardRef, action.get("value"))
        surface = Surface.of(body)
        actor = services.roles.viewer(surface.team_id, surface.user_id)
        refresh_card(services, surface, actor, ref.c, ref.t, ref.p)

    @app.action(_prefix(Action.LIST_PAGE))
    @guard
    def list_page(ack: Ack, body: dict, action: dict) -> None:
        ack()
        ref = unpack(ListRef, action.get("value"))
        surface = Surface.of(body)
        actor = services.roles.viewer(surface.team_id, surface.user_id)
        if surface.kind == "view":  # the App Home: remembered, so re-publishing keeps the page
            services.home.show(surface.team_id, surface.user_id, ref.o)
            return
        blocks, text = list_message(services, actor, ref.o, ref.q)
        surface.replace(services.client, blocks, text)

    @app.action(Action.SHARE)
    @guard
    def share(ack: Ack, body: dict, action: dict) -> None:
        ack()
        ref = unpack(CardRef, action.get("value"))
        surface = Surface.of(body)
        actor = services.roles.viewer(surface.team_id, surface.user_id)
        if deleted_connection(services.ctx, actor, ref.c) is not None:
            # Nothing to share: answer as the tabs do, never with a public tombstone.
            refresh_card(services, surface, actor, ref.c, ref.t, ref.p)
            return
        blocks, text = card_message(services, actor, ref.c, ref.t, ref.p)
        share_in_channel(services, surface, blocks, text)


def share_in_channel(services: Services, surface: Surface, blocks: list[dict], text: str) -> None:
    channel = surface.channel_id
    if not channel:
        raise ConnbotError("Open the card in a channel first, then share it there.")
    client = services.client
    shared_text = f"<@{surface.user_id}> shared {text}"
    try:
        client.chat_postMessage(channel=channel, text=shared_text, blocks=blocks, thread_ts=surface.thread_ts)
        return
    except SlackApiError as error:
        code = error.response.get("error")
        if code not in ("not_in_channel", "channel_not_found"):  # the latter: a private channel connbot is not in
            raise ConnbotError(f"Slack did not accept the shared card ({code}).") from None
    join_channel(client, channel, then="share again")
    try:
        client.chat_postMessage(channel=channel, text=shared_text, blocks=blocks, thread_ts=surface.thread_ts)
    except SlackApiError as error:
        raise ConnbotError(f"Slack did not accept the shared card ({error.response.get('error')}).") from None
