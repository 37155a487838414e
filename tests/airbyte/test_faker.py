"""The bridge against the real `airbyte-source-faker` (installed once into .cache/): check,
discover → templates, incremental extraction with the order's state, a connector killed
mid-read, a stop while it reads, and a planted secret found nowhere."""

from __future__ import annotations

import json
import logging
import os
import signal
import stat
import sys
import tempfile
import threading
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
from sqlalchemy import select

from engine.catalogs import connection_templates, saved_state
from engine.extraction import execute_run, run_order, start_run
from faker_connector import connect_airbyte, faker_config, register_faker
from operations.auth import Actor, Role
from operations.orders import delete_order
from sources.config import config_credentials
from storage.models import Account, AuditEvent, ExtractionRun, RunStatus
from support import assert_not_stored, make_context, order_of_every_account

TEAM = "T0FAKE001"
TABLE = "airbyte:faker__users"


def _order(ctx, cid, template="users", fields=None, history_days=30) -> int:
    if fields is None:
        chosen = next(t for t in connection_templates(ctx, ctx.source("airbyte:faker"), cid) if t.name == template)
        fields = [f.name for f in chosen.fields]
    return order_of_every_account(ctx, TEAM, cid, template=template, fields=fields, history_days=history_days)


def _warehouse(ctx, sql: str):
    with duckdb.connect(ctx.settings.warehouse, read_only=True) as con:
        return con.execute(sql).fetchall()


def _rows_and_keys(ctx) -> tuple[int, int]:
    return _warehouse(ctx, f'SELECT count(*), count(DISTINCT (id, _connection_id)) FROM "{TABLE}"')[0]


def test_discover_gives_the_three_streams_as_templates(sqlite_ctx, faker_installed):
    ctx = sqlite_ctx
    faker_source = register_faker(ctx, *faker_installed)
    cid = connect_airbyte(ctx, faker_source, faker_config(), title="Acme test data")
    templates = {t.name: t for t in connection_templates(ctx, ctx.source(faker_source), cid)}
    assert sorted(templates) == ["products", "purchases", "users"]
    users = templates["users"]
    assert users.primary_key == ("id",) and not users.per_account
    assert users.description == "17 fields · incremental on updated_at · key id"
    types = {f.name: f.type.value for f in users.fields}
    assert (types["id"], types["updated_at"], types["age"], types["address"]) == (
        "integer",
        "timestamp",
        "integer",
        "text",  # a nested object, kept as JSON text
    )
    # Faker's configuration names no platform account: one account stands for the connection,
    # named by the title the form asked for.
    with ctx.db.begin() as session:
        accounts = session.execute(select(Account.external_id, Account.name).where(Account.connection_id == cid)).all()
    assert accounts == [("Acme test data", "Acme test data")]


def test_check_succeeds_and_a_bad_configuration_is_invalid_with_the_connectors_message(sqlite_ctx, faker_installed):
    source = sqlite_ctx.source(register_faker(sqlite_ctx, *faker_installed))
    assert source.title == "Faker"
    assert source.check_credentials(config_credentials(faker_config(), "x")).ok
    bad = source.check_credentials(config_credentials({"count": "many"}, "x"))
    assert (bad.status.value, bad.code) == ("invalid", "config_error")
    assert "'many' is not of type 'integer'" in bad.reason


def test_users_extracted_twice_incrementally(ctx, faker_source):
    cid = connect_airbyte(ctx, faker_source, faker_config(300), title="Acme")
    order_id = _order(ctx, cid)
    first = run_order(ctx, TEAM, order_id, trigger="created")
    assert (first.status, first.rows) == (RunStatus.SUCCEEDED, 300), first.error
    assert _rows_and_keys(ctx) == (300, 300)
    state = saved_state(ctx, order_id)
    assert state[0]["stream"]["stream_state"]["loop_offset"] == 300  # where the next read resumes
    types = dict(
        _warehouse(ctx, f"SELECT column_name, data_type FROM information_schema.columns WHERE table_name = '{TABLE}'")
    )
    assert (types["id"], types["updated_at"], types["address"]) == ("BIGINT", "TIMESTAMP WITH TIME ZONE", "VARCHAR")
    assert "_account_id" not in types  # the rows of a stream are no one account's

    ctx.clock.advance(days=1)
    second = run_order(ctx, TEAM, order_id, trigger="manual")
    # Given the state, faker has nothing newer: nothing is read again, nothing duplicated.
    assert (second.status, second.rows) == (RunStatus.SUCCEEDED, 0), second.error
    assert _rows_and_keys(ctx) == (300, 300)
    with ctx.db.begin() as session:
        run = session.get(ExtractionRun, second.run_id)
    assert run.range_start == (ctx.clock.now() - timedelta(days=31)).date()  # always from the backfill start


