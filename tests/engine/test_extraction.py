"""Extraction runs from the demo source into a DuckDB warehouse file (and once PostgreSQL), with
the system of record on SQLite and PostgreSQL."""

import logging
import subprocess
import sys
import threading
import uuid
from datetime import date, timedelta

import duckdb
import psycopg
import pytest
from sqlalchemy import select

from core.errors import Conflict, NotFound
from core.events import ConnectionChanged, CredentialsBroke
from engine.account_sync import sync_accounts
from engine.extraction import (
    INTERRUPTED,
    RunResult,
    execute_in_background,
    execute_run,
    recover_interrupted,
    run_order,
    scheduled_order_runner,
    start_run,
)
from engine.scheduler import Scheduler
from operations.auth import Actor, Role
from operations.connections import delete_connection, make_connection, reconnect
from sources.base import Credentials, SourceError, TransientSourceError
from sources.demo import DemoSource
from storage.models import Account, Connection, ExtractionOrder, ExtractionRun, RunStatus
from support import T0, make_context, order_of_every_account

ADMIN = Actor("T1", "UADMIN", Role.ADMIN)
DAILY = {"kind": "daily", "at": "06:00"}
FIELDS = ["campaign_name", "impressions", "clicks", "spend"]
TABLE = "demo__campaign_daily"
# demo:accounts=5 has 4 active accounts (act_1000004 is DISABLED) of 5 campaigns each.
ROWS_PER_DAY = 4 * 5
TODAY = T0.date()  # 2026-11-28


def _connect(ctx, token="demo:accounts=5") -> int:
    cid = make_connection(ctx, ADMIN, "demo", {"token": token})
    sync_accounts(ctx, "T1", cid, trigger="connect")
    return cid


def _order(ctx, cid, *, schedule=DAILY, history_days=6, load_since=None, timezone="UTC") -> int:
    """An order of every account of the connection (the disabled one included: runs skip it)."""
    return order_of_every_account(
        ctx,
        "T1",
        cid,
        template="campaign_daily",
        fields=FIELDS,
        name="Campaigns",
        history_days=history_days,
        load_since=load_since,
        schedule=schedule,
        timezone=timezone,
    )


def _set_token(ctx, cid, token):
    with ctx.db.begin() as session:
        session.get(Connection, cid).credentials = ctx.vault.encrypt(Credentials({"token": token}))


def _run(ctx, run_id) -> ExtractionRun:
    with ctx.db.begin() as session:
        return session.get(ExtractionRun, run_id)


def _order_row(ctx, oid) -> ExtractionOrder:
    with ctx.db.begin() as session:
        return session.get(ExtractionOrder, oid)


def _connection(ctx, cid) -> Connection:
    with ctx.db.begin() as session:
        return session.get(Connection, cid)


