"""Loading extracted batches into the warehouse.

A run streams batches from a source's `extract` into one table per data source and template
(`<source>__<template>`), merging on the template's primary key plus the connection id, so a
re-run or an overlapping date range never duplicates rows.

The warehouse is named by `CONNBOT_WAREHOUSE`:

- unset, a plain path, or `duckdb:///path` (SQLAlchemy style: `duckdb:///relative.duckdb`,
  `duckdb:////absolute.duckdb`): a DuckDB file, `./data/warehouse.duckdb` by default;
- `postgresql://user:password@host:port/database?schema=name`: PostgreSQL (schema `public`
  by default);
- `dlt:<destination>?dataset=name&<option>=value...`: any other dlt destination, e.g.
  `dlt:bigquery` or `dlt:duckdb?credentials=/tmp/x.duckdb`; options not in the URL come from
  dlt's own configuration (environment variables, `.dlt/secrets.toml`).

DuckDB and PostgreSQL are loaded directly: through dlt, even with Arrow batches, loading ran at
0.2-0.4x a bare DuckDB insert, and the target is at least half (docs/BENCHMARKS.md,
"Extraction loading").

Tables:
- typed columns from the template (dates as DATE, money as DECIMAL(18, 6)), created for the
  fields a run extracts; a field extracted later (or added to the template) adds its column;
- lineage: `_connection_id`, `_run_id`, `_extracted_at` (when the batch was loaded), and
  `_account_id` for a template without an `account_id` field of its own;
- the merge key is the template's primary key + the account + `_connection_id`: two connections
  reaching the same account keep their own rows. A merged row is replaced as a whole: fields the
  latest run did not extract become NULL. A template whose rows name no account
  (`per_account=False`) merges on its key + `_connection_id`;
- a template without a primary key is loaded by replacement: the first commit of a load deletes
  the connection's rows of the table, and rows are appended (DuckDB and PostgreSQL; a dlt
  destination refuses it). A load that commits no row leaves the table as it was.

`on_commit(rows)` is told, after each commit, how many of the rows taken from the source are
committed so far (always the first ones, in order): a source's checkpoint is saved only then.

Memory stays flat: batches are converted, staged and committed as they come (DuckDB commits fast
batches a row group at a time, PostgreSQL each batch, dlt in packages). A stop or a source
failure commits what came before it; a warehouse failure loses only the open transaction.

A primary-key change of a template is not migrated: PostgreSQL and DuckDB refuse to merge into
the old table (WarehouseError) until it is renamed or dropped.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Self
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pyarrow as pa
import pyarrow.compute as pc

from sources.base import Batch, ExtractionTemplate, FieldType

if TYPE_CHECKING:  # imported where used: each is needed by one kind of warehouse only
    import duckdb
    import psycopg
    from dlt.common.destination import AnyDestination

log = logging.getLogger(__name__)

ENV_VAR = "CONNBOT_WAREHOUSE"
DEFAULT_WAREHOUSE = "./data/warehouse.duckdb"

CONNECTION_ID = "_connection_id"
ACCOUNT_ID = "_account_id"
RUN_ID = "_run_id"
EXTRACTED_AT = "_extracted_at"
_LINEAGE = (CONNECTION_ID, ACCOUNT_ID, RUN_ID, EXTRACTED_AT)

# Money: 18 digits fit a 64-bit integer (fast in DuckDB and Arrow); 6 decimals keep micros.
MONEY_PRECISION, MONEY_SCALE = 18, 6

_ARROW_TYPES: dict[FieldType, pa.DataType] = {
    FieldType.TEXT: pa.string(),
    FieldType.INTEGER: pa.int64(),
    FieldType.DECIMAL: pa.decimal128(MONEY_PRECISION, MONEY_SCALE),
    FieldType.FLOAT: pa.float64(),
    FieldType.DATE: pa.date32(),
    FieldType.TIMESTAMP: pa.timestamp("us", tz="UTC"),
    FieldType.BOOLEAN: pa.bool_(),
}
_DUCKDB_TYPES: dict[FieldType, str] = {
    FieldType.TEXT: "VARCHAR",
    FieldType.INTEGER: "BIGINT",
    FieldType.DECIMAL: f"DECIMAL({MONEY_PRECISION}, {MONEY_SCALE})",
    FieldType.FLOAT: "DOUBLE",
    FieldType.DATE: "DATE",
    FieldType.TIMESTAMP: "TIMESTAMPTZ",
    FieldType.BOOLEAN: "BOOLEAN",
}
_POSTGRES_TYPES: dict[FieldType, str] = {
    FieldType.TEXT: "text",
    FieldType.INTEGER: "bigint",
    FieldType.DECIMAL: f"numeric({MONEY_PRECISION}, {MONEY_SCALE})",
    FieldType.FLOAT: "double precision",
    FieldType.DATE: "date",
    FieldType.TIMESTAMP: "timestamptz",
    FieldType.BOOLEAN: "boolean",
}


class WarehouseError(Exception):
    """The warehouse failed (unreachable, incompatible table). The message holds no secret."""


@dataclass(frozen=True)
class LoadResult:
    rows: int  # rows written, after removing repeats of a key within a batch
    batches: int  # batches taken from the source, empty ones included
    cancelled: bool  # should_stop() ended the run before the source was exhausted


def _never() -> bool:
    return False


def _ignore(rows: int) -> None:
    pass


class Warehouse(Protocol):
    def load(
        self,
        *,
        source: str,
        template: ExtractionTemplate,
        batches: Iterable[Batch],
        connection_id: int,
        run_id: int | None = None,
        should_stop: Callable[[], bool] = _never,
        on_commit: Callable[[int], None] = _ignore,
    ) -> LoadResult:
        """Merge the batches into the template's table; should_stop() is asked between batches,
        on_commit(rows committed so far) told after each commit."""

    def table_name(self, source: str, template: ExtractionTemplate) -> str: ...

    def close(self) -> None: ...


def table_name(source: str, template: ExtractionTemplate | str) -> str:
    name = template if isinstance(template, str) else template.name
    if not source or not name:
        raise ValueError("a warehouse table needs a source name and a template name")
    return f"{source}__{name}"


def quote(identifier: str) -> str:
    """A double-quoted SQL identifier (DuckDB and PostgreSQL): names come from plugins."""
    if not identifier or "\x00" in identifier:
        raise ValueError(f"invalid SQL identifier {identifier!r}")
    return '"' + identifier.replace('"', '""') + '"'


def mask_url(url: str) -> str:
    """The URL with its password replaced by ***, for messages and logs."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unparsable URL>"
    if password is None:
        return url
    userinfo, host = parts.netloc.rsplit("@", 1)
    return urlunsplit(parts._replace(netloc=f"{userinfo.split(':', 1)[0]}:***@{host}"))


