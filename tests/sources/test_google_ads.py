"""The `google_ads` source against a local fake of the OAuth token endpoint and the REST API."""

from __future__ import annotations

import io
import json
import logging
import uuid
from datetime import date
from decimal import Decimal

import pyarrow as pa
import pytest
from platforms.fakes_google import VERSION, ads_error, denied, retry_info, stream_ending_in
from platforms.fakes_http import Reply

from sources.base import (
    AuthType,
    CheckStatus,
    Credentials,
    InvalidCredentials,
    NoPermission,
    RefusedRequest,
    Source,
    SourceError,
    TransientSourceError,
)
from sources.google_ads import AccountUnavailable, GoogleAdsSource
from sources.http import HttpClient, HttpSettings, iter_json_array

JAN_1, JAN_3 = date(2024, 1, 1), date(2024, 1, 3)
SEARCH = "googleAds:searchStream"


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Waits(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def secrets(google) -> dict[str, str]:
    """Unique secrets, so a test can tell they never leaked anywhere."""
    unique = uuid.uuid4().hex
    values = {
        "client_id": "1234-abc.apps.googleusercontent.com",
        "client_secret": f"GOCSPX-{unique}",
        "refresh_token": f"1//0refresh{unique}",
        "developer_token": "DEV-TOKEN",
    }
    google.add_client(values["client_id"], values["client_secret"], values["refresh_token"])
    return values


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def waits() -> Waits:
    return Waits()


def make_source(google, waits=None, clock=None, **kwargs) -> GoogleAdsSource:
    kwargs.setdefault("http", HttpSettings(timeout=5))
    return GoogleAdsSource(
        api_url=google.url,
        api_version=VERSION,
        token_url=google.token_url,
        sleep=waits if waits is not None else Waits(),
        clock=clock or Clock(),
        env={},
        **kwargs,
    )


@pytest.fixture
def source(google, waits, clock) -> GoogleAdsSource:
    return make_source(google, waits, clock)


def creds(values: dict[str, str], **changes: str) -> Credentials:
    return Credentials({**values, **changes})


def accounts(source, credentials) -> list:
    return [a for page in source.list_accounts(credentials) for a in page]


def extract(source, credentials, ids=("2222222222",), template="campaign_daily", fields=(), start=JAN_1, end=JAN_3):
    return list(source.extract(credentials, list(ids), template, list(fields), start, end))


def token_requests(google) -> int:
    return len(google.server.requests_to("POST /token"))


# --- the plugin ----------------------------------------------------------------------------------


def test_satisfies_the_protocol_and_describes_itself():
    source = GoogleAdsSource(env={})
    assert isinstance(source, Source)
    assert (source.name, source.title, source.auth_type) == ("google_ads", "Google Ads", AuthType.OAUTH)
    fields = {f.name: (f.secret, f.optional) for f in source.credential_fields}
    assert fields == {
        "refresh_token": (True, False),
        "client_id": (False, False),
        "client_secret": (True, False),
        "developer_token": (True, True),
        "login_customer_id": (False, True),
    }
    assert (source.api_url, source.token_url) == (
        "https://googleads.googleapis.com",
        "https://oauth2.googleapis.com/token",
    )


def test_templates_are_well_formed():
    templates = GoogleAdsSource(env={}).templates()
    assert [t.name for t in templates] == ["campaign_daily", "ad_group_daily"]
    for template in templates:
        names = [f.name for f in template.fields]
        assert len(set(names)) == len(names) and set(template.primary_key) <= set(names)
        assert template.field("cost").type.value == "decimal"


def test_configuration_comes_from_the_environment(google, secrets):
    source = GoogleAdsSource(
        env={
            "CONNBOT_GOOGLE_ADS_API_URL": google.url + "/",
            "CONNBOT_GOOGLE_ADS_API_VERSION": VERSION,
            "CONNBOT_GOOGLE_TOKEN_URL": google.token_url,
            "CONNBOT_GOOGLE_DEVELOPER_TOKEN": "DEV-TOKEN",
        }
    )
    without_developer_token = {k: v for k, v in secrets.items() if k != "developer_token"}
    assert source.check_credentials(Credentials(without_developer_token)).ok
    assert {r.headers["developer-token"] for r in google.server.requests if r.path != "/token"} == {"DEV-TOKEN"}
    with pytest.raises(ValueError, match="CONNBOT_GOOGLE_ADS_API_VERSION"):
        GoogleAdsSource(env={"CONNBOT_GOOGLE_ADS_API_VERSION": "18"})


@pytest.mark.parametrize(
    "changes, code",
    [
        ({"refresh_token": ""}, "missing_credentials"),
        ({"client_secret": " "}, "missing_credentials"),
        ({"developer_token": ""}, "missing_developer_token"),
        ({"login_customer_id": "123-abc"}, "bad_login_customer_id"),
    ],
)
def test_incomplete_credentials_are_invalid_without_a_request(source, google, secrets, changes, code):
    result = source.check_credentials(creds(secrets, **changes))
    assert (result.status, result.code) == (CheckStatus.INVALID, code)
    assert google.server.requests == []


# --- access tokens -------------------------------------------------------------------------------


def test_access_token_is_cached_until_shortly_before_it_expires(source, google, secrets, clock):
    assert source.check_credentials(creds(secrets)).ok
    (refresh,) = google.server.requests_to("POST /token")
    assert refresh.form() == {
        "grant_type": "refresh_token",
        "client_id": secrets["client_id"],
        "client_secret": secrets["client_secret"],
        "refresh_token": secrets["refresh_token"],
    }
    clock.now += 3599 - 61
    assert source.check_credentials(creds(secrets)).ok
    assert token_requests(google) == 1
    clock.now += 2  # within a minute of the expiry
    assert source.check_credentials(creds(secrets)).ok
    assert token_requests(google) == 2
    used = [r.bearer for r in google.server.requests if r.path != "/token"]
    assert used[0] == used[1] != used[2] and all(t.startswith("ya29.") for t in used)


def test_a_revoked_cached_token_is_replaced_once(source, google, secrets):
    assert source.check_credentials(creds(secrets)).ok
    google.revoke_access_tokens()
    assert source.check_credentials(creds(secrets)).ok
    assert token_requests(google) == 2


def test_a_fresh_token_rejected_is_invalid_without_a_loop(source, google, secrets):
    google.server.fail(
        "customers:listAccessibleCustomers",
        ads_error(401, "UNAUTHENTICATED", "authenticationError", "NOT_ADS_USER", "Not an Ads user"),
    )
    result = source.check_credentials(creds(secrets))
    assert (result.status, result.code) == (CheckStatus.INVALID, "NOT_ADS_USER")
    assert token_requests(google) == 1


@pytest.mark.parametrize(
    "changes, code",
    [({"refresh_token": "1//0revoked"}, "invalid_grant"), ({"client_secret": "wrong"}, "invalid_client")],
)
def test_a_refused_refresh_token_is_invalid(source, secrets, changes, code):
    result = source.check_credentials(creds(secrets, **changes))
    assert (result.status, result.code) == (CheckStatus.INVALID, code)
    assert "sign in again" in result.reason


def test_a_token_endpoint_outage_is_transient_and_retried(source, google, secrets, waits):
    google.server.fail("POST /token", Reply(503, {"error": "backend_error"}), Reply(500, b"oops"))
    assert source.check_credentials(creds(secrets)).ok
    assert waits == [2.0, 4.0]
    google.server.fail("POST /token", *[Reply(503, b"")] * 4)
    source2 = make_source(google)
    result = source2.check_credentials(creds(secrets))
    assert (result.status, result.code) == (CheckStatus.TRANSIENT, "http_503")


# --- accounts ------------------------------------------------------------------------------------


def test_accounts_walk_the_hierarchy_of_every_accessible_customer(source, google, secrets, caplog):
    caplog.set_level(logging.WARNING)
    found = accounts(source, creds(secrets))
    assert [(a.external_id, a.name, a.status, a.active) for a in found] == [
        ("2222222222", "Acme DE", "ENABLED", True),
        ("3333333333", "Acme Old", "CANCELED", False),
        ("5555555555", "Acme FR", "SUSPENDED", False),
        ("6666666666", "Solo Shop", "ENABLED", True),
    ]
    assert (found[2].currency, found[2].timezone) == ("USD", "Europe/Berlin")
    searches = google.server.requests_to(SEARCH)
    assert [(r.path.split("/")[3], r.headers["login-customer-id"]) for r in searches] == [
        ("1111111111", "1111111111"),
        ("6666666666", "6666666666"),
        ("7777777777", "7777777777"),
    ]
    assert "FROM customer_client" in searches[0].json()["query"]
    assert "customer 7777777777 skipped (CUSTOMER_NOT_ENABLED)" in caplog.text


def test_accounts_below_the_login_customer_only(source, google, secrets):
    found = accounts(source, creds(secrets, login_customer_id="444-444-4444"))
    assert [a.external_id for a in found] == ["5555555555"]
    assert {r.headers["login-customer-id"] for r in google.server.requests_to(SEARCH)} == {"4444444444"}
    assert google.server.requests_to("listAccessibleCustomers") == []


def test_a_login_that_may_read_none_of_its_customers_has_no_permission(source, google, secrets):
    google.not_enabled |= {"1111111111", "6666666666"}
    with pytest.raises(NoPermission) as error:
        accounts(source, creds(secrets))
    assert not isinstance(error.value, AccountUnavailable)
    assert "may not read any of its 3" in error.value.message


def test_a_login_without_customers_is_valid_and_empty(source, google, secrets):
    google.accessible = []
    assert source.check_credentials(creds(secrets)).ok
    assert accounts(source, creds(secrets)) == []
    with pytest.raises(NoPermission):
        source.business_account(creds(secrets))


def test_business_account(source, google, secrets):
    first = source.business_account(creds(secrets))
    assert (first.id, first.name) == ("1111111111", "Acme MCC")  # the lowest readable id
    google.not_enabled.add("1111111111")
    assert source.business_account(creds(secrets)).id == "6666666666"
    login = source.business_account(creds(secrets, login_customer_id="4444444444"))
    assert (login.id, login.name) == ("4444444444", "Acme Regional")


def test_check_with_a_login_customer(source, google, secrets):
    assert source.check_credentials(creds(secrets, login_customer_id="1111111111")).ok
    result = source.check_credentials(creds(secrets, login_customer_id="9999999999"))
    assert (result.status, result.code) == (CheckStatus.NO_PERMISSION, "USER_PERMISSION_DENIED")


def test_an_unapproved_developer_token_is_no_permission(source, google, secrets):
    google.server.fail(
        "listAccessibleCustomers",
        ads_error(403, "PERMISSION_DENIED", "authorizationError", "DEVELOPER_TOKEN_NOT_APPROVED", "Not approved"),
    )
    result = source.check_credentials(creds(secrets))
    assert (result.status, result.code) == (CheckStatus.NO_PERMISSION, "DEVELOPER_TOKEN_NOT_APPROVED")


# --- extraction ----------------------------------------------------------------------------------


def test_campaign_daily_is_typed_and_costs_are_money(source, google, secrets):
    fields = ["campaign_name", "cost", "clicks", "conversions", "average_cpc", "currency"]
    batches = extract(source, creds(secrets), fields=fields)
    assert [b.num_rows for b in batches] == [2, 2, 2]  # searchStream batches of 2
    table = pa.concat_tables(batches)
    assert table.column_names == [
        "date",
        "account_id",
        "campaign_id",
        "campaign_name",
        "currency",
        "clicks",
        "cost",
        "conversions",
        "average_cpc",
    ]
    types = {f.name: f.type for f in table.schema}
    assert (types["date"], types["clicks"], types["conversions"]) == (pa.date32(), pa.int64(), pa.float64())
    assert types["cost"] == types["average_cpc"] == pa.decimal128(18, 6)
    rows = table.to_pylist()
    assert rows[0] == {
        "date": JAN_1,
        "account_id": "2222222222",
        "campaign_id": "2221",
        "campaign_name": "Search – 1",
        "currency": "EUR",
        "clicks": 25,
        "cost": Decimal("12.345678"),
        "conversions": 1.5,
        "average_cpc": Decimal("0.493827"),
    }
    # Campaign 2's zero metrics were left out of the JSON: they are zero, not unknown.
    assert (rows[1]["clicks"], rows[1]["cost"], rows[1]["conversions"]) == (0, Decimal(0), 0.0)

    hierarchy, search = google.server.requests_to(SEARCH)  # its manager's, then the report
    assert "FROM customer_client" in hierarchy.json()["query"] and "1111111111" in hierarchy.path
    assert search.headers["login-customer-id"] == "1111111111"  # reached through its manager
    assert search.json() == {
        "query": "SELECT segments.date, campaign.id, campaign.name, customer.currency_code, metrics.clicks, "
        "metrics.cost_micros, metrics.conversions, metrics.average_cpc FROM campaign "
        "WHERE segments.date BETWEEN '2024-01-01' AND '2024-01-03'"
    }


def test_ad_group_daily(source, google, secrets):
    table = pa.concat_tables(extract(source, creds(secrets), template="ad_group_daily", fields=["ad_group_name"]))
    assert table.num_rows == 3 * 2 * 2
    assert table.column_names == ["date", "account_id", "ad_group_id", "ad_group_name"]
    assert table.column("ad_group_name").to_pylist()[:2] == ["Group 1.1", "Group 1.2"]
    assert "FROM ad_group" in google.server.requests_to(SEARCH)[-1].json()["query"]


def test_accounts_are_routed_and_unreadable_ones_skipped(source, google, secrets, caplog):
    caplog.set_level(logging.WARNING)
    ids = ["666-666-6666", "5555555555", "7777777777", "9999999999", "6666666666"]
    table = pa.concat_tables(extract(source, creds(secrets), ids=ids))
    assert table.column("account_id").unique().to_pylist() == ["6666666666", "5555555555"]
    routes = {
        r.path.split("/")[3]: r.headers["login-customer-id"]
        for r in google.server.requests_to(SEARCH)
        if "FROM campaign " in r.json()["query"]
    }
    assert routes == {"6666666666": "6666666666", "5555555555": "1111111111", "7777777777": "7777777777"}
    assert "customer 7777777777 skipped (CUSTOMER_NOT_ENABLED)" in caplog.text
    assert "customer 9999999999 skipped: not reachable" in caplog.text


def test_a_login_customer_routes_every_account(source, google, secrets, caplog):
    table = pa.concat_tables(extract(source, creds(secrets, login_customer_id="1111111111"), ids=["5555555555"]))
    assert table.num_rows == 6
    assert google.server.requests_to("listAccessibleCustomers") == []
    assert {r.headers["login-customer-id"] for r in google.server.requests_to(SEARCH)} == {"1111111111"}


def test_an_empty_result_gives_no_batch(source, google, secrets):
    assert extract(source, creds(secrets), start=JAN_1, end=JAN_1, ids=["6666666666"])
    google.server.fail(SEARCH, Reply(body=[{"fieldMask": "x", "requestId": "r"}]))
    assert extract(source, creds(secrets), ids=["6666666666"]) == []


def test_batches_are_read_as_they_stream_in(source, google, secrets):
    google.chunk_size = 7
    google.batch_size = 5
    table = pa.concat_tables(extract(source, creds(secrets), start=JAN_1, end=date(2024, 1, 10)))
    assert table.num_rows == 20


def test_bad_arguments_raise_value_error_at_the_call(source, google, secrets):
    with pytest.raises(ValueError, match="Unknown template"):
        source.extract(creds(secrets), ["1"], "adset_daily", [], JAN_1, JAN_3)
    with pytest.raises(ValueError, match="Unknown field"):
        source.extract(creds(secrets), ["1"], "campaign_daily", ["spend"], JAN_1, JAN_3)
    with pytest.raises(ValueError, match="after it ends"):
        source.extract(creds(secrets), ["1"], "campaign_daily", [], JAN_3, JAN_1)
    with pytest.raises(ValueError, match="customer id"):
        source.extract(creds(secrets), ["1' OR '1"], "campaign_daily", [], JAN_1, JAN_3)
    assert google.server.requests == []


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply, status, code",
    [
        (
            ads_error(401, "UNAUTHENTICATED", "authenticationError", "OAUTH_TOKEN_REVOKED", "revoked"),
            CheckStatus.INVALID,
            "OAUTH_TOKEN_REVOKED",
        ),
        (
            Reply(
                401,
                {
                    "error": {
                        "code": 401,
                        "message": "Request had invalid authentication credentials.",
                        "status": "UNAUTHENTICATED",
                    }
                },
            ),
            CheckStatus.INVALID,
            "UNAUTHENTICATED",
        ),
        (denied(), CheckStatus.NO_PERMISSION, "USER_PERMISSION_DENIED"),
        (
            Reply(403, {"error": {"code": 403, "message": "API disabled", "status": "PERMISSION_DENIED"}}),
            CheckStatus.NO_PERMISSION,
            "PERMISSION_DENIED",
        ),
        (
            ads_error(429, "RESOURCE_EXHAUSTED", "quotaError", "RESOURCE_EXHAUSTED", "Too many requests"),
            CheckStatus.TRANSIENT,
            "RESOURCE_EXHAUSTED",
        ),
        (
            Reply(500, {"error": {"code": 500, "message": "Internal error", "status": "INTERNAL"}}),
            CheckStatus.TRANSIENT,
            "INTERNAL",
        ),
        (Reply(503, b"<html>unavailable</html>"), CheckStatus.TRANSIENT, "http_503"),
        (
            ads_error(400, "INVALID_ARGUMENT", "queryError", "UNRECOGNIZED_FIELD", "bad query"),
            CheckStatus.TRANSIENT,
            "UNRECOGNIZED_FIELD",
        ),  # not the login's fault: never INVALID
    ],
)
def test_errors_are_classified(google, secrets, reply, status, code):
    source = make_source(google, http=HttpSettings(attempts=1))
    google.server.fail("listAccessibleCustomers", reply)
    result = source.check_credentials(creds(secrets))
    assert (result.status, result.code) == (status, code)


