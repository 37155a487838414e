"""The form of a source configured by a JSON Schema, and its reader: pure functions, whole outputs
compared (golden), Slack's limits for any spec, what comes back typed as the spec says."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from platforms.spec_sources import ADS_SPEC, FAKER_SPEC, oversized_spec

from bot.blocks.spec_form import (
    JSON_BLOCK,
    TITLE_BLOCK,
    Field,
    Kind,
    block_id,
    errors_on_view,
    layout,
    read_spec_form,
    spec_form,
)
from fakeslack.limits import check_view
from support import compare_golden, texts

GOLDEN = Path(__file__).parent / "golden"
EVIL = "<!channel> *bold* <https://evil.example|click> & `code`"


def form(spec, **kw):
    view = spec_form(title="New connection", callback_id="cb", source_title="Acme", spec=spec, metadata="{}", **kw)
    problems = check_view(view)
    assert problems == [], "\n".join(map(str, problems))
    return view


def golden(name: str, value) -> None:
    compare_golden(GOLDEN / f"{name}.json", value)


def by_id(view) -> dict[str, dict]:
    return {b["block_id"]: b for b in view["blocks"] if "block_id" in b}


STORED = {
    "account_ids": ["111", "222"],
    "credentials": {"auth_type": "oauth2.0", "client_id": "client-1", "client_secret": "SECRET-cs-value"},
    "start_date": "2023-05-01",
    "region": "apac",
    "breakdowns": ["age", "device"],
    "lookback_days": [1, 7, 28],
    "reporting": {"window_days": 28, "include_deleted": True},
    "custom_reports": [{"name": "r1", "fields": ["a", "b"]}],
}


def test_golden_forms():
    golden("spec_form_faker", form(FAKER_SPEC))
    golden("spec_form_ads_new", form(ADS_SPEC))
    golden(
        "spec_form_ads_reconnect",
        form(
            ADS_SPEC,
            config=STORED,
            in_use={"/credentials/client_secret": "SE…alue"},
            errors={"": "The platform refused the token.", "/reporting/window_days": "Must be at most 90."},
            sync_mode="selected",
            confirm_business=True,
        ),
    )
    golden("spec_form_oversized", form(oversized_spec(), config={"field_000": 1, "api_key": "SECRET"}, in_use={}))


def test_secrets_are_never_filled_in_whatever_the_configuration_holds():
    for view in (form(ADS_SPEC, config=STORED), form(oversized_spec(), config={"api_key": "SECRET-1"})):
        assert "SECRET" not in texts(view)


def test_a_oneof_is_a_select_whose_choice_brings_its_fields():
    oauth = by_id(form(ADS_SPEC))
    token = by_id(form(ADS_SPEC, choices={"/credentials": 1}))
    service = by_id(form(ADS_SPEC, config={"credentials": {"auth_type": "service"}}))
    select = oauth["cfg/credentials"]
    assert select["dispatch_action"] is True and select["element"]["action_id"] == "connection.config_option"
    assert [o["text"]["text"] for o in select["element"]["options"]] == ["OAuth", "API token", "Service account"]
    assert {k for k in oauth if k.startswith("cfg/credentials/")} == {
        "cfg/credentials/client_id",
        "cfg/credentials/client_secret",
        "cfg/credentials/refresh_token",
    }
    assert {k for k in token if k.startswith("cfg/credentials/")} == {"cfg/credentials/api_token"}
    assert token["cfg/credentials"]["element"]["initial_option"]["value"] == "1"
    assert service["cfg/credentials/service_account_info"]["element"]["multiline"] is True


def test_each_kind_of_field_gets_its_input():
    fields = {f.path: f.kind for f in layout(ADS_SPEC, lambda path, schema, required: 0) if isinstance(f, Field)}
    assert fields == {
        ("account_ids",): Kind.LINES,
        ("credentials",): Kind.BRANCH,
        ("credentials", "client_id"): Kind.TEXT,
        ("credentials", "client_secret"): Kind.SECRET,
        ("credentials", "refresh_token"): Kind.SECRET,
        ("start_date",): Kind.DATE,
        ("end_time",): Kind.TEXT,
        ("region",): Kind.SELECT,
        ("country",): Kind.TEXT,  # 156 values: more than a select holds
        ("breakdowns",): Kind.CHOICES,
        ("lookback_days",): Kind.LINES,
        ("reporting", "window_days"): Kind.NUMBER,
        ("reporting", "include_deleted"): Kind.BOOLEAN,
        ("reporting", "ratio"): Kind.NUMBER,
        ("custom_reports",): Kind.JSON,  # an array of objects
    }


def test_nesting_deeper_than_three_objects_is_asked_as_json():
    deep = {"type": "object", "properties": {"x": {"type": "string"}}}
    for name in ("d", "c", "b", "a"):
        deep = {"type": "object", "title": name, "properties": {name: deep}}
    fields = [i for i in layout(deep, lambda *a: None) if isinstance(i, Field)]
    assert [(f.path, f.kind) for f in fields] == [(("a", "b", "c", "d"), Kind.JSON)]


def test_the_reader_types_every_value_as_the_spec_says():
    values = {
        "cfg/account_ids": " 111 \n\n222\n",
        "cfg/credentials": "0",
        "cfg/credentials/client_id": " client-1 ",
        "cfg/credentials/client_secret": "  s3cret\n",
        "cfg/credentials/refresh_token": "rt",
        "cfg/start_date": "2023-05-01",
        "cfg/end_time": "2024-12-31T00:00:00Z",
        "cfg/region": "2",
        "cfg/country": "FB",
        "cfg/breakdowns": ["0", "3"],
        "cfg/lookback_days": "1\n7",
        "cfg/reporting/window_days": "28",
        "cfg/reporting/include_deleted": [],
        "cfg/reporting/ratio": "0.25",
        "cfg/custom_reports": '[{"name": "r1"}]',
        "sync_mode": "all",
    }
    reading = read_spec_form(ADS_SPEC, values)
    assert reading.errors == {}
    assert reading.config == {
        "account_ids": ["111", "222"],
        "credentials": {
            "auth_type": "oauth2.0",
            "client_id": "client-1",
            "client_secret": "s3cret",
            "refresh_token": "rt",
        },
        "start_date": "2023-05-01",
        "end_time": "2024-12-31T00:00:00Z",
        "region": "apac",
        "country": "FB",
        "breakdowns": ["age", "device"],
        "lookback_days": [1, 7],
        "reporting": {"window_days": 28, "include_deleted": False, "ratio": 0.25},
        "custom_reports": [{"name": "r1"}],
    }
    assert reading.choices == {"/credentials": 0}
    assert "s3cret" not in repr(reading)


def test_an_optional_object_left_empty_is_left_out():
    values = {"cfg/account_ids": "1", "cfg/credentials": "1", "cfg/credentials/api_token": "t", "cfg/start_date": None}
    reading = read_spec_form(ADS_SPEC, {**values, "cfg/reporting/include_deleted": []})
    assert reading.config == {"account_ids": ["1"], "credentials": {"auth_type": "token", "api_token": "t"}}
    assert reading.errors == {"cfg/start_date": "Start date is required."}


def test_a_secret_left_empty_is_an_error_except_on_reconnect():
    values = {"cfg/account_ids": "1", "cfg/credentials": "1", "cfg/start_date": "2024-01-01"}
    assert read_spec_form(ADS_SPEC, values).errors == {"cfg/credentials/api_token": "API token is required."}
    assert read_spec_form(ADS_SPEC, values, keep_secrets=True).errors == {}


def test_the_name_is_asked_when_the_configuration_names_no_account():
    assert TITLE_BLOCK in by_id(form(FAKER_SPEC)) and TITLE_BLOCK not in by_id(form(ADS_SPEC))
    optional = {"type": "object", "properties": {"advertiser_id": {"type": "string"}}}
    assert by_id(form(optional))[TITLE_BLOCK]["optional"] is True
    assert read_spec_form(FAKER_SPEC, {TITLE_BLOCK: ""}).errors == {TITLE_BLOCK: "Give the connection a name."}
    assert read_spec_form(FAKER_SPEC, {TITLE_BLOCK: "  Test  "}).name == "Test"
    assert read_spec_form(optional, {TITLE_BLOCK: ""}).errors == {}


def test_a_form_over_a_modals_blocks_takes_the_configuration_as_json():
    view = form(oversized_spec(), config={"field_000": 1})
    assert [b.get("block_id") for b in view["blocks"] if b["type"] == "input"] == [TITLE_BLOCK, JSON_BLOCK, "sync_mode"]
    reading = read_spec_form(oversized_spec(), {JSON_BLOCK: '{"field_000": 1, "api_key": "k"}', TITLE_BLOCK: "x"})
    assert (reading.config, reading.errors) == ({"field_000": 1, "api_key": "k"}, {})
    assert read_spec_form(oversized_spec(), {JSON_BLOCK: "[1]", TITLE_BLOCK: "x"}).errors == {
        JSON_BLOCK: 'Enter a JSON object: {"name": value, ...}.'
    }


def test_errors_never_quote_what_was_typed():
    values = {JSON_BLOCK: '{"field_000": "SECRET-1", "api_key": ["SECRET-2"], "field_001": 1.5}', TITLE_BLOCK: "x"}
    errors = read_spec_form(oversized_spec(), values).errors
    assert errors and "SECRET" not in texts(errors)


def test_block_ids_are_stable_and_fit_slack_for_any_path():
    long = tuple("k" * 100 for _ in range(4))
    assert block_id(("credentials", "client_id")) == "cfg/credentials/client_id"
    assert block_id(("a/b", "c~d")) == "cfg/a~1b/c~0d"
    assert len(block_id(long)) <= 255 and block_id(long) == block_id(long)
    assert block_id(long) != block_id((*long[:3], "k" * 99 + "j"))


def test_an_error_for_a_field_the_submitted_view_lacks_goes_on_its_option():
    inputs = ["cfg/account_ids", "cfg/credentials", "sync_mode"]
    assert errors_on_view({"cfg/credentials/api_token": "API token is required."}, inputs) == {
        "cfg/credentials": "API token is required."
    }
    assert errors_on_view({"cfg/elsewhere": "x"}, inputs) == {"cfg/account_ids": "x"}


def test_spec_text_stays_plain_and_within_slacks_limits():
    spec = {
        "type": "object",
        "required": ["token"],
        "properties": {
            "token": {
                "title": EVIL * 100,
                "description": "D" * 5000,
                "examples": ["e" * 500],
                "type": "string",
                "airbyte_secret": True,
            },
            "group": {
                "title": EVIL * 10,
                "description": EVIL,
                "type": "object",
                "properties": {"kind": {"type": "string", "enum": [EVIL * 5, "b"]}},
            },
        },
    }
    view = form(spec, in_use={"/token": "ab…wxyz"})
    token = by_id(view)["cfg/token"]
    assert token["hint"]["text"].endswith(
        "Secret: kept encrypted, never shown again. In use: ab…wxyz; leave empty to keep it."
    )
    assert len(token["element"]["placeholder"]["text"]) <= 150
    for element in json.loads(texts(view["blocks"])):
        assert "mrkdwn" not in texts(element) or EVIL not in texts(element)


SCALARS = st.sampled_from(
    [
        {"type": "string"},
        {"type": "string", "airbyte_secret": True},
        {"type": "integer", "minimum": 0, "default": 3},
        {"type": "number"},
        {"type": "boolean", "default": True},
        {"type": "string", "format": "date"},
        {"type": "string", "enum": ["a", "b"]},
        {"type": "array", "items": {"type": "string"}},
        {"type": "array", "items": {"type": "object", "properties": {"x": {"type": "string"}}}},
    ]
)
KEYS = st.text(alphabet="abc_/~é<>&* ", min_size=1, max_size=30)


def objects(children):
    return st.builds(
        lambda props, title, required: {
            "type": "object",
            "title": title,
            "properties": props,
            "required": [k for k in props if required],
        },
        st.dictionaries(KEYS, children, min_size=1, max_size=12),
        st.text(max_size=200),
        st.booleans(),
    )


def one_ofs(children):
    return st.lists(objects(children), min_size=1, max_size=4).map(
        lambda bs: {
            "type": "object",
            "oneOf": [{**b, "properties": {**b["properties"], "kind": {"const": f"k{n}"}}} for n, b in enumerate(bs)],
        }
    )


SPECS = st.recursive(SCALARS, lambda children: st.one_of(objects(children), one_ofs(children)), max_leaves=60).filter(
    lambda s: "properties" in s
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=SPECS, choice=st.integers(0, 3))
def test_any_spec_gives_a_form_slack_accepts_and_reads_back(spec, choice):
    form(spec, choices={"": choice})
    view = form(spec, config=read_spec_form(spec, {}).config)
    read_spec_form(spec, {b["block_id"]: None for b in view["blocks"] if b["type"] == "input"})
    assert len(view["blocks"]) <= 100
