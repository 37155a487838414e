"""`connbot doctor`: checks a set-up the way connbot will use it, and prints one line per check,
✓ or ✗ with what to do (– when what it needs failed above, or it is not configured). Exit code 1
when anything fails.

It reads and asks, and changes one thing only: it joins the public alert and escalation channels,
as connbot does before it posts there. It creates no database, file or key (the embedded
default creates those at first start).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import distinct, select
from sqlalchemy.engine import make_url

from core.errors import ConfigError
from core.settings import Settings, load_settings
from storage.db import Database, alembic_config
from storage.models import Connection
from storage.vault import KEY_FILE_NAME, Vault, resolve_keys

OK, FAILED, SKIPPED = "✓", "✗", "–"
# Beside the package when connbot runs from its source tree (`make run`, an editable install).
BUNDLED_MANIFEST = Path(__file__).resolve().parents[1] / "manifest.yml"


@dataclass(frozen=True)
class Check:
    mark: str
    name: str
    detail: str

    def __str__(self) -> str:
        return f"{self.mark} {self.name}: {self.detail}"


def run_doctor(manifest: Path | None = None) -> int:
    failed = False
    for check in checks(manifest):
        print(check, flush=True)
        failed = failed or check.mark == FAILED
    return 1 if failed else 0


def checks(manifest: Path | None = None) -> Iterator[Check]:
    try:
        settings = load_settings()
    except ConfigError as error:
        yield Check(FAILED, "Settings", error.message)
        return
    yield Check(OK, "Settings", _summary(settings))
    database, check = _database(settings)
    yield check
    if database is not None:
        stored: list[tuple[int, bytes]] | None = _stored_credentials(database)
    else:  # not known, unless the embedded database is still to be created
        stored = [] if _not_created_yet(settings) else None
    yield _credentials_key(settings, stored)
    yield _execution(settings, database)
    yield from _sources(database)
    yield from _slack(settings, database, manifest)


def _summary(settings: Settings) -> str:
    store = "SQLite" if settings.is_sqlite else "PostgreSQL"
    if not settings.has_slack:
        return f"read; {store} database, no Slack app"
    return f"read; {store} database, Slack in {'Socket Mode' if settings.socket_mode else 'HTTP mode'}"


# -- the database ---------------------------------------------------------------------------------


def _database(settings: Settings) -> tuple[Database | None, Check]:
    from alembic.script import ScriptDirectory

    name = "Database"
    if _not_created_yet(settings):
        path = make_url(settings.database_url).database
        return None, Check(OK, name, f"SQLite file {path} does not exist yet; connbot creates it at first start")
    scripts = ScriptDirectory.from_config(alembic_config(settings.database_url))
    head = scripts.get_current_head()
    database = Database(settings.database_url)
    try:
        current = database.current_revision()
    except Exception as error:  # the driver's message may quote the URL, password included
        return None, Check(
            FAILED,
            name,
            f"cannot reach it ({type(error).__name__}); check the host, port, user and password of "
            "CONNBOT_DATABASE_URL and that the server accepts connections from here",
        )
    if current == head:
        return database, Check(OK, name, f"reachable, schema current (revision {head})")
    # What follows reads the tables as this connbot knows them: not from another schema.
    if current is not None and current not in {script.revision for script in scripts.walk_revisions()}:
        return None, Check(
            FAILED, name, f"its schema (revision {current}) is newer than this connbot's; run the newer connbot"
        )
    if settings.is_sqlite:
        return None, Check(OK, name, f"schema at revision {current}; connbot upgrades it to {head} at start")
    where = "empty: no connbot schema" if current is None else f"schema at revision {current}, {head} is needed"
    return None, Check(FAILED, name, f"{where}; run `connbot db upgrade`")


def _not_created_yet(settings: Settings) -> bool:
    return settings.is_sqlite and not Path(make_url(settings.database_url).database or "").exists()


def _credentials_key(settings: Settings, tokens: list[tuple[int, bytes]] | None) -> Check:
    """`tokens`: the stored credentials by connection, None when they could not be read."""
    name = "Credentials key"
    key_file = settings.data_dir / KEY_FILE_NAME
    if not settings.secret_keys and not key_file.exists():
        if tokens:
            return Check(
                FAILED,
                name,
                f"{len(tokens)} connection(s) have stored credentials but there is no key: restore {key_file} "
                "from a backup or set CONNBOT_SECRET_KEYS to the key they were written with",
            )
        return Check(OK, name, f"none yet; connbot creates {key_file} at first start (keep it safe)")
    try:
        vault = Vault(resolve_keys(settings.secret_keys, settings.data_dir))  # exists: nothing created
    except ConfigError as error:
        return Check(FAILED, name, error.message)
    where = "CONNBOT_SECRET_KEYS" if settings.secret_keys else str(key_file)
    if tokens is None:
        return Check(SKIPPED, name, f"keys read from {where}; the stored credentials are checked once the database is")
    if not tokens:
        return Check(OK, name, f"keys read from {where}; no credentials stored yet")
    unreadable = [cid for cid, token in tokens if not vault.can_decrypt(token)]
    if unreadable:
        return Check(
            FAILED,
            name,
            f"the keys of {where} cannot decrypt the credentials of {len(unreadable)} of {len(tokens)} connection(s) "
            f"(first: {unreadable[0]}); add the key they were written with to CONNBOT_SECRET_KEYS (comma-separated, "
            "the current key first)",
        )
    return Check(OK, name, f"keys read from {where} decrypt the credentials of all {len(tokens)} connection(s)")


def _stored_credentials(database: Database) -> list[tuple[int, bytes]]:
    with database.read() as session:
        rows = session.execute(
            select(Connection.id, Connection.credentials).where(
                Connection.credentials.is_not(None), Connection.deleted_at.is_(None)
            )
        ).tuples()
        return [(connection_id, blob) for connection_id, blob in rows if blob is not None]  # as selected


def _execution(settings: Settings, database: Database | None) -> Check:
    name = "Execution"
    if settings.execution != "queue":
        return Check(OK, name, "inline: runs and syncs are carried out by the process that starts them")
    from connbot.runtime import check_execution
    from engine.queue import check_schema, queue_stats

    try:
        check_execution(settings)
        if database is None:
            return Check(SKIPPED, name, "queue: its schema and workers are checked once the database is")
        check_schema(database.engine)
        stats = queue_stats(database.engine)
    except ConfigError as error:
        return Check(FAILED, name, error.message)
    waiting = sum(stats.depth.values())
    if waiting and not stats.workers_alive:
        return Check(FAILED, name, f"queue: {waiting} job(s) wait and no worker is alive; start `connbot worker`")
    return Check(OK, name, f"queue: {stats.workers_alive} worker(s) alive, {waiting} job(s) waiting")


# -- data sources ---------------------------------------------------------------------------------


def _sources(database: Database | None) -> Iterator[Check]:
    """Every data source as connbot finds them (engine/connectors.py's directory: the plugins'
    entry points, and with the database the Airbyte connectors it records)."""
    from importlib.metadata import entry_points

    from engine.connectors import SourceDirectory
    from sources.registry import ENTRY_POINT_GROUP, installed_sources

    try:
        found = SourceDirectory(database).all() if database is not None else installed_sources()
    except Exception:  # a plugin that does not load: say which
        found = {}
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            try:
                source = ep.load()()
                found[source.name] = source
            except Exception as error:  # whatever a broken plugin raises
                yield Check(
                    FAILED,
                    f"Source {ep.name}",
                    f"cannot be loaded from {ep.value} ({type(error).__name__}: {error}); until the package that "
                    "provides it is reinstalled or uninstalled, connbot can load no data source at all",
                )
    for name, source in found.items():
        executable = getattr(source, "executable", None)  # an Airbyte connector's command
        if executable is not None and not (Path(executable).is_file() and os.access(executable, os.X_OK)):
            yield Check(
                FAILED,
                f"Source {name}",
                f"its connector's command {executable} is missing; run `connbot connectors upgrade` for it, "
                "or add it again",
            )
    yield Check(OK if found else FAILED, "Sources", ", ".join(found) or "none installed; reinstall connbot")
    if database is None:
        return
    with database.read() as session:
        used = set(session.scalars(select(distinct(Connection.source)).where(Connection.deleted_at.is_(None))))
    for missing in sorted(used - set(found)):
        yield Check(
            FAILED,
            f"Source {missing}",
            "connections use it but it is not installed: their syncs and runs fail until it is installed again "
            "(an Airbyte connector: `connbot connectors add`)",
        )


# -- Slack ----------------------------------------------------------------------------------------


def _slack(settings: Settings, database: Database | None, manifest: Path | None) -> Iterator[Check]:
    if not settings.has_slack:
        yield Check(
            FAILED,
            "Slack",
            "no Slack app: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET for one workspace, or "
            "CONNBOT_SLACK_CLIENT_ID, CONNBOT_SLACK_CLIENT_SECRET, SLACK_SIGNING_SECRET and CONNBOT_PUBLIC_URL for "
            "installs to many (README, 'Slack app set-up'); until then only `connbot console` works",
        )
        return
    if settings.distributed:
        yield from _installed_workspaces(settings, database, manifest)
        return
    from bot.clients import make_client

    client = make_client(settings.slack_bot_token, settings.slack_api_url)
    try:
        identity = client.auth_test()
    except SlackApiError as error:
        code = error.response.get("error")
        yield Check(
            FAILED,
            "Slack bot token",
            f"Slack refused SLACK_BOT_TOKEN ({code}); copy the Bot User OAuth Token again from the app's "
            "OAuth & Permissions page (reinstall the app if it was uninstalled or its token revoked)",
        )
        yield Check(SKIPPED, "Slack scopes, channels and CSM group", "not checked without a working bot token")
        return
    except OSError as error:
        yield Check(FAILED, "Slack bot token", f"Slack did not answer ({type(error).__name__}); check SLACK_API_URL")
        return
    yield Check(
        OK, "Slack bot token", f"works: @{identity.get('user')} in {identity.get('team')} ({identity.get('team_id')})"
    )
    yield from _workspace(client, identity, settings, database, manifest)


def _installed_workspaces(settings: Settings, database: Database | None, manifest: Path | None) -> Iterator[Check]:
    """Installs to many workspaces: each installed workspace's token, scopes, channels and CSM
    group, with that workspace's own token and settings."""
    from bot.clients import make_client
    from storage.models import Installation
    from storage.vault import VaultError

    yield Check(
        OK,
        "Slack installs",
        f"from {settings.public_url}/slack/install; the app's Redirect URLs must list "
        f"{settings.public_url}/slack/oauth_redirect",
    )
    if database is None:
        yield Check(SKIPPED, "Installed workspaces", "checked once the database is")
        return
    with database.read() as session:
        installed = session.scalars(select(Installation).order_by(Installation.id)).all()
    if not installed:
        yield Check(
            SKIPPED,
            "Installed workspaces",
            f"none yet: send each workspace's admin to {settings.public_url}/slack/install",
        )
        return
    key_file = settings.data_dir / KEY_FILE_NAME
    vault = (
        Vault(resolve_keys(settings.secret_keys, settings.data_dir))
        if settings.secret_keys or key_file.exists()
        else None
    )
    for row in installed:
        where = f"{row.team_name or row.enterprise_name or 'workspace'} ({row.team_id or row.enterprise_id})"
        try:
            if vault is None:
                raise VaultError("no key")
            token = vault.decrypt_token(row.bot_token)
        except VaultError:
            yield Check(
                FAILED,
                f"{where}: bot token",
                "the keys cannot decrypt it; add the key it was written with to CONNBOT_SECRET_KEYS, or install "
                "connbot there again",
            )
            continue
        client = make_client(token, settings.slack_api_url)
        try:
            identity = client.auth_test()
        except SlackApiError as error:
            if error.response.get("error") == "token_expired" and row.bot_refresh_token is not None:
                # Token rotation: not used for 12 hours; connbot renews it when it needs it.
                yield Check(
                    SKIPPED,
                    f"{where}: bot token",
                    "expired (token rotation): connbot renews it with its refresh token at the workspace's next "
                    "request, job or alert",
                )
                continue
            yield Check(
                FAILED,
                f"{where}: bot token",
                f"Slack refused it ({error.response.get('error')}): connbot was uninstalled there or its token "
                f"revoked; an admin installs it again from {settings.public_url}/slack/install",
            )
            continue
        except OSError as error:
            yield Check(FAILED, f"{where}: bot token", f"Slack did not answer ({type(error).__name__})")
            continue
        yield Check(OK, f"{where}: bot token", f"works: @{identity.get('user')}")
        if row.team_id is not None:  # an org-wide install's workspaces are checked once known
            yield from _workspace(client, identity, settings, database, manifest, f"{where}: ")