def test_quota_errors_wait_the_retry_delay(source, google, secrets, waits):
    google.server.fail(
        SEARCH,
        ads_error(429, "RESOURCE_EXHAUSTED", "quotaError", "RESOURCE_EXHAUSTED", "quota", retry_delay="30s"),
        ads_error(
            429,
            "RESOURCE_EXHAUSTED",
            "quotaError",
            "RESOURCE_TEMPORARILY_EXHAUSTED",
            "q",
            headers={"Retry-After": "12"},
        ),
        Reply(503, b""),
    )
    assert extract(source, creds(secrets), ids=["6666666666"])
    assert waits == [30.0, 12.0, 8.0]


def test_a_retry_info_delay_is_honoured(source, google, secrets, waits):
    body = {
        "error": {
            "code": 429,
            "status": "RESOURCE_EXHAUSTED",
            "message": "slow down",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"}],
        }
    }
    google.server.fail("listAccessibleCustomers", Reply(429, body))
    assert source.check_credentials(creds(secrets)).ok
    assert waits == [1.5]


def test_a_daily_quota_is_left_to_the_caller(source, google, secrets, waits):
    google.server.fail(
        "listAccessibleCustomers",
        ads_error(429, "RESOURCE_EXHAUSTED", "quotaError", "RESOURCE_EXHAUSTED", "daily", retry_delay="86400s"),
    )
    result = source.check_credentials(creds(secrets))
    assert (result.status, result.retry_after) == (CheckStatus.TRANSIENT, 86400.0)
    assert waits == []


