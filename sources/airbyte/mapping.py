"""How a connector's configuration maps onto connbot's notions (docs/SOURCES.md, "Airbyte
connectors"): its platform account (the business account, and the accounts of an account list),
its start date (the order's historical depth), and the title of a connector.

Only top-level properties of the configuration are read, in the order of the spec.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

# Properties naming the platform account, singular (one account) or plural (an account list).
ACCOUNT_PROPERTIES = ("account_id", "ad_account_id", "customer_id", "advertiser_id", "profile_id", "business_id")
SITE_PROPERTIES = ("shop", "store", "subdomain", "site", "domain")
START_PROPERTIES = ("start_date", "start_datetime", "start_time", "replication_start_date", "date_from", "since")


@dataclass(frozen=True)
class AccountProperty:
    """The configuration's platform account: one value, or a list (a JSON array, or a
    comma-separated string as some connectors take it)."""

    key: str
    ids: tuple[str, ...]
    is_list: bool  # several accounts can be named (each is an account of the connection)
    as_array: bool  # a JSON array, not a comma-separated string


def _ordered_keys(spec: Mapping[str, Any], config: Mapping[str, Any]) -> list[str]:
    properties = spec.get("properties") if isinstance(spec.get("properties"), Mapping) else {}

    def order(key: str) -> tuple[int, int]:
        at = properties.get(key, {}).get("order") if isinstance(properties.get(key), Mapping) else None
        return (at if isinstance(at, int) else 10_000, list(config).index(key))

    return sorted(config, key=order)


def account_property(spec: Mapping[str, Any], config: Mapping[str, Any]) -> AccountProperty | None:
    """The first property of the configuration naming the platform account, if any."""
    plural = {f"{name}s": name for name in ACCOUNT_PROPERTIES}
    for key in _ordered_keys(spec, config):
        value = config[key]
        lowered = key.lower()
        if lowered in plural or lowered in ACCOUNT_PROPERTIES:
            ids = _ids(value)
            if ids:
                is_list = lowered in plural or isinstance(value, list) or len(ids) > 1
                return AccountProperty(key, ids, is_list, isinstance(value, list))
        elif lowered in SITE_PROPERTIES and isinstance(value, str) and value.strip():
            return AccountProperty(key, (value.strip(),), False, False)
    return None


def _ids(value: Any) -> tuple[str, ...]:
    if isinstance(value, list):
        items = [str(v).strip() for v in value if isinstance(v, str | int) and not isinstance(v, bool)]
    elif isinstance(value, str):
        items = [part.strip() for part in value.split(",")]
    elif isinstance(value, int) and not isinstance(value, bool):
        items = [str(value)]
    else:
        items = []
    return tuple(dict.fromkeys(i for i in items if i))


def with_accounts(config: Mapping[str, Any], prop: AccountProperty, ids: Sequence[str]) -> dict[str, Any]:
    """The configuration narrowed to the given accounts of its list, in the list's own form."""
    narrowed = dict(config)
    original = config[prop.key]
    if prop.as_array:
        # Keep numbers numbers: the connector's schema may say so.
        by_text = {str(v).strip(): v for v in original}
        narrowed[prop.key] = [by_text.get(i, i) for i in ids]
    else:
        narrowed[prop.key] = ",".join(ids)
    return narrowed


def start_property(spec: Mapping[str, Any]) -> tuple[str, str] | None:
    """(name, strftime format) of the connector's start-date property, if it has one."""
    properties = spec.get("properties") if isinstance(spec.get("properties"), Mapping) else {}
    for name in START_PROPERTIES:
        schema = properties.get(name)
        if isinstance(schema, Mapping):
            return name, _date_format(schema)
    return None


# Forms of a start date, tried against the property's pattern; the first that fits is used.
_START_FORMATS = ("%Y-%m-%dT00:00:00Z", "%Y-%m-%d", "%Y-%m-%dT00:00:00.000Z", "%Y-%m-%d 00:00:00")


def _date_format(schema: Mapping[str, Any]) -> str:
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        sample = date(2024, 1, 31)
        for fmt in _START_FORMATS:
            try:
                if re.search(pattern, sample.strftime(fmt)):
                    return fmt
            except re.error:
                break
    return "%Y-%m-%d" if schema.get("format") == "date" else _START_FORMATS[0]


def with_start(spec: Mapping[str, Any], config: Mapping[str, Any], start: date) -> dict[str, Any]:
    """The configuration reading from `start`, where the connector has a start date."""
    found = start_property(spec)
    if found is None:
        return dict(config)
    name, fmt = found
    return {**config, name: start.strftime(fmt)}


def connector_title(spec_title: str | None, fallback: str) -> str:
    """A data source's title from its spec's ("Faker Source Spec" → "Faker")."""
    words = (spec_title or "").split()
    while words and words[-1].lower() in ("spec", "specification", "source", "config", "configuration"):
        words.pop()
    while words and words[0].lower() == "source":
        words.pop(0)
    return " ".join(words) or fallback
