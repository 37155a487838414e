"""The `facebook_ads` source against a local fake of the Marketing API."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import date
from decimal import Decimal

import pyarrow as pa
import pytest
from platforms.fakes_facebook import VERSION, buc_headers, fb_error, run_error
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
from sources.facebook_ads import ACCOUNT_STATUSES, FacebookAdsSource
from sources.http import HttpSettings, redact

JAN_1, JAN_2, JAN_31 = date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 31)


@pytest.fixture
def token(graph) -> str:
    """A unique token, so a test can tell it never leaked anywhere."""
    value = f"EAAB{uuid.uuid4().hex}SECRET"
    graph.add_login(value, businesses=[{"id": "900", "name": "Acme Retail"}])
    return value


class Waits(list):
    """Records the waits instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def waits() -> Waits:
    return Waits()


@pytest.fixture
def source(graph, waits) -> FacebookAdsSource:
    return FacebookAdsSource(api_url=graph.url, api_version=VERSION, http=HttpSettings(timeout=5), sleep=waits, env={})


def creds(token: str) -> Credentials:
    return Credentials({"access_token": token})


def accounts(source, token) -> list:
    return [a for page in source.list_accounts(creds(token)) for a in page]


def extract(source, token, ids=("act_100",), template="campaign_daily", fields=(), start=JAN_1, end=JAN_2):
    return list(source.extract(creds(token), list(ids), template, list(fields), start, end))


def no_token_in_urls(graph, token) -> bool:
    return all(token not in json.dumps(r.query) and r.bearer == token for r in graph.server.requests)


# --- the plugin ----------------------------------------------------------------------------------


def test_satisfies_the_protocol_and_describes_itself():
    source = FacebookAdsSource(env={})
    assert isinstance(source, Source)
    assert (source.name, source.title, source.auth_type) == ("facebook_ads", "Facebook Ads", AuthType.OAUTH)
    assert [(f.name, f.secret) for f in source.credential_fields] == [("access_token", True)]
    assert source.api_url == "https://graph.facebook.com" and source.api_version.startswith("v")


def test_templates_are_well_formed():
    names = [t.name for t in FacebookAdsSource(env={}).templates()]
    assert names == ["campaign_daily", "adset_daily", "ad_daily"]
    for template in FacebookAdsSource(env={}).templates():
        fields = [f.name for f in template.fields]
        assert len(set(fields)) == len(fields)
        assert set(template.primary_key) <= set(fields) and "account_id" in template.primary_key
        assert {"impressions", "clicks", "spend", "purchases"} <= {f.name for f in template.metrics}


def test_configuration_comes_from_the_environment():
    source = FacebookAdsSource(
        env={
            "CONNBOT_FACEBOOK_API_URL": "http://127.0.0.1:9/",
            "CONNBOT_FACEBOOK_API_VERSION": "v19.0",
            "CONNBOT_FACEBOOK_ASYNC_AFTER_DAYS": "3",
            "CONNBOT_FACEBOOK_ASYNC_TIMEOUT": "60",
            "CONNBOT_SOURCE_HTTP_TIMEOUT": "2.5",
            "CONNBOT_SOURCE_HTTP_ATTEMPTS": "2",
            "CONNBOT_SOURCE_MAX_RETRY_WAIT": "10",
        }
    )
    assert (source.api_url, source.api_version) == ("http://127.0.0.1:9", "v19.0")
    assert (source.async_after_days, source.async_timeout) == (3, 60)
    assert source._http.settings == HttpSettings(timeout=2.5, attempts=2, max_wait=10)


@pytest.mark.parametrize(
    "env, problem",
    [
        ({"CONNBOT_FACEBOOK_API_VERSION": "21"}, "CONNBOT_FACEBOOK_API_VERSION"),
        ({"CONNBOT_SOURCE_HTTP_TIMEOUT": "soon"}, "CONNBOT_SOURCE_HTTP_TIMEOUT must be a number"),
        ({"CONNBOT_SOURCE_HTTP_ATTEMPTS": "0"}, "CONNBOT_SOURCE_HTTP_ATTEMPTS must be at least 1"),
        ({"CONNBOT_FACEBOOK_ASYNC_AFTER_DAYS": "nan"}, "CONNBOT_FACEBOOK_ASYNC_AFTER_DAYS"),
    ],
)
def test_bad_configuration_names_the_variable(env, problem):
    with pytest.raises(ValueError, match=problem):
        FacebookAdsSource(env=env)