# --- what a table looks like -------------------------------------------------------------


@dataclass(frozen=True)
class _Column:
    name: str  # in the warehouse
    type: FieldType
    source_name: str  # in the batches (`account_id` for `_account_id`)
    key: bool


@dataclass(frozen=True)
class _TableSpec:
    """Columns and merge key of one table, derived from the template."""

    name: str
    columns: tuple[_Column, ...]  # every field of the template, in its order; no lineage
    key: tuple[str, ...]  # without _connection_id; empty: loads replace the connection's rows

    @property
    def replace(self) -> bool:
        return not self.key

    @classmethod
    def of(cls, source: str, template: ExtractionTemplate) -> _TableSpec:
        names = [f.name for f in template.fields]
        if len(set(names)) != len(names):
            raise ValueError(f"template {template.name!r} repeats a field name")
        if clash := set(names) & set(_LINEAGE):
            raise ValueError(f"template {template.name!r} uses reserved names {sorted(clash)}")
        if missing := [k for k in template.primary_key if k not in names]:
            raise ValueError(f"template {template.name!r}: key {missing} are not its fields")
        key = tuple(template.primary_key)
        account = None
        if template.per_account:
            # One table holds the rows of many accounts: the account is part of the key even when
            # a template's primary key leaves it out (the source protocol puts it on every row).
            account = "account_id" if "account_id" in names else ACCOUNT_ID
            if key and account not in key:
                key += (account,)
        columns = [_Column(f.name, f.type, f.name, f.name in key) for f in template.fields]
        if account == ACCOUNT_ID:
            columns.append(_Column(ACCOUNT_ID, FieldType.TEXT, "account_id", bool(key)))
        return cls(table_name(source, template), tuple(columns), key)

    def column(self, name: str) -> _Column:
        return next(c for c in self.columns if c.name == name)


# --- batches to Arrow --------------------------------------------------------------------


def to_arrow(batch: Batch, spec: _TableSpec) -> pa.Table:
    """The batch as an Arrow table with the template's types and warehouse column names.

    Only the template's columns the batch has are kept, in template order; key columns are
    required and may not be empty (a NULL key would never match, so it would duplicate).
    """
    if isinstance(batch, pa.RecordBatch):
        batch = pa.Table.from_batches([batch])
    if isinstance(batch, pa.Table):
        table = _conform(batch, spec)
    elif isinstance(batch, Sequence) and not isinstance(batch, str | bytes):
        table = _from_rows(batch, spec)
    else:
        raise TypeError(f"a batch is a pyarrow.Table or a list of dicts, not {type(batch)}")
    for c in spec.columns:
        if c.key and table[c.name].null_count:
            raise ValueError(
                f"{spec.name}: {table[c.name].null_count} rows have no {c.source_name!r}, "
                "which is part of the primary key"
            )
    return table


