"""The built-in demo source: token syntax, behaviours, accounts, templates and extraction."""

from __future__ import annotations

import inspect
import zoneinfo
from datetime import date, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from sources.base import (
    CheckStatus,
    Credentials,
    FieldKind,
    FieldType,
    InvalidCredentials,
    NoPermission,
    RefusedRequest,
    Source,
    TransientSourceError,
)
from sources.demo import (
    ARROW_TYPES,
    AWKWARD_NAMES,
    DEMO_TOKENS,
    SLOW_LATENCY_MS,
    DemoSource,
    TokenSyntaxError,
    parse_token,
)

JAN_1, JAN_7 = date(2024, 1, 1), date(2024, 1, 7)


def creds(token: str) -> Credentials:
    return Credentials({"token": token})


def accounts(source: DemoSource, token: str) -> list:
    return [account for page in source.list_accounts(creds(token)) for account in page]


def extract(source: DemoSource, token: str, ids, template="campaign_daily", fields=(), **kw):
    start, end = kw.get("start", JAN_1), kw.get("end", JAN_7)
    return list(source.extract(creds(token), ids, template, list(fields), start, end))


def account_ids(token: str) -> list[str]:
    return [a.external_id for a in accounts(DemoSource(), token)]


class Sleeps:
    """Records the pauses instead of sleeping."""

    def __init__(self):
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


# --- token syntax ----------------------------------------------------------------------------


def test_parse_defaults_and_knobs():
    plain = parse_token("demo")
    assert (plain.behaviour, plain.accounts, plain.campaigns, plain.latency_ms, plain.seed) == (
        "",
        15,
        5,
        0,
        0,
    )
    assert plain.business.name == "Acme Retail"

    token = parse_token("  demo-slow:accounts=5000,latency=50,business=globex,campaigns=2,seed=7\n")
    assert token.behaviour == "slow"
    assert (token.accounts, token.campaigns, token.latency_ms, token.seed) == (5000, 2, 50, 7)
    assert token.business.name == "Globex Travel"
    assert parse_token("demo:business=3").business.name == "Initech Software"
    assert parse_token("demo-slow").latency_ms == SLOW_LATENCY_MS
    assert parse_token("demo-slow:latency=0").latency_ms == 0


@pytest.mark.parametrize(
    "token, problem",
    [
        ("", "starts with `demo`"),
        ("EAABsecretvalue", "starts with `demo`"),
        ("Demo", "starts with `demo`"),
        ("demo-broken", "unknown behaviour"),
        ("demo_slow", "unexpected text after `demo`"),
        ("demo:", "name=value"),
        ("demo:accounts", "name=value"),
        ("demo:accounts=5,", "name=value"),
        ("demo:accounts = 5", "name=value"),
        ("demo:accounts=0", "accounts must be a whole number from 1 to 100000"),
        ("demo:accounts=100001", "from 1 to 100000"),
        ("demo:campaigns=1000", "campaigns must be"),
        ("demo:latency=60001", "latency must be"),
        ("demo:seed=abc", "seed must be"),
        ("demo:seed=-1", "seed must be"),
        ("demo:seed=" + "9" * 5000, "seed must be"),
        ("demo:accounts=\u0663", "accounts must be"),  # an Arabic-Indic digit
        ("demo:business=wayne", "business must be one of acme, globex"),
        ("demo:colour=red", "unknown knob 'colour'"),
        ("demo:accounts=5,accounts=6", "accounts is given twice"),
    ],
)
def test_bad_syntax_is_invalid_with_a_reason(token, problem):
    with pytest.raises(TokenSyntaxError, match=problem):
        parse_token(token)
    result = DemoSource().check_credentials(creds(token))
    assert result.status is CheckStatus.INVALID
    assert result.code == "malformed_token"
    assert problem in result.reason and "Expected `demo`" in result.reason


