"""Airbyte connectors as installed plugins, and the directory of every data source.

`add` installs a connector's package into a virtual environment of its own under
`CONNBOT_DATA_DIR/connectors/<name>/` (connectors pin their own dependencies, which would clash
with connbot's and with each other's), runs its `spec` to prove that it works, and records it in
the database, so that every process of the deployment sees it as the data source
`airbyte:<name>`. `add --executable` registers one installed otherwise (a container entry point,
an air-gapped host). `upgrade` installs anew (or, for an executable, reads its spec again) and
switches over only once the new one answered `spec`; `remove` forgets it and deletes its
environment, while the connections to it stay, saying that it is missing and how to add it back.

`SourceDirectory` is what `Context.source` and `Context.sources` ask: the built-in and plugin
sources of the `connbot.sources` entry points, and the connectors recorded in the database
(re-read at most every REFRESH_SECONDS, and at once after a change made by this process).
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import Conflict, ConnbotError, InvalidInput, NotFound
from sources.airbyte import PREFIX, AirbyteSource, Timeouts, source_name
from sources.airbyte.protocol import MessageType
from sources.airbyte.runner import ConnectorCommand, ConnectorFailed, connector_environment
from sources.base import Source
from sources.registry import UnknownSource, installed_sources
from storage.db import Database
from storage.models import AuditEvent, Connector

log = logging.getLogger(__name__)

REFRESH_SECONDS = 2.0
PIP_TIMEOUT_SECONDS = 1800.0
FOLDER = "connectors"
RETIRED = ".retired"  # in an environment a connector no longer uses: when it stopped using it

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,47}")
# A package name (PEP 508) with an optional exact version: what `add` takes.
_REQUIREMENT = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:==\s*([A-Za-z0-9][A-Za-z0-9.+!_-]*))?\s*")
_URL_USER = re.compile(r"://[^/@\s]+@")


class MissingConnector(UnknownSource):
    """A connection's connector was removed (or never installed here); says how to add it."""

    def __init__(self, name: str, package: str | None = None, version: str | None = None):
        super().__init__(name)
        self.package = package
        self.version = version
        connector = name.removeprefix(PREFIX)
        if package:
            how = f"connbot connectors add {package}{f'=={version}' if version else ''}"
        else:
            how = f"connbot connectors add --executable PATH --name {connector}"
        self.how = how
        self.message = f"The connector {name} is not installed. An administrator adds it back with `{how}`."
        self.args = (self.message,)


@dataclass(frozen=True)
class InstalledConnector:
    name: str
    source: str
    title: str
    package: str | None
    version: str | None
    executable: str
    installed_at: datetime
    updated_at: datetime


# -- names ------------------------------------------------------------------------------------


def parse_requirement(text: str) -> tuple[str, str | None]:
    """(package, version) of `airbyte-source-x` or `airbyte-source-x==1.2.3`."""
    match = _REQUIREMENT.fullmatch(text or "")
    if not match:
        raise InvalidInput(
            f"{text!r} is not a package name with an optional exact version, such as airbyte-source-faker==7.2.1."
        )
    return match[1], match[2]


def connector_name(package_or_executable: str) -> str:
    """The connector's name from its package (airbyte-source-faker → faker) or executable."""
    base = Path(package_or_executable).name.lower().replace("_", "-").replace(".", "-")
    for prefix in ("airbyte-source-", "source-"):
        if base.startswith(prefix) and len(base) > len(prefix):
            base = base[len(prefix) :]
            break
    return check_name(base)


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise InvalidInput(
            f"{name!r} cannot name a connector: use lowercase letters, digits, - and _ (at most 48), e.g. --name faker."
        )
    return name


# -- installing ------------------------------------------------------------------------------