def test_redact_removes_plain_and_url_encoded_secrets():
    assert redact("a t/k+n b t%2Fk%2Bn c", ["t/k+n"]) == "a *** b *** c"


# --- credentials ---------------------------------------------------------------------------------


def test_valid_token(source, graph, token):
    assert source.check_credentials(creds(token)).status is CheckStatus.VALID
    assert no_token_in_urls(graph, token)


def test_token_without_ads_read_is_no_permission(source, graph):
    graph.add_login("EAAnoperm", ads_read=False)
    result = source.check_credentials(creds("EAAnoperm"))
    assert (result.status, result.code) == (CheckStatus.NO_PERMISSION, "200")
    assert "ads_read" in result.reason


def test_unknown_or_missing_token_is_invalid(source):
    result = source.check_credentials(creds("EAAwrong"))
    assert (result.status, result.code) == (CheckStatus.INVALID, "190")
    assert "Cannot parse access token" in result.reason
    missing = source.check_credentials(Credentials({}))
    assert (missing.status, missing.code) == (CheckStatus.INVALID, "missing_token")


def test_business_account_is_the_single_business(source, token):
    business = source.business_account(creds(token))
    assert (business.id, business.name) == ("900", "Acme Retail")


@pytest.mark.parametrize("businesses", [None, [], [{"id": "1", "name": "A"}, {"id": "2", "name": "B"}]])
def test_business_account_falls_back_to_the_user(source, graph, businesses):
    graph.add_login("EAAuser", businesses=businesses)
    business = source.business_account(creds("EAAuser"))
    assert (business.id, business.name) == ("10", "Ann Admin")


# --- accounts ------------------------------------------------------------------------------------


def test_accounts_follow_absolute_next_urls_without_sending_the_token_in_them(source, graph, token):
    source.page_size = 4
    pages = list(source.list_accounts(creds(token)))
    assert [len(p) for p in pages] == [4, 4, 1]
    assert [r.query.get("after") for r in graph.server.requests_to("me/adaccounts")] == [None, "4", "8"]
    assert no_token_in_urls(graph, token)  # the fake puts it in every next URL
    found = [a for page in pages for a in page]
    assert [a.external_id for a in found] == [f"act_{100 + n}" for n in range(9)]
    assert found[0].name == "Account 0 & <Co>"
    assert (found[0].currency, found[0].timezone) == ("EUR", "Europe/Berlin")


def test_account_states_map_every_documented_code(source, token):
    found = accounts(source, token)
    assert [(a.status, a.active) for a in found] == [
        ("ACTIVE", True),
        ("DISABLED", False),
        ("UNSETTLED", False),
        ("PENDING_RISK_REVIEW", False),
        ("PENDING_SETTLEMENT", False),
        ("IN_GRACE_PERIOD", False),
        ("PENDING_CLOSURE", False),
        ("CLOSED", False),
        ("ACTIVE", True),
    ]
    assert set(ACCOUNT_STATUSES.values()) == {a.status for a in found}


def test_unknown_account_status_is_inactive_and_named(source, graph, token):
    graph.accounts[0]["account_status"] = 42
    assert (accounts(source, token)[0].status, accounts(source, token)[0].active) == ("STATUS_42", False)


def test_a_next_url_on_another_host_is_not_followed(source, graph, token):
    graph.server.fail(
        "me/adaccounts",
        Reply(body={"data": [graph.accounts[0]], "paging": {"next": "https://evil.example/v21.0/me/adaccounts"}}),
    )
    pages = source.list_accounts(creds(token))
    assert len(next(pages)) == 1
    with pytest.raises(SourceError, match="another host"):
        next(pages)


def test_redirects_are_not_followed(source, graph, token):
    graph.server.fail("me/adaccounts", Reply(302, b"", {"Location": f"{graph.url}/{VERSION}/me"}))
    with pytest.raises(SourceError) as error:
        accounts(source, token)
    assert error.value.code == "http_302" and len(graph.server.requests) == 1


# --- extraction ----------------------------------------------------------------------------------


