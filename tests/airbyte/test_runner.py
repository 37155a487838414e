"""Connector commands run as subprocesses, against small synthetic connectors: garbage on
stdout, a non-zero exit, a hang, a crash during `check`; the environment and temporary files."""

from __future__ import annotations

import json
import logging
import stat
import sys
import tempfile
from datetime import date
from pathlib import Path

import pytest

from sources.airbyte import AirbyteSource, Timeouts
from sources.airbyte.runner import ConnectorCommand, ConnectorFailed, FailureKind, connector_environment, scrub
from sources.base import CheckStatus, TransientSourceError
from sources.config import config_credentials

SPEC = {
    "connectionSpecification": {
        "title": "Synthetic Source Spec",
        "type": "object",
        "properties": {"token": {"type": "string", "airbyte_secret": True}, "start_date": {"type": "string"}},
    }
}
CATALOG = {
    "streams": [
        {
            "name": "things",
            "json_schema": {"type": "object", "properties": {"id": {"type": "integer"}, "at": {"type": "string"}}},
            "supported_sync_modes": ["full_refresh"],
            "source_defined_primary_key": [["id"]],
        }
    ]
}
TOKEN = "tok-Secret-1234567890"


def connector(tmp_path: Path, body: str, name: str = "source-synthetic") -> str:
    """An executable connector: `body` is Python run with `verb` (the command) and `config`."""
    script = tmp_path / name
    script.write_text(
        f"""#!{sys.executable}
import json, os, sys, time
args = sys.argv[1:]
verb = args[0]
config = json.load(open(args[args.index("--config") + 1])) if "--config" in args else {{}}
def say(message):
    print(json.dumps(message), flush=True)
{body}
"""
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def source(tmp_path: Path, body: str, **timeouts) -> AirbyteSource:
    return AirbyteSource("synthetic", connector(tmp_path, body), SPEC, timeouts=Timeouts(**timeouts))


def read(src: AirbyteSource):
    template = src.catalog_templates(CATALOG)[0]
    credentials = config_credentials({"token": TOKEN}, "Synthetic")
    return list(
        src.read(
            credentials,
            CATALOG,
            account_ids=["x"],
            template=template,
            fields=["id"],
            start=date(2024, 1, 1),
            state=None,
        )
    )


def test_garbage_on_stdout_ends_the_read_with_a_clear_reason(tmp_path, caplog):
    src = source(
        tmp_path,
        'say({"type": "RECORD", "record": {"stream": "things", "data": {"id": 1}}})\nprint("hello " + config["token"], flush=True)\ntime.sleep(30)',
    )
    with pytest.raises(TransientSourceError) as failed:
        read(src)
    assert failed.value.message == (
        "The connector airbyte:synthetic printed something that is not the Airbyte protocol (a line is not JSON) "
        "during `read`."
    )
    assert failed.value.code == "malformed" and not failed.value.retryable
    assert TOKEN not in caplog.text


def test_a_non_zero_exit_ends_the_read_with_the_connectors_last_words_scrubbed(tmp_path):
    body = 'print("Traceback: token " + config["token"] + " rejected", file=sys.stderr)\nsys.exit(1)'
    with pytest.raises(TransientSourceError) as failed:
        read(source(tmp_path, body))
    assert failed.value.message == (
        "The connector airbyte:synthetic exited with status 1 (Traceback: token *** rejected) during `read`."
    )


def test_a_trace_config_error_is_invalid_credentials(tmp_path):
    body = (
        'say({"type": "TRACE", "trace": {"type": "ERROR", "error": {"failure_type": "config_error", '
        '"message": "Token " + config["token"] + " expired"}}})\nsys.exit(1)'
    )
    src = source(tmp_path, body)
    with pytest.raises(Exception) as failed:
        read(src)
    assert (type(failed.value).__name__, failed.value.message) == ("InvalidCredentials", "Token *** expired")
    checked = src.check_credentials(config_credentials({"token": TOKEN}))
    assert (checked.status, checked.reason, checked.code) == (CheckStatus.INVALID, "Token *** expired", "config_error")


def test_a_hang_ends_with_a_timeout(tmp_path):
    hang = source(tmp_path, "time.sleep(60)", check=1.0, read_idle=1.0)
    checked = hang.check_credentials(config_credentials({"token": TOKEN}))
    assert (checked.status, checked.code) == (CheckStatus.TRANSIENT, "timeout")
    assert checked.reason == "The connector airbyte:synthetic did not finish within 1 s during `check`."
    with pytest.raises(TransientSourceError) as failed:
        read(hang)
    assert failed.value.message == "The connector airbyte:synthetic sent nothing for 1 s during `read`."


def test_check_outcomes(tmp_path):
    def check(body: str):
        return source(tmp_path, body).check_credentials(config_credentials({"token": TOKEN}))

    assert check('say({"type": "CONNECTION_STATUS", "connectionStatus": {"status": "SUCCEEDED"}})').ok
    failed = check('say({"type": "CONNECTION_STATUS", "connectionStatus": {"status": "FAILED", "message": "no"}})')
    assert (failed.status, failed.reason) == (CheckStatus.INVALID, "no")
    transient = check(
        'say({"type": "TRACE", "trace": {"type": "ERROR", "error": {"failure_type": "transient_error", '
        '"message": "rate limited"}}})\nsys.exit(1)'
    )
    assert (transient.status, transient.code) == (CheckStatus.TRANSIENT, "exit")
    crashed = check("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
    assert (crashed.status, crashed.reason) == (
        CheckStatus.TRANSIENT,
        "The connector airbyte:synthetic was killed by signal 9 during `check`.",
    )
    silent = check("pass")
    assert (silent.status, silent.code) == (CheckStatus.TRANSIENT, "no_status")


def test_the_connector_gets_no_secret_of_connbots_environment_and_its_files_are_private_and_removed(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-never")
    monkeypatch.setenv("CONNBOT_SECRET_KEYS", "never")
    monkeypatch.setenv("MY_DATABASE_URL", "postgresql://u:p@h/db")
    monkeypatch.setenv("OTHER", "postgres://u:p@h/db")
    monkeypatch.setenv("HARMLESS", "kept")
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    body = (
        'path, catalog = args[args.index("--config") + 1], args[args.index("--catalog") + 1]\n'
        'say({"type": "SPEC", "spec": {"env": sorted(os.environ), "path": path, '
        '"mode": oct(os.stat(path).st_mode & 0o777), "token": json.load(open(path))["token"], '
        '"catalog": oct(os.stat(catalog).st_mode & 0o777), "folder": oct(os.stat(os.path.dirname(catalog)).st_mode & 0o777), '
        '"on_disk": [n for n in os.listdir(".")]}})'
    )
    with ConnectorCommand(
        connector(tmp_path, body), "spec", name="x", config={"token": TOKEN}, catalog={"streams": []}, timeout=30
    ) as command:
        seen = [m for m in command.messages()][0]["spec"]
    assert "HARMLESS" in seen["env"]
    assert not {"SLACK_BOT_TOKEN", "CONNBOT_SECRET_KEYS", "MY_DATABASE_URL", "OTHER"} & set(seen["env"])
    # The configuration (secrets) is a file in memory shared with the connector, never on disk.
    assert seen["path"].startswith("/dev/fd/") and seen["token"] == TOKEN and seen["mode"] == "0o600"
    assert seen["on_disk"] == ["catalog.json"]
    assert (seen["catalog"], seen["folder"]) == ("0o600", "0o700")
    assert list(temp.iterdir()) == []


def test_output_is_read_line_by_line_and_logs_are_bounded_and_scrubbed(tmp_path, caplog):
    body = (
        "for i in range(3000):\n"
        '    say({"type": "LOG", "log": {"level": "WARN", "message": "line " + str(i) + " " + config["token"] + "x" * 5000}})\n'
        'say({"type": "RECORD", "record": {"stream": "things", "data": {"id": 1}}})'
    )
    caplog.set_level(logging.DEBUG, logger="sources.airbyte.runner")
    with ConnectorCommand(
        connector(tmp_path, body), "read", name="x", config={"token": TOKEN}, secrets=[TOKEN], timeout=60
    ) as c:
        messages = [m for m in c.messages() if m]
    assert [m["type"] for m in messages] == ["RECORD"]
    logged = [r for r in caplog.records if r.name == "sources.airbyte.runner"]
    assert len(logged) == 501  # 500 lines, then one saying the rest is not logged
    assert all(len(r.getMessage()) < 2100 for r in logged)
    assert TOKEN not in caplog.text and "line 0 ***x" in caplog.text


def test_scrub_replaces_secrets_also_as_json_escapes_them():
    assert scrub('a "q\\"uote" b', ['q"uote']) == 'a "***" b'
    assert scrub("long-secret and long", ["long-secret", "long"]) == "*** and ***"


def test_environment_keeps_what_is_not_connbots():
    env = connector_environment(
        {"PATH": "/bin", "SLACK_X": "1", "connbot_y": "2", "DATABASE_URL": "x", "PGPASSWORD": "p"}
    )
    assert env == {"PATH": "/bin"}


def test_a_command_that_cannot_start_says_so(tmp_path):
    with pytest.raises(ConnectorFailed) as failed:
        with ConnectorCommand(str(tmp_path / "missing"), "spec", name="x", timeout=5):
            pass
    assert failed.value.kind is FailureKind.START and "could not be started" in failed.value.reason


def test_records_are_batched_with_checkpoints_between_them(tmp_path):
    body = (
        'say({"type": "RECORD", "record": {"stream": "things", "data": {"id": 1, "at": "x"}}})\n'
        'say({"type": "STATE", "state": {"type": "STREAM", "stream": {"stream_descriptor": {"name": "things"}, '
        '"stream_state": {"n": 1}}, "sourceStats": {"recordCount": 1}}})\n'
        'say({"type": "RECORD", "record": {"stream": "other", "data": {"id": 9}}})\n'
        'say({"type": "RECORD", "record": {"stream": "things", "data": {"id": "2"}}})'
    )
    catalog = json.loads(json.dumps(CATALOG))
    catalog["streams"][0]["supported_sync_modes"] = ["full_refresh", "incremental"]
    catalog["streams"][0]["default_cursor_field"] = ["at"]
    src = source(tmp_path, body)
    template = src.catalog_templates(catalog)[0]
    items = list(
        src.read(
            config_credentials({"token": TOKEN}),
            catalog,
            account_ids=[],
            template=template,
            fields=["id"],
            start=date(2024, 1, 1),
            state=None,
        )
    )
    tables = [i for i in items if hasattr(i, "num_rows") and i.num_rows]
    checkpoints = [i for i in items if not hasattr(i, "num_rows")]
    assert [t.to_pylist() for t in tables] == [[{"id": 1, "at": "x"}], [{"id": 2, "at": None}]]
    # The state without the connector's statistics, ready for `read --state`.
    assert checkpoints[0].state == [
        {"type": "STREAM", "stream": {"stream_descriptor": {"name": "things"}, "stream_state": {"n": 1}}}
    ]