@pytest.mark.slow  # two reads of the connector
def test_a_stream_read_again_in_full_is_merged_on_its_key(sqlite_ctx, faker_installed):
    ctx = sqlite_ctx
    source = register_faker(ctx, *faker_installed)
    cid = connect_airbyte(ctx, source, faker_config(250, always_updated=True), title="Acme")
    order_id = _order(ctx, cid, fields=["name", "age"])
    assert run_order(ctx, TEAM, order_id, trigger="created").rows == 250
    again = run_order(ctx, TEAM, order_id, trigger="manual")
    assert again.rows == 250  # always_updated: every user comes again, with a new updated_at
    assert _rows_and_keys(ctx) == (250, 250)
    assert _warehouse(ctx, f'SELECT DISTINCT _run_id FROM "{TABLE}"') == [(again.run_id,)]
    columns = {
        c
        for (c,) in _warehouse(ctx, f"SELECT column_name FROM information_schema.columns WHERE table_name = '{TABLE}'")
    }
    assert {
        "id",
        "name",
        "age",
        "updated_at",
    } <= columns and "email" not in columns  # the chosen fields, key and cursor


def _children_reading(executable: Path) -> list[int]:
    """Pids of this process's children running the connector's `read`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        parent = next((line.split()[1] for line in status.splitlines() if line.startswith("PPid:")), "")
        if parent == str(os.getpid()) and str(executable).encode() in command[:2] and b"read" in command:
            found.append(int(entry.name))
    return found


def _run_in_background(ctx, order_id: int) -> tuple[int, dict, threading.Thread]:
    """The order's first run, claimed here and carried out in a thread: (run id, {"r": its
    result once done}, the thread)."""
    run_id = start_run(ctx, TEAM, order_id, trigger="created")
    result: dict = {}
    worker = threading.Thread(target=lambda: result.update(r=execute_run(ctx, TEAM, run_id)))
    worker.start()
    return run_id, result, worker


def _wait(predicate, timeout: float = 60.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("the condition was not met in time")


@pytest.mark.slow  # 60,000 users, read twice
def test_a_connector_killed_mid_read_fails_the_run_and_the_next_completes_without_duplicates(
    pg_migrated, tmp_path, clock, faker_installed
):
    """Into PostgreSQL, which commits each batch: the state saved covers only committed users."""
    from sqlalchemy import create_engine, text

    warehouse = pg_migrated.replace("postgresql+psycopg", "postgresql") + "?schema=faker_kill"
    ctx = make_context(f"sqlite:///{tmp_path}/connbot.db", tmp_path, clock, CONNBOT_WAREHOUSE=warehouse)
    ctx.db.upgrade()
    executable, spec = faker_installed
    source = register_faker(ctx, executable, spec)
    count = 60_000
    cid = connect_airbyte(ctx, source, faker_config(count, always_updated=True, per_slice=500), title="Acme")
    order_id = _order(ctx, cid, fields=["name"])
    run_id, result, worker = _run_in_background(ctx, order_id)
    try:
        _wait(lambda: saved_state(ctx, order_id))  # some users committed, their state saved
        for pid in _wait(lambda: _children_reading(executable)):
            os.kill(pid, signal.SIGKILL)
    finally:
        worker.join(120)
    failed = result["r"]
    assert failed.status == RunStatus.FAILED and "was killed by signal 9" in failed.error, failed
    engine = create_engine(pg_migrated)

    def ids() -> list[int]:
        with engine.connect() as conn:
            return [i for (i,) in conn.execute(text('SELECT id FROM faker_kill."airbyte:faker__users" ORDER BY id'))]

    loaded = ids()
    covered = saved_state(ctx, order_id)[0]["stream"]["stream_state"]["loop_offset"]
    assert 0 < covered < count
    assert loaded[:covered] == list(range(1, covered + 1))  # everything before the state is committed
    again = run_order(ctx, TEAM, order_id, trigger="manual")
    assert (again.status, again.rows) == (RunStatus.SUCCEEDED, count), again.error
    assert ids() == list(range(1, count + 1))  # complete, and no id twice
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA faker_kill CASCADE"))
    engine.dispose()
    ctx.db.dispose()


def test_deleting_the_order_stops_the_connector_process(sqlite_ctx, faker_installed):
    ctx = sqlite_ctx
    executable, spec = faker_installed
    source = register_faker(ctx, executable, spec)
    cid = connect_airbyte(ctx, source, faker_config(2_000_000, per_slice=1000), title="Acme")
    order_id = _order(ctx, cid, fields=["name"])
    run_id, result, worker = _run_in_background(ctx, order_id)
    try:
        reading = _wait(lambda: _children_reading(executable))
        # While it runs, the run's row says how many rows so far (what the card shows).
        _wait(lambda: _run_rows(ctx, run_id) > 0)
        delete_order(ctx, Actor(TEAM, "UADMIN", Role.ADMIN), cid, order_id)
    finally:
        worker.join(60)
    assert result["r"].status == RunStatus.CANCELLED
    assert result["r"].rows < 2_000_000
    # The connector and its worker pool (its process group) ended with the run.
    assert reading and not [pid for pid in reading if _group_members(pid)]


def _run_rows(ctx, run_id: int) -> int:
    with ctx.db.begin() as session:
        return session.get(ExtractionRun, run_id).rows


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":  # a zombie is already gone
            members.append(int(entry.name))
    return members


SECRET = "pl4nted-S3CRET-vAlue-9f1c"


def _leaky_connector(tmp_path: Path, executable: Path) -> Path:
    """Faker behind a wrapper that prints the configuration's api_key in a LOG, on stderr, and,
    for `check`, in a failure message: everything connbot must scrub."""
    script = tmp_path / "source-leaky"
    script.write_text(
        f"""#!{sys.executable}