def _workspace(
    client: WebClient,
    identity,
    settings: Settings,
    database: Database | None,
    manifest: Path | None,
    prefix: str = "",
) -> Iterator[Check]:
    """The scopes of a workspace's token, and its alert and escalation channels and CSM group as
    its settings say (the App Home's, or the environment's until they are saved)."""
    from operations.workspaces import WorkspaceSettings, settings_in

    team_id = identity.get("team_id")
    granted = _granted_scopes(identity.headers)
    yield _named(prefix, _scopes(granted, manifest))
    if database is not None and team_id:
        with database.read() as session:
            chosen = settings_in(session, settings, team_id)
    else:
        chosen = WorkspaceSettings.defaults(settings)
    saved = chosen.saved_at is not None

    def origin(variable: str) -> str:
        return "the App Home's Settings" if saved else variable

    if chosen.alert_channel is None:
        yield _named(
            prefix,
            Check(
                FAILED,
                "Alert channel",
                "none is chosen: the alerts of connections without an alert channel of their own (Settings tab) are "
                "never posted; an admin chooses one in the App Home's Settings"
                + ("" if saved else " (or set CONNBOT_ALERT_CHANNEL to a channel ID)"),
            ),
        )
    else:
        yield _named(
            prefix, _channel(client, granted, "Alert channel", chosen.alert_channel, origin("CONNBOT_ALERT_CHANNEL"))
        )
    if chosen.escalation_channel is None:
        yield _named(
            prefix,
            Check(SKIPPED, "Escalation channel", "none is chosen: Escalate to CSM says so instead of opening a thread"),
        )
    else:
        yield _named(
            prefix,
            _channel(
                client, granted, "Escalation channel", chosen.escalation_channel, origin("CONNBOT_ESCALATION_CHANNEL")
            ),
        )
    for channel in _chosen_alert_channels(database, team_id) - {chosen.alert_channel}:
        yield _named(
            prefix, _channel(client, granted, "Alert channel", channel, "chosen in a connection's Settings tab")
        )
    yield _named(prefix, _csm_group(client, chosen.csm_group, origin("CONNBOT_CSM_GROUP")))


