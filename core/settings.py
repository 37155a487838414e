"""Configuration from environment variables (and an optional `.env`).

A wrong value stops start-up with one line naming the variable and what it expects.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Literal, TypedDict
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cryptography.fernet import Fernet

from core.errors import ConfigError

DEFAULT_DATA_DIR = Path("./data")
# Slack ids: users (U…, W… in Enterprise Grid) and user groups (S…), channels.
SLACK_ID = re.compile(r"^[UWS][A-Z0-9]{2,}$")
USER_GROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")


@dataclass(frozen=True)
class Settings:
    data_dir: Path = DEFAULT_DATA_DIR
    # URLs may carry passwords.
    database_url: str = field(default=f"sqlite:///{DEFAULT_DATA_DIR}/connbot.db", repr=False)
    warehouse: str = field(default=str(DEFAULT_DATA_DIR / "warehouse.duckdb"), repr=False)
    timezone: ZoneInfo = ZoneInfo("UTC")
    slack_api_url: str | None = None
    # Secrets stay out of repr.
    slack_bot_token: str | None = field(default=None, repr=False)
    slack_signing_secret: str | None = field(default=None, repr=False)
    slack_app_token: str | None = field(default=None, repr=False)
    # Distribution: workspaces install connbot through Slack's OAuth flow (bot/installations.py),
    # each with its own bot token, instead of the one SLACK_BOT_TOKEN.
    slack_client_id: str | None = None
    slack_client_secret: str | None = field(default=None, repr=False)
    slack_authorize_url: str = "https://slack.com/oauth/v2/authorize"
    public_url: str | None = None  # https base where Slack redirects after an install
    # How long an uninstalled workspace's data is kept for a reinstall, before it is deleted.
    uninstalled_retention_days: int = 30
    secret_keys: tuple[str, ...] = field(default=(), repr=False)
    admins: tuple[str, ...] = ()
    operators: tuple[str, ...] = ()
    sync_at: time = time(3, 0)
    sync_concurrency: int = 8
    # Where runs and syncs execute: "inline" (threads of this process) or "queue" (`connbot worker`
    # processes, through the task queue in PostgreSQL). See engine/executor.py.
    execution: str = "inline"
    alert_channel: str | None = None
    escalation_channel: str | None = None
    csm_group: str | None = None
    log_format: str = "text"  # or "json": one JSON object per line (connbot/logs.py)
    # Failed runs of an order in a row before its "failing" alert.
    order_failures_before_alert: int = 2

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def distributed(self) -> bool:
        """Installed to many workspaces through Slack's OAuth flow, rather than one SLACK_BOT_TOKEN."""
        return bool(self.slack_client_id)

    @property
    def has_slack(self) -> bool:
        return bool((self.slack_bot_token or self.distributed) and self.slack_signing_secret)

    @property
    def socket_mode(self) -> bool:
        return bool(self.slack_app_token)


class _Values(TypedDict, total=False):
    """Settings' fields as read so far: those left out keep their defaults."""

    data_dir: Path
    database_url: str
    warehouse: str
    timezone: ZoneInfo
    slack_api_url: str | None
    slack_bot_token: str | None
    slack_signing_secret: str | None
    slack_app_token: str | None
    slack_client_id: str | None
    slack_client_secret: str | None
    slack_authorize_url: str
    public_url: str | None
    uninstalled_retention_days: int
    secret_keys: tuple[str, ...]
    admins: tuple[str, ...]
    operators: tuple[str, ...]
    sync_at: time
    sync_concurrency: int
    execution: str
    alert_channel: str | None
    escalation_channel: str | None
    csm_group: str | None
    log_format: str
    order_failures_before_alert: int


