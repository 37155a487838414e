"""The built-in `demo` data source: a deterministic synthetic ad platform.

It needs no network and exercises every path of the app: healthy, expired, under-permitted,
flaky, slow and empty logins, from a handful to 100,000 accounts, and reports of any size.

Credentials syntax
------------------
The only credential is `token`::

    token     = "demo" [ "-" behaviour ] [ ":" knob { "," knob } ]
    behaviour = "expired" | "noperm" | "flaky" | "slow" | "empty" | "refused"
    knob      = "accounts=" N      accounts of the login, 1..100000 (default 15)
              | "campaigns=" N     campaigns per account, 1..999 (default 5)
              | "business=" K      acme (default), globex, initech, umbrella, hooli, or 1..5
              | "latency=" MS      pause per page of accounts and per report batch, 0..60000
                                   (default 0; 250 with -slow)
              | "seed=" S          varies names, states and figures, 0..4294967295 (default 0)

Lowercase, no spaces inside, each knob at most once; surrounding whitespace is ignored.
Examples: `demo`, `demo-flaky`, `demo:business=globex,accounts=40`,
`demo-slow:accounts=5000,latency=50`. Anything else is INVALID (code `malformed_token`) with
a reason saying what is expected.

Behaviours:

- `demo-expired`: every call fails as INVALID / `InvalidCredentials`, code `token_expired`.
- `demo-noperm`: `check_credentials` gives NO_PERMISSION (code `missing_permission`);
  `business_account` works; `list_accounts` and `extract` raise `NoPermission`.
- `demo-flaky`: requests are numbered per `DemoSource` instance and per token, from 1; the
  odd-numbered ones fail as TRANSIENT / `TransientSourceError` (code `rate_limited`,
  `retry_after` 1.0 s), the even ones succeed, so each operation works on its first retry.
  A request is one call of `check_credentials` or `business_account`, or the start of
  iterating `list_accounts` or `extract` (later pages and batches are not counted).
- `demo-slow`: a 250 ms pause per page and per batch, unless `latency=` says otherwise.
- `demo-empty`: the login has no accounts, whatever `accounts=` says.
- `demo-refused`: the login works, but every report request is refused as a platform refuses
  an invalid parameter: `extract` raises `RefusedRequest` (code `invalid_parameter`), which is
  definitive (never retried).

Source errors are raised when iteration starts, as a real API fails on its first request;
bad arguments (unknown template or field, start after end) raise `ValueError` at the call.

Accounts are `act_<business><index>` (`act_1000001`...) and depend only on (business, seed,
accounts). Fixed indices below 15 carry awkward names (`&`, `<`, Slack markup, emoji,
right-to-left text, an over-long name) and inactive states (DISABLED, CLOSED), whatever the
seed, so any login of 15 accounts or more shows them. Rows depend only on (business, seed,
account, campaign, ad, date); `account_daily` is the sum of `campaign_daily` over campaigns and
`ad_daily` splits each campaign's figures exactly among its 3 ads. Unknown account ids make
`extract` raise `NoPermission` (code `unknown_account`) before any batch, as platforms answer
for accounts the login cannot see.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache, cached_property
from typing import NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

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

# --- the token ------------------------------------------------------------------------------

BEHAVIOURS = ("expired", "noperm", "flaky", "slow", "empty", "refused")
MAX_ACCOUNTS = 100_000
MAX_CAMPAIGNS = 999  # campaign ids are the account number followed by three digits
SLOW_LATENCY_MS = 250
FLAKY_RETRY_AFTER = 1.0
TOKEN_SYNTAX = (
    "`demo`, optionally -expired, -noperm, -flaky, -slow, -empty or -refused, then optional knobs after "
    "a colon: accounts=N, campaigns=N, business=acme|globex|initech|umbrella|hooli, "
    "latency=MS, seed=S (e.g. `demo-slow:accounts=5000,latency=50`)"
)


class Business(NamedTuple):
    number: int  # leads the account numbers, so businesses never share an account id
    key: str
    name: str
    short: str  # prefix of generated account names
    home_market: int  # index in MARKETS where most of its accounts are


BUSINESSES: tuple[Business, ...] = (
    Business(1, "acme", "Acme Retail", "Acme", 0),
    Business(2, "globex", "Globex Travel", "Globex", 2),
    Business(3, "initech", "Initech Software", "Initech", 1),
    Business(4, "umbrella", "Umbrella Health", "Umbrella", 3),
    Business(5, "hooli", "Hooli Media", "Hooli", 9),
)

# Example tokens, e.g. for seeding demo connections.
DEMO_TOKENS: Mapping[str, str] = {
    "valid": "demo",
    "expired": "demo-expired",
    "no_permission": "demo-noperm",
    "flaky": "demo-flaky",
    "slow": "demo-slow",
    "empty": "demo-empty",
    "refused": "demo-refused",
    "large": "demo:accounts=5000",
    "huge": "demo-slow:accounts=100000,latency=20",
    "globex": "demo:business=globex,accounts=40",
}


@dataclass(frozen=True)
class DemoToken:
    """A parsed token. Latency is resolved: the knob if given, else the behaviour's default."""

    behaviour: str = ""  # "" for a healthy login
    accounts: int = 15
    campaigns: int = 5
    business: Business = BUSINESSES[0]
    latency_ms: int = 0
    seed: int = 0