def _named(prefix: str, check: Check) -> Check:
    """A check of one of several installed workspaces says which."""
    return Check(check.mark, prefix + check.name, check.detail) if prefix else check


def _granted_scopes(headers: dict) -> set[str] | None:
    for key, value in headers.items():
        if key.lower() == "x-oauth-scopes":
            value = value[0] if isinstance(value, list) else value
            return {scope.strip() for scope in value.split(",") if scope.strip()}
    return None


def _scopes(granted: set[str] | None, manifest: Path | None) -> Check:
    name = "Slack scopes"
    path = manifest or (Path("manifest.yml") if Path("manifest.yml").exists() else BUNDLED_MANIFEST)
    try:
        wanted = set(yaml.safe_load(path.read_text())["oauth_config"]["scopes"]["bot"])
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return Check(FAILED, name, f"cannot read the bot scopes of {path}; pass the app's manifest with --manifest")
    if granted is None:
        return Check(FAILED, name, "Slack did not say which scopes the token has (no x-oauth-scopes header)")
    missing = sorted(wanted - granted)
    if missing:
        return Check(
            FAILED,
            name,
            f"missing {', '.join(missing)}; add them under OAuth & Permissions → Bot Token Scopes (or update the "
            f"app from {path.name}), then reinstall the app to the workspace",
        )
    extra = sorted(granted - wanted)
    return Check(OK, name, f"every scope of {path.name}" + (f" (also granted: {', '.join(extra)})" if extra else ""))