def build_environment(folder: Path, package: str, version: str | None, *, python: str | None = None) -> Path:
    """A new virtual environment at `folder` with the package installed; its executable.
    Connector packages are installed as pip installs them (PIP_* settings apply, e.g. an
    offline PIP_FIND_LINKS). Raises ConnbotError saying what failed."""
    if folder.exists():
        raise Conflict(f"{folder} already exists.")
    folder.parent.mkdir(parents=True, exist_ok=True)
    requirement = f"{package}=={version}" if version else package
    env = {**connector_environment(), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    _run([python or sys.executable, "-m", "venv", str(folder)], "create a virtual environment", env, 300.0)
    bin_dir = folder / "bin"
    _run(
        [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", requirement],
        f"install {requirement}",
        env,
        PIP_TIMEOUT_SECONDS,
    )
    return bin_dir / _entry_point(bin_dir / "python", package)


def _run(command: list[str], what: str, env: Mapping[str, str], timeout: float) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=dict(env), timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ConnbotError(f"Could not {what}: it took longer than {timeout:.0f} s.") from None
    except OSError as error:
        raise ConnbotError(f"Could not {what}: {error.strerror}.") from None
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip() and "WARNING" not in line]
        said = _URL_USER.sub("://***@", " ".join(lines[-3:]))[:600]
        raise ConnbotError(f"Could not {what}{f': {said}' if said else ''}.")


def _entry_point(python: Path, package: str) -> str:
    """The package's console script: the one named after the connector, else its only one."""
    script = (
        "import importlib.metadata as m, json, sys; d = m.distribution(sys.argv[1]); "
        "print(json.dumps([d.version, [e.name for e in d.entry_points if e.group == 'console_scripts']]))"
    )
    done = subprocess.run([str(python), "-c", script, package], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise ConnbotError(f"Installed {package}, but could not read its entry points.")
    scripts: list[str]
    _, scripts = json.loads(done.stdout)
    wanted = f"source-{connector_name(package)}"
    if wanted in scripts:
        return wanted
    sources = [s for s in scripts if s.startswith("source-")]
    if len(sources) == 1:
        return sources[0]
    if len(scripts) == 1:
        return scripts[0]
    raise ConnbotError(
        f"{package} installs no single connector command ({', '.join(scripts) or 'none'}); "
        "register the right one with --executable."
    )


def _package_version(executable: Path, package: str) -> str | None:
    python = executable.parent / "python"
    if not python.exists():
        return None
    done = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))", package],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.stdout.strip() or None if done.returncode == 0 else None


def read_spec(executable: str, name: str, timeout: float = Timeouts.spec) -> dict[str, Any]:
    """The connector's SPEC (`spec`): that it answers proves it runs. Raises ConnbotError."""
    spec = None
    try:
        with ConnectorCommand(executable, "spec", name=name, timeout=timeout) as command:
            for message in command.messages():
                if message is not None and message["type"] == MessageType.SPEC:
                    spec = message.get("spec")
    except ConnectorFailed as failed:
        raise ConnbotError(failed.reason) from None
    if not isinstance(spec, dict) or not isinstance(spec.get("connectionSpecification"), dict):
        raise ConnbotError(f"The connector {name} answered `spec` without a connectionSpecification.")
    return spec


def _audit(session: Session, now: datetime, action: str, **details: str | None) -> None:
    """Connectors belong to the deployment, not to one team: their events have team `*`."""
    try:
        who = getpass.getuser()
    except Exception:  # no user name (a container without one)
        who = "unknown"
    session.add(
        AuditEvent(team_id="*", at=now, user_id=f"cli:{who}"[:32], action=action, outcome="ok", details=details)
    )


