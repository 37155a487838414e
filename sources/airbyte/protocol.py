"""The Airbyte Protocol, as far as a source bridge needs it: messages read from a connector's
stdout (one JSON object a line), the catalog of streams it discovers, and the configured catalog
and state it is given to `read`.

Message types: SPEC, CONNECTION_STATUS, CATALOG, RECORD, STATE, LOG, TRACE (and CONTROL, which a
source may send to update its own configuration: ignored here, as most platforms do). A line that
is not a JSON object with a string `type` is malformed; a line of an unknown type is skipped, as
the protocol asks of readers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson  # three times faster than json on the records of a read


class MessageType(StrEnum):
    RECORD = "RECORD"
    STATE = "STATE"
    LOG = "LOG"
    TRACE = "TRACE"
    SPEC = "SPEC"
    CATALOG = "CATALOG"
    CONNECTION_STATUS = "CONNECTION_STATUS"
    CONTROL = "CONTROL"


class FailureType(StrEnum):
    """A TRACE error's `failure_type`."""

    CONFIG_ERROR = "config_error"  # the configuration (credentials) is wrong: the user must fix it
    TRANSIENT_ERROR = "transient_error"  # try again later
    SYSTEM_ERROR = "system_error"  # the connector failed; nothing the user can fix


class MalformedMessage(ValueError):
    """A line that is not an Airbyte message. The text says what was wrong, never the line."""


def parse_message(line: bytes | str) -> dict[str, Any] | None:
    """The message on one line of stdout; None for a blank line. Raises MalformedMessage."""
    if not line.strip():
        return None
    try:
        message = orjson.loads(line)
    except ValueError:
        raise MalformedMessage("a line is not JSON") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise MalformedMessage("a line is JSON but not an Airbyte message (no `type`)")
    return message


# -- the catalog ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stream:
    """One stream of a connector's catalog."""

    name: str
    namespace: str | None
    json_schema: dict[str, Any]
    sync_modes: tuple[str, ...]
    primary_key: tuple[tuple[str, ...], ...]  # paths into the record; usually one top-level field
    cursor_field: tuple[str, ...]
    source_defined_cursor: bool

    @property
    def incremental(self) -> bool:
        return "incremental" in self.sync_modes

    @property
    def properties(self) -> dict[str, Any]:
        props = self.json_schema.get("properties")
        return props if isinstance(props, dict) else {}

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> Stream:
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            raise MalformedMessage("a stream of the catalog has no name")
        schema = raw.get("json_schema")
        return cls(
            name=name,
            namespace=raw.get("namespace") if isinstance(raw.get("namespace"), str) else None,
            json_schema=schema if isinstance(schema, dict) else {},
            sync_modes=tuple(m for m in raw.get("supported_sync_modes") or () if isinstance(m, str)),
            primary_key=_paths(raw.get("source_defined_primary_key")),
            cursor_field=tuple(str(p) for p in raw.get("default_cursor_field") or () if isinstance(p, str)),
            source_defined_cursor=bool(raw.get("source_defined_cursor")),
        )


def _paths(value: Any) -> tuple[tuple[str, ...], ...]:
    if not isinstance(value, list):
        return ()
    paths = []
    for path in value:
        if isinstance(path, list) and path and all(isinstance(p, str) for p in path):
            paths.append(tuple(path))
        elif isinstance(path, str):  # a lenient form some connectors emit
            paths.append((path,))
    return tuple(paths)


def catalog_streams(catalog: Mapping[str, Any]) -> tuple[Stream, ...]:
    """The streams of a CATALOG message's `catalog` (as stored with the connection)."""
    streams = catalog.get("streams")
    if not isinstance(streams, list):
        raise MalformedMessage("the catalog has no list of streams")
    return tuple(Stream.of(s) for s in streams if isinstance(s, dict))


def configured_catalog(
    stream: Stream, fields: Sequence[str], *, incremental: bool, primary_key: Sequence[str] = ()
) -> dict[str, Any]:
    """The catalog given to `read`: one stream, its chosen top-level fields (the schema narrowed
    to them, which connectors that support field selection honour), full refresh or incremental
    on the stream's cursor."""
    wanted = set(fields)
    schema = dict(stream.json_schema)
    if stream.properties and wanted:
        schema["properties"] = {k: v for k, v in stream.properties.items() if k in wanted}
    raw: dict[str, Any] = {
        "name": stream.name,
        "json_schema": schema,
        "supported_sync_modes": list(stream.sync_modes) or ["full_refresh"],
        "source_defined_cursor": stream.source_defined_cursor,
        "default_cursor_field": list(stream.cursor_field),
        "source_defined_primary_key": [list(p) for p in stream.primary_key],
    }
    if stream.namespace:
        raw["namespace"] = stream.namespace
    configured: dict[str, Any] = {
        "stream": raw,
        "sync_mode": "incremental" if incremental else "full_refresh",
        "destination_sync_mode": "append_dedup" if primary_key else "overwrite",
    }
    if incremental and stream.cursor_field:
        configured["cursor_field"] = list(stream.cursor_field)
    if primary_key:
        configured["primary_key"] = [[k] for k in primary_key]
    return {"streams": [configured]}


# -- state ------------------------------------------------------------------------------------


def state_key(state: Mapping[str, Any]) -> str:
    """Which part of the saved state a STATE message replaces: a stream's (per-stream state), the
    global one, or the legacy blob."""
    kind = state.get("type") or "LEGACY"
    if kind == "STREAM":
        descriptor = (state.get("stream") or {}).get("stream_descriptor") or {}
        return f"STREAM:{descriptor.get('namespace') or ''}:{descriptor.get('name') or ''}"
    return str(kind)


def merge_state(saved: Sequence[Mapping[str, Any]] | None, message: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The saved state (a list of state messages, as `read --state` takes it) after one more
    STATE message: per-stream states replace the same stream's, others replace their kind."""
    state = {k: v for k, v in message.items() if k not in ("sourceStats", "destinationStats")}
    key = state_key(state)
    kept = [dict(s) for s in saved or () if state_key(s) != key]
    return [*kept, state]


def state_for_read(saved: Iterable[Mapping[str, Any]] | None) -> list[dict[str, Any]] | dict[str, Any] | None:
    """What to write in the `--state` file: the list of state messages, or the legacy blob."""
    states = [dict(s) for s in saved or ()]
    if not states:
        return None
    if len(states) == 1 and (states[0].get("type") or "LEGACY") == "LEGACY":
        return states[0].get("data") or {}
    return states


# -- what a message says ------------------------------------------------------------------------


def trace_error(message: Mapping[str, Any]) -> tuple[str, str] | None:
    """(failure type, message) of a TRACE error; None for other traces (estimates, stream status)."""
    trace = message.get("trace") or {}
    if trace.get("type") != "ERROR":
        return None
    error = trace.get("error") or {}
    failure = str(error.get("failure_type") or FailureType.SYSTEM_ERROR)
    return failure, str(error.get("message") or error.get("internal_message") or "")