def _conform(batch: pa.Table, spec: _TableSpec) -> pa.Table:
    present = set(batch.column_names)
    fields, arrays = [], []
    for c in spec.columns:
        if c.source_name not in present:
            if c.key:
                raise ValueError(f"{spec.name}: a batch lacks the key column {c.source_name!r}")
            continue
        type_ = _ARROW_TYPES[c.type]
        column = batch[c.source_name]
        if column.type != type_:
            column = _cast(column, type_, spec, c)
        fields.append(pa.field(c.name, type_, nullable=not c.key))
        arrays.append(column)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _from_rows(rows: Sequence[Mapping[str, Any]], spec: _TableSpec) -> pa.Table:
    if not all(isinstance(r, Mapping) for r in rows):
        raise TypeError("a batch given as a list must hold one dict per row")
    present = set().union(*rows) if rows else set()
    columns = [c for c in spec.columns if c.key or c.source_name in present]
    schema = pa.schema([pa.field(c.source_name, _ARROW_TYPES[c.type]) for c in columns])
    try:
        # Fast path, in C++: values already of the right Python types (date, Decimal, int...).
        table = pa.Table.from_pylist(list(rows), schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # Lenient path, column by column: "2024-01-31" for a date, 1.5 for money...
        arrays = []
        for c in columns:
            values = [r.get(c.source_name) for r in rows]
            try:
                arrays.append(pa.array(values, _ARROW_TYPES[c.type]))
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                try:
                    inferred = pa.array(values)
                except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                    raise ValueError(f"{spec.name}: column {c.source_name!r}: {exc}") from None
                arrays.append(_cast(inferred, _ARROW_TYPES[c.type], spec, c))
        table = pa.Table.from_arrays(arrays, schema=schema)
    return _conform(table, spec)


def _cast(
    column: pa.Array | pa.ChunkedArray, type_: pa.DataType, spec: _TableSpec, c: _Column
) -> pa.Array | pa.ChunkedArray:
    try:
        return pc.cast(column, type_)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise ValueError(
            f"{spec.name}: column {c.source_name!r} ({column.type}) is not a valid {c.type.value}: {exc}"
        ) from None


def dedupe_last(table: pa.Table, key: Sequence[str]) -> pa.Table:
    """The table with only the last row of each key: a merge takes one row per key."""
    if table.num_rows < 2:
        return table
    row = "__connbot_row"
    numbered = table.select(list(key)).append_column(row, pa.array(range(table.num_rows)))
    last = numbered.group_by(list(key), use_threads=False).aggregate([(row, "max")])
    if last.num_rows == table.num_rows:
        return table
    log.warning("%d rows repeat the key of a later row; the last one is kept", table.num_rows - last.num_rows)
    return table.take(last[f"{row}_max"].combine_chunks().sort())  # in arrival order


# --- the run loop shared by all warehouses -------------------------------------------------


@dataclass
class _Progress:
    batches: int = 0
    rows: int = 0
    cancelled: bool = False

    def result(self) -> LoadResult:
        return LoadResult(rows=self.rows, batches=self.batches, cancelled=self.cancelled)


def _prepared(
    spec: _TableSpec,
    batches: Iterable[Batch],
    should_stop: Callable[[], bool],
    progress: _Progress,
) -> Generator[pa.Table, None, None]:
    """The source's non-empty batches as typed Arrow tables, one at a time.

    should_stop() is asked before each batch is pulled, so a stopped run also stops asking the
    source for data; the source's generator is closed either way, releasing what it holds.
    """
    iterator = iter(batches)
    try:
        while True:
            if should_stop():
                progress.cancelled = True
                return
            try:
                batch = next(iterator)
            except StopIteration:
                return
            progress.batches += 1
            table = to_arrow(batch, spec)
            if table.num_rows:
                yield table
    finally:
        if hasattr(iterator, "close"):
            iterator.close()


def _run(
    spec: _TableSpec,
    batches: Iterable[Batch],
    should_stop: Callable[[], bool],
    write: Callable[[pa.Table], int],
    flush: Callable[[], int] = lambda: 0,
    on_commit: Callable[[int], None] = _ignore,
) -> LoadResult:
    """write() each batch, then flush(); both return the rows they committed (on_commit is told).

    When the source fails (or sends a bad batch), what it sent before is still committed; when
    the warehouse fails, the open transaction is lost and the earlier ones stay.
    """
    progress = _Progress()
    writing = False
    try:
        with closing(_prepared(spec, batches, should_stop, progress)) as tables:
            for table in tables:
                writing = True
                _committed(progress, write(table), on_commit)
                writing = False
        writing = True
        _committed(progress, flush(), on_commit)
    except BaseException as exc:
        if not writing and isinstance(exc, Exception):
            try:
                _committed(progress, flush(), on_commit)
            except Exception as also:
                exc.add_note(f"warehouse: committing the batches before it failed too: {also!r}")
        # The caller gets the original exception (a SourceError stays one), and this note.
        exc.add_note(f"warehouse: {progress.rows} rows were loaded into {spec.name} before it")
        raise
    result = progress.result()
    log.info("loaded %s: %s", spec.name, result)
    return result


def _committed(progress: _Progress, rows: int, on_commit: Callable[[int], None]) -> None:
    if rows:
        progress.rows += rows
        on_commit(progress.rows)


# --- DuckDB ---------------------------------------------------------------------------------

# DELETE+INSERT is a merge only if two loads of one table do not interleave. A DuckDB file is
# opened by one process at a time, so a lock per file and table in this process suffices.
_duckdb_locks: dict[tuple[str, str], threading.Lock] = {}
_KEY_COMMENT = "connbot merge key: "
_duckdb_locks_guard = threading.Lock()


def _duckdb_lock(path: str, table: str) -> threading.Lock:
    with _duckdb_locks_guard:
        return _duckdb_locks.setdefault((path, table), threading.Lock())


class _Loader:
    """What every warehouse shares: the table naming and closing when used as a context."""

    def table_name(self, source: str, template: ExtractionTemplate) -> str:
        return table_name(source, template)

    def close(self) -> None:
        pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DuckDBWarehouse(_Loader):
    """A DuckDB file.

    Merge: one transaction that DELETEs the rows with the staged keys (for this connection),
    then INSERTs the staged Arrow table. The table has no PRIMARY KEY: with one,
    `INSERT ... ON CONFLICT DO UPDATE` ran at ~0.35x a bare insert and `INSERT OR REPLACE` at
    ~0.3x (maintaining the ART index). Uniqueness rests on this loader instead: repeated keys
    are removed before the insert, and merges into a table are serialised.

    Commits dominate the cost of small transactions (WAL, fsync, checkpoints): DELETE+INSERT
    committing each 50,000-row batch ran at ~0.55x a bare insert and peaked at 250-310 MB.
    A transaction of exactly one row group (122,880 rows) is written straight to the file at
    the least cost and memory (0.7-1.0x, 240-260 MB; a group and a bit, or several groups,
    peaked 40-100 MB higher). So the rows of fast batches are committed a row group at a time,
    slicing batches where needed, while a batch the source took more than COMMIT_SECONDS to
    produce is committed at once with what is pending. A stop, the end of the source or a
    source error commits what is pending; memory holds at most one row group of pending rows,
    or COMMIT_BYTES of them, or WIDE_COMMIT_BYTES for wide rows: a stream of 17 columns of text
    (~330 bytes a row) held 122,880 rows in ~300 MB at the peak of its commit; committed every
    16 MB, a run of 100,000 such rows peaked at 270-300 MB, every 8 MB at ~268, every 4 MB at
    ~245, no slower. Narrow rows committed every 4 MB ran at 0.6x and peaked higher (more, smaller
    commits), hence the two sizes.
    """

    COMMIT_ROWS = 122_880  # one DuckDB row group
    COMMIT_BYTES = 16 << 20  # a row group of the demo source's rows is ~12 MB: only wide rows reach it
    WIDE_ROW_BYTES = 200  # the demo source's rows are ~100 bytes, an Airbyte stream's of 17 text fields ~330
    WIDE_COMMIT_BYTES = 4 << 20
    COMMIT_SECONDS = 1.0
    _STAGE = "_connbot_batch"

    def __init__(self, path: str):
        self.path = path
        self._con: duckdb.DuckDBPyConnection | None = None
        self._con_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DuckDBWarehouse({self.path!r})"

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        import duckdb

        with self._con_lock:
            if self._con is None:  # opened on first use: configuring a warehouse is free
                if self.path != ":memory:":
                    Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                try:
                    self._con = duckdb.connect(self.path)
                except duckdb.Error as exc:
                    raise WarehouseError(f"cannot open the warehouse {self.path}: {exc}") from None
            # A cursor is a connection of its own to the same database: one per load and thread.
            return self._con.cursor()

    def _commit_due(self, rows: int, nbytes: int) -> bool:
        """Whether pending rows are enough bytes to commit before a row group: fewer for wide rows."""
        wide = rows and nbytes / rows >= self.WIDE_ROW_BYTES
        return nbytes >= (self.WIDE_COMMIT_BYTES if wide else self.COMMIT_BYTES)

    def close(self) -> None:
        with self._con_lock:
            if self._con is not None:
                self._con.close()
                self._con = None

    def load(
        self,
        *,
        source: str,
        template: ExtractionTemplate,
        batches: Iterable[Batch],
        connection_id: int,
        run_id: int | None = None,
        should_stop: Callable[[], bool] = _never,
        on_commit: Callable[[int], None] = _ignore,
    ) -> LoadResult:
        spec = _TableSpec.of(source, template)
        lock = _duckdb_lock(os.path.realpath(self.path), spec.name)
        key = ", ".join(quote(k) for k in spec.key)
        count_keys = f"SELECT count(*) FROM (SELECT DISTINCT {key} FROM {self._STAGE})"
        if spec.replace:  # the first commit clears the connection's rows; later ones append
            delete = f"DELETE FROM {quote(spec.name)} WHERE {quote(CONNECTION_ID)} = ?"
        else:
            delete = (
                f"DELETE FROM {quote(spec.name)} AS t USING {self._STAGE} AS s "
                f"WHERE t.{quote(CONNECTION_ID)} = ? AND "
                + " AND ".join(f"t.{quote(k)} = s.{quote(k)}" for k in spec.key)
            )
        cleared = False
        lineage = ", ".join(quote(n) for n in (CONNECTION_ID, RUN_ID, EXTRACTED_AT))
        existing: set[str] = set()  # the table's columns as last seen
        con = self._cursor()
        pending: list[pa.Table] = []  # rows of fast batches, less than one row group
        last_write = time.monotonic()

        def write(table: pa.Table) -> int:
            nonlocal last_write
            due = time.monotonic() - last_write >= self.COMMIT_SECONDS  # a slow source: commit at once
            pending.append(table)
            committed = 0
            while sum(t.num_rows for t in pending) >= self.COMMIT_ROWS:
                rows = pa.concat_tables(pending, promote_options="default")
                pending[:] = [rows.slice(self.COMMIT_ROWS)]
                committed += merge(rows.slice(0, self.COMMIT_ROWS))
            if due or self._commit_due(sum(t.num_rows for t in pending), sum(t.nbytes for t in pending)):
                committed += flush()
            last_write = time.monotonic()
            return committed

        def flush() -> int:
            rows = pa.concat_tables(pending, promote_options="default") if pending else None
            pending.clear()
            return merge(rows) if rows is not None and rows.num_rows else 0

        def merge(table: pa.Table) -> int:
            """Merge the table in one transaction; the rows taken from the source."""
            nonlocal cleared
            received: int = table.num_rows  # pyarrow is untyped
            con.register(self._STAGE, table)
            try:
                # Repeated keys: counted in DuckDB (cheap), removed in Arrow (rare).
                if not spec.replace and con.execute(count_keys).fetchall()[0][0] != table.num_rows:
                    table = dedupe_last(table, spec.key)
                    con.register(self._STAGE, table)
                columns = ", ".join(quote(n) for n in table.column_names)
                insert = (
                    f"INSERT INTO {quote(spec.name)} ({columns}, {lineage}) "
                    f"SELECT {columns}, ?, ?, ? FROM {self._STAGE}"
                )
                with lock:
                    if not existing.issuperset(table.column_names):
                        existing.clear()
                        existing.update(self._ensure_columns(con, spec, table.column_names))
                    con.begin()
                    try:
                        if not (spec.replace and cleared):
                            con.execute(delete, [connection_id])
                        con.execute(insert, [connection_id, run_id, datetime.now(UTC)])
                        con.commit()
                    except BaseException:
                        con.rollback()
                        raise
                    cleared = True
            finally:
                con.unregister(self._STAGE)
            return received

        try:
            return _run(spec, batches, should_stop, write, flush, on_commit)
        finally:
            con.close()

    @staticmethod
    def _ensure_columns(con: duckdb.DuckDBPyConnection, spec: _TableSpec, names: Sequence[str]) -> set[str]:
        """Create the table, or add the columns it lacks (schema evolution); its columns.

        Without a PRIMARY KEY the merge key is kept in the table's comment, so a template whose
        key changed is refused instead of merging on a key the old rows do not follow.
        """
        table = quote(spec.name)
        key_comment = _KEY_COMMENT + json.dumps([*spec.key, CONNECTION_ID])
        existing = {
            name
            for (name,) in con.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_catalog = current_database() AND table_schema = current_schema() "
                "AND table_name = ?",
                [spec.name],
            ).fetchall()
        }
        wanted = [c for c in spec.columns if c.name in names or c.key]
        if not existing:
            columns = [f"{quote(c.name)} {_DUCKDB_TYPES[c.type]}{' NOT NULL' if c.key else ''}" for c in wanted] + [
                f"{quote(CONNECTION_ID)} BIGINT NOT NULL",
                f"{quote(RUN_ID)} BIGINT",
                f"{quote(EXTRACTED_AT)} TIMESTAMPTZ",
            ]
            con.execute(f"CREATE TABLE {table} ({', '.join(columns)})")
            literal = "'" + key_comment.replace("'", "''") + "'"  # COMMENT takes no parameter
            con.execute(f"COMMENT ON TABLE {table} IS {literal}")
            return {c.name for c in wanted} | {CONNECTION_ID, RUN_ID, EXTRACTED_AT}
        comment = (
            con.execute(
                "SELECT comment FROM duckdb_tables() WHERE database_name = current_database() "
                "AND schema_name = current_schema() AND table_name = ?",
                [spec.name],
            ).fetchall()[0][0]
            or ""
        )
        if comment != key_comment:
            raise WarehouseError(
                f"table {spec.name} was not created for the key "
                f"({', '.join((*spec.key, CONNECTION_ID))}) (its comment: {comment!r}); "
                "rename or drop the old table"
            )
        for c in wanted:
            if c.name not in existing:
                log.info("adding column %s to %s", c.name, spec.name)
                con.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {quote(c.name)} {_DUCKDB_TYPES[c.type]}")
                existing.add(c.name)
        return existing


