"""App Home: the connected sources list for the user who opens it, re-published after changes."""

from __future__ import annotations

import threading
import time
from collections import defaultdict

from slack_bolt import App

from bot.cards import publish_home
from bot.errors import guarded
from bot.services import Services
from core.events import ConnectionChanged, CredentialsBroke, CredentialsFixed

# Changes arrive in bursts (a sync per connection at 03:00): one re-publish per team per window.
COALESCE_SECONDS = 2.0


class HomeRefresher:
    """Remembers who has looked at the App Home and keeps their list current."""

    def __init__(self, services: Services, coalesce: float = COALESCE_SECONDS):
        self.services = services
        self.coalesce = coalesce
        self._viewers: dict[str, set[str]] = defaultdict(set)
        self._pending: set[str] = set()
        self._lock = threading.Lock()

    def opened(self, team_id: str, user_id: str) -> None:
        with self._lock:
            self._viewers[team_id].add(user_id)
        publish_home(self.services, self.services.roles.viewer(team_id, user_id))

    def changed(self, event) -> None:
        with self._lock:
            if event.team_id in self._pending or not self._viewers.get(event.team_id):
                return
            self._pending.add(event.team_id)
        self.services.background(self._republish, event.team_id)

    def _republish(self, team_id: str) -> None:
        time.sleep(self.coalesce)
        with self._lock:
            self._pending.discard(team_id)
            viewers = sorted(self._viewers.get(team_id, ()))
        for user_id in viewers:
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
