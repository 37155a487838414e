"""Sources configured by a JSON Schema (an Airbyte connector's `connectionSpecification`).

A source whose `config_spec` is a dict (not None) is configured by a document of that schema
rather than by a flat list of `credential_fields`: the connect and re-connect forms are built
from the schema (bot/blocks/spec_form.py), and the document travels in the vault as
`Credentials`, through the two functions below. Secrets are the values under a property marked
`airbyte_secret: true`, at any depth (nested objects, `oneOf` branches, arrays of objects).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from sources.base import Credentials

CONFIG_KEY = "config"
# A name for the connection, asked by the form when the configuration names no platform account.
TITLE_KEY = "title"


def config_spec(source: object) -> dict | None:
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
    """The configuration document back from vault credentials."""
    return json.loads(credentials.get(CONFIG_KEY) or "{}")


def credentials_title(credentials: Mapping[str, str]) -> str:
    return credentials.get(TITLE_KEY, "")


def secret_values(spec: Mapping[str, Any], config: Any) -> list[str]:
    """Every secret's value in `config` (for scrubbing logs and messages), longest first."""
    found = {str(v) for _, v in _secrets(spec, config, ()) if v not in (None, "")}
    return sorted(found, key=len, reverse=True)


def secret_paths(spec: Mapping[str, Any], config: Any) -> list[tuple[str | int, ...]]:
    """Where `config` holds a secret, as key paths (for masking and for keeping on re-connect)."""
    return list(dict.fromkeys(path for path, _ in _secrets(spec, config, ())))


def _secrets(schema: Any, value: Any, path: tuple) -> Iterator[tuple[tuple, Any]]:
    if not isinstance(schema, Mapping):
        return
    if schema.get("airbyte_secret") and not isinstance(value, (dict, list)):
        yield path, value
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
