"""The real `airbyte-source-faker` from the package registry, for the Airbyte bridge's tests.

It is installed once, by the installer's own code (engine.connectors.build_environment), into
`.cache/airbyte/` at the repository's root (git-ignored): a fresh clone builds it on first use
(about a minute), later runs reuse it. Tests register it in their database as `airbyte:faker`
the way `connbot connectors add --executable` does, with the spec read once per session.
"""

from __future__ import annotations

import fcntl
import json
import os
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from engine.connectors import SourceDirectory, build_environment, read_spec
from storage.models import Connector

PACKAGE = "airbyte-source-faker"
VERSION = "7.2.1"
CACHE = Path(__file__).resolve().parent.parent / ".cache" / "airbyte"


def faker_executable() -> Path:
    """The cached installation's entry point, built first if needed (one process at a time)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    folder = CACHE / f"{PACKAGE}-{VERSION}"
    done = folder / ".complete"
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            if folder.exists():  # an interrupted build
                import shutil

                shutil.rmtree(folder)
            executable = build_environment(folder, PACKAGE, VERSION)
            done.write_text(json.dumps({"executable": str(executable)}))
    return Path(json.loads(done.read_text())["executable"])


def faker_spec(executable: Path) -> dict:
    cached = executable.parent.parent / ".spec.json"
    if not cached.exists():  # written whole or not at all: test processes may read it meanwhile
        partial = cached.with_name(f".spec.{os.getpid()}.json")
        partial.write_text(json.dumps(read_spec(str(executable), "airbyte:faker")))
        os.replace(partial, cached)
    return json.loads(cached.read_text())


def register_faker(ctx, executable: Path, spec: dict, *, name: str = "faker") -> str:
    """Records the connector as `connbot connectors add --executable` would; its source name."""
    now = datetime.now(UTC)
    with ctx.db.begin() as session:
        row = session.scalars(select(Connector).where(Connector.name == name)).first()
        if row is None:
            row = Connector(name=name, installed_at=now)
            session.add(row)
        row.executable, row.spec, row.updated_at, row.removed_at = str(executable), spec, now, None
    SourceDirectory.changed()
    return f"airbyte:{name}"


def connect_airbyte(
    ctx, source_name: str, config: dict, *, title: str = "", team: str = "T0FAKE001", check=True, sync=True
) -> int:
    """A connection to the connector made as Make a new connection stores one (check, business
    account, vault), then its first account sync (discover + accounts); `check` and `sync` False
    skip running the connector."""
    from engine.account_sync import sync_accounts
    from engine.credentials import record_auth_success
    from sources.config import config_credentials
    from storage.models import Connection

    source = ctx.source(source_name)
    credentials = config_credentials(config, title)
    if check:
        checked = source.check_credentials(credentials)
        assert checked.ok, checked
    business = source.business_account(credentials)
    now = ctx.clock.now()
    with ctx.db.begin() as session:
        connection = Connection(
            team_id=team,
            source=source.name,
            title=f"{source.title} · {business.name}",
            business_account_id=business.id,
            business_account_name=business.name,
            auth_type=source.auth_type,
            credentials=ctx.vault.encrypt(credentials),
            created_by="UADMIN",
            created_at=now,
            last_authorized_at=now,
        )
        record_auth_success(connection, now)
        session.add(connection)
        session.flush()
        cid = connection.id
    if sync:
        result = sync_accounts(ctx, team, cid, trigger="connect")
        assert result.status == "succeeded", result
    return cid


def faker_config(count: int = 300, *, seed: int = 7, always_updated: bool = False, per_slice: int = 100) -> dict:
    """Deterministic (seed), one worker process, a state every `per_slice` users."""
    return {
        "count": count,
        "seed": seed,
        "records_per_slice": per_slice,
        "always_updated": always_updated,
        "parallelism": 1,
    }
