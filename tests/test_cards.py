"""The card's read model (operations.cards.load_card), on SQLite and PostgreSQL."""

from datetime import timedelta

import pytest

from core.errors import NotFound
from operations.auth import Actor
from operations.cards import ORDERS_PAGE_SIZE, Tombstone, connection_summary, deleted_connection, load_card
from operations.connections import connection_setup, make_connection
from operations.orders import open_setup
from storage.models import Account, Connection, ExtractionOrder, ExtractionRun, OrderAccount, RunStatus

ADMIN = Actor("T1", "UADMIN", Actor.system("T1").role)


def _order(session, ctx, cid, n, *, team="T1", deleted=False, status="active", accounts=(), runs=()):
    now = ctx.clock.now()
    order = ExtractionOrder(
        team_id=team,
        connection_id=cid,
        name=f"order {n}",
        template="campaign_daily",
        fields=["impressions"],
        schedule={"kind": "daily", "at": "06:00"},
        timezone="UTC",
        status=status,
        created_by="U1",
        created_at=now - timedelta(minutes=100 - n),
        deleted_at=now if deleted else None,
    )
    session.add(order)
    session.flush()
    session.add_all(OrderAccount(order_id=order.id, account_id=a) for a in accounts)
    for minutes, run_status, rows in runs:
        session.add(
            ExtractionRun(
                order_id=order.id,
                connection_id=cid,
                trigger="manual",
                rows=rows,
                status=run_status,
                started_at=now + timedelta(minutes=minutes),
            )
        )
    return order.id


def test_orders_tab_shows_a_page_with_account_counts_and_each_orders_newest_run(ctx):
    cid = make_connection(ctx, ADMIN, "demo", {"token": "demo:accounts=3"})
    other = make_connection(ctx, Actor("T2", "U2", Actor.system("T2").role), "demo", {"token": "demo:accounts=3"})
    now = ctx.clock.now()
    with ctx.db.begin() as session:
        accounts = []
        for i in range(3):
            account = Account(connection_id=cid, external_id=f"a{i}", name=f"A{i}", added_at=now, last_seen_at=now)
            session.add(account)
            session.flush()
            accounts.append(account.id)
        session.get(Account, accounts[2]).active = False  # a sync found it gone
        plain = _order(session, ctx, cid, 1)
        ran = _order(
            session, ctx, cid, 2, accounts=accounts[:2], runs=[(0, RunStatus.FAILED, 5), (10, RunStatus.SUCCEEDED, 70)]
        )
        running = _order(
            session,
            ctx,
            cid,
            3,
            accounts=accounts,
            status="paused",
            runs=[(0, RunStatus.SUCCEEDED, 1), (20, RunStatus.RUNNING, 0)],
        )
        _order(session, ctx, cid, 4, deleted=True)
        stranded = _order(session, ctx, cid, 6, accounts=accounts[2:])  # only the account gone inactive
        _order(session, ctx, other, 5, team="T2")

    card = load_card(ctx, ADMIN, cid, "orders")
    rows = {row.id: row for row in card.content.orders}
    assert [row.id for row in card.content.orders] == [stranded, running, ran, plain]  # newest first, live only
    assert card.content.page.total == 4
    assert rows[stranded].status == "Cannot run" and rows[stranded].usable_accounts == 0
    assert [rows[i].accounts for i in (plain, ran, running)] == [0, 2, 3]
    assert [rows[i].usable_accounts for i in (plain, ran, running)] == [0, 2, 2]
    assert rows[plain].last_run is None and rows[plain].status == "Active"
    assert (rows[ran].last_run.status, rows[ran].last_run.rows) == (RunStatus.SUCCEEDED, 70)
    assert rows[running].status == "Syncing" and rows[running].last_run.status == RunStatus.RUNNING
    assert rows[running].next_run_at is None  # paused
    assert rows[plain].next_run_at == rows[ran].next_run_at is not None


def test_orders_tab_past_its_end_shows_the_last_page(ctx):
    cid = make_connection(ctx, ADMIN, "demo", {"token": "demo:accounts=3"})
    with ctx.db.begin() as session:
        for n in range(ORDERS_PAGE_SIZE + 2):
            _order(session, ctx, cid, n)
    second = load_card(ctx, ADMIN, cid, "orders", page=1).content
    assert (second.page.offset, second.page.total, len(second.orders)) == (ORDERS_PAGE_SIZE, ORDERS_PAGE_SIZE + 2, 2)
    beyond = load_card(ctx, ADMIN, cid, "orders", page=5).content
    assert beyond == second
    with ctx.db.begin() as session:
        for order in session.query(ExtractionOrder).all():
            order.deleted_at = ctx.clock.now()
    empty = load_card(ctx, ADMIN, cid, "orders", page=1).content
    assert (empty.orders, empty.page.offset, empty.page.total) == ((), 0, 0)


def test_a_deleted_connection_is_a_tombstone_on_its_card_and_not_found_everywhere_else(ctx):
    cid = make_connection(ctx, ADMIN, "demo", {"token": "demo:accounts=3"})
    with ctx.db.begin() as session:
        session.get(Connection, cid).deleted_at = ctx.clock.now()
    assert isinstance(load_card(ctx, ADMIN, cid), Tombstone)
    for read in (connection_summary, connection_setup, lambda c, a, i: open_setup(c, a, i, limit=5)):
        with pytest.raises(NotFound):
            read(ctx, ADMIN, cid)


def test_deleted_connection_is_its_tombstone_only_once_deleted_and_only_for_its_team(ctx):
    cid = make_connection(ctx, ADMIN, "demo", {"token": "demo:accounts=3"})
    assert deleted_connection(ctx, ADMIN, cid) is None
    with ctx.db.begin() as session:
        c = session.get(Connection, cid)
        c.deleted_at, c.deleted_by = ctx.clock.now(), "UADMIN"
    assert deleted_connection(ctx, ADMIN, cid) == load_card(ctx, ADMIN, cid)
    assert deleted_connection(ctx, Actor("T2", "U2", ADMIN.role), cid) is None  # another team's: nothing to say