# --- PostgreSQL -----------------------------------------------------------------------------


class PostgresWarehouse(_Loader):
    """A PostgreSQL schema.

    Per batch, one transaction: COPY the batch (as CSV written by Arrow, in C++) into a temporary
    staging table, then INSERT ... ON CONFLICT (key) DO UPDATE into the table, which has a real
    PRIMARY KEY, so loads from several processes at once stay consistent.
    """

    _STAGE = "_connbot_stage"
    _MAX_IDENTIFIER = 63  # PostgreSQL silently truncates longer names: refuse them instead

    def __init__(self, url: str, schema: str = "public"):
        self._url = url
        self.schema = schema

    def __repr__(self) -> str:
        return f"PostgresWarehouse({mask_url(self._url)!r}, schema={self.schema!r})"

    def _connect(self) -> psycopg.Connection[tuple[Any, ...]]:  # a connection lives for one load: nothing to close
        import psycopg

        try:
            # None: the URL's own connect_timeout (psycopg drops None parameters).
            return psycopg.connect(self._url, connect_timeout=None if "connect_timeout=" in self._url else 10)
        except psycopg.Error as exc:
            message, password = str(exc), urlsplit(self._url).password
            if password:
                message = message.replace(password, "***")
            raise WarehouseError(f"cannot connect to the warehouse {mask_url(self._url)}: {message}") from None

    def load(
        self,
        *,
        source: str,
        template: ExtractionTemplate,
        batches: Iterable[Batch],
        connection_id: int,
        run_id: int | None = None,
        should_stop: Callable[[], bool] = _never,
        on_commit: Callable[[int], None] = _ignore,
    ) -> LoadResult:
        import pyarrow.csv as pacsv

        spec = _TableSpec.of(source, template)
        for name in (spec.name, self.schema, *(c.name for c in spec.columns)):
            if len(name.encode()) > self._MAX_IDENTIFIER:
                raise ValueError(f"{name!r} is longer than PostgreSQL's 63-byte identifiers")
        target = f"{quote(self.schema)}.{quote(spec.name)}"
        conflict = ", ".join(quote(k) for k in (*spec.key, CONNECTION_ID))
        lineage = ", ".join(quote(n) for n in (CONNECTION_ID, RUN_ID, EXTRACTED_AT))
        csv_options = pacsv.WriteOptions(include_header=False)
        existing: set[str] = set()
        cleared = False

        def write(table: pa.Table) -> int:
            nonlocal cleared
            received: int = table.num_rows  # pyarrow is untyped
            if not spec.replace:
                table = dedupe_last(table, spec.key)
            names = table.column_names
            if not existing.issuperset(names):
                existing.clear()
                existing.update(self._ensure_columns(con, spec, target, names))
            columns = ", ".join(quote(n) for n in names)
            # The row is replaced as a whole: columns this batch lacks become NULL.
            updates = [
                f"{quote(n)} = " + (f"EXCLUDED.{quote(n)}" if n in names else "NULL")
                for n in (c.name for c in spec.columns if not c.key)
                if n in existing
            ] + [f"{quote(n)} = EXCLUDED.{quote(n)}" for n in (RUN_ID, EXTRACTED_AT)]
            insert = (
                f"INSERT INTO {target} ({columns}, {lineage}) "
                f"SELECT {columns}, %s::bigint, %s::bigint, %s::timestamptz FROM {self._STAGE}"
            )
            if not spec.replace:
                insert += f" ON CONFLICT ({conflict}) DO UPDATE SET {', '.join(updates)}"
            # Arrow's CSV is PostgreSQL's: strings quoted, NULL an empty unquoted field, ISO
            # dates, timestamps with a Z, plain decimals.
            sink = pa.BufferOutputStream()
            pacsv.write_csv(table, sink, csv_options)
            copy = f"COPY {self._STAGE} ({columns}) FROM STDIN (FORMAT csv)"
            with con.transaction():
                if spec.replace and not cleared:  # the first commit clears the connection's rows
                    con.execute(f"DELETE FROM {target} WHERE {quote(CONNECTION_ID)} = %s", (connection_id,))
                with con.cursor().copy(copy) as cp:
                    cp.write(memoryview(sink.getvalue()))
                con.execute(insert, (connection_id, run_id, datetime.now(UTC)))
            cleared = True
            return received

        with self._connect() as con:
            stage = ", ".join(f"{quote(c.name)} {_POSTGRES_TYPES[c.type]}" for c in spec.columns)
            # Emptied at each commit, so one staging table serves every batch of the load.
            con.execute(f"CREATE TEMPORARY TABLE {self._STAGE} ({stage}) ON COMMIT DELETE ROWS")
            con.commit()
            return _run(spec, batches, should_stop, write, on_commit=on_commit)

    def _ensure_columns(
        self, con: psycopg.Connection[tuple[Any, ...]], spec: _TableSpec, target: str, names: Sequence[str]
    ) -> set[str]:
        """Create the table, or add the columns it lacks (schema evolution); its columns."""
        key = (*spec.key, CONNECTION_ID)
        wanted = [c for c in spec.columns if c.name in names or c.key]
        with con.transaction():
            # Serialises processes creating or altering the same table at the same moment.
            con.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (target,))
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(self.schema)}")
            existing = {
                name
                for (name,) in con.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
                    (self.schema, spec.name),
                )
            }
            if not existing:
                columns = [
                    f"{quote(c.name)} {_POSTGRES_TYPES[c.type]}{' NOT NULL' if c.key else ''}" for c in wanted
                ] + [
                    f"{quote(CONNECTION_ID)} bigint NOT NULL",
                    f"{quote(RUN_ID)} bigint",
                    f"{quote(EXTRACTED_AT)} timestamptz",
                ]
                if not spec.replace:
                    columns.append(f"PRIMARY KEY ({', '.join(quote(k) for k in key)})")
                con.execute(f"CREATE TABLE {target} ({', '.join(columns)})")
                if spec.replace:  # what the first commit of each load deletes by
                    con.execute(f"CREATE INDEX ON {target} ({quote(CONNECTION_ID)})")
                return {c.name for c in wanted} | {CONNECTION_ID, RUN_ID, EXTRACTED_AT}
            current = {
                name
                for (name,) in con.execute(
                    "SELECT a.attname FROM pg_index i JOIN pg_attribute a "
                    "ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
                    "WHERE i.indrelid = %s::regclass AND i.indisprimary",
                    (target,),
                )
            }
            if current != (set() if spec.replace else set(key)):
                raise WarehouseError(
                    f"table {self.schema}.{spec.name} has the primary key "
                    f"({', '.join(sorted(current)) or 'none'}) but the template needs "
                    f"({', '.join(key) if not spec.replace else 'none: it is loaded by replacement'}); "
                    "rename or drop the old table"
                )
            for c in wanted:
                if c.name not in existing:
                    log.info("adding column %s to %s", c.name, spec.name)
                    con.execute(
                        f"ALTER TABLE {target} ADD COLUMN IF NOT EXISTS {quote(c.name)} {_POSTGRES_TYPES[c.type]}"
                    )
                    existing.add(c.name)
            return existing


