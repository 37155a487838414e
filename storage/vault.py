"""Encryption of credentials at rest (Fernet, with key rotation through MultiFernet).

Clear credentials exist only between `decrypt` and the source call that uses them.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.credentials import Credentials
from core.errors import ConfigError
from storage.models import Connection, Installation

log = logging.getLogger(__name__)

KEY_FILE_NAME = "secret.key"


class VaultError(Exception):
    """Stored credentials cannot be decrypted with the configured keys."""


class Vault:
    def __init__(self, keys: Sequence[str]):
        if not keys:
            raise ConfigError("CONNBOT_SECRET_KEYS: at least one Fernet key is needed")
        self._fernet = MultiFernet([Fernet(k) for k in keys])

    def __repr__(self) -> str:
        return "Vault(***)"

    def encrypt(self, credentials: Credentials) -> bytes:
        payload = json.dumps(credentials.to_dict(), sort_keys=True).encode()
        return self._fernet.encrypt(payload)

    def decrypt(self, token: bytes) -> Credentials:
        try:
            payload = self._fernet.decrypt(token)
        except InvalidToken:
            raise VaultError("none of the configured keys can decrypt these credentials") from None
        return Credentials(json.loads(payload))

    def encrypt_token(self, token: str) -> bytes:
        """A Slack bot token, kept as credentials are (its repr hidden while it is clear)."""
        return self.encrypt(Credentials({"bot_token": token}))

    def decrypt_token(self, blob: bytes) -> str:
        return self.decrypt(blob)["bot_token"]

    def can_decrypt(self, token: bytes) -> bool:
        try:
            self._fernet.decrypt(token)
        except InvalidToken:
            return False
        return True

    def rotate(self, token: bytes) -> bytes:
        """Re-encrypt with the current (first) key."""
        try:
            return self._fernet.rotate(token)
        except InvalidToken:
            raise VaultError("none of the configured keys can decrypt these credentials") from None


def generate_key() -> str:
    return Fernet.generate_key().decode()


def resolve_keys(configured: Sequence[str], data_dir: Path) -> tuple[str, ...]:
    """The configured keys, or the embedded default's key file (created once, mode 0600)."""
    if configured:
        return tuple(configured)
    path = data_dir / KEY_FILE_NAME
    if path.exists():
        key = path.read_text().strip()
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise ConfigError(
                f"{path}: not a Fernet key; restore it from a backup or set CONNBOT_SECRET_KEYS"
            ) from None
        return (key,)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = generate_key()
    # Written whole under a private name, then published with link(), which fails when the name
    # exists: of two processes starting together one key wins, and neither reads a partial file.
    fd, draft = tempfile.mkstemp(dir=path.parent, prefix=f".{KEY_FILE_NAME}.")  # mode 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(key + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.link(draft, path)
    except FileExistsError:
        return resolve_keys(configured, data_dir)
    finally:
        os.unlink(draft)
    log.warning("Created a new credentials key in %s (keep it safe: without it stored credentials are lost)", path)
    return (key,)


def verify_keys(vault: Vault, session: Session) -> None:
    """Refuse to start when the keys cannot read the stored credentials or bot tokens (never lose
    them silently)."""
    newest = [
        session.scalars(
            select(Connection.credentials)
            .where(Connection.credentials.is_not(None))
            .order_by(Connection.id.desc())
            .limit(1)
        ).first(),
        session.scalars(select(Installation.bot_token).order_by(Installation.id.desc()).limit(1)).first(),
    ]
    if any(token is not None and not vault.can_decrypt(token) for token in newest):
        raise ConfigError(
            "CONNBOT_SECRET_KEYS: none of the configured keys can decrypt the stored credentials; "
            "add the key they were written with (keys are comma-separated, the first is current)"
        )


def rotate_all(vault: Vault, session: Session) -> tuple[int, int]:
    """Re-encrypt every stored credential and bot token (with its refresh token, when token
    rotation is on) with the current key; returns how many credentials and installations."""
    count = 0
    for connection in session.scalars(select(Connection).where(Connection.credentials.is_not(None))):
        credentials = connection.credentials
        if credentials is None:  # the query leaves these out
            continue
        connection.credentials = vault.rotate(credentials)
        count += 1
    tokens = 0
    for installation in session.scalars(select(Installation)):
        installation.bot_token = vault.rotate(installation.bot_token)
        if installation.bot_refresh_token is not None:
            installation.bot_refresh_token = vault.rotate(installation.bot_refresh_token)
        tokens += 1
    return count, tokens
