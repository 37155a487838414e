"""The data-source plugin protocol.

A source knows how to talk to one platform. It knows nothing of storage or Slack: it is given
decrypted credentials at the moment of use and returns plain values.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from core.credentials import Credentials as Credentials  # re-exported: part of a source's interface


class AuthType(StrEnum):
    OAUTH = "oauth"
    LOGIN_PASSWORD = "login_password"
    TOKEN = "token"


@dataclass(frozen=True)
class CredentialField:
    """One input of the connect / re-connect forms."""

    name: str
    label: str
    secret: bool = True
    hint: str = ""
    optional: bool = False


def mask(value: str) -> str:
    """A masked form that tells which secret is in use without revealing it: at most a quarter
    of its characters, nothing (not even its length) of a short one."""
    if not value:
        return ""
    if len(value) < 12:
        return "•" * 8
    if len(value) < 24:
        return f"…{value[-3:]}"
    return f"{value[:2]}…{value[-4:]}"


class CheckStatus(StrEnum):
    VALID = "valid"
    INVALID = "invalid"  # definitive: the credentials do not work
    NO_PERMISSION = "no_permission"  # they work but lack a permission
    TRANSIENT = "transient"  # could not tell now (timeouts, rate limits, 5xx); never "invalid"


@dataclass(frozen=True)
class CheckResult:
    status: CheckStatus
    reason: str = ""
    code: str = ""
    retry_after: float | None = None
    # The platform refused the check's request as it is (TRANSIENT, since it says nothing of the
    # credentials): asking again answers the same.
    definitive: bool = False

    @property
    def ok(self) -> bool:
        return self.status is CheckStatus.VALID


@dataclass(frozen=True)
class BusinessAccount:
    id: str
    name: str


@dataclass(frozen=True)
class SourceAccount:
    external_id: str
    name: str
    currency: str = ""
    timezone: str = ""
    active: bool = True
    status: str = "ACTIVE"  # the platform's own word for the state (DISABLED, CLOSED, ...)


class FieldType(StrEnum):
    TEXT = "text"
    INTEGER = "integer"
    DECIMAL = "decimal"  # money
    FLOAT = "float"
    DATE = "date"
    TIMESTAMP = "timestamp"
    BOOLEAN = "boolean"


class FieldKind(StrEnum):
    DIMENSION = "dimension"
    METRIC = "metric"


@dataclass(frozen=True)
class TemplateField:
    name: str
    label: str
    type: FieldType
    kind: FieldKind
    default: bool = True  # preselected in the set-up modal


@dataclass(frozen=True)
class ExtractionTemplate:
    """A report type of the source."""

    name: str
    title: str
    description: str
    fields: tuple[TemplateField, ...]
    # Field names; always extracted. Empty: the rows have no key, and each run replaces the rows
    # the connection had in the table (an order may choose key fields instead).
    primary_key: tuple[str, ...]
    # Whether each row names its account (`account_id`), which then joins the merge key. A source
    # reading all its accounts in one stream (an Airbyte connector) has rows of no one account.
    per_account: bool = True

    def field(self, name: str) -> TemplateField:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def dimensions(self) -> tuple[TemplateField, ...]:
        return tuple(f for f in self.fields if f.kind is FieldKind.DIMENSION)

    @property
    def metrics(self) -> tuple[TemplateField, ...]:
        return tuple(f for f in self.fields if f.kind is FieldKind.METRIC)


class SourceError(Exception):
    """A failure talking to a source. `code` is the platform's code; the message is safe to show.

    A plain SourceError is an answer the source does not recognise: callers retry it once, in
    case it was a fluke. The subclasses say what is known: `TransientSourceError` is worth
    retrying; `definitive` errors get the same answer however often they are asked again.
    `retryable=False`: a failure not worth retrying at once within the same run or sync, though
    it says nothing of the credentials (a connector process that crashed or hung); the next
    scheduled one tries again."""

    status: CheckStatus = CheckStatus.TRANSIENT
    definitive: bool = False

    def __init__(self, message: str, code: str = "", retry_after: float | None = None, *, retryable: bool = True):
        super().__init__(message)
        self.message = message
        self.code = code
        self.retry_after = retry_after
        self.retryable = retryable

    def as_check(self) -> CheckResult:
        return CheckResult(self.status, self.message, self.code, self.retry_after, self.definitive)


class InvalidCredentials(SourceError):
    status = CheckStatus.INVALID
    definitive = True


class NoPermission(SourceError):
    status = CheckStatus.NO_PERMISSION
    definitive = True


class RefusedRequest(SourceError):
    """The platform refuses the request as it is (an invalid parameter, an unknown field, an
    unsupported request): asked again unchanged, it answers the same. Nothing says the
    credentials are wrong, so a credentials check that meets one is TRANSIENT (it could not
    tell), never INVALID."""

    definitive = True


class TransientSourceError(SourceError):
    status = CheckStatus.TRANSIENT


UNRECOGNISED_ATTEMPTS = 2


def attempts_for(error: SourceError, transient: int) -> int:
    """How many tries in all an operation failing with `error` deserves: one when the error is
    definitive, `transient` (the caller's bound) when the platform says it is worth retrying,
    and two for an answer nobody recognised: once more, in case it was a fluke."""
    if error.definitive or not error.retryable:
        return 1
    return transient if isinstance(error, TransientSourceError) else UNRECOGNISED_ATTEMPTS


# A batch of extracted rows: a list of row dicts, or a pyarrow.Table with the template's columns.
Batch = Any


@dataclass(frozen=True)
class Checkpoint:
    """Yielded by `CatalogSource.read` between batches: every row yielded before it has been
    read, and `state` (JSON-able) resumes the read after them. The engine saves it with the
    order once those rows are committed to the warehouse, and hands it back to the next read."""

    state: Any


@runtime_checkable
class Source(Protocol):
    name: str  # stable id, stored with each connection ("demo", "facebook_ads")
    title: str  # shown to people ("Facebook Ads")
    auth_type: AuthType
    credential_fields: tuple[CredentialField, ...]

    def check_credentials(self, credentials: Credentials) -> CheckResult:
        """Never raises for a platform answer; returns the classified result."""

    def business_account(self, credentials: Credentials) -> BusinessAccount:
        """The login the credentials belong to. Raises SourceError."""

    def list_accounts(self, credentials: Credentials) -> Iterator[Sequence[SourceAccount]]:
        """Pages of accounts, streamed as they are read. Raises SourceError."""

    def templates(self) -> tuple[ExtractionTemplate, ...]:
        """The report types, in display order."""

    def extract(
        self,
        credentials: Credentials,
        account_ids: Sequence[str],
        template: str,
        fields: Sequence[str],
        start: date,
        end: date,
    ) -> Iterator[Batch]:
        """Batches of rows for the accounts and the inclusive date range. Raises SourceError.

        Every row carries the template's primary-key dimensions and `account_id`.
        """


@runtime_checkable
class CatalogSource(Protocol):
    """A source whose templates are not fixed but discovered per connection (an Airbyte
    connector's streams), and whose reads resume from a saved state. Such a source also
    implements `Source`; its `templates()` is empty and its `extract` unused. The engine keeps
    the discovered catalog with the connection (refreshed by each account sync) and the state
    with the extraction order."""

    def discover(self, credentials: Credentials) -> dict[str, Any]:
        """The catalog the credentials reach, as a JSON-able value. Raises SourceError."""

    def catalog_templates(self, catalog: Mapping[str, Any]) -> tuple[ExtractionTemplate, ...]:
        """The templates of a catalog `discover` returned, in display order."""

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
        """Batches of the template's rows, with Checkpoints between them; from `state` (None: from
        `start`, the order's first day). `template.primary_key` is the order's key. Batches may be
        empty: a source waiting for its platform yields one at least every half second, so that a
        stopped run ends within a second. Raises SourceError."""


def select_fields(
    source: str,
    templates: Sequence[ExtractionTemplate],
    template: str,
    fields: Sequence[str],
    start: date,
    end: date,
) -> tuple[ExtractionTemplate, tuple[TemplateField, ...]]:
    """The template and the columns of its batches: the key, `account_id` and the fields asked
    for, in the template's order. Bad arguments raise ValueError."""
    report = next((t for t in templates if t.name == template), None)
    if report is None:
        names = ", ".join(t.name for t in templates)
        raise ValueError(f"Unknown template {template!r}; the {source} source has {names}")
    known = {f.name for f in report.fields}
    unknown = [f for f in fields if f not in known]
    if unknown:
        raise ValueError(
            f"Unknown field(s) {', '.join(map(repr, unknown))} for template {template}; "
            f"it has {', '.join(sorted(known))}"
        )
    if start > end:
        raise ValueError(f"The date range starts ({start}) after it ends ({end})")
    wanted = {*report.primary_key, "account_id", *fields}
    return report, tuple(f for f in report.fields if f.name in wanted)
