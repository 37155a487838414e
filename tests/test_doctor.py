"""`connbot doctor` run as a person setting connbot up runs it: a process of its own, its settings
in the environment, against the fake Slack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from slack_sdk import WebClient

from engine.account_sync import start_sync
from faker_connector import register_faker
from fakeslack import FakeSlack
from operations.auth import Actor
from operations.connections import make_connection
from storage.db import Database
from storage.models import Connection
from storage.vault import generate_key

CONNBOT = str(Path(sys.executable).with_name("connbot"))
MANIFEST_SCOPES = ("commands", "chat:write", "channels:join", "app_mentions:read", "users:read", "usergroups:read")


@pytest.fixture
def slack():
    fake = FakeSlack(team_id="T0DOCTOR", bot_token="xoxb-doctor", scopes=MANIFEST_SCOPES)
    fake.add_user("UCSM", "casey")
    fake.add_channel("C0ALERTS", "oncall", bot_member=False)  # public: connbot joins it
    fake.add_channel("G0ESCAL", "csm-escalations", private=True)  # private, connbot invited
    fake.add_usergroup("S0CSM", ["UCSM"])
    with fake:
        yield fake


def doctor(tmp_path: Path, **env: str) -> tuple[int, list[str]]:
    """Runs in a directory of its own, which must stay empty."""
    cwd = tmp_path / "cwd"
    cwd.mkdir(exist_ok=True)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CONNBOT_"))}
    done = subprocess.run(
        [CONNBOT, "doctor"], cwd=cwd, env={**clean, **env}, capture_output=True, text=True, timeout=120
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert not list(cwd.iterdir())  # it made no file, key or database
    return done.returncode, done.stdout.splitlines()


def line(lines: list[str], name: str) -> str:
    found = [text for text in lines if text[2:].startswith(name + ":")]
    assert len(found) == 1, (name, lines)
    return found[0]


def set_up(slack: FakeSlack, db_url: str, key: str, **env: str) -> dict[str, str]:
    return {
        "SLACK_API_URL": slack.base_url,
        "SLACK_BOT_TOKEN": "xoxb-doctor",
        "SLACK_SIGNING_SECRET": "a-secret",
        "CONNBOT_DATABASE_URL": db_url,
        "CONNBOT_SECRET_KEYS": key,
        "CONNBOT_ALERT_CHANNEL": "C0ALERTS",
        "CONNBOT_ESCALATION_CHANNEL": "G0ESCAL",
        "CONNBOT_CSM_GROUP": "S0CSM",
        "CONNBOT_EXECUTION": "inline",  # the queue's own checks are tested apart
        **env,
    }


def test_a_good_set_up_passes_every_check_and_joins_the_public_alert_channel(slack, ctx, db_url, tmp_path):
    make_connection(ctx, Actor.system("T0DOCTOR"), "demo", {"token": "demo:accounts=3"})
    code, lines = doctor(tmp_path, **set_up(slack, db_url, ctx.test_key))
    assert code == 0, lines
    assert all(text.startswith("✓") for text in lines), lines
    assert "schema current" in line(lines, "Database")
    assert "decrypt the credentials of all 1 connection(s)" in line(lines, "Credentials key")
    assert line(lines, "Sources").endswith("demo, facebook_ads, google_ads")
    assert line(lines, "Alert channel").endswith("#oncall (CONNBOT_ALERT_CHANNEL): connbot joined it now and can post")
    assert slack.channel("C0ALERTS").bot_member
    assert line(lines, "Escalation channel").endswith(
        "private channel G0ESCAL (CONNBOT_ESCALATION_CHANNEL): connbot is in it and can post"
    )
    assert line(lines, "CSM group").endswith("S0CSM has 1 member(s)")


def test_missing_scopes_a_private_channel_a_missing_group_and_a_wrong_key_each_say_what_to_do(
    slack, ctx, db_url, tmp_path
):
    slack.team.scopes = ("commands", "chat:write", "app_mentions:read", "users:read", "reactions:read")
    slack.add_channel("G0SECRET", "secret-alerts", private=True, bot_member=False)
    make_connection(ctx, Actor.system("T0DOCTOR"), "demo", {"token": "demo"})
    env = set_up(slack, db_url, generate_key(), CONNBOT_ALERT_CHANNEL="G0SECRET", CONNBOT_CSM_GROUP="S0NOBODY")
    code, lines = doctor(tmp_path, **env)
    assert code == 1
    scopes = line(lines, "Slack scopes")
    assert scopes.startswith("✗") and "missing channels:join, usergroups:read" in scopes and "reinstall" in scopes
    alert = line(lines, "Alert channel")
    assert alert.startswith("✗") and "invite connbot there (`/invite @connbot`" in alert
    assert line(lines, "CSM group").startswith("✗ CSM group: CONNBOT_CSM_GROUP=S0NOBODY: no such user group")
    key = line(lines, "Credentials key")
    assert key.startswith("✗") and "cannot decrypt the credentials of 1 of 1" in key and "CONNBOT_SECRET_KEYS" in key
    assert line(lines, "Slack bot token").startswith("✓")


def test_a_bad_token_is_refused_and_what_needs_it_is_not_checked(slack, sqlite_url, tmp_path):
    code, lines = doctor(tmp_path, **set_up(slack, sqlite_url, generate_key(), SLACK_BOT_TOKEN="xoxb-revoked"))
    assert code == 1
    token = line(lines, "Slack bot token")
    assert token.startswith("✗") and "invalid_auth" in token and "Bot User OAuth Token" in token
    assert line(lines, "Slack scopes, channels and CSM group").startswith("–")
    assert "xoxb-revoked" not in "\n".join(lines)
    slack.clear_records()  # invalid_auth is what this test asked for


@pytest.mark.postgres
def test_a_postgresql_database_not_upgraded_says_to_upgrade_it(slack, fresh_pg_url, tmp_path):
    code, lines = doctor(tmp_path, **set_up(slack, fresh_pg_url, generate_key()))
    assert code == 1
    assert line(lines, "Database") == "✗ Database: empty: no connbot schema; run `connbot db upgrade`"
    unreachable = set_up(slack, "postgresql://postgres:hunter2@127.0.0.1:1/none", generate_key())
    code, lines = doctor(tmp_path, **unreachable)
    assert code == 1 and "cannot reach it" in line(lines, "Database") and "hunter2" not in "\n".join(lines)


def test_a_source_that_cannot_be_loaded_or_is_gone_is_named(slack, sqlite_ctx, tmp_path):
    plugin = tmp_path / "plugins" / "connbot_broken-1.0.dist-info"
    plugin.mkdir(parents=True)
    (plugin / "METADATA").write_text("Metadata-Version: 2.1\nName: connbot-broken\nVersion: 1.0\n")
    (plugin / "entry_points.txt").write_text("[connbot.sources]\nbroken = connbot_broken_missing:Source\n")
    cid = make_connection(sqlite_ctx, Actor.system("T0DOCTOR"), "demo", {"token": "demo"})
    with sqlite_ctx.db.begin() as session:
        session.get(Connection, cid).source = "retired_ads"
    env = set_up(slack, sqlite_ctx.settings.database_url, sqlite_ctx.test_key, PYTHONPATH=str(tmp_path / "plugins"))
    code, lines = doctor(tmp_path, **env)
    assert code == 1
    assert "connbot_broken_missing:Source (ModuleNotFoundError" in line(lines, "Source broken")
    assert line(lines, "Source retired_ads").startswith("✗ Source retired_ads: connections use it but it is not")
    assert line(lines, "Sources").startswith("✓")


def test_an_airbyte_connector_whose_command_is_gone_is_named(slack, sqlite_ctx, tmp_path):
    spec = json.loads((Path(__file__).parent / "platforms" / "airbyte_source_faker_spec.json").read_text())
    gone = tmp_path / "connectors" / "faker" / "bin" / "source-faker"  # its environment was deleted
    name = register_faker(sqlite_ctx, gone, spec)
    env = set_up(slack, sqlite_ctx.settings.database_url, sqlite_ctx.test_key)
    code, lines = doctor(tmp_path, **env)
    assert code == 1
    assert line(lines, f"Source {name}") == (
        f"✗ Source {name}: its connector's command {gone} is missing; run `connbot connectors upgrade` for it, "
        "or add it again"
    )
    assert line(lines, "Sources").endswith(f"demo, facebook_ads, google_ads, {name}")


def test_a_wrong_setting_is_a_failed_check(tmp_path):
    code, lines = doctor(tmp_path, CONNBOT_SYNC_AT="25:00")
    assert (code, lines) == (1, ["✗ Settings: CONNBOT_SYNC_AT: expected a time of day as HH:MM (24-hour), got '25:00'"])


def test_a_fresh_embedded_set_up_is_fine_and_left_untouched(slack, tmp_path):
    env = set_up(slack, "", "")  # the defaults: ./data/connbot.db and ./data/secret.key, made at first start
    code, lines = doctor(tmp_path, **env)
    assert code == 0, lines
    assert line(lines, "Database").endswith("does not exist yet; connbot creates it at first start")
    assert line(lines, "Credentials key") == (
        "✓ Credentials key: none yet; connbot creates data/secret.key at first start (keep it safe)"
    )


@pytest.mark.postgres
def test_queue_execution_needs_a_warehouse_for_several_writers_its_schema_and_a_worker(
    slack, queue_ctx, fresh_pg_url, tmp_path
):
    queued = set_up(slack, queue_ctx.settings.database_url, queue_ctx.test_key, CONNBOT_EXECUTION="queue")
    code, lines = doctor(tmp_path, **queued)  # the default warehouse: a DuckDB file
    assert code == 1 and "the warehouse is a DuckDB file" in line(lines, "Execution")
    queued["CONNBOT_WAREHOUSE"] = queue_ctx.settings.warehouse  # PostgreSQL: several writers
    code, lines = doctor(tmp_path, **queued)
    assert line(lines, "Execution") == "✓ Execution: queue: 0 worker(s) alive, 0 job(s) waiting"
    cid = make_connection(queue_ctx, Actor.system("T0DOCTOR"), "demo", {"token": "demo:accounts=3"})
    start_sync(queue_ctx, "T0DOCTOR", cid, trigger="manual")  # queued, and no worker runs
    code, lines = doctor(tmp_path, **queued)
    assert code == 1
    assert line(lines, "Execution").endswith("1 job(s) wait and no worker is alive; start `connbot worker`")

    Database(fresh_pg_url).upgrade()  # connbot's tables, not the task queue's
    bare = {**queued, "CONNBOT_DATABASE_URL": fresh_pg_url}
    code, lines = doctor(tmp_path, **bare)
    assert code == 1 and "run `connbot db upgrade`" in line(lines, "Execution")


def test_installs_to_many_workspaces_check_each_with_its_token_and_settings(slack, ctx, db_url, tmp_path):
    from operations.auth import Role
    from operations.workspaces import InstalledBot, WorkspaceSettings, record_installation, save_workspace_settings

    slack.add_team("T0GONE", name="Gone")
    for team, token in (("T0DOCTOR", "xoxb-doctor"), ("T0GONE", "xoxb-revoked-since")):
        record_installation(
            ctx, InstalledBot(app_id="A1", enterprise_id=None, team_id=team, bot_token=token, team_name=team.title())
        )
    # A workspace of token rotation whose token expired (nothing used it for 12 hours).
    slack.add_team("T0IDLE", name="Idle")
    slack.add_user("UIDLE", "ida", team_id="T0IDLE")
    slack.configure_oauth(
        "1.2",
        "s",
        redirect_urls=["https://connbot.example.com/slack/oauth_redirect"],
        scopes=["commands"],
        token_rotation=True,
    )
    slack.token_ttl = 0.0
    back = slack.authorize("https://slack.com/oauth/v2/authorize?client_id=1.2&scope=commands&state=x", "UIDLE")
    code = back.split("code=")[1].split("&")[0]
    issued = WebClient(base_url=slack.base_url).oauth_v2_access(client_id="1.2", client_secret="s", code=code)
    record_installation(
        ctx,
        InstalledBot(
            app_id="A1",
            enterprise_id=None,
            team_id="T0IDLE",
            bot_token=issued["access_token"],
            team_name="Idle",
            bot_refresh_token=issued["refresh_token"],
        ),
    )
    admin = Actor("T0DOCTOR", "UCSM", Role.ADMIN)
    save_workspace_settings(ctx, admin, WorkspaceSettings(alert_channel="C0ALERTS", csm_group="S0NOPE"))
    env = set_up(
        slack,
        db_url,
        ctx.test_key,
        SLACK_BOT_TOKEN="",
        CONNBOT_SLACK_CLIENT_ID="1.2",
        CONNBOT_SLACK_CLIENT_SECRET="s",
        CONNBOT_PUBLIC_URL="https://connbot.example.com",
    )
    code, lines = doctor(tmp_path, **env)
    assert code == 1
    assert line(lines, "Slack installs").endswith("https://connbot.example.com/slack/oauth_redirect")
    assert line(lines, "T0Doctor (T0DOCTOR): bot token").startswith("✓")
    assert line(lines, "T0Doctor (T0DOCTOR): Alert channel").endswith(
        "#oncall (the App Home's Settings): connbot joined it now and can post"
    )
    assert "none is chosen" in line(lines, "T0Doctor (T0DOCTOR): Escalation channel")  # saved: the env's is not used
    assert "S0NOPE (the App Home's Settings): no such user group" in line(lines, "T0Doctor (T0DOCTOR): CSM group")
    gone = line(lines, "T0Gone (T0GONE): bot token")
    assert gone.startswith("✗") and "invalid_auth" in gone and "/slack/install" in gone
    idle = line(lines, "Idle (T0IDLE): bot token")
    assert idle.startswith("–") and "renews it with its refresh token" in idle and "/slack/install" not in idle
    assert "xoxb-" not in "\n".join(lines) and "xoxe" not in "\n".join(lines)
    slack.clear_records()  # the revoked token's invalid_auth is what this test asked for
