"""Credentials status transitions, in one place for syncs, runs, checks and re-connects."""

from __future__ import annotations

from datetime import datetime

from core.events import CredentialsBroke, CredentialsFixed, Event
from sources.base import CheckStatus, SourceError
from storage.models import Connection, CredentialsStatus

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
    return [CredentialsBroke(connection.team_id, connection.id, code, error.message, now)]


def record_auth_success(connection: Connection, now: datetime, *, by: str | None = None) -> list[Event]:
    was_broken = connection.credentials_status == CredentialsStatus.ERROR
    connection.auth_failures = 0
    connection.credentials_status = CredentialsStatus.ACTIVE
    connection.credentials_error_code = None
    connection.credentials_error_message = None
    connection.credentials_error_since = None
    connection.credentials_checked_at = now
    return [CredentialsFixed(connection.team_id, connection.id, by, now)] if was_broken else []
