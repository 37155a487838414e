"""Sources configured by a JSON Schema, for the spec form's tests: the real spec of
`airbyte-source-faker` 7.2.1 (its `spec.json`, from the package on PyPI, stored beside this file)
and synthetic specs exercising what connector specs do (oneOf auth methods, secrets, enums,
arrays, dates, nested objects, more fields than a modal holds).

`SpecSource` is a data source behind such a spec, as the connector bridge's sources look to the
app: `config_spec`, no `credential_fields`, the configuration in the vault as
`sources.config` Credentials, the business account by `sources.config.business_account`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from sources.base import AuthType, CheckResult, CheckStatus, Credentials, SourceAccount
from sources.config import business_account, config_accounts, credentials_config

FAKER_SPEC: dict = json.loads((Path(__file__).parent / "airbyte_source_faker_spec.json").read_text())[
    "connectionSpecification"
]

# An ad platform's connector, as Airbyte specs write them.
ADS_SPEC: dict = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Acme Ads Spec",
    "type": "object",
    "required": ["account_ids", "credentials", "start_date"],
    "additionalProperties": True,
    "properties": {
        "account_ids": {
            "title": "Ad account IDs",
            "description": "The <b>ad accounts</b> to read. See [the docs](https://docs.example.com/accounts).",
            "type": "array",
            "items": {"type": "string", "pattern": "^[0-9]+$"},
            "minItems": 1,
            "order": 0,
        },
        "credentials": {
            "title": "Authentication",
            "type": "object",
            "order": 1,
            "oneOf": [
                {
                    "title": "OAuth",
                    "type": "object",
                    "required": ["auth_type", "client_id", "client_secret", "refresh_token"],
                    "properties": {
                        "auth_type": {"type": "string", "const": "oauth2.0"},
                        "client_id": {"title": "Client ID", "type": "string", "order": 0},
                        "client_secret": {"title": "Client secret", "type": "string", "airbyte_secret": True},
                        "refresh_token": {"title": "Refresh token", "type": "string", "airbyte_secret": True},
                    },
                },
                {
                    "title": "API token",
                    "type": "object",
                    "required": ["auth_type", "api_token"],
                    "properties": {
                        "auth_type": {"type": "string", "const": "token"},
                        "api_token": {"title": "API token", "type": "string", "airbyte_secret": True},
                    },
                },
                {
                    "title": "Service account",
                    "type": "object",
                    "required": ["auth_type", "service_account_info"],
                    "properties": {
                        "auth_type": {"type": "string", "const": "service"},
                        "service_account_info": {
                            "title": "Service account key",
                            "description": "The JSON key file's content.",
                            "type": "string",
                            "airbyte_secret": True,
                            "multiline": True,
                        },
                    },
                },
            ],
        },
        "start_date": {
            "title": "Start date",
            "type": "string",
            "format": "date",
            "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
            "default": "2024-01-01",
            "order": 2,
        },
        "end_time": {
            "title": "End time",
            "type": "string",
            "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$",
            "pattern_descriptor": "YYYY-MM-DDTHH:mm:ssZ",
            "examples": ["2024-12-31T00:00:00Z"],
            "order": 3,
        },
        "region": {"title": "Region", "type": "string", "enum": ["us", "eu", "apac"], "default": "eu", "order": 4},
        "country": {
            "title": "Country",
            "description": "Two-letter code.",
            "type": "string",
            "enum": [f"{a}{b}" for a in "ABCDEFGHIJKL" for b in "ABCDEFGHIJKLM"],  # 156: over a select's 100
            "order": 5,
        },
        "breakdowns": {
            "title": "Breakdowns",
            "type": "array",
            "items": {"type": "string", "enum": ["age", "gender", "country", "device"]},
            "order": 6,
        },
        "lookback_days": {"title": "Lookback windows", "type": "array", "items": {"type": "integer"}, "order": 7},
        "reporting": {
            "title": "Reporting options",
            "description": "How reports are requested.",
            "type": "object",
            "order": 8,
            "required": ["window_days"],
            "properties": {
                "window_days": {"title": "Attribution window", "type": "integer", "minimum": 1, "maximum": 90},
                "include_deleted": {"title": "Include deleted", "type": "boolean", "default": False},
                "ratio": {"title": "Sampling ratio", "type": "number", "minimum": 0, "maximum": 1},
            },
        },
        "custom_reports": {
            "title": "Custom reports",
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string"}, "fields": {"type": "array", "items": {"type": "string"}}},
            },
            "order": 9,
        },
    },
}


def oversized_spec(fields: int = 120) -> dict:
    """More fields than a modal's 100 blocks: asked as JSON."""
    props: dict[str, Any] = {f"field_{n:03d}": {"title": f"Field {n}", "type": "integer"} for n in range(fields)}
    props["api_key"] = {"title": "API key", "type": "string", "airbyte_secret": True, "order": 0}
    props["name"] = {"title": "Name", "type": "string", "order": 1, "default": "report"}
    return {"type": "object", "required": ["api_key", "field_000"], "properties": props}


class SpecSource:
    """A data source configured by `spec`. `verdict(config)` answers the credentials check
    (default: valid); the configurations checked are kept in `checked`, for tests to see what
    reached the source."""

    auth_type = AuthType.TOKEN
    credential_fields = ()

    def __init__(self, name: str, title: str, spec: dict, verdict: Callable[[dict], CheckResult] | None = None):
        self.name, self.title, self.config_spec = name, title, spec
        self.verdict = verdict or (lambda config: CheckResult(CheckStatus.VALID))
        self.checked: list[dict] = []

    def check_credentials(self, credentials: Credentials) -> CheckResult:
        config = credentials_config(credentials)
        self.checked.append(config)
        return self.verdict(config)

    def business_account(self, credentials: Credentials):
        return business_account(self.config_spec, credentials)

    def list_accounts(self, credentials: Credentials) -> Iterator[Sequence[SourceAccount]]:
        ids = config_accounts(self.config_spec, credentials_config(credentials))
        yield [SourceAccount(i, f"Account {i}") for i in ids] or [
            SourceAccount("all", self.business_account(credentials).name)
        ]

    def templates(self):
        return ()

    def extract(self, credentials, account_ids, template, fields, start, end):
        raise ValueError(f"Unknown template {template!r}")