def _channel(client: WebClient, granted: set[str] | None, name: str, channel: str, origin: str) -> Check:
    """Joins a public channel, as connbot does before it posts; a private one only answers to members."""
    try:
        answer = client.conversations_join(channel=channel)
        where = f"#{answer['channel'].get('name', channel)}"
        joined = answer.get("warning") != "already_in_channel"
    except SlackApiError as error:
        code = error.response.get("error")
        if code == "method_not_supported_for_channel_type":  # private, and connbot is in it
            where, joined = f"private channel {channel}", False
        elif code == "channel_not_found":
            return Check(
                FAILED,
                name,
                f"{channel} ({origin}): no channel connbot can see. If it is private, invite connbot there "
                "(`/invite @connbot` in the channel); otherwise check the ID (channel details → About)",
            )
        elif code == "is_archived":
            return Check(FAILED, name, f"{channel} ({origin}) is archived; choose another channel")
        elif code == "missing_scope":
            return Check(FAILED, name, f"connbot cannot join {channel} without the channels:join scope")
        else:
            return Check(FAILED, name, f"Slack refused to let connbot join {channel} ({origin}): {code}")
    if granted is not None and "chat:write" not in granted:
        return Check(FAILED, name, f"{where} ({origin}): connbot is in it but cannot post without chat:write")
    return Check(OK, name, f"{where} ({origin}): connbot {'joined it now' if joined else 'is in it'} and can post")


