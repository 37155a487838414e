"""The buttons of an alert ("I'm on it", Release, Run now, Pause order), Escalate to CSM,
`@connbot status <id>` in threads, and the alert channel of a connection."""

from __future__ import annotations

import logging
import re

from slack_bolt import Ack, App
from slack_sdk.errors import SlackApiError

from bot.blocks.alerts import escalated, escalation_message, escalation_modal
from bot.blocks.connections import alert_channel_target, help_message
from bot.cards import card_message, refresh_card
from bot.channels import join_channel
from bot.errors import guarded, user_message
from bot.forms import form_values
from bot.ids import Action, Callback
from bot.routing import AlertRef, CardRef, OrderRef, unpack
from bot.services import Services
from bot.surface import Surface
from core.errors import InvalidInput, NotFound, StaleAction
from engine.executor import Work, carry_out
from operations.alerts import (
    abandon_escalation,
    acknowledge,
    claim_escalation,
    escalation_card,
    record_escalation,
    release,
    require_escalation_channel,
    set_alert_channel,
)
from operations.cards import Card, load_card
from operations.deliveries import first_delivery
from operations.orders import request_run, set_paused
from operations.workspaces import workspace_settings

log = logging.getLogger(__name__)

STATUS = re.compile(r"\bstatus\s+#?(\d{1,18})\b", re.IGNORECASE)


def register(app: App, services: Services) -> None:
    guard = guarded(services)
    ctx = services.ctx

    @guard
    def on_it(ack: Ack, body: dict, action: dict) -> None:
        """I'm on it, or Release."""
        ack()
        taking = action.get("action_id") == Action.ALERT_ACK
        ref = unpack(AlertRef, action.get("value"))
        surface = Surface.of(body)
        actor = services.roles.viewer(surface.team_id, surface.user_id)
        (acknowledge if taking else release)(ctx, actor, ref.a)
        if not services.alerts.taken(ref.a, actor.user_id, taken=taking):
            done = "You are on it" if taking else "Released"
            surface.tell(
                services.client_for(surface.team_id), f"{done}; Slack did not accept the updated alert just now."
            )

    app.action(Action.ALERT_ACK)(on_it)
    app.action(Action.ALERT_RELEASE)(on_it)

    @app.action(Action.ALERT_RUN_NOW)
    @guard
    def run_from_alert(ack: Ack, body: dict, action: dict) -> None:
        ack()
        ref = unpack(OrderRef, action.get("value"))
        surface = Surface.of(body)
        actor = services.roles.actor(surface.team_id, surface.user_id)
        run_id = request_run(ctx, actor, ref.c, ref.o)
        surface.tell(
            services.client_for(surface.team_id), "Run requested. If it succeeds, this alert is resolved in place."
        )
        # Inline it executes here; queued, a worker carries it out (and its outcome is judged).
        services.background(carry_out, ctx, Work("run", actor.team_id, run_id, ref.o))

    @app.action(Action.ALERT_PAUSE)
    @guard
    def pause_from_alert(ack: Ack, body: dict, action: dict) -> None:
        ack()
        ref = unpack(OrderRef, action.get("value"))
        surface = Surface.of(body)
        actor = services.roles.actor(surface.team_id, surface.user_id)
        set_paused(ctx, actor, ref.c, ref.o, True)  # its alerts close, in place
        surface.tell(services.client_for(surface.team_id), f"Paused. Resume it from its card: `/connections {ref.c}`.")

    @app.action(Action.ESCALATE)
    @guard
    def escalate(ack: Ack, body: dict, action: dict) -> None:
        ack()
        ref = unpack(CardRef, action.get("value"))
        surface = Surface.of(body)
        card = load_card(ctx, services.roles.viewer(surface.team_id, surface.user_id), ref.c)
        if not isinstance(card, Card):  # deleted: answered with its tombstone (bot.errors)
            raise NotFound(f"There is no connection {ref.c}.")
        require_escalation_channel(ctx, surface.team_id)
        services.client_for(surface.team_id).views_open(
            trigger_id=body["trigger_id"], view=escalation_modal(ref.c, Callback.ESCALATE, card.connection.title)
        )

    @app.view_submission(Callback.ESCALATE)
    @guard
    def escalation_submitted(ack: Ack, body: dict, view: dict) -> None:
        ref = unpack(CardRef, view.get("private_metadata"))
        team_id = Surface.of(body).team_id
        actor = services.roles.viewer(team_id, body["user"]["id"])
        try:
            card = escalation_card(ctx, actor, ref.c, form_values(view).get("reason") or "")
        except InvalidInput as bad:
            ack(response_action="errors", errors={"reason": next(iter(bad.fields.values()), bad.message)})
            return
        settings = workspace_settings(ctx, team_id)
        blocks = escalation_message(card, settings.csm_group)
        text = f"Escalation for connection {card.connection_id}"
        # One thread per connection: later escalations continue it.
        thread = claim_escalation(ctx, actor, ref.c, require_escalation_channel(ctx, team_id), card.reason)
        try:
            posted = services.client_for(team_id).chat_postMessage(
                channel=thread.channel, thread_ts=thread.thread_ts, text=text, blocks=blocks
            )
        except Exception as error:
            abandon_escalation(ctx, thread)
            if not isinstance(error, SlackApiError):
                raise
            ack(
                response_action="errors",
                errors={
                    "reason": f"Slack refused the post in the escalation channel ({error.response.get('error')}); invite connbot there and try again."
                },
            )
            return
        record_escalation(ctx, actor, thread, ref.c, posted["channel"], posted["ts"])
        ack(response_action="update", view=escalated(posted["channel"]))

    @app.event("app_mention")
    @guard
    def mention(event: dict, body: dict) -> None:
        if not first_delivery(ctx, body.get("event_id"), body.get("event_time")):
            return
        team_id = body.get("team_id") or event.get("team")
        if not team_id:
            raise ValueError("an app_mention event with no team")
        thread_ts = event.get("thread_ts") or event.get("ts")
        match = STATUS.search(event.get("text") or "")
        client = services.client_for(team_id)
        if match is None:
            client.chat_postMessage(
                channel=event["channel"], thread_ts=thread_ts, text="connbot help", blocks=help_message()
            )
            return
        actor = services.roles.viewer(team_id, event.get("user", ""))
        try:
            blocks, text = card_message(services, actor, int(match[1]))
        except Exception as error:  # said in the thread, where it was asked
            blocks, text = None, user_message(error)
        client.chat_postMessage(channel=event["channel"], thread_ts=thread_ts, text=text, blocks=blocks)

    @app.action(Action.ALERT_CHANNEL)
    @guard
    def alert_channel(ack: Ack, body: dict, action: dict) -> None:
        ack()
        surface = Surface.of(body)
        connection_id = alert_channel_target(action.get("block_id", ""))
        if connection_id is None:
            raise StaleAction("This menu is from an older version of the message. Type `/connections` to start again.")
        actor = services.roles.actor(surface.team_id, surface.user_id)
        try:
            set_alert_channel(
                ctx,
                actor,
                connection_id,
                action.get("selected_conversation"),
                before_saving=lambda channel: join_channel(
                    services.client_for(surface.team_id), channel, then="choose it again"
                ),
            )
        finally:
            refresh_card(services, surface, actor, connection_id, "settings")  # the channel in use, either way