def _warehouse(ctx, sql):
    con = duckdb.connect(ctx.settings.warehouse, read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _counts(ctx) -> tuple[int, int]:
    """Rows, and distinct merge keys, of the warehouse table."""
    return _warehouse(
        ctx,
        f'SELECT (SELECT count(*) FROM "{TABLE}"), '
        f'(SELECT count(*) FROM (SELECT DISTINCT date, account_id, campaign_id, _connection_id FROM "{TABLE}"))',
    )[0]


@pytest.fixture
def own_source(ctx):
    """A demo source of the test's own: the registry's instance is shared (and counts flaky requests)."""
    source = DemoSource(sleep=ctx.sleep)
    ctx.source = lambda name: source
    return source


def _raising(error: Exception):
    def extract(*args):
        raise error

    return extract


# --- loading -------------------------------------------------------------------------------------


def test_created_run_loads_the_backfill_and_a_rerun_merges_without_duplicates(ctx):
    changed = []
    ctx.events.subscribe(ConnectionChanged, changed.append)
    cid = _connect(ctx)
    oid = _order(ctx, cid, schedule={"kind": "weekly", "weekday": 0, "at": "06:00"})
    changed.clear()

    first = run_order(ctx, "T1", oid, trigger="created", user_id="UADMIN")

    assert first == RunResult(first.run_id, RunStatus.SUCCEEDED, 7 * ROWS_PER_DAY, None)
    run = _run(ctx, first.run_id)
    assert (run.trigger, run.triggered_by, run.connection_id) == ("created", "UADMIN", cid)
    assert (run.range_start, run.range_end) == (date(2026, 11, 22), TODAY)  # today - 6 days .. today
    assert (run.started_at, run.finished_at, run.rows, run.status) == (T0, T0, 140, "succeeded")
    assert _counts(ctx) == (140, 140)
    assert _warehouse(ctx, f'SELECT min(date), max(date), count(DISTINCT account_id) FROM "{TABLE}"') == [
        (date(2026, 11, 22), TODAY, 4)  # the disabled account is not extracted
    ]
    # The card is told when the run starts (Syncing) and when it ends.
    assert changed == [ConnectionChanged("T1", cid, "run")] * 2

    # A weekly run reloads 9 days, clamped to the backfill: the very same range, merged over.
    second = run_order(ctx, "T1", oid, trigger="manual", user_id="U2")
    assert (second.status, second.rows) == (RunStatus.SUCCEEDED, 140)
    assert (_run(ctx, second.run_id).range_start, _run(ctx, second.run_id).range_end) == (date(2026, 11, 22), TODAY)
    assert _counts(ctx) == (140, 140)
    assert _warehouse(ctx, f'SELECT DISTINCT _run_id FROM "{TABLE}"') == [(second.run_id,)]
    assert _order_row(ctx, oid).status == "active"


def test_a_postgresql_warehouse_merges_too(pg_server, sqlite_url, tmp_path, clock):
    schema = f"wh_extraction_{uuid.uuid4().hex[:10]}"
    warehouse = "postgresql://postgres@127.0.0.1:5432/test"
    ctx = make_context(sqlite_url, tmp_path, clock, CONNBOT_WAREHOUSE=f"{warehouse}?schema={schema}")
    try:
        oid = _order(ctx, _connect(ctx))
        assert run_order(ctx, "T1", oid, trigger="created").rows == 140
        clock.advance(days=1)
        again = run_order(ctx, "T1", oid, trigger="manual")  # 11-26 .. 11-29: three days again, one new
        assert (again.status, again.rows) == (RunStatus.SUCCEEDED, 4 * ROWS_PER_DAY)
        with psycopg.connect(warehouse, autocommit=True) as con:
            rows, runs = con.execute(f'SELECT count(*), count(DISTINCT _run_id) FROM "{schema}"."{TABLE}"').fetchone()
            assert (rows, runs) == (160, 2)
    finally:
        ctx.db.dispose()
        with psycopg.connect(warehouse, autocommit=True) as con:
            con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# --- date ranges -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "start"),
    [
        ({"kind": "hourly", "every_hours": 6}, date(2026, 11, 25)),
        (DAILY, date(2026, 11, 25)),
        ({"kind": "weekly", "weekday": 0, "at": "06:00"}, date(2026, 11, 19)),
        ({"kind": "monthly", "day": 1, "at": "06:00"}, date(2026, 10, 26)),
    ],
    ids=["hourly", "daily", "weekly", "monthly"],
)
def test_later_runs_reload_the_lookback_of_their_schedule(sqlite_ctx, schedule, start):
    ctx = sqlite_ctx
    oid = _order(ctx, _connect(ctx), schedule=schedule, history_days=60)
    created = run_order(ctx, "T1", oid, trigger="created")
    assert (_run(ctx, created.run_id).range_start, created.rows) == (date(2026, 9, 29), 61 * ROWS_PER_DAY)
    later = run_order(ctx, "T1", oid, trigger="schedule", scheduled_for=T0)
    assert (_run(ctx, later.run_id).range_start, _run(ctx, later.run_id).range_end) == (start, TODAY)
    assert later.rows == ((TODAY - start).days + 1) * ROWS_PER_DAY


def test_ranges_are_days_of_the_order_time_zone_and_load_since_wins(ctx):
    cid = _connect(ctx)
    honolulu = _order(ctx, cid, history_days=6, timezone="Pacific/Honolulu")  # 09:00 UTC is 23:00 the day before
    run = _run(ctx, run_order(ctx, "T1", honolulu, trigger="created").run_id)
    assert (run.range_start, run.range_end) == (date(2026, 11, 21), date(2026, 11, 27))

    since = _order(ctx, cid, history_days=365, load_since=date(2026, 11, 1))
    run = _run(ctx, run_order(ctx, "T1", since, trigger="created").run_id)
    assert (run.range_start, run.range_end) == (date(2026, 11, 1), TODAY)


