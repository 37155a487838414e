"""An installed Airbyte connector as a connbot data source (`airbyte:<name>`).

It is configured by the connector's `connectionSpecification` (`config_spec`, see
sources/config.py); its templates are the streams of the catalog discovered for each connection
(a `CatalogSource`); its reads resume from the order's saved state.

- Check: `check`. CONNECTION_STATUS SUCCEEDED is VALID; FAILED, or a TRACE error of failure
  type `config_error`, is INVALID with the connector's message; a `transient_error` or
  `system_error`, a crash, a timeout or no answer is TRANSIENT (connbot tries again later and
  leaves the credentials status alone).
- Business account: sources.config's one rule (the configuration's platform account, else the
  connection's title that the form asked for).
- Accounts: each id the configuration's account property holds; without any, one account stands
  for the whole connection.
- Read: `read` with a configured catalog of the stream and fields, the start date of the order
  and the saved state; records become typed Arrow batches (records.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import pyarrow as pa

from sources.airbyte import mapping
from sources.airbyte.protocol import (
    FailureType,
    MalformedMessage,
    MessageType,
    Stream,
    catalog_streams,
    configured_catalog,
    merge_state,
    state_for_read,
    trace_error,
)
from sources.airbyte.records import ARROW_TYPES, field_type, to_table
from sources.airbyte.runner import ConnectorCommand, ConnectorFailed, scrub
from sources.base import (
    AuthType,
    Batch,
    BusinessAccount,
    Checkpoint,
    CheckResult,
    CheckStatus,
    CredentialField,
    Credentials,
    ExtractionTemplate,
    FieldKind,
    InvalidCredentials,
    SourceAccount,
    SourceError,
    TemplateField,
    TransientSourceError,
)
from sources.config import business_account, config_accounts, credentials_config, secret_values

log = logging.getLogger(__name__)

PREFIX = "airbyte:"
# The account standing for a connection whose configuration names no account list.
WHOLE_CONNECTION = "connection"

BATCH_RECORDS = 20_000
BATCH_SECONDS = 0.5  # a batch is cut at least this often, so a stop is seen within a second
TICK_SECONDS = 0.25


@dataclass(frozen=True)
class Timeouts:
    """Seconds each command may take; `read_idle`: silence allowed during a read."""

    spec: float = 120.0
    check: float = 300.0
    discover: float = 900.0
    read: float = 7 * 24 * 3600.0
    read_idle: float = 3600.0


@dataclass
class _Answer:
    """What a command answered by one message said: that message, its last TRACE error
    (failure type, message), and how it failed, if it did."""

    command: ConnectorCommand
    message: dict[str, Any] | None = None
    error: tuple[str, str] | None = None
    failed: ConnectorFailed | None = None


def source_name(connector: str) -> str:
    return f"{PREFIX}{connector}"


class AirbyteSource:
    auth_type = AuthType.TOKEN
    credential_fields: tuple[CredentialField, ...] = ()  # configured by `config_spec` instead

    def __init__(self, connector: str, executable: str, spec: Mapping[str, Any], *, timeouts: Timeouts = Timeouts()):
        self.connector = connector
        self.name = source_name(connector)
        self.executable = executable
        self.spec = dict(spec)
        connection_spec = self.spec.get("connectionSpecification")
        self.config_spec: dict[str, Any] = dict(connection_spec) if isinstance(connection_spec, Mapping) else {}
        self.title = mapping.connector_title(self.config_spec.get("title"), connector)
        self.timeouts = timeouts

    def __repr__(self) -> str:
        return f"AirbyteSource({self.connector!r}, {self.executable!r})"

    # -- running commands -----------------------------------------------------------------------

    def _command(
        self,
        verb: str,
        config: Mapping[str, Any] | None,
        *,
        catalog: Mapping[str, Any] | None = None,
        state: object = None,
        idle_timeout: float | None = None,
        tick: float | None = None,
    ) -> ConnectorCommand:
        return ConnectorCommand(
            self.executable,
            verb,
            name=self.name,
            config=config,
            catalog=catalog,
            state=state,
            secrets=secret_values(self.config_spec, config) if config is not None else (),
            timeout=getattr(self.timeouts, verb),
            idle_timeout=idle_timeout,
            tick=tick,
        )

    def _config(self, credentials: Credentials) -> dict[str, Any]:
        return credentials_config(credentials)  # raises InvalidCredentials unless a JSON object

    # -- Source ---------------------------------------------------------------------------------

    def _answer(self, verb: str, config: dict[str, Any], kind: MessageType) -> _Answer:
        """Runs a command answered by one message of `kind` (check, discover)."""
        answer = _Answer(self._command(verb, config))
        try:
            with answer.command:
                for message in answer.command.messages():
                    if message is None:  # a tick of silence: these commands ask for none
                        continue
                    if message["type"] == kind:
                        answer.message = message
                    elif message["type"] == MessageType.TRACE and (found := trace_error(message)):
                        answer.error = found
        except ConnectorFailed as failed:
            answer.failed = failed
        return answer

    def check_credentials(self, credentials: Credentials) -> CheckResult:
        answer = self._answer("check", self._config(credentials), MessageType.CONNECTION_STATUS)
        error, command = answer.error, answer.command
        if error is not None and error[0] == FailureType.CONFIG_ERROR:
            return self._invalid(error[1], command)
        if answer.failed is not None:
            return CheckResult(CheckStatus.TRANSIENT, answer.failed.reason, answer.failed.kind.value)
        status = (answer.message or {}).get("connectionStatus") or {}
        if status.get("status") == "SUCCEEDED":
            return CheckResult(CheckStatus.VALID)
        if status.get("status") == "FAILED":
            return self._invalid(str(status.get("message") or ""), command)
        if error is not None:
            return CheckResult(CheckStatus.TRANSIENT, self._said(error[1], command), error[0])
        return CheckResult(CheckStatus.TRANSIENT, f"The connector {self.name} gave no answer to `check`.", "no_status")

    def _said(self, text: str, command: ConnectorCommand) -> str:
        text = scrub(text.strip(), command.secrets) or "no reason given"
        return text if len(text) <= 500 else text[:499] + "…"

    def _invalid(self, text: str, command: ConnectorCommand) -> CheckResult:
        return CheckResult(CheckStatus.INVALID, self._said(text, command), "config_error")

    def business_account(self, credentials: Credentials) -> BusinessAccount:
        return business_account(self.config_spec, credentials)

    def list_accounts(self, credentials: Credentials) -> Iterator[Sequence[SourceAccount]]:
        ids = config_accounts(self.config_spec, self._config(credentials))
        if ids:
            yield [SourceAccount(external_id=i, name=i) for i in ids]
            return
        business = self.business_account(credentials)
        yield [SourceAccount(external_id=business.id or WHOLE_CONNECTION, name=business.name)]

    def templates(self) -> tuple[ExtractionTemplate, ...]:
        return ()  # per connection: catalog_templates

    def extract(
        self,
        credentials: Credentials,
        account_ids: Sequence[str],
        template: str,
        fields: Sequence[str],
        start: date,
        end: date,
    ) -> Iterator[Batch]:
        raise TypeError(f"{self.name} reads through `read`, with the connection's catalog")

    # -- CatalogSource --------------------------------------------------------------------------

    def discover(self, credentials: Credentials) -> dict[str, Any]:
        answer = self._answer("discover", self._config(credentials), MessageType.CATALOG)
        if answer.error is not None:
            raise self._error(answer.error, answer.command)
        if answer.failed is not None:
            raise TransientSourceError(answer.failed.reason, answer.failed.kind.value, retryable=False)
        catalog = (answer.message or {}).get("catalog")
        if not isinstance(catalog, dict):
            raise TransientSourceError(f"The connector {self.name} sent no catalog to `discover`.", "no_catalog")
        try:
            catalog_streams(catalog)
        except MalformedMessage as bad:
            raise TransientSourceError(f"The connector {self.name} sent a catalog that is not valid: {bad}.") from None
        return catalog

    def _error(self, error: tuple[str, str], command: ConnectorCommand) -> SourceError:
        failure, text = error
        if failure == FailureType.CONFIG_ERROR:
            return InvalidCredentials(self._said(text, command), "config_error")
        return TransientSourceError(self._said(text, command), failure)

    def catalog_templates(self, catalog: Mapping[str, Any]) -> tuple[ExtractionTemplate, ...]:
        return tuple(stream_template(s) for s in catalog_streams(catalog))

    def read(
        self,
        credentials: Credentials,
        catalog: Mapping[str, Any],
        *,
        account_ids: Sequence[str],
        template: ExtractionTemplate,
        fields: Sequence[str],
        start: date,
        state: Any,
    ) -> Iterator[Batch | Checkpoint]:
        stream = next((s for s in catalog_streams(catalog) if s.name == template.name), None)
        if stream is None:
            raise SourceError(f"The connection's catalog has no stream {template.name!r}; sync its accounts.")
        config = self._read_config(credentials, account_ids, start)
        incremental = stream.incremental and bool(stream.cursor_field)
        known = {f.name for f in template.fields}
        wanted = dict.fromkeys([*template.primary_key, *stream.cursor_field[:1], *fields])
        columns = [(f.name, f.type) for f in template.fields if f.name in wanted and f.name in known]
        command = self._command(
            "read",
            config,
            catalog=configured_catalog(
                stream, [n for n, _ in columns], incremental=incremental, primary_key=template.primary_key
            ),
            state=state_for_read(state) if incremental else None,
            idle_timeout=self.timeouts.read_idle,
            tick=TICK_SECONDS,
        )
        error: tuple[str, str] | None = None
        saved = list(state or ()) if incremental else []
        records: list[dict[str, Any]] = []
        cut = time.monotonic() + BATCH_SECONDS
        empty = pa.Table.from_arrays(
            [pa.array([], ARROW_TYPES[t]) for _, t in columns],
            schema=pa.schema([(n, ARROW_TYPES[t]) for n, t in columns]),
        )
        try:
            with command:
                for message in command.messages():
                    kind = message["type"] if message is not None else None
                    if message is None:
                        pass  # a tick of silence: a batch is due
                    elif kind == MessageType.RECORD:
                        record = message.get("record") or {}
                        if record.get("stream") == stream.name and isinstance(record.get("data"), dict):
                            records.append(record["data"])
                        if len(records) < BATCH_RECORDS and time.monotonic() < cut:
                            continue
                    elif kind == MessageType.STATE:
                        if incremental:
                            saved = merge_state(saved, message.get("state") or {})
                    elif kind == MessageType.TRACE:
                        error = trace_error(message) or error
                        continue
                    else:
                        continue
                    # A batch is due: records enough, time, a state, or a tick of silence.
                    yield to_table(records, columns, stream=stream.name) if records else empty
                    records, cut = [], time.monotonic() + BATCH_SECONDS
                    if kind == MessageType.STATE and incremental:
                        yield Checkpoint(saved)
                if records:
                    yield to_table(records, columns, stream=stream.name)
        except ConnectorFailed as failed:
            if error is not None:
                raise self._error(error, command) from None
            # A crash, a hang or garbage: the run fails with the reason; the next one resumes
            # from the last committed state.
            raise TransientSourceError(failed.reason, failed.kind.value, retryable=False) from None
        if error is not None:
            raise self._error(error, command)

    def _read_config(self, credentials: Credentials, account_ids: Sequence[str], start: date) -> dict[str, Any]:
        config = self._config(credentials)
        ids = config_accounts(self.config_spec, config)
        if ids:
            picked = [i for i in ids if i in set(account_ids)]
            if not picked:
                raise SourceError("None of the order's accounts is in the connection's configuration any more.")
            config = mapping.with_accounts(self.config_spec, config, picked)
        return mapping.with_start(self.config_spec, config, start)


def stream_template(stream: Stream) -> ExtractionTemplate:
    """A stream as an extraction template: its top-level properties as fields (all offered as
    plain fields: a stream has no dimensions and metrics), its primary key when it is made of
    top-level fields."""
    fields = tuple(
        TemplateField(name, name, field_type(schema), FieldKind.DIMENSION) for name, schema in stream.properties.items()
    )
    names = {f.name for f in fields}
    key = tuple(p[0] for p in stream.primary_key if len(p) == 1)
    if len(key) != len(stream.primary_key) or not set(key) <= names:
        key = ()  # a nested or unknown key: the order chooses one, or runs replace
    parts = [f"{len(fields):,} fields"]
    if stream.incremental and stream.cursor_field:
        parts.append(f"incremental on {'.'.join(stream.cursor_field)}")
    else:
        parts.append("full refresh")
    parts.append(f"key {', '.join(key)}" if key else "no key")
    return ExtractionTemplate(
        name=stream.name,
        title=stream.name,
        description=" · ".join(parts),
        fields=fields,
        primary_key=key,
        per_account=False,
    )
