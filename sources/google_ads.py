"""The `google_ads` data source: the Google Ads API over REST.

Credentials are an OAuth client (id and secret) and a refresh token, plus an optional developer
token and an optional login customer id (a manager account, sent as `login-customer-id`).
Access tokens are got from the token endpoint with the refresh token and kept in memory until
a minute before they expire; a cached one the API rejects is replaced once. Secrets travel in
headers and form bodies only, and are taken out of every message that quotes the platform.

Configuration, read when the source is built (plus the CONNBOT_SOURCE_* settings of
`sources.http`):

    CONNBOT_GOOGLE_ADS_API_URL        default https://googleads.googleapis.com
    CONNBOT_GOOGLE_ADS_API_VERSION    default v18
    CONNBOT_GOOGLE_TOKEN_URL          default https://oauth2.googleapis.com/token
    CONNBOT_GOOGLE_DEVELOPER_TOKEN    the developer token used when the credentials have none

The login's accounts are the customers of `customers:listAccessibleCustomers`, or the login
customer alone when one is given, with the whole `customer_client` hierarchy below each;
manager accounts are walked but not listed (they have no campaigns of their own).

Errors are read from the google.rpc.Status of the answer, whatever its shape: a bare
`{"error": {...}}`, a searchStream array whose element holds it (`[{"error": {...}}]`), or the
last element of a stream that already sent result batches. UNAUTHENTICATED or an
`authenticationError` (and `invalid_grant`, `invalid_client` or `unauthorized_client` from the
token endpoint) are invalid credentials. USER_PERMISSION_DENIED and CUSTOMER_NOT_ENABLED concern
one customer (`AccountUnavailable`): `list_accounts` and `extract` skip that customer with a
logged warning (unless some of its rows were already read: the extraction then fails); only when
the login can read none of its customers, or its login customer, is it NoPermission (and
`check_credentials` NO_PERMISSION). Other PERMISSION_DENIED errors are NoPermission.
RESOURCE_EXHAUSTED (429), quota errors, INTERNAL, UNAVAILABLE and 5xx are transient, retried
after `retryDelay` or `Retry-After` when given; INVALID_ARGUMENT (query errors), NOT_FOUND,
FAILED_PRECONDITION and the like are `RefusedRequest`, never retried.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import pyarrow as pa

from sources.base import (
    AuthType,
    BusinessAccount,
    CheckResult,
    CheckStatus,
    CredentialField,
    Credentials,
    ExtractionTemplate,
    FieldKind,
    FieldType,
    InvalidCredentials,
    NoPermission,
    RefusedRequest,
    SourceAccount,
    SourceError,
    TemplateField,
    TransientSourceError,
    select_fields,
)
from sources.http import (
    HttpClient,
    HttpSettings,
    Response,
    iter_json_array,
    money,
    platform_message,
    retry_after_header,
    typed_table,
)

log = logging.getLogger(__name__)

ENV_API_URL = "CONNBOT_GOOGLE_ADS_API_URL"
ENV_API_VERSION = "CONNBOT_GOOGLE_ADS_API_VERSION"
ENV_TOKEN_URL = "CONNBOT_GOOGLE_TOKEN_URL"
ENV_DEVELOPER_TOKEN = "CONNBOT_GOOGLE_DEVELOPER_TOKEN"
DEFAULT_API_URL = "https://googleads.googleapis.com"
DEFAULT_API_VERSION = "v18"
DEFAULT_TOKEN_URL = "https://oauth2.googleapis.com/token"

ACTIVE_STATUS = "ENABLED"  # CANCELED, SUSPENDED and CLOSED customers are inactive
PER_ACCOUNT_ERRORS = ("USER_PERMISSION_DENIED", "CUSTOMER_NOT_ENABLED")
INVALID_GRANT_ERRORS = frozenset({"invalid_grant", "invalid_client", "unauthorized_client"})
# The canonical codes (google.rpc.Code) the API's error guide says to retry with a backoff...
TRANSIENT_STATUSES = frozenset(
    {"RESOURCE_EXHAUSTED", "UNAVAILABLE", "INTERNAL", "DEADLINE_EXCEEDED", "ABORTED", "UNKNOWN", "CANCELLED"}
)
# ...and those it says not to retry until the request is corrected.
REFUSED_STATUSES = frozenset(
    {"INVALID_ARGUMENT", "NOT_FOUND", "FAILED_PRECONDITION", "OUT_OF_RANGE", "UNIMPLEMENTED", "ALREADY_EXISTS"}
)
# GoogleAdsFailure error codes that are retryable whatever the status says (quota, "Retryable errors").
TRANSIENT_ERRORS = frozenset(
    {"RESOURCE_EXHAUSTED", "RESOURCE_TEMPORARILY_EXHAUSTED", "TRANSIENT_ERROR", "INTERNAL_ERROR", "DEADLINE_EXCEEDED"}
)
TOKEN_EXPIRY_MARGIN = 60.0  # seconds before its stated expiry that a token is renewed

_CUSTOMER_ID = re.compile(r"[0-9]{1,20}")
_VERSION = re.compile(r"v[0-9]+")
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]*)?)s")

HIERARCHY_QUERY = (
    "SELECT customer_client.id, customer_client.descriptive_name, customer_client.currency_code, "
    "customer_client.time_zone, customer_client.status, customer_client.manager, "
    "customer_client.level FROM customer_client"
)
CUSTOMER_QUERY = "SELECT customer.id, customer.descriptive_name FROM customer LIMIT 1"

T = TypeVar("T")


class AccountUnavailable(NoPermission):
    """The login may not read this one customer (USER_PERMISSION_DENIED, CUSTOMER_NOT_ENABLED)."""


# --- templates ---------------------------------------------------------------------------------


def _micros(value: Any) -> Decimal:
    return money(Decimal(str(value)).scaleb(-6))


def _decimal(value: Any) -> Decimal:
    return money(Decimal(str(value)))


@dataclass(frozen=True)
class _Column:
    """A template field and where it is in a result row (camelCase JSON, int64 as strings)."""

    field: TemplateField
    gaql: str | None  # None for account_id, which is ours
    convert: Callable[[Any], Any]

    def read(self, row: Mapping[str, Any]) -> Any:
        if self.gaql is None:  # _row adds account_id itself
            raise RuntimeError(f"{self.field.name} is not in a result row")
        value: Any = row
        for part in self.gaql.split("."):
            value = value.get(_camel(part)) if isinstance(value, dict) else None
        if value is None:
            # Zero metrics are left out of the JSON (proto3 defaults): 0, not unknown.
            return self.convert(0) if self.field.kind is FieldKind.METRIC else None
        return self.convert(value)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.capitalize() for word in rest)


_CONVERTERS: Mapping[FieldType, Callable[[Any], Any]] = {
    FieldType.TEXT: str,
    FieldType.INTEGER: int,
    FieldType.FLOAT: float,
    FieldType.DECIMAL: _decimal,
    FieldType.DATE: date.fromisoformat,
}


def _dim(name: str, label: str, gaql: str, type_: FieldType = FieldType.TEXT, default: bool = True) -> _Column:
    return _Column(TemplateField(name, label, type_, FieldKind.DIMENSION, default), gaql, _CONVERTERS[type_])


def _metric(
    name: str,
    label: str,
    gaql: str,
    type_: FieldType = FieldType.INTEGER,
    default: bool = True,
    convert: Callable[[Any], Any] | None = None,
) -> _Column:
    field_ = TemplateField(name, label, type_, FieldKind.METRIC, default)
    return _Column(field_, gaql, convert or _CONVERTERS[type_])


_DATE = _dim("date", "Date", "segments.date", FieldType.DATE)
_ACCOUNT = _Column(TemplateField("account_id", "Customer ID", FieldType.TEXT, FieldKind.DIMENSION), None, str)
_CURRENCY = _dim("currency", "Currency", "customer.currency_code", default=False)
_CAMPAIGN_ID = _dim("campaign_id", "Campaign ID", "campaign.id")
_CAMPAIGN_NAME = _dim("campaign_name", "Campaign name", "campaign.name")
_METRICS = (
    _metric("impressions", "Impressions", "metrics.impressions"),
    _metric("clicks", "Clicks", "metrics.clicks"),
    _metric("cost", "Cost", "metrics.cost_micros", FieldType.DECIMAL, convert=_micros),
    _metric("conversions", "Conversions", "metrics.conversions", FieldType.FLOAT),
    _metric("conversions_value", "Conversion value", "metrics.conversions_value", FieldType.DECIMAL),
    _metric("all_conversions", "All conversions", "metrics.all_conversions", FieldType.FLOAT, False),
    _metric("interactions", "Interactions", "metrics.interactions", default=False),
    _metric("average_cpc", "Average CPC", "metrics.average_cpc", FieldType.DECIMAL, False, _micros),
    _metric("ctr", "CTR", "metrics.ctr", FieldType.FLOAT, default=False),
)


@dataclass(frozen=True)
class _Report:
    template: ExtractionTemplate
    resource: str  # the GAQL FROM
    columns: Mapping[str, _Column]

    def query(self, columns: Sequence[_Column], start: date, end: date) -> str:
        selected = ", ".join(c.gaql for c in columns if c.gaql)
        return (
            f"SELECT {selected} FROM {self.resource} "
            f"WHERE segments.date BETWEEN '{start.isoformat()}' AND '{end.isoformat()}'"
        )


def _report(name: str, title: str, description: str, resource: str, key: str, dims: Sequence[_Column]) -> _Report:
    columns = (_DATE, _ACCOUNT, *dims, _CURRENCY, *_METRICS)
    template = ExtractionTemplate(
        name, title, description, tuple(c.field for c in columns), ("date", "account_id", key)
    )
    return _Report(template, resource, {c.field.name: c for c in columns})


_REPORTS: tuple[_Report, ...] = (
    _report(
        "campaign_daily",
        "Campaigns by day",
        "Delivery, cost and conversions of each campaign, one row per campaign and day.",
        "campaign",
        "campaign_id",
        (
            _CAMPAIGN_ID,
            _CAMPAIGN_NAME,
            _dim("campaign_status", "Campaign status", "campaign.status", default=False),
            _dim("channel_type", "Channel", "campaign.advertising_channel_type", default=False),
        ),
    ),
    _report(
        "ad_group_daily",
        "Ad groups by day",
        "Delivery, cost and conversions of each ad group, one row per ad group and day.",
        "ad_group",
        "ad_group_id",
        (
            _CAMPAIGN_ID,
            _CAMPAIGN_NAME,
            _dim("ad_group_id", "Ad group ID", "ad_group.id"),
            _dim("ad_group_name", "Ad group name", "ad_group.name"),
            _dim("ad_group_status", "Ad group status", "ad_group.status", default=False),
            _dim("ad_group_type", "Ad group type", "ad_group.type", default=False),
        ),
    ),
)
TEMPLATES: tuple[ExtractionTemplate, ...] = tuple(r.template for r in _REPORTS)
_REPORTS_BY_NAME = {r.template.name: r for r in _REPORTS}


# --- credentials -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Login:
    client_id: str
    client_secret: str = field(repr=False)
    refresh_token: str = field(repr=False)
    developer_token: str = field(repr=False)
    login_customer_id: str  # digits, or "" for none

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.client_secret, self.refresh_token, self.developer_token)

    @property
    def cache_key(self) -> str:
        material = "\0".join((self.client_id, self.client_secret, self.refresh_token))
        return hashlib.sha256(material.encode()).hexdigest()


class _TokenCache:
    """Access tokens by login, until shortly before they expire. Never shows them."""

    def __init__(self, clock: Callable[[], float]):
        self._clock = clock
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            token, expires_at = self._tokens.get(key, ("", 0.0))
            return token if token and self._clock() < expires_at else None

    def put(self, key: str, token: str, lifetime: float) -> None:
        with self._lock:
            self._tokens[key] = (token, self._clock() + lifetime - TOKEN_EXPIRY_MARGIN)

    def drop(self, key: str) -> None:
        with self._lock:
            self._tokens.pop(key, None)

    def __repr__(self) -> str:
        return f"<_TokenCache: {len(self._tokens)} token(s)>"


# --- errors ------------------------------------------------------------------------------------


def _token_classifier(secrets: Sequence[str]) -> Callable[[Response], SourceError | None]:
    """The token endpoint answers OAuth errors: {"error": "invalid_grant", ...}."""

    def classify(response: Response) -> SourceError | None:
        payload = response.payload
        error = payload.get("error") if isinstance(payload, dict) else None
        if not isinstance(error, str) or response.status >= 500 or response.status == 429:
            return None  # judged by the HTTP status
        detail = payload.get("error_description") or ""
        message = platform_message(f"{error}: {detail}" if detail else error, secrets)
        if error in INVALID_GRANT_ERRORS:
            return InvalidCredentials(f"Google refused the sign-in ({message}); sign in again", error)
        return SourceError(f"Google refused the sign-in ({message})", error)

    return classify


def _api_classifier(secrets: Sequence[str]) -> Callable[[Response], SourceError | None]:
    def classify(response: Response) -> SourceError | None:
        error = _status_of(response.payload)
        if error is None:
            return None  # judged by the HTTP status
        return _api_error(error, response.status, response.headers, secrets)

    return classify


def _status_of(payload: Any) -> Mapping[str, Any] | None:
    """The google.rpc.Status an answer carries: a bare `{"error": {...}}`, or, from
    searchStream (whose answer is a JSON array, failures included), the element holding one."""
    elements = payload if isinstance(payload, list) else [payload]
    return next((e["error"] for e in elements if isinstance(e, dict) and isinstance(e.get("error"), dict)), None)


def _api_error(
    error: Mapping[str, Any], http_status: int, headers: Mapping[str, str], secrets: Sequence[str]
) -> SourceError:
    """The SourceError of a Google API error (a google.rpc.Status with GoogleAdsFailure details).

    Read as the API's error guide says: authentication errors are the credentials'; permission
    errors are the login's (or, for USER_PERMISSION_DENIED and CUSTOMER_NOT_ENABLED, one
    customer's); quota, INTERNAL, UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED and 5xx are worth a
    retry; INVALID_ARGUMENT (query and request errors), NOT_FOUND, FAILED_PRECONDITION,
    OUT_OF_RANGE and UNIMPLEMENTED are refused until the request changes. Anything else is a
    plain SourceError."""
    status = str(error.get("status") or "")
    if http_status < 300:  # an error inside a streamed answer: its own code is the HTTP one
        http_status = _int(error.get("code")) or http_status
    details = [d for d in error.get("details") or () if isinstance(d, dict)]
    failures = [e for d in details for e in d.get("errors") or () if isinstance(e, dict)]
    codes = [
        (kind, str(value))
        for failure in failures
        if isinstance(failure.get("errorCode"), dict)
        for kind, value in failure["errorCode"].items()
    ]
    kinds, values = {kind for kind, _ in codes}, {value for _, value in codes}
    text = next((f["message"] for f in failures if f.get("message")), error.get("message") or "no message")
    per_account = next((v for v in PER_ACCOUNT_ERRORS if v in values), "")
    code = per_account or (codes[0][1] if codes else status or f"http_{http_status}")
    message = f"Google Ads: {platform_message(text, secrets)} ({code})"
    if status == "UNAUTHENTICATED" or "authenticationError" in kinds:
        return InvalidCredentials(message, code)
    if per_account:
        return AccountUnavailable(message, code)
    if status == "PERMISSION_DENIED" or "authorizationError" in kinds:
        return NoPermission(message, code)
    if status in TRANSIENT_STATUSES or values & TRANSIENT_ERRORS:
        return _transient(message, code, details, failures, headers)
    if status in REFUSED_STATUSES:
        return RefusedRequest(message, code)
    if http_status == 429 or http_status >= 500:
        return _transient(message, code, details, failures, headers)
    return SourceError(message, code)


def _transient(
    message: str,
    code: str,
    details: Sequence[Mapping[str, Any]],
    failures: Sequence[Mapping[str, Any]],
    headers: Mapping[str, str],
) -> TransientSourceError:
    wait = _retry_delay(details, failures) or retry_after_header(headers)
    return TransientSourceError(message, code, retry_after=wait)


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _retry_delay(details: Sequence[Mapping[str, Any]], failures: Sequence[Mapping[str, Any]]) -> float | None:
    """The longest `retryDelay` ("30s") of a google.rpc.RetryInfo or of quota error details."""
    delays = [d.get("retryDelay") for d in details]
    delays += [((f.get("details") or {}).get("quotaErrorDetails") or {}).get("retryDelay") for f in failures]
    seconds = [float(m.group(1)) for d in delays if isinstance(d, str) and (m := _DURATION.fullmatch(d))]
    return max(seconds) if seconds else None


# --- the source --------------------------------------------------------------------------------


class GoogleAdsSource:
    """Google Ads through its REST API; see the module docstring for configuration."""

    name = "google_ads"
    title = "Google Ads"
    auth_type = AuthType.OAUTH
    # The refresh token comes first: the app reports a failed check on the first secret field.
    credential_fields: tuple[CredentialField, ...] = (
        CredentialField("refresh_token", "Refresh token", secret=True, hint="From the OAuth sign-in"),
        CredentialField("client_id", "OAuth client ID", secret=False, hint="…apps.googleusercontent.com"),
        CredentialField("client_secret", "OAuth client secret", secret=True),
        CredentialField(
            "developer_token",
            "Developer token",
            secret=True,
            optional=True,
            hint="Leave empty to use the app's own (CONNBOT_GOOGLE_DEVELOPER_TOKEN)",
        ),
        CredentialField(
            "login_customer_id",
            "Login customer ID",
            secret=False,
            optional=True,
            hint="The manager account to go through, e.g. 123-456-7890",
        ),
    )

    def __init__(
        self,
        *,
        api_url: str | None = None,
        api_version: str | None = None,
        token_url: str | None = None,
        developer_token: str | None = None,
        http: HttpSettings | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        env: Mapping[str, str] | None = None,
    ):
        env = os.environ if env is None else env
        self.api_url = (api_url or env.get(ENV_API_URL) or DEFAULT_API_URL).rstrip("/")
        self.api_version = api_version or env.get(ENV_API_VERSION) or DEFAULT_API_VERSION
        if not _VERSION.fullmatch(self.api_version):
            raise ValueError(f"{ENV_API_VERSION} must look like v18, not {self.api_version!r}")
        self.token_url = token_url or env.get(ENV_TOKEN_URL) or DEFAULT_TOKEN_URL
        self._developer_token = developer_token or env.get(ENV_DEVELOPER_TOKEN, "")
        self._tokens = _TokenCache(clock)
        self._http = HttpClient("Google Ads", http or HttpSettings.from_env(env), sleep)

    def __repr__(self) -> str:
        return f"GoogleAdsSource({self.api_url}, {self.api_version})"

    def close(self) -> None:
        """Closes the connections kept open to the platform (a later call opens new ones)."""
        self._http.close()

    @property
    def _base(self) -> str:
        return f"{self.api_url}/{self.api_version}"

    def templates(self) -> tuple[ExtractionTemplate, ...]:
        return TEMPLATES

    def check_credentials(self, credentials: Credentials) -> CheckResult:
        """Valid when the refresh token gives an access token that lists the accessible
        customers, and the login customer, when given, can be read."""
        try:
            login = self._login(credentials)
            self._accessible(login)
            if login.login_customer_id:
                for _ in self._search(login, login.login_customer_id, CUSTOMER_QUERY, login.login_customer_id):
                    pass
        except SourceError as error:
            return error.as_check()
        return CheckResult(CheckStatus.VALID)

    def business_account(self, credentials: Credentials) -> BusinessAccount:
        """The login customer when given, else the first readable accessible customer."""
        login = self._login(credentials)
        candidates = [login.login_customer_id] if login.login_customer_id else self._accessible(login)
        if not candidates:
            raise NoPermission("This Google login has no Google Ads account", code="no_customers")
        denied: AccountUnavailable | None = None
        for customer_id in candidates:
            try:
                rows = [r for batch in self._search(login, customer_id, CUSTOMER_QUERY, customer_id) for r in batch]
            except AccountUnavailable as error:
                denied = error
                continue
            name = (rows[0].get("customer") or {}).get("descriptiveName") if rows else None
            return BusinessAccount(id=customer_id, name=name or f"Google Ads {_dashed(customer_id)}")
        assert denied is not None  # every candidate was tried and refused
        raise NoPermission(denied.message, denied.code)

    def list_accounts(self, credentials: Credentials) -> Iterator[Sequence[SourceAccount]]:
        login = self._login(credentials)
        seen: set[str] = set()
        for _, rows in self._clients(login, self._roots(login)):
            page = []
            for row in rows:
                client = row.get("customerClient") or {}
                customer_id = str(client.get("id") or "")
                if customer_id and not client.get("manager") and customer_id not in seen:
                    seen.add(customer_id)
                    page.append(_account(client))
            if page:
                yield page

    def extract(
        self,
        credentials: Credentials,
        account_ids: Sequence[str],
        template: str,
        fields: Sequence[str],
        start: date,
        end: date,
    ) -> Iterator[pa.Table]:
        """One typed table per searchStream batch, account by account in the order asked,
        with the template's key, `account_id` and `fields`. Accounts the login may not read
        are skipped with a logged warning."""
        _, selected = select_fields(self.name, TEMPLATES, template, fields, start, end)
        report = _REPORTS_BY_NAME[template]
        columns = [report.columns[f.name] for f in selected]
        accounts = list(dict.fromkeys(_customer_id(a) for a in account_ids))
        return self._batches(credentials, accounts, report, columns, start, end)

    def _batches(
        self,
        credentials: Credentials,
        accounts: Sequence[str],
        report: _Report,
        columns: Sequence[_Column],
        start: date,
        end: date,
    ) -> Iterator[pa.Table]:
        login = self._login(credentials)
        routes = self._routes(login, accounts)
        query = report.query(columns, start, end)
        fields = [c.field for c in columns]
        for account in accounts:
            via = routes.get(account)
            if via is None:
                log.warning("google_ads: customer %s skipped: not reachable with this login", account)
                continue
            sent = False
            try:
                for rows in self._search(login, account, query, via):
                    if rows:
                        sent = True
                        yield typed_table([_row(columns, row, account) for row in rows], fields)
            except AccountUnavailable as error:
                if sent:  # refused part-way: its rows are incomplete, so the extraction fails
                    raise SourceError(
                        f"{error.message}, after part of customer {account}'s rows had been read", error.code
                    ) from None
                log.warning("google_ads: customer %s skipped (%s)", account, error.code)

    # --- the account hierarchy ---------------------------------------------------------------

    def _roots(self, login: _Login) -> list[str]:
        return [login.login_customer_id] if login.login_customer_id else self._accessible(login)

    def _accessible(self, login: _Login) -> list[str]:
        url = f"{self._base}/customers:listAccessibleCustomers"
        payload = self._authorized(
            login, None, lambda headers, classify: self._http.request("GET", url, headers=headers, classify=classify)
        ).payload
        names = (payload.get("resourceNames") or []) if isinstance(payload, dict) else []
        ids = {str(n).removeprefix("customers/") for n in names}
        return sorted((i for i in ids if _CUSTOMER_ID.fullmatch(i)), key=int)

    def _clients(self, login: _Login, roots: Sequence[str]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        """(root, customer_client rows) per batch of each root's hierarchy. Roots the login may
        not read are skipped with a warning; NoPermission when it may read none of them."""
        denied: list[AccountUnavailable] = []
        for root in roots:
            sent = False
            try:
                for rows in self._search(login, root, HIERARCHY_QUERY, root):
                    sent = sent or bool(rows)
                    yield root, rows
            except AccountUnavailable as error:
                if sent:  # refused part-way: the hierarchy read is incomplete
                    raise SourceError(
                        f"{error.message}, after part of customer {root}'s hierarchy had been read", error.code
                    ) from None
                log.warning("google_ads: customer %s skipped (%s)", root, error.code)
                denied.append(error)
        if roots and len(denied) == len(roots):
            raise NoPermission(
                f"This Google login may not read any of its {len(roots)} Google Ads account(s): {denied[0].message}",
                code=denied[0].code,
            )

    def _routes(self, login: _Login, accounts: Sequence[str]) -> dict[str, str]:
        """The login customer to read each account through: the login customer when given,
        else the account itself when accessible, else the accessible manager above it."""
        if login.login_customer_id:
            return dict.fromkeys(accounts, login.login_customer_id)
        accessible = self._accessible(login)
        routes = {a: a for a in accounts if a in accessible}
        missing = set(accounts) - routes.keys()
        if missing:
            for root, rows in self._clients(login, accessible):
                for row in rows:
                    customer_id = str((row.get("customerClient") or {}).get("id") or "")
                    if customer_id in missing:
                        routes.setdefault(customer_id, root)
                if not missing - routes.keys():
                    break  # no need to walk the other hierarchies
        return routes

    # --- requests ------------------------------------------------------------------------------

    def _search(self, login: _Login, customer_id: str, query: str, via: str) -> Iterator[list[dict[str, Any]]]:
        """The result rows of a GAQL query, one list per searchStream batch, read as they come."""
        url = f"{self._base}/customers/{customer_id}/googleAds:searchStream"
        stream = self._authorized(
            login,
            via,
            lambda headers, classify: self._http.open_stream(
                "POST", url, headers=headers, classify=classify, json_body={"query": query}
            ),
        )
        with stream:
            for batch in iter_json_array(stream, self._http):
                if not isinstance(batch, dict) or "error" in batch and not isinstance(batch["error"], dict):
                    raise SourceError("Google Ads sent an unexpected answer", code="bad_answer")
                if "error" in batch:  # a failure after the answer began, e.g. after result batches
                    raise _api_error(batch["error"], 200, {}, login.secrets)
                yield [row for row in batch.get("results") or () if isinstance(row, dict)]

    def _authorized(
        self,
        login: _Login,
        via: str | None,
        send: Callable[[dict[str, str], Callable[[Response], SourceError | None]], T],
    ) -> T:
        """`send(headers, classify)` with an access token; a cached token the API rejects (it can
        be revoked before it expires) is replaced once."""
        token, cached = self._access_token(login)
        try:
            return send(self._headers(login, token, via), _api_classifier((*login.secrets, token)))
        except InvalidCredentials:
            if not cached:
                raise
        self._tokens.drop(login.cache_key)
        token, _ = self._access_token(login)
        return send(self._headers(login, token, via), _api_classifier((*login.secrets, token)))

    def _headers(self, login: _Login, token: str, via: str | None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {token}", "developer-token": login.developer_token}
        if via:
            headers["login-customer-id"] = via
        return headers

    def _access_token(self, login: _Login) -> tuple[str, bool]:
        """An access token, and whether it came from the cache."""
        token = self._tokens.get(login.cache_key)
        if token:
            return token, True
        response = self._http.request(
            "POST",
            self.token_url,
            classify=_token_classifier(login.secrets),
            form={
                "grant_type": "refresh_token",
                "client_id": login.client_id,
                "client_secret": login.client_secret,
                "refresh_token": login.refresh_token,
            },
        )
        payload = response.payload if isinstance(response.payload, dict) else {}
        token = payload.get("access_token")
        try:
            lifetime = float(payload.get("expires_in", 3600))
        except (TypeError, ValueError):
            lifetime = 0.0  # usable now, not cached
        if not isinstance(token, str) or not token:
            raise SourceError("Google's token endpoint sent no access token", code="bad_answer")
        self._tokens.put(login.cache_key, token, lifetime)
        return token, False

    def _login(self, credentials: Credentials) -> _Login:
        values = {
            k: credentials.get(k, "").strip()
            for k in ("client_id", "client_secret", "refresh_token", "developer_token", "login_customer_id")
        }
        missing = [f.label for f in self.credential_fields if not f.optional and not values[f.name]]
        if missing:
            raise InvalidCredentials(f"Missing {', '.join(missing)}", code="missing_credentials")
        developer_token = values["developer_token"] or self._developer_token
        if not developer_token:
            raise InvalidCredentials(
                f"No Google Ads developer token: enter one, or set {ENV_DEVELOPER_TOKEN}",
                code="missing_developer_token",
            )
        login_customer_id = values["login_customer_id"].replace("-", "")
        if login_customer_id and not _CUSTOMER_ID.fullmatch(login_customer_id):
            raise InvalidCredentials(
                "The login customer ID must be digits, like 123-456-7890", code="bad_login_customer_id"
            )
        return _Login(
            values["client_id"], values["client_secret"], values["refresh_token"], developer_token, login_customer_id
        )


def _customer_id(value: str) -> str:
    digits = str(value).strip().replace("-", "")
    if not _CUSTOMER_ID.fullmatch(digits):
        raise ValueError(f"Not a Google Ads customer id: {value!r} (expected digits like 123-456-7890)")
    return digits


def _dashed(customer_id: str) -> str:
    if len(customer_id) != 10:
        return customer_id
    return f"{customer_id[:3]}-{customer_id[3:6]}-{customer_id[6:]}"


def _account(client: Mapping[str, Any]) -> SourceAccount:
    customer_id = str(client["id"])
    status = str(client.get("status") or "UNKNOWN")
    return SourceAccount(
        external_id=customer_id,
        name=str(client.get("descriptiveName") or _dashed(customer_id)),
        currency=str(client.get("currencyCode") or ""),
        timezone=str(client.get("timeZone") or ""),
        active=status == ACTIVE_STATUS,
        status=status,
    )


def _row(columns: Sequence[_Column], row: Mapping[str, Any], account: str) -> dict[str, Any]:
    try:
        values = {c.field.name: c.read(row) for c in columns if c.gaql}
    except (ValueError, TypeError, InvalidOperation) as problem:
        raise SourceError(
            f"Google Ads sent a result row that could not be read ({type(problem).__name__})",
            code="bad_answer",
        ) from None
    return {**values, "account_id": account}
