"""App Home: the connected sources list for the user who opens it, re-published after changes."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from datetime import datetime, timedelta

from slack_bolt import App

from bot.cards import publish_home
from bot.errors import guarded
from bot.services import Services
from core.events import ConnectionChanged, CredentialsBroke, CredentialsFixed

# Changes arrive in bursts (a sync per connection at 03:00): one re-publish per team per window.
COALESCE_SECONDS = 2.0
# Slack publishes the Home afresh whenever it is opened (app_home_opened): only someone who opened
# it lately may still be looking at it and need it re-published after a change.
STILL_LOOKING = timedelta(minutes=30)
# views.publish is a Tier 4 method (100+ calls a minute): re-publishing keeps under half of it,
# leaving the rest for Homes being opened.
REPUBLISHES_PER_MINUTE = 50


def republish_window(viewers: int, coalesce: float = COALESCE_SECONDS) -> float:
    """Seconds to gather changes before re-publishing `viewers` Homes, within the rate above."""
    return max(coalesce, viewers * 60.0 / REPUBLISHES_PER_MINUTE)


class HomeRefresher:
    """Remembers who has lately looked at the App Home and keeps their list current."""

    def __init__(self, services: Services, coalesce: float = COALESCE_SECONDS):
        self.services = services
        self.coalesce = coalesce
        self._viewers: dict[str, dict[str, datetime]] = defaultdict(dict)  # team → user → opened at
        self._pending: set[str] = set()
        self._lock = threading.Lock()

    def opened(self, team_id: str, user_id: str) -> None:
        with self._lock:
            self._viewers[team_id][user_id] = self.services.ctx.clock.now()
        publish_home(self.services, self.services.roles.viewer(team_id, user_id))

    def changed(self, event) -> None:
        with self._lock:
            if event.team_id in self._pending or not self._viewers.get(event.team_id):
                return
            self._pending.add(event.team_id)
        self.services.background(self._republish, event.team_id)

    def _looking(self, team_id: str) -> list[str]:
        """Who may still be looking; the others are forgotten (their next open publishes)."""
        since = self.services.ctx.clock.now() - STILL_LOOKING
        with self._lock:
            team = self._viewers.get(team_id, {})
            for user_id in [u for u, at in team.items() if at < since]:
                del team[user_id]
            return sorted(team)

    def _republish(self, team_id: str) -> None:
        time.sleep(republish_window(len(self._looking(team_id)), self.coalesce))
        with self._lock:
            self._pending.discard(team_id)
        for user_id in self._looking(team_id):
            publish_home(self.services, self.services.roles.viewer(team_id, user_id))


def register(app: App, services: Services) -> None:
    guard = guarded(services)
    refresher = HomeRefresher(services)
    for event_type in (ConnectionChanged, CredentialsBroke, CredentialsFixed):
        services.ctx.events.subscribe(event_type, refresher.changed)

    @app.event("app_home_opened")
    @guard
    def home_opened(event: dict, body: dict) -> None:
        if event.get("tab", "home") != "home":
            return
        refresher.opened(body.get("team_id") or event.get("view", {}).get("team_id", ""), event["user"])
