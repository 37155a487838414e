"""Make a new connection and Re-connect for a source configured by a JSON Schema (`config_spec`:
an Airbyte connector's `connectionSpecification`, draft-07), and the reader of what comes back.

The form follows the schema, property by property in the spec's `order`:

| schema                                     | input                                                |
| ------------------------------------------ | ---------------------------------------------------- |
| string                                     | text (multiline when `multiline: true`)              |
| `airbyte_secret: true`                     | text never filled in again; Re-connect shows it masked and keeps it when left empty |
| integer, number                            | number input with `minimum`/`maximum`                |
| boolean                                    | a checkbox                                           |
| `enum`                                     | a select (up to 100 values, else text checked against them) |
| format `date` (or a date-only `pattern`)   | a date picker                                        |
| format `date-time`, another `pattern`      | text whose hint shows the format                     |
| array of strings or numbers                | one value per line (a multi-select for an `enum`)    |
| object                                     | its fields under a header with its title             |
| `oneOf` / `anyOf` of objects               | a select of the options; choosing one redraws the form with its fields |
| anything else (arrays of objects, free-form objects, nesting deeper than 3) | that field as JSON |

`default` is filled in where the configuration has no value; `title` is the label and
`description` the hint. A form that would need more than Slack's 100 blocks asks for the whole
configuration as one JSON input instead. Everything typed is validated against the schema
(`sources.config.config_errors`) and errors go on the field they concern.

Pure: `spec_form` takes plain values and returns the modal; `read_spec_form` takes the submitted
values (`bot.forms.form_values`) and returns the configuration document with errors by block id.
Both derive the fields from the same `layout`, so a block id always names the same field path.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeGuard

from bot.blocks.common import SELECT_OPTIONS_MAX, context, header, option, plain, section
from bot.blocks.connect import (
    VALUE,
    confirm_business_blocks,
    confirm_no_accounts_blocks,
    field_error,
    modal,
    sync_mode_blocks,
)
from bot.ids import Action
from sources.config import (
    FORMAT_EXAMPLES,
    TITLE_KEY,
    TITLE_MAX,
    account_field,
    branch_constants,
    branches,
    chosen_branch,
    config_errors,
    dotted,
    field_title,
    ordered_properties,
    pointer,
    pointer_path,
    schema_at,
    without_secrets,
)

PREFIX = "cfg"  # block ids of fields: "cfg" + the field's JSON pointer
JSON_BLOCK = "config_json"  # the whole configuration as JSON, when the fields do not fit
TITLE_BLOCK = "connection_title"  # the connection's name, when the configuration names no account
CHECKED = "yes"

MAX_BLOCKS = 100  # Slack's limit for a modal
MAX_DEPTH = 3  # objects nested deeper are asked as JSON
TEXT_MAX = 3000  # Slack's limit for a text input
LABEL_MAX = HINT_MAX = 2000
PLACEHOLDER_MAX = 150
ERROR_TEXT_MAX = 500  # errors listed on one input stop there


class Kind(StrEnum):
    TEXT = "text"
    SECRET = "secret"
    NUMBER = "number"
    BOOLEAN = "boolean"
    SELECT = "select"  # an enum
    DATE = "date"
    LINES = "lines"  # an array of strings or numbers, one per line
    CHOICES = "choices"  # an array of enum values
    BRANCH = "branch"  # the option of a oneOf object
    JSON = "json"


@dataclass(frozen=True)
class Field:
    """One input of the form: where its value goes in the configuration, and how it is asked."""

    path: tuple[str, ...]
    kind: Kind
    schema: Mapping[str, Any] = field(compare=False, repr=False)
    required: bool  # at every level from the root: Slack's client refuses to submit it empty
    chosen: int | None = None  # a oneOf's option in this layout

    @property
    def block_id(self) -> str:
        return block_id(self.path)

    @property
    def label(self) -> str:
        return str(self.schema.get("title") or (_humanize(self.path[-1]) if self.path else "Configuration"))


@dataclass(frozen=True)
class Group:
    """An object of the configuration: a header over its fields when `shown`."""

    path: tuple[str, ...]
    schema: Mapping[str, Any] = field(compare=False, repr=False)
    needed: bool  # required by the object that holds it
    shown: bool


@dataclass(frozen=True)
class Fixed:
    """A constant of the schema (a oneOf option's discriminator): set by the form, not asked."""

    path: tuple[str, ...]
    value: Any


Item = Field | Group | Fixed
# Which option of the oneOf object at `path` is chosen (None: none yet).
Chooser = Callable[[tuple[str, ...], Mapping[str, Any], bool], int | None]


def block_id(path: tuple[str, ...]) -> str:
    """The block id of the field at `path`: stable, within Slack's 255 characters."""
    text = PREFIX + pointer(path)
    if len(text) <= 255:
        return text
    return text[:238] + "~" + hashlib.sha256(text.encode()).hexdigest()[:16]


def layout(spec: Mapping[str, Any], choose: Chooser) -> list[Item]:
    """The form's fields, groups and constants, in order, for the options `choose` picks."""
    if "properties" in spec and not branches(spec):
        return [Group((), spec, True, shown=False), *_object(spec, (), True, 0, choose)]
    return list(_property(spec, (), True, -1, choose))  # a spec that is itself a oneOf, or free-form


def _object(schema: Mapping[str, Any], path: tuple[str, ...], required: bool, depth: int, choose: Chooser):
    needed = set(schema.get("required") or ())
    for key, sub in ordered_properties(schema):
        yield from _property(sub, (*path, key), required and key in needed, depth, choose, key in needed)


def _property(
    schema: Mapping[str, Any], path: tuple[str, ...], required: bool, depth: int, choose: Chooser, needed: bool = True
):
    """`required`: at every level from the root; `needed`: by the object that holds it."""
    if "const" in schema or (isinstance(schema.get("enum"), list) and len(schema["enum"]) == 1):
        yield Fixed(path, schema["const"] if "const" in schema else schema["enum"][0])
        return
    kind = _type(schema)
    options = branches(schema)
    if options:
        fit = kind in ("object", None) and all(_type(b) in ("object", None) and b.get("properties") for b in options)
        if fit and depth < MAX_DEPTH and len(options) <= SELECT_OPTIONS_MAX:
            chosen = choose(path, schema, required)
            yield Field(path, Kind.BRANCH, schema, required, chosen)
            if chosen is not None:
                merged = _merged(schema, options[chosen])
                yield Group(path, merged, needed, shown=False)
                yield from _object(merged, path, required, depth + 1, choose)
            return
        yield Field(path, Kind.JSON, schema, required)
    elif kind == "object":
        if depth >= MAX_DEPTH or not schema.get("properties"):
            yield Field(path, Kind.JSON, schema, required)  # free-form, or nested too deep to flatten
            return
        inner = list(_object(schema, path, required, depth + 1, choose))
        yield Group(path, schema, needed, shown=any(isinstance(i, Field) for i in inner))
        yield from inner
    elif kind == "array":
        raw_items = schema.get("items")
        items: Mapping[str, Any] = raw_items if isinstance(raw_items, Mapping) else {}
        if isinstance(items.get("enum"), list) and 0 < len(items["enum"]) <= SELECT_OPTIONS_MAX:
            yield Field(path, Kind.CHOICES, schema, required)
        elif _type(items) in ("string", "integer", "number") and not schema.get("airbyte_secret"):
            yield Field(path, Kind.LINES, schema, required)
        else:
            yield Field(path, Kind.JSON, schema, required)
    elif schema.get("airbyte_secret") and kind in ("string", None):
        yield Field(path, Kind.SECRET, schema, required)
    elif isinstance(schema.get("enum"), list) and schema["enum"]:
        yield Field(path, Kind.SELECT if len(schema["enum"]) <= SELECT_OPTIONS_MAX else Kind.TEXT, schema, required)
    elif kind == "boolean":
        yield Field(path, Kind.BOOLEAN, schema, required)
    elif kind in ("integer", "number"):
        yield Field(path, Kind.NUMBER, schema, required)
    elif kind == "string":
        yield Field(path, Kind.DATE if _is_date(schema) else Kind.TEXT, schema, required)
    else:
        yield Field(path, Kind.JSON, schema, required)


def _type(schema: Any) -> str | None:
    """The schema's one type (`["null", "string"]` is a string); None when it has none or several."""
    if not isinstance(schema, Mapping):
        return None
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        return kinds[0] if len(kinds) == 1 else None
    if kind is None and (schema.get("properties") or branches(schema)):
        return "object"
    return kind if isinstance(kind, str) else None


def _merged(schema: Mapping[str, Any], branch: Mapping[str, Any]) -> dict[str, Any]:
    """An object's own properties with those of one of its options."""
    return {
        "properties": {**(schema.get("properties") or {}), **(branch.get("properties") or {})},
        "required": [*(schema.get("required") or ()), *(branch.get("required") or ())],
    }


def _is_date(schema: Mapping[str, Any]) -> bool:
    if schema.get("format") == "date":
        return True
    pattern = schema.get("pattern")
    if not isinstance(pattern, str) or schema.get("format") == "date-time":
        return False
    try:  # a pattern that takes a date and refuses a date and time asks for a date
        return bool(re.search(pattern, "2024-01-31")) and not re.search(pattern, "2024-01-31T00:00:00Z")
    except re.error:
        return False


def _humanize(key: str) -> str:
    words = str(key).replace("_", " ").strip()
    return words[:1].upper() + words[1:] if words else str(key)


def value_at(config: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        config = config.get(key) if isinstance(config, Mapping) else None
    return config


def name_asked(spec: Mapping[str, Any]) -> str | None:
    """ "required" when the configuration names no platform account (the connection's name is its
    business account), "optional" when it may leave it out, None when it always names one."""
    found = account_field(spec)
    return "required" if found is None else (None if found.required else "optional")


# -- the modal -------------------------------------------------------------------------------------


def spec_form(
    *,
    title: str,
    callback_id: str,
    source_title: str,
    spec: Mapping[str, Any],
    metadata: str,
    config: Mapping[str, Any] | None = None,
    name: str = "",
    choices: Mapping[str, int | None] | None = None,
    in_use: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    sync_mode: str = "all",
    confirm_business: bool = False,
) -> dict:
    """The form of a spec source.

    `config` fills the fields in (its secrets are never shown); `choices` (JSON pointer → option
    index) overrides the oneOf options it implies. `in_use` is the masked secrets of the
    configuration in use, by JSON pointer (Re-connect): those fields may be left empty to keep
    them. `errors` are keyed by block id, or by a field's JSON pointer as the operations report
    them, "" for the form as a whole."""
    config = without_secrets(spec, config) if config is not None else None
    in_use = dict(in_use or {})
    items = layout(spec, _builder_chooser(config, choices))
    raw_errors = dict(errors or {})
    errors = _on_blocks(items, raw_errors, json_mode=False)
    head = [section(plain(f"Data source: {source_title}", 300))]
    if errors.get(""):
        head.append(section(plain(f"⚠️ {errors['']}", 2000)))
    if in_use:
        shown = ", ".join(f"{field_title(spec, pointer_path(p))} {masked}" for p, masked in sorted(in_use.items()))
        head.append(context(plain(f"In use now: {shown}", 2000)))
    asked = name_asked(spec)
    if asked:
        head += _name_block(name, asked == "required", errors.get(TITLE_BLOCK))
    tail = sync_mode_blocks(sync_mode, errors)
    if confirm_business:
        tail += confirm_business_blocks(errors)
    tail += confirm_no_accounts_blocks(errors)
    body = _field_blocks(items, config, in_use, errors)
    if len(head) + len(body) + len(tail) > MAX_BLOCKS:
        json_errors = _on_blocks(items, raw_errors, json_mode=True)
        body = _json_blocks(spec, config, bool(in_use), json_errors.get(JSON_BLOCK))
    return modal(title, callback_id, head + body + tail, submit="Check and save", metadata=metadata)


def _builder_chooser(config: Mapping[str, Any] | None, choices: Mapping[str, int | None] | None) -> Chooser:
    def choose(path: tuple[str, ...], schema: Mapping[str, Any], required: bool) -> int | None:
        count = len(branches(schema))
        if choices and pointer(path) in choices:
            chosen = choices[pointer(path)]
            return chosen if chosen is not None and 0 <= chosen < count else None
        for value in (value_at(config, path), schema.get("default")):
            chosen = chosen_branch(schema, value)
            if chosen is not None:
                return chosen
        return 0 if required and count else None

    return choose


def _name_block(name: str, required: bool, error: str | None) -> list[dict]:
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": VALUE, "max_length": TITLE_MAX}
    if name:
        element["initial_value"] = name[:TITLE_MAX]
    hint = (
        "How connbot shows this connection: the configuration names no platform account."
        if required
        else "How connbot shows this connection when the configuration names no platform account."
    )
    block = {
        "type": "input",
        "block_id": TITLE_BLOCK,
        "label": plain("Connection name"),
        "hint": plain(hint),
        "element": element,
        "optional": not required,
    }
    return [block] + field_error(error)


def _field_blocks(items: list[Item], config: Any, in_use: Mapping[str, str], errors: Mapping[str, str]) -> list[dict]:
    blocks: list[dict] = []
    fields = [i for i in items if isinstance(i, Field)]
    for item in items:
        if isinstance(item, Group) and item.shown and item.path:
            title = str(item.schema.get("title") or _humanize(item.path[-1]))
            blocks.append(header(title))
            described = _described(item.schema)
            if described:
                blocks.append(context(plain(described, 2000)))
        elif isinstance(item, Field):
            value = value_at(config, item.path) if config is not None else None
            if value is None and "default" in item.schema and item.kind is not Kind.SECRET:
                value = item.schema["default"]
            blocks.append(_input(item, value, in_use.get(pointer(item.path))))
            blocks += field_error(errors.get(item.block_id))
    return blocks if fields else [context(plain("This data source needs no settings.", 100))]


def _input(item: Field, value: Any, masked: str | None) -> dict:
    schema, kind = item.schema, item.kind
    element: dict[str, Any]
    notes: list[str] = []
    if kind in (Kind.TEXT, Kind.SECRET):
        limit = schema.get("maxLength")
        element = {
            "type": "plain_text_input",
            "action_id": VALUE,
            "max_length": limit if isinstance(limit, int) and 0 < limit < TEXT_MAX else TEXT_MAX,
        }
        if schema.get("multiline"):
            element["multiline"] = True
        if kind is Kind.TEXT and isinstance(value, (str, int, float)) and len(str(value)) <= TEXT_MAX:
            element["initial_value"] = str(value)
        if isinstance(schema.get("enum"), list):
            notes.append(f"One of: {_listed([str(v) for v in schema['enum']])}.")
        notes += _format_notes(schema)
        if kind is Kind.SECRET:
            notes.append("Secret: kept encrypted, never shown again.")
            if masked:
                notes.append(f"In use: {masked}; leave empty to keep it.")
    elif kind is Kind.NUMBER:
        element = {"type": "number_input", "action_id": VALUE, "is_decimal_allowed": _type(schema) == "number"}
        low, high = schema.get("minimum"), schema.get("maximum")
        if _number(low):
            element["min_value"] = _decimal(low)
        if _number(high):
            element["max_value"] = _decimal(high)
        if _number(value) and (_type(schema) == "number" or float(value).is_integer()):
            inside = (not _number(low) or value >= low) and (not _number(high) or value <= high)
            if inside:
                element["initial_value"] = _decimal(int(value) if _type(schema) == "integer" else value)
    elif kind is Kind.BOOLEAN:
        yes = option("Yes", CHECKED)
        element = {"type": "checkboxes", "action_id": VALUE, "options": [yes]}
        if value is True:
            element["initial_options"] = [yes]
    elif kind in (Kind.SELECT, Kind.CHOICES):
        values = schema["enum"] if kind is Kind.SELECT else schema["items"]["enum"]
        options = [option(str(v), str(n)) for n, v in enumerate(values)]
        element = {
            "type": "static_select" if kind is Kind.SELECT else "multi_static_select",
            "action_id": VALUE,
            "placeholder": plain("Choose", PLACEHOLDER_MAX),
            "options": options,
        }
        chosen = [value] if kind is Kind.SELECT else (value if isinstance(value, list) else [])
        initial = [options[values.index(v)] for v in chosen if v in values]
        if kind is Kind.SELECT and initial:
            element["initial_option"] = initial[0]
        elif initial:
            element["initial_options"] = initial
    elif kind is Kind.DATE:
        element = {"type": "datepicker", "action_id": VALUE, "placeholder": plain("Choose a date")}
        if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            element["initial_date"] = value
    elif kind is Kind.LINES:
        element = {"type": "plain_text_input", "action_id": VALUE, "multiline": True, "max_length": TEXT_MAX}
        if isinstance(value, list):
            text = "\n".join(str(v) for v in value)
            if text and len(text) <= TEXT_MAX:
                element["initial_value"] = text
        notes.append("One per line.")
        notes += _format_notes(schema.get("items") or {})
    elif kind is Kind.BRANCH:
        options = [option(_option_title(b, n), str(n)) for n, b in enumerate(branches(schema))]
        element = {
            "type": "static_select",
            "action_id": Action.SPEC_BRANCH,
            "placeholder": plain("Choose", PLACEHOLDER_MAX),
            "options": options,
        }
        if item.chosen is not None:
            element["initial_option"] = options[item.chosen]
    else:  # JSON
        element = {"type": "plain_text_input", "action_id": VALUE, "multiline": True, "max_length": TEXT_MAX}
        text = _json_text(value)
        if text:
            element["initial_value"] = text
        notes.append(f"As JSON ({_shape(schema)}).")
        if _holds_secret(schema):
            notes.append("Secrets inside are never shown: type them again.")
    placeholder = _placeholder(schema, kind)
    if placeholder and element["type"] == "plain_text_input":
        element["placeholder"] = plain(placeholder, PLACEHOLDER_MAX)
    block: dict[str, Any] = {
        "type": "input",
        "block_id": item.block_id,
        "label": plain(item.label, LABEL_MAX),
        "element": element,
        "optional": not item.required or kind is Kind.BOOLEAN or bool(masked),
    }
    if kind is Kind.BRANCH:
        block["dispatch_action"] = True  # choosing an option redraws the form with its fields
    hint = _hint(schema, notes)
    if hint:
        block["hint"] = plain(hint, HINT_MAX)
    return block


def _number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _decimal(number: int | float) -> str:
    """A number as Slack's number input takes it: digits, never an exponent (1e-05)."""
    return format(Decimal(repr(number)), "f")


def _option_title(branch: Mapping[str, Any], n: int) -> str:
    constants = branch_constants(branch)
    return str(branch.get("title") or next(iter(constants.values()), None) or f"Option {n + 1}")


def _listed(items: list[str], most: int = 10) -> str:
    return ", ".join(items[:most]) + (f" and {len(items) - most} more" if len(items) > most else "")


def _format_notes(schema: Mapping[str, Any]) -> list[str]:
    shown = schema.get("pattern_descriptor")
    example = FORMAT_EXAMPLES.get(schema.get("format") or "")
    if schema.get("format") == "date-time":
        return [f"Format: {shown or 'YYYY-MM-DDTHH:MM:SSZ'}, e.g. {example}."]
    if isinstance(schema.get("pattern"), str):
        return [f"Format: {shown or schema['pattern']}."]
    if example:
        return [f"Format: e.g. {example}."]
    return []


def _described(schema: Mapping[str, Any]) -> str:
    """A description as plain text: HTML tags dropped, Markdown links spelled out."""
    text = schema.get("description")
    if not isinstance(text, str):
        return ""
    text = re.sub(r"\[([^\]]+)\]\((https?://[^)\s]+)\)", r"\1 (\2)", text)
    text = re.sub(r"<a\s[^>]*href=[\"']([^\"']+)[\"'][^>]*>(.*?)</a>", r"\2 (\1)", text, flags=re.I | re.S)
    text = html.unescape(re.sub(r"<[^>]+>", "", text))
    return re.sub(r"\s+", " ", text).strip()


def _hint(schema: Mapping[str, Any], notes: list[str]) -> str:
    """The description, shortened so that the notes (format, secret, in use) always show."""
    extra = " ".join(notes)
    room = HINT_MAX - len(extra) - 1
    described = _described(schema)
    if len(described) > room:
        described = described[: max(0, room - 1)].rstrip() + "…"
    return " ".join(part for part in (described, extra) if part)


def _placeholder(schema: Mapping[str, Any], kind: Kind) -> str:
    if kind is Kind.LINES:
        examples = (schema.get("items") or {}).get("examples") or schema.get("examples")
        if isinstance(examples, list) and examples and not isinstance(examples[0], (dict, list)):
            return "e.g. " + str(examples[0])
        return ""
    examples = schema.get("examples")
    if isinstance(examples, list) and examples and isinstance(examples[0], (str, int, float)):
        return "e.g. " + str(examples[0])
    return str(schema.get("pattern_descriptor") or "")


def _holds_secret(schema: Any) -> bool:
    if not isinstance(schema, Mapping):
        return False
    inner = [*(schema.get("properties") or {}).values(), schema.get("items"), *branches(schema)]
    return bool(schema.get("airbyte_secret")) or any(_holds_secret(s) for s in inner)


def _json_text(value: Any) -> str:
    """A value as JSON to edit, if it fits a text input."""
    if value is None:
        return ""
    for indent in (2, None):
        text = json.dumps(value, indent=indent, ensure_ascii=False, separators=None if indent else (",", ":"))
        if len(text) <= TEXT_MAX:
            return text
    return ""


def _shape(schema: Mapping[str, Any]) -> str:
    """What a JSON value looks like, in a few words: a list of {"name": text, ...}."""
    kind = _type(schema)
    if kind == "array":
        return "a list of " + _shape(schema.get("items") or {})
    if kind == "object" and schema.get("properties"):
        keys = [f'"{k}"' for k, _ in ordered_properties(schema)]
        return "{" + _listed(keys, 6) + "}"
    if branches(schema):
        return "one of: " + _listed([_option_title(b, n) for n, b in enumerate(branches(schema))], 5)
    return {"object": "an object", "string": "text", "integer": "a whole number", "number": "a number"}.get(
        kind or "", "a value"
    )


def _json_blocks(spec: Mapping[str, Any], config: Any, reconnect: bool, error: str | None) -> list[dict]:
    """The whole configuration as one JSON input, for a spec whose form would not fit a modal."""
    document = config if config is not None else defaults(spec)
    text = _json_text(document)
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": VALUE, "multiline": True, "max_length": 3000}
    if text:
        element["initial_value"] = text
    listed = []
    needed = set(spec.get("required") or ())
    for key, sub in ordered_properties(spec):
        listed.append(f"{key} ({_shape(sub)}{', required' if key in needed else ''})")
    notes = ["This data source has more settings than a Slack form can hold: enter them as a JSON object."]
    if reconnect:
        notes.append("Secrets are not shown: leave them out to keep the ones in use, or type new ones.")
    elif config is not None and not text:
        notes.append("The configuration is too long to show here: type it again.")
    if listed:
        notes.append("Fields: " + "; ".join(listed) + ".")
    block = {
        "type": "input",
        "block_id": JSON_BLOCK,
        "label": plain("Configuration (JSON)"),
        "hint": plain(" ".join(notes), HINT_MAX),
        "element": element,
    }
    return [block] + field_error(error)


def defaults(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A new configuration: the spec's defaults and constants, in the objects it requires."""
    return _defaults(spec, required=True) or {}


def _defaults(schema: Mapping[str, Any], required: bool) -> Any:
    if "default" in schema:
        return schema["default"]
    if _type(schema) != "object" or not required:
        return None
    document: dict[str, Any] = {}
    options = branches(schema)
    merged = _merged(schema, options[0]) if options else schema
    needed = set(merged.get("required") or ())
    for key, sub in ordered_properties(merged):
        if "const" in sub or (isinstance(sub.get("enum"), list) and len(sub["enum"]) == 1):
            document[key] = sub["const"] if "const" in sub else sub["enum"][0]
            continue
        value = _defaults(sub, key in needed)
        if value is not None and value != {}:
            document[key] = value
    return document


# -- errors on their fields ------------------------------------------------------------------------


def _on_blocks(items: list[Item], errors: dict[str, str], *, json_mode: bool) -> dict[str, str]:
    """Errors keyed by block id: those by JSON pointer (a field's path) go to the field that
    holds it (in JSON mode, the JSON input), prefixed with the rest of the path when the field
    holds it as JSON; the connection's name (`title`) to its input."""
    placed: dict[str, str] = {}
    fields = [i for i in items if isinstance(i, Field)]
    by_block = {f.block_id: f for f in fields}
    for key, message in errors.items():
        if key == TITLE_KEY:
            key = TITLE_BLOCK
        if json_mode and key in by_block:
            key = pointer(by_block[key].path)
        if not key.startswith("/"):
            placed.setdefault(key, message)
            continue
        path = pointer_path(key)
        if json_mode:
            placed[JSON_BLOCK] = _joined(placed.get(JSON_BLOCK), f"At {dotted(path)}: {message}")
            continue
        holder = max((f for f in fields if path[: len(f.path)] == f.path), key=lambda f: len(f.path), default=None)
        if holder is None:  # an object left out: its first field, else the form's first
            holder = next((f for f in fields if f.path[: len(path)] == path), fields[0] if fields else None)
        if holder is None:
            placed[""] = _joined(placed.get(""), f"{dotted(path)}: {message}")
        elif holder.path != path and path[: len(holder.path)] == holder.path:  # inside a field held as JSON
            rest = path[len(holder.path) :]
            placed[holder.block_id] = _joined(placed.get(holder.block_id), f"At {dotted(rest)}: {message}")
        else:
            placed.setdefault(holder.block_id, message)
    return placed


def _joined(before: str | None, message: str) -> str:
    """Several errors on one input, up to a readable length."""
    if not before:
        return message
    if len(before) >= ERROR_TEXT_MAX:
        return before if before.endswith("…") else before + " …"
    return f"{before} {message}"


def errors_on_view(errors: Mapping[str, str], inputs: list[str]) -> dict[str, str]:
    """`errors` on input blocks the submitted view has (Slack refuses others): an error for a
    field the view lacks (an option chosen as the form was submitted, not drawn yet) goes on the
    input that holds its path (the option's select), else on the first input."""
    placed: dict[str, str] = {}
    for block, message in errors.items():
        if block not in inputs:
            holders = [i for i in inputs if i and block.startswith(i + "/")]
            block = max(holders, key=len) if holders else (inputs[0] if inputs else block)
        placed[block] = _joined(placed.get(block), message) if block in placed else message
    return placed


# -- reading the submitted form ----------------------------------------------------------------------


@dataclass(frozen=True)
class SpecReading:
    """What a submitted spec form says."""

    config: dict[str, Any]  # the configuration document (secrets included: for the vault only)
    name: str  # the connection's name, when the form asks for one
    choices: dict[str, int | None]  # the oneOf options chosen, by JSON pointer
    errors: dict[str, str]  # by block id, for Slack's `response_action: errors`

    def __repr__(self) -> str:
        return f"SpecReading(name={self.name!r}, choices={self.choices!r}, errors={self.errors!r}, config=***)"


def read_spec_form(spec: Mapping[str, Any], values: Mapping[str, Any], *, keep_secrets: bool = False) -> SpecReading:
    """The configuration typed in a spec form (`values`: bot.forms.form_values), validated as a
    whole against the spec. With `keep_secrets` (Re-connect), a secret left empty is not an
    error: the one in use is kept."""
    errors: dict[str, str] = {}
    name = _read_name(spec, values.get(TITLE_BLOCK), errors)
    if JSON_BLOCK in values:
        choices: dict[str, int | None] = {}
        config = _read_json(values.get(JSON_BLOCK), errors)
        items: list[Item] = []
    else:
        choices = {}

        def choose(path: tuple[str, ...], schema: Mapping[str, Any], required: bool) -> int | None:
            raw = values.get(block_id(path))
            chosen = int(raw) if isinstance(raw, str) and raw.isdigit() else None
            chosen = chosen if chosen is not None and chosen < len(branches(schema)) else None
            choices[pointer(path)] = chosen
            return chosen

        items = layout(spec, choose)
        config = _assemble(items, values, errors)
    unread = JSON_BLOCK in errors  # no document to validate
    invalid: dict[str, str] = {}
    for at, message in {} if unread else config_errors(spec, config).items():
        path = pointer_path(at)
        schema = schema_at(spec, path) or {}
        if keep_secrets and schema.get("airbyte_secret") and value_at(config, path) in (None, ""):
            continue  # left empty on Re-connect: the secret in use is kept
        for block, text in _on_blocks(items, {at: message}, json_mode=not items).items():
            invalid[block] = _joined(invalid.get(block), text)
    errors = {**invalid, **errors}  # a value that could not be read says so rather than the schema
    if "" in errors:  # nothing to put it on: the first input of the form
        errors[JSON_BLOCK if not items else _first_block(items)] = errors.pop("")
    return SpecReading(config, name, choices, errors)


def _first_block(items: list[Item]) -> str:
    return next((i.block_id for i in items if isinstance(i, Field)), JSON_BLOCK)


def _read_name(spec: Mapping[str, Any], raw: Any, errors: dict[str, str]) -> str:
    text = (raw or "").strip() if isinstance(raw, str) else ""
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        errors[TITLE_BLOCK] = "Remove line breaks and control characters from the name."
    elif len(text) > TITLE_MAX:
        errors[TITLE_BLOCK] = f"The name can be at most {TITLE_MAX} characters."
    elif not text and name_asked(spec) == "required":
        errors[TITLE_BLOCK] = "Give the connection a name."
    return text


def _read_json(raw: Any, errors: dict[str, str]) -> dict[str, Any]:
    if not isinstance(raw, str) or not raw.strip():
        return {}
    try:
        document = json.loads(raw)
    except json.JSONDecodeError as bad:  # its message quotes none of the text
        errors[JSON_BLOCK] = f"This is not valid JSON: {bad.msg} at line {bad.lineno}, column {bad.colno}."
        return {}
    if not isinstance(document, dict):
        errors[JSON_BLOCK] = 'Enter a JSON object: {"name": value, ...}.'
        return {}
    return document


def _assemble(items: list[Item], values: Mapping[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    """The document from the fields: an object is given when it is required or one of its
    fields was filled in; then its constants (a oneOf's discriminator) and its unticked
    checkboxes (false) come with it."""
    given: dict[tuple[str, ...], Any] = {}
    implied: dict[tuple[str, ...], Any] = {}
    for item in items:
        if isinstance(item, Field) and item.kind is not Kind.BRANCH:
            value = _read(item, values.get(item.block_id), errors)
            if value is not None:
                given[item.path] = value
            elif item.kind is Kind.BOOLEAN and (item.required or "default" in item.schema):
                implied[item.path] = False
        elif isinstance(item, Fixed):
            implied[item.path] = item.value
    chosen = {i.path for i in items if isinstance(i, Field) and i.kind is Kind.BRANCH and i.chosen is not None}
    present: set[tuple[str, ...]] = set()
    for group in sorted((i for i in items if isinstance(i, Group)), key=lambda g: len(g.path)):
        inside = group.path in chosen or any(p[: len(group.path)] == group.path for p in given)
        if inside or (group.needed and group.path[:-1] in present) or not group.path:
            present.add(group.path)
    config: dict[str, Any] = {}
    for path in sorted(present, key=len):
        _put(config, path, {})
    for path, value in implied.items():
        if path[:-1] in present and path not in given:
            _put(config, path, value)
    for path, value in given.items():
        _put(config, path, value)
    return config


def _put(config: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    if not path:
        return
    for key in path[:-1]:
        config = config.setdefault(key, {})
    if not (isinstance(value, dict) and isinstance(config.get(path[-1]), dict)):
        config[path[-1]] = value


def _read(item: Field, raw: Any, errors: dict[str, str]) -> Any:
    """One field's value (None: left empty); an error on its block when it cannot be read."""
    schema, kind = item.schema, item.kind

    def fail(message: str) -> None:
        errors[item.block_id] = message

    if kind is Kind.BOOLEAN:
        return True if isinstance(raw, list) and CHECKED in raw else None
    if kind in (Kind.SELECT, Kind.CHOICES):
        values = schema["enum"] if kind is Kind.SELECT else schema["items"]["enum"]
        picked = [raw] if kind is Kind.SELECT else list(raw or [])
        chosen = [values[int(p)] for p in picked if isinstance(p, str) and p.isdigit() and int(p) < len(values)]
        if kind is Kind.SELECT:
            return chosen[0] if chosen else None
        return chosen or None
    if kind is Kind.DATE:
        return raw if isinstance(raw, str) and raw else None
    text = raw if isinstance(raw, str) else ""
    if kind is Kind.SECRET:
        return text.strip() or None  # pasted secrets often bring a line break along
    text = text.strip()
    if not text:
        return None
    if kind is Kind.NUMBER:
        return _parsed_number(text, _type(schema) == "integer", fail)
    if kind is Kind.LINES:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        wanted = _type(schema.get("items") or {})
        if wanted in ("integer", "number"):
            parsed = []
            for n, line in enumerate(lines, 1):

                def fail_line(message: str, n: int = n) -> None:
                    fail(f"Line {n}: {message}")

                number = _parsed_number(line, wanted == "integer", fail_line)
                if number is None:
                    return None
                parsed.append(number)
            return parsed
        return lines
    if kind is Kind.JSON:
        try:
            return json.loads(text)
        except json.JSONDecodeError as bad:
            fail(f"This is not valid JSON: {bad.msg} at line {bad.lineno}, column {bad.colno}.")
            return None
    if kind is Kind.TEXT and isinstance(schema.get("enum"), list):
        match = next((v for v in schema["enum"] if str(v) == text), None)
        if match is None:
            fail(f"Must be one of: {_listed([str(v) for v in schema['enum']])}.")
        return match
    return text


def _parsed_number(text: str, integer: bool, fail: Callable[[str], None]) -> int | float | None:
    try:
        number = float(text)
    except ValueError:
        fail("Must be a whole number." if integer else "Must be a number.")
        return None
    if integer:
        if not number.is_integer():
            fail("Must be a whole number.")
            return None
        return int(number)
    return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number