def test_a_later_run_fills_the_days_missed_since_the_last_success(ctx):
    oid = _order(ctx, _connect(ctx))
    run_order(ctx, "T1", oid, trigger="created")  # .. 11-28
    ctx.clock.advance(days=10)  # the scheduler was down
    run = _run(ctx, run_order(ctx, "T1", oid, trigger="schedule", scheduled_for=ctx.clock.now()).run_id)
    assert (run.range_start, run.range_end) == (date(2026, 11, 28), date(2026, 12, 8))  # not only 12-05 ..


def test_the_scheduler_runs_orders_through_the_order_runner(ctx):
    oid = _order(ctx, _connect(ctx))
    run_order(ctx, "T1", oid, trigger="created")
    scheduler = Scheduler(ctx, node_id="n1", runners={"order": scheduled_order_runner(ctx)})
    due = T0.replace(hour=6) + timedelta(days=1)
    ctx.clock.set(due)
    assert scheduler.run_due(due) == [(f"order:{oid}", due)]
    with ctx.db.begin() as session:
        run = session.scalars(select(ExtractionRun).where(ExtractionRun.trigger == "schedule")).one()
        assert (run.scheduled_for, run.status, run.range_start, run.range_end) == (
            due,
            "succeeded",
            date(2026, 11, 26),
            date(2026, 11, 29),
        )


# --- failures ----------------------------------------------------------------------------------------


def test_auth_errors_fail_the_run_feed_the_credentials_and_a_later_success_clears_the_order(ctx):
    broke = []
    ctx.events.subscribe(CredentialsBroke, broke.append)
    cid = _connect(ctx)
    oid = _order(ctx, cid)
    _set_token(ctx, cid, "demo-expired")

    first = run_order(ctx, "T1", oid, trigger="created", user_id="UADMIN")
    assert (first.status, first.rows) == (RunStatus.FAILED, 0)
    assert first.error == "The demo token has expired; reconnect with a fresh one"
    order = _order_row(ctx, oid)
    assert (order.status, order.error_message) == ("error", first.error)
    assert _connection(ctx, cid).credentials_status == "active"  # one failure may be a fluke

    assert run_order(ctx, "T1", oid, trigger="manual").status == RunStatus.FAILED
    connection = _connection(ctx, cid)
    assert (connection.credentials_status, connection.credentials_error_code) == ("error", "token_expired")
    assert len(broke) == 1
    with pytest.raises(Conflict, match="credentials of this connection are not working"):
        start_run(ctx, "T1", oid, trigger="schedule", scheduled_for=T0)

    reconnect(ctx, ADMIN, cid, {"token": "demo:accounts=5"})
    fixed = run_order(ctx, "T1", oid, trigger="manual")
    assert (fixed.status, fixed.error) == (RunStatus.SUCCEEDED, None)
    # The backfill never completed, so this run is the backfill.
    assert (_run(ctx, fixed.run_id).range_start, fixed.rows) == (date(2026, 11, 22), 140)
    order = _order_row(ctx, oid)
    assert (order.status, order.error_message) == ("active", None)


def test_transient_errors_are_retried_and_never_touch_the_credentials(ctx, own_source):
    cid = _connect(ctx)
    oid = _order(ctx, cid)
    _set_token(ctx, cid, "demo-flaky:accounts=5")
    result = run_order(ctx, "T1", oid, trigger="created")
    assert (result.status, result.rows) == (RunStatus.SUCCEEDED, 140)
    assert ctx.waits == [1.0]  # the source's retry_after

    own_source.extract = _raising(TransientSourceError("Timed out", code="timeout"))
    ctx.waits.clear()
    failed = run_order(ctx, "T1", oid, trigger="manual")
    assert (failed.status, failed.error) == (RunStatus.FAILED, "Timed out")
    assert ctx.waits == [2.0, 8.0, 30.0]  # back-off: four attempts in all
    connection = _connection(ctx, cid)
    assert (connection.credentials_status, connection.auth_failures) == ("active", 0)
    assert _order_row(ctx, oid).status == "error"


def test_a_refused_request_fails_the_run_at_once_with_the_reason_and_what_to_do(ctx, own_source):
    cid = _connect(ctx)
    oid = _order(ctx, cid)
    _set_token(ctx, cid, "demo-refused:accounts=5")
    result = run_order(ctx, "T1", oid, trigger="created")
    assert result.status == RunStatus.FAILED and ctx.waits == []  # not retried: nothing to wait for
    assert result.error.startswith("The demo platform refuses this report request")  # the platform's reason
    assert "set up a new one with Extract" in result.error  # and what to do
    assert _order_row(ctx, oid).error_message == result.error
    connection = _connection(ctx, cid)
    assert (connection.credentials_status, connection.auth_failures) == ("active", 0)  # not the credentials


