"""Sources configured by a JSON Schema (an Airbyte connector's `connectionSpecification`).

A source whose `config_spec` is a dict (not None) is configured by a document of that schema
rather than by a flat list of `credential_fields`: the connect and re-connect forms are built
from the schema (bot/blocks/spec_form.py), and the document travels in the vault as
`Credentials`, through the two functions below. Secrets are the values under a property marked
`airbyte_secret: true`, at any depth (nested objects, `oneOf` branches, arrays of objects).
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sources.base import BusinessAccount, Credentials, InvalidCredentials, mask

if TYPE_CHECKING:
    from jsonschema import FormatChecker
    from jsonschema.exceptions import ValidationError

log = logging.getLogger(__name__)

CONFIG_KEY = "config"
# A name for the connection, asked by the form when the configuration names no platform account.
TITLE_KEY = "title"
TITLE_MAX = 100

# Where a value is in a document: keys of objects, indices of arrays.
KeyPath = tuple[str | int, ...]


def config_spec(source: object) -> dict[str, Any] | None:
    """The source's configuration schema, or None for a source with `credential_fields`."""
    spec = getattr(source, "config_spec", None)
    return spec if isinstance(spec, dict) else None


def config_credentials(config: Mapping[str, Any], title: str | None = None) -> Credentials:
    """The configuration document (and the title the form asked for) as vault credentials."""
    values = {CONFIG_KEY: json.dumps(config, sort_keys=True, separators=(",", ":"))}
    if title:
        values[TITLE_KEY] = title
    return Credentials(values)


def credentials_config(credentials: Mapping[str, str]) -> dict[str, Any]:
    """The configuration document back from vault credentials. Raises InvalidCredentials when
    the stored document is not a JSON object (`config_credentials` writes one)."""
    config = json.loads(credentials.get(CONFIG_KEY) or "{}")
    if not isinstance(config, dict):
        raise InvalidCredentials("The stored configuration is not a JSON object; re-connect.", "config_error")
    return config


def credentials_title(credentials: Mapping[str, str]) -> str:
    return credentials.get(TITLE_KEY, "")


def secret_values(spec: Mapping[str, Any], config: Any) -> list[str]:
    """Every secret's value in `config` (for scrubbing logs and messages), longest first."""
    found = {str(v) for _, v in _secrets(spec, config, ()) if v not in (None, "")}
    return sorted(found, key=len, reverse=True)


def secret_paths(spec: Mapping[str, Any], config: Any) -> list[tuple[str | int, ...]]:
    """Where `config` holds a secret, as key paths (for masking and for keeping on re-connect)."""
    return list(dict.fromkeys(path for path, _ in _secrets(spec, config, ())))


def _secrets(schema: Any, value: Any, path: KeyPath) -> Iterator[tuple[KeyPath, Any]]:
    if not isinstance(schema, Mapping):
        return
    if schema.get("airbyte_secret"):
        yield from _leaves(value, path)  # a secret list or object is secret throughout
        return
    if isinstance(value, Mapping):
        for key, sub in (schema.get("properties") or {}).items():
            if key in value:
                yield from _secrets(sub, value[key], (*path, key))
        for branch in schema.get("oneOf") or schema.get("anyOf") or ():
            # Any branch may describe the chosen object; a secret in any of them is a secret.
            yield from _secrets({**branch, "oneOf": None, "anyOf": None}, value, path)
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for n, item in enumerate(value):
            yield from _secrets(schema["items"], item, (*path, n))


# -- paths -----------------------------------------------------------------------------------------


def _leaves(value: Any, path: KeyPath) -> Iterator[tuple[KeyPath, Any]]:
    if isinstance(value, Mapping):
        for key, sub in value.items():
            yield from _leaves(sub, (*path, key))
    elif isinstance(value, list):
        for n, sub in enumerate(value):
            yield from _leaves(sub, (*path, n))
    else:
        yield path, value


def pointer(path: tuple[str | int, ...]) -> str:
    """A key path as a JSON pointer (RFC 6901): ("credentials", "client_id") → "/credentials/client_id"."""
    return "".join("/" + str(key).replace("~", "~0").replace("/", "~1") for key in path)


def pointer_path(text: str) -> tuple[str, ...]:
    """The key path of a JSON pointer (array indexes stay strings)."""
    if not text:
        return ()
    return tuple(part.replace("~1", "/").replace("~0", "~") for part in text[1:].split("/"))