class Connectors:
    """Installing, listing, upgrading and removing connectors (the `connbot connectors` CLI)."""

    def __init__(self, db: Database, data_dir: Path, clock: Callable[[], datetime]):
        self.db = db
        self.root = Path(data_dir).resolve() / FOLDER
        self.now = clock

    def add(self, requirement: str, *, name: str | None = None, python: str | None = None) -> InstalledConnector:
        package, version = parse_requirement(requirement)
        name = check_name(name) if name else connector_name(package)
        self._refuse_live(name)
        folder = self.root / name / f"{version or 'latest'}-{uuid.uuid4().hex[:8]}"
        try:
            executable = build_environment(folder, package, version, python=python)
            spec = read_spec(str(executable), source_name(name))
            version = _package_version(executable, package) or version
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return self._record(name, package, version, str(executable), spec, "connector.add")

    def register(self, executable: str, *, name: str | None = None) -> InstalledConnector:
        path = Path(executable).expanduser()
        if not path.is_file() or not os.access(path, os.X_OK):
            raise InvalidInput(f"{executable} is not an executable file.")
        path = path.resolve()
        name = check_name(name) if name else connector_name(path.name)
        self._refuse_live(name)
        spec = read_spec(str(path), source_name(name))
        return self._record(name, None, None, str(path), spec, "connector.add")

    def _refuse_live(self, name: str) -> None:
        with self.db.read() as session:
            found = session.scalars(select(Connector).where(Connector.name == name)).first()
        if found is not None and found.removed_at is None:
            raise Conflict(
                f"A connector named {name} is already installed ({_describe(found)}); "
                f"`connbot connectors upgrade {name}` replaces it, or choose another --name."
            )

    def _record(
        self, name: str, package: str | None, version: str | None, executable: str, spec: dict[str, Any], action: str
    ) -> InstalledConnector:
        with self.db.begin() as session:
            now = self.now()
            row = session.scalars(select(Connector).where(Connector.name == name).with_for_update()).first()
            old_executable = row.executable if row is not None and row.removed_at is None else None
            if row is None:
                row = Connector(name=name, installed_at=now)
                session.add(row)
            elif row.removed_at is not None:
                row.installed_at = now
            row.package, row.version, row.executable, row.spec = package, version, executable, spec
            row.updated_at, row.removed_at = now, None
            _audit(session, now, action, connector=name, package=package, version=version)
            session.flush()
            info = _info(row)
        if old_executable and old_executable != executable:
            self._retire(old_executable)
        self._sweep()
        SourceDirectory.changed()
        log.info("connector %s: %s", name, _describe(row))
        return info

    def list(self) -> list[InstalledConnector]:
        with self.db.read() as session:
            rows = session.scalars(select(Connector).where(Connector.removed_at.is_(None)).order_by(Connector.name))
            return [_info(row) for row in rows]

    def upgrade(self, name: str, version: str | None = None) -> InstalledConnector:
        """A package-installed connector: its newest (or the given) version in a new environment,
        switched to once its `spec` answers; the old environment is retired (see `_retire`). One
        registered with --executable: its spec read again (the executable was updated in place)."""
        current = self._get(name)
        if current.package is None:
            if version:
                raise InvalidInput(f"{name} was registered with --executable: update it in place, then upgrade.")
            spec = read_spec(current.executable, source_name(name))
            return self._record(name, None, None, current.executable, spec, "connector.upgrade")
        if version:
            parse_requirement(f"{current.package}=={version}")
        folder = self.root / name / f"{version or 'latest'}-{uuid.uuid4().hex[:8]}"
        try:
            executable = build_environment(folder, current.package, version)
            spec = read_spec(str(executable), source_name(name))
            version = _package_version(executable, current.package) or version
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return self._record(name, current.package, version, str(executable), spec, "connector.upgrade")

    def remove(self, name: str) -> InstalledConnector:
        """Forgets the connector; its connections stay and say how to add it back."""
        with self.db.begin() as session:
            row = session.scalars(select(Connector).where(Connector.name == name).with_for_update()).first()
            if row is None or row.removed_at is not None:
                raise NotFound(f"No connector named {name} is installed; `connbot connectors list` shows them.")
            now = self.now()
            row.removed_at = row.updated_at = now
            _audit(session, now, "connector.remove", connector=name, package=row.package, version=row.version)
            info = _info(row)
        self._retire(info.executable)
        self._sweep()
        SourceDirectory.changed()
        return info

    def _get(self, name: str) -> InstalledConnector:
        with self.db.read() as session:
            row = session.scalars(select(Connector).where(Connector.name == name)).first()
            if row is None or row.removed_at is not None:
                raise NotFound(f"No connector named {name} is installed; `connbot connectors list` shows them.")
            return _info(row)

    def _retire(self, executable: str) -> None:
        """An environment this installer made (never an --executable's files) that the connector
        no longer uses. A run started before may still be reading with it, in any process of the
        deployment, for as long as a read may last: it is marked retired and deleted by a later
        add, upgrade or remove once that time has passed."""
        folder = Path(executable).parent.parent
        if self.root in folder.parents and folder.parent.parent == self.root and folder.is_dir():
            (folder / RETIRED).write_text(self.now().isoformat())

    def _sweep(self) -> None:
        """Deletes the retired environments no run can still be using."""
        longest = timeouts_from_env().read
        now = self.now()  # once: deleting one environment can take a while
        for marker in sorted(self.root.glob(f"*/*/{RETIRED}")):
            try:
                retired_at = datetime.fromisoformat(marker.read_text())
            except (OSError, ValueError):
                continue  # being written, or not ours to judge
            if (now - retired_at).total_seconds() >= longest:
                shutil.rmtree(marker.parent, ignore_errors=True)
                log.info("deleted the retired environment %s", marker.parent)


