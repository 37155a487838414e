"""The audit trail: every state change and every refusal."""

from __future__ import annotations

from sqlalchemy.orm import Session

from engine.context import Context
from operations.auth import Actor
from storage.repositories import Audit


def audit(
    ctx: Context,
    session: Session,
    actor: Actor,
    action: str,
    *,
    outcome: str = "ok",
    connection_id: int | None = None,
    order_id: int | None = None,
    **details: object,
) -> None:
    """Record in the caller's unit of work. Details must never hold secrets."""
    Audit(session, actor.team_id).record(
        at=ctx.clock.now(),
        user_id=actor.user_id,
        action=action,
        outcome=outcome,
        connection_id=connection_id,
        order_id=order_id,
        details=details,
    )


def audit_refusal(
    ctx: Context, actor: Actor, action: str, *, connection_id: int | None = None, reason: str = ""
) -> None:
    with ctx.db.begin() as session:
        audit(ctx, session, actor, action, outcome="refused", connection_id=connection_id, reason=reason)
