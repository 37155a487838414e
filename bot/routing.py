"""Small typed JSON carried in button values and private_metadata: ids only, never secrets."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any, TypeVar

from core.errors import StaleAction

T = TypeVar("T")

MAX_VALUE = 2000  # Slack's limit for a button value


def pack(data: Any) -> str:
    text = json.dumps({k: v for k, v in asdict(data).items() if v is not None}, separators=(",", ":"), ensure_ascii=False)
    if len(text) > MAX_VALUE:
        raise ValueError("routing value too long")
    return text


def unpack(cls: type[T], text: str | None) -> T:
    """Parse what we packed; anything else is an old or forged payload."""
    try:
        raw = json.loads(text or "")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})
    except (ValueError, TypeError):
        raise StaleAction("This button is from an older version of the message. Type `/connections` to start again.") from None


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
