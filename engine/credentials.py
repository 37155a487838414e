"""Credentials status transitions, in one place for syncs, runs, checks and re-connects."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import object_session

from core.events import CredentialsBroke, CredentialsFixed, Event
from sources.base import CheckStatus, SourceError
from storage.models import Alert, AlertKind, AlertResolution, Connection, CredentialsStatus
from storage.repositories import close_alerts

# Definitive auth failures in a row before the status turns Error: one failure may be a fluke
# of the platform (a token being refreshed), two are not.
FAILURES_BEFORE_ERROR = 2


def record_auth_failure(connection: Connection, error: SourceError, now: datetime) -> list[Event]:
    """A definitive auth answer (invalid, no permission). Transient errors never come here."""
    assert error.status is not CheckStatus.TRANSIENT, "transient errors never change the credentials status"
    connection.auth_failures += 1
    connection.credentials_checked_at = now
    if connection.auth_failures < FAILURES_BEFORE_ERROR:
        return []
    code = error.code or error.status.value
    already_broken = connection.credentials_status == CredentialsStatus.ERROR
    connection.credentials_status = CredentialsStatus.ERROR
    connection.credentials_error_code = code
    connection.credentials_error_message = error.message
    if already_broken:
        return []
    connection.credentials_error_since = now
    _open_alert(connection, now)
    return [CredentialsBroke(connection.team_id, connection.id, code, error.message, now, connection.source)]


def record_auth_success(connection: Connection, now: datetime, *, by: str | None = None) -> list[Event]:
    was_broken = connection.credentials_status == CredentialsStatus.ERROR
    connection.auth_failures = 0
    connection.credentials_status = CredentialsStatus.ACTIVE
    connection.credentials_error_code = None
    connection.credentials_error_message = None
    connection.credentials_error_since = None
    connection.credentials_checked_at = now
    session = object_session(connection)
    if session is None or not was_broken:  # alerts are open only while the status is Error
        return []
    close_alerts(
        session,
        at=now,
        by=by,
        resolution=AlertResolution.FIXED,
        connection_id=connection.id,
        kinds=[AlertKind.CREDENTIALS],
    )
    return [CredentialsFixed(connection.team_id, connection.id, by, now)]


def _open_alert(connection: Connection, now: datetime) -> None:
    """The alert row is written with the status change, so it cannot be lost; posting it to Slack
    (and retrying that) is the Slack layer's job."""
    session = object_session(connection)
    if session is None:
        raise ValueError(f"connection {connection.id} belongs to no session: its alert could not be written")
    has_open = session.scalar(
        select(Alert.id).where(
            Alert.connection_id == connection.id, Alert.kind == AlertKind.CREDENTIALS, Alert.resolved_at.is_(None)
        )
    )
    if has_open is None:
        session.add(
            Alert(
                team_id=connection.team_id,
                connection_id=connection.id,
                kind=AlertKind.CREDENTIALS,
                channel=None,
                error_code=connection.credentials_error_code,
                error_message=connection.credentials_error_message,
                business_account_id=connection.business_account_id,
                business_account_name=connection.business_account_name,
                opened_at=now,
            )
        )