# --- any other dlt destination ----------------------------------------------------------------


class DltWarehouse(_Loader):
    """Any dlt destination, through a dlt pipeline with the merge write disposition.

    Batches reach dlt as Arrow tables with the template's types: with lists of dicts dlt is
    about 40x slower. dlt merges a whole load package at once, in memory that grows with its
    rows (DuckDB destination: ~680 MB for 1,000,000 rows, ~1.1 GB for 2,000,000), so a run is
    loaded as packages of CHUNK_ROWS rows: memory stays flat, and a stop, a source error or
    the end loads what came before. Names are kept as they are (dlt's `direct` naming), so the
    table is `<source>__<template>` here too.
    """

    CHUNK_ROWS = 250_000

    def __init__(
        self,
        destination: str,
        *,
        dataset: str = "connbot",
        pipelines_dir: str | None = None,
        options: Mapping[str, str] | None = None,
    ):
        self.destination = destination
        self.dataset = dataset
        self.pipelines_dir = pipelines_dir
        self._options = dict(options or {})
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._factory()  # an unknown destination fails when configured, not at the first run

    def __repr__(self) -> str:  # options may hold credentials: not shown
        return f"DltWarehouse({self.destination!r}, dataset={self.dataset!r})"

    def _factory(self) -> AnyDestination:
        from dlt.common.destination import Destination

        try:
            destination = Destination.from_reference(self.destination, **self._options)
        except Exception as exc:  # dlt raises several kinds for unknown names or options
            raise ValueError(
                f"{ENV_VAR}: dlt destination {self.destination!r} is not usable ({type(exc).__name__})"
            ) from None
        if destination is None:  # dlt's answer to no reference at all
            raise ValueError(f"{ENV_VAR}: dlt destination {self.destination!r} is not usable")
        return destination

    def load(
        self,
        *,
        source: str,
        template: ExtractionTemplate,
        batches: Iterable[Batch],
        connection_id: int,
        run_id: int | None = None,
        should_stop: Callable[[], bool] = _never,
        on_commit: Callable[[int], None] = _ignore,
    ) -> LoadResult:
        import dlt

        spec = _TableSpec.of(source, template)
        if spec.replace:
            raise WarehouseError(
                f"{spec.name} has no primary key, and a dlt destination cannot replace one connection's rows; "
                "choose key fields for the order, or load into DuckDB or PostgreSQL"
            )
        # One pipeline (working dir, state, schema) per table, run once at a time.
        name = "connbot_" + re.sub(r"[^A-Za-z0-9_]", "_", spec.name)
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        progress = _Progress()
        prepared = _prepared(spec, batches, should_stop, progress)
        failure: list[Exception] = []
        done = False
        package_rows = 0

        def package() -> Iterator[pa.Table]:
            """The next CHUNK_ROWS rows; dlt spools them to disk as it pulls them."""
            nonlocal done, package_rows
            package_rows = 0
            try:
                while package_rows < self.CHUNK_ROWS:
                    table = next(prepared, None)
                    if table is None:
                        done = True
                        return
                    package_rows += table.num_rows
                    yield _with_lineage(dedupe_last(table, spec.key), connection_id, run_id)
            except Exception as exc:  # a source error: load what came before, then raise it
                failure.append(exc)
                done = True

        with lock, closing(prepared):
            pipeline = dlt.pipeline(
                pipeline_name=name,
                destination=self._factory(),
                dataset_name=self.dataset,
                pipelines_dir=self.pipelines_dir,  # type: ignore[arg-type]  # dlt's `str = None`: None is its default
            )
            schema = dlt.Schema(name, normalizers={"names": "direct"})
            try:
                while not done:
                    resource = dlt.resource(
                        package(),
                        name=spec.name,
                        table_name=spec.name,
                        write_disposition="merge",
                        primary_key=[*spec.key, CONNECTION_ID],
                    )
                    pipeline.run(resource, schema=schema)
                    _committed(progress, package_rows, on_commit)
                    if failure:
                        raise failure[0]
            except BaseException as exc:
                exc.add_note(f"warehouse: {progress.rows} rows were loaded into {spec.name} before it")
                raise
        result = progress.result()
        log.info("loaded %s through dlt: %s", spec.name, result)
        return result