def load_settings(env: Mapping[str, str] | None = None, *, dotenv: bool = True) -> Settings:
    """Read settings from `env` (default: the process environment plus `.env`)."""
    if env is None:
        if dotenv:
            from dotenv import load_dotenv

            load_dotenv(override=False)
        env = os.environ

    def get(name: str) -> str | None:
        return (env.get(name) or "").strip() or None

    data_dir = Path(get("CONNBOT_DATA_DIR") or DEFAULT_DATA_DIR)
    values: _Values = {"data_dir": data_dir}
    values["database_url"] = _database_url(get("CONNBOT_DATABASE_URL") or f"sqlite:///{data_dir}/connbot.db")
    values["warehouse"] = get("CONNBOT_WAREHOUSE") or str(data_dir / "warehouse.duckdb")
    if tz := get("CONNBOT_TIMEZONE"):
        values["timezone"] = _timezone(tz)
    if url := get("SLACK_API_URL"):
        values["slack_api_url"] = _http_url("SLACK_API_URL", url).rstrip("/") + "/"
    values["slack_bot_token"] = _prefixed("SLACK_BOT_TOKEN", get("SLACK_BOT_TOKEN"), "xoxb-")
    values["slack_app_token"] = _prefixed("SLACK_APP_TOKEN", get("SLACK_APP_TOKEN"), "xapp-")
    values["slack_signing_secret"] = get("SLACK_SIGNING_SECRET")
    values.update(_distribution(get, values))
    if keys := get("CONNBOT_SECRET_KEYS"):
        values["secret_keys"] = _fernet_keys(keys)
    values["admins"] = _slack_ids("CONNBOT_ADMINS", get("CONNBOT_ADMINS"))
    values["operators"] = _slack_ids("CONNBOT_OPERATORS", get("CONNBOT_OPERATORS"))
    if at := get("CONNBOT_SYNC_AT"):
        values["sync_at"] = _clock_time("CONNBOT_SYNC_AT", at)
    if n := get("CONNBOT_SYNC_CONCURRENCY"):
        values["sync_concurrency"] = _positive_int("CONNBOT_SYNC_CONCURRENCY", n, maximum=256)
    if n := get("CONNBOT_ORDER_FAILURES_BEFORE_ALERT"):
        values["order_failures_before_alert"] = _positive_int("CONNBOT_ORDER_FAILURES_BEFORE_ALERT", n, maximum=100)
    values["execution"] = _execution(
        get("CONNBOT_EXECUTION"), postgresql=not values["database_url"].startswith("sqlite")
    )
    channels: tuple[tuple[str, Literal["alert_channel", "escalation_channel"]], ...] = (
        ("CONNBOT_ALERT_CHANNEL", "alert_channel"),
        ("CONNBOT_ESCALATION_CHANNEL", "escalation_channel"),
    )
    for name, key in channels:
        if value := get(name):
            values[key] = _channel_id(name, value)
    if days := get("CONNBOT_UNINSTALLED_RETENTION_DAYS"):
        values["uninstalled_retention_days"] = _whole_number("CONNBOT_UNINSTALLED_RETENTION_DAYS", days, maximum=3650)
    if group := get("CONNBOT_CSM_GROUP"):
        if not USER_GROUP_ID.match(group):
            raise ConfigError(f"CONNBOT_CSM_GROUP: expected a Slack user-group ID such as S0123ABCD, got {group!r}")
        values["csm_group"] = group
    if log_format := get("CONNBOT_LOG_FORMAT"):
        if log_format not in ("text", "json"):
            raise ConfigError(f"CONNBOT_LOG_FORMAT: expected text or json, got {log_format!r}")
        values["log_format"] = log_format
    return Settings(**values)


def _distribution(get: Callable[[str], str | None], values: _Values) -> _Values:
    """CONNBOT_SLACK_CLIENT_ID / _SECRET turn on installs through Slack's OAuth flow: one mode or
    the other, never both (which token would a request of the SLACK_BOT_TOKEN's workspace use?)."""
    client_id, secret = get("CONNBOT_SLACK_CLIENT_ID"), get("CONNBOT_SLACK_CLIENT_SECRET")
    if not client_id and not secret:
        return {}
    if not client_id or not secret:
        missing = "CONNBOT_SLACK_CLIENT_SECRET" if client_id else "CONNBOT_SLACK_CLIENT_ID"
        raise ConfigError(f"{missing}: installs through Slack need both the app's client ID and client secret")
    if values.get("slack_bot_token"):
        raise ConfigError(
            "SLACK_BOT_TOKEN: set it for one workspace, or CONNBOT_SLACK_CLIENT_ID and CONNBOT_SLACK_CLIENT_SECRET for "
            "installs to many workspaces, not both (see README, 'Slack app set-up')"
        )
    if values.get("slack_app_token"):
        raise ConfigError(
            "SLACK_APP_TOKEN: installs to many workspaces are served over HTTP (Slack redirects browsers to "
            "/slack/oauth_redirect); unset it and point the app's request URLs at `connbot serve`"
        )
    public_url = get("CONNBOT_PUBLIC_URL")
    if not public_url:
        raise ConfigError(
            "CONNBOT_PUBLIC_URL: installs through Slack need the https base URL where this app is reached, "
            "such as https://connbot.example.com (Slack redirects to <it>/slack/oauth_redirect)"
        )
    distribution: _Values = {
        "slack_client_id": client_id,
        "slack_client_secret": secret,
        "public_url": _http_url("CONNBOT_PUBLIC_URL", public_url, "https://connbot.example.com").rstrip("/"),
    }
    if authorize := get("CONNBOT_SLACK_AUTHORIZE_URL"):
        distribution["slack_authorize_url"] = _http_url(
            "CONNBOT_SLACK_AUTHORIZE_URL", authorize, "https://slack.com/oauth/v2/authorize"
        )
    return distribution


