"""Bulk writes and lookups (storage/bulk.py) read back through the ORM, on SQLite and PostgreSQL."""

from datetime import timedelta

from sqlalchemy import select

from storage.bulk import insert_rows, one_of
from storage.models import Account, Connection


def _connection(ctx) -> int:
    with ctx.db.begin() as session:
        connection = Connection(
            team_id="T1",
            source="demo",
            title="Demo",
            business_account_id="b",
            business_account_name="B",
            auth_type="token",
            account_sync_mode="all",
            credentials_hint={},
            created_by="U1",
            created_at=ctx.clock.now(),
        )
        session.add(connection)
        session.flush()
        return connection.id


def test_inserted_rows_read_back_as_written_with_the_shared_values(ctx):
    cid = _connection(ctx)
    now = ctx.clock.now()
    rows = [
        dict(
            external_id=f"a{i}",
            name=f"Ünïcode ‘{i}’ <&>",
            currency="EUR",
            timezone="Europe/Paris",
            status="ACTIVE" if i % 2 else "CLOSED",
            active=bool(i % 2),
        )
        for i in range(300)
    ]
    with ctx.db.begin() as session:
        shared = dict(connection_id=cid, enabled=False, added_at=now, last_seen_at=now + timedelta(seconds=1))
        assert insert_rows(session.connection(), Account.__table__, shared, rows) == 300
        assert insert_rows(session.connection(), Account.__table__, shared, []) == 0
    with ctx.db.begin() as session:
        accounts = session.scalars(select(Account).where(Account.connection_id == cid).order_by(Account.id)).all()
        assert [(a.external_id, a.name, a.active, a.status) for a in accounts] == [
            (r["external_id"], r["name"], r["active"], r["status"]) for r in rows
        ]
        assert {(a.enabled, a.added_at, a.last_seen_at, a.removed_at) for a in accounts} == {
            (False, now, now + timedelta(seconds=1), None)
        }


def test_one_of_matches_exactly_the_values_given(ctx):
    cid = _connection(ctx)
    now = ctx.clock.now()
    with ctx.db.begin() as session:
        rows = [
            dict(external_id=f"a{i}", name="n", currency="", timezone="", status="ACTIVE", active=True)
            for i in range(50)
        ]
        insert_rows(
            session.connection(),
            Account.__table__,
            dict(connection_id=cid, enabled=True, added_at=now, last_seen_at=now),
            rows,
        )
    with ctx.db.begin() as session:
        conn = session.connection()
        wanted = ["a3", "a7", "a49", "nope", "a3"]
        found = (
            conn.execute(select(Account.external_id).where(one_of(conn, Account.external_id, wanted))).scalars().all()
        )
        assert sorted(found) == ["a3", "a49", "a7"]