def test_reason_never_repeats_a_pasted_secret():
    for token in ("EAABsecretvalue", "demo:EAABsecretvalue=1"):
        assert "EAAB" not in DemoSource().check_credentials(creds(token)).reason


def test_missing_token_is_invalid():
    result = DemoSource().check_credentials(Credentials({}))
    assert (result.status, result.code) == (CheckStatus.INVALID, "malformed_token")


def test_example_tokens_all_parse():
    assert {"valid", "expired", "no_permission", "flaky", "slow", "empty", "refused"} <= set(DEMO_TOKENS)
    for token in DEMO_TOKENS.values():
        parse_token(token)


def test_credentials_repr_hides_the_token():
    secret = creds("demo-slow:accounts=5000,latency=50")
    assert "demo" not in repr(secret) and "demo" not in str(secret)
    assert "token" in repr(secret)


# --- behaviours ------------------------------------------------------------------------------


def test_valid_token():
    source = DemoSource()
    assert source.check_credentials(creds("demo")).ok
    business = source.business_account(creds("demo:business=hooli"))
    assert business.name == "Hooli Media" and business.id


def test_expired_token_fails_everywhere():
    source, expired = DemoSource(), creds("demo-expired")
    result = source.check_credentials(expired)
    assert (result.status, result.code) == (CheckStatus.INVALID, "token_expired")
    with pytest.raises(InvalidCredentials):
        source.business_account(expired)
    with pytest.raises(InvalidCredentials):
        next(source.list_accounts(expired))
    with pytest.raises(InvalidCredentials):
        next(source.extract(expired, ["act_1000001"], "campaign_daily", [], JAN_1, JAN_7))


def test_noperm_token_identifies_the_login_but_reads_nothing():
    source, noperm = DemoSource(), creds("demo-noperm")
    result = source.check_credentials(noperm)
    assert (result.status, result.code) == (CheckStatus.NO_PERMISSION, "missing_permission")
    assert source.business_account(noperm).name == "Acme Retail"
    with pytest.raises(NoPermission):
        next(source.list_accounts(noperm))
    with pytest.raises(NoPermission):
        next(source.extract(noperm, ["act_1000001"], "campaign_daily", [], JAN_1, JAN_7))


def test_flaky_token_fails_every_odd_request_and_is_never_invalid():
    source = DemoSource()
    results = [source.check_credentials(creds("demo-flaky")) for _ in range(6)]
    assert [r.status for r in results] == [CheckStatus.TRANSIENT, CheckStatus.VALID] * 3
    assert results[0].code == "rate_limited" and results[0].retry_after == 1.0

    # Counted per token and per instance: another token or instance starts afresh.
    assert not source.check_credentials(creds("demo-flaky:seed=1")).ok
    assert not DemoSource().check_credentials(creds("demo-flaky")).ok


def test_flaky_token_every_operation_works_on_its_first_retry():
    source, flaky = DemoSource(), creds("demo-flaky")
    with pytest.raises(TransientSourceError) as error:
        source.business_account(flaky)
    assert error.value.retry_after == 1.0
    assert source.business_account(flaky).name == "Acme Retail"

    with pytest.raises(TransientSourceError):
        next(source.list_accounts(flaky))
    assert sum(len(page) for page in source.list_accounts(flaky)) == 15

    with pytest.raises(TransientSourceError):
        next(source.extract(flaky, ["act_1000001"], "campaign_daily", [], JAN_1, JAN_7))
    batches = list(source.extract(flaky, ["act_1000001"], "campaign_daily", [], JAN_1, JAN_7))
    assert sum(b.num_rows for b in batches) == 5 * 7


def test_empty_token_has_no_accounts():
    source, empty = DemoSource(), creds("demo-empty:accounts=50")
    assert source.check_credentials(empty).ok
    assert source.business_account(empty).name == "Acme Retail"
    assert list(source.list_accounts(empty)) == []
    with pytest.raises(NoPermission):
        next(source.extract(empty, ["act_1000001"], "campaign_daily", [], JAN_1, JAN_7))