def _database_url(url: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            "CONNBOT_DATABASE_URL: expected a database URL such as sqlite:///./data/connbot.db "
            "or postgresql://user@host:5432/connbot"
        ) from None
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ConfigError(f"CONNBOT_DATABASE_URL: expected a sqlite:/// or postgresql:// URL, got a {backend!r} URL")
    if backend == "postgresql" and parsed.drivername == "postgresql":
        # psycopg 3 is the driver we ship.
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return url


EXECUTION_MODES = ("inline", "queue")


def _execution(value: str | None, *, postgresql: bool) -> str:
    """Queue on PostgreSQL (the queue lives there), inline on SQLite (one process)."""
    if value is None:
        return "queue" if postgresql else "inline"
    mode = value.lower()
    if mode not in EXECUTION_MODES:
        raise ConfigError(f"CONNBOT_EXECUTION: expected inline or queue, got {value!r}")
    if mode == "queue" and not postgresql:
        raise ConfigError(
            "CONNBOT_EXECUTION: queue needs PostgreSQL as CONNBOT_DATABASE_URL (the task queue lives there); "
            "with SQLite, runs execute inline"
        )
    return mode


def _timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"CONNBOT_TIMEZONE: expected an IANA time zone such as Europe/Paris, got {name!r}") from None


def _http_url(name: str, value: str, example: str = "https://slack.com/api/") -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name}: expected an http(s) URL such as {example}, got {value!r}")
    return value


def _prefixed(name: str, value: str | None, prefix: str) -> str | None:
    if value is not None and not value.startswith(prefix):
        raise ConfigError(f"{name}: expected a token starting with {prefix} (see README, 'Slack app set-up')")
    return value


def _fernet_keys(raw: str) -> tuple[str, ...]:
    keys = tuple(k.strip() for k in raw.split(",") if k.strip())
    for index, key in enumerate(keys, 1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise ConfigError(
                f"CONNBOT_SECRET_KEYS: key #{index} is not a Fernet key (44 url-safe base64 characters); "
                "create one with `connbot keys generate`"
            ) from None
    return keys


def _slack_ids(name: str, raw: str | None) -> tuple[str, ...]:
    if not raw:
        return ()
    ids = tuple(i.strip() for i in raw.split(",") if i.strip())
    for value in ids:
        if not SLACK_ID.match(value):
            raise ConfigError(
                f"{name}: expected comma-separated Slack user IDs (U…/W…) or user-group IDs (S…), got {value!r}"
            )
    return ids


def _channel_id(name: str, value: str) -> str:
    if not CHANNEL_ID.match(value):
        raise ConfigError(f"{name}: expected a Slack channel ID such as C0123ABCD, got {value!r}")
    return value


def _clock_time(name: str, value: str) -> time:
    match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", value)
    if not match:
        raise ConfigError(f"{name}: expected a time of day as HH:MM (24-hour), got {value!r}")
    return time(int(match[1]), int(match[2]))


def _whole_number(name: str, value: str, *, maximum: int) -> int:
    if not value.isdigit() or int(value) > maximum:
        raise ConfigError(f"{name}: expected a whole number from 0 to {maximum}, got {value!r}")
    return int(value)


def _positive_int(name: str, value: str, *, maximum: int) -> int:
    if not value.isdigit() or not 1 <= int(value) <= maximum:
        raise ConfigError(f"{name}: expected a whole number from 1 to {maximum}, got {value!r}")
    return int(value)
