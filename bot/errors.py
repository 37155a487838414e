"""The one place where failures become messages. Nobody sees a traceback or Slack's error banner."""

from __future__ import annotations

import functools
import json
import logging
from typing import Any

from slack_bolt import Ack, App
from slack_sdk.errors import SlackApiError

from bot.blocks.alerts import ALERT_BLOCK_PREFIX
from bot.blocks.common import mrkdwn, notice_modal, section
from bot.blocks.connections import alert_channel_target, tombstone_text
from bot.cards import refresh_card
from bot.services import Services
from bot.surface import Surface
from core import logcontext, metrics
from core.errors import ConnbotError, NotAllowed, NotFound, NotInstalled
from operations.audit import audit_refusal
from operations.auth import Actor, Role
from operations.cards import deleted_connection

log = logging.getLogger(__name__)


def user_message(error: Exception) -> str:
    if isinstance(error, ConnbotError):
        metrics.SLACK_ERRORS_SHOWN.labels(metrics.label(type(error).__name__)).inc()
        return error.message
    if isinstance(error, SlackApiError):  # Slack refused even after the client's retries: not our bug
        metrics.SLACK_ERRORS_SHOWN.labels("SlackApiError").inc()
        code = error.response.get("error") if error.response is not None else None
        log.warning("Slack refused a call: %s", code)
        return f"Slack did not accept connbot's answer just now ({code or 'no reason given'}). Please try again in a moment."
    metrics.SLACK_ERRORS_SHOWN.labels("unexpected").inc()
    # The request's id, in its every log line: the reference leads to the whole trace.
    ref = logcontext.request_id() or logcontext.new_request_id()
    log.error("unexpected error, reference %s", ref, exc_info=error)
    return f"Something went wrong on our side (reference {ref}). Nothing you did caused it; please try again, and quote the reference if it happens again."


def register(app: App, services: Services) -> None:
    @app.error
    def on_error(error: Exception, body: dict[str, Any]) -> None:
        report(services, error, body)


def guarded(services: Services):
    """Listeners report their own failures after ack.

    bolt's runner resets the ack when a listener raises after `ack()`, racing its 10 ms poll:
    the request then looks unacknowledged for 3 s and Slack shows an error. Catching here and
    rendering with the same `report` keeps one way of showing errors without that race.
    Listeners must take `body`.
    """

    def wrap(listener):
        @functools.wraps(listener)
        def run(**kwargs):
            try:
                return listener(**kwargs)
            except Exception as error:  # rendered for the user, never re-raised into bolt
                body, ack = kwargs["body"], kwargs.get("ack")
                if ack is None or ack.response is not None:
                    report(services, error, body)
                elif body.get("type") == "view_submission":
                    answer_submission(ack, body, explain(services, error, body))
                else:
                    ack()  # within Slack's 3 seconds, or it shows its error banner
                    report(services, error, body)

        return run

    return wrap


def answer_submission(ack: Ack, body: dict[str, Any], text: str) -> None:
    """Answer a refused submission in its own response: the form stays under the notice, so
    closing it goes back to what was typed (Slack keeps at most 3 views: a stacked form is
    replaced instead)."""
    notice = notice_modal("connbot", [section(mrkdwn(text))], close="Back" if _stackable(body) else "OK")
    ack(response_action="push" if _stackable(body) else "update", view=notice)


def _stackable(body: dict[str, Any]) -> bool:
    return not (body.get("view") or {}).get("previous_view_id")


def report(services: Services, error: Exception, body: dict[str, Any]) -> None:
    if isinstance(error, NotFound) and _card_became_tombstone(services, body):
        return
    deliver(services, body, explain(services, error, body))


def _card_became_tombstone(services: Services, body: dict[str, Any]) -> bool:
    """Any button of an old card of a deleted connection answers as its tabs do: the card is
    replaced in place by the tombstone. An alert is not a card: it says "Closed" already."""
    surface = Surface.of(body)
    connection_id = connection_id_of(body)
    is_alert = any(str(a.get("block_id", "")).startswith(ALERT_BLOCK_PREFIX) for a in body.get("actions") or ())
    if (
        body.get("type") != "block_actions"
        or surface.kind not in ("message", "ephemeral")
        or is_alert
        or connection_id is None
    ):
        return False
    actor = Actor(surface.team_id, surface.user_id, Role.VIEWER)
    if deleted_connection(services.ctx, actor, connection_id) is None:
        return False
    return refresh_card(services, surface, actor, connection_id, "orders")


def explain(services: Services, error: Exception, body: dict[str, Any]) -> str:
    """What to tell the user about `error`; a refusal is audited on the way, and a connection
    not found because it was deleted is said so, with who deleted it and when."""
    if isinstance(error, NotFound) and (connection_id := connection_id_of(body)) is not None:
        surface = Surface.of(body)
        if (
            deleted := deleted_connection(
                services.ctx, Actor(surface.team_id, surface.user_id, Role.VIEWER), connection_id
            )
        ) is not None:
            return tombstone_text(deleted)
    if isinstance(error, NotAllowed):
        surface = Surface.of(body)
        actor = Actor(surface.team_id, surface.user_id, Role.VIEWER)
        connection_id = connection_id_of(body)
        try:
            audit_refusal(
                services.ctx, actor, error.action or "unknown", connection_id=connection_id, reason=error.role
            )
        except Exception:
            log.exception("could not audit a refusal")
    return user_message(error)


def deliver(services: Services, body: dict[str, Any], text: str) -> None:
    """Show `text` where the user is: ephemeral beside a message, a pushed view in a modal, a
    thread reply for a mention."""
    blocks = [section(mrkdwn(text))]
    try:
        client = services.client_for(Surface.of(body).team_id)
        event = body.get("event") or {}
        if event.get("type") == "app_mention":
            client.chat_postMessage(
                channel=event["channel"], thread_ts=event.get("thread_ts") or event.get("ts"), text=text, blocks=blocks
            )
            return
        surface = Surface.of(body)
        if surface.kind == "view" or body.get("type") == "view_submission":
            trigger = body.get("trigger_id")
            view = notice_modal("connbot", blocks, close="OK")
            try:
                if trigger:
                    client.views_push(trigger_id=trigger, view=view)
                    return
            except SlackApiError as failure:  # a trigger lives 3 s: Slack's retries can outlast it
                log.info("could not push the notice (%s); sending it as a DM", failure.response.get("error"))
            client.chat_postMessage(channel=surface.user_id, text=text, blocks=blocks)
            return
        surface.tell(client, text, blocks)
    except SlackApiError as failure:
        log.warning("could not deliver an error message: %s", failure.response.get("error"))
    except NotInstalled:  # nowhere to say it
        log.warning("could not deliver an error message: connbot is not installed in the workspace")


def connection_id_of(body: dict[str, Any]) -> int | None:
    """The connection a request is about: from the button or menu value, the alert-channel
    select's block id, or the modal's private_metadata."""
    for action in body.get("actions") or []:
        if (connection_id := alert_channel_target(str(action.get("block_id", "")))) is not None:
            return connection_id
        return _routed_connection(action.get("value") or (action.get("selected_option") or {}).get("value"))
    if body.get("type") == "view_submission":
        return _routed_connection((body.get("view") or {}).get("private_metadata"))
    return None


def _routed_connection(text: str | None) -> int | None:
    try:
        value = json.loads(text or "{}")
        connection_id = value.get("c") if isinstance(value, dict) else None
        return connection_id if type(connection_id) is int else None
    except ValueError:
        return None
