"""Roles from the workspace's settings and Slack: its admins and operators (user and user-group
ids, chosen in the App Home's Settings, CONNBOT_ADMINS / CONNBOT_OPERATORS until then), else
workspace admins and owners (users.info, cached a few minutes) are admins and every full member
is an operator: guests, and people connbot cannot see (another organization), only view."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar, cast

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from core.clock import Clock
from core.errors import Unavailable
from operations.auth import Actor, Role
from operations.workspaces import WorkspaceSettings

log = logging.getLogger(__name__)

CACHE_FOR = timedelta(minutes=5)

T = TypeVar("T")


def person(actor: Actor) -> str:
    """The Slack user an actor stands for: the bot answers people, never the system."""
    if actor.user_id is None:
        raise ValueError(f"the system acts in workspace {actor.team_id}: there is no person to answer")
    return actor.user_id


class RoleResolver:
    def __init__(
        self,
        settings_of: Callable[[str], WorkspaceSettings],
        client_for: Callable[[str], WebClient],
        clock: Clock,
    ):
        self.settings_of = settings_of
        self.client_for = client_for
        self.clock = clock
        self._cache: dict[tuple[str, str, str], tuple[object, datetime]] = {}  # key -> (value, kept until)
        self._lock = threading.Lock()

    def actor(self, team_id: str, user_id: str, settings: WorkspaceSettings | None = None) -> Actor:
        """The person's role in the workspace, under its settings (or under `settings`, to check
        what a change of them would do)."""
        settings = settings or self.settings_of(team_id)
        return Actor(
            team_id=team_id,
            user_id=user_id,
            role=self.role(team_id, user_id, settings),
            admins_hint=self._hint(settings.admins, "the workspace admins and owners"),
            operators_hint=self._hint(settings.operators, "all members of the workspace except guests"),
        )

    def viewer(self, team_id: str, user_id: str) -> Actor:
        """For reading: every member may see lists and cards, so no Slack call is needed."""
        return Actor(team_id=team_id, user_id=user_id, role=Role.VIEWER)

    def role(self, team_id: str, user_id: str, settings: WorkspaceSettings | None = None) -> Role:
        settings = settings or self.settings_of(team_id)
        if self._in(team_id, user_id, settings.admins):
            return Role.ADMIN
        if not settings.admins and self._standing(team_id, user_id) == "admin":
            return Role.ADMIN
        if settings.operators:
            return Role.OPERATOR if self._in(team_id, user_id, settings.operators) else Role.VIEWER
        return Role.OPERATOR if self._standing(team_id, user_id) in ("admin", "member") else Role.VIEWER

    def _in(self, team_id: str, user_id: str, ids: tuple[str, ...]) -> bool:
        if user_id in ids:
            return True
        return any(user_id in self._group_members(team_id, gid) for gid in ids if gid.startswith("S"))

    def _cached(self, key: tuple[str, str, str], load: Callable[[], T]) -> T:
        now = self.clock.now()
        with self._lock:
            hit = self._cache.get(key)
            if hit and hit[1] > now:
                return cast(T, hit[0])  # the key's kind ("user", "group") says what load gave
        value = load()
        with self._lock:
            self._cache[key] = (value, now + CACHE_FOR)
        return value

    def _standing(self, team_id: str, user_id: str) -> str:
        """ "admin" (workspace admin or owner), "member", or "guest" (a guest, a deactivated
        account, or someone this app cannot see), from users.info."""

        def load() -> str:
            try:
                user = self.client_for(team_id).users_info(user=user_id)["user"]
            except SlackApiError as error:
                code = error.response.get("error")
                if code in ("user_not_found", "user_not_visible"):
                    return "guest"  # not a member this app can see
                log.warning("users.info failed for a role check: %s", code)
                raise Unavailable(
                    "Could not check your role with Slack just now. Please try again in a minute."
                ) from None
            if user.get("deleted") or user.get("is_restricted") or user.get("is_ultra_restricted"):
                return "guest"
            return "admin" if user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner") else "member"

        # By workspace: in Enterprise Grid one person (one id) may be an admin of one workspace only.
        return self._cached(("user", team_id, user_id), load)

    def _group_members(self, team_id: str, group_id: str) -> frozenset[str]:
        def load() -> frozenset[str]:
            try:
                return frozenset(self.client_for(team_id).usergroups_users_list(usergroup=group_id)["users"])
            except SlackApiError as error:
                log.warning("usergroups.users.list %s failed: %s", group_id, error.response.get("error"))
                return frozenset()

        return self._cached(("group", team_id, group_id), load)

    @staticmethod
    def _hint(ids: tuple[str, ...], default: str) -> str:
        if not ids:
            return default
        return ", ".join(f"<!subteam^{i}>" if i.startswith("S") else f"<@{i}>" for i in ids)
