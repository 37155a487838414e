"""Buttons on the list and the card: open, tabs and paging, share in channel."""

from __future__ import annotations

import logging
import re

from slack_bolt import Ack, App
from slack_sdk.errors import SlackApiError

from bot.blocks.common import notice_modal
from bot.blocks.connections import SHARE_CHANNEL_BLOCK, share_channel_picker, text_message, tombstone
from bot.cards import card_message, list_message, refresh_card
from bot.channels import join_channel
from bot.errors import guarded
from bot.forms import form_values
from bot.ids import Action, Callback
from bot.routing import CardRef, ListRef, pack, unpack
from bot.services import Services
from bot.surface import Surface
from core.errors import ConnbotError
from operations.cards import connection_summary, deleted_connection

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
        if surface.in_dm:  # no one to share with here: pick a channel (the trigger lives 3 s)
            title = connection_summary(services.ctx, actor, ref.c).title
            services.client.views_open(trigger_id=body["trigger_id"], view=share_channel_picker(pack(ref), title))
            return
        blocks, text = card_message(services, actor, ref.c, ref.t, ref.p)
        if not surface.channel_id:
            raise ConnbotError("Open the card in a channel first, then share it there.")
        share_in_channel(services, surface.channel_id, surface.user_id, blocks, text, surface.thread_ts)

    @app.view_submission(Callback.SHARE)
    @guard
    def share_in_chosen_channel(ack: Ack, body: dict, view: dict) -> None:
        ref = unpack(CardRef, view.get("private_metadata"))
        user_id = body["user"]["id"]
        actor = services.roles.viewer(Surface.of(body).team_id, user_id)
        channel = form_values(view).get(SHARE_CHANNEL_BLOCK)
        if not channel:
            ack(response_action="errors", errors={SHARE_CHANNEL_BLOCK: "Choose a channel."})
            return
        deleted = deleted_connection(services.ctx, actor, ref.c)
        if deleted is not None:
            ack(response_action="update", view=notice_modal("Share in channel", tombstone(deleted)))
            return
        blocks, text = card_message(services, actor, ref.c, ref.t, ref.p)
        try:
            share_in_channel(services, channel, user_id, blocks, text)
        except ConnbotError as refused:  # the picker again, saying why
            title = connection_summary(services.ctx, actor, ref.c).title
            ack(response_action="update", view=share_channel_picker(pack(ref), title, refused.message))
            return
        ack(response_action="update", view=notice_modal("Share in channel", text_message(f"Shared in <#{channel}>.")))


def share_in_channel(
    services: Services, channel: str, user_id: str, blocks: list[dict], text: str, thread_ts: str | None = None
) -> None:
    client = services.client
    shared_text = f"<@{user_id}> shared {text}"
    try:
        client.chat_postMessage(channel=channel, text=shared_text, blocks=blocks, thread_ts=thread_ts)
        return
    except SlackApiError as error:
        code = error.response.get("error")
        if code not in ("not_in_channel", "channel_not_found"):  # the latter: a private channel connbot is not in
            raise ConnbotError(f"Slack did not accept the shared card ({code}).") from None
    join_channel(client, channel, then="share again")
    try:
        client.chat_postMessage(channel=channel, text=shared_text, blocks=blocks, thread_ts=thread_ts)
    except SlackApiError as error:
        raise ConnbotError(f"Slack did not accept the shared card ({error.response.get('error')}).") from None