class TokenSyntaxError(ValueError):
    """The token does not follow the syntax; the message never repeats the token."""


_TOKEN_RE = re.compile(r"demo(?:-([a-z]+))?(?::(.*))?", re.DOTALL)
_KNOB_RE = re.compile(r"([a-z_]+)=(.+)")
_NUMBER_RE = re.compile(r"[0-9]{1,10}")  # ASCII digits, short enough for int() to be cheap
_INT_KNOBS = {  # name: (low, high)
    "accounts": (1, MAX_ACCOUNTS),
    "campaigns": (1, MAX_CAMPAIGNS),
    "latency": (0, 60_000),
    "seed": (0, 2**32 - 1),
}


def parse_token(token: str) -> DemoToken:
    """The token's meaning; raises TokenSyntaxError naming the problem."""
    match = _TOKEN_RE.fullmatch(token.strip())
    if not match:
        if token.strip().startswith("demo"):
            raise TokenSyntaxError("unexpected text after `demo`")
        raise TokenSyntaxError("a demo token starts with `demo`")
    behaviour, knobs = match.group(1) or "", match.group(2)
    if behaviour and behaviour not in BEHAVIOURS:
        raise TokenSyntaxError(f"unknown behaviour; use one of -{', -'.join(BEHAVIOURS)}")
    values: dict[str, object] = {}
    for part in knobs.split(",") if knobs is not None else ():
        knob = _KNOB_RE.fullmatch(part)
        if not knob:
            raise TokenSyntaxError("knobs are name=value pairs separated by commas")
        name, value = knob.groups()
        if name not in _INT_KNOBS and name != "business":
            # The name comes from the token: short words only, in case a real secret was pasted.
            shown = f" {name!r}" if len(name) <= 12 else ""
            raise TokenSyntaxError(f"unknown knob{shown}; use accounts, campaigns, business, latency or seed")
        if name in values:
            raise TokenSyntaxError(f"{name} is given twice")
        values[name] = _business(value) if name == "business" else _bounded(name, value)
    if "latency" not in values:
        values["latency"] = SLOW_LATENCY_MS if behaviour == "slow" else 0
    values["latency_ms"] = values.pop("latency")
    return DemoToken(behaviour=behaviour, **values)  # type: ignore[arg-type]


def _bounded(name: str, value: str) -> int:
    low, high = _INT_KNOBS[name]
    if not _NUMBER_RE.fullmatch(value) or not low <= int(value) <= high:
        raise TokenSyntaxError(f"{name} must be a whole number from {low} to {high}")
    return int(value)


def _business(value: str) -> Business:
    for business in BUSINESSES:
        if value in (business.key, str(business.number)):
            return business
    keys = ", ".join(b.key for b in BUSINESSES)
    raise TokenSyntaxError(f"business must be one of {keys} (or 1 to {len(BUSINESSES)})")


# --- accounts -------------------------------------------------------------------------------


class Market(NamedTuple):
    code: str
    currency: str
    timezone: str