def test_an_unrecognised_error_is_retried_once(ctx, own_source):
    oid = _order(ctx, _connect(ctx))
    calls = []

    def extract(*args):
        calls.append(args)
        raise SourceError("The platform said something odd", code="odd")

    own_source.extract = extract
    result = run_order(ctx, "T1", oid, trigger="created")
    assert (result.status, result.error) == (RunStatus.FAILED, "The platform said something odd")
    assert len(calls) == 2 and ctx.waits == [2.0]


def test_an_unexpected_error_fails_the_run_without_details(ctx, own_source, caplog):
    oid = _order(ctx, _connect(ctx))
    own_source.extract = _raising(RuntimeError("secret internals"))
    result = run_order(ctx, "T1", oid, trigger="created")
    assert (result.status, result.error) == (RunStatus.FAILED, "Internal error; see the logs.")
    assert _run(ctx, result.run_id).finished_at == T0
    assert "secret internals" in caplog.text  # logged with its traceback, not shown


# --- stopping ---------------------------------------------------------------------------------------


class Gate:
    """The slow source's pause before each batch: holds batch `at` until the test lets it go."""

    def __init__(self, at: int):
        self.at, self.calls = at, 0
        self.reached, self.go = threading.Event(), threading.Event()

    def __call__(self, seconds: float) -> None:
        self.calls += 1
        if self.calls == self.at:
            self.reached.set()
            assert self.go.wait(10)


@pytest.mark.parametrize("deleted", ["connection", "order"])
def test_deleting_stops_a_run_at_the_next_batch_boundary(ctx, deleted):
    gate = Gate(at=3)
    source = DemoSource(sleep=gate)
    source.batch_rows = 20  # 140 rows: 7 batches
    ctx.source = lambda name: source
    cid = _connect(ctx)
    oid = _order(ctx, cid)
    _set_token(ctx, cid, "demo-slow:accounts=5")  # pauses before each batch
    run_id = start_run(ctx, "T1", oid, trigger="created", user_id="UADMIN")
    thread = execute_in_background(ctx, "T1", run_id)
    try:
        assert gate.reached.wait(10), "the run never reached its third batch"
        assert _run(ctx, run_id).status == "running"
        if deleted == "connection":
            delete_connection(ctx, ADMIN, cid)
        else:
            with ctx.db.begin() as session:
                session.get(ExtractionOrder, oid).deleted_at = ctx.clock.now()
    finally:
        gate.go.set()
        thread.join(10)
    run = _run(ctx, run_id)
    reason = "The connection was deleted." if deleted == "connection" else "The extraction order was deleted."
    assert (run.status, run.rows, run.error, run.finished_at) == ("cancelled", 60, reason, T0)
    assert gate.calls == 3  # the source was not asked for a fourth batch
    assert _counts(ctx) == (60, 60)  # the three batches loaded stay
    assert _order_row(ctx, oid).status == "active"  # a cancelled run is no error of the order


def test_runs_of_a_deleted_order_or_connection_are_refused(ctx):
    cid = _connect(ctx)
    oid = _order(ctx, cid)
    with ctx.db.begin() as session:
        session.get(ExtractionOrder, oid).deleted_at = T0
    with pytest.raises(NotFound, match="no longer exists"):
        start_run(ctx, "T1", oid, trigger="manual")
    other = _order(ctx, cid)
    delete_connection(ctx, ADMIN, cid)
    with pytest.raises(NotFound, match="connection of this extraction order was deleted"):
        start_run(ctx, "T1", other, trigger="manual")
    with pytest.raises(NotFound):
        start_run(ctx, "T2", other, trigger="manual")  # another team's order


def test_an_order_without_enabled_active_accounts_is_refused(ctx):
    cid = _connect(ctx)
    oid = _order(ctx, cid)
    with ctx.db.begin() as session:
        for account in session.scalars(select(Account).where(Account.connection_id == cid, Account.active.is_(True))):
            account.enabled = False
    with pytest.raises(Conflict, match="active and enabled"):
        start_run(ctx, "T1", oid, trigger="manual")
    assert _run(ctx, 1) is None


# --- one at a time, once per occurrence, recovery -------------------------------------------------


