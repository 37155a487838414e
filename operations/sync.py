"""Sync accounts on demand."""

from __future__ import annotations

from engine.account_sync import start_sync
from engine.context import Context
from operations.audit import audit
from operations.auth import Actor, Role, authorize


def request_sync(ctx: Context, actor: Actor, connection_id: int) -> int:
    """Claims a sync run for the connection (Conflict when one is running); the caller runs it."""
    authorize(ctx, actor, Role.OPERATOR, "sync accounts", connection_id)
    run_id = start_sync(ctx, actor.team_id, connection_id, trigger="manual", user_id=actor.user_id)
    with ctx.db.begin() as session:
        audit(ctx, session, actor, "accounts.sync", connection_id=connection_id, run_id=run_id)
    return run_id
