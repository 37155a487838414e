"""How a connector's configuration maps onto connbot's notions (docs/SOURCES.md, "Airbyte
connectors"): the accounts of its account property (found by the one business-account rule,
sources.config.account_field), its start date (the order's historical depth), and the title of
a connector.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from sources.config import account_field

START_PROPERTIES = ("start_date", "start_datetime", "start_time", "replication_start_date", "date_from", "since")


def with_accounts(spec: Mapping[str, Any], config: Mapping[str, Any], ids: Sequence[str]) -> dict[str, Any]:
    """The configuration narrowed to the given accounts of its account property (the rule of
    sources.config.account_field), in the property's own form: a list stays a list (numbers stay
    numbers), a text becomes comma-separated."""
    found = account_field(spec)
    if found is None:
        return dict(config)
    narrowed = copy.deepcopy(dict(config))
    holder: Any = narrowed
    for key in found.path[:-1]:
        holder = holder.get(key) if isinstance(holder, dict) else None
    last = found.path[-1]
    if not isinstance(holder, dict) or last not in holder:
        return narrowed
    original = holder[last]
    if isinstance(original, list):
        by_text = {str(v).strip(): v for v in original}
        holder[last] = [by_text.get(i, i) for i in ids]
    else:
        holder[last] = ",".join(ids)
    return narrowed


def start_property(spec: Mapping[str, Any]) -> tuple[str, str] | None:
    """(name, strftime format) of the connector's start-date property, if it has one."""
    declared = spec.get("properties")
    properties: Mapping[str, Any] = declared if isinstance(declared, Mapping) else {}
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