def test_retries_are_bounded(source, google, secrets, waits):
    google.server.fail(SEARCH, *[Reply(500, {"error": {"status": "INTERNAL", "message": "x"}})] * 9)
    with pytest.raises(TransientSourceError):
        extract(source, creds(secrets), ids=["6666666666"])
    assert len(google.server.requests_to(SEARCH)) == 4 and waits == [2.0, 4.0, 8.0]


def test_an_error_inside_the_stream_is_classified(source, google, secrets):
    batch = {"results": [], "fieldMask": "x", "requestId": "r"}
    failure = {"error": {"code": 500, "message": "Internal error encountered.", "status": "INTERNAL"}}
    google.server.fail(SEARCH, Reply(body=[batch, failure]))
    with pytest.raises(TransientSourceError, match="Internal error"):
        extract(source, creds(secrets), ids=["6666666666"])


def test_errors_raised_by_each_operation(source, google, secrets):
    google.server.fail("POST /token", Reply(400, {"error": "invalid_grant"}))
    with pytest.raises(InvalidCredentials):
        accounts(source, creds(secrets))
    google.server.fail(SEARCH, ads_error(400, "INVALID_ARGUMENT", "queryError", "BAD", "bad"))
    with pytest.raises(SourceError):
        extract(source, creds(secrets), ids=["6666666666"])


