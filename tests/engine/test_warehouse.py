"""The warehouse loader against a DuckDB file, the PostgreSQL on 127.0.0.1:5432 and one dlt
destination (dlt's DuckDB), with small row counts; speed is measured by bench/extract_bench."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal

import duckdb
import pyarrow as pa
import pytest
from sqlalchemy.engine import make_url

from engine.warehouse import (
    DltWarehouse,
    DuckDBWarehouse,
    LoadResult,
    PostgresWarehouse,
    WarehouseError,
    mask_url,
    open_warehouse,
)
from sources.base import ExtractionTemplate, FieldKind, FieldType, SourceError, TemplateField

D0 = date(2026, 1, 1)


def field(name, type_=FieldType.TEXT, kind=FieldKind.DIMENSION):
    return TemplateField(name, name.replace("_", " ").title(), type_, kind)


FIELDS = (
    field("date", FieldType.DATE),
    field("account_id"),
    field("campaign_id"),
    field("campaign_name"),
    field("impressions", FieldType.INTEGER, FieldKind.METRIC),
    field("spend", FieldType.DECIMAL, FieldKind.METRIC),
    field("ctr", FieldType.FLOAT, FieldKind.METRIC),
)
TEMPLATE = ExtractionTemplate("campaign_daily", "Campaigns by day", "", FIELDS, ("date", "account_id", "campaign_id"))
TABLE = "demo__campaign_daily"


def arrow_batch(days: range, campaigns=("c1", "c2"), account="act_1", scale=1) -> pa.Table:
    """Rows as a source yields them: Arrow, money as decimal128(18, 2)."""
    rows = [(D0 + timedelta(days=d), c) for d in days for c in campaigns]
    return pa.table(
        {
            "date": pa.array([d for d, _ in rows], pa.date32()),
            "account_id": [account] * len(rows),
            "campaign_id": [c for _, c in rows],
            "campaign_name": [f"Campaign {c}" for _, c in rows],
            "impressions": pa.array([100 * scale * (i + 1) for i in range(len(rows))], pa.int64()),
            "spend": pa.array([Decimal(f"{scale * (i + 1)}.25") for i in range(len(rows))], pa.decimal128(18, 2)),
            "ctr": [0.5] * len(rows),
        }
    )


# --- the warehouses under test ------------------------------------------------------------------


class Duck:
    kind = "duckdb"

    def __init__(self, tmp_path):
        self.path = str(tmp_path / "warehouse.duckdb")
        self.warehouse = open_warehouse(f"duckdb:///{self.path}")

    def query(self, sql, params=()):
        con = duckdb.connect(self.path)  # same process: shares the warehouse's database
        try:
            return con.execute(sql, list(params)).fetchall()
        finally:
            con.close()

    def table(self, name=TABLE):
        return f'"{name}"'

    def types(self, name=TABLE):
        return dict(
            self.query(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ?",
                [name],
            )
        )

    def close(self):
        self.warehouse.close()


class Postgres:
    kind = "postgres"

    def __init__(self, url: str):
        import psycopg

        self.schema = f"wh_test_{uuid.uuid4().hex[:10]}"
        self.warehouse = open_warehouse(f"{url}?schema={self.schema}")
        self.con = psycopg.connect(url, autocommit=True)

    def query(self, sql, params=()):
        return self.con.execute(sql.replace("?", "%s"), tuple(params)).fetchall()

    def table(self, name=TABLE):
        return f'"{self.schema}"."{name}"'

    def types(self, name=TABLE):
        return {
            column: (f"{kind}({precision},{scale})" if kind == "numeric" else kind)
            for column, kind, precision, scale in self.query(
                "SELECT column_name, data_type, numeric_precision, numeric_scale "
                "FROM information_schema.columns WHERE table_schema = ? AND table_name = ?",
                [self.schema, name],
            )
        }

    def close(self):
        self.warehouse.close()
        self.con.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
        self.con.close()


@pytest.fixture
def pg(pg_server):
    """A PostgreSQL warehouse in a schema of its own, dropped afterwards."""
    backend = Postgres(make_url(pg_server).set(drivername="postgresql").render_as_string(hide_password=False))
    yield backend
    backend.close()


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def wh(request, tmp_path):
    if request.param == "postgres":
        yield request.getfixturevalue("pg")
        return
    backend = Duck(tmp_path)
    yield backend
    backend.close()


def load(target, batches, connection_id=1, run_id=7, template=TEMPLATE, **kwargs) -> LoadResult:
    """Load into a backend of the fixtures or a bare warehouse."""
    return getattr(target, "warehouse", target).load(
        source="demo",
        template=template,
        batches=batches,
        connection_id=connection_id,
        run_id=run_id,
        **kwargs,
    )


def count(wh, where="TRUE", params=()):
    return wh.query(f"SELECT count(*) FROM {wh.table()} WHERE {where}", params)[0][0]


# --- both warehouses ----------------------------------------------------------------------------


def test_typed_columns_and_lineage(wh):
    result = load(wh, [arrow_batch(range(3))])

    assert result == LoadResult(rows=6, batches=1, cancelled=False)
    types = wh.types()
    if wh.kind == "duckdb":
        assert types["date"] == "DATE"
        assert types["spend"] == "DECIMAL(18,6)"
        assert types["impressions"] == "BIGINT"
        assert types["ctr"] == "DOUBLE"
        assert types["_extracted_at"] == "TIMESTAMP WITH TIME ZONE"
    else:
        assert types["date"] == "date"
        assert types["spend"] == "numeric(18,6)"
        assert types["impressions"] == "bigint"
        assert types["ctr"] == "double precision"
        assert types["_extracted_at"] == "timestamp with time zone"
    assert {"_connection_id", "_run_id", "_extracted_at"} <= types.keys()
    assert "_account_id" not in types  # the template has its own account_id
    row = wh.query(
        f"SELECT date, spend, _connection_id, _run_id, _extracted_at IS NOT NULL "
        f"FROM {wh.table()} WHERE campaign_id = 'c1' ORDER BY date LIMIT 1"
    )[0]
    assert row == (D0, Decimal("1.25"), 1, 7, True)


def test_reload_and_overlapping_range_merge_without_duplicates(wh):
    load(wh, [arrow_batch(range(0, 5))])
    load(wh, [arrow_batch(range(0, 5))])  # the same rows again
    assert count(wh) == 10

    load(wh, [arrow_batch(range(3, 8), scale=10)], run_id=8)  # overlaps days 3 and 4

    assert count(wh) == 16  # 8 days x 2 campaigns
    assert wh.query(
        f"SELECT count(*) FROM (SELECT date, account_id, campaign_id FROM {wh.table()} "
        "GROUP BY 1, 2, 3 HAVING count(*) > 1) AS repeated"
    ) == [(0,)]
    updated = wh.query(
        f"SELECT impressions, spend, _run_id FROM {wh.table()} WHERE date = ? AND campaign_id = 'c1'",
        [D0 + timedelta(days=3)],
    )
    assert updated == [(1000, Decimal("10.25"), 8)]
    untouched = wh.query(f"SELECT _run_id FROM {wh.table()} WHERE date = ? AND campaign_id = 'c1'", [D0])
    assert untouched == [(7,)]


def test_two_connections_with_the_same_keys_keep_their_own_rows(wh):
    load(wh, [arrow_batch(range(2))], connection_id=1)
    load(wh, [arrow_batch(range(2), scale=5)], connection_id=2)
    load(wh, [arrow_batch(range(2), scale=9)], connection_id=1)  # re-run of connection 1

    assert count(wh) == 8
    by_connection = wh.query(f"SELECT _connection_id, sum(impressions) FROM {wh.table()} GROUP BY 1 ORDER BY 1")
    assert by_connection == [(1, 9000), (2, 5000)]


def test_cancel_between_batches_keeps_the_loaded_rows(wh):
    pulled, closed = [], []

    def source():
        try:
            for day in range(10):
                pulled.append(day)
                yield arrow_batch(range(day, day + 1))
        finally:
            closed.append(True)

    result = load(wh, source(), should_stop=lambda: len(pulled) >= 3)

    assert result == LoadResult(rows=6, batches=3, cancelled=True)
    assert pulled == [0, 1, 2]  # the source is not asked for more after the stop
    assert closed == [True]
    assert count(wh) == 6


def test_stop_before_the_first_batch(wh):
    result = load(wh, [arrow_batch(range(1))], should_stop=lambda: True)
    assert result == LoadResult(rows=0, batches=0, cancelled=True)


def test_list_of_dict_batches(wh):
    rows = [
        {
            "date": D0,
            "account_id": "act_1",
            "campaign_id": "c1",
            "impressions": 5,
            "spend": Decimal("1.10"),
            "extra": "ignored",
        },
        # Lenient values a hand-written source may produce: ISO text dates, float money.
        {"date": "2026-01-02", "account_id": "act_1", "campaign_id": "c1", "impressions": 6, "spend": 2.2},
    ]

    result = load(wh, [rows[:1], rows[1:], []])

    assert result == LoadResult(rows=2, batches=3, cancelled=False)
    assert wh.query(f"SELECT date, impressions, spend FROM {wh.table()} ORDER BY date") == [
        (D0, 5, Decimal("1.10")),
        (date(2026, 1, 2), 6, Decimal("2.20")),
    ]
    assert "extra" not in wh.types()


def test_repeated_key_in_a_batch_keeps_the_last_row(wh):
    rows = [
        {"date": D0, "account_id": "a", "campaign_id": "c1", "impressions": 1},
        {"date": D0, "account_id": "a", "campaign_id": "c1", "impressions": 2},
    ]
    result = load(wh, [rows])
    assert result.rows == 2  # rows taken from the source
    assert wh.query(f"SELECT impressions FROM {wh.table()}") == [(2,)]


def test_schema_evolution_adds_a_column(wh):
    load(wh, [arrow_batch(range(2))])
    grown = ExtractionTemplate(
        TEMPLATE.name,
        TEMPLATE.title,
        "",
        (*FIELDS, field("reach", FieldType.INTEGER, FieldKind.METRIC)),
        TEMPLATE.primary_key,
    )
    batch = arrow_batch(range(1, 3))
    batch = batch.append_column("reach", pa.array([42] * batch.num_rows, pa.int64()))

    load(wh, [batch], template=grown)

    assert "reach" in wh.types()
    reach = f"SELECT date, reach FROM {wh.table()} WHERE campaign_id = 'c1' ORDER BY 1"
    assert wh.query(reach) == [
        (D0, None),
        (D0 + timedelta(days=1), 42),
        (D0 + timedelta(days=2), 42),
    ]


def test_template_without_account_id_gets_an_account_lineage_column(wh):
    template = ExtractionTemplate(
        "geo", "Geo", "", (field("date", FieldType.DATE), field("country")), ("date", "country")
    )
    batch = [{"date": D0, "country": "FR", "account_id": "act_1"}, {"date": D0, "country": "FR", "account_id": "act_2"}]

    load(wh, [batch], template=template)
    load(wh, [batch], template=template)

    assert wh.query(f'SELECT "_account_id" FROM {wh.table("demo__geo")} ORDER BY 1') == [("act_1",), ("act_2",)]


def test_a_batch_without_key_values_is_refused(wh):
    with pytest.raises(ValueError, match="campaign_id"):
        load(wh, [[{"date": D0, "account_id": "a", "campaign_id": None}]])
    with pytest.raises(ValueError, match="campaign_id"):
        load(wh, [arrow_batch(range(1)).drop_columns(["campaign_id"])])


def test_a_source_error_keeps_the_batches_before_it(wh):
    def source():
        yield arrow_batch(range(1))
        yield arrow_batch(range(1, 2))
        raise SourceError("the platform is down", code="down")

    with pytest.raises(SourceError) as raised:  # not wrapped: the caller classifies it
        load(wh, source())

    assert count(wh) == 4
    assert any("4 rows were loaded" in note for note in raised.value.__notes__)


def test_odd_names_are_quoted(wh):
    template = ExtractionTemplate(
        'we"ird',
        "Weird",
        "",
        (
            field("date", FieldType.DATE),
            field("account_id"),
            field("select"),
            field('n"ame; drop', FieldType.INTEGER, FieldKind.METRIC),
        ),
        ("date", "account_id", "select"),
    )
    rows = [{"date": D0, "account_id": "a", "select": "x", 'n"ame; drop': 3}]
    load(wh, [rows], template=template)
    load(wh, [rows], template=template)
    name = wh.warehouse.table_name("demo", template)
    assert name == 'demo__we"ird'
    quoted = wh.table(name.replace('"', '""'))
    assert wh.query(f'SELECT "select", "n""ame; drop" FROM {quoted}') == [("x", 3)]


# --- DuckDB only ------------------------------------------------------------------------------


def test_duckdb_commits_row_groups_and_slow_batches(tmp_path, monkeypatch):
    wh = Duck(tmp_path)
    monkeypatch.setattr(DuckDBWarehouse, "COMMIT_ROWS", 5)  # batches of 4 get sliced
    monkeypatch.setattr(DuckDBWarehouse, "COMMIT_SECONDS", 3600.0)
    seen = []

    def committed():
        try:
            return count(wh)
        except duckdb.CatalogException:  # the first commit creates the table
            return 0

    def source():
        for day in range(0, 8, 2):  # 4 batches of 4 rows
            yield arrow_batch(range(day, day + 2))
            seen.append(committed())

    result = load(wh, source())

    assert seen == [0, 5, 10, 15]  # 5 rows at a time while batches come fast
    assert result.rows == 16 and count(wh) == 16  # the rest at the end

    monkeypatch.setattr(DuckDBWarehouse, "COMMIT_SECONDS", 0.0)  # every batch is "slow"
    seen.clear()
    load(wh, source(), connection_id=2)
    assert seen == [16 + 4, 16 + 8, 16 + 12, 16 + 16]  # each batch committed on arrival
    wh.close()


def test_duckdb_commits_wide_rows_in_fewer_bytes_than_narrow_ones(tmp_path, monkeypatch):
    """Wide rows (many text fields, as Airbyte streams have) grow DuckDB's memory most at a
    commit: they are committed every WIDE_COMMIT_BYTES, narrow ones every COMMIT_BYTES."""
    wh = Duck(tmp_path)
    monkeypatch.setattr(DuckDBWarehouse, "COMMIT_SECONDS", 3600.0)
    narrow = arrow_batch(range(50))  # 100 rows
    wide = arrow_batch(range(50), account="act_" + "x" * 1000)  # the same rows, ~1 KB wider each
    width = narrow.nbytes / narrow.num_rows
    assert width < DuckDBWarehouse.WIDE_ROW_BYTES <= wide.nbytes / wide.num_rows
    monkeypatch.setattr(DuckDBWarehouse, "COMMIT_BYTES", 3 * narrow.nbytes)
    monkeypatch.setattr(DuckDBWarehouse, "WIDE_COMMIT_BYTES", 2 * wide.nbytes)
    commits: list[int] = []

    load(wh, [narrow] * 4, on_commit=commits.append)
    assert len(commits) == 2  # 3 batches' bytes, then the rest at the end

    commits.clear()
    load(wh, [wide] * 4, connection_id=2, on_commit=commits.append)
    assert len(commits) == 2  # 2 batches' bytes, twice

    commits.clear()
    monkeypatch.setattr(DuckDBWarehouse, "WIDE_COMMIT_BYTES", 3 * narrow.nbytes)  # wide rows reach it at once
    load(wh, [wide] * 4, connection_id=3, on_commit=commits.append)
    assert len(commits) == 4
    wh.close()


def test_duckdb_default_and_plain_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONNBOT_WAREHOUSE", "other.duckdb")
    assert open_warehouse().path == "other.duckdb"
    assert open_warehouse("duckdb:///rel/w.duckdb").path == "rel/w.duckdb"
    assert open_warehouse("duckdb:////abs/w.duckdb").path == "/abs/w.duckdb"
    monkeypatch.delenv("CONNBOT_WAREHOUSE")
    assert open_warehouse("").path == "./data/warehouse.duckdb"

    with open_warehouse() as warehouse:
        assert isinstance(warehouse, DuckDBWarehouse)
        assert not (tmp_path / "data").exists()  # nothing opened before the first load
        load(warehouse, [arrow_batch(range(1))])
    assert (tmp_path / "data" / "warehouse.duckdb").exists()


# --- PostgreSQL only ----------------------------------------------------------------------------


def test_postgres_credentials_never_show():
    url = "postgresql://loader:s3cr3t-pw@127.0.0.1:1/warehouse?schema=ads"
    warehouse = open_warehouse(url)
    assert isinstance(warehouse, PostgresWarehouse) and warehouse.schema == "ads"
    assert "s3cr3t" not in repr(warehouse)
    assert mask_url(url) == "postgresql://loader:***@127.0.0.1:1/warehouse?schema=ads"
    with pytest.raises(WarehouseError) as raised:  # nothing listens on port 1
        load(warehouse, [arrow_batch(range(1))])
    assert "s3cr3t" not in str(raised.value) and "***" in str(raised.value)
    with pytest.raises(ValueError) as bad:
        open_warehouse("postgresql://loader:s3cr3t-pw@host:notaport/db")
    assert "s3cr3t" not in str(bad.value)


# --- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "mysql://user@host/db",
        "duckdb://",
        "duckdb:///",
        "postgresql://user:pw@host",
        "dlt:",
        "dlt:no_such_destination_xyz",
    ],
)
def test_bad_urls_name_the_setting(url):
    with pytest.raises(ValueError, match="CONNBOT_WAREHOUSE") as raised:
        open_warehouse(url)
    assert "pw" not in str(raised.value)


# --- dlt ----------------------------------------------------------------------------------------


def test_dlt_destination_merges(tmp_path):
    path = tmp_path / "dlt.duckdb"
    url = f"dlt:duckdb?credentials={path}&dataset=ads&pipelines_dir={tmp_path / 'pipelines'}"
    warehouse = open_warehouse(url)
    assert isinstance(warehouse, DltWarehouse)
    assert str(path) not in repr(warehouse)

    first = warehouse.load(source="demo", template=TEMPLATE, batches=[arrow_batch(range(3))], connection_id=1, run_id=1)
    dicts = arrow_batch(range(2, 4), scale=10).to_pylist()  # overlaps day 2
    second = warehouse.load(
        source="demo",
        template=TEMPLATE,
        batches=[dicts, dicts[:1]],
        connection_id=1,
        run_id=2,
        should_stop=lambda: False,
    )

    assert first == LoadResult(rows=6, batches=1, cancelled=False)
    assert second == LoadResult(rows=5, batches=2, cancelled=False)
    con = duckdb.connect(str(path))
    try:
        rows = con.execute(
            "SELECT date, campaign_id, impressions, _connection_id, _run_id "
            'FROM ads."demo__campaign_daily" ORDER BY 1, 2'
        ).fetchall()
        types = dict(
            con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'ads' AND table_name = 'demo__campaign_daily'"
            ).fetchall()
        )
    finally:
        con.close()
    assert len(rows) == 8  # 4 days x 2 campaigns, day 2 merged
    assert rows[4] == (D0 + timedelta(days=2), "c1", 1000, 1, 2)
    assert types["date"] == "DATE" and types["spend"].startswith("DECIMAL(18,6)")


def test_dlt_loads_in_packages_and_keeps_them_on_stop_or_error(tmp_path, monkeypatch):
    monkeypatch.setattr(DltWarehouse, "CHUNK_ROWS", 4)  # a package every 2 batches
    path = tmp_path / "dlt.duckdb"
    warehouse = open_warehouse(f"dlt:duckdb?credentials={path}&pipelines_dir={tmp_path / 'pipelines'}")
    batches = [arrow_batch(range(d, d + 1)) for d in range(5)]  # 2 rows each
    taken = []

    def source():
        for b in batches:
            taken.append(b)
            yield b

    def loaded():
        con = duckdb.connect(str(path))
        try:
            return con.execute('SELECT count(*) FROM connbot."demo__campaign_daily"').fetchall()
        finally:
            con.close()

    stopped = warehouse.load(
        source="demo", template=TEMPLATE, batches=source(), connection_id=3, should_stop=lambda: len(taken) >= 3
    )
    assert stopped == LoadResult(rows=6, batches=3, cancelled=True)
    assert loaded() == [(6,)]

    def failing():
        yield from batches[3:]
        raise SourceError("down")

    with pytest.raises(SourceError) as raised:  # as the source raised it, not dlt's wrapper
        warehouse.load(source="demo", template=TEMPLATE, batches=failing(), connection_id=3)
    assert loaded() == [(10,)]  # the batches before the error were loaded
    assert any("4 rows were loaded" in note for note in raised.value.__notes__)


def test_a_changed_primary_key_is_refused(wh):
    load(wh, [arrow_batch(range(1))])
    rekeyed = ExtractionTemplate(TEMPLATE.name, "", "", FIELDS, ("date", "account_id"))
    with pytest.raises(WarehouseError, match="key"):
        load(wh, [arrow_batch(range(1))], template=rekeyed)


def test_every_field_type_round_trips(wh):
    from datetime import UTC, datetime, timezone

    template = ExtractionTemplate(
        "types",
        "Types",
        "",
        (
            field("account_id"),
            field("id", FieldType.INTEGER),
            field("text"),
            field("flag", FieldType.BOOLEAN, FieldKind.METRIC),
            field("seen_at", FieldType.TIMESTAMP, FieldKind.METRIC),
            field("ratio", FieldType.FLOAT, FieldKind.METRIC),
            field("money", FieldType.DECIMAL, FieldKind.METRIC),
        ),
        ("account_id", "id"),
    )
    rows = [
        {
            "account_id": "a",
            "id": 1,
            "text": 'quote " comma , newline \n end',
            "flag": True,
            "seen_at": datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=2))),
            "ratio": 0.125,
            "money": Decimal("1234567.123456"),
        },
        {
            "account_id": "a",
            "id": 2,
            "text": "",
            "flag": False,
            "seen_at": datetime(2026, 1, 2, 3, 4, 5),
            "ratio": float("inf"),
            "money": Decimal("-1"),
        },
        {"account_id": "a", "id": 3, "text": None, "flag": None, "seen_at": None, "ratio": None, "money": None},
    ]

    load(wh, [rows], template=template)

    assert wh.query(f"SELECT id, text, flag, seen_at, ratio, money FROM {wh.table('demo__types')} ORDER BY id") == [
        (
            1,
            'quote " comma , newline \n end',
            True,
            datetime(2026, 1, 2, 1, 4, 5, 6, tzinfo=UTC),
            0.125,
            Decimal("1234567.123456"),
        ),
        (2, "", False, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), float("inf"), Decimal("-1")),
        (3, None, None, None, None, None),
    ]
