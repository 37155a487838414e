"""Posts alerts and keeps them current: one alert when a connection's credentials break or an
extraction order is failing, stale or silent (operations/order_health.py, judged here at every
flush), at most one reminder a day as a thread reply, "Resolved by … at …" in place when it is
fixed, "I'm on it" in place, and follow-ups in the connection's CSM escalation thread.

Alert rows are written with the change that raises them, so a post that fails (channel missing,
bot not invited, Slack down) is logged and retried by `flush`, never lost. Every step is claimed
in the database first, so several processes can run this safely.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from slack_sdk.errors import SlackApiError

from bot.blocks.alerts import (
    acknowledged_text,
    alert_message,
    alert_text,
    escalation_note,
    follow_up,
    released_text,
    reminder_text,
    resolution_text,
    resolved_text,
    taken_note,
)
from bot.blocks.common import slack_date, user_mention
from bot.services import Services
from core.errors import NotInstalled
from core.events import ConnectionChanged, CredentialsBroke, CredentialsFixed, RunFinished
from operations.alerts import (
    AlertCard,
    alert_card,
    claim_post,
    claim_reminder,
    claim_resolution,
    mark_post_failed,
    mark_posted,
    open_escalation,
    release_resolution,
    to_mark_resolved,
    to_post,
    to_remind,
)
from operations.auth import Actor
from operations.cards import deleted_connection
from operations.order_health import Changes, evaluate_orders

log = logging.getLogger(__name__)

FLUSH_EVERY_SECONDS = 60.0


# Slack's answers when an alert message can no longer be updated: retrying would not help.
GONE = frozenset({"message_not_found", "channel_not_found", "is_archived", "cant_update_message"})


def _message(card: AlertCard) -> tuple[str, str] | None:
    """Where the alert's message is (channel, ts); None while it is not posted."""
    if card.channel is None or card.ts is None:
        return None
    return card.channel, card.ts