def test_refused_token_works_but_its_reports_are_refused_definitively():
    source, refused = DemoSource(), creds("demo-refused")
    assert source.check_credentials(refused).ok
    assert sum(len(page) for page in source.list_accounts(refused)) == 15
    with pytest.raises(RefusedRequest) as error:
        next(source.extract(refused, ["act_1000001"], "campaign_daily", [], JAN_1, JAN_7))
    assert (error.value.code, error.value.definitive, error.value.status) == (
        "invalid_parameter",
        True,
        CheckStatus.TRANSIENT,  # nothing says the credentials are wrong
    )


def test_slow_token_pauses_per_page_of_accounts():
    sleeps = Sleeps()
    pages = list(DemoSource(sleep=sleeps).list_accounts(creds("demo-slow:accounts=1200")))
    assert [len(p) for p in pages] == [500, 500, 200]
    assert sleeps.calls == [SLOW_LATENCY_MS / 1000] * 3


def test_latency_pauses_per_batch_of_rows():
    sleeps = Sleeps()
    ids = account_ids("demo:accounts=300")
    batches = extract(DemoSource(sleep=sleeps), "demo:accounts=300,latency=50", ids)
    assert len(batches) == 1 and sleeps.calls == [0.05]

    sleeps.calls.clear()
    end = JAN_1 + timedelta(days=39)  # 300 accounts x 5 campaigns x 40 days = 60,000 rows
    batches = extract(DemoSource(sleep=sleeps), "demo:accounts=300,latency=50", ids, end=end)
    assert len(batches) == 2 and sleeps.calls == [0.05, 0.05]


def test_no_latency_no_sleep():
    def refuse(seconds):
        raise AssertionError("slept without latency")

    source = DemoSource(sleep=refuse)
    assert len(accounts(source, "demo")) == 15
    assert extract(source, "demo", ["act_1000001"])


# --- accounts --------------------------------------------------------------------------------


def test_accounts_are_deterministic_and_vary_with_seed_and_business():
    first = accounts(DemoSource(), "demo:accounts=200")
    assert accounts(DemoSource(), "demo:accounts=200") == first
    assert accounts(DemoSource(), "demo:accounts=200,seed=9") != first
    # A larger login extends a smaller one: account n is the same whatever the count.
    assert accounts(DemoSource(), "demo:accounts=300")[:200] == first
    globex = accounts(DemoSource(), "demo:accounts=200,business=globex")
    assert not {a.external_id for a in globex} & {a.external_id for a in first}


def test_accounts_look_like_a_platform():
    found = accounts(DemoSource(), "demo:accounts=1000")
    assert found[0].external_id == "act_1000001"
    assert len({a.external_id for a in found}) == 1000
    assert {a.currency for a in found} >= {"USD", "EUR", "GBP"}
    for account in found:
        zoneinfo.ZoneInfo(account.timezone)  # a real IANA name
        assert account.name
        assert account.active == (account.status == "ACTIVE")
    statuses = [a.status for a in found]
    assert statuses.count("ACTIVE") > 0.7 * len(found)
    assert {"DISABLED", "CLOSED"} <= set(statuses)


@pytest.mark.parametrize("seed", [0, 12345])
def test_awkward_names_and_inactive_states_are_always_in_the_first_15(seed):
    first = accounts(DemoSource(), f"demo:seed={seed}")
    names = {a.name for a in first}
    assert set(AWKWARD_NAMES.values()) <= names
    joined = "".join(names)
    for awkward in ("&", "*", "<", "🚀", "\u05d7", "\u0645"):  # emoji, Hebrew and Arabic letters
        assert awkward in joined
    assert any(len(name) > 75 for name in names)
    assert {"DISABLED", "CLOSED"} <= {a.status for a in first}


