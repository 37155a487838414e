"""A stream's JSON schema as template fields, and its records as typed Arrow tables.

Types (top-level properties; `null` in a type list only makes the column nullable):
string → text; string with format `date` → date; with format `date-time` (or Airbyte's
`timestamp_with_timezone` / `timestamp_without_timezone`) → timestamp (UTC; one without an
offset is taken as UTC); integer (or number with `airbyte_type: integer`) → integer; number →
float; boolean → boolean. Anything else — objects, arrays, unions, no type at all — is kept as
JSON text.

A value that does not fit its declared type (a date that is no date, "12a" for an integer) is
loaded as NULL and counted in a warning, rather than failing the whole run for one record.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import orjson
import pyarrow as pa

from sources.base import FieldType

log = logging.getLogger(__name__)

ARROW_TYPES: dict[FieldType, pa.DataType] = {
    FieldType.TEXT: pa.string(),
    FieldType.INTEGER: pa.int64(),
    FieldType.FLOAT: pa.float64(),
    FieldType.DATE: pa.date32(),
    FieldType.TIMESTAMP: pa.timestamp("us", tz="UTC"),
    FieldType.BOOLEAN: pa.bool_(),
}
_TIMESTAMP_TYPES = ("timestamp_with_timezone", "timestamp_without_timezone")


def field_type(schema: Any) -> FieldType:
    """The column type of one property of a stream's JSON schema."""
    if not isinstance(schema, Mapping) or schema.get("anyOf") or schema.get("oneOf"):
        return FieldType.TEXT
    declared = schema.get("type")
    types = [declared] if isinstance(declared, str) else list(declared or [])
    kinds = [t for t in types if t != "null"]
    if len(kinds) != 1:
        return FieldType.TEXT
    kind, airbyte_type, fmt = kinds[0], schema.get("airbyte_type"), schema.get("format")
    if kind == "string":
        if fmt == "date" or airbyte_type == "date":
            return FieldType.DATE
        if fmt == "date-time" or airbyte_type in _TIMESTAMP_TYPES:
            return FieldType.TIMESTAMP
        return FieldType.TEXT
    if kind == "integer" or (kind == "number" and airbyte_type == "integer"):
        return FieldType.INTEGER
    if kind == "number":
        return FieldType.FLOAT
    if kind == "boolean":
        return FieldType.BOOLEAN
    return FieldType.TEXT


def to_table(
    records: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, FieldType]], *, stream: str
) -> pa.Table:
    """The records' columns, typed. Fields a record lacks are NULL."""
    arrays, invalid = [], {}
    for name, type_ in columns:
        values = [r.get(name) for r in records]
        array, bad = _column(values, type_)
        arrays.append(array)
        if bad:
            invalid[name] = bad
    if invalid:
        counts = ", ".join(f"{name} ({n:,})" for name, n in invalid.items())
        log.warning("stream %s: values that do not fit their declared type were loaded as NULL: %s", stream, counts)
    return pa.Table.from_arrays(arrays, schema=pa.schema([pa.field(n, ARROW_TYPES[t]) for n, t in columns]))


def _column(values: list[Any], type_: FieldType) -> tuple[pa.Array, int]:
    arrow = ARROW_TYPES[type_]
    try:
        if type_ in (FieldType.DATE, FieldType.TIMESTAMP):
            return pa.array(values, pa.string()).cast(arrow), 0  # ISO strings, parsed in C++
        return pa.array(values, arrow), 0
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        pass
    convert = _LENIENT[type_]
    converted: list[object] = []
    bad = 0
    for value in values:
        if value is None:
            converted.append(None)
            continue
        try:
            converted.append(convert(value))
        except (TypeError, ValueError, OverflowError):
            converted.append(None)
            bad += 1
    return pa.array(converted, arrow), bad


def _text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError("a boolean is not an integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("not a whole number")
        return int(value)
    number = int(value)
    if not -(2**63) <= number < 2**63:
        raise OverflowError("beyond 64 bits")
    return number


def _float(value: Any) -> float:
    if isinstance(value, bool):
        raise TypeError("a boolean is not a number")
    return float(value)


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError("not a boolean")


def _date(value: Any) -> date:
    if not isinstance(value, str):
        raise TypeError("a date is a string")
    return date.fromisoformat(value[:10])


def _timestamp(value: Any) -> datetime:
    if not isinstance(value, str):
        raise TypeError("a timestamp is a string")
    moment = datetime.fromisoformat(value.strip())
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


_LENIENT = {
    FieldType.TEXT: _text,
    FieldType.INTEGER: _integer,
    FieldType.FLOAT: _float,
    FieldType.BOOLEAN: _boolean,
    FieldType.DATE: _date,
    FieldType.TIMESTAMP: _timestamp,
}
