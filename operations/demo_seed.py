"""A demo workspace: connections of the demo source in the states people need to see."""

from __future__ import annotations

from core.credentials import Credentials
from engine.account_sync import sync_accounts
from engine.context import Context
from operations.auth import Actor
from operations.connections import make_connection
from storage.repositories import Connections

SEED_USER = "USLACKBOT"


def seed_demo(ctx: Context, team_id: str, *, many_accounts: int = 5000) -> list[str]:
    """Creates the demo connections unless the team has connections already; returns what was made."""
    actor = Actor(team_id=team_id, user_id=SEED_USER, role=Actor.system(team_id).role)
    with ctx.db.begin() as session:
        if Connections(session, team_id).count() > 0:
            return []
    made = []

    healthy = make_connection(ctx, actor, "demo", {"token": "demo:business=acme,accounts=40"})
    sync_accounts(ctx, team_id, healthy, trigger="connect", user_id=SEED_USER)
    made.append(f"{healthy}: healthy, 40 accounts (Acme Retail)")

    broken = make_connection(ctx, actor, "demo", {"token": "demo:business=globex,accounts=12"})
    sync_accounts(ctx, team_id, broken, trigger="connect", user_id=SEED_USER)
    # The token then expires at the platform: two failed syncs in a row turn the status to Error.
    with ctx.db.begin() as session:
        connection = Connections(session, team_id).get(broken)
        connection.credentials = ctx.vault.encrypt(Credentials({"token": "demo-expired:business=globex,accounts=12"}))
    for _ in range(2):
        sync_accounts(ctx, team_id, broken, trigger="schedule")
    made.append(f"{broken}: credentials error (Globex Travel)")

    empty = make_connection(ctx, actor, "demo", {"token": "demo-empty:business=initech"})
    sync_accounts(ctx, team_id, empty, trigger="connect", user_id=SEED_USER)
    made.append(f"{empty}: no accounts (Initech Software)")

    many = make_connection(ctx, actor, "demo", {"token": f"demo:business=umbrella,accounts={many_accounts}"})
    sync_accounts(ctx, team_id, many, trigger="connect", user_id=SEED_USER)
    made.append(f"{many}: {many_accounts:,} accounts (Umbrella)")
    return made
