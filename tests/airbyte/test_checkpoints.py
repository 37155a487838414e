"""A CatalogSource's checkpoints through a real run into DuckDB: saved only once the warehouse
committed the rows before them, handed back to the next read; templates from the connection's
catalog; the order's key fields, or replacement without them."""

from __future__ import annotations

from datetime import date

import duckdb
import pyarrow as pa
import pytest
from sqlalchemy import select

from engine.catalogs import save_catalog, saved_state
from engine.extraction import run_order
from engine.warehouse import DuckDBWarehouse
from sources.base import (
    AuthType,
    Checkpoint,
    Credentials,
    ExtractionTemplate,
    FieldKind,
    FieldType,
    SourceAccount,
    TemplateField,
    TransientSourceError,
)
from storage.models import Account, Connection, ExtractionOrder, OrderAccount, RunStatus

TEAM = "T1"


class StreamSource:
    """A CatalogSource reading one stream `rows`: `plan` lists what each read yields."""

    name = "streams"
    title = "Streams"
    auth_type = AuthType.TOKEN
    credential_fields = ()

    def __init__(self, ctx):
        self.ctx = ctx
        self.plan: list = []
        self.states_seen: list = []  # the state each read was given
        self.saved_while_reading: list = []  # what the order had saved when each item was asked for

    def check_credentials(self, credentials):  # pragma: no cover - not called
        raise AssertionError

    def business_account(self, credentials):  # pragma: no cover
        raise AssertionError

    def list_accounts(self, credentials):
        yield [SourceAccount("all", "All")]

    def templates(self):
        return ()

    def extract(self, *args):  # pragma: no cover
        raise AssertionError("a CatalogSource is read with read()")

    def discover(self, credentials):
        return {"streams": ["rows"]}

    def catalog_templates(self, catalog):
        fields = (
            TemplateField("id", "id", FieldType.INTEGER, FieldKind.DIMENSION),
            TemplateField("name", "name", FieldType.TEXT, FieldKind.DIMENSION),
        )
        keyed = ExtractionTemplate("rows", "rows", "", fields, ("id",), per_account=False)
        keyless = ExtractionTemplate("events", "events", "", fields, (), per_account=False)
        return tuple(t for t in (keyed, keyless) if t.name in catalog["streams"])

    def read(self, credentials, catalog, *, account_ids, template, fields, start, state):
        self.states_seen.append(state)
        for item in self.plan:
            self.saved_while_reading.append(saved_state(self.ctx, 1))
            if isinstance(item, Exception):
                raise item
            yield item


def rows(first: int, last: int) -> pa.Table:
    ids = list(range(first, last + 1))
    return pa.table({"id": pa.array(ids, pa.int64()), "name": [f"n{i}" for i in ids]})


@pytest.fixture
def stream_ctx(sqlite_ctx):
    source = StreamSource(sqlite_ctx)
    sqlite_ctx.source = lambda name: source
    with sqlite_ctx.db.begin() as session:
        connection = Connection(
            team_id=TEAM,
            source="streams",
            title="Streams",
            auth_type="token",
            credentials=sqlite_ctx.vault.encrypt(Credentials({"config": "{}"})),
            credentials_status="active",
            created_by="U1",
            created_at=sqlite_ctx.clock.now(),
        )
        session.add(connection)
        session.flush()
        session.add(
            Account(
                connection_id=connection.id,
                external_id="all",
                name="All",
                added_at=sqlite_ctx.clock.now(),
                last_seen_at=sqlite_ctx.clock.now(),
            )
        )
    save_catalog(sqlite_ctx, 1, {"streams": ["rows", "events"]})
    return sqlite_ctx, source


def order(ctx, template="rows", key_fields=None) -> int:
    with ctx.db.begin() as session:
        made = ExtractionOrder(
            team_id=TEAM,
            connection_id=1,
            name="o",
            template=template,
            fields=["name"],
            history_days=10,
            schedule={"kind": "daily", "at": "06:00"},
            timezone="UTC",
            created_by="U1",
            created_at=ctx.clock.now(),
            key_fields=key_fields,
        )
        session.add(made)
        session.flush()
        session.add(OrderAccount(order_id=made.id, account_id=session.scalars(select(Account.id)).one()))
        return made.id


