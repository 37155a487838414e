"""The real `airbyte-source-faker` from the package registry, for the Airbyte bridge's tests.

It is installed once, by the installer's own code (engine.connectors.build_environment), into
`.cache/airbyte/` at the repository's root (git-ignored): a fresh clone builds it on first use
(about a minute), later runs reuse it. Tests register it in their database as `airbyte:faker`
the way `connbot connectors add --executable` does, with the spec read once per session.
"""

from __future__ import annotations

import fcntl
import json
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
    if not cached.exists():
        cached.write_text(json.dumps(read_spec(str(executable), "airbyte:faker")))
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