def _with_lineage(table: pa.Table, connection_id: int, run_id: int | None) -> pa.Table:
    n = table.num_rows
    table = table.append_column(
        pa.field(CONNECTION_ID, pa.int64(), nullable=False),
        pa.repeat(pa.scalar(connection_id, pa.int64()), n),
    )
    table = table.append_column(RUN_ID, pa.repeat(pa.scalar(run_id, pa.int64()), n))
    now = pa.scalar(datetime.now(UTC), pa.timestamp("us", tz="UTC"))
    return table.append_column(EXTRACTED_AT, pa.repeat(now, n))


# --- configuration ----------------------------------------------------------------------------

_ACCEPTED = "a DuckDB file path, duckdb:///path, postgresql://user@host/database[?schema=name] or dlt:<destination>"


def warehouse_url(environ: Mapping[str, str] = os.environ) -> str:
    return environ.get(ENV_VAR, "").strip() or DEFAULT_WAREHOUSE


def one_writer_process(url: str) -> bool:
    """Whether the warehouse takes writes from one process only: a DuckDB file, directly or
    through dlt's duckdb destination (several processes cannot open one for writing)."""
    warehouse = open_warehouse(url)
    return isinstance(warehouse, DuckDBWarehouse) or (
        isinstance(warehouse, DltWarehouse) and warehouse.destination == "duckdb"
    )