def test_100000_accounts_stream_in_lazy_pages():
    sleeps = Sleeps()
    pages = DemoSource(sleep=sleeps).list_accounts(creds("demo:accounts=100000,latency=1"))
    assert inspect.isgenerator(pages)
    first = next(pages)
    assert len(first) == 500
    assert len(sleeps.calls) == 1  # only the first page has been made so far

    count, last = len(first), first[-1]
    for page in pages:
        assert 0 < len(page) <= 500
        count, last = count + len(page), page[-1]
    assert count == 100_000 and len(sleeps.calls) == 200
    assert last.external_id == "act_1100000"


# --- templates -------------------------------------------------------------------------------


def test_templates_are_well_formed():
    templates = DemoSource().templates()
    assert [t.name for t in templates] == ["campaign_daily", "ad_daily", "account_daily"]
    for template in templates:
        names = [f.name for f in template.fields]
        assert len(names) == len(set(names))
        assert template.title and template.description
        assert "\n" not in template.description
        assert "account_id" in template.primary_key and "date" in template.primary_key
        for key in template.primary_key:
            assert template.field(key).kind is FieldKind.DIMENSION
        assert template.field("date").type is FieldType.DATE
        assert template.field("spend").type is FieldType.DECIMAL
        assert template.metrics and any(not m.default for m in template.metrics)
    campaign = templates[0]
    assert campaign.primary_key == ("date", "account_id", "campaign_id")


# --- extraction ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "template, per_account_and_day", [("campaign_daily", 4), ("ad_daily", 12), ("account_daily", 1)]
)
def test_extract_types_and_row_counts(template, per_account_and_day):
    source = DemoSource()
    report = {t.name: t for t in source.templates()}[template]
    ids = account_ids("demo:accounts=20")
    batches = extract(source, "demo:accounts=20,campaigns=4", ids, template, [f.name for f in report.fields])
    table = pa.concat_tables(batches)
    assert table.num_rows == 20 * per_account_and_day * 7
    assert table.schema == pa.schema([pa.field(f.name, ARROW_TYPES[f.type]) for f in report.fields])
    assert table.schema.field("date").type == pa.date32()
    assert pa.types.is_decimal(table.schema.field("spend").type)
    assert table.column("account_id").null_count == 0
    keys = table.select(list(report.primary_key)).to_pylist()
    assert len({tuple(k.values()) for k in keys}) == table.num_rows
    assert set(table.column("account_id").to_pylist()) == set(ids)
    dates = table.column("date").to_pylist()
    assert min(dates) == JAN_1 and max(dates) == JAN_7
    assert pc.min(table.column("impressions")).as_py() > 0
    clicks, impressions = table.column("clicks"), table.column("impressions")
    assert pc.all(pc.less_equal(clicks, impressions)).as_py()


def test_extract_always_adds_the_key_and_keeps_the_template_order():
    batches = extract(DemoSource(), "demo", ["act_1000002"], fields=["spend", "campaign_name"])
    assert batches[0].column_names == ["date", "account_id", "campaign_id", "campaign_name", "spend"]
    batches = extract(DemoSource(), "demo", ["act_1000002"], "ad_daily")
    assert batches[0].column_names == ["date", "account_id", "ad_id"]


def test_extract_is_deterministic_and_varies_with_seed():
    fields = ["impressions", "clicks", "spend", "conversions", "campaign_name"]
    ids = ["act_1000003", "act_1000001"]
    first = pa.concat_tables(extract(DemoSource(), "demo", ids, fields=fields))
    assert pa.concat_tables(extract(DemoSource(), "demo", ids, fields=fields)).equals(first)
    assert first.column("account_id")[0].as_py() == "act_1000003"  # the order asked for
    other = pa.concat_tables(extract(DemoSource(), "demo:seed=1", ids, fields=fields))
    assert not other.equals(first)
    # A row does not depend on the rest of the request.
    alone = pa.concat_tables(extract(DemoSource(), "demo", ["act_1000001"], fields=fields))
    assert alone.equals(first.slice(first.num_rows - alone.num_rows))


