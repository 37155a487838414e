"""Block Kit limits: one test per limit, at the limit (accepted) and one past it."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fakeslack import check_message, check_view
from fakeslack import limits as L


def pt(text):
    return {"type": "plain_text", "text": text}


def md(text):
    return {"type": "mrkdwn", "text": text}


def section(text="x", **extra):
    return {"type": "section", "text": md(text), **extra}


def button(action_id="b", text="Go", **extra):
    return {"type": "button", "action_id": action_id, "text": pt(text), **extra}


def actions(*elements, **extra):
    return {"type": "actions", "elements": list(elements), **extra}


def options(n, text="o"):
    return [{"text": pt(f"{text}{i}"), "value": f"v{i}"} for i in range(n)]


def modal(blocks=None, **extra):
    view = {"type": "modal", "title": pt("Title"), "blocks": blocks if blocks is not None else [section()]}
    view.update(extra)
    return view


def confirm(title="Sure?", text="Really?"):
    return {"title": pt(title), "text": md(text), "confirm": pt("Yes"), "deny": pt("No")}


def pointers(problems):
    return [p.pointer for p in problems]


# (name, make(n) -> blocks, limit, pointer of the problem past the limit)
MESSAGE_CASES = [
    ("blocks per message", lambda n: [section() for _ in range(n)], L.MESSAGE_BLOCKS, "/blocks"),
    ("section text", lambda n: [section("x" * n)], L.SECTION_TEXT, "/blocks/0/text/text"),
    (
        "header text",
        lambda n: [{"type": "header", "text": pt("x" * n)}],
        L.HEADER_TEXT,
        "/blocks/0/text/text",
    ),
    (
        "fields per section",
        lambda n: [{"type": "section", "fields": [md("f")] * n}],
        L.SECTION_FIELDS,
        "/blocks/0/fields",
    ),
    (
        "field text",
        lambda n: [{"type": "section", "fields": [md("x" * n)]}],
        L.FIELD_TEXT,
        "/blocks/0/fields/0/text",
    ),
    (
        "button text",
        lambda n: [actions(button(text="x" * n))],
        L.BUTTON_TEXT,
        "/blocks/0/elements/0/text/text",
    ),
    (
        "button value",
        lambda n: [actions(button(value="x" * n))],
        L.BUTTON_VALUE,
        "/blocks/0/elements/0/value",
    ),
    (
        "action_id",
        lambda n: [actions(button(action_id="a" * n))],
        L.ID_LENGTH,
        "/blocks/0/elements/0/action_id",
    ),
    ("block_id", lambda n: [section(block_id="b" * n)], L.ID_LENGTH, "/blocks/0/block_id"),
    (
        "confirm title",
        lambda n: [actions(button(confirm=confirm(title="x" * n)))],
        L.CONFIRM_TITLE,
        "/blocks/0/elements/0/confirm/title/text",
    ),
    (
        "confirm text",
        lambda n: [actions(button(confirm=confirm(text="x" * n)))],
        L.CONFIRM_TEXT,
        "/blocks/0/elements/0/confirm/text/text",
    ),
    (
        "static select options",
        lambda n: [actions({"type": "static_select", "action_id": "s", "options": options(n)})],
        L.SELECT_OPTIONS,
        "/blocks/0/elements/0/options",
    ),
    (
        "option text",
        lambda n: [
            actions({"type": "static_select", "action_id": "s", "options": [{"text": pt("x" * n), "value": "v"}]})
        ],
        L.OPTION_TEXT,
        "/blocks/0/elements/0/options/0/text/text",
    ),
    (
        "context elements",
        lambda n: [{"type": "context", "elements": [md("c")] * n}],
        L.CONTEXT_ELEMENTS,
        "/blocks/0/elements",
    ),
    (
        "actions elements",
        lambda n: [actions(*[button(f"b{i}") for i in range(n)])],
        L.ACTIONS_ELEMENTS,
        "/blocks/0/elements",
    ),
    (
        "overflow options (max)",
        lambda n: [actions({"type": "overflow", "action_id": "o", "options": options(n)})],
        L.OVERFLOW_MAX,
        "/blocks/0/elements/0/options",
    ),
]


@pytest.mark.parametrize("name,make,limit,pointer", MESSAGE_CASES, ids=[c[0] for c in MESSAGE_CASES])
def test_message_limit(name, make, limit, pointer):
    assert check_message(make(limit), text="fallback") == []
    problems = check_message(make(limit + 1), text="fallback")
    assert pointers(problems) == [pointer], problems
    assert str(problems[0]).startswith("[ERROR] ") and f"[json-pointer:{pointer}]" in str(problems[0])


VIEW_CASES = [
    ("blocks per modal", lambda n: modal([section() for _ in range(n)]), L.VIEW_BLOCKS, "/view/blocks"),
    (
        "blocks per home",
        lambda n: {"type": "home", "blocks": [section() for _ in range(n)]},
        L.VIEW_BLOCKS,
        "/view/blocks",
    ),
    ("modal title", lambda n: modal(title=pt("x" * n)), L.MODAL_TITLE, "/view/title/text"),
    ("modal submit", lambda n: modal(submit=pt("x" * n)), L.MODAL_TITLE, "/view/submit/text"),
    ("modal close", lambda n: modal(close=pt("x" * n)), L.MODAL_TITLE, "/view/close/text"),
    (
        "private_metadata",
        lambda n: modal(private_metadata="x" * n),
        L.PRIVATE_METADATA,
        "/view/private_metadata",
    ),
    ("callback_id", lambda n: modal(callback_id="x" * n), L.ID_LENGTH, "/view/callback_id"),
]


@pytest.mark.parametrize("name,make,limit,pointer", VIEW_CASES, ids=[c[0] for c in VIEW_CASES])
def test_view_limit(name, make, limit, pointer):
    assert check_view(make(limit)) == []
    problems = check_view(make(limit + 1))
    assert pointers(problems) == [pointer], problems


def test_update_text_limit_is_4000_but_post_is_40000():
    assert check_message(None, text="x" * 4_001) == []
    assert pointers(check_message(None, text="x" * 4_001, text_limit=L.UPDATE_TEXT)) == ["/text"]
    assert pointers(check_message(None, text="x" * 40_001)) == ["/text"]


def test_overflow_needs_two_options():
    one = [actions({"type": "overflow", "action_id": "o", "options": options(1)})]
    two = [actions({"type": "overflow", "action_id": "o", "options": options(2)})]
    assert pointers(check_message(one)) == ["/blocks/0/elements/0/options"]
    assert check_message(two) == []


def test_duplicate_action_id_within_a_block():
    blocks = [actions(button("same"), button("same"))]
    assert pointers(check_message(blocks)) == ["/blocks/0/elements/1/action_id"]
    # the same action_id in two different blocks is fine
    assert check_message([actions(button("same")), actions(button("same"))]) == []


def test_duplicate_block_id():
    blocks = [section(block_id="a"), section(block_id="a")]
    assert pointers(check_message(blocks)) == ["/blocks/1/block_id"]


def test_header_must_be_plain_text():
    assert pointers(check_message([{"type": "header", "text": md("*bold*")}])) == ["/blocks/0/text/type"]


def test_empty_section_text_is_refused():
    assert pointers(check_message([section("")])) == ["/blocks/0/text/text"]


def test_section_needs_text_or_fields():
    assert pointers(check_message([{"type": "section"}])) == ["/blocks/0"]


def test_unknown_block_and_misplaced_element():
    assert pointers(check_message([{"type": "sektion", "text": md("x")}])) == ["/blocks/0/type"]
    bad = [actions({"type": "plain_text_input", "action_id": "t"})]  # inputs only live in input blocks
    assert pointers(check_message(bad)) == ["/blocks/0/elements/0/type"]


def test_initial_option_must_be_one_of_the_options():
    el = {
        "type": "static_select",
        "action_id": "s",
        "options": options(2),
        "initial_option": {"text": pt("zzz"), "value": "nope"},
    }
    assert pointers(check_message([actions(el)])) == ["/blocks/0/elements/0/initial_option"]


def test_modal_with_inputs_needs_submit():
    inp = {"type": "input", "label": pt("Name"), "element": {"type": "plain_text_input", "action_id": "n"}}
    assert pointers(check_view(modal([inp]))) == ["/view/submit"]
    assert check_view(modal([inp], submit=pt("Save"))) == []


def test_modal_title_is_required_and_plain_text():
    view = modal()
    del view["title"]
    assert pointers(check_view(view)) == ["/view/title"]
    assert pointers(check_view(modal(title=md("x")))) == ["/view/title/type"]


def test_every_problem_is_reported_not_just_the_first():
    blocks = [section("x" * 3_001), {"type": "header", "text": pt("y" * 151)}, actions(button(text="z" * 76))]
    assert pointers(check_message(blocks)) == [
        "/blocks/0/text/text",
        "/blocks/1/text/text",
        "/blocks/2/elements/0/text/text",
    ]


def test_checks_do_not_modify_the_payload():
    blocks = [actions(button(confirm=confirm()))]
    before = copy.deepcopy(blocks)
    check_message(blocks)
    assert blocks == before


@given(st.integers(min_value=1, max_value=3_100))
def test_section_text_property(n):
    assert bool(check_message([section("é" * n)])) == (n > L.SECTION_TEXT)


@given(st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=6))
def test_action_ids_must_be_unique_property(ids):
    problems = check_message([actions(*[button(i) for i in ids])])
    assert bool(problems) == (len(set(ids)) < len(ids))