MARKETS: tuple[Market, ...] = (
    Market("US", "USD", "America/New_York"),
    Market("US", "USD", "America/Los_Angeles"),
    Market("UK", "GBP", "Europe/London"),
    Market("DE", "EUR", "Europe/Berlin"),
    Market("FR", "EUR", "Europe/Paris"),
    Market("ES", "EUR", "Europe/Madrid"),
    Market("JP", "JPY", "Asia/Tokyo"),
    Market("AU", "AUD", "Australia/Sydney"),
    Market("BR", "BRL", "America/Sao_Paulo"),
    Market("IN", "INR", "Asia/Kolkata"),
    Market("CA", "CAD", "America/Toronto"),
    Market("NP", "NPR", "Asia/Kathmandu"),  # +05:45, to catch whole-hour offset assumptions
)
_ACCOUNT_CHANNELS = ("Search", "Social", "Display", "Video", "Shopping", "Brand", "Performance")

# Seed-independent, so every login of 15+ accounts shows them: they test escaping and
# truncation in Slack (mrkdwn, `<!channel>`, HTML, emoji, right-to-left, > 75 characters).
AWKWARD_NAMES: Mapping[int, str] = {
    1: "Fish & Chips Co.",
    2: "*Bold* _Italic_ ~Strike~ `Code`",
    4: "<script>alert('x')</script> & <!channel>",
    6: "Café Crème 🚀✨ Launch",
    8: "متجر الرياض – Riyadh Store",
    10: "חנות תל אביב",
    12: ("An extremely long account name that goes well past the 75 characters Slack shows in options"),
    13: "Quotes \"double\" 'single' and back\\slash",
}
_FIXED_STATES: Mapping[int, str] = {3: "DISABLED", 9: "CLOSED", 14: "CLOSED"}

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_MIX1, _MIX2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


def _mix64(x: int) -> int:
    """splitmix64's finaliser: a fast, well-spread 64-bit hash, same on every run."""
    x &= _MASK
    x = ((x ^ (x >> 30)) * _MIX1) & _MASK
    x = ((x ^ (x >> 27)) * _MIX2) & _MASK
    return x ^ (x >> 31)