def test_batches_hold_at_most_50000_rows():
    ids = account_ids("demo:accounts=300")
    end = JAN_1 + timedelta(days=39)
    batches = extract(DemoSource(), "demo:accounts=300", ids, fields=["spend"], end=end)
    assert [b.num_rows for b in batches] == [50_000, 10_000]
    assert pa.concat_tables(batches).num_rows == 300 * 5 * 40
    assert all(b.schema == batches[0].schema for b in batches)


def test_account_and_ad_reports_add_up_to_the_campaign_report():
    ids = ["act_1000001", "act_1000005"]
    metrics = ["impressions", "clicks", "spend", "conversions"]

    def totals(template):
        table = pa.concat_tables(extract(DemoSource(), "demo", ids, template, metrics))
        grouped = table.group_by(["account_id", "date"]).aggregate([(m, "sum") for m in metrics])
        return grouped.sort_by([("account_id", "ascending"), ("date", "ascending")])

    campaigns = totals("campaign_daily")
    assert totals("account_daily").equals(campaigns)
    assert totals("ad_daily").equals(campaigns)


def test_video_views_only_for_video_ads():
    table = pa.concat_tables(extract(DemoSource(), "demo", ["act_1000001"], "ad_daily", ["ad_format", "video_views"]))
    formats = table.column("ad_format").to_pylist()
    views = table.column("video_views").to_pylist()
    assert set(formats) <= {"IMAGE", "VIDEO", "CAROUSEL"}
    assert all((v > 0) == (f == "VIDEO") for f, v in zip(formats, views, strict=True))


def test_bad_arguments_raise_value_error_at_the_call():
    source = DemoSource()
    with pytest.raises(ValueError, match="Unknown template 'bogus'.*campaign_daily"):
        source.extract(creds("demo"), ["act_1000001"], "bogus", [], JAN_1, JAN_7)
    with pytest.raises(ValueError, match="Unknown field.*'ad_name'.*campaign_daily"):
        source.extract(creds("demo"), ["act_1000001"], "campaign_daily", ["ad_name"], JAN_1, JAN_7)
    with pytest.raises(ValueError, match="starts .* after it ends"):
        source.extract(creds("demo"), ["act_1000001"], "campaign_daily", [], JAN_7, JAN_1)


def test_unknown_accounts_raise_no_permission_before_any_row():
    source = DemoSource()
    for unknown in ("act_1000016", "act_2000001", "1000001", "act_"):
        with pytest.raises(NoPermission, match="cannot see") as error:
            next(source.extract(creds("demo"), ["act_1000001", unknown], "ad_daily", [], JAN_1, JAN_7))
        assert error.value.code == "unknown_account"


def test_no_accounts_no_batches():
    assert extract(DemoSource(), "demo", []) == []


# --- registration ----------------------------------------------------------------------------


def test_registry_finds_the_demo_source_through_its_entry_point():
    from sources.registry import get_source

    source = get_source("demo")
    assert isinstance(source, DemoSource) and isinstance(source, Source)
    assert (source.name, source.title, source.auth_type) == ("demo", "Demo Ads", "token")
    (field,) = source.credential_fields
    assert field.name == "token" and field.secret
    assert "-flaky" in field.hint and "accounts=" in field.hint


def test_a_masked_secret_reveals_at_most_a_quarter_and_nothing_of_a_short_one():
    from sources.base import mask

    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    for length in range(1, 61):
        secret = (alphabet * 2)[:length]
        shown = mask(secret).replace("…", "").replace("•", "")
        assert len(shown) <= length // 4, (length, mask(secret))
        assert shown == "" or secret.endswith(shown[-3:])
    assert mask("short") == mask("shorter!!") == "•" * 8  # not even the length
    assert mask("") == ""
