"""Many rows at once, fast: the first sync of a login inserts every account it has, and each
page of a sync looks up hundreds of accounts.

SQLAlchemy's executemany converts every value of every row through its column type; here the
values shared by all rows (a timestamp, a flag) are converted once, the others only when their
type needs it, and PostgreSQL receives the rows as arrays in one INSERT instead of one per row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

from sqlalchemy import Table, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql import ColumnElement

T = TypeVar("T")


def insert_rows(
    conn: Connection, table: Table, shared: Mapping[str, object], rows: Sequence[Mapping[str, object]]
) -> int:
    """Inserts `rows` (each a mapping of the same columns) with `shared` added to every one;
    returns how many. Runs inside the caller's transaction."""
    if not rows:
        return 0
    varying = list(rows[0])
    dialect = conn.dialect
    processors = [table.c[name].type._cached_bind_processor(dialect) for name in varying]
    constants = tuple(_bound(table, dialect, name, value) for name, value in shared.items())
    values = [
        tuple(
            value if process is None else process(value)
            for process, value in zip(processors, (row[n] for n in varying), strict=True)
        )
        + constants
        for row in rows
    ]
    columns = varying + list(shared)
    quoted = ", ".join(dialect.identifier_preparer.quote(name) for name in columns)
    into = f"INSERT INTO {dialect.identifier_preparer.format_table(table)} ({quoted})"
    if dialect.name == "postgresql":
        driver = conn.connection.driver_connection
        if driver is None:  # only once the connection is closed or invalidated
            raise RuntimeError("insert_rows needs an open database connection")
        cursor = driver.cursor()
        with cursor.copy(f"COPY {dialect.identifier_preparer.format_table(table)} ({quoted}) FROM STDIN") as copy:
            for row in values:
                copy.write_row(row)
    else:
        conn.exec_driver_sql(f"{into} VALUES ({', '.join('?' for _ in columns)})", values)
    return len(values)


def _bound(table: Table, dialect: Dialect, name: str, value: object) -> object:
    process = table.c[name].type._cached_bind_processor(dialect)
    return value if process is None else process(value)


def one_of(
    conn: Connection, column: ColumnElement[T] | QueryableAttribute[T], values: Sequence[T]
) -> ColumnElement[bool]:
    """`column IN (values)`; on PostgreSQL `column = ANY(array)`, one parameter: psycopg parses
    the text of a long query on every execution, and an IN of hundreds of values makes one."""
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(list(values))
