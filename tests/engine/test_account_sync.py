"""Account sync against the demo source, on SQLite and PostgreSQL."""

import dataclasses
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import event, select

from core.errors import Conflict, NotFound
from core.events import CredentialsBroke, CredentialsFixed
from engine.account_sync import run_sync, start_sync, sync_accounts, sync_threads
from operations.auth import Actor
from operations.connections import make_connection
from sources.base import Credentials, RefusedRequest, SourceError
from sources.demo import DemoSource
from storage.models import Account, AccountSyncRun, Connection, RunStatus

ADMIN = Actor("T1", "UADMIN", Actor.system("T1").role)


def _connect(ctx, token="demo:accounts=30", mode="all"):
    return make_connection(ctx, ADMIN, "demo", {"token": token}, mode)


def _set_token(ctx, cid, token):
    with ctx.db.begin() as session:
        session.get(Connection, cid).credentials = ctx.vault.encrypt(Credentials({"token": token}))


def _accounts(ctx, cid):
    with ctx.db.begin() as session:
        return {a.external_id: a for a in session.scalars(select(Account).where(Account.connection_id == cid))}


def test_first_sync_adds_every_account_enabled_in_all_mode(ctx):
    cid = _connect(ctx)
    seen = []
    result = sync_accounts(ctx, "T1", cid, trigger="connect", progress=seen.append)
    assert (result.status, result.added, result.removed, result.accounts_read) == (RunStatus.SUCCEEDED, 30, 0, 30)
    accounts = _accounts(ctx, cid)
    assert len(accounts) == 30 and all(a.enabled for a in accounts.values())
    assert any(not a.active for a in accounts.values())  # the demo has DISABLED/CLOSED ones
    assert seen == [30]


def test_selected_mode_adds_accounts_not_enabled(ctx):
    cid = _connect(ctx, mode="selected")
    sync_accounts(ctx, "T1", cid, trigger="connect")
    assert not any(a.enabled for a in _accounts(ctx, cid).values())


