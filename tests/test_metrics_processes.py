"""/metrics of real processes: `connbot serve` on its HTTP port, `connbot worker` on
--metrics-port, one endpoint each, sharing a database: each counts its own work, and exactly one
of them says it leads the scheduler."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fakeslack import AppDriver, FakeSlack

CONNBOT = str(Path(sys.executable).with_name("connbot"))
SECRET = "processes-signing-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port: int) -> dict[tuple[str, frozenset], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def eventually(read, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            if (value := read()) is not None:
                return value
        except OSError:  # not listening yet
            pass
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.1)


def _leaders(*ports: int) -> int | None:
    """How many of the processes lead, once each says (its /metrics is up before its scheduler)."""
    said = [scrape(port).get(("connbot_scheduler_leader", frozenset())) for port in ports]
    return None if None in said or not sum(said) else int(sum(said))


@pytest.mark.slow
def test_serve_and_worker_each_serve_their_own_metrics_and_one_leads(tmp_path):
    fake = FakeSlack(team_id="T0PROC", bot_token="xoxb-processes")
    fake.add_user("UOPS", "otto")
    fake.add_channel("C0DATA", "data-team")
    serve_port, worker_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "CONNBOT_"))}
    env.update(CONNBOT_DATA_DIR=str(tmp_path), CONNBOT_DATABASE_URL=f"sqlite:///{tmp_path}/connbot.db")
    with fake:
        serve_env = {**env, **fake.env(), "SLACK_SIGNING_SECRET": SECRET}
        processes = [
            subprocess.Popen(
                [CONNBOT, "serve", "--host", "127.0.0.1", "--port", str(serve_port)],
                env=serve_env,
                stderr=(tmp_path / "serve.log").open("w"),
            )
        ]
        try:
            eventually(lambda: scrape(serve_port))  # up (and the embedded database created)
            processes.append(
                subprocess.Popen(
                    [CONNBOT, "worker", "--host", "127.0.0.1", "--metrics-port", str(worker_port)],
                    env=env,
                    stderr=(tmp_path / "worker.log").open("w"),
                )
            )
            eventually(lambda: scrape(worker_port))
            driver = AppDriver(fake, f"http://127.0.0.1:{serve_port}/slack/events", signing_secret=SECRET)
            driver.user("UOPS").command("/connections", "", channel="C0DATA")

            served = scrape(serve_port)
            assert served[("connbot_slack_requests_total", frozenset({("kind", "command"), ("outcome", "ok")}))] == 1
            assert ("connbot_slack_requests_total", frozenset({("kind", "command"), ("outcome", "ok")})) not in scrape(
                worker_port
            )  # each process counts its own work
            leaders = eventually(lambda: _leaders(serve_port, worker_port))
            assert leaders == 1
            for port in (serve_port, worker_port):
                assert scrape(port)[("connbot_database_up", frozenset())] == 1
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=30)
        fake.assert_clean()