def test_a_timeout_is_transient(google, secrets, waits):
    source = make_source(google, waits, http=HttpSettings(timeout=0.2, attempts=2))
    google.server.fail("POST /token", Reply(stall=True), Reply(stall=True))
    result = source.check_credentials(creds(secrets))
    assert (result.status, result.code) == (CheckStatus.TRANSIENT, "timeout")
    assert waits == [2.0]


def test_secrets_never_show(source, google, secrets, caplog):
    caplog.set_level(logging.DEBUG)
    assert source.check_credentials(creds(secrets)).ok
    access_token = google.server.requests[-1].bearer
    planted = [secrets["client_secret"], secrets["refresh_token"], access_token]
    echo = "caller sent " + " ".join(planted)
    google.server.fail(SEARCH, *[ads_error(500, "INTERNAL", "internalError", "INTERNAL_ERROR", echo)] * 4)
    with pytest.raises(SourceError) as error:
        extract(source, creds(secrets), ids=["6666666666"])
    assert google.server.requests[-1].bearer == access_token  # the token planted is the one in use
    google.server.fail("listAccessibleCustomers", ads_error(401, "UNAUTHENTICATED", "authenticationError", "X", echo))
    sent_to_token_endpoint = f"caller sent {secrets['client_secret']} {secrets['refresh_token']}"
    google.server.fail(
        "POST /token", Reply(400, {"error": "invalid_grant", "error_description": sent_to_token_endpoint})
    )
    result = source.check_credentials(creds(secrets))

    assert result.status is CheckStatus.INVALID and "caller sent ***" in result.reason
    shown = [
        result.reason,
        str(error.value),
        repr(error.value),
        repr(source),
        repr(vars(source)),
        repr(creds(secrets)),
        caplog.text,
    ]
    assert [(n, t) for n, t in enumerate(shown) for secret in planted if secret in t] == []
    assert "retry" in caplog.text


