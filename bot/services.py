"""What the Slack handlers share: the engine context, roles, the Web API client, a worker pool."""

from __future__ import annotations

import logging
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from slack_sdk import WebClient

from bot.roles import RoleResolver
from engine.context import Context

if TYPE_CHECKING:  # bot/alerts.py and bot/handlers/home.py import this module
    from bot.alerts import AlertPoster
    from bot.handlers.home import HomeRefresher

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Services:
    ctx: Context
    client: WebClient
    roles: RoleResolver
    # Slow work (source calls, syncs) runs here, off bolt's listener threads.
    executor: Executor = field(default_factory=lambda: ThreadPoolExecutor(8, thread_name_prefix="connbot-work"))
    alerts: AlertPoster | None = None  # set by create_app
    home: HomeRefresher | None = None  # set by bot.handlers.home.register

    def background(self, fn, *args, **kwargs):
        def run():
            try:
                return fn(*args, **kwargs)
            except Exception:
                log.exception("background task %s failed", getattr(fn, "__name__", fn))
                raise

        return self.executor.submit(run)
