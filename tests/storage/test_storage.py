from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.exc import IntegrityError

from core.errors import NotFound
from storage.db import Database
from storage.models import Account, AccountSyncRun, Base, Connection, RunStatus
from storage.repositories import Accounts, Audit, Connections, SyncRuns, account_counts_for


# SQLAlchemy cannot reflect SQLite's expression indexes; their presence is checked by name below.
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index")
def test_migrations_from_empty_match_the_models_on_sqlite(tmp_path):
    db = Database(f"sqlite:///{tmp_path}/fresh.db")
    assert not db.has_schema()
    db.upgrade()
    assert db.has_schema() and db.current_revision() is not None
    with db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        indexes = {row[0] for row in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert "ix_accounts_listing" in indexes
    db.upgrade()  # idempotent


@pytest.mark.postgres
def test_migrations_from_empty_match_the_models_on_postgres(fresh_pg_url):
    db = Database(fresh_pg_url)
    assert not db.has_schema()
    db.upgrade()
    with db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    db.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migration_0007_keeps_the_newest_of_two_open_escalation_threads(backend, tmp_path, request):
    from alembic import command
    from sqlalchemy import text

    from storage.db import alembic_config

    url = f"sqlite:///{tmp_path}/old.db" if backend == "sqlite" else request.getfixturevalue("fresh_pg_url")
    db = Database(url)
    with db.engine.begin() as conn:
        cfg = alembic_config(url)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0006")
        conn.execute(
            text(
                "INSERT INTO connections (team_id, source, title, business_account_id, business_account_name, auth_type, "
                "account_sync_mode, credentials_hint, credentials_status, auth_failures, created_by, created_at) "
                "VALUES ('T1', 'demo', 'Demo', 'b', 'B', 'token', 'all', '{}', 'active', 0, 'U1', CURRENT_TIMESTAMP)"
            )
        )
        for ts in ("1.1", "2.2"):  # two threads opened at once before 0007
            conn.execute(
                text(
                    "INSERT INTO escalations (team_id, connection_id, channel, thread_ts, reason, created_by, created_at) "
                    "VALUES ('T1', 1, 'C1', :ts, '', 'U1', CURRENT_TIMESTAMP)"
                ),
                {"ts": ts},
            )
    db.upgrade()
    with db.engine.connect() as conn:
        open_threads = conn.execute(text("SELECT thread_ts FROM escalations WHERE closed_at IS NULL")).scalars().all()
    db.dispose()
    assert open_threads == ["2.2"]


def _add(ctx, team="T1", **kw):
    with ctx.db.begin() as session:
        c = Connection(
            team_id=team,
            source="demo",
            title=kw.pop("title", "Demo · Acme"),
            auth_type="token",
            created_by="U1",
            created_at=ctx.clock.now(),
            **kw,
        )
        Connections(session, team).add(c)
        return c.id


def test_round_trip_keeps_aware_utc_times(ctx):
    cid = _add(ctx, business_account_name="Acme", last_authorized_at=ctx.clock.now())
    with ctx.db.begin() as session:
        c = Connections(session, "T1").get(cid)
        assert c.created_at == ctx.clock.now() and c.created_at.tzinfo is not None
        assert c.credentials_hint == {} and c.credentials_status == "unknown"


def test_every_lookup_is_scoped_by_team(ctx):
    cid = _add(ctx, team="T1")
    with ctx.db.begin() as session:
        with pytest.raises(NotFound):
            Connections(session, "T2").get(cid)
        assert Connections(session, "T2").count() == 0
        assert Connections(session, "T1").count() == 1


def test_deleted_connections_leave_every_list(ctx):
    cid = _add(ctx)
    with ctx.db.begin() as session:
        Connections(session, "T1").get(cid).deleted_at = ctx.clock.now()
    with ctx.db.begin() as session:
        repo = Connections(session, "T1")
        assert repo.count() == 0
        with pytest.raises(NotFound):
            repo.get(cid)
        assert repo.get(cid, include_deleted=True).is_deleted


def test_list_sorts_errors_first_and_searches_safely(ctx):
    ok = _add(ctx, title="Demo · Acme", business_account_name="Acme 100%")
    bad = _add(ctx, title="Demo · Zed", credentials_status="error")
    with ctx.db.begin() as session:
        repo = Connections(session, "T1")
        assert [c.id for c in repo.list(offset=0, limit=10)] == [bad, ok]
        assert [c.id for c in repo.list(offset=0, limit=10, search="100%")] == [ok]
        assert repo.count("1_0") == 0  # LIKE wildcards are literal: "_" does not match "0"
        assert [c.id for c in repo.list(offset=0, limit=10, search=str(bad))] == [bad]


def test_accounts_unique_per_connection_and_counted_in_sql(ctx):
    cid = _add(ctx)
    now = ctx.clock.now()
    with ctx.db.begin() as session:
        for i in range(5):
            session.add(
                Account(
                    connection_id=cid,
                    external_id=f"a{i}",
                    name=f"n{i}",
                    active=i % 2 == 0,
                    added_at=now,
                    last_seen_at=now,
                )
            )
    with ctx.db.begin() as session:
        assert Accounts(session, cid).counts().total == 0  # kept by syncs: none yet
        Accounts(session, cid).recount()
    with ctx.db.begin() as session:
        counts = Accounts(session, cid).counts()
        assert (counts.total, counts.active) == (5, 3)
        assert Accounts(session, cid).count(active_only=True) == 3
        assert Accounts(session, cid).count("n1") == 1  # a search counts the rows
        assert account_counts_for(session, [cid, 999])[999].total == 0
    with pytest.raises(IntegrityError):
        with ctx.db.begin() as session:
            session.add(Account(connection_id=cid, external_id="a1", name="dup", added_at=now, last_seen_at=now))


def test_one_running_sync_per_connection(ctx):
    cid = _add(ctx)
    with ctx.db.begin() as session:
        session.add(AccountSyncRun(connection_id=cid, trigger="manual", started_at=ctx.clock.now()))
    with pytest.raises(IntegrityError):
        with ctx.db.begin() as session:
            session.add(AccountSyncRun(connection_id=cid, trigger="manual", started_at=ctx.clock.now()))
    with ctx.db.begin() as session:  # a finished one does not count
        session.add(
            AccountSyncRun(connection_id=cid, trigger="x", started_at=ctx.clock.now(), status=RunStatus.SUCCEEDED)
        )


def test_audit_is_scoped_and_newest_first(ctx):
    with ctx.db.begin() as session:
        audit = Audit(session, "T1")
        audit.record(at=ctx.clock.now(), user_id="U1", action="a.first", connection_id=1)
        audit.record(at=ctx.clock.now() + timedelta(seconds=1), user_id="U1", action="a.second", connection_id=1)
        Audit(session, "T2").record(at=ctx.clock.now(), user_id="U9", action="other", connection_id=1)
    with ctx.db.begin() as session:
        assert [e.action for e in Audit(session, "T1").recent(connection_id=1)] == ["a.second", "a.first"]


def test_sqlite_readers_do_not_wait_for_a_writer(sqlite_ctx):
    import threading

    cid = _add(sqlite_ctx)
    writing = threading.Event()
    finish = threading.Event()

    def writer():
        with sqlite_ctx.db.begin() as session:
            Connections(session, "T1").get(cid).title = "being renamed"
            session.flush()
            writing.set()
            finish.wait(10)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert writing.wait(10)
        with sqlite_ctx.db.read() as session:  # would block on the write lock with begin()
            assert Connections(session, "T1").get(cid).title == "Demo · Acme"  # the last commit
    finally:
        finish.set()
        thread.join()
    with sqlite_ctx.db.read() as session:
        assert Connections(session, "T1").get(cid).title == "being renamed"


def test_recent_syncs_are_the_latest_the_latest_finished_and_the_running_one(ctx):
    cid = _add(ctx)
    with ctx.db.begin() as session:
        recent = SyncRuns(session).recent(cid)
        assert (recent.latest, recent.finished, recent.running) == (None, None, None)

    def run(status, minutes):
        with ctx.db.begin() as session:
            row = AccountSyncRun(
                connection_id=cid,
                trigger="manual",
                status=status,
                started_at=ctx.clock.now() + timedelta(minutes=minutes),
            )
            session.add(row)
            session.flush()
            return row.id

    older = run(RunStatus.SUCCEEDED, 0)
    failed = run(RunStatus.FAILED, 10)
    with ctx.db.begin() as session:
        recent = SyncRuns(session).recent(cid)
        assert (recent.latest.id, recent.finished.id, recent.running) == (failed, failed, None)
    running = run(RunStatus.RUNNING, 20)
    with ctx.db.begin() as session:
        recent = SyncRuns(session).recent(cid)
        assert (recent.latest.id, recent.finished.id, recent.running.id) == (running, failed, running)
        assert older not in (recent.latest.id, recent.finished.id)