def _chosen_alert_channels(database: Database | None, team_id: str | None) -> set[str]:
    if database is None:
        return set()
    with database.read() as session:
        return set(
            session.scalars(
                select(distinct(Connection.alert_channel)).where(
                    Connection.team_id == team_id,
                    Connection.alert_channel.is_not(None),
                    Connection.deleted_at.is_(None),
                )
            )
        )


def _csm_group(client: WebClient, group: str | None, origin: str) -> Check:
    name = "CSM group"
    if group is None:
        return Check(SKIPPED, name, "none is chosen: escalations mention Customer Success in words")
    try:
        members = client.usergroups_users_list(usergroup=group)["users"]
    except SlackApiError as error:
        code = error.response.get("error")
        if code == "no_such_subteam":
            if origin.startswith("CONNBOT_"):
                return Check(
                    FAILED,
                    name,
                    f"{origin}={group}: no such user group here; copy its ID from the group's page, or choose the "
                    "group in the App Home's Settings",
                )
            return Check(FAILED, name, f"{group} ({origin}): no such user group here; choose another there")
        return Check(FAILED, name, f"Slack refused to list the members of {group} ({code})")
    if not members:
        return Check(FAILED, name, f"{group} has no members: an escalation would mention nobody; add the CSMs to it")
    return Check(OK, name, f"{group} has {len(members)} member(s)")