def test_sync_campaign_insights_are_typed(source, graph, token):
    source.page_size = 3
    fields = ["campaign_name", "spend", "impressions", "purchases", "purchase_value", "leads", "cpm", "ctr"]
    batches = extract(source, token, fields=fields)
    assert [b.num_rows for b in batches] == [3, 1]  # 2 campaigns x 2 days, 3 rows a page
    table = pa.concat_tables(batches)
    assert table.column_names == [
        "date",
        "account_id",
        "campaign_id",
        "campaign_name",
        "impressions",
        "spend",
        "ctr",
        "cpm",
        "purchases",
        "purchase_value",
        "leads",
    ]
    schema = table.schema
    assert (schema.field("date").type, schema.field("impressions").type) == (pa.date32(), pa.int64())
    assert schema.field("spend").type == schema.field("cpm").type == pa.decimal128(18, 6)
    assert schema.field("ctr").type == pa.float64()
    first, second = table.slice(0, 1).to_pylist()[0], table.slice(1, 1).to_pylist()[0]
    assert first == {
        "date": JAN_1,
        "account_id": "act_100",
        "campaign_id": "100001",
        "campaign_name": "Campaign 1",
        "impressions": 1000,
        "spend": Decimal("12.34"),
        "ctr": 1.234567,
        "cpm": Decimal("5.123456"),
        "purchases": 3,
        "purchase_value": Decimal("149.97"),
        "leads": 2,
    }
    # Campaign 2 had no actions: zero, not unknown.
    assert (second["campaign_id"], second["purchases"], second["purchase_value"]) == ("100002", 0, Decimal(0))

    (request, *_) = graph.server.requests_to("act_100/insights")
    assert request.method == "GET"
    assert (request.query["level"], request.query["time_increment"]) == ("campaign", "1")
    assert json.loads(request.query["time_range"]) == {"since": "2024-01-01", "until": "2024-01-02"}
    assert set(request.query["fields"].split(",")) == {
        "date_start",
        "campaign_id",
        "campaign_name",
        "spend",
        "impressions",
        "actions",
        "action_values",
        "cpm",
        "ctr",
    }
    assert no_token_in_urls(graph, token)


def test_actions_are_asked_for_only_when_needed(source, graph, token):
    extract(source, token, fields=["clicks"])
    (request,) = graph.server.requests_to("act_100/insights")
    assert "actions" not in request.query["fields"] and "action_values" not in request.query["fields"]


@pytest.mark.parametrize(
    "template, level, key, rows",
    [("adset_daily", "adset", "adset_id", 8), ("ad_daily", "ad", "ad_id", 8)],
)
def test_adset_and_ad_levels(source, graph, token, template, level, key, rows):
    table = pa.concat_tables(extract(source, token, template=template))
    assert graph.server.requests_to("act_100/insights")[0].query["level"] == level
    assert table.num_rows == rows and table.column(key).null_count == 0
    assert len(set(zip(table.column("date").to_pylist(), table.column(key).to_pylist(), strict=True))) == rows


def test_accounts_are_read_in_order_once_each(source, graph, token):
    table = pa.concat_tables(extract(source, token, ids=["act_101", "100", "act_101"]))
    assert table.column("account_id").to_pylist() == ["act_101"] * 4 + ["act_100"] * 4
    assert [r.path for r in graph.server.requests_to("insights")] == [
        f"/{VERSION}/act_101/insights",
        f"/{VERSION}/act_100/insights",
    ]


def test_long_ranges_use_an_async_report_run(source, graph, token, waits):
    source.page_size = 25
    table = pa.concat_tables(extract(source, token, start=JAN_1, end=JAN_31))
    assert table.num_rows == 2 * 31
    assert [f"{r.method} {r.path}" for r in graph.server.requests] == [
        f"POST /{VERSION}/act_100/insights",
        f"GET /{VERSION}/6000",
        f"GET /{VERSION}/6000",
        f"GET /{VERSION}/6000",
        f"GET /{VERSION}/6000/insights",
        f"GET /{VERSION}/6000/insights",
        f"GET /{VERSION}/6000/insights",
    ]
    form = graph.server.requests[0].form()
    assert (form["level"], form["time_increment"]) == ("campaign", "1")
    assert json.loads(form["time_range"]) == {"since": "2024-01-01", "until": "2024-01-31"}
    assert waits == [2.0, 4.0]  # Not Started, then Running at 40 %, then Completed
    assert no_token_in_urls(graph, token)