def dotted(path: tuple[str | int, ...]) -> str:
    """A key path as people read it: credentials.client_id, accounts[0].id."""
    out = ""
    for key in path:
        out += f"[{key}]" if isinstance(key, int) or str(key).isdigit() else ("." if out else "") + str(key)
    return out or "the configuration"


# -- oneOf branches --------------------------------------------------------------------------------


def branches(schema: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The alternatives of an object (`oneOf`, else `anyOf`): usually the auth methods."""
    found = schema.get("oneOf") or schema.get("anyOf") or []
    return [b for b in found if isinstance(b, Mapping)] if isinstance(found, list) else []


def branch_constants(branch: Mapping[str, Any]) -> dict[str, Any]:
    """The discriminator of a branch: its properties with a constant value (`const`, or an `enum`
    of one), such as {"auth_type": "oauth2.0"}."""
    found = {}
    for key, sub in (branch.get("properties") or {}).items():
        if isinstance(sub, Mapping):
            if "const" in sub:
                found[key] = sub["const"]
            elif isinstance(sub.get("enum"), list) and len(sub["enum"]) == 1:
                found[key] = sub["enum"][0]
    return found


def chosen_branch(schema: Mapping[str, Any], value: Any) -> int | None:
    """Which branch of `schema` the object `value` took: the one whose discriminator it carries,
    else (branches without one) the one whose properties hold all its keys; None if none fits."""
    if not isinstance(value, Mapping) or not value:
        return None
    alternatives = branches(schema)
    for n, branch in enumerate(alternatives):
        constants = branch_constants(branch)
        if constants and all(value.get(k) == v for k, v in constants.items()):
            return n
    for n, branch in enumerate(alternatives):
        keys = set(branch.get("properties") or {})
        if not branch_constants(branch) and keys and set(value) <= keys | set(schema.get("properties") or {}):
            return n
    return None


def _properties(schema: Mapping[str, Any], value: Any) -> dict[str, Any]:
    """An object's properties, with those of the branch `value` took."""
    props = dict(schema.get("properties") or {})
    n = chosen_branch(schema, value)
    if n is not None:
        props.update(branches(schema)[n].get("properties") or {})
    return props


# -- the business account --------------------------------------------------------------------------

# Property names that hold the platform account(s) a configuration reads (an ad account, a
# customer, an advertiser, a shop, a help-desk subdomain). Matched on the name alone, at any depth
# outside arrays, `oneOf` branches included.
ACCOUNT_FIELD_NAMES = (
    "account_id",
    "account_ids",
    "customer_id",
    "customer_ids",
    "advertiser_id",
    "advertiser_ids",
    "shop",
    "subdomain",
)


@dataclass(frozen=True)
class AccountField:
    """Where a spec names the platform account."""

    path: tuple[str, ...]
    title: str
    required: bool  # required at every level from the root (never inside a oneOf branch)


def account_field(spec: Mapping[str, Any]) -> AccountField | None:
    """The one rule for "does this spec name a platform account": the first property (in the
    spec's `order`) named as in ACCOUNT_FIELD_NAMES. None: the configuration names no account, so
    the connection's title (asked by the form) is its business account."""
    return next(_account_fields(spec, (), True), None)


def _account_fields(schema: Any, path: tuple[str, ...], required: bool) -> Iterator[AccountField]:
    if not isinstance(schema, Mapping):
        return
    needed = set(schema.get("required") or ())
    for key, sub in ordered_properties(schema):
        sub_required = required and key in needed
        if key.lower() in ACCOUNT_FIELD_NAMES and not branch_constants({"properties": {key: sub}}):
            yield AccountField((*path, key), str(sub.get("title") or key), sub_required)
        yield from _account_fields(sub, (*path, key), sub_required)
    for branch in branches(schema):
        yield from _account_fields(branch, path, False)


def ordered_properties(schema: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """An object's properties in the spec's `order` (those without one after, as written)."""
    props = [(k, v) for k, v in (schema.get("properties") or {}).items() if isinstance(v, Mapping)]
    return sorted(props, key=lambda kv: (not isinstance(kv[1].get("order"), int), kv[1].get("order") or 0))


def config_accounts(spec: Mapping[str, Any], config: Mapping[str, Any]) -> list[str]:
    """The platform account ids the configuration names (a list, or a comma-separated text), by
    the rule of `account_field`; empty when it names none."""
    found = account_field(spec)
    value: Any = config
    for key in found.path if found else ():
        value = value.get(key) if isinstance(value, Mapping) else None
    if found is None or value in (None, ""):
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    return [text for item in items if (text := str(item).strip())]


def business_account(spec: Mapping[str, Any], credentials: Mapping[str, str]) -> BusinessAccount:
    """A spec source's business account: the platform account(s) its configuration names, else
    the title the form asked for."""
    accounts = config_accounts(spec, credentials_config(credentials))
    if accounts:
        named = ", ".join(accounts)
        return BusinessAccount(named[:255], named)
    title = credentials_title(credentials)
    if title:
        return BusinessAccount(title[:255], title)
    field = account_field(spec)
    what = f"fill in {field.title} or " if field else ""
    raise InvalidCredentials(f"The configuration names no account: {what}give the connection a name.", "no_account")


# -- secrets ---------------------------------------------------------------------------------------


def secret_hint(spec: Mapping[str, Any], config: Any) -> dict[str, str]:
    """What the re-connect form and the Settings tab show of the secrets in use: masked, keyed
    by JSON pointer."""
    return {pointer(path): mask(str(value)) for path, value in _secrets(spec, config, ()) if value not in (None, "")}


def without_secrets(spec: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration with every secret taken out (what a form may show again)."""
    # A secret's path is a leaf's, never the document's own ().
    return _strip_object(config, (), set(secret_paths(spec, config)))


_GONE = object()


def _strip(value: Any, path: KeyPath, secrets: set[KeyPath]) -> Any:
    if path in secrets:
        return _GONE
    if isinstance(value, Mapping):
        return _strip_object(value, path, secrets)
    if isinstance(value, list):
        return [v for n, item in enumerate(value) if (v := _strip(item, (*path, n), secrets)) is not _GONE]
    return value


def _strip_object(value: Mapping[str, Any], path: KeyPath, secrets: set[KeyPath]) -> dict[str, Any]:
    kept = ((k, _strip(v, (*path, k), secrets)) for k, v in value.items())
    return {k: v for k, v in kept if v is not _GONE}


def keep_secrets(spec: Mapping[str, Any], stored: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """`new` with the stored secrets it leaves empty: a re-connect keeps a secret unless it is
    typed again. Only where `new` has the same shape (an object on the same `oneOf` branch);
    secrets inside arrays are not carried over (items may have moved)."""
    return _keep(spec, stored, copy.deepcopy(dict(new)))


def _keep(schema: Mapping[str, Any], old: Mapping[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    if branches(schema) and chosen_branch(schema, new) != chosen_branch(schema, old):
        return new  # another auth method: nothing of the old one applies
    for key, sub in _properties(schema, new).items():
        if not isinstance(sub, Mapping) or key not in old:
            continue
        if sub.get("airbyte_secret"):
            if new.get(key) in (None, "") and old[key] not in (None, ""):
                new[key] = old[key]
        elif isinstance(old[key], Mapping) and isinstance(new.get(key), dict):  # an object left out stays out
            new[key] = _keep(sub, old[key], new[key])
    return new


def schema_at(spec: Mapping[str, Any], path: tuple[str | int, ...]) -> Mapping[str, Any] | None:
    """The schema of the property at `path`, through nested objects, oneOf branches (any that
    has the key) and array items; None where the spec has no such property."""
    schema: Any = spec
    for key in path:
        if not isinstance(schema, Mapping):
            return None
        if isinstance(key, int) or (str(key).isdigit() and schema.get("type") == "array"):
            schema = schema.get("items")
            continue
        props = dict(schema.get("properties") or {})
        for branch in branches(schema):
            props = {**(branch.get("properties") or {}), **props}
        schema = props.get(key)
    return schema if isinstance(schema, Mapping) else None


def field_title(spec: Mapping[str, Any], path: tuple[str | int, ...]) -> str:
    """The title of the property at `path`, for labels; the dotted path when it has none."""
    schema = schema_at(spec, path)
    return str((schema or {}).get("title") or dotted(path))


# -- validation ------------------------------------------------------------------------------------

_TYPE_WORDS = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "an object",
    "null": "empty",
}
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?$")


# jsonschema is loaded where a configuration is validated (a form, the CLI), not by every process
# that reads sources: an extraction worker never validates one.
@functools.cache
def _format_checker() -> FormatChecker:
    from jsonschema import FormatChecker

    checker = FormatChecker()
    checker.checks("date-time", raises=ValueError)(_is_date_time)
    return checker


def _is_date_time(value: object) -> bool:
    # jsonschema checks date-time only with an optional package: a date and a time, ISO 8601.
    return not isinstance(value, str) or bool(_DATE_TIME.match(value) and datetime.fromisoformat(value))


FORMAT_EXAMPLES = {"date": "2024-01-31", "date-time": "2024-01-31T00:00:00Z", "email": "name@example.com"}
_FORMAT_WORDS = {"date-time": "date and time", "email": "email address", "uri": "URL"}


def config_errors(spec: Mapping[str, Any], config: Any) -> dict[str, str]:
    """What is wrong with a configuration, validated against the spec (JSON Schema draft-07) by
    `jsonschema`: plain words keyed by the JSON pointer of the field at fault (a missing
    property's own pointer). Messages never quote the value (it may be a secret)."""
    from jsonschema import Draft7Validator
    from jsonschema.exceptions import SchemaError

    validator = Draft7Validator(spec, format_checker=_format_checker())
    found: dict[str, str] = {}
    try:
        for error in validator.iter_errors(config):
            for at, message in _plain(error):
                found.setdefault(at, message)
    except (re.error, SchemaError) as broken:  # the spec itself is at fault: say what is known
        log.warning("the configuration schema cannot be applied: %s", type(broken).__name__)
    return found


def _plain(error: ValidationError) -> Iterator[tuple[str, str]]:
    from jsonschema._utils import Unset  # the type of an error's fields left unset

    path = tuple(error.absolute_path)
    at = pointer(path)
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    kind, limit = error.validator, error.validator_value
    if isinstance(kind, Unset) or isinstance(limit, Unset):  # set on every error a validator reports
        yield at, "Is not valid here."
        return
    if kind == "required":
        props = schema.get("properties") or {}
        for key in limit:
            if isinstance(error.instance, Mapping) and key not in error.instance:
                title = (props.get(key) or {}).get("title") if isinstance(props.get(key), Mapping) else None
                yield pointer((*path, key)), f"{title or key} is required."
    elif kind in ("oneOf", "anyOf"):
        n = chosen_branch(schema, error.instance)
        inner = [e for e in error.context or () if e.relative_schema_path and e.relative_schema_path[0] == n]
        if n is not None and inner:
            for sub in inner:
                yield from _plain(sub)
        elif n is not None:
            yield at, "Matches more than one option; choose one."
        else:
            titles = [str(b.get("title") or f"option {i + 1}") for i, b in enumerate(branches(schema))]
            yield at, "Choose one of: " + _listed(titles) + "."
    else:
        yield at, _message(kind, limit, schema)


def _message(kind: str, limit: Any, schema: Mapping[str, Any]) -> str:
    if kind == "type":
        wanted = limit if isinstance(limit, list) else [limit]
        words = [_TYPE_WORDS.get(t, str(t)) for t in wanted if t != "null"]
        return "Must be " + (" or ".join(words) or "empty") + "."
    if kind == "enum":
        return "Must be one of: " + _listed([str(v) for v in limit]) + "."
    if kind == "const":
        return f"Must be {limit}."
    if kind in ("minimum", "exclusiveMinimum"):
        return f"Must be {'at least' if kind == 'minimum' else 'more than'} {limit}."
    if kind in ("maximum", "exclusiveMaximum"):
        return f"Must be {'at most' if kind == 'maximum' else 'less than'} {limit}."
    if kind == "minLength":
        return f"Must have at least {limit} character{'s' if limit != 1 else ''}."
    if kind == "maxLength":
        return f"Must have at most {limit} characters."
    if kind == "minItems":
        return f"Give at least {limit} value{'s' if limit != 1 else ''}."
    if kind == "maxItems":
        return f"Give at most {limit} values."
    if kind == "uniqueItems":
        return "Give each value once."
    if kind == "pattern":
        shown = schema.get("pattern_descriptor") or limit
        example = _example(schema)
        return f"Must match the format {shown}" + (f", e.g. {example}." if example else ".")
    if kind == "format":
        sample = FORMAT_EXAMPLES.get(limit)
        return f"Must be a {_FORMAT_WORDS.get(limit, limit)}" + (f" like {sample}." if sample else ".")
    if kind == "additionalProperties":
        return "Holds fields the configuration does not have; remove them."
    return f"Is not valid here ({kind})."


def _example(schema: Mapping[str, Any]) -> str:
    examples = schema.get("examples")
    if isinstance(examples, list) and examples and isinstance(examples[0], (str, int, float)):
        return str(examples[0])
    return ""


def _listed(items: list[str], most: int = 10) -> str:
    shown = ", ".join(items[:most])
    return shown + (f" and {len(items) - most} more" if len(items) > most else "")