# --- errors in each shape the API answers them ----------------------------------------------------
# searchStream fails with a JSON array (`[{"error": {...}}]`), and may fail after result batches
# with the error as the stream's last element; unary methods answer a bare object.

UNAUTHENTICATED = ("UNAUTHENTICATED", "authenticationError", "OAUTH_TOKEN_INVALID", "Oauth token is invalid.")


def test_an_array_wrapped_unauthenticated_replaces_a_cached_token_once(source, google, secrets):
    assert source.check_credentials(creds(secrets)).ok  # a token is cached
    google.server.fail(SEARCH, ads_error(401, *UNAUTHENTICATED, array=True))
    assert extract(source, creds(secrets), ids=["6666666666"])
    assert token_requests(google) == 2  # the rejected cached token was replaced

    # The replacement rejected too: invalid credentials, without a loop.
    google.server.fail(SEARCH, *[ads_error(401, *UNAUTHENTICATED, array=True)] * 2)
    with pytest.raises(InvalidCredentials) as error:
        extract(source, creds(secrets), ids=["6666666666"])
    assert error.value.code == "OAUTH_TOKEN_INVALID" and token_requests(google) == 3


def test_an_array_wrapped_permission_denied_skips_that_customer(source, google, secrets, caplog):
    caplog.set_level(logging.WARNING)
    google.server.fail("customers/6666666666/googleAds", denied(array=True))
    table = pa.concat_tables(extract(source, creds(secrets), ids=["6666666666", "2222222222"]))
    assert table.column("account_id").unique().to_pylist() == ["2222222222"]
    assert "customer 6666666666 skipped (USER_PERMISSION_DENIED)" in caplog.text


