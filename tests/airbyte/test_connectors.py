"""`connbot connectors add / list / upgrade / remove`, run as a person would (a subprocess with
its own environment), and what every process then sees."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine import connectors
from engine.connectors import RETIRED, Connectors, MissingConnector, SourceDirectory
from storage.db import Database

CONNBOT = str(Path(sys.executable).with_name("connbot"))


def run(args, cwd: Path, **env):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CONNBOT_"))}
    return subprocess.run(
        [CONNBOT, *args],
        cwd=cwd,
        env={**clean, "CONNBOT_DATA_DIR": str(cwd / "data"), **env},
        capture_output=True,
        text=True,
        timeout=1200,
    )


def test_add_an_executable_list_upgrade_remove(tmp_path, faker_installed):
    executable, _ = faker_installed
    added = run(["connectors", "add", "--executable", str(executable)], tmp_path)
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == f"Added airbyte:faker (Faker): an executable at {executable}"
    listed = run(["connectors", "list"], tmp_path)
    assert listed.stdout.split()[:3] == ["airbyte:faker", "Faker", "executable"]
    sources = run(["sources", "list"], tmp_path).stdout.splitlines()
    assert [line.split()[0] for line in sources] == ["demo", "facebook_ads", "google_ads", "airbyte:faker"]

    again = run(["connectors", "add", "--executable", str(executable)], tmp_path)
    assert again.returncode == 1
    assert "A connector named faker is already installed" in again.stderr and "Traceback" not in again.stderr

    upgraded = run(["connectors", "upgrade", "faker"], tmp_path)  # an executable: its spec read again
    assert upgraded.returncode == 0 and upgraded.stdout.startswith("Upgraded airbyte:faker"), upgraded.stderr

    removed = run(["connectors", "remove", "faker"], tmp_path)
    assert removed.returncode == 0, removed.stderr
    assert executable.exists()  # never deletes what it did not install
    assert "No connectors installed" in run(["connectors", "list"], tmp_path).stdout
    assert "airbyte:faker" not in run(["sources", "list"], tmp_path).stdout
    gone = run(["connectors", "remove", "faker"], tmp_path)
    assert gone.returncode == 1 and "No connector named faker is installed" in gone.stderr

    db = Database(f"sqlite:///{tmp_path}/data/connbot.db")
    with pytest.raises(MissingConnector) as missing:
        SourceDirectory(db).get("airbyte:faker")
    assert missing.value.message == (
        "The connector airbyte:faker is not installed. An administrator adds it back with "
        "`connbot connectors add --executable PATH --name faker`."
    )
    audit = run(["audit"], tmp_path).stdout
    assert "connector.remove" in audit and "connector.add" in audit and "connector.upgrade" in audit
    db.dispose()


def test_bad_input_is_one_clear_line(tmp_path):
    cases = {
        ("connectors", "add", "not a package!"): "is not a package name with an optional exact version",
        ("connectors", "add", "--executable", str(tmp_path)): "is not an executable file",
        ("connectors", "add"): "give a package (airbyte-source-faker==7.2.1) or --executable PATH",
        ("connectors", "upgrade", "nothing"): "No connector named nothing is installed",
    }
    for args, said in cases.items():
        result = run(list(args), tmp_path)
        assert result.returncode != 0 and said in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_a_connector_that_does_not_answer_spec_is_not_added(tmp_path):
    broken = tmp_path / "source-broken"
    broken.write_text("#!/bin/sh\necho 'not the protocol'\n")
    broken.chmod(0o755)
    result = run(["connectors", "add", "--executable", str(broken)], tmp_path)
    assert result.returncode == 1
    assert "printed something that is not the Airbyte protocol" in result.stderr
    assert "No connectors installed" in run(["connectors", "list"], tmp_path).stdout


@pytest.mark.slow  # installs from the package registry twice (about a minute each)
def test_add_a_package_then_upgrade_it(tmp_path):
    added = run(["connectors", "add", "airbyte-source-faker==7.2.0"], tmp_path)
    assert added.returncode == 0, added.stderr
    assert "Added airbyte:faker (Faker): airbyte-source-faker==7.2.0 at" in added.stdout
    folder = tmp_path / "data" / "connectors" / "faker"
    first = sorted(p.name for p in folder.iterdir())
    assert len(first) == 1 and first[0].startswith("7.2.0-")
    upgraded = run(["connectors", "upgrade", "faker", "7.2.1"], tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "airbyte-source-faker==7.2.1" in upgraded.stdout
    # The old environment is kept, retired, while a run started before may still read with it.
    assert sorted(p.name[:6] for p in folder.iterdir()) == ["7.2.0-", "7.2.1-"]
    assert [p.parent.name[:6] for p in folder.glob(f"*/{RETIRED}")] == ["7.2.0-"]
    time.sleep(1.1)
    run(["connectors", "remove", "faker"], tmp_path, CONNBOT_AIRBYTE_TIMEOUT_READ="1")  # reads last 1 s at most
    assert [p.name[:6] for p in folder.iterdir()] == ["7.2.1-"]  # retired just now


def test_an_upgraded_or_removed_environment_is_kept_while_a_run_may_still_read_with_it(tmp_path, monkeypatch):
    """A run started before an upgrade goes on with the environment it started with, in any
    process: that environment is deleted once no read can last that long any more."""
    built: list[Path] = []

    def build(folder: Path, package: str, version: str | None, *, python: str | None = None) -> Path:
        executable = folder / "bin" / "source-faker"
        executable.parent.mkdir(parents=True)
        executable.write_text("#!/bin/sh\n")
        built.append(folder)
        return executable

    monkeypatch.setattr(connectors, "build_environment", build)
    monkeypatch.setattr(connectors, "read_spec", lambda executable, name, timeout=0: {"connectionSpecification": {}})
    monkeypatch.setattr(connectors, "_package_version", lambda executable, package: None)
    monkeypatch.setenv("CONNBOT_AIRBYTE_TIMEOUT_READ", "3600")
    now = datetime(2026, 12, 1, tzinfo=UTC)
    db = Database(f"sqlite:///{tmp_path}/connbot.db")
    db.upgrade()
    installer = Connectors(db, tmp_path / "data", lambda: now)

    installer.add("airbyte-source-faker==7.2.0")
    installer.upgrade("faker", "7.2.1")
    assert all(folder.is_dir() for folder in built)  # the first one still serves runs under way
    assert (built[0] / RETIRED).exists() and not (built[1] / RETIRED).exists()

    now += timedelta(minutes=59)
    installer.upgrade("faker", "7.2.2")
    assert built[0].is_dir()  # a read may last an hour: not yet

    now += timedelta(minutes=2)
    removing = connectors.shutil.rmtree

    def slow_rmtree(path, **kwargs):  # deleting a large environment takes a while: judged before it
        nonlocal now
        removing(path, **kwargs)
        now += timedelta(hours=2)

    monkeypatch.setattr(connectors.shutil, "rmtree", slow_rmtree)
    installer.remove("faker")
    assert [folder.is_dir() for folder in built] == [False, True, True]  # retired 61, 2 and 0 minutes ago
    db.dispose()