def test_a_completed_status_waits_for_100_percent(source, graph, token, waits):
    graph.job_states = [("Job Completed", 90), ("Job Completed", 100)]
    assert extract(source, token, start=JAN_1, end=JAN_31)
    assert waits == [2.0]


@pytest.mark.parametrize("state", ["Job Failed", "Job Skipped"])
def test_a_failed_report_run_is_transient(source, graph, token, state):
    graph.job_states = [("Job Running", 10), (state, 10)]
    with pytest.raises(TransientSourceError, match=state) as error:
        extract(source, token, start=JAN_1, end=JAN_31)
    assert error.value.code == "report_run_failed"


def test_a_report_run_that_never_ends_times_out(graph, token, waits):
    graph.job_states = [("Job Running", 10)]
    source = FacebookAdsSource(api_url=graph.url, api_version=VERSION, async_timeout=100, sleep=waits, env={})
    with pytest.raises(TransientSourceError) as error:
        extract(source, token, start=JAN_1, end=JAN_31)
    assert error.value.code == "report_run_timeout"
    assert waits == [2, 4, 8, 16, 30, 30, 30] and sum(waits) >= 100


def test_bad_arguments_raise_value_error_at_the_call(source, graph, token):
    call = source.extract
    with pytest.raises(ValueError, match="Unknown template"):
        call(creds(token), ["act_100"], "nope", [], JAN_1, JAN_2)
    with pytest.raises(ValueError, match="Unknown field"):
        call(creds(token), ["act_100"], "campaign_daily", ["cost"], JAN_1, JAN_2)
    with pytest.raises(ValueError, match="after it ends"):
        call(creds(token), ["act_100"], "campaign_daily", [], JAN_2, JAN_1)
    with pytest.raises(ValueError, match="ad account id"):
        call(creds(token), ["act_1/../me"], "campaign_daily", [], JAN_1, JAN_2)
    call(Credentials({}), ["act_100"], "campaign_daily", [], JAN_1, JAN_2)  # fails when iterated
    assert graph.server.requests == []


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply, status, code",
    [
        (fb_error(190, "Error validating access token: Session has expired", 463), CheckStatus.INVALID, "190/463"),
        (fb_error(190, "The user has not authorized application", 458), CheckStatus.INVALID, "190/458"),
        (fb_error(102, "Session key invalid or no longer valid"), CheckStatus.INVALID, "102"),
        (fb_error(10, "Application does not have permission for this action"), CheckStatus.NO_PERMISSION, "10"),
        (fb_error(200, "(#200) Requires ads_read permission", status=403), CheckStatus.NO_PERMISSION, "200"),
        (fb_error(294, "Managing advertisements requires ads_management"), CheckStatus.NO_PERMISSION, "294"),
        (fb_error(1, "An unknown error occurred", status=500), CheckStatus.TRANSIENT, "1"),
        (fb_error(2, "Service temporarily unavailable", status=503), CheckStatus.TRANSIENT, "2"),
        (fb_error(4, "Application request limit reached"), CheckStatus.TRANSIENT, "4"),
        (fb_error(17, "User request limit reached"), CheckStatus.TRANSIENT, "17"),
        (fb_error(32, "Page request limit reached"), CheckStatus.TRANSIENT, "32"),
        (fb_error(613, "Calls within one hour have exceeded the rate limit"), CheckStatus.TRANSIENT, "613"),
        (fb_error(341, "Application limit reached"), CheckStatus.TRANSIENT, "341"),
        (
            fb_error(368, "The action attempted has been deemed abusive or is otherwise disallowed"),
            CheckStatus.TRANSIENT,
            "368",
        ),
        (fb_error(80000, "There have been too many calls from this ad-account"), CheckStatus.TRANSIENT, "80000"),
        (fb_error(80014, "too many calls for this ad-account"), CheckStatus.TRANSIENT, "80014"),
        (fb_error(100, "Temporary", is_transient=True), CheckStatus.TRANSIENT, "100"),
        (Reply(502, b"<html>Bad gateway</html>"), CheckStatus.TRANSIENT, "http_502"),
        (Reply(429, b""), CheckStatus.TRANSIENT, "http_429"),
    ],
)
def test_errors_are_classified_from_the_body(graph, token, reply, status, code):
    source = FacebookAdsSource(api_url=graph.url, api_version=VERSION, http=HttpSettings(attempts=1), env={})
    graph.server.fail("GET /v21.0/me", reply)
    result = source.check_credentials(creds(token))
    assert (result.status, result.code) == (status, code)


