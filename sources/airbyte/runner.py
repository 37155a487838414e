"""Running one command of a connector (`spec`, `check`, `discover`, `read`) as a subprocess.

Safety, whatever the connector does:
- its configuration (secrets) is a file in memory (Linux's memfd, mode 0600) that only the
  connector is handed, as `--config /dev/fd/N`: nothing on disk, gone with the two processes
  even if connbot is killed (elsewhere, a file like the catalog's); its catalog and state are
  files of mode 0600 in a private temporary folder, removed when the command ends;
- its environment is ours without connbot's own secrets (`SLACK_*`, `CONNBOT_*`, database URLs);
- stdout is read as it comes, line by line (a chunk and a partial line in memory, never the
  whole output), stderr alongside it so that neither pipe fills up and blocks the connector;
- LOG messages and stderr are logged, each line cut to LOG_LINE_CHARS and at most
  LOG_LINES_PER_COMMAND of them, with every secret of the configuration replaced by `***`;
- a line that is not an Airbyte message, a non-zero exit or a command that outlives its
  timeout (or, for `read`, stays silent for longer than its idle timeout) ends the command with
  `ConnectorFailed`, whose reason says which and is scrubbed as well;
- closing the command (the reader stopped early: a deleted order) ends the connector's whole
  process group at once: SIGTERM, then SIGKILL after KILL_GRACE_SECONDS.
"""

from __future__ import annotations

import json
import logging
import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any

from sources.airbyte.protocol import MalformedMessage, MessageType, parse_message, trace_error

log = logging.getLogger(__name__)

LOG_LINE_CHARS = 2000
LOG_LINES_PER_COMMAND = 500
REASON_CHARS = 500
MAX_LINE_BYTES = 64 * 1024 * 1024  # a record larger than this is not a record
KILL_GRACE_SECONDS = 0.5
MALFORMED_GRACE_SECONDS = 1.0  # after a bad line, how long a dying connector has to exit
READ_CHUNK = 1 << 16

# Variables never handed to a connector: connbot's own settings and secrets, and database URLs.
_DROPPED_PREFIXES = ("SLACK_", "CONNBOT_")
_DROPPED_NAMES = re.compile(r"(^|_)(DATABASE_URL|DB_URL)$|^PGPASSWORD$|^PGPASSFILE$", re.I)
_DATABASE_URL = re.compile(
    r"^\s*(postgres(ql)?|mysql|mariadb|sqlite|mssql|oracle|redis|rediss|mongodb(\+srv)?|duckdb)(\+\w+)?://", re.I
)


class FailureKind(StrEnum):
    EXIT = "exit"  # a non-zero exit status (a crash, an uncaught error)
    TIMEOUT = "timeout"  # it outlived its timeout, or stayed silent too long during a read
    MALFORMED = "malformed"  # it printed something that is not the protocol
    START = "start"  # it could not be started at all


class ConnectorFailed(Exception):
    """A connector command that did not end well. `reason` is safe to show: it names what
    happened and holds no secret of the configuration."""

    def __init__(self, kind: FailureKind, reason: str):
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


def connector_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    environ = os.environ if environ is None else environ
    return {
        name: value
        for name, value in environ.items()
        if not name.upper().startswith(_DROPPED_PREFIXES)
        and not _DROPPED_NAMES.search(name)
        and not _DATABASE_URL.match(value)
    }