class AlertPoster:
    def __init__(self, services: Services):
        self.services = services
        self.ctx = services.ctx
        self._lock = threading.Lock()  # one flush (or in-place update) at a time in this process
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._requested = threading.Lock()
        self._flush_queued = False

    def attach(self) -> AlertPoster:
        events = self.ctx.events
        events.subscribe(CredentialsBroke, self._on_broke)
        events.subscribe(CredentialsFixed, self._on_fixed)
        events.subscribe(ConnectionChanged, self._on_changed)
        events.subscribe(RunFinished, lambda event: self.request_flush())  # the run is judged
        return self

    def request_flush(self) -> None:
        """A flush soon, in the background; requests that arrive before it starts share it (the
        runs of a whole hour finishing at once)."""
        with self._requested:
            if self._flush_queued:
                return
            self._flush_queued = True
        self.services.background(self._requested_flush)

    def _requested_flush(self) -> None:
        with self._requested:
            self._flush_queued = False
        self.flush()

    def start(self, every: float = FLUSH_EVERY_SECONDS) -> None:
        """Retries and reminders in the background, for the life of the process."""

        def loop() -> None:
            while not self._stop.wait(every):
                try:
                    self.flush()
                except Exception:
                    log.exception("alert flush failed")

        self._thread = threading.Thread(target=loop, name="connbot-alerts", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    # ---- events (published by the operation that changed the state) --------------------

    def _on_broke(self, event: CredentialsBroke) -> None:
        self.request_flush()
        self.services.background(
            self._escalation_reply,
            event.team_id,
            event.connection_id,
            f":red_circle: The credentials broke again: {event.code}.",
        )

    def _on_fixed(self, event: CredentialsFixed) -> None:
        self.request_flush()
        if event.by is None:  # a check found them working; a person's re-connect says so itself, once
            self.services.background(
                self._escalation_reply, event.team_id, event.connection_id, resolved_text(event.by, event.at)
            )

    def _on_changed(self, event: ConnectionChanged) -> None:
        if event.what in ("order", "deleted"):  # an order paused or deleted, a connection deleted: alerts closed
            self.request_flush()
        if event.what == "deleted":
            self.services.background(self._escalation_reply, event.team_id, event.connection_id, self._deleted_text)
        elif event.what == "reconnected":
            self.services.background(
                self._escalation_reply,
                event.team_id,
                event.connection_id,
                ":link: Re-connected with new credentials, which work: the credentials are fixed.",
            )

    def _deleted_text(self, team_id: str, connection_id: int) -> str:
        gone = deleted_connection(self.ctx, Actor.system(team_id), connection_id)
        if gone is None:
            return ":wastebasket: The connection was deleted."
        return f":wastebasket: The connection was deleted by {user_mention(gone.deleted_by)} {slack_date(gone.deleted_at)}."

    # ---- the work -----------------------------------------------------------------------

    def flush(self, now: datetime | None = None) -> None:
        now = now or self.ctx.clock.now()
        with self._lock:
            try:
                changes = evaluate_orders(self.ctx, now)
            except Exception:  # credentials alerts and retries must go on
                log.exception("order alerts could not be evaluated; the next flush tries again")
                changes = Changes()
            for alert_id in to_post(self.ctx):
                self._post(alert_id, now)
            for alert_id in to_mark_resolved(self.ctx):
                if claim_resolution(self.ctx, alert_id, now):
                    self._resolve(alert_id)
            for alert_id in to_remind(self.ctx, now):
                if claim_reminder(self.ctx, alert_id, now):
                    self._remind(alert_id)
            for alert_id in changes.opened + changes.resolved:
                card = alert_card(self.ctx, alert_id)
                self._escalation_reply(card.team_id, card.connection_id, escalation_note(card))
                self._listed(card)

    def taken(self, alert_id: int, user_id: str | None, *, taken: bool) -> bool:
        """Someone said "I'm on it" (or released it): the message says so in place, its thread
        and the CSM thread get a note. False when Slack would not update the message."""
        with self._lock:  # read and update together, so the message ends showing the latest owner
            card = alert_card(self.ctx, alert_id)
            shown = self._update(card)
        note = acknowledged_text(user_id, card.acknowledged_at) if taken else released_text(user_id)
        message = _message(card)
        if message is None:
            log.error("alert %s: thread note not posted: the alert is not posted", alert_id)
        else:
            channel, ts = message
            try:
                self.services.client_for(card.team_id).chat_postMessage(channel=channel, thread_ts=ts, text=note)
            except SlackApiError as error:
                log.error("alert %s: thread note not posted: %s", alert_id, error.response.get("error"))
        self._escalation_reply(card.team_id, card.connection_id, taken_note(card, user_id, taken=taken))
        self._listed(card)
        return shown

    def _listed(self, card: AlertCard) -> None:
        """Lists show open alerts first, and who is on them: App Homes being looked at follow."""
        self.services.home.changed(ConnectionChanged(card.team_id, card.connection_id, "alerts"))

    def _update(self, card: AlertCard) -> bool:
        message = _message(card)
        if message is None:
            log.warning("alert %s: could not update it in place: it is not posted", card.id)
            return False
        channel, ts = message
        try:
            self.services.client_for(card.team_id).chat_update(
                channel=channel, ts=ts, text=alert_text(card), blocks=alert_message(card)
            )
            return True
        except SlackApiError as error:
            log.warning("alert %s: could not update it in place: %s", card.id, error.response.get("error"))
            return False

    def _post(self, alert_id: int, now: datetime) -> None:
        card = alert_card(self.ctx, alert_id)
        if not card.channel:
            mark_post_failed(self.ctx, alert_id, "no alert channel")
            log.error(
                "alert %s for connection %s not posted: no alert channel; choose one in the App Home's Settings "
                "(or CONNBOT_ALERT_CHANNEL), or in the connection's Settings tab",
                alert_id,
                card.connection_id,
            )
            return
        if not claim_post(self.ctx, alert_id, now):
            return
        try:
            client = self.services.client_for(card.team_id)
        except NotInstalled as gone:
            mark_post_failed(self.ctx, alert_id, "not installed")
            log.error("alert %s not posted: %s", alert_id, gone.message)
            return
        try:
            try:
                response = client.chat_postMessage(
                    channel=card.channel, text=alert_text(card), blocks=alert_message(card)
                )
            except SlackApiError as error:
                if error.response.get("error") != "not_in_channel":
                    raise
                client.conversations_join(channel=card.channel)  # a public channel: connbot joins it
                response = client.chat_postMessage(
                    channel=card.channel, text=alert_text(card), blocks=alert_message(card)
                )
        except SlackApiError as error:
            code = error.response.get("error")
            mark_post_failed(self.ctx, alert_id, code)
            hint = " (invite connbot to the channel)" if code in ("not_in_channel", "channel_not_found") else ""
            log.error(
                "alert %s could not be posted to %s: %s%s; it will be retried", alert_id, card.channel, code, hint
            )
            return
        mark_posted(self.ctx, alert_id, response["channel"], response["ts"])

    def _resolve(self, alert_id: int) -> None:
        card = alert_card(self.ctx, alert_id)
        message = _message(card)
        if message is None:  # only posted alerts are picked; as good as gone
            log.error("alert %s: could not mark it resolved in Slack: it is not posted", alert_id)
            return
        channel, ts = message
        try:
            client = self.services.client_for(card.team_id)
            client.chat_update(channel=channel, ts=ts, text=alert_text(card), blocks=alert_message(card))
            client.chat_postMessage(channel=channel, thread_ts=ts, text=resolution_text(card))
        except NotInstalled as gone:
            release_resolution(self.ctx, alert_id)  # posted once connbot is installed again
            log.error("alert %s: could not mark it resolved in Slack: %s", alert_id, gone.message)
            return
        except SlackApiError as error:
            code = error.response.get("error")
            if code in GONE:
                log.error("alert %s: could not mark it resolved in Slack: %s; the message is gone", alert_id, code)
                return
            release_resolution(self.ctx, alert_id)  # on-call must not be left with an open alert
            log.error("alert %s: could not mark it resolved in Slack: %s; it will be retried", alert_id, code)

    def _remind(self, alert_id: int) -> None:
        card = alert_card(self.ctx, alert_id)
        message = _message(card)
        if message is None:  # only posted alerts are picked
            log.error("alert %s: reminder not posted: the alert is not posted", alert_id)
            return
        channel, ts = message
        try:
            self.services.client_for(card.team_id).chat_postMessage(
                channel=channel, thread_ts=ts, text=reminder_text(card)
            )
        except NotInstalled as gone:
            log.error("alert %s: reminder not posted: %s", alert_id, gone.message)
        except SlackApiError as error:
            log.error("alert %s: reminder not posted: %s", alert_id, error.response.get("error"))

    def _escalation_reply(self, team_id: str, connection_id: int, text: str | Callable[[str, int], str]) -> None:
        thread = open_escalation(self.ctx, team_id, connection_id)
        if thread is None:
            return
        if callable(text):  # read only when there is a thread to reply in
            text = text(team_id, connection_id)
        channel, thread_ts = thread
        try:
            self.services.client_for(team_id).chat_postMessage(
                channel=channel, thread_ts=thread_ts, text=text, blocks=follow_up(text)
            )
        except NotInstalled as gone:
            log.error("escalation follow-up for connection %s not posted: %s", connection_id, gone.message)
        except SlackApiError as error:
            log.error(
                "escalation follow-up for connection %s not posted: %s", connection_id, error.response.get("error")
            )