def open_warehouse(url: str | None = None) -> DuckDBWarehouse | PostgresWarehouse | DltWarehouse:
    """The warehouse `url` names (default: $CONNBOT_WAREHOUSE). It connects on first load.

    Raises ValueError naming CONNBOT_WAREHOUSE for a value it cannot use.
    """
    url = (url if url is not None else warehouse_url()).strip() or DEFAULT_WAREHOUSE
    if url.startswith("dlt:"):
        parts = urlsplit(url)
        destination = (parts.netloc or parts.path).strip("/")
        if not re.fullmatch(r"[A-Za-z_][\w.]*", destination):
            raise ValueError(f"{ENV_VAR}: the dlt: URL names no destination; expected {_ACCEPTED}")
        options = dict(parse_qsl(parts.query))
        return DltWarehouse(
            destination,
            dataset=options.pop("dataset", "connbot"),
            pipelines_dir=options.pop("pipelines_dir", None),
            options=options,
        )
    if "://" not in url:
        return DuckDBWarehouse(url)
    scheme, rest = url.split("://", 1)
    scheme = scheme.lower()
    if scheme == "duckdb":
        if not rest.startswith("/") or rest == "/":
            raise ValueError(f"{ENV_VAR}: {url!r} names no DuckDB file; expected {_ACCEPTED}")
        return DuckDBWarehouse(rest[1:])
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a malformed port
        except ValueError:
            raise ValueError(f"{ENV_VAR}: {mask_url(url)!r} is not a valid URL") from None
        if not parts.path.strip("/"):
            raise ValueError(f"{ENV_VAR}: {mask_url(url)!r} names no database")
        query = parse_qsl(parts.query)
        schema = next((v for k, v in query if k == "schema"), "public")
        others = urlencode([(k, v) for k, v in query if k != "schema"])
        clean = urlunsplit(parts._replace(scheme="postgresql", query=others))
        return PostgresWarehouse(clean, schema=schema)
    raise ValueError(f"{ENV_VAR}: unsupported warehouse {mask_url(url)!r}; expected {_ACCEPTED}")