def table(ctx, name="streams__rows"):
    with duckdb.connect(ctx.settings.warehouse, read_only=True) as con:
        return con.execute(f'SELECT id, _run_id FROM "{name}" ORDER BY id').fetchall()


def test_a_checkpoint_is_saved_only_once_the_rows_before_it_are_committed(stream_ctx, monkeypatch):
    ctx, source = stream_ctx
    monkeypatch.setattr(DuckDBWarehouse, "COMMIT_ROWS", 3)  # commit every 3 rows
    source.plan = [rows(1, 2), Checkpoint("A"), rows(3, 3), rows(4, 4), Checkpoint("B"), rows(5, 5)]
    oid = order(ctx)
    first = run_order(ctx, TEAM, oid, trigger="created")
    assert (first.status, first.rows) == (RunStatus.SUCCEEDED, 5), first.error
    # A came after rows 1-2, still pending in the loader when row 3 was asked for: not saved then;
    # saved once row 3 made a commit of 3 rows. B, after row 4, only with the last commit.
    assert source.saved_while_reading == [None, None, None, "A", "A", "A"]
    assert saved_state(ctx, oid) == "B"
    assert [i for i, _ in table(ctx)] == [1, 2, 3, 4, 5]

    source.plan = [rows(5, 6), Checkpoint("C"), TransientSourceError("the connector crashed", retryable=False)]
    second = run_order(ctx, TEAM, oid, trigger="manual")
    assert source.states_seen == [None, "B"]  # resumed from the last saved state
    assert second.status == RunStatus.FAILED and second.error == "the connector crashed"
    # The rows before the failure were committed (a source failure commits what came before), so C holds.
    assert saved_state(ctx, oid) == "C"
    assert [i for i, _ in table(ctx)] == [1, 2, 3, 4, 5, 6]  # 5 read again: merged, not repeated
    assert len(source.states_seen) == 2  # a crash is not retried within the run


def test_a_stream_without_a_key_replaces_the_connections_rows_or_merges_on_key_fields(stream_ctx):
    ctx, source = stream_ctx
    replaced = order(ctx, template="events")
    source.plan = [rows(1, 3)]
    run_order(ctx, TEAM, replaced, trigger="created")
    source.plan = [rows(7, 8)]
    second = run_order(ctx, TEAM, replaced, trigger="manual")
    assert table(ctx, "streams__events") == [(7, second.run_id), (8, second.run_id)]  # replaced

    with ctx.db.begin() as session:
        session.get(ExtractionOrder, replaced).deleted_at = ctx.clock.now()
    keyed = order(ctx, template="events", key_fields=["id"])
    source.plan = [rows(8, 9)]
    result = run_order(ctx, TEAM, keyed, trigger="created")
    # The table was made for replacement: an order with key fields on it is refused, not mixed.
    assert result.status == RunStatus.FAILED and "was not created for the key" in result.error


def test_the_run_reads_from_the_backfill_start(stream_ctx):
    ctx, source = stream_ctx
    seen = []
    original = source.read

    def read(credentials, catalog, **kw):
        seen.append(kw["start"])
        return original(credentials, catalog, **kw)

    source.read = read
    source.plan = [rows(1, 1)]
    oid = order(ctx)
    run_order(ctx, TEAM, oid, trigger="created")
    ctx.clock.advance(days=5)
    run_order(ctx, TEAM, oid, trigger="manual")
    assert seen == [date(2026, 11, 18), date(2026, 11, 18)]


def test_an_order_of_a_removed_connector_is_refused_with_how_to_add_it_back(stream_ctx):
    from core.errors import Conflict
    from engine.connectors import MissingConnector
    from engine.extraction import start_run

    ctx, _ = stream_ctx
    oid = order(ctx)

    def missing(name):
        raise MissingConnector("airbyte:x", "airbyte-source-x", "1.2.3")

    ctx.source = missing
    with pytest.raises(Conflict) as refused:
        start_run(ctx, TEAM, oid, trigger="manual")
    assert refused.value.message == (
        "The connector airbyte:x is not installed. An administrator adds it back with "
        "`connbot connectors add airbyte-source-x==1.2.3`."
    )