def test_an_invalid_parameter_is_not_retried_and_never_invalid(source, graph, token, waits):
    graph.server.fail("GET /v21.0/me", fb_error(100, "Invalid parameter"))
    result = source.check_credentials(creds(token))
    assert (result.status, result.code, result.definitive) == (CheckStatus.TRANSIENT, "100", True)
    assert len(graph.server.requests) == 1 and waits == []


def test_a_check_the_platform_refuses_as_it_is_is_not_asked_again_and_says_so(source, graph, token, waits):
    from core.errors import InvalidInput
    from operations.connections import check_new_credentials

    graph.server.fail("GET /v21.0/me", fb_error(100, "Invalid parameter"))
    with pytest.raises(InvalidInput) as refused:
        check_new_credentials(source, creds(token))
    assert "asking again would not help" in str(refused.value.fields) and "try again" not in str(refused.value.fields)
    assert len(graph.server.requests) == 1  # not once more "in case it was a blip"


@pytest.mark.parametrize(
    "reply, code",
    [
        (fb_error(100, "(#100) Tried accessing nonexisting field (spend_x) on node type (AdsInsights)"), "100"),
        (fb_error(100, "Unsupported get request. Object with ID 'act_1' does not exist", 33), "100/33"),
        (fb_error(3018, "The start date of the time range cannot be beyond 37 months from the current date"), "3018"),
        (fb_error(2635, "You are calling a deprecated version of the Ads API"), "2635"),
        (fb_error(12, "(#12) This endpoint is deprecated"), "12"),
        (fb_error(1234, "Something the platform says is not temporary", is_transient=False), "1234"),
    ],
)
def test_requests_the_platform_refuses_as_they_are_are_definitive_and_not_retried(
    source, graph, token, waits, reply, code
):
    graph.server.fail("act_100/insights", reply)
    with pytest.raises(RefusedRequest) as error:
        extract(source, token)
    assert error.value.definitive and error.value.code == code
    assert error.value.message.startswith("Facebook: ") and "(code " in error.value.message
    assert len(graph.server.requests_to("act_100/insights")) == 1 and waits == []


@pytest.mark.parametrize(
    "reply, kind",
    [
        (fb_error(100, "Tried accessing nonexisting field (x)", status=200), RefusedRequest),
        (fb_error(190, "Error validating access token", 463, status=200), InvalidCredentials),
        (fb_error(200, "(#200) Requires ads_read permission", status=200), NoPermission),
    ],
)
def test_an_error_in_a_200_body_is_an_error(source, graph, token, waits, reply, kind):
    graph.server.fail("act_100/insights", reply)
    with pytest.raises(kind):
        extract(source, token)


def test_an_error_in_a_200_body_that_is_transient_is_retried(source, graph, token, waits):
    graph.server.fail("act_100/insights", fb_error(17, "User request limit reached", status=200))
    assert extract(source, token) and waits == [2.0]


@pytest.mark.parametrize(
    "error, kind, code",
    [
        (run_error(100, "Tried accessing nonexisting field (foo)"), RefusedRequest, "100"),
        (run_error(2, "Service temporarily unavailable"), TransientSourceError, "2"),
        ({}, TransientSourceError, "report_run_failed"),  # no reason given: may work when run again
    ],
)
def test_a_failed_report_run_is_classified_by_the_error_it_reports(graph, token, waits, error, kind, code):
    source = FacebookAdsSource(api_url=graph.url, api_version="v25.0", sleep=waits, env={})
    graph.job_states = [("Job Running", 10), ("Job Failed", 10)]
    graph.run_error = error
    with pytest.raises(kind) as raised:
        extract(source, token, start=JAN_1, end=JAN_31)
    assert type(raised.value) is kind and raised.value.code == code
    polled = graph.server.requests_to("GET /v25.0/6000")[0].query["fields"].split(",")
    assert {"async_status", "error_code", "error_message"} <= set(polled)


def test_versions_before_25_do_not_ask_a_report_run_for_its_error(source, graph, token):
    graph.job_states = [("Job Failed", 10)]
    graph.run_error = run_error(100, "Tried accessing nonexisting field (foo)")
    with pytest.raises(TransientSourceError):
        extract(source, token, start=JAN_1, end=JAN_31)
    assert graph.server.requests_to("GET /v21.0/6000")[0].query["fields"] == "async_status,async_percent_completion"