def test_one_running_run_per_order_and_each_occurrence_once(ctx, caplog):
    caplog.set_level(logging.INFO, logger="engine.extraction")
    oid = _order(ctx, _connect(ctx))
    run_id = start_run(ctx, "T1", oid, trigger="manual", user_id="U42")
    with pytest.raises(Conflict, match=r"already running, started by <@U42> at 2026-11-28 09:00 UTC") as refused:
        start_run(ctx, "T1", oid, trigger="manual", user_id="U7")
    assert refused.value.run_id == run_id
    scheduled_order_runner(ctx)("T1", oid, T0)  # skipped, with a log line
    assert "skipped: This order is already running" in caplog.text
    assert execute_run(ctx, "T1", run_id).status == RunStatus.SUCCEEDED
    with pytest.raises(Conflict, match="already finished"):
        execute_run(ctx, "T1", run_id)

    assert run_order(ctx, "T1", oid, trigger="schedule", scheduled_for=T0).status == RunStatus.SUCCEEDED
    with pytest.raises(Conflict, match="has already run"):
        start_run(ctx, "T1", oid, trigger="schedule", scheduled_for=T0)
    with pytest.raises(Conflict, match="first run .* has already started"):
        start_run(ctx, "T1", oid, trigger="created")


def test_a_paused_order_runs_by_hand_only_and_stays_paused(ctx):
    cid = _connect(ctx)
    oid = _order(ctx, cid)
    with ctx.db.begin() as session:
        session.get(ExtractionOrder, oid).status = "paused"
    with pytest.raises(Conflict, match="paused"):
        start_run(ctx, "T1", oid, trigger="schedule", scheduled_for=T0)
    assert run_order(ctx, "T1", oid, trigger="manual").status == RunStatus.SUCCEEDED
    assert _order_row(ctx, oid).status == "paused"
    _set_token(ctx, cid, "demo-expired")
    assert run_order(ctx, "T1", oid, trigger="manual").status == RunStatus.FAILED
    order = _order_row(ctx, oid)  # an Error status would put it back on the schedule
    assert (order.status, order.error_message) == ("paused", "The demo token has expired; reconnect with a fresh one")


def test_recovery_fails_runs_of_dead_processes_only(ctx):
    cid = _connect(ctx)
    live_order, dead_order = _order(ctx, cid), _order(ctx, cid)
    live = start_run(ctx, "T1", live_order, trigger="manual")  # this process holds its lease
    with ctx.db.begin() as session:
        dead = ExtractionRun(
            order_id=dead_order,
            connection_id=cid,
            trigger="schedule",
            started_at=T0 - timedelta(hours=1),
            range_start=TODAY,
            range_end=TODAY,
            status="running",
        )
        session.add(dead)
    ctx.clock.advance(minutes=5)

    assert recover_interrupted(ctx) == 1
    run = _run(ctx, dead.id)
    assert (run.status, run.error, run.finished_at) == ("failed", INTERRUPTED, ctx.clock.now())
    assert _run(ctx, live).status == "running"
    assert execute_run(ctx, "T1", live).status == RunStatus.SUCCEEDED
    assert recover_interrupted(ctx) == 0
    assert run_order(ctx, "T1", dead_order, trigger="manual").status == RunStatus.SUCCEEDED  # free again


CLAIMER = """
import sys
from core.settings import load_settings
from engine.context import Context
from engine.extraction import start_run
from storage.db import Database
from storage.vault import Vault, generate_key

settings = load_settings({"CONNBOT_DATABASE_URL": sys.argv[1], "CONNBOT_DATA_DIR": sys.argv[2]}, dotenv=False)
ctx = Context(settings=settings, db=Database(settings.database_url), vault=Vault([generate_key()]))
print(start_run(ctx, "T1", int(sys.argv[3]), trigger="manual"), flush=True)
sys.stdin.read()  # holds the run until killed
"""


