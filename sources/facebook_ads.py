"""The `facebook_ads` data source: the Facebook (Meta) Marketing API over HTTPS.

The credential is one access token (a user's, from Facebook Login, or a system user's, pasted
from Business Settings) with the `ads_read` permission. It travels in the Authorization header
only, never in a URL, and is taken out of every message that quotes the platform.

Configuration, read when the source is built (plus the CONNBOT_SOURCE_* settings of
`sources.http`):

    CONNBOT_FACEBOOK_API_URL            default https://graph.facebook.com
    CONNBOT_FACEBOOK_API_VERSION        default v21.0
    CONNBOT_FACEBOOK_ASYNC_AFTER_DAYS   date ranges longer than this many days are read through
                                        an asynchronous report run (default 7)
    CONNBOT_FACEBOOK_ASYNC_TIMEOUT      seconds to wait for a report run (default 3600)

Errors are classified from the `error` object of the answer, whatever its HTTP status (a 200
body holding one is an error too), and from the error fields of a failed report run: code 190
(any subcode) and 102 are invalid credentials; 10 and 200-299 a missing permission; 4, 17, 32,
341, 613 and 80000-80014 (rate limits) and `is_transient: true` errors are transient, retried
after the time `X-Business-Use-Case-Usage` says access comes back
(`estimated_time_to_regain_access`, in minutes), else after a doubling backoff; 100 (invalid
parameter, unknown field), 3, 11, 12, 803, 2500, 2635, 3018 and `is_transient: false` errors are
`RefusedRequest`, never retried; 1, 2, 368 and HTTP 5xx are transient. The source sends no batch
requests, so batch answers never reach it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

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
    env_number,
    money,
    platform_message,
    retry_after_header,
    typed_table,
)

log = logging.getLogger(__name__)

ENV_API_URL = "CONNBOT_FACEBOOK_API_URL"
ENV_API_VERSION = "CONNBOT_FACEBOOK_API_VERSION"
ENV_ASYNC_AFTER_DAYS = "CONNBOT_FACEBOOK_ASYNC_AFTER_DAYS"
ENV_ASYNC_TIMEOUT = "CONNBOT_FACEBOOK_ASYNC_TIMEOUT"
DEFAULT_API_URL = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v21.0"

# Ad account `account_status` codes (Marketing API reference, Ad Account).
ACCOUNT_STATUSES: Mapping[int, str] = {
    1: "ACTIVE",
    2: "DISABLED",
    3: "UNSETTLED",
    7: "PENDING_RISK_REVIEW",
    8: "PENDING_SETTLEMENT",
    9: "IN_GRACE_PERIOD",
    100: "PENDING_CLOSURE",
    101: "CLOSED",
}

INVALID_TOKEN_CODES = frozenset({102, 190})
# Throttling (Graph API error-handling guide; Marketing API rate limiting): wait and retry.
RATE_LIMIT_CODES = frozenset({4, 17, 32, 341, 613, *range(80000, 80015)})
# "Possibly a temporary issue due to downtime", "temporarily blocked": wait and retry.
TEMPORARY_CODES = frozenset({1, 2, 368})
# The request itself is wrong and would be refused again: unknown method (3), deprecated method
# or version (11, 12, 2635), invalid parameter or unknown field (100, any subcode), unknown alias
# (803), a malformed request (2500), a start date too far back (3018).
REFUSED_CODES = frozenset({3, 11, 12, 100, 803, 2500, 2635, 3018})
# Of a failed report run (AdReportRun), as the error object's fields are named.
RUN_ERROR_FIELDS = ("error_code", "error_subcode", "error_message", "error_user_title", "error_user_msg")

_ACCOUNT_ID = re.compile(r"(?:act_)?([0-9]{1,20})")
_VERSION = re.compile(r"v[0-9]+\.[0-9]+")


# --- templates ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Column:
    """A template field and how it is read from an insights row."""

    field: TemplateField
    api_field: str | None  # the insights field to ask for; None for account_id (ours)
    action_type: str = ""  # for counts and values read from the `actions` lists

    def read(self, row: Mapping[str, Any]) -> Any:
        if self.api_field is None:  # _row adds account_id itself
            raise RuntimeError(f"{self.field.name} is not in an insights row")
        if self.action_type:
            # A row without the action did not have any: 0, not unknown.
            entries = row.get(self.api_field) or ()
            raw = next((e.get("value") for e in entries if e.get("action_type") == self.action_type), "0")
        else:
            raw = row.get(self.api_field)
        return None if raw is None else _typed(self.field.type, raw)


def _typed(type_: FieldType, raw: Any) -> Any:
    """Insights values arrive as strings: "123", "12.34", "2024-01-31"."""
    if type_ is FieldType.INTEGER:
        return int(Decimal(str(raw)).to_integral_value())  # actions may be fractional ("2.0")
    if type_ is FieldType.DECIMAL:
        return money(Decimal(str(raw)))
    if type_ is FieldType.FLOAT:
        return float(raw)
    if type_ is FieldType.DATE:
        return date.fromisoformat(raw)
    return str(raw)


def _dim(
    name: str, label: str, api: str | None = None, type_: FieldType = FieldType.TEXT, default: bool = True
) -> _Column:
    field = TemplateField(name, label, type_, FieldKind.DIMENSION, default)
    return _Column(field, name if api is None else api)


def _metric(name: str, label: str, type_: FieldType = FieldType.INTEGER, default: bool = True) -> _Column:
    return _Column(TemplateField(name, label, type_, FieldKind.METRIC, default), name)


def _action(name: str, label: str, action_type: str, value: bool = False, default: bool = False) -> _Column:
    type_ = FieldType.DECIMAL if value else FieldType.INTEGER
    field = TemplateField(name, label, type_, FieldKind.METRIC, default)
    return _Column(field, "action_values" if value else "actions", action_type)


_DATE = _dim("date", "Date", "date_start", FieldType.DATE)
_ACCOUNT = _Column(TemplateField("account_id", "Account ID", FieldType.TEXT, FieldKind.DIMENSION), None)
_ACCOUNT_NAME = _dim("account_name", "Account name", default=False)
_CURRENCY = _dim("currency", "Currency", "account_currency", default=False)
_CAMPAIGN_ID = _dim("campaign_id", "Campaign ID")
_CAMPAIGN_NAME = _dim("campaign_name", "Campaign name")
_OBJECTIVE = _dim("objective", "Objective", default=False)
_ADSET_ID = _dim("adset_id", "Ad set ID")
_ADSET_NAME = _dim("adset_name", "Ad set name")
_METRICS = (
    _metric("impressions", "Impressions"),
    _metric("clicks", "Clicks (all)"),
    _metric("spend", "Spend", FieldType.DECIMAL),
    _metric("reach", "Reach", default=False),
    _metric("frequency", "Frequency", FieldType.FLOAT, default=False),
    _metric("ctr", "CTR (%)", FieldType.FLOAT, default=False),
    _metric("cpc", "CPC", FieldType.DECIMAL, default=False),
    _metric("cpm", "CPM", FieldType.DECIMAL, default=False),
    _metric("inline_link_clicks", "Link clicks", default=False),
    # The most used action types, as columns; the app has no child tables.
    _action("purchases", "Purchases", "purchase", default=True),
    _action("purchase_value", "Purchase value", "purchase", value=True, default=True),
    _action("leads", "Leads", "lead"),
    _action("add_to_cart", "Adds to cart", "add_to_cart"),
    _action("landing_page_views", "Landing page views", "landing_page_view"),
    _action("video_views", "Video views (3 s)", "video_view"),
    _action("post_engagement", "Post engagements", "post_engagement"),
)


@dataclass(frozen=True)
class _Report:
    template: ExtractionTemplate
    level: str  # the insights `level`
    columns: Mapping[str, _Column]


def _report(name: str, title: str, description: str, level: str, key: str, dims: Sequence[_Column]) -> _Report:
    columns = (_DATE, _ACCOUNT, *dims, _ACCOUNT_NAME, _CURRENCY, *_METRICS)
    template = ExtractionTemplate(
        name, title, description, tuple(c.field for c in columns), ("date", "account_id", key)
    )
    return _Report(template, level, {c.field.name: c for c in columns})


_REPORTS: tuple[_Report, ...] = (
    _report(
        "campaign_daily",
        "Campaigns by day",
        "Delivery, cost and results of each campaign, one row per campaign and day.",
        "campaign",
        "campaign_id",
        (_CAMPAIGN_ID, _CAMPAIGN_NAME, _OBJECTIVE),
    ),
    _report(
        "adset_daily",
        "Ad sets by day",
        "Delivery, cost and results of each ad set, one row per ad set and day.",
        "adset",
        "adset_id",
        (_CAMPAIGN_ID, _CAMPAIGN_NAME, _ADSET_ID, _ADSET_NAME),
    ),
    _report(
        "ad_daily",
        "Ads by day",
        "Delivery, cost and results of each ad, one row per ad and day.",
        "ad",
        "ad_id",
        (_CAMPAIGN_ID, _CAMPAIGN_NAME, _ADSET_ID, _ADSET_NAME, _dim("ad_id", "Ad ID"), _dim("ad_name", "Ad name")),
    ),
)
TEMPLATES: tuple[ExtractionTemplate, ...] = tuple(r.template for r in _REPORTS)
_REPORTS_BY_NAME = {r.template.name: r for r in _REPORTS}


# --- errors ------------------------------------------------------------------------------------


def _classifier(token: str) -> Callable[[Response], SourceError | None]:
    def classify(response: Response) -> SourceError | None:
        payload = response.payload
        error = payload.get("error") if isinstance(payload, dict) else None
        if not isinstance(error, dict):
            return None  # judged by the HTTP status
        return _graph_error(error, response.status, response.headers, token)

    return classify


def _graph_error(error: Mapping[str, Any], http_status: int, headers: Mapping[str, str], token: str) -> SourceError:
    """The SourceError of a Graph API error object, read as the error-handling guide says: the
    code first (with its subcode in the label), then the error's own `is_transient` flag."""
    code, subcode = _int(error.get("code")), _int(error.get("error_subcode"))
    label = f"{code}/{subcode}" if subcode else str(code)
    text = error.get("error_user_msg") or error.get("message") or "no message"
    message = f"Facebook: {platform_message(text, [token])} (code {label})"
    transient_flag = error.get("is_transient")
    if code in INVALID_TOKEN_CODES:
        return InvalidCredentials(message, label)
    if code == 10 or 200 <= code <= 299:
        return NoPermission(message, label)
    if code in RATE_LIMIT_CODES or transient_flag is True:
        wait = _regain_access(headers) or retry_after_header(headers)
        return TransientSourceError(message, label, retry_after=wait)
    if code in REFUSED_CODES or transient_flag is False:
        return RefusedRequest(message, label)
    if code in TEMPORARY_CODES or http_status >= 500 or http_status == 429:
        return TransientSourceError(message, label, retry_after=retry_after_header(headers))
    return SourceError(message, label)


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _regain_access(headers: Mapping[str, str]) -> float | None:
    """Seconds until the most throttled business use case is usable again, if told."""
    try:
        usage = json.loads(headers.get("X-Business-Use-Case-Usage") or "{}")
        minutes = max(
            (
                float(entry.get("estimated_time_to_regain_access") or 0)
                for entries in usage.values()
                for entry in entries
            ),
            default=0.0,
        )
    except (ValueError, TypeError, AttributeError):
        return None  # unreadable usage: back off by the default schedule
    return minutes * 60 if minutes > 0 else None