@pytest.mark.parametrize(
    "reply",
    [
        retry_info(429, "RESOURCE_EXHAUSTED", "3s", array=True),
        ads_error(429, "RESOURCE_EXHAUSTED", "quotaError", "RESOURCE_EXHAUSTED", "quota", retry_delay="3s", array=True),
        retry_info(429, "RESOURCE_EXHAUSTED", "3s"),  # the bare object, as before
    ],
)
def test_a_quota_error_waits_what_the_platform_asked_whatever_its_shape(source, google, secrets, waits, reply):
    google.server.fail(SEARCH, reply)
    assert extract(source, creds(secrets), ids=["6666666666"])
    assert waits == [3.0]  # not the client's own 2.0 s


def _read_until_it_fails(source, credentials, **kwargs) -> tuple[int, SourceError]:
    batches = source.extract(credentials, ["2222222222"], "campaign_daily", [], JAN_1, JAN_3)
    rows = 0
    with pytest.raises(SourceError) as error:
        for batch in batches:
            rows += batch.num_rows
    return rows, error.value


@pytest.mark.parametrize(
    "failure, kind, code",
    [
        (
            ads_error(500, "INTERNAL", "internalError", "INTERNAL_ERROR", "Internal error encountered."),
            TransientSourceError,
            "INTERNAL_ERROR",
        ),
        (ads_error(401, *UNAUTHENTICATED), InvalidCredentials, "OAUTH_TOKEN_INVALID"),
        (ads_error(400, "INVALID_ARGUMENT", "queryError", "BAD_VALUE", "bad value"), RefusedRequest, "BAD_VALUE"),
        # One customer refused part-way: not skipped, its rows are incomplete.
        (denied(), SourceError, "USER_PERMISSION_DENIED"),
    ],
)
def test_an_error_after_result_batches_fails_the_extraction(source, google, secrets, failure, kind, code):
    google.then["2222222222 SELECT segments.date"] = stream_ending_in(failure)
    rows, error = _read_until_it_fails(source, creds(secrets))
    assert rows == 6  # what came before the error was read...
    assert type(error) is kind and error.code == code  # ...and the error is still the platform's
    assert not isinstance(error, AccountUnavailable)


