import os
import stat

import pytest
from sqlalchemy import select

from core.errors import ConfigError
from sources.base import Credentials
from storage.models import Connection, Installation
from storage.vault import Vault, VaultError, generate_key, resolve_keys, rotate_all, verify_keys


def test_round_trip_and_ciphertext_hides_values():
    vault = Vault([generate_key()])
    token = vault.encrypt(Credentials({"token": "planted-abc123"}))
    assert b"planted-abc123" not in token
    assert vault.decrypt(token)["token"] == "planted-abc123"
    assert "planted" not in repr(vault.decrypt(token))


def test_wrong_key_is_an_error_not_garbage():
    token = Vault([generate_key()]).encrypt(Credentials({"token": "x"}))
    with pytest.raises(VaultError):
        Vault([generate_key()]).decrypt(token)


def test_rotation_moves_to_the_first_key():
    old, new = generate_key(), generate_key()
    token = Vault([old]).encrypt(Credentials({"token": "x"}))
    rotated = Vault([new, old]).rotate(token)
    assert Vault([new]).decrypt(rotated)["token"] == "x"
    with pytest.raises(VaultError):
        Vault([old]).decrypt(rotated)


def test_embedded_key_file_created_once_with_mode_0600(tmp_path):
    first = resolve_keys((), tmp_path)
    mode = stat.S_IMODE(os.stat(tmp_path / "secret.key").st_mode)
    assert mode == 0o600
    assert resolve_keys((), tmp_path) == first


def test_two_processes_creating_the_key_together_agree_and_never_read_half_a_file(tmp_path, monkeypatch):
    """The second process arrives while the first has written its key but not published it."""
    real_link = os.link
    seen_by_second = []
    arrived = []

    def link_after_the_other_one(source, target):
        if not arrived:
            arrived.append(True)
            seen_by_second.append(resolve_keys((), tmp_path))  # the other process, start to end
        real_link(source, target)

    monkeypatch.setattr(os, "link", link_after_the_other_one)
    first = resolve_keys((), tmp_path)
    assert first == seen_by_second[0]  # one key for both: the one published first
    assert (tmp_path / "secret.key").read_text().strip() == first[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret.key"]  # no drafts left behind


def test_corrupt_key_file_is_a_clear_error(tmp_path):
    (tmp_path / "secret.key").write_text("garbage")
    with pytest.raises(ConfigError, match="secret.key"):
        resolve_keys((), tmp_path)


def _connection(ctx, vault, n=1):
    with ctx.db.begin() as session:
        for i in range(n):
            session.add(
                Connection(
                    team_id="T1",
                    source="demo",
                    title="t",
                    auth_type="token",
                    created_by="U1",
                    created_at=ctx.clock.now(),
                    credentials=vault.encrypt(Credentials({"token": f"demo-{i}"})),
                )
            )


def test_start_up_refuses_keys_that_cannot_read_stored_credentials(ctx):
    _connection(ctx, ctx.vault)
    with ctx.db.begin() as session:
        verify_keys(ctx.vault, session)  # the right key passes
        with pytest.raises(ConfigError, match="CONNBOT_SECRET_KEYS"):
            verify_keys(Vault([generate_key()]), session)


def _installation(ctx, token: str, refresh_token: str | None = None) -> None:
    with ctx.db.begin() as session:
        session.add(
            Installation(
                key="T:T1",
                team_id="T1",
                app_id="A1",
                bot_token=ctx.vault.encrypt_token(token),
                bot_refresh_token=ctx.vault.encrypt_token(refresh_token) if refresh_token else None,
                installed_at=ctx.clock.now(),
            )
        )


def test_rotate_all_reencrypts_every_credential_and_bot_token(ctx):
    _connection(ctx, ctx.vault, n=3)
    _installation(ctx, "xoxe.xoxb-planted", refresh_token="xoxe-1-planted")  # token rotation on
    new_key = generate_key()
    with ctx.db.begin() as session:
        assert rotate_all(Vault([new_key, ctx.test_key]), session) == (3, 1)
    with ctx.db.begin() as session:
        verify_keys(Vault([new_key]), session)
        row = session.scalars(select(Installation)).one()
        assert Vault([new_key]).decrypt_token(row.bot_token) == "xoxe.xoxb-planted"
        assert Vault([new_key]).decrypt_token(row.bot_refresh_token) == "xoxe-1-planted"
        with pytest.raises(ConfigError):
            verify_keys(Vault([ctx.test_key]), session)


def test_start_up_refuses_keys_that_cannot_read_stored_bot_tokens(ctx):
    _installation(ctx, "xoxb-1")
    with ctx.db.begin() as session:
        verify_keys(ctx.vault, session)
        with pytest.raises(ConfigError, match="CONNBOT_SECRET_KEYS"):
            verify_keys(Vault([generate_key()]), session)