import json, os, sys
args = sys.argv[1:]
if "--config" in args:
    key = json.load(open(args[args.index("--config") + 1])).get("api_key", "")
    print(json.dumps({{"type": "LOG", "log": {{"level": "ERROR", "message": "calling with key " + key}}}}), flush=True)
    print("debug: api_key=" + key, file=sys.stderr, flush=True)
    for folder in (".", os.environ.get("TMPDIR") or "/tmp"):  # where a configuration file would lie
        for name in os.listdir(folder):
            path = os.path.join(folder, name)
            if key and os.path.isfile(path) and key in open(path, errors="replace").read():
                sys.exit("the configuration lies on disk: " + path)
    if args[0] == "check" and json.load(open(args[args.index("--config") + 1])).get("fail"):
        print(json.dumps({{"type": "CONNECTION_STATUS", "connectionStatus": {{"status": "FAILED", "message": "key " + key + " refused"}}}}))
        sys.exit(0)
os.execv({str(executable)!r}, [{str(executable)!r}, *args])
"""
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_a_planted_secret_is_found_nowhere(sqlite_ctx, faker_installed, tmp_path, caplog, monkeypatch):
    ctx = sqlite_ctx
    executable, spec = faker_installed
    spec = json.loads(json.dumps(spec))
    spec["connectionSpecification"]["properties"]["api_key"] = {"type": "string", "airbyte_secret": True}
    source_name = register_faker(ctx, _leaky_connector(tmp_path, executable), spec, name="leaky")
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    caplog.set_level(logging.DEBUG)

    source = ctx.source(source_name)
    refused = source.check_credentials(config_credentials({**faker_config(), "api_key": SECRET, "fail": True}, "x"))
    assert refused.status.value == "invalid" and refused.reason == "key *** refused"
    cid = connect_airbyte(ctx, source_name, {**faker_config(120), "api_key": SECRET}, title="Leaky")
    with ctx.db.begin() as session:
        order_id = _order(ctx, cid, template="users", fields=["name"])
        session.add(
            AuditEvent(team_id=TEAM, at=ctx.clock.now(), user_id="UADMIN", action="test", outcome="ok", details={})
        )
    result = run_order(ctx, TEAM, order_id, trigger="created")
    assert result.status == RunStatus.SUCCEEDED and result.rows == 120, result.error
    assert "calling with key ***" in caplog.text and "api_key=***" in caplog.text  # logged, scrubbed
    assert SECRET not in caplog.text
    assert_not_stored(ctx, SECRET)  # the vault holds it encrypted only
    assert list(temp.iterdir()) == []  # the 0600 configuration files are gone
    assert SECRET not in json.dumps(_warehouse(ctx, 'SELECT * FROM "airbyte:leaky__users"'), default=str)
