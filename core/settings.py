"""Configuration from environment variables (and an optional `.env`).

A wrong value stops start-up with one line naming the variable and what it expects.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cryptography.fernet import Fernet

from core.errors import ConfigError

DEFAULT_DATA_DIR = Path("./data")
_SLACK_ID = re.compile(r"^[UWS][A-Z0-9]{2,}$")
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")


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
    def has_slack(self) -> bool:
        return bool(self.slack_bot_token and self.slack_signing_secret)

    @property
    def socket_mode(self) -> bool:
        return bool(self.slack_app_token)


def load_settings(env: Mapping[str, str] | None = None, *, dotenv: bool = True) -> Settings:
    """Read settings from `env` (default: the process environment plus `.env`)."""
    if env is None:
        if dotenv:
            from dotenv import load_dotenv

            load_dotenv(override=False)
        env = os.environ
    get = lambda name: (env.get(name) or "").strip() or None  # noqa: E731

    data_dir = Path(get("CONNBOT_DATA_DIR") or DEFAULT_DATA_DIR)
    values: dict = {"data_dir": data_dir}
    values["database_url"] = _database_url(get("CONNBOT_DATABASE_URL") or f"sqlite:///{data_dir}/connbot.db")
    values["warehouse"] = get("CONNBOT_WAREHOUSE") or str(data_dir / "warehouse.duckdb")
    if tz := get("CONNBOT_TIMEZONE"):
        values["timezone"] = _timezone(tz)
    if url := get("SLACK_API_URL"):
        values["slack_api_url"] = _http_url("SLACK_API_URL", url).rstrip("/") + "/"
    values["slack_bot_token"] = _prefixed("SLACK_BOT_TOKEN", get("SLACK_BOT_TOKEN"), "xoxb-")
    values["slack_app_token"] = _prefixed("SLACK_APP_TOKEN", get("SLACK_APP_TOKEN"), "xapp-")
    values["slack_signing_secret"] = get("SLACK_SIGNING_SECRET")
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
    for name, key in (
        ("CONNBOT_ALERT_CHANNEL", "alert_channel"),
        ("CONNBOT_ESCALATION_CHANNEL", "escalation_channel"),
    ):
        if value := get(name):
            values[key] = _channel_id(name, value)
    if group := get("CONNBOT_CSM_GROUP"):
        if not re.fullmatch(r"S[A-Z0-9]{2,}", group):
            raise ConfigError(f"CONNBOT_CSM_GROUP: expected a Slack user-group ID such as S0123ABCD, got {group!r}")
        values["csm_group"] = group
    if log_format := get("CONNBOT_LOG_FORMAT"):
        if log_format not in ("text", "json"):
            raise ConfigError(f"CONNBOT_LOG_FORMAT: expected text or json, got {log_format!r}")
        values["log_format"] = log_format
    return Settings(**values)


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


def _http_url(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name}: expected an http(s) URL such as https://slack.com/api/, got {value!r}")
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
        if not _SLACK_ID.match(value):
            raise ConfigError(
                f"{name}: expected comma-separated Slack user IDs (U…/W…) or user-group IDs (S…), got {value!r}"
            )
    return ids


def _channel_id(name: str, value: str) -> str:
    if not _CHANNEL_ID.match(value):
        raise ConfigError(f"{name}: expected a Slack channel ID such as C0123ABCD, got {value!r}")
    return value


def _clock_time(name: str, value: str) -> time:
    match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", value)
    if not match:
        raise ConfigError(f"{name}: expected a time of day as HH:MM (24-hour), got {value!r}")
    return time(int(match[1]), int(match[2]))


def _positive_int(name: str, value: str, *, maximum: int) -> int:
    if not value.isdigit() or not 1 <= int(value) <= maximum:
        raise ConfigError(f"{name}: expected a whole number from 1 to {maximum}, got {value!r}")
    return int(value)
