"""The App Home's seam: remembers who has lately looked at it and re-publishes their list after
changes, within Slack's rate for views.publish."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from datetime import datetime, timedelta

from bot.cards import publish_home
from bot.services import Services
from core.events import ConnectionChanged, CredentialsBroke, CredentialsFixed, WorkspaceChanged

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
        # team → user → (when they last opened or paged it, the list offset they are at)
        self._viewers: dict[str, dict[str, tuple[datetime, int]]] = defaultdict(dict)
        self._pending: set[str] = set()
        self._lock = threading.Lock()

    def opened(self, team_id: str, user_id: str) -> None:
        """Published afresh at the page they were at (the list's start the first time)."""
        self.show(team_id, user_id, None)

    def show(self, team_id: str, user_id: str, offset: int | None) -> None:
        """Publish their Home at `offset` (None: where they were), and remember it for re-publishing."""
        with self._lock:
            _, was_at = self._viewers[team_id].get(user_id, (None, 0))
            offset = was_at if offset is None else offset
            self._viewers[team_id][user_id] = (self.services.ctx.clock.now(), offset)
        publish_home(self.services, self.services.roles.viewer(team_id, user_id), offset)

    def changed(self, event) -> None:
        with self._lock:
            if event.team_id in self._pending or not self._viewers.get(event.team_id):
                return
            self._pending.add(event.team_id)
        self.services.background(self._republish, event.team_id)

    def _looking(self, team_id: str) -> list[tuple[str, int]]:
        """Who may still be looking, and at which offset; the others are forgotten (their next
        open publishes)."""
        since = self.services.ctx.clock.now() - STILL_LOOKING
        with self._lock:
            team = self._viewers.get(team_id, {})
            for user_id in [u for u, (at, _) in team.items() if at < since]:
                del team[user_id]
            return sorted((user_id, offset) for user_id, (_, offset) in team.items())

    def _republish(self, team_id: str) -> None:
        time.sleep(republish_window(len(self._looking(team_id)), self.coalesce))
        with self._lock:
            self._pending.discard(team_id)
        for user_id, offset in self._looking(team_id):  # the page each is at, not back to the start
            publish_home(self.services, self.services.roles.viewer(team_id, user_id), offset)

    def attach(self) -> HomeRefresher:
        for event_type in (ConnectionChanged, CredentialsBroke, CredentialsFixed):
            self.services.ctx.events.subscribe(event_type, self.changed)
        # The Home shows the workspace's settings.
        self.services.ctx.events.subscribe(
            WorkspaceChanged, lambda event: self.changed(event) if event.what == "settings" else None
        )
        return self
