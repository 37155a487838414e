"""Where a card lives, and how to replace it there.

Ephemeral messages cannot be `chat.update`d: they are replaced through the interaction's
`response_url` (5 uses in 30 minutes). Channel messages use `chat.update`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.webhook import WebhookClient

log = logging.getLogger(__name__)

RESPONSE_URL_USES = 5
RESPONSE_URL_LIFETIME = timedelta(minutes=30)


def _webhook(url: str) -> WebhookClient:
    """response_url posts retry what Slack asks to be retried, like the Web API client."""
    return WebhookClient(
        url,
        timeout=10,
        retry_handlers=[
            RateLimitErrorRetryHandler(max_retry_count=3),
            ServerErrorRetryHandler(max_retry_count=2),
            ConnectionErrorRetryHandler(max_retry_count=2),
        ],
    )


@dataclass
class Surface:
    kind: str  # "ephemeral" | "message" | "view" | "none"
    team_id: str
    user_id: str
    channel_id: str | None = None
    ts: str | None = None
    response_url: str | None = None
    view_id: str | None = None
    thread_ts: str | None = None
    _uses: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def of(cls, body: dict[str, Any]) -> Surface:
        container = body.get("container") or {}
        team_id = (
            (body.get("team") or {}).get("id") or body.get("team_id") or (body.get("user") or {}).get("team_id", "")
        )
        user = body.get("user") or {}
        user_id = user.get("id") if isinstance(user, dict) else body.get("user_id", "")
        user_id = user_id or body.get("user_id", "")
        channel = container.get("channel_id") or (body.get("channel") or {}).get("id") or body.get("channel_id")
        if container.get("type") == "view":
            return cls("view", team_id, user_id, view_id=container.get("view_id"))
        if container.get("type") == "message":
            message = body.get("message") or {}
            return cls(
                "ephemeral" if container.get("is_ephemeral") else "message",
                team_id,
                user_id,
                channel_id=channel,
                ts=container.get("message_ts"),
                response_url=body.get("response_url"),
                thread_ts=message.get("thread_ts"),
            )
        return cls("none", team_id, user_id, channel_id=channel, response_url=body.get("response_url"))

    @property
    def in_dm(self) -> bool:
        """In a direct message (an IM's id starts with D): no one else is there to see a share."""
        return bool(self.channel_id and self.channel_id.startswith("D"))

    @property
    def budget_left(self) -> int:
        """response_url uses left; channel messages have no such budget."""
        return RESPONSE_URL_USES - self._uses if self.kind == "ephemeral" else 1_000

    def replace(self, client: WebClient, blocks: list[dict], text: str) -> bool:
        """Replace the card in place. Returns False when Slack refused it (logged)."""
        try:
            if self.kind == "ephemeral" and self.response_url:
                with self._lock:
                    if self._uses >= RESPONSE_URL_USES:
                        log.warning("response_url exhausted; update dropped")
                        return False
                    self._uses += 1
                response = _webhook(self.response_url).send(replace_original=True, text=text, blocks=blocks)
                if response.status_code != 200:
                    log.warning("response_url answered %s: %s", response.status_code, response.body)
                    return False
                return True
            if self.kind == "message" and self.channel_id and self.ts:
                client.chat_update(channel=self.channel_id, ts=self.ts, text=text, blocks=blocks)
                return True
        except SlackApiError as error:
            log.warning("could not update the card: %s", error.response.get("error"))
            return False
        log.warning("no way to update a %s surface", self.kind)
        return False

    def tell(self, client: WebClient, text: str, blocks: list[dict] | None = None) -> None:
        """A short ephemeral note to the user beside the card."""
        try:
            if self.response_url and self.kind in ("ephemeral", "none", "message") and self.budget_left > 1:
                with self._lock:
                    self._uses += 1
                _webhook(self.response_url).send(
                    replace_original=False, response_type="ephemeral", text=text, blocks=blocks
                )
            elif self.channel_id:
                client.chat_postEphemeral(
                    channel=self.channel_id, user=self.user_id, text=text, blocks=blocks, thread_ts=self.thread_ts
                )
            else:
                client.chat_postMessage(channel=self.user_id, text=text, blocks=blocks)
        except SlackApiError as error:
            log.warning("could not tell the user: %s", error.response.get("error"))


class SurfacesBehindModals:
    """The card a modal was opened from, kept by the modal's view id until its submission.

    An ephemeral card can only be replaced through its `response_url`, and private_metadata
    carries ids only (ARCHITECTURE.md), so the surface stays in this process for the
    `response_url`'s lifetime. A submission that lands elsewhere (another replica, a restart)
    finds nothing here: the caller then falls back to ids in the metadata.
    """

    def __init__(self, now: Callable[[], datetime]):
        self._now = now
        self._kept: dict[str, tuple[datetime, Surface]] = {}
        self._lock = threading.Lock()

    def keep(self, view_id: str | None, surface: Surface) -> None:
        if not view_id:
            return
        now = self._now()
        with self._lock:
            # Modals closed without submitting leave theirs behind: drop the expired ones.
            self._kept = {k: v for k, v in self._kept.items() if now - v[0] < RESPONSE_URL_LIFETIME}
            self._kept[view_id] = (now, surface)

    def take(self, view_id: str | None) -> Surface | None:
        with self._lock:
            kept = self._kept.pop(view_id or "", None)
        if kept is None or self._now() - kept[0] >= RESPONSE_URL_LIFETIME:
            return None
        return kept[1]