def test_resync_marks_vanished_and_adds_new_writing_only_changes(ctx):
    cid = _connect(ctx, "demo:accounts=30")
    sync_accounts(ctx, "T1", cid, trigger="connect")
    _set_token(ctx, cid, "demo:accounts=20")
    writes = []

    @event.listens_for(ctx.db.engine, "before_cursor_execute")
    def count(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith(("INSERT INTO ACCOUNTS", "UPDATE ACCOUNTS")):
            writes.append(statement)

    result = sync_accounts(ctx, "T1", cid, trigger="manual", user_id="U1")
    event.remove(ctx.db.engine, "before_cursor_execute", count)
    assert (result.added, result.removed, result.changed) == (0, 10, 0)
    assert len(writes) == 1  # one bulk update of the vanished ones, nothing for the unchanged 20
    accounts = _accounts(ctx, cid)
    assert len(accounts) == 30  # never hard-deleted
    gone = [a for a in accounts.values() if a.removed_at is not None]
    assert len(gone) == 10 and all(not a.active for a in gone)

    _set_token(ctx, cid, "demo:accounts=30")
    result = sync_accounts(ctx, "T1", cid, trigger="manual")
    assert (result.added, result.removed, result.changed) == (0, 0, 10)  # they came back
    assert all(a.removed_at is None for a in _accounts(ctx, cid).values())


def test_transient_errors_are_retried_and_never_touch_credentials(ctx):
    cid = _connect(ctx)
    _set_token(ctx, cid, "demo-flaky:accounts=5")
    result = sync_accounts(ctx, "T1", cid, trigger="manual")
    assert result.status == RunStatus.SUCCEEDED and result.added == 5
    assert ctx.waits == [1.0]  # the source's retry_after, honoured without sleeping in tests
    with ctx.db.begin() as session:
        assert session.get(Connection, cid).credentials_status == "active"


@pytest.mark.parametrize(
    "error, tries, waits",
    [
        (RefusedRequest("The platform refuses the request as it is", code="invalid_parameter"), 1, []),
        (SourceError("The platform said something odd", code="odd"), 2, [2.0]),
    ],
)
def test_refused_requests_are_not_retried_and_unrecognised_errors_once(ctx, error, tries, waits):
    cid = _connect(ctx)
    source, calls = DemoSource(sleep=ctx.sleep), []

    def list_accounts(credentials):
        calls.append(credentials)
        raise error

    source.list_accounts = list_accounts
    ctx.source = lambda name: source
    result = sync_accounts(ctx, "T1", cid, trigger="manual")
    assert (result.status, result.error) == (RunStatus.FAILED, error.message)
    assert (len(calls), ctx.waits) == (tries, waits)
    with ctx.db.begin() as session:
        assert session.get(Connection, cid).credentials_status == "active"


def test_two_definitive_auth_errors_in_a_row_set_error_and_success_fixes(ctx):
    cid = _connect(ctx)
    sync_accounts(ctx, "T1", cid, trigger="connect")
    events = []
    ctx.events.subscribe(CredentialsBroke, events.append)
    ctx.events.subscribe(CredentialsFixed, events.append)
    _set_token(ctx, cid, "demo-expired")
    first = sync_accounts(ctx, "T1", cid, trigger="schedule")
    assert first.status == RunStatus.FAILED
    with ctx.db.begin() as session:
        assert session.get(Connection, cid).credentials_status == "active"  # one failure may be a fluke
    sync_accounts(ctx, "T1", cid, trigger="schedule")
    with ctx.db.begin() as session:
        c = session.get(Connection, cid)
        assert (c.credentials_status, c.credentials_error_code) == ("error", "token_expired")
        assert c.credentials_error_since == ctx.clock.now()
    sync_accounts(ctx, "T1", cid, trigger="schedule")  # still broken: no second "broke" event
    assert [type(e) for e in events] == [CredentialsBroke]
    _set_token(ctx, cid, "demo:accounts=30")
    sync_accounts(ctx, "T1", cid, trigger="schedule")
    assert [type(e) for e in events] == [CredentialsBroke, CredentialsFixed]
    assert len(_accounts(ctx, cid)) == 30  # failures never removed accounts


def test_a_second_sync_while_one_runs_is_refused_with_who_started_it(ctx):
    cid = _connect(ctx)
    run_id = start_sync(ctx, "T1", cid, trigger="manual", user_id="U42")
    with pytest.raises(Conflict, match="already syncing, started by <@U42>"):
        start_sync(ctx, "T1", cid, trigger="manual", user_id="U7")
    run_sync(ctx, "T1", run_id)
    start_sync(ctx, "T1", cid, trigger="manual", user_id="U7")  # free again


def test_sync_of_a_deleted_connection_stops_and_is_recorded_cancelled(ctx):
    cid = _connect(ctx, "demo:accounts=2000")
    run_id = start_sync(ctx, "T1", cid, trigger="manual")
    with ctx.db.begin() as session:
        c = session.get(Connection, cid)
        c.deleted_at, c.credentials = ctx.clock.now(), None
    assert run_sync(ctx, "T1", run_id).status == RunStatus.CANCELLED
    assert _accounts(ctx, cid) == {}


def test_a_sync_left_running_by_a_dead_process_does_not_block_forever(ctx):
    cid = _connect(ctx)
    start_sync(ctx, "T1", cid, trigger="manual", user_id="U42")  # its process "dies" here
    with pytest.raises(Conflict):
        start_sync(ctx, "T1", cid, trigger="manual")
    ctx.clock.advance(hours=2)
    run_id = start_sync(ctx, "T1", cid, trigger="manual")
    assert run_sync(ctx, "T1", run_id).status == RunStatus.SUCCEEDED


def test_a_login_of_several_pages_is_read_page_by_page_with_progress(ctx):
    cid = _connect(ctx, "demo:accounts=1200")  # pages of 500
    seen = []
    result = sync_accounts(ctx, "T1", cid, trigger="connect", progress=seen.append)
    assert (result.status, result.added, result.accounts_read) == (RunStatus.SUCCEEDED, 1200, 1200)
    assert seen == [500, 1000, 1200]
    assert len(_accounts(ctx, cid)) == 1200

    _set_token(ctx, cid, "demo:accounts=1100")
    result = sync_accounts(ctx, "T1", cid, trigger="manual")
    assert (result.added, result.removed, result.changed) == (0, 100, 0)
    with ctx.db.begin() as session:
        connection = session.get(Connection, cid)
        assert connection.accounts_total == 1100
        assert 0 < connection.accounts_active < 1100  # the demo has DISABLED/CLOSED ones


def test_a_connection_deleted_between_pages_cancels_and_undoes_the_page_being_written(ctx):
    cid = _connect(ctx, "demo:accounts=1200")
    run_id = start_sync(ctx, "T1", cid, trigger="manual")

    def delete_after_first_page(read):
        if read == 500:
            with ctx.db.begin() as session:
                session.get(Connection, cid).deleted_at = ctx.clock.now()

    result = run_sync(ctx, "T1", run_id, progress=delete_after_first_page)
    assert result.status == RunStatus.CANCELLED
    assert len(_accounts(ctx, cid)) == 500  # the first page only: the second was rolled back


def test_an_uninstall_between_pages_cancels_the_sync_and_says_so(ctx):
    from engine.executor import UNINSTALLED
    from operations.workspaces import uninstall

    cid = _connect(ctx, "demo:accounts=1200")
    run_id = start_sync(ctx, "T1", cid, trigger="manual")

    def uninstalled_after_first_page(read):
        if read == 500:
            uninstall(ctx, team_id="T1", enterprise_id=None, is_enterprise_install=False, reason="app_uninstalled")

    result = run_sync(ctx, "T1", run_id, progress=uninstalled_after_first_page)
    assert result.status == RunStatus.CANCELLED
    with ctx.db.begin() as session:
        assert session.get(AccountSyncRun, run_id).error == UNINSTALLED
    assert len(_accounts(ctx, cid)) == 500  # the first page only: the second was rolled back


def test_a_claimed_sync_cannot_be_run_in_the_name_of_another_team(ctx):
    cid = _connect(ctx)
    run_id = start_sync(ctx, "T1", cid, trigger="manual")
    with pytest.raises(NotFound):
        run_sync(ctx, "T2", run_id)
    assert _accounts(ctx, cid) == {}
    assert run_sync(ctx, "T1", run_id).status == RunStatus.SUCCEEDED


class _RequestsInFlight:
    """The demo source, counting the account-list requests in flight across syncs."""

    def __init__(self, ctx, hold: float = 0.0):
        self.demo, self.hold = ctx.source("demo"), hold
        self.lock, self.now, self.most, self.made = threading.Lock(), 0, 0, threading.Event()

    def __getattr__(self, name):
        return getattr(self.demo, name)

    def list_accounts(self, credentials):
        pages = iter(self.demo.list_accounts(credentials))
        while True:
            with self.lock:
                self.now += 1
                self.most = max(self.most, self.now)
            self.made.set()
            time.sleep(self.hold)
            page = next(pages, None)
            with self.lock:
                self.now -= 1
            if page is None:
                return
            yield page


def _with_concurrency(ctx, n):
    return dataclasses.replace(ctx, settings=dataclasses.replace(ctx.settings, sync_concurrency=n))


def test_syncs_keep_at_most_the_configured_requests_in_flight_to_sources(ctx):
    ctx = _with_concurrency(ctx, 2)
    source = _RequestsInFlight(ctx, hold=0.03)
    ctx.source = lambda name: source
    ids = [_connect(ctx) for _ in range(6)]
    with ThreadPoolExecutor(sync_threads(2)) as pool:
        results = list(pool.map(lambda cid: sync_accounts(ctx, "T1", cid, trigger="schedule"), ids))
    assert [r.status for r in results] == [RunStatus.SUCCEEDED] * 6
    assert source.most == 2


def test_a_sync_between_two_pages_leaves_its_slot_to_another_sync(ctx):
    """One slot: the first sync, its first page written, waits for the second sync's request."""
    ctx = _with_concurrency(ctx, 1)
    source = _RequestsInFlight(ctx)
    ctx.source = lambda name: source
    paged, other = _connect(ctx, "demo:accounts=600"), _connect(ctx)
    other_requested = []

    def after_first_page(read):
        if read == 500:
            source.made.clear()
            second.start()
            other_requested.append(source.made.wait(5))

    second = threading.Thread(target=sync_accounts, args=(ctx, "T1", other), kwargs={"trigger": "schedule"})
    result = sync_accounts(ctx, "T1", paged, trigger="schedule", progress=after_first_page)
    second.join(5)
    assert other_requested == [True]
    assert result.status == RunStatus.SUCCEEDED and len(_accounts(ctx, other)) == 30