# --- the source --------------------------------------------------------------------------------


class FacebookAdsSource:
    """Facebook Ads through the Marketing API; see the module docstring for configuration."""

    name = "facebook_ads"
    title = "Facebook Ads"
    auth_type = AuthType.OAUTH
    credential_fields: tuple[CredentialField, ...] = (
        CredentialField(
            name="access_token",
            label="Access token",
            secret=True,
            hint="A user access token from Facebook Login, or a system user's token from "
            "Business Settings → System users, with the ads_read permission",
        ),
    )
    page_size = 500  # rows per page of accounts and of insights
    poll_interval = 2.0  # first wait between polls of a report run; doubles up to the next
    max_poll_interval = 30.0

    def __init__(
        self,
        *,
        api_url: str | None = None,
        api_version: str | None = None,
        async_after_days: int | None = None,
        async_timeout: float | None = None,
        http: HttpSettings | None = None,
        sleep: Callable[[float], None] = time.sleep,
        env: Mapping[str, str] | None = None,
    ):
        env = os.environ if env is None else env
        self.api_url = (api_url or env.get(ENV_API_URL) or DEFAULT_API_URL).rstrip("/")
        self.api_version = api_version or env.get(ENV_API_VERSION) or DEFAULT_API_VERSION
        if not _VERSION.fullmatch(self.api_version):
            raise ValueError(f"{ENV_API_VERSION} must look like v21.0, not {self.api_version!r}")
        if async_after_days is None:
            async_after_days = int(env_number(env, ENV_ASYNC_AFTER_DAYS, 7, 0))
        self.async_after_days = async_after_days
        self.async_timeout = env_number(env, ENV_ASYNC_TIMEOUT, 3600, 0) if async_timeout is None else async_timeout
        self._sleep = sleep  # injectable, so tests of waits need not wait
        self._http = HttpClient("Facebook", http or HttpSettings.from_env(env), sleep)

    def __repr__(self) -> str:
        return f"FacebookAdsSource({self.api_url}, {self.api_version})"

    def close(self) -> None:
        """Closes the connections kept open to the platform (a later call opens new ones)."""
        self._http.close()

    @property
    def _base(self) -> str:
        return f"{self.api_url}/{self.api_version}"

    def templates(self) -> tuple[ExtractionTemplate, ...]:
        return TEMPLATES

    def check_credentials(self, credentials: Credentials) -> CheckResult:
        """Valid when the token reads the user and its ad accounts (which needs ads_read)."""
        try:
            token = _token(credentials)
            self._get(token, "me", {"fields": "id"})
            self._get(token, "me/adaccounts", {"fields": "id", "limit": "1"})
        except SourceError as error:
            return error.as_check()
        return CheckResult(CheckStatus.VALID)

    def business_account(self, credentials: Credentials) -> BusinessAccount:
        """The token's business when it belongs to exactly one, else its user or system user."""
        token = _token(credentials)
        me = self._get(token, "me", {"fields": "id,name"})
        try:
            businesses = self._get(token, "me/businesses", {"fields": "id,name", "limit": "2"})
        except (InvalidCredentials, TransientSourceError):
            raise
        except SourceError as error:
            # The edge needs business_management and does not exist for every kind of token.
            log.info("facebook_ads: no business for the token (%s); using its user", error.code)
            businesses = {}
        found = [b for b in businesses.get("data") or () if isinstance(b, dict) and b.get("id")]
        if len(found) == 1:
            return BusinessAccount(id=str(found[0]["id"]), name=found[0].get("name") or found[0]["id"])
        if not me.get("id"):
            raise SourceError("Facebook did not say who the token belongs to", code="bad_answer")
        return BusinessAccount(id=str(me["id"]), name=me.get("name") or str(me["id"]))

    def list_accounts(self, credentials: Credentials) -> Iterator[Sequence[SourceAccount]]:
        token = _token(credentials)
        params = {"fields": "id,account_id,name,account_status,currency,timezone_name", "limit": str(self.page_size)}
        for page in self._pages(token, f"{self._base}/me/adaccounts", params):
            yield [_account(row) for row in page if row.get("id")]

    def extract(
        self,
        credentials: Credentials,
        account_ids: Sequence[str],
        template: str,
        fields: Sequence[str],
        start: date,
        end: date,
    ) -> Iterator[pa.Table]:
        """One typed table per page of insights (at most `page_size` rows), account by account
        in the order asked, with the template's key, `account_id` and `fields`."""
        _, selected = select_fields(self.name, TEMPLATES, template, fields, start, end)
        report = _REPORTS_BY_NAME[template]
        columns = [report.columns[f.name] for f in selected]
        accounts = list(dict.fromkeys(_account_id(a) for a in account_ids))
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
        token = _token(credentials)
        api_fields = {c.api_field for c in columns if c.api_field}
        params = {
            "level": report.level,
            "fields": ",".join(sorted(api_fields)),
            "time_range": json.dumps({"since": start.isoformat(), "until": end.isoformat()}),
            "time_increment": "1",
            "limit": str(self.page_size),
        }
        fields = [c.field for c in columns]
        for account in accounts:
            if (end - start).days + 1 > self.async_after_days:
                url, query = self._report_run(token, account, params), {"limit": str(self.page_size)}
            else:
                url, query = f"{self._base}/{account}/insights", params
            for page in self._pages(token, url, query):
                if page:
                    yield typed_table([_row(columns, row, account) for row in page], fields)

    def _report_run(self, token: str, account: str, params: Mapping[str, str]) -> str:
        """Starts an asynchronous report run and waits for it; the URL of its results."""
        started = self._call(token, "POST", f"{self._base}/{account}/insights", form=params)
        run_id = str(started.get("report_run_id") or "")
        if not run_id.isdigit():
            raise SourceError("Facebook did not start the report run", code="bad_answer")
        waited, wait = 0.0, self.poll_interval
        fields = ["async_status", "async_percent_completion"]
        if self._version >= (25, 0):  # a failed run says why from v25.0 (before, only for some apps)
            fields += RUN_ERROR_FIELDS
        while True:
            run = self._get(token, run_id, {"fields": ",".join(fields)})
            status = run.get("async_status")
            # Both are needed: the status may say Completed before the percentage reaches 100.
            if status == "Job Completed" and _int(run.get("async_percent_completion")) >= 100:
                return f"{self._base}/{run_id}/insights"
            if status in ("Job Failed", "Job Skipped"):
                raise self._run_failure(token, account, status, run)
            if waited >= self.async_timeout:
                raise TransientSourceError(
                    f"Facebook's report of {account} was not ready after {waited:.0f} s", code="report_run_timeout"
                )
            log.debug("facebook_ads: report run %s: %s, %s%%", run_id, status, run.get("async_percent_completion"))
            self._sleep(wait)
            waited += wait
            wait = min(wait * 2, self.max_poll_interval)

    def _run_failure(self, token: str, account: str, status: str, run: Mapping[str, Any]) -> SourceError:
        """A report run that failed: classified by the error it reports in its (HTTP 200) answer
        like any Graph API error; without one, transient (the run may succeed when started again)."""
        if not _int(run.get("error_code")):
            return TransientSourceError(
                f"Facebook could not build the report of {account} ({status})", code="report_run_failed"
            )
        error = {
            "code": run.get("error_code"),
            "error_subcode": run.get("error_subcode"),
            "message": run.get("error_message"),
            "error_user_msg": run.get("error_user_msg"),
        }
        return _graph_error(error, 200, {}, token)

    @property
    def _version(self) -> tuple[int, int]:
        major, minor = self.api_version[1:].split(".")
        return int(major), int(minor)

    def _pages(self, token: str, url: str, params: Mapping[str, str]) -> Iterator[list[dict[str, Any]]]:
        """The `data` of each page, following `paging.next` until it is absent."""
        next_url: str | None = url
        while next_url:
            answer = self._call(token, "GET", next_url, params=params)
            data = answer.get("data")
            if not isinstance(data, list):
                raise SourceError("Facebook sent a page without data", code="bad_answer")
            yield [row for row in data if isinstance(row, dict)]
            next_url = self._next_url((answer.get("paging") or {}).get("next"))
            params = {}  # the next URL carries them

    def _next_url(self, url: Any) -> str | None:
        """The next page's URL, without the token it may carry (the header has it), and only on
        the API's own host: the token must not go anywhere else."""
        if not url:
            return None
        parts, base = urlsplit(str(url)), urlsplit(self.api_url)
        if (parts.scheme, parts.netloc) != (base.scheme, base.netloc):
            raise SourceError("Facebook sent a next page on another host", code="bad_answer")
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "access_token"]
        return urlunsplit(parts._replace(query=urlencode(query)))

    def _get(self, token: str, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        return self._call(token, "GET", f"{self._base}/{path}", params=params)

    def _call(
        self,
        token: str,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        form: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        response = self._http.request(
            method,
            url,
            classify=_classifier(token),
            headers={"Authorization": f"Bearer {token}"},
            params=params,
            form=form,
        )
        if not isinstance(response.payload, dict):
            raise SourceError("Facebook sent an unexpected answer", code="bad_answer")
        return response.payload


def _token(credentials: Credentials) -> str:
    token = credentials.get("access_token", "").strip()
    if not token:
        raise InvalidCredentials("No Facebook access token was given", code="missing_token")
    return token


def _account_id(value: str) -> str:
    match = _ACCOUNT_ID.fullmatch(str(value).strip())
    if not match:
        raise ValueError(f"Not a Facebook ad account id: {value!r} (expected act_<digits>)")
    return f"act_{match.group(1)}"


def _account(row: Mapping[str, Any]) -> SourceAccount:
    code = _int(row.get("account_status"))
    status = ACCOUNT_STATUSES.get(code, f"STATUS_{code}")
    return SourceAccount(
        external_id=str(row["id"]),
        name=str(row.get("name") or row["id"]),
        currency=str(row.get("currency") or ""),
        timezone=str(row.get("timezone_name") or ""),
        active=code == 1,
        status=status,
    )


def _row(columns: Sequence[_Column], row: Mapping[str, Any], account: str) -> dict[str, Any]:
    try:
        values = {c.field.name: c.read(row) for c in columns if c.api_field}
    except (ValueError, TypeError, AttributeError, InvalidOperation) as problem:
        raise SourceError(
            f"Facebook sent an insights row that could not be read ({type(problem).__name__})",
            code="bad_answer",
        ) from None
    return {**values, "account_id": account}