def test_rate_limits_wait_the_time_to_regain_access(source, graph, token, waits):
    graph.server.fail(
        "act_100/insights",
        fb_error(80000, "too many calls", headers=buc_headers(2)),
        fb_error(17, "User request limit reached", headers=buc_headers(1)),
    )
    assert extract(source, token)
    assert waits == [120.0, 60.0]


def test_without_a_hint_the_backoff_doubles(source, graph, token, waits):
    graph.server.fail("GET /v21.0/me", fb_error(4, "limit"), fb_error(2, "down", status=503))
    assert source.check_credentials(creds(token)).ok
    assert waits == [2.0, 4.0]


def test_retry_after_is_honoured(source, graph, token, waits):
    graph.server.fail("GET /v21.0/me", Reply(503, b"", {"Retry-After": "7"}))
    assert source.check_credentials(creds(token)).ok
    assert waits == [7.0]


def test_retries_are_bounded(source, graph, token, waits):
    graph.server.fail("me/adaccounts", *[fb_error(613, "limit")] * 10)
    with pytest.raises(TransientSourceError) as error:
        accounts(source, token)
    assert error.value.code == "613"
    assert len(graph.server.requests_to("me/adaccounts")) == 4 and waits == [2.0, 4.0, 8.0]


def test_a_wait_beyond_the_maximum_is_left_to_the_caller(source, graph, token, waits):
    graph.server.fail("GET /v21.0/me", fb_error(80000, "too many calls", headers=buc_headers(30)))
    result = source.check_credentials(creds(token))
    assert (result.status, result.retry_after) == (CheckStatus.TRANSIENT, 1800.0)
    assert waits == []


def test_a_timeout_is_transient(graph, token, waits):
    source = FacebookAdsSource(
        api_url=graph.url, api_version=VERSION, http=HttpSettings(timeout=0.2, attempts=2), sleep=waits, env={}
    )
    graph.server.fail("GET /v21.0/me", Reply(stall=True), Reply(stall=True))
    result = source.check_credentials(creds(token))
    assert (result.status, result.code) == (CheckStatus.TRANSIENT, "timeout")
    assert waits == [2.0]


def test_an_unreachable_platform_is_transient(token):
    source = FacebookAdsSource(api_url="http://127.0.0.1:9", http=HttpSettings(attempts=1), env={})
    result = source.check_credentials(creds(token))
    assert (result.status, result.code) == (CheckStatus.TRANSIENT, "network")


def test_errors_raised_by_each_operation(source, graph, token):
    graph.server.fail("me/adaccounts", fb_error(190, "expired", 463))
    with pytest.raises(InvalidCredentials):
        accounts(source, token)
    graph.server.fail("insights", fb_error(200, "no permission"))
    with pytest.raises(NoPermission):
        extract(source, token)
    graph.server.fail("GET /v21.0/me", fb_error(190, "expired", 463))
    with pytest.raises(InvalidCredentials):
        source.business_account(creds(token))


def test_the_token_never_shows(source, graph, token, caplog):
    caplog.set_level(logging.DEBUG)
    echo = f"Malformed access token {token}"
    graph.server.fail("GET /v21.0/me", fb_error(190, echo), fb_error(613, echo), fb_error(613, echo))
    results = [source.check_credentials(creds(token)) for _ in range(2)]
    graph.server.fail("me/adaccounts", fb_error(100, echo))
    with pytest.raises(SourceError) as error:
        accounts(source, token)
    source.page_size = 1
    graph.job_states = [("Job Running", 50), ("Job Completed", 100)]
    extract(source, token, start=JAN_1, end=JAN_31)  # paged through next URLs holding the token

    assert [r.status for r in results] == [CheckStatus.INVALID, CheckStatus.VALID]
    assert "Malformed access token ***" in results[0].reason
    shown = [
        str(error.value),
        repr(error.value),
        error.value.message,
        *(r.reason for r in results),
        repr(source),
        repr(vars(source)),
        repr(creds(token)),
        caplog.text,
    ]
    assert all(token not in text for text in shown)
    assert "retry" in caplog.text  # the retries were logged, without the token
    assert no_token_in_urls(graph, token)
