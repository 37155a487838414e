"""Make a new connection, re-connect, delete: the state changes of a connection."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.credentials import Credentials
from core.errors import Conflict, InvalidInput
from core.events import ConnectionChanged
from engine.context import Context
from engine.credentials import record_auth_success
from engine.executor import CONNECTION_DELETED, cancel_unfinished
from operations.audit import audit
from operations.auth import Actor, Role, authorize
from operations.cards import ShownRow
from operations.validation import clean_text
from sources.base import CheckStatus, Source, SourceError, TransientSourceError, mask
from sources.config import (
    CONFIG_KEY,
    TITLE_KEY,
    TITLE_MAX,
    account_field,
    config_credentials,
    config_errors,
    config_spec,
    credentials_config,
    credentials_title,
    keep_secrets,
    secret_hint,
    without_secrets,
)
from sources.registry import UnknownSource
from storage.models import AlertResolution, Connection, SyncMode
from storage.repositories import Connections, close_alerts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckedCredentials:
    credentials: Credentials
    business_account_id: str
    business_account_name: str


@dataclass(frozen=True)
class ConnectionSetup:
    """What the re-connect form shows of a connection: never its credentials."""

    source: str
    title: str
    account_sync_mode: str
    credentials_hint: dict[str, str]
    # A source configured by a JSON Schema: its configuration in use without the secrets, and
    # the connection's name, as the form's values (sources.config's Credentials shape).
    prefill: dict[str, str]


def connection_setup(ctx: Context, actor: Actor, connection_id: int) -> ConnectionSetup:
    with ctx.db.read() as session:
        row = Connections(session, actor.team_id).shown(connection_id)
        prefill = _spec_prefill(ctx, session, actor, row)
    return ConnectionSetup(row.source, row.title, row.account_sync_mode, dict(row.credentials_hint), prefill)


def _spec_prefill(ctx: Context, session: Session, actor: Actor, row: ShownRow) -> dict[str, str]:
    try:
        spec = config_spec(ctx.source(row.source))
    except UnknownSource:
        return {}
    if spec is None:
        return {}
    stored = Connections(session, actor.team_id).get(row.id).credentials
    if stored is None:
        return {}
    credentials = ctx.vault.decrypt(stored)
    config = without_secrets(spec, credentials_config(credentials))
    return config_credentials(config, credentials_title(credentials)).to_dict()


def same_business_account(ctx: Context, actor: Actor, connection_id: int) -> list[int]:
    """The team's other live connections to the same source and business account, so that a
    second one is made knowingly (it is allowed: other credentials, other orders)."""
    with ctx.db.read() as session:
        row = Connections(session, actor.team_id).shown(connection_id)
        return list(
            session.scalars(
                select(Connection.id)
                .where(
                    Connection.team_id == actor.team_id,
                    Connection.deleted_at.is_(None),
                    Connection.id != connection_id,
                    Connection.source == row.source,
                    Connection.business_account_id == row.business_account_id,
                )
                .order_by(Connection.id)
            )
        )


def credentials_from_form(
    source: Source, values: Mapping[str, str | None], stored: Credentials | None = None
) -> Credentials:
    """The source's credential fields from a form; errors are keyed by field name.

    A source configured by a JSON Schema takes its configuration document instead (the
    `sources.config` Credentials shape): validated against the schema as a whole, errors keyed by
    JSON pointer; the secrets of `stored` (Re-connect) it leaves empty are kept."""
    spec = config_spec(source)
    if spec is not None:
        return _configuration(spec, values, stored)
    cleaned: dict[str, str] = {}
    for credential in source.credential_fields:
        text = clean_text(
            values.get(credential.name), field=credential.name, label=credential.label, required=not credential.optional
        )
        if text:
            cleaned[credential.name] = text
    return Credentials(cleaned)


def _configuration(
    spec: Mapping[str, Any], values: Mapping[str, str | None], stored: Credentials | None
) -> Credentials:
    try:
        config = json.loads(values.get(CONFIG_KEY) or "{}")
    except ValueError:
        config = None
    if not isinstance(config, dict):
        raise InvalidInput("The configuration must be a JSON object.", {"": "The configuration must be a JSON object."})
    if stored is not None:
        config = keep_secrets(spec, credentials_config(stored), config)
    errors = config_errors(spec, config)
    if errors:
        first = next(iter(errors.values()))
        raise InvalidInput(f"The configuration is not valid: {first}", errors)
    title = clean_text(
        values.get(TITLE_KEY),
        field=TITLE_KEY,
        label="Connection name",
        required=account_field(spec) is None,
        max_length=TITLE_MAX,
    )
    return config_credentials(config, title)


CHECK_RETRIES = 1
MAX_CHECK_WAIT_SECONDS = 5.0


def check_new_credentials(source: Source, credentials: Credentials) -> CheckedCredentials:
    """Checks the credentials and reads the business account; nothing is stored here."""
    # Check failures go on the first secret field; a spec source's, above its form ("").
    fields = source.credential_fields
    field = next((f.name for f in fields if f.secret), fields[0].name if fields else "")
    result = source.check_credentials(credentials)
    for _ in range(CHECK_RETRIES):
        if result.status is not CheckStatus.TRANSIENT or result.definitive:
            break
        # A rate limit or a blip: retried once while the person waits ("Checking…"), briefly.
        time.sleep(min(result.retry_after or 1.0, MAX_CHECK_WAIT_SECONDS))
        result = source.check_credentials(credentials)
    if result.status is CheckStatus.TRANSIENT and result.definitive:
        raise InvalidInput(
            "The credentials could not be checked.",
            {
                field: f"{source.title} refused connbot's check ({result.reason}); asking again would not help. "
                "Nothing was saved: tell whoever runs connbot."
            },
        )
    if result.status is CheckStatus.TRANSIENT:
        raise InvalidInput(
            "Could not check the credentials right now.",
            {
                field: f"{source.title} could not check them just now ({result.reason}). Nothing was saved; try again in a moment."
            },
        )
    if not result.ok:
        what = (
            "These credentials do not work"
            if result.status is CheckStatus.INVALID
            else "These credentials lack a permission"
        )
        raise InvalidInput(f"{what}: {result.reason}", {field: f"{what}: {result.reason}"})
    try:
        business = _retried(lambda: source.business_account(credentials))
    except SourceError as error:
        then = (
            "Nothing was saved; try again in a moment."
            if error.status is CheckStatus.TRANSIENT
            else "Nothing was saved."
        )
        raise InvalidInput(
            f"Could not read the business account: {error.message}",
            {field: f"Could not read the business account: {error.message} {then}"},
        ) from None
    return CheckedCredentials(credentials, business.id, business.name)


_T = TypeVar("_T")


def _retried(read: Callable[[], _T]) -> _T:
    for _ in range(CHECK_RETRIES):
        try:
            return read()
        except TransientSourceError as error:
            time.sleep(min(error.retry_after or 1.0, MAX_CHECK_WAIT_SECONDS))
    return read()


def parse_sync_mode(value: str | None) -> SyncMode:
    try:
        return SyncMode(value or SyncMode.ALL)
    except ValueError:
        raise InvalidInput("Choose how accounts are synced.", {"sync_mode": "Choose one of the two options."}) from None


def make_connection(
    ctx: Context,
    actor: Actor,
    source_name: str,
    values: Mapping[str, str | None],
    sync_mode: str | None = None,
    *,
    idempotency_key: str | None = None,
) -> int:
    """Check, then store. Returns the new connection's id; the caller starts the first account sync.

    With `idempotency_key` (the form's), a second delivery of the same submission is refused
    with Conflict instead of making a second connection."""
    actor.require(Role.ADMIN, "make a new connection")
    source = ctx.source(source_name)
    mode = parse_sync_mode(sync_mode)
    if idempotency_key is not None:
        idempotency_key = f"{actor.team_id}/{idempotency_key}"[:128]
        _refuse_made(ctx, idempotency_key)  # before asking the source again
    checked = check_new_credentials(source, credentials_from_form(source, values))
    try:
        connection_id = _store_new(ctx, actor, source, mode, checked, idempotency_key)
    except IntegrityError:  # the same submission raced us and stored it first
        if idempotency_key is not None:
            _refuse_made(ctx, idempotency_key)
        raise
    ctx.events.publish(ConnectionChanged(actor.team_id, connection_id, "created"))
    return connection_id


def _refuse_made(ctx: Context, idempotency_key: str) -> None:
    with ctx.db.begin() as session:
        made = session.scalar(select(Connection.id).where(Connection.idempotency_key == idempotency_key))
    if made is not None:
        raise Conflict(f"Connection {made} was already made from this form; its card is in your messages with connbot.")


def _store_new(
    ctx: Context, actor: Actor, source: Source, mode: SyncMode, checked: CheckedCredentials, idempotency_key: str | None
) -> int:
    with ctx.db.begin() as session:
        now = ctx.clock.now()
        connection = Connection(
            team_id=actor.team_id,
            source=source.name,
            title=_title(source, checked),
            business_account_id=checked.business_account_id,
            business_account_name=checked.business_account_name,
            auth_type=source.auth_type,
            account_sync_mode=mode,
            credentials=ctx.vault.encrypt(checked.credentials),
            credentials_hint=_hint(source, checked.credentials),
            created_by=actor.user_id or "system",
            created_at=now,
            last_authorized_at=now,
            last_authorized_by=actor.user_id,
            idempotency_key=idempotency_key,
        )
        record_auth_success(connection, now)
        Connections(session, actor.team_id).add(connection)
        audit(
            ctx,
            session,
            actor,
            "connection.create",
            connection_id=connection.id,
            source=source.name,
            business_account_id=checked.business_account_id,
            sync_mode=mode.value,
        )
        return connection.id


def _title(source: Source, checked: CheckedCredentials) -> str:
    return f"{source.title} · {checked.business_account_name}"[:255]


def _hint(source: Source, credentials: Credentials) -> dict[str, str]:
    """What the re-connect form shows of the credentials in use: secrets masked (a spec source's:
    its secrets only, by JSON pointer)."""
    spec = config_spec(source)
    if spec is not None:
        return secret_hint(spec, credentials_config(credentials))
    secret = {f.name: f.secret for f in source.credential_fields}
    return {k: mask(v) if secret.get(k, True) else v for k, v in credentials.items()}


@dataclass(frozen=True)
class Reconnected:
    connection_id: int
    business_account_changed: bool
    sees_no_accounts: bool = False  # saved as confirmed: the login lists no account


CONFIRM_BUSINESS_FIELD = "confirm_business"
CONFIRM_NO_ACCOUNTS_FIELD = "confirm_no_accounts"


def sees_accounts(source: Source, credentials: Credentials) -> bool | None:
    """Whether the login lists at least one account (read up to its first non-empty page); None
    when the source cannot say just now (the account sync will)."""
    pages = iter(source.list_accounts(credentials))
    try:
        return any(len(page) for page in pages)
    except SourceError as error:
        log.info("could not tell whether the new credentials see accounts (%s)", error.code)
        return None
    finally:
        close = getattr(pages, "close", None)
        if close is not None:
            close()


def reconnect(
    ctx: Context,
    actor: Actor,
    connection_id: int,
    values: Mapping[str, str | None],
    sync_mode: str | None = None,
    *,
    confirm_business_change: bool = False,
    confirm_no_accounts: bool = False,
) -> Reconnected:
    """New credentials replace the old ones only after they pass the check; a failed check leaves
    the old ones in force. Credentials of another business account, or of a login that lists no
    account (its orders could not run), are saved only when confirmed."""
    authorize(ctx, actor, Role.ADMIN, "re-connect a connection", connection_id)
    with ctx.db.begin() as session:
        connection = Connections(session, actor.team_id).get(connection_id)
        source = ctx.source(connection.source)
        old_business = connection.business_account_id
        # A spec source keeps the secrets of its configuration that the form leaves empty.
        stored = None
        if config_spec(source) is not None:
            assert connection.credentials is not None  # NULL only once deleted, which `get` refuses
            stored = ctx.vault.decrypt(connection.credentials)
    mode = parse_sync_mode(sync_mode)
    checked = check_new_credentials(source, credentials_from_form(source, values, stored))
    changed = checked.business_account_id != old_business
    empty = sees_accounts(source, checked.credentials) is False
    unconfirmed: dict[str, str] = {}
    if changed and not confirm_business_change:
        unconfirmed[CONFIRM_BUSINESS_FIELD] = (
            f"These credentials belong to business account {checked.business_account_name} "
            f"({checked.business_account_id}), not {old_business}. Tick the box to confirm the switch."
        )
    if empty and not confirm_no_accounts:
        unconfirmed[CONFIRM_NO_ACCOUNTS_FIELD] = (
            f"This {source.title} login sees no accounts: once saved, the connection would have none to "
            "extract, and its extraction orders could not run. Check that it is the right login; tick the "
            "box to save it anyway."
        )
    if unconfirmed:
        raise InvalidInput(" ".join(unconfirmed.values()), unconfirmed)
    with ctx.db.begin() as session:
        connection = Connections(session, actor.team_id).get(connection_id, for_update=True)
        now = ctx.clock.now()
        connection.credentials = ctx.vault.encrypt(checked.credentials)
        connection.credentials_hint = _hint(source, checked.credentials)
        connection.business_account_id = checked.business_account_id
        connection.business_account_name = checked.business_account_name
        connection.title = _title(source, checked)  # searched and shown by tombstones: the business it reads now
        connection.account_sync_mode = mode
        connection.last_authorized_at = now
        connection.last_authorized_by = actor.user_id
        events = record_auth_success(connection, now, by=actor.user_id)
        audit(
            ctx,
            session,
            actor,
            "connection.reconnect",
            connection_id=connection.id,
            business_account_changed=changed,
            business_account_id=checked.business_account_id,
            sync_mode=mode.value,
            sees_no_accounts=empty,
        )
    for event in events + [ConnectionChanged(actor.team_id, connection_id, "reconnected")]:
        ctx.events.publish(event)
    return Reconnected(connection_id, changed, empty)


def delete_connection(ctx: Context, actor: Actor, connection_id: int) -> None:
    """Stops extraction at once, destroys the credentials, keeps the warehouse data and the audit trail.

    A second delete (a double click, a colleague at the same time) raises Conflict("already deleted").
    """
    authorize(ctx, actor, Role.ADMIN, "delete a connection", connection_id, include_deleted=True)
    with ctx.db.begin() as session:
        connection = Connections(session, actor.team_id).get(connection_id, include_deleted=True, for_update=True)
        if connection.is_deleted:
            raise Conflict(
                f"This connection was already deleted by {_who(connection.deleted_by)} "
                f"at {connection.deleted_at:%Y-%m-%d %H:%M} UTC."
            )
        now = ctx.clock.now()
        connection.deleted_at = now
        connection.deleted_by = actor.user_id or "system"
        connection.credentials = None  # destroyed, not just hidden
        connection.credentials_hint = {}
        # Runs in progress see the marker at their next batch boundary and stop; no new run starts.
        cancel_unfinished(ctx, session, connection_id=connection.id, reason=CONNECTION_DELETED)
        close_alerts(
            session,
            at=now,
            by=actor.user_id,
            resolution=AlertResolution.CONNECTION_DELETED,
            connection_id=connection.id,
        )
        audit(
            ctx,
            session,
            actor,
            "connection.delete",
            connection_id=connection.id,
            source=connection.source,
            business_account_id=connection.business_account_id,
        )
    ctx.events.publish(ConnectionChanged(actor.team_id, connection_id, "deleted"))


def _who(user_id: str | None) -> str:
    return f"<@{user_id}>" if user_id and user_id[:1] in "UW" else (user_id or "someone")