def scrub(text: str, secrets: Sequence[str]) -> str:
    """`text` with every secret (longest first, also as JSON would escape it) replaced by ***."""
    for secret in secrets:
        if not secret:
            continue
        text = text.replace(secret, "***")
        escaped = json.dumps(secret)[1:-1]
        if escaped != secret:
            text = text.replace(escaped, "***")
    return text


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ConnectorCommand:
    """One command of one connector. Use as a context manager; iterate `messages()`.

    `executable` is the connector's entry point; `name` names it in logs and reasons.
    `timeout` bounds the whole command; `idle_timeout` (for `read`) the silence between two
    messages. `messages()` yields None after `tick` seconds without a message, so that its reader
    can look up whether to stop.
    """

    def __init__(
        self,
        executable: str,
        verb: str,
        *,
        name: str,
        config: Mapping[str, Any] | None = None,
        catalog: Mapping[str, Any] | None = None,
        state: Any = None,
        secrets: Sequence[str] = (),
        timeout: float,
        idle_timeout: float | None = None,
        tick: float | None = None,
    ):
        self.executable = executable
        self.verb = verb
        self.name = name
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self.timeout = timeout
        self.idle_timeout = idle_timeout
        self.tick = tick
        self._inputs = {"config": config, "catalog": catalog, "state": state}
        self._folder: str | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._logged = 0
        self._stderr_tail: list[str] = []
        self.last_error: str = ""  # the last error the connector reported (TRACE, ERROR/FATAL log)

    # -- life cycle ---------------------------------------------------------------------------

    def __enter__(self) -> ConnectorCommand:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        self._folder = tempfile.mkdtemp(prefix="connbot-airbyte-")  # mode 0700: ours alone
        arguments = [self.executable, self.verb]
        memory_files: list[int] = []
        try:
            for key, value in self._inputs.items():
                if value is None:
                    continue
                if key == "config" and hasattr(os, "memfd_create"):
                    # The configuration holds secrets: a file in memory, shared with the connector
                    # only, is gone with the two processes, even if connbot is killed.
                    descriptor = os.memfd_create("connbot-config", 0)
                    memory_files.append(descriptor)
                    os.fchmod(descriptor, 0o600)
                    os.write(descriptor, json.dumps(value).encode())
                    path = f"/dev/fd/{descriptor}"  # opened afresh at its start, as often as read
                else:
                    path = str(Path(self._folder) / f"{key}.json")
                    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                    with os.fdopen(descriptor, "w") as file:
                        json.dump(value, file)
                arguments += [f"--{key}", path]
            try:
                self._process = subprocess.Popen(
                    arguments,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    env=connector_environment(),
                    cwd=self._folder,
                    pass_fds=memory_files,
                    start_new_session=True,  # its own process group, so that close() ends its children too
                )
            except OSError as error:
                raise ConnectorFailed(
                    FailureKind.START, f"The connector {self.name} could not be started ({error.strerror})."
                ) from None
        finally:
            for descriptor in memory_files:  # the connector has its own
                os.close(descriptor)

    def close(self) -> None:
        """Ends the connector if it still runs (and everything it started), removes the files."""
        process = self._process
        if process is not None:
            if process.poll() is None:
                self._signal(signal.SIGTERM)
                try:
                    process.wait(KILL_GRACE_SECONDS)
                except subprocess.TimeoutExpired:
                    self._signal(signal.SIGKILL)
                    process.wait()
            # Children it left behind (a worker pool) go with it.
            self._signal(signal.SIGKILL)
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def _signal(self, signum: int) -> None:
        if self._process is None:  # never started: nothing to end
            return
        try:
            os.killpg(self._process.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    # -- output -------------------------------------------------------------------------------

    def messages(self) -> Iterator[dict[str, Any] | None]:
        """The connector's messages but LOG (logged here), in order; None after each `tick` of
        silence. Raises ConnectorFailed; returns once the connector has exited with status 0."""
        process = self._process
        assert process is not None, "use the command as a context manager"
        if process.stdout is None or process.stderr is None:
            raise RuntimeError("the connector's output must be piped to be read")
        started = last = time.monotonic()
        streams = {process.stdout.fileno(): b"", process.stderr.fileno(): b""}
        unfinished = b""
        out = process.stdout.fileno()
        while streams:
            now = time.monotonic()
            self._check_time(now - started, now - last)
            wait = self.timeout - (now - started)
            if self.idle_timeout is not None:
                wait = min(wait, self.idle_timeout - (now - last))
            if self.tick is not None:
                wait = min(wait, self.tick)
            ready, _, _ = select.select(list(streams), [], [], max(0.0, wait))
            if not ready:
                if self.tick is not None:
                    yield None
                continue
            for fd in ready:
                chunk = os.read(fd, READ_CHUNK)
                pending = streams[fd] + chunk
                if not chunk:  # closed
                    del streams[fd]
                    lines = []
                    if fd == out:  # a last line without its newline: read once the exit is known
                        unfinished = pending
                    elif pending:
                        lines = [pending]
                else:
                    *lines, pending = pending.split(b"\n")
                    if len(pending) > MAX_LINE_BYTES:
                        raise self._failed(FailureKind.MALFORMED, "printed a line longer than 64 MB")
                    streams[fd] = pending
                if fd != out:
                    for line in lines:
                        self._stderr(line)
                    continue
                for line in lines:
                    message = self._parse(line)
                    if message is None:
                        continue
                    last = time.monotonic()
                    if message["type"] == MessageType.LOG:
                        self._log(message.get("log") or {})
                        continue
                    if message["type"] == MessageType.TRACE and (error := trace_error(message)):
                        self.last_error = scrub(error[1], self.secrets)
                    yield message
        remaining = max(0.0, self.timeout - (time.monotonic() - started))
        failure = self._exit_failure(remaining)
        if failure is not None:
            raise failure
        if process.poll() is None:
            raise self._failed(FailureKind.TIMEOUT, f"did not exit within {self.timeout:.0f} s")
        # A connector killed while writing leaves half a line: only a clean exit makes it a message.
        if (message := self._parse(unfinished)) is not None:
            yield message

    def _check_time(self, elapsed: float, silent: float) -> None:
        if elapsed >= self.timeout:
            raise self._failed(FailureKind.TIMEOUT, f"did not finish within {self.timeout:.0f} s")
        if self.idle_timeout is not None and silent >= self.idle_timeout:
            raise self._failed(FailureKind.TIMEOUT, f"sent nothing for {self.idle_timeout:.0f} s")

    def _parse(self, line: bytes) -> dict[str, Any] | None:
        try:
            return parse_message(line)
        except MalformedMessage as bad:
            failure = self._exit_failure(MALFORMED_GRACE_SECONDS)
            # A connector dying (killed, crashed) may leave noise behind: its exit is the reason.
            raise failure or self._failed(
                FailureKind.MALFORMED, f"printed something that is not the Airbyte protocol ({bad})"
            ) from None

    def _exit_failure(self, wait: float) -> ConnectorFailed | None:
        """The failure of a connector that exited non-zero within `wait` seconds, else None."""
        if self._process is None:  # never started: it cannot have exited
            return None
        try:
            status = self._process.wait(wait)
        except subprocess.TimeoutExpired:
            return None
        if status == 0:
            return None
        detail = self.last_error or (self._stderr_tail[-1] if self._stderr_tail else "")
        how = f"was killed by signal {-status}" if status < 0 else f"exited with status {status}"
        return self._failed(FailureKind.EXIT, f"{how} ({detail.rstrip('.')})" if detail else how)

    def _failed(self, kind: FailureKind, what: str) -> ConnectorFailed:
        reason = _clip(scrub(f"The connector {self.name} {what} during `{self.verb}`.", self.secrets), REASON_CHARS)
        log.warning("%s", reason)
        return ConnectorFailed(kind, reason)

    def _log(self, entry: Mapping[str, Any]) -> None:
        level = str(entry.get("level") or "INFO").upper()
        text = scrub(str(entry.get("message") or ""), self.secrets)
        if level in ("ERROR", "FATAL"):
            self.last_error = _clip(text.strip().splitlines()[0] if text.strip() else text, REASON_CHARS)
        python_level = {"FATAL": logging.WARNING, "ERROR": logging.WARNING, "WARN": logging.INFO}.get(
            level, logging.DEBUG
        )
        self._emit(python_level, f"{level} {text}")

    def _stderr(self, line: bytes) -> None:
        text = scrub(line.decode("utf-8", "replace").rstrip(), self.secrets)
        if not text:
            return
        self._stderr_tail = [*self._stderr_tail[-4:], _clip(text, REASON_CHARS)]
        self._emit(logging.INFO, f"stderr {text}")

    def _emit(self, level: int, text: str) -> None:
        self._logged += 1
        if self._logged <= LOG_LINES_PER_COMMAND:
            log.log(level, "%s %s: %s", self.name, self.verb, _clip(text, LOG_LINE_CHARS))
        elif self._logged == LOG_LINES_PER_COMMAND + 1:
            log.info("%s %s: further log lines of this command are not logged", self.name, self.verb)