def test_a_quota_error_after_result_batches_says_how_long_to_wait(source, google, secrets):
    quota = ads_error(429, "RESOURCE_EXHAUSTED", "quotaError", "RESOURCE_EXHAUSTED", "quota", retry_delay="3s")
    google.then["2222222222 SELECT segments.date"] = stream_ending_in(quota)
    _, error = _read_until_it_fails(source, creds(secrets))
    assert isinstance(error, TransientSourceError) and error.retry_after == 3.0


def test_a_hierarchy_refused_part_way_fails_the_account_listing(source, google, secrets):
    google.then["1111111111 SELECT customer_client"] = stream_ending_in(denied())
    with pytest.raises(SourceError) as error:
        accounts(source, creds(secrets))
    assert not isinstance(error.value, NoPermission)  # one customer's answer: the login is not at fault
    assert "part of customer 1111111111" in error.value.message


@pytest.mark.parametrize(
    "status, kind, value",
    [
        ("INVALID_ARGUMENT", "queryError", "UNRECOGNIZED_FIELD"),
        ("INVALID_ARGUMENT", "requestError", "INVALID_INPUT"),
        ("NOT_FOUND", "requestError", "RESOURCE_NAME_MISSING"),
        ("FAILED_PRECONDITION", "customerError", "CUSTOMER_NOT_READY"),
        ("UNIMPLEMENTED", "requestError", "UNSUPPORTED"),
    ],
)
def test_requests_the_platform_refuses_as_they_are_are_definitive_and_not_retried(
    source, google, secrets, waits, status, kind, value
):
    http = {"NOT_FOUND": 404, "UNIMPLEMENTED": 501}.get(status, 400)
    google.server.fail(SEARCH, ads_error(http, status, kind, value, f"{value}: the request is wrong", array=True))
    with pytest.raises(RefusedRequest) as error:
        extract(source, creds(secrets), ids=["6666666666"])
    assert error.value.definitive and error.value.code == value and value in error.value.message
    assert len(google.server.requests_to(SEARCH)) == 1 and waits == []


@pytest.mark.parametrize(
    "status, http", [("UNAVAILABLE", 503), ("DEADLINE_EXCEEDED", 504), ("ABORTED", 409), ("UNKNOWN", 500)]
)
def test_what_the_error_guide_says_to_retry_is_retried(source, google, secrets, waits, status, http):
    google.server.fail(SEARCH, Reply(http, [{"error": {"code": http, "message": "try again", "status": status}}]))
    assert extract(source, creds(secrets), ids=["6666666666"])
    assert waits == [2.0]


# --- the streamed JSON array ---------------------------------------------------------------------


def _elements(data: bytes, chunk_size: int) -> list:
    client = HttpClient("Google Ads", HttpSettings())
    return list(iter_json_array(io.BytesIO(data), client, chunk_size=chunk_size))


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7, 1 << 16])
def test_json_array_elements_across_chunk_boundaries(chunk_size):
    elements = [{"results": [{"name": "Café – ü"}]}, 12345, "x", [], {"big": "y" * 500}]
    data = ("  [ " + " , ".join(json.dumps(e, ensure_ascii=False) for e in elements) + " ]\n").encode()
    assert _elements(data, chunk_size) == elements
    assert _elements(b"[]", chunk_size) == []


@pytest.mark.parametrize("data", [b"", b"{}", b"[{}", b"[{} {}]", b"[{},]", b'[{"a": 1]'])
def test_malformed_json_arrays_are_source_errors(data):
    with pytest.raises(SourceError) as error:
        _elements(data, 2)
    assert error.value.code == "bad_answer"
