"""What the Slack handlers share: the engine context, roles, each workspace's Web API client, a
worker pool, and the two background seams (the alert poster, the App Home refresher) as the
small interfaces the handlers and the server use, so this module imports neither (they import it)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from slack_sdk import WebClient

from bot.roles import RoleResolver
from bot.surface import SurfacesBehindModals
from core.logcontext import ContextThreadPoolExecutor
from engine.context import Context

log = logging.getLogger(__name__)


class Alerts(Protocol):
    """bot/alerts.py's AlertPoster: posts alerts, retries and reminds in the background."""

    def start(self, every: float = ...) -> None: ...

    def stop(self) -> None: ...

    def flush(self, now: datetime | None = None) -> None: ...

    def taken(self, alert_id: int, user_id: str | None, *, taken: bool) -> bool: ...


class Home(Protocol):
    """bot/home.py's HomeRefresher: publishes a person's App Home and keeps it current."""

    def opened(self, team_id: str, user_id: str) -> None: ...

    def show(self, team_id: str, user_id: str, offset: int | None) -> None: ...

    def changed(self, event) -> None: ...


@dataclass(eq=False)
class Services:
    ctx: Context
    # The client with the bot token of a workspace (bot/clients.py): every Slack call about a
    # workspace goes through it, whether a request, a job or an alert.
    client_for: Callable[[str], WebClient]
    roles: RoleResolver
    # Slow work (source calls, syncs) runs here, off bolt's listener threads, in the log context
    # of the request that handed it over.
    executor: Executor = field(default_factory=lambda: ContextThreadPoolExecutor(8, thread_name_prefix="connbot-work"))
    alerts: Alerts = field(init=False)  # set by bot.app.create_app
    home: Home = field(init=False)  # set by bot.app.create_app
    # The ephemeral card a modal was opened from, by the modal's view id, to replace it afterwards.
    cards_behind_modals: SurfacesBehindModals = field(init=False)

    def __post_init__(self) -> None:
        self.cards_behind_modals = SurfacesBehindModals(self.ctx.clock.now)

    def background(self, fn, *args, **kwargs):
        def run():
            try:
                return fn(*args, **kwargs)
            except Exception:
                log.exception("background task %s failed", getattr(fn, "__name__", fn))
                raise

        return self.executor.submit(run)
