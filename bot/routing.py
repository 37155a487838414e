"""Small typed JSON carried in button values and private_metadata: ids only, never secrets."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, TypeVar

from core.errors import StaleAction

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")  # what unpack builds: one of the dataclasses below

MAX_VALUE = 2000  # Slack's limit for a button value
MAX_METADATA = 3000  # Slack's limit for a view's private_metadata


def pack(data: Any, limit: int = MAX_VALUE) -> str:
    text = _encode(data)
    if len(text) > limit:
        raise ValueError("routing value too long")
    return text


def _encode(data: Any) -> str:
    # vars(), not asdict(): the fields are plain values, and a card packs dozens of these.
    return json.dumps({k: v for k, v in vars(data).items() if v is not None}, separators=(",", ":"), ensure_ascii=False)


def unpack(cls: type[T], text: str | None) -> T:
    """Parse what we packed; anything else is an old or forged payload."""
    try:
        raw = json.loads(text or "")
        hints = _hints(cls)
        values = {k: v for k, v in raw.items() if k in hints} if isinstance(raw, dict) else None
        if values is None or not all(_fits(v, hints[k]) for k, v in values.items()):
            raise ValueError("not what we packed")
        return cls(**values)
    except (ValueError, TypeError):
        raise StaleAction(
            "This button is from an older version of the message. Type `/connections` to start again."
        ) from None


@functools.cache
def _hints(cls: type[DataclassInstance]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls)}


def _fits(value: Any, hint: Any) -> bool:
    """Whether a JSON value is of a field's type: ids and indexes are ints the database holds."""
    if typing.get_origin(hint) is types.UnionType:
        return any(_fits(value, option) for option in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if typing.get_origin(hint) is tuple:
        return isinstance(value, list) and all(_fits(item, typing.get_args(hint)[0]) for item in value)
    if hint is int:
        return type(value) is int and 0 <= value < 2**31
    return isinstance(value, hint)


@dataclass(frozen=True)
class CardRef:
    """Which card, tab and page a button refers to."""

    c: int  # connection id
    t: str = "orders"  # tab
    p: int = 0  # page index within the tab


@dataclass(frozen=True)
class ListRef:
    o: int = 0  # offset
    q: str | None = None  # search text


@dataclass(frozen=True)
class OrderRef:
    c: int
    o: int  # order id
    a: str = ""  # OrderAction
    p: int = 0  # the orders page the menu is on, kept when the card is refreshed


@dataclass(frozen=True)
class AlertRef:
    a: int  # alert id


@dataclass(frozen=True)
class HistoryRef:
    """A page of an order's Run history."""

    c: int
    o: int
    p: int = 0


@dataclass(frozen=True)
class Draft:
    """What the four-step Extract modal has collected so far (ids and choices, no secrets)."""

    c: int  # connection id
    k: str  # idempotency key of the eventual Create
    a: tuple[int, ...] = ()  # selected account ids
    q: str | None = None  # account search, carried on step 1 only (private_metadata has 3,000 characters)
    p: int = 0  # account page
    t: str | None = None  # template
    n: str | None = None  # order name
    h: int | None = 30  # historical depth in days
    s: str | None = None  # load since (YYYY-MM-DD)
    sk: str = "daily"  # schedule kind
    se: int = 6  # every N hours
    sa: str = "06:00"  # at
    sw: int = 0  # weekday
    sd: int = 1  # day of month
    tz: str = "UTC"
    f: tuple[str, ...] | None = None  # chosen fields; None: the template's defaults (or `fm`)
    fm: str | None = None  # chosen fields as a mask over the template's fields, when their names are too long
    kf: tuple[str, ...] | None = None  # key fields chosen for a template without a primary key
    ch: str | None = None  # channel of the card
    ts: str | None = None  # ts of the card when it is a channel message

    def but(self, **changes) -> Draft:
        from dataclasses import replace

        return replace(self, **changes)


def pack_draft(draft: Draft) -> str:
    return pack(draft, MAX_METADATA)


def search_that_fits(draft: Draft) -> Draft:
    """The draft with its search shortened as far as private_metadata needs (only when quotes and
    backslashes, escaped twice as long, fill the name and the search): a shorter search finds the
    same accounts and a few more."""
    over = len(_encode(draft)) - MAX_METADATA
    if over <= 0 or not draft.q:
        return draft
    return draft.but(q=draft.q[: max(0, len(draft.q) - over)].strip() or None)  # each character cut saves one or more


def with_fields(draft: Draft, chosen: Sequence[str], offered: Sequence[str]) -> Draft:
    """The draft carrying the fields `chosen` among the template's `offered` fields: by name when
    that fits in private_metadata, else as a mask over `offered` (hundreds of a stream's fields do
    not fit by name), which keeps them in the template's order."""
    by_name = draft.but(f=tuple(dict.fromkeys(chosen)), fm=None)
    if len(_encode(by_name)) <= MAX_METADATA:
        return by_name
    picked = set(chosen)
    bits = bytearray((len(offered) + 7) // 8)
    for i, name in enumerate(offered):
        if name in picked:
            bits[i // 8] |= 1 << (i % 8)
    return draft.but(f=None, fm=f"{_fingerprint(offered)}.{base64.urlsafe_b64encode(bytes(bits)).decode()}")


def draft_fields(draft: Draft, offered: Sequence[str]) -> tuple[str, ...] | None:
    """The fields the draft carries (None: the template's defaults, also when the template's fields
    changed since the mask was made: a new discovery of the catalog)."""
    if draft.fm is None:
        return draft.f
    fingerprint, _, encoded = draft.fm.partition(".")
    if fingerprint != _fingerprint(offered):
        return None
    try:
        bits = base64.urlsafe_b64decode(encoded)
    except ValueError:
        return None
    return tuple(name for i, name in enumerate(offered) if i // 8 < len(bits) and bits[i // 8] >> (i % 8) & 1)


def _fingerprint(names: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(names).encode()).hexdigest()[:12]


def unpack_draft(text: str | None) -> Draft:
    draft = unpack(Draft, text)
    # JSON brings lists back; the draft holds tuples.
    return draft.but(
        a=tuple(draft.a or ()),
        f=tuple(draft.f) if draft.f is not None else None,
        kf=tuple(draft.kf) if draft.kf is not None else None,
    )
