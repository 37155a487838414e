"""The one place where failures become messages. Nobody sees a traceback or Slack's error banner."""

from __future__ import annotations

import functools
import json
import logging
import uuid
from typing import Any

from slack_bolt import Ack, App
from slack_sdk.errors import SlackApiError

from bot.blocks.common import mrkdwn, notice_modal, section
from bot.services import Services
from bot.surface import Surface
from core.errors import ConnbotError, NotAllowed
from operations.audit import audit_refusal
from operations.auth import Actor, Role

log = logging.getLogger(__name__)


def user_message(error: Exception) -> str:
    if isinstance(error, ConnbotError):
        return error.message
    ref = uuid.uuid4().hex[:8].upper()
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
    deliver(services, body, explain(services, error, body))


def explain(services: Services, error: Exception, body: dict[str, Any]) -> str:
    """What to tell the user about `error`; a refusal is audited on the way."""
    if isinstance(error, NotAllowed):
        surface = Surface.of(body)
        actor = Actor(surface.team_id, surface.user_id, Role.VIEWER)
        connection_id = _connection_id(body)
        try:
            audit_refusal(services.ctx, actor, error.action or "unknown", connection_id=connection_id, reason=error.role)
        except Exception:
            log.exception("could not audit a refusal")
    return user_message(error)


def deliver(services: Services, body: dict[str, Any], text: str) -> None:
    """Show `text` where the user is: ephemeral beside a message, a pushed view in a modal, a
    thread reply for a mention."""
    client = services.client
    blocks = [section(mrkdwn(text))]
    try:
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
            if trigger:
                client.views_push(trigger_id=trigger, view=view)
            else:
                client.chat_postMessage(channel=surface.user_id, text=text, blocks=blocks)
            return
        surface.tell(client, text, blocks)
    except SlackApiError as failure:
        log.warning("could not deliver an error message: %s", failure.response.get("error"))


def _connection_id(body: dict[str, Any]) -> int | None:
    for action in body.get("actions") or []:
        try:
            value = json.loads(action.get("value") or (action.get("selected_option") or {}).get("value") or "{}")
            return int(value.get("c")) if isinstance(value, dict) and value.get("c") is not None else None
        except (ValueError, TypeError):
            return None
    return None


