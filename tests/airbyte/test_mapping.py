"""The Airbyte Protocol's messages and state, a configuration's platform account and start date,
and a stream's records typed into Arrow."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from sources.airbyte import AirbyteSource
from sources.airbyte.mapping import connector_title, with_accounts, with_start
from sources.airbyte.protocol import MalformedMessage, Stream, merge_state, parse_message, state_for_read
from sources.airbyte.records import field_type, to_table
from sources.airbyte.source import stream_template
from sources.base import FieldType
from sources.config import config_credentials


def test_messages_are_json_objects_with_a_type():
    assert parse_message(b'{"type": "LOG", "log": {}}\n')["type"] == "LOG"
    assert parse_message(b"   \n") is None
    for bad in (b"hello", b"[1, 2]", b'{"no": "type"}', b'{"type": 3}'):
        with pytest.raises(MalformedMessage):
            parse_message(bad)


def test_state_keeps_the_latest_of_each_stream_and_drops_statistics():
    a1 = {"type": "STREAM", "stream": {"stream_descriptor": {"name": "a"}, "stream_state": {"n": 1}}, "sourceStats": {}}
    b1 = {"type": "STREAM", "stream": {"stream_descriptor": {"name": "b"}, "stream_state": {"n": 1}}}
    a2 = {"type": "STREAM", "stream": {"stream_descriptor": {"name": "a"}, "stream_state": {"n": 2}}}
    state = merge_state(merge_state(merge_state(None, a1), b1), a2)
    assert [s["stream"]["stream_state"]["n"] for s in state] == [1, 2]  # b's, then a's latest
    assert state_for_read(state) == state
    assert state_for_read([{"type": "LEGACY", "data": {"cursor": 5}}]) == {"cursor": 5}
    assert state_for_read(None) is None
    global_state = merge_state(state, {"type": "GLOBAL", "global": {"shared_state": {}}})
    assert merge_state(global_state, {"type": "GLOBAL", "global": {"x": 1}})[-1] == {
        "type": "GLOBAL",
        "global": {"x": 1},
    }


SPEC = {
    "properties": {
        "start_date": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"},
        "account_ids": {"type": "array", "order": 1},
        "customer_id": {"type": "string", "order": 0},
        "shop": {"type": "string"},
    }
}


def test_a_run_narrows_the_account_property_to_the_picked_accounts_in_its_own_form():
    assert with_accounts(SPEC, {"customer_id": "123-456, 789", "x": 1}, ["789"]) == {"customer_id": "789", "x": 1}
    listed = {"properties": {"auth": {"type": "object", "properties": {"account_ids": {"type": "array"}}}}}
    config = {"auth": {"account_ids": [111, 222]}}
    assert with_accounts(listed, config, ["222"]) == {"auth": {"account_ids": [222]}}  # numbers stay numbers
    assert config == {"auth": {"account_ids": [111, 222]}}  # the stored one is left alone
    assert with_accounts({"properties": {}}, {"a": 1}, ["x"]) == {"a": 1}


def test_business_account_and_accounts_follow_the_one_rule():
    source = AirbyteSource("x", "/bin/false", {"connectionSpecification": {"title": "Source X Spec", **SPEC}})
    assert source.title == "X"
    listed = config_credentials({"customer_id": "a1,a2"}, "ignored")
    assert (source.business_account(listed).id, [a.external_id for a in next(source.list_accounts(listed))]) == (
        "a1, a2",
        ["a1", "a2"],
    )
    titled = config_credentials({"count": 1}, "Marketing team")
    business = source.business_account(titled)
    assert (business.id, business.name) == ("Marketing team", "Marketing team")
    assert [a.external_id for a in next(source.list_accounts(titled))] == ["Marketing team"]


def test_the_start_date_takes_the_form_the_spec_asks_for():
    assert with_start(SPEC, {"a": 1}, date(2024, 3, 9)) == {"a": 1, "start_date": "2024-03-09T00:00:00Z"}
    dated = {"properties": {"start_date": {"type": "string", "format": "date"}}}
    assert with_start(dated, {}, date(2024, 3, 9)) == {"start_date": "2024-03-09"}
    assert with_start({"properties": {}}, {"a": 1}, date(2024, 3, 9)) == {"a": 1}


def test_titles_from_specs():
    assert connector_title("Faker Source Spec", "faker") == "Faker"
    assert connector_title("Source Stripe Spec", "stripe") == "Stripe"
    assert connector_title(None, "stripe") == "stripe"


def test_json_schema_types():
    cases = {
        FieldType.TEXT: [{"type": "string"}, {"type": "object"}, {"type": ["string", "integer"]}, {}, {"anyOf": []}],
        FieldType.INTEGER: [{"type": "integer"}, {"type": ["null", "number"], "airbyte_type": "integer"}],
        FieldType.FLOAT: [{"type": "number"}],
        FieldType.BOOLEAN: [{"type": ["null", "boolean"]}],
        FieldType.DATE: [{"type": "string", "format": "date"}],
        FieldType.TIMESTAMP: [
            {"type": "string", "format": "date-time"},
            {"type": "string", "airbyte_type": "timestamp_without_timezone"},
        ],
    }
    for expected, schemas in cases.items():
        for schema in schemas:
            assert field_type(schema) is expected, schema


def test_records_become_typed_columns_and_misfits_null(caplog):
    columns = [
        ("n", FieldType.INTEGER),
        ("x", FieldType.FLOAT),
        ("ok", FieldType.BOOLEAN),
        ("d", FieldType.DATE),
        ("t", FieldType.TIMESTAMP),
        ("o", FieldType.TEXT),
    ]
    table = to_table(
        [
            {"n": 1, "x": 1, "ok": True, "d": "2024-01-02", "t": "2024-01-02T03:04:05+02:00", "o": {"a": [1]}},
            {"n": "2", "x": "2.5", "ok": "false", "d": "2024-01-03T00:00:00", "t": "2024-01-02 03:04:05", "o": "s"},
            {"n": "many", "t": 5},
        ],
        columns,
        stream="s",
    )
    assert table.to_pylist() == [
        {
            "n": 1,
            "x": 1.0,
            "ok": True,
            "d": date(2024, 1, 2),
            "t": datetime(2024, 1, 2, 1, 4, 5, tzinfo=UTC),
            "o": '{"a":[1]}',
        },
        {
            "n": 2,
            "x": 2.5,
            "ok": False,
            "d": date(2024, 1, 3),
            "t": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
            "o": "s",
        },
        {"n": None, "x": None, "ok": None, "d": None, "t": None, "o": None},
    ]
    assert "loaded as NULL: n (1), t (1)" in caplog.text


def test_a_stream_without_a_top_level_key_has_none():
    stream = Stream.of(
        {
            "name": "events",
            "json_schema": {"properties": {"id": {"type": "integer"}, "meta": {"type": "object"}}},
            "supported_sync_modes": ["full_refresh"],
            "source_defined_primary_key": [["meta", "id"]],
        }
    )
    template = stream_template(stream)
    assert template.primary_key == () and template.description == "2 fields · full refresh · no key"
