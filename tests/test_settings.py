import pytest

from core.errors import ConfigError
from core.settings import load_settings
from storage.vault import generate_key


def test_defaults_are_embedded():
    s = load_settings({}, dotenv=False)
    assert s.database_url == "sqlite:///data/connbot.db"
    assert s.warehouse == "data/warehouse.duckdb"
    assert s.timezone.key == "UTC"
    assert not s.has_slack
    assert s.order_failures_before_alert == 2
    assert load_settings({"CONNBOT_ORDER_FAILURES_BEFORE_ALERT": "3"}, dotenv=False).order_failures_before_alert == 3


def test_postgres_url_uses_psycopg3():
    s = load_settings({"CONNBOT_DATABASE_URL": "postgresql://u:pw@db:5432/connbot"}, dotenv=False)
    assert s.database_url.startswith("postgresql+psycopg://")


DISTRIBUTED = {
    "CONNBOT_SLACK_CLIENT_ID": "1111.2222",
    "CONNBOT_SLACK_CLIENT_SECRET": "planted-secret-4",
    "CONNBOT_PUBLIC_URL": "https://connbot.example.com/",
    "SLACK_SIGNING_SECRET": "s",
}


def test_distribution_is_one_mode_and_the_retention_has_a_default():
    one = load_settings({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}, dotenv=False)
    assert (one.has_slack, one.distributed, one.uninstalled_retention_days) == (True, False, 30)
    many = load_settings({**DISTRIBUTED, "CONNBOT_UNINSTALLED_RETENTION_DAYS": "7"}, dotenv=False)
    assert (many.has_slack, many.distributed, many.public_url) == (True, True, "https://connbot.example.com")
    assert (many.uninstalled_retention_days, many.slack_authorize_url) == (7, "https://slack.com/oauth/v2/authorize")
    assert "planted-secret-4" not in repr(many)


@pytest.mark.parametrize(
    "env, variable, expects",
    [
        ({"CONNBOT_DATABASE_URL": "not a url"}, "CONNBOT_DATABASE_URL", "database URL"),
        ({"CONNBOT_DATABASE_URL": "mysql://a/b"}, "CONNBOT_DATABASE_URL", "sqlite:/// or postgresql://"),
        ({"CONNBOT_SECRET_KEYS": "short"}, "CONNBOT_SECRET_KEYS", "Fernet key"),
        ({"CONNBOT_TIMEZONE": "Mars/Olympus"}, "CONNBOT_TIMEZONE", "IANA time zone"),
        ({"SLACK_API_URL": "ftp://x"}, "SLACK_API_URL", "http(s) URL"),
        ({"SLACK_BOT_TOKEN": "xoxp-user"}, "SLACK_BOT_TOKEN", "xoxb-"),
        ({"SLACK_APP_TOKEN": "nope"}, "SLACK_APP_TOKEN", "xapp-"),
        ({"CONNBOT_ADMINS": "U123,bob"}, "CONNBOT_ADMINS", "user IDs"),
        ({"CONNBOT_SYNC_AT": "25:00"}, "CONNBOT_SYNC_AT", "HH:MM"),
        ({"CONNBOT_SYNC_CONCURRENCY": "0"}, "CONNBOT_SYNC_CONCURRENCY", "whole number"),
        ({"CONNBOT_ALERT_CHANNEL": "#alerts"}, "CONNBOT_ALERT_CHANNEL", "channel ID"),
        ({"CONNBOT_LOG_FORMAT": "xml"}, "CONNBOT_LOG_FORMAT", "text or json"),
        ({"CONNBOT_ORDER_FAILURES_BEFORE_ALERT": "two"}, "CONNBOT_ORDER_FAILURES_BEFORE_ALERT", "whole number"),
        ({"CONNBOT_UNINSTALLED_RETENTION_DAYS": "a month"}, "CONNBOT_UNINSTALLED_RETENTION_DAYS", "whole number"),
        ({"CONNBOT_SLACK_CLIENT_ID": "1.2"}, "CONNBOT_SLACK_CLIENT_SECRET", "client ID and client secret"),
        ({**DISTRIBUTED, "SLACK_BOT_TOKEN": "xoxb-1"}, "SLACK_BOT_TOKEN", "not both"),
        ({**DISTRIBUTED, "SLACK_APP_TOKEN": "xapp-1"}, "SLACK_APP_TOKEN", "served over HTTP"),
        ({**DISTRIBUTED, "CONNBOT_PUBLIC_URL": ""}, "CONNBOT_PUBLIC_URL", "https base URL"),
        ({**DISTRIBUTED, "CONNBOT_PUBLIC_URL": "connbot.example.com"}, "CONNBOT_PUBLIC_URL", "http(s) URL"),
    ],
)
def test_wrong_values_name_the_variable(env, variable, expects):
    with pytest.raises(ConfigError) as raised:
        load_settings(env, dotenv=False)
    assert raised.value.message.startswith(variable + ":")
    assert expects in raised.value.message


def test_secrets_stay_out_of_repr():
    key = generate_key()
    s = load_settings(
        {
            "SLACK_BOT_TOKEN": "xoxb-planted-secret-1",
            "SLACK_SIGNING_SECRET": "planted-secret-2",
            "CONNBOT_SECRET_KEYS": key,
            "CONNBOT_DATABASE_URL": "postgresql://u:planted-secret-3@h/db",
        },
        dotenv=False,
    )
    text = repr(s)
    for secret in ("planted-secret-1", "planted-secret-2", "planted-secret-3", key):
        assert secret not in text


def test_key_list_rotation_order_kept():
    k1, k2 = generate_key(), generate_key()
    assert load_settings({"CONNBOT_SECRET_KEYS": f"{k1}, {k2}"}, dotenv=False).secret_keys == (k1, k2)
