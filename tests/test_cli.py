"""The `connbot` command, run as a person would: a subprocess with its own environment."""

import json
import os
import socket
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

CONNBOT = str(Path(sys.executable).with_name("connbot"))


def run(args, cwd, **env):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CONNBOT_"))}
    return subprocess.run([CONNBOT, *args], cwd=cwd, env={**clean, **env}, capture_output=True, text=True, timeout=120)


def test_help_everywhere(tmp_path):
    for args in (["--help"], ["db", "--help"], ["keys", "--help"], ["demo", "seed", "--help"], ["audit", "--help"]):
        result = run(args, tmp_path)
        assert result.returncode == 0 and "usage: connbot" in result.stdout


def test_keys_generate_prints_a_fernet_key(tmp_path):
    result = run(["keys", "generate"], tmp_path)
    Fernet(result.stdout.strip())  # raises if not a key


def test_sources_list_shows_the_demo_source_from_its_entry_point(tmp_path):
    result = run(["sources", "list"], tmp_path)
    assert result.returncode == 0 and result.stdout.split()[0] == "demo"


def test_bad_setting_is_one_clear_line_not_a_traceback(tmp_path):
    result = run(["db", "upgrade"], tmp_path, CONNBOT_DATABASE_URL="nonsense")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "connbot: CONNBOT_DATABASE_URL: expected a database URL such as sqlite:///./data/connbot.db or postgresql://user@host:5432/connbot"
    ]


def test_seed_then_run_without_slack_says_how_to_set_up(tmp_path):
    seeded = run(["demo", "seed", "--team", "T0DEMO"], tmp_path)
    assert seeded.returncode == 0, seeded.stderr
    assert "credentials error" in seeded.stdout and "no accounts" in seeded.stdout
    assert (tmp_path / "data" / "secret.key").exists()
    again = run(["demo", "seed", "--team", "T0DEMO"], tmp_path)
    assert "nothing seeded" in again.stdout
    started = run(["run"], tmp_path)
    assert started.returncode == 2
    assert "manifest.yml" in started.stderr and "SLACK_BOT_TOKEN" in started.stderr
    assert "Traceback" not in started.stderr
    audit = run(["audit", "--connection", "1"], tmp_path)
    assert "connection.create" in audit.stdout


def test_the_log_in_json_is_one_object_per_line(tmp_path):
    seeded = run(["demo", "seed", "--team", "T0DEMO"], tmp_path, CONNBOT_LOG_FORMAT="json")
    assert seeded.returncode == 0, seeded.stderr
    lines = [json.loads(line) for line in seeded.stderr.splitlines()]
    created = next(line for line in lines if "Created a new credentials key" in line["message"])
    assert (created["level"], created["logger"]) == ("warning", "storage.vault")
    assert datetime.fromisoformat(created["time"]).utcoffset() == timedelta(0)


def test_a_metrics_port_in_use_stops_the_worker_with_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = run(["worker", "--host", "127.0.0.1", "--metrics-port", str(port)], tmp_path)
    assert started.returncode == 2
    assert (
        started.stderr.splitlines()[-1]
        == f"connbot: --metrics-port {port}: cannot listen on 127.0.0.1:{port} (Address already in use)"
    )
    assert "scheduler" not in started.stderr  # stopped before anything ran


def test_keys_rotate_and_wrong_key_refuses_to_start(tmp_path):
    run(["demo", "seed", "--team", "T0DEMO"], tmp_path)
    old = (tmp_path / "data" / "secret.key").read_text().strip()
    new = Fernet.generate_key().decode()
    rotated = run(["keys", "rotate"], tmp_path, CONNBOT_SECRET_KEYS=f"{new},{old}")
    assert rotated.returncode == 0 and "4 connection(s)" in rotated.stdout
    ok = run(["audit"], tmp_path, CONNBOT_SECRET_KEYS=new)
    assert ok.returncode == 0
    wrong = run(["audit"], tmp_path, CONNBOT_SECRET_KEYS=old)
    assert wrong.returncode == 2 and "CONNBOT_SECRET_KEYS" in wrong.stderr and "Traceback" not in wrong.stderr


@pytest.mark.postgres
def test_postgres_needs_an_explicit_upgrade(tmp_path, fresh_pg_url):
    url = fresh_pg_url.replace("+psycopg", "")
    refused = run(["audit"], tmp_path, CONNBOT_DATABASE_URL=url)
    assert refused.returncode == 2 and "connbot db upgrade" in refused.stderr
    upgraded = run(["db", "upgrade"], tmp_path, CONNBOT_DATABASE_URL=url)
    assert upgraded.returncode == 0 and "revision" in upgraded.stdout
    assert run(["audit"], tmp_path, CONNBOT_DATABASE_URL=url).returncode == 0
