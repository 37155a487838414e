"""Who is acting, and what their role allows. Checked by every operation, whatever a message shows."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from core.errors import NotAllowed
from engine.context import Context


class Role(IntEnum):
    VIEWER = 1  # see lists and cards
    OPERATOR = 2  # Extract, Sync accounts, Run now, Pause/Resume
    ADMIN = 3  # Make a new connection, Re-connect, Delete connection, Delete order

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Actor:
    team_id: str
    user_id: str | None  # None: the system (scheduler, CLI)
    role: Role
    # Who holds the roles, to tell a refused user whom to ask ("<@U1>, <!subteam^S2>").
    admins_hint: str = "the workspace admins"
    operators_hint: str = "all members of the workspace except guests"

    @classmethod
    def system(cls, team_id: str) -> Actor:
        return cls(team_id=team_id, user_id=None, role=Role.ADMIN)

    def require(self, role: Role, action: str) -> None:
        if self.role >= role:
            return
        holders = self.admins_hint if role is Role.ADMIN else f"{self.operators_hint}, and by admins"
        raise NotAllowed(
            f"You need the {role.label} role to {action}. It is held by {holders}; ask one of them.",
            role=role.label,
            action=action,
        )


def authorize(
    ctx: Context, actor: Actor, role: Role, action: str, connection_id: int, *, include_deleted: bool = False
) -> None:
    """The connection first, then the role: another team's id is "not found" whatever the role,
    so a refusal never tells anyone that a connection exists elsewhere."""
    from storage.repositories import Connections

    with ctx.db.read() as session:
        Connections(session, actor.team_id).require(connection_id, include_deleted=include_deleted)
    actor.require(role, action)