def test_a_run_is_recovered_once_the_process_carrying_it_dies(ctx):
    oid = _order(ctx, _connect(ctx))
    child = subprocess.Popen(
        [sys.executable, "-c", CLAIMER, ctx.settings.database_url, str(ctx.settings.data_dir), str(oid)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        run_id = int(child.stdout.readline())
        assert recover_interrupted(ctx) == 0  # alive: its lease is held
        with pytest.raises(Conflict, match="another connbot process"):
            execute_run(ctx, "T1", run_id)
    finally:
        child.kill()
        child.wait(10)
    assert recover_interrupted(ctx) == 1
    assert (_run(ctx, run_id).status, _run(ctx, run_id).error) == ("failed", INTERRUPTED)


# --- platform errors, against the platforms' fakes ---------------------------------------------------


def _platform_order(ctx, source, name: str, credentials: dict, fields=FIELDS) -> tuple[int, int]:
    ctx.source = lambda _: source
    cid = make_connection(ctx, ADMIN, name, credentials)
    sync_accounts(ctx, "T1", cid, trigger="connect")
    oid = _order(ctx, cid, history_days=2)
    with ctx.db.begin() as session:
        session.get(ExtractionOrder, oid).fields = list(fields)
    return cid, oid


def test_a_facebook_invalid_parameter_fails_the_run_at_once(ctx, graph):
    """Error 100 on the insights request: the run fails at the first answer, asked once."""
    from platforms.fakes_facebook import fb_error

    from sources.facebook_ads import FacebookAdsSource

    graph.add_login("EAAtoken", businesses=[{"id": "900", "name": "Acme Retail"}])
    source = FacebookAdsSource(api_url=graph.url, sleep=ctx.sleep, env={})
    cid, oid = _platform_order(ctx, source, "facebook_ads", {"access_token": "EAAtoken"})
    field = "(#100) Tried accessing nonexisting field (purchase_roas) on node type (AdsInsights)"
    graph.server.fail("/insights", *[fb_error(100, field)] * 4)
    result = run_order(ctx, "T1", oid, trigger="created")
    assert result.status == RunStatus.FAILED and ctx.waits == []
    assert len(graph.server.requests_to("/insights")) == 1  # one bad request, not four
    assert "Tried accessing nonexisting field (purchase_roas)" in result.error and "code 100" in result.error
    assert "set up a new one with Extract" in result.error
    assert _connection(ctx, cid).credentials_status == "active"


def _google_order(ctx, google) -> tuple[int, int]:
    from sources.google_ads import GoogleAdsSource
    from sources.http import HttpSettings

    google.add_client("client", "secret", "1//refresh")
    source = GoogleAdsSource(
        api_url=google.url,
        api_version="v18",
        token_url=google.token_url,
        http=HttpSettings(timeout=5),
        sleep=ctx.sleep,
        env={},
    )
    credentials = {
        "client_id": "client",
        "client_secret": "secret",
        "refresh_token": "1//refresh",
        "developer_token": "DEV-TOKEN",
        "login_customer_id": "1111111111",
    }
    return _platform_order(ctx, source, "google_ads", credentials, ["campaign_name", "impressions", "cost"])


def _google_rows(ctx) -> tuple[int, int]:
    return _warehouse(
        ctx,
        'SELECT (SELECT count(*) FROM "google_ads__campaign_daily"), (SELECT count(*) FROM (SELECT DISTINCT date, '
        'account_id, campaign_id FROM "google_ads__campaign_daily"))',
    )[0]


def test_a_google_error_after_result_batches_fails_the_run_cleanly(ctx, google):
    """A definitive error as the stream's last element: the run fails at once, saying how many rows came
    before it; it is not a success, and the order shows the error."""
    from platforms.fakes_google import ads_error, stream_ending_in

    _, oid = _google_order(ctx, google)
    google.then["2222222222 SELECT segments.date"] = stream_ending_in(
        ads_error(400, "INVALID_ARGUMENT", "queryError", "PROHIBITED_METRIC_IN_SELECT_OR_WHERE_CLAUSE", "no")
    )
    result = run_order(ctx, "T1", oid, trigger="created")
    assert result.status == RunStatus.FAILED and ctx.waits == []
    assert result.rows == 6 and _run(ctx, result.run_id).rows == 6  # the batches before the error
    assert "PROHIBITED_METRIC_IN_SELECT_OR_WHERE_CLAUSE" in result.error
    order = _order_row(ctx, oid)
    assert (order.status, order.error_message) == ("error", result.error)


def test_a_transient_google_error_after_result_batches_reloads_the_range_exactly(ctx, google):
    from platforms.fakes_google import ads_error, stream_ending_in

    _, oid = _google_order(ctx, google)
    google.then["2222222222 SELECT segments.date"] = stream_ending_in(
        ads_error(429, "RESOURCE_EXHAUSTED", "quotaError", "RESOURCE_EXHAUSTED", "quota", retry_delay="3s")
    )
    result = run_order(ctx, "T1", oid, trigger="created")
    assert result.status == RunStatus.SUCCEEDED and ctx.waits == [3.0]  # the wait the platform asked for
    assert _google_rows(ctx) == (result.rows, result.rows)  # retried whole, merged: no duplicates
