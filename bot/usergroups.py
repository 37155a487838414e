"""A workspace's user groups, for the Settings modal's pickers: `usergroups.list` (the
`usergroups:read` scope; a Tier 2 method, about 20 calls a minute), kept a few minutes per
workspace so that typing in a picker does not call Slack at each key."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from slack_sdk.errors import SlackApiError

from bot.blocks.common import SELECT_OPTIONS_MAX
from bot.services import Services

log = logging.getLogger(__name__)

KEEP_FOR = timedelta(minutes=5)


@dataclass(frozen=True)
class UserGroup:
    id: str
    handle: str
    name: str

    @property
    def label(self) -> str:
        return f"@{self.handle} ({self.name})" if self.name and self.name != self.handle else f"@{self.handle}"


class UserGroups:
    def __init__(self, services: Services):
        self.services = services
        self._kept: dict[str, tuple[datetime, tuple[UserGroup, ...]]] = {}
        self._lock = threading.Lock()

    def of(self, team_id: str) -> tuple[UserGroup, ...]:
        """The workspace's enabled user groups; none when Slack cannot list them just now."""
        now = self.services.ctx.clock.now()
        with self._lock:
            kept = self._kept.get(team_id)
            if kept is not None and kept[0] > now:
                return kept[1]
        try:
            answer = self.services.client_for(team_id).usergroups_list(include_disabled=False)
        except SlackApiError as error:
            log.warning("usergroups.list failed: %s", error.response.get("error"))
            return ()
        groups = tuple(
            sorted(
                (UserGroup(g["id"], g.get("handle") or g["id"], g.get("name") or "") for g in answer["usergroups"]),
                key=lambda g: g.handle.lower(),
            )
        )
        with self._lock:
            self._kept[team_id] = (now + KEEP_FOR, groups)
        return groups

    def labels(self, team_id: str) -> dict[str, str]:
        return {group.id: group.label for group in self.of(team_id)}

    def matching(self, team_id: str, typed: str) -> list[UserGroup]:
        """The groups whose handle or name contains what was typed, at most SELECT_OPTIONS_MAX."""
        typed = typed.strip().lstrip("@").lower()
        found = [g for g in self.of(team_id) if typed in g.handle.lower() or typed in g.name.lower()]
        return found[:SELECT_OPTIONS_MAX]