def _describe(row: Connector) -> str:
    what = f"{row.package}=={row.version}" if row.package else "registered executable"
    return f"{what}, {row.executable}"


def _info(row: Connector) -> InstalledConnector:
    return InstalledConnector(
        name=row.name,
        source=source_name(row.name),
        title=AirbyteSource(row.name, row.executable, row.spec).title,
        package=row.package,
        version=row.version,
        executable=row.executable,
        installed_at=row.installed_at,
        updated_at=row.updated_at,
    )


# -- the directory of sources -------------------------------------------------------------------


def timeouts_from_env(environ: Mapping[str, str] | None = None) -> Timeouts:
    """`CONNBOT_AIRBYTE_TIMEOUT_<COMMAND>` (SPEC, CHECK, DISCOVER, READ, READ_IDLE), in seconds."""
    from core.errors import ConfigError

    environ = os.environ if environ is None else environ
    values = {}
    for field in Timeouts.__dataclass_fields__:
        name = f"CONNBOT_AIRBYTE_TIMEOUT_{field.upper()}"
        if raw := (environ.get(name) or "").strip():
            try:
                values[field] = float(raw)
                if values[field] <= 0:
                    raise ValueError
            except ValueError:
                raise ConfigError(f"{name}: expected a number of seconds above 0, got {raw!r}") from None
    return Timeouts(**values)


class _ConnectorRow(NamedTuple):
    """What the directory keeps of a connector's row."""

    executable: str
    spec: dict[str, Any]
    package: str | None
    version: str | None
    removed_at: datetime | None
    updated_at: datetime


class SourceDirectory:
    """Every data source by name: the entry-point sources, and the connectors of the database."""

    _generation = 0  # bumped by a change made in this process, so every directory re-reads at once

    def __init__(self, db: Database, *, timeouts: Timeouts | None = None):
        self.db = db
        self.timeouts = timeouts or timeouts_from_env()
        self._lock = threading.Lock()
        self._read_at = float("-inf")
        self._read_generation = -1
        self._rows: dict[str, _ConnectorRow] = {}  # by name
        self._sources: dict[tuple[str, str, datetime], AirbyteSource] = {}  # by name, executable, updated_at

    @classmethod
    def changed(cls) -> None:
        cls._generation += 1

    def _connectors(self) -> dict[str, _ConnectorRow]:
        with self._lock:
            stale = time.monotonic() - self._read_at > REFRESH_SECONDS or self._read_generation != self._generation
            if stale:
                generation = SourceDirectory._generation
                try:
                    with self.db.read() as session:
                        rows = session.execute(
                            select(
                                Connector.name,
                                Connector.executable,
                                Connector.spec,
                                Connector.package,
                                Connector.version,
                                Connector.removed_at,
                                Connector.updated_at,
                            )
                        ).all()
                except Exception:  # a schema without the table (an old database): no connectors
                    if self._read_generation >= 0:
                        raise
                    log.debug("connectors not readable", exc_info=True)
                    rows = []
                self._rows = {
                    r.name: _ConnectorRow(r.executable, r.spec, r.package, r.version, r.removed_at, r.updated_at)
                    for r in rows
                }
                self._read_at, self._read_generation = time.monotonic(), generation
            return self._rows

    def _source(self, name: str, row: _ConnectorRow) -> AirbyteSource:
        key = (name, row.executable, row.updated_at)
        source = self._sources.get(key)
        if source is None:
            source = AirbyteSource(name, row.executable, row.spec, timeouts=self.timeouts)
            self._sources = {k: v for k, v in self._sources.items() if k[0] != name}
            self._sources[key] = source
        return source

    def get(self, name: str) -> Source:
        if not name.startswith(PREFIX):
            try:
                return installed_sources()[name]
            except KeyError:
                raise UnknownSource(name) from None
        connector = name[len(PREFIX) :]
        row = self._connectors().get(connector)
        if row is None:
            raise MissingConnector(name)
        if row.removed_at is not None:
            raise MissingConnector(name, row.package, row.version)
        return self._source(connector, row)

    def all(self) -> dict[str, Source]:
        found: dict[str, Source] = dict(installed_sources())
        for connector, row in sorted(self._connectors().items()):
            if row.removed_at is None:
                found[source_name(connector)] = self._source(connector, row)
        return found