@cache
def _login_key(business: str, seed: int) -> int:
    digest = hashlib.blake2b(f"{business}/{seed}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _account_key(token: DemoToken, index: int) -> int:
    return _mix64(_login_key(token.business.key, token.seed) + (index + 1) * _GOLDEN)


def _account_number(token: DemoToken, index: int) -> int:
    return token.business.number * 1_000_000 + index + 1


def _account(token: DemoToken, index: int, key: int) -> SourceAccount:
    if key & 0xFF < 150:  # ~60% in the business's home market
        market = MARKETS[token.business.home_market]
    else:
        market = MARKETS[(key >> 8) % len(MARKETS)]
    name = AWKWARD_NAMES.get(index)
    if name is None:
        channel = _ACCOUNT_CHANNELS[(key >> 16) % len(_ACCOUNT_CHANNELS)]
        name = f"{token.business.short} {market.code} – {channel} {index + 1}"
    if index < 15:
        status = _FIXED_STATES.get(index, "ACTIVE")
    else:
        draw = (key >> 24) & 0xFF  # ~80% active, ~12% disabled, ~8% closed
        status = "ACTIVE" if draw < 205 else "DISABLED" if draw < 235 else "CLOSED"
    return SourceAccount(
        external_id=f"act_{_account_number(token, index)}",
        name=name,
        currency=market.currency,
        timezone=market.timezone,
        active=status == "ACTIVE",
        status=status,
    )


_ACCOUNT_ID_RE = re.compile(r"act_(\d{1,12})")


def _account_index(token: DemoToken, external_id: str) -> int | None:
    """The index of an account id the login can see, or None."""
    match = _ACCOUNT_ID_RE.fullmatch(external_id)
    if not match or token.behaviour == "empty":
        return None
    index = int(match.group(1)) - _account_number(token, 0)
    return index if 0 <= index < token.accounts else None


# --- templates ------------------------------------------------------------------------------


def _dim(name: str, label: str, type: FieldType = FieldType.TEXT, default: bool = True) -> TemplateField:
    return TemplateField(name, label, type, FieldKind.DIMENSION, default)


def _metric(name: str, label: str, type: FieldType = FieldType.INTEGER, default: bool = True) -> TemplateField:
    return TemplateField(name, label, type, FieldKind.METRIC, default)


_DATE = _dim("date", "Date", FieldType.DATE)
_ACCOUNT_ID = _dim("account_id", "Account ID")
_CAMPAIGN_ID = _dim("campaign_id", "Campaign ID")
_CAMPAIGN_NAME = _dim("campaign_name", "Campaign name")
_IMPRESSIONS = _metric("impressions", "Impressions")
_CLICKS = _metric("clicks", "Clicks")
_SPEND = _metric("spend", "Spend", FieldType.DECIMAL)
_CONVERSIONS = _metric("conversions", "Conversions")
_CONVERSION_VALUE = _metric("conversion_value", "Conversion value", FieldType.DECIMAL, False)

TEMPLATES: tuple[ExtractionTemplate, ...] = (
    ExtractionTemplate(
        name="campaign_daily",
        title="Campaigns by day",
        description="Delivery and cost of each campaign, one row per campaign and day.",
        fields=(
            _DATE,
            _ACCOUNT_ID,
            _CAMPAIGN_ID,
            _CAMPAIGN_NAME,
            _dim("campaign_objective", "Objective", default=False),
            _IMPRESSIONS,
            _CLICKS,
            _SPEND,
            _CONVERSIONS,
            _CONVERSION_VALUE,
            _metric("reach", "Reach", default=False),
            _metric("ctr", "Click-through rate", FieldType.FLOAT, default=False),
        ),
        primary_key=("date", "account_id", "campaign_id"),
    ),
    ExtractionTemplate(
        name="ad_daily",
        title="Ads by day",
        description="Delivery and cost of each ad, one row per ad and day.",
        fields=(
            _DATE,
            _ACCOUNT_ID,
            _CAMPAIGN_ID,
            _CAMPAIGN_NAME,
            _dim("ad_id", "Ad ID"),
            _dim("ad_name", "Ad name"),
            _dim("ad_format", "Ad format", default=False),
            _IMPRESSIONS,
            _CLICKS,
            _SPEND,
            _CONVERSIONS,
            _metric("video_views", "Video views", default=False),
        ),
        primary_key=("date", "account_id", "ad_id"),
    ),
    ExtractionTemplate(
        name="account_daily",
        title="Accounts by day",
        description="Totals of each ad account, one row per account and day.",
        fields=(
            _DATE,
            _ACCOUNT_ID,
            _dim("account_name", "Account name"),
            _dim("currency", "Currency", default=False),
            _IMPRESSIONS,
            _CLICKS,
            _SPEND,
            _CONVERSIONS,
            _CONVERSION_VALUE,
        ),
        primary_key=("date", "account_id"),
    ),
)
_METRIC_NAMES = frozenset(f.name for t in TEMPLATES for f in t.metrics)

ARROW_TYPES: Mapping[FieldType, pa.DataType] = {
    FieldType.TEXT: pa.string(),
    FieldType.INTEGER: pa.int64(),
    FieldType.DECIMAL: pa.decimal128(18, 2),
    FieldType.FLOAT: pa.float64(),
    FieldType.DATE: pa.date32(),
    FieldType.TIMESTAMP: pa.timestamp("us", tz="UTC"),
    FieldType.BOOLEAN: pa.bool_(),
}

# --- row generation -------------------------------------------------------------------------
# Every batch is computed column-wise with pyarrow kernels; each value comes from a splitmix64
# hash of (account key, campaign, ad, day), so any slice of any report can be rebuilt alone.

ADS_PER_CAMPAIGN = 3
_U64 = pa.uint64()
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_WEEKDAY_FACTOR = pa.array([1.0, 1.04, 1.06, 1.05, 0.97, 0.8, 0.76])  # Monday first
# Cumulative share of a campaign's figures taken by its ads 1..3, one profile per campaign:
# ad k gets floor(total * cum[k+1]) - floor(total * cum[k]), which sums exactly to the total.
_AD_SHARE_PROFILES = pa.array([0, 0.5, 0.8, 1, 0, 0.34, 0.67, 1, 0, 0.6, 0.9, 1, 0, 0.25, 0.6, 1])
_THEMES = pa.array(
    [
        "Spring Sale",
        "Summer Launch",
        "Back to School",
        "Black Friday",
        "Holiday Gifts",
        "Brand Awareness",
        "Retargeting",
        "Prospecting",
        "New Arrivals",
        "Clearance",
        "Loyalty",
        "App Installs",
        "Lead Gen",
        "Always On",
        "Competitor Conquest",
        "Evergreen",
    ]
)
_PLACEMENTS = pa.array(["Feed", "Stories", "Search", "Display", "Video", "Shopping"])
_OBJECTIVES = pa.array(["SALES", "TRAFFIC", "AWARENESS", "LEADS", "ENGAGEMENT", "APP_PROMOTION"])
_CREATIVES = (
    ("Hero image", "IMAGE"),
    ("Lifestyle carousel", "CAROUSEL"),
    ("Product video", "VIDEO"),
    ("Testimonial video", "VIDEO"),
    ("Offer banner", "IMAGE"),
    ("Catalogue carousel", "CAROUSEL"),
    ("UGC video", "VIDEO"),
    ("Price drop image", "IMAGE"),
)
_CREATIVE_NAMES = pa.array([name for name, _ in _CREATIVES])
_CREATIVE_FORMATS = pa.array([kind for _, kind in _CREATIVES])


def _u64(value: int) -> pa.Scalar:
    return pa.scalar(value & _MASK, _U64)


def _mix(x: pa.Array) -> pa.Array:
    """`_mix64` over a uint64 array: pyarrow's unchecked uint64 multiply wraps, as it must."""
    x = pc.bit_wise_xor(x, pc.shift_right(x, _u64(30)))
    x = pc.multiply(x, _u64(_MIX1))
    x = pc.bit_wise_xor(x, pc.shift_right(x, _u64(27)))
    x = pc.multiply(x, _u64(_MIX2))
    return pc.bit_wise_xor(x, pc.shift_right(x, _u64(31)))


def _salted(hashes: pa.Array, values: pa.Array | int, salt: int) -> pa.Array:
    """Hash of (hashes, values): values are small non-negative ints (array or int)."""
    spread = pc.multiply(pc.cast(pc.add(values, 1), _U64), _u64(salt))
    return _mix(pc.bit_wise_xor(hashes, spread))


def _unit(hashes: pa.Array, slot: int) -> pa.Array:
    """A uniform float in [0, 1) from the 16 bits of slot 0..3 of each hash."""
    bits = pc.bit_wise_and(pc.shift_right(hashes, _u64(16 * slot)), _u64(0xFFFF))
    return pc.divide(pc.cast(bits, pa.float64()), 65536.0)


def _mod(values: pa.Array, divisor: pa.Scalar | int) -> pa.Array:
    # Not pc.modulo: it is missing from older pyarrow releases that pyproject allows.
    return pc.subtract(values, pc.multiply(pc.divide(values, divisor), divisor))


def _pick(table: pa.Array, hashes: pa.Array, shift: int = 0) -> pa.Array:
    """An element of a small table chosen by some bits of each hash."""
    bits = pc.shift_right(hashes, _u64(shift)) if shift else hashes
    return pc.take(table, _mod(bits, _u64(len(table))))


def _between(low: float, high: float, unit: pa.Array) -> pa.Array:
    return pc.add(pc.multiply(unit, high - low), low)


def _whole(values: pa.Array) -> pa.Array:
    return pc.cast(pc.floor(values), pa.int64())


def _campaign_figures(series: pa.Array, day_ordinal: pa.Array) -> dict[str, pa.Array]:
    """One campaign-day's figures; money in cents. `series` hashes (account, campaign)."""
    level, rate, price, yield_ = (_unit(series, slot) for slot in range(4))
    daily = _salted(series, day_ordinal, 0xD1B54A32D192ED03)
    noise = [_unit(daily, slot) for slot in range(4)]
    seasonal = pc.take(_WEEKDAY_FACTOR, _mod(pc.subtract(day_ordinal, 1), 7))  # ordinal 1: Monday
    reach_share = _between(0.55, 0.9, yield_)
    impressions = _whole(
        pc.multiply(
            pc.multiply(_between(400, 40_400, pc.multiply(level, level)), seasonal),
            _between(0.7, 1.3, noise[0]),
        )
    )
    clicks = _whole(pc.multiply(pc.multiply(impressions, _between(0.004, 0.034, rate)), _between(0.8, 1.2, noise[1])))
    spend = _whole(pc.multiply(pc.multiply(clicks, _between(15, 265, price)), _between(0.85, 1.15, noise[2])))
    conversions = _whole(pc.multiply(pc.multiply(clicks, _between(0.01, 0.1, yield_)), _between(0.7, 1.3, noise[3])))
    order_value = _between(2_000, 20_000, pc.subtract(1.0, price))  # cheap clicks, pricier baskets
    return {
        "impressions": impressions,
        "clicks": clicks,
        "spend": spend,
        "conversions": conversions,
        "conversion_value": _whole(pc.multiply(conversions, order_value)),
        "reach": _whole(pc.multiply(impressions, reach_share)),
    }


def _money(cents: pa.Array) -> pa.Array:
    # Exact: cents / 100 is the double nearest to the decimal, and the cast rounds to 2 places.
    return pc.cast(pc.divide(pc.cast(cents, pa.float64()), 100.0), ARROW_TYPES[FieldType.DECIMAL])


def _units_per_account(template: str, campaigns: int) -> int:
    """Rows per account and day."""
    if template == "account_daily":
        return 1
    return campaigns * (ADS_PER_CAMPAIGN if template == "ad_daily" else 1)


@cache
def _offsets(size: int) -> pa.Array:
    return pa.array(range(size), pa.int64())


class _Accounts:
    """The requested accounts as arrays, by position in the request."""

    def __init__(self, token: DemoToken, indices: Sequence[int]):
        self.token = token
        self.indices = indices
        self.key_list = [_account_key(token, i) for i in indices]
        self.keys = pa.array(self.key_list, _U64)
        self.numbers = pa.array([_account_number(token, i) for i in indices], pa.int64())
        self.ids = pc.binary_join_element_wise("act_", pc.cast(self.numbers, pa.string()), "")

    @cached_property
    def _details(self) -> list[SourceAccount]:
        return [_account(self.token, i, k) for i, k in zip(self.indices, self.key_list, strict=True)]

    @cached_property
    def names(self) -> pa.Array:
        return pa.array([a.name for a in self._details], pa.string())

    @cached_property
    def currencies(self) -> pa.Array:
        return pa.array([a.currency for a in self._details], pa.string())


class _Rows:
    """The arrays of one batch: rows `start .. start+size` of the report, ordered by account,
    campaign, ad, day. Columns are computed on first use, so unrequested ones cost nothing."""

    def __init__(
        self,
        accounts: _Accounts,
        template: str,
        campaigns: int,
        first: date,
        days: int,
        start: int,
        size: int,
        offsets: pa.Array,
    ):
        self.accounts, self.template, self.campaigns = accounts, template, campaigns
        per_account = _units_per_account(template, campaigns) * days
        row = pc.add(offsets.slice(0, size), start)
        self.position = pc.divide(row, per_account)
        rest = pc.subtract(row, pc.multiply(self.position, per_account))
        unit = pc.divide(rest, days)
        self.day_ordinal = pc.add(pc.subtract(rest, pc.multiply(unit, days)), first.toordinal())
        if template == "ad_daily":
            self.campaign = pc.divide(unit, ADS_PER_CAMPAIGN)
            self.ad = pc.subtract(unit, pc.multiply(self.campaign, ADS_PER_CAMPAIGN))
        else:
            self.campaign = unit

    def column(self, name: str) -> pa.Array:
        return self.figures[name] if name in _METRIC_NAMES else getattr(self, name)

    @cached_property
    def key(self) -> pa.Array:
        return pc.take(self.accounts.keys, self.position)

    @cached_property
    def series(self) -> pa.Array:
        return _salted(self.key, self.campaign, _GOLDEN)

    @cached_property
    def ad_hash(self) -> pa.Array:
        return _salted(self.series, self.ad, 0xA24BAED4963EE407)

    @cached_property
    def date(self) -> pa.Array:
        days = pc.cast(pc.subtract(self.day_ordinal, _EPOCH_ORDINAL), pa.int32())
        return pc.cast(days, pa.date32())

    @cached_property
    def account_id(self) -> pa.Array:
        return pc.take(self.accounts.ids, self.position)

    @cached_property
    def account_name(self) -> pa.Array:
        return pc.take(self.accounts.names, self.position)

    @cached_property
    def currency(self) -> pa.Array:
        return pc.take(self.accounts.currencies, self.position)

    @cached_property
    def _campaign_number(self) -> pa.Array:
        number = pc.take(self.accounts.numbers, self.position)
        return pc.add(pc.multiply(number, 1000), pc.add(self.campaign, 1))

    @cached_property
    def campaign_id(self) -> pa.Array:
        return pc.cast(self._campaign_number, pa.string())

    @cached_property
    def campaign_name(self) -> pa.Array:
        theme = pc.binary_join_element_wise(_pick(_THEMES, self.series), _pick(_PLACEMENTS, self.series, 8), " – ")
        return pc.binary_join_element_wise(theme, pc.cast(pc.add(self.campaign, 1), pa.string()), " #")

    @cached_property
    def campaign_objective(self) -> pa.Array:
        return _pick(_OBJECTIVES, self.series, 16)

    @cached_property
    def ad_id(self) -> pa.Array:
        number = pc.add(pc.multiply(self._campaign_number, 100), pc.add(self.ad, 1))
        return pc.cast(number, pa.string())

    @cached_property
    def ad_name(self) -> pa.Array:
        return pc.binary_join_element_wise(
            _pick(_CREATIVE_NAMES, self.ad_hash), pc.cast(pc.add(self.ad, 1), pa.string()), " #"
        )

    @cached_property
    def ad_format(self) -> pa.Array:
        return _pick(_CREATIVE_FORMATS, self.ad_hash)  # same bits as ad_name: they agree

    @cached_property
    def figures(self) -> dict[str, pa.Array]:
        if self.template == "account_daily":
            raw = self._account_figures()
        else:
            raw = _campaign_figures(self.series, self.day_ordinal)
            if self.template == "ad_daily":
                raw = self._ad_figures(raw)
            else:
                as_float = [pc.cast(raw[n], pa.float64()) for n in ("clicks", "impressions")]
                raw["ctr"] = pc.divide(*as_float)  # impressions are never 0
        for money in ("spend", "conversion_value"):
            if money in raw:
                raw[money] = _money(raw[money])
        return raw

    def _account_figures(self) -> dict[str, pa.Array]:
        totals: dict[str, pa.Array] = {}
        for campaign in range(self.campaigns):
            figures = _campaign_figures(_salted(self.key, campaign, _GOLDEN), self.day_ordinal)
            for name in ("impressions", "clicks", "spend", "conversions", "conversion_value"):
                totals[name] = pc.add(totals[name], figures[name]) if campaign else figures[name]
        return totals

    def _ad_figures(self, campaign: dict[str, pa.Array]) -> dict[str, pa.Array]:
        profile = pc.multiply(pc.cast(pc.shift_right(self.series, _u64(62)), pa.int64()), 4)
        low = pc.take(_AD_SHARE_PROFILES, pc.add(profile, self.ad))
        high = pc.take(_AD_SHARE_PROFILES, pc.add(profile, pc.add(self.ad, 1)))
        figures = {
            name: pc.subtract(_whole(pc.multiply(campaign[name], high)), _whole(pc.multiply(campaign[name], low)))
            for name in ("impressions", "clicks", "spend", "conversions")
        }
        view_rate = _between(0.15, 0.5, _unit(self.ad_hash, 2))
        viewed = _whole(pc.multiply(figures["impressions"], view_rate))
        figures["video_views"] = pc.if_else(pc.equal(self.ad_format, "VIDEO"), viewed, 0)
        return figures


# --- the source -----------------------------------------------------------------------------


class DemoSource:
    """A synthetic ad platform; see the module docstring for the token syntax and behaviours."""

    name = "demo"
    title = "Demo Ads"
    auth_type = AuthType.TOKEN
    credential_fields: tuple[CredentialField, ...] = (
        CredentialField(
            name="token",
            label="Demo token",
            secret=True,
            hint="`demo` works; `demo-expired`, `-noperm`, `-flaky`, `-slow`, `-empty` misbehave; "
            "knobs go after a colon, e.g. `demo:accounts=5000,business=globex,latency=50,seed=7`",
        ),
    )
    page_size = 500
    batch_rows = 50_000

    def __init__(self, sleep: Callable[[float], None] = time.sleep):
        self._sleep = sleep  # injectable, so tests of latency need not wait
        self._requests: dict[str, int] = {}
        self._lock = threading.Lock()

    def templates(self) -> tuple[ExtractionTemplate, ...]:
        return TEMPLATES

    def check_credentials(self, credentials: Credentials) -> CheckResult:
        try:
            self._request(credentials, reads=True)
        except SourceError as error:
            return error.as_check()
        return CheckResult(CheckStatus.VALID)

    def business_account(self, credentials: Credentials) -> BusinessAccount:
        business = self._request(credentials, reads=False).business
        return BusinessAccount(id=f"biz_{business.number:04d}", name=business.name)

    def list_accounts(self, credentials: Credentials) -> Iterator[Sequence[SourceAccount]]:
        token = self._request(credentials, reads=True)
        count = 0 if token.behaviour == "empty" else token.accounts
        for first in range(0, count, self.page_size):
            self._pause(token)
            indices = range(first, min(first + self.page_size, count))
            yield [_account(token, i, _account_key(token, i)) for i in indices]

    def extract(
        self,
        credentials: Credentials,
        account_ids: Sequence[str],
        template: str,
        fields: Sequence[str],
        start: date,
        end: date,
    ) -> Iterator[pa.Table]:
        """Tables of up to `batch_rows` rows, ordered by account (as requested), campaign, ad,
        day, with the template's key, `account_id` and `fields`, in the template's order."""
        report, columns = select_fields(self.name, TEMPLATES, template, fields, start, end)
        schema = pa.schema([pa.field(f.name, ARROW_TYPES[f.type]) for f in columns])
        unique_ids = list(dict.fromkeys(account_ids))
        return self._batches(credentials, unique_ids, report, schema, start, end)

    def _batches(
        self,
        credentials: Credentials,
        account_ids: list[str],
        report: ExtractionTemplate,
        schema: pa.Schema,
        start: date,
        end: date,
    ) -> Iterator[pa.Table]:
        token = self._request(credentials, reads=True)
        if token.behaviour == "refused":
            raise RefusedRequest(
                "The demo platform refuses this report request: one of its fields does not exist (invalid parameter)",
                code="invalid_parameter",
            )
        indices = [_account_index(token, a) for a in account_ids]
        unknown = [a for a, i in zip(account_ids, indices, strict=True) if i is None]
        if unknown:
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            raise NoPermission(
                f"The demo login cannot see account(s) {', '.join(unknown[:5])}{more}",
                code="unknown_account",
            )
        accounts = _Accounts(token, indices)  # type: ignore[arg-type]  # no None left
        days = (end - start).days + 1
        total = len(indices) * _units_per_account(report.name, token.campaigns) * days
        offsets = _offsets(self.batch_rows)
        for first in range(0, total, self.batch_rows):
            self._pause(token)
            size = min(self.batch_rows, total - first)
            rows = _Rows(accounts, report.name, token.campaigns, start, days, first, size, offsets)
            yield pa.Table.from_arrays([rows.column(n) for n in schema.names], schema=schema)

    def _request(self, credentials: Credentials, reads: bool) -> DemoToken:
        """One call to the platform: the token's meaning, or the SourceError it answers with."""
        raw = credentials.get("token", "")
        try:
            token = parse_token(raw)
        except TokenSyntaxError as problem:
            raise InvalidCredentials(
                f"Not a valid demo token: {problem}. Expected {TOKEN_SYNTAX}.",
                code="malformed_token",
            ) from None
        if token.behaviour == "expired":
            raise InvalidCredentials("The demo token has expired; reconnect with a fresh one", code="token_expired")
        if token.behaviour == "flaky":
            with self._lock:
                number = self._requests[raw] = self._requests.get(raw, 0) + 1
            if number % 2:
                raise TransientSourceError(
                    "The demo platform is rate limiting this token; try again shortly",
                    code="rate_limited",
                    retry_after=FLAKY_RETRY_AFTER,
                )
        if token.behaviour == "noperm" and reads:
            raise NoPermission(
                "The demo token lacks the ads_read permission, so it cannot read accounts or reports",
                code="missing_permission",
            )
        return token

    def _pause(self, token: DemoToken) -> None:
        if token.latency_ms:
            self._sleep(token.latency_ms / 1000)
