"""Verifies that a request comes from Slack, and only once.

Slack signs every request: `X-Slack-Signature` is `v0=` and the hex HMAC-SHA256, keyed with the
signing secret, of `v0:<X-Slack-Request-Timestamp>:<body>`. A request is refused with 401 when a
header is missing or malformed (whatever its shape: bolt's own check answered 500 for a
timestamp that is not a number), the timestamp is more than five minutes away, or the signature
does not match. Nothing runs for a refused request; it leaves one warning line naming the
reason, never a header's value or the body.

Within those five minutes a captured request could be sent again, so a signature is single-use:
a second request with the same timestamp and signature is refused as well. Slack's own event
retries may come within the same second (same signature) but carry `X-Slack-Retry-Num`, which is
part of the key; events are then de-duplicated by event id (operations/deliveries.py).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence

log = logging.getLogger(__name__)

WINDOW_SECONDS = 5 * 60
MAX_REMEMBERED = 200_000  # bounded memory whatever arrives
_TIMESTAMP = re.compile(r"[0-9]{1,12}")  # Unix seconds, ASCII digits only (int() takes "١٢", " 1", "1_0")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")
_RETRY = re.compile(r"[0-9]{1,3}")


class RequestVerifier:
    def __init__(
        self,
        signing_secret: str | None,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self._key = (signing_secret or "").encode()
        self._clock = clock
        self._monotonic = monotonic
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def refusal(self, headers: Mapping[str, Sequence[str]], body: str) -> str | None:
        """Why the request is not an authentic first delivery from Slack; None when it is.
        `headers` by lower-case name (bolt's form), `body` as received."""
        if not self._key:
            return "no signing secret is set (SLACK_SIGNING_SECRET)"
        timestamp = _header(headers, "x-slack-request-timestamp")
        signature = _header(headers, "x-slack-signature")
        if timestamp is None or signature is None:
            return "missing X-Slack-Request-Timestamp or X-Slack-Signature"
        if not _TIMESTAMP.fullmatch(timestamp):
            return "X-Slack-Request-Timestamp is not a Unix time"
        if abs(self._clock() - int(timestamp)) > WINDOW_SECONDS:
            return "X-Slack-Request-Timestamp is more than five minutes away"
        if not _SIGNATURE.fullmatch(signature):
            return "X-Slack-Signature is not a v0 signature"
        # The body arrives decoded from UTF-8; encoded again, it is the bytes Slack signed.
        signed = b"v0:" + timestamp.encode() + b":" + body.encode("utf-8", "replace")
        expected = "v0=" + hmac.new(self._key, signed, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            return "the signature does not match"
        retry = _header(headers, "x-slack-retry-num") or "0"
        if not self._first_use(f"{signature}:{retry if _RETRY.fullmatch(retry) else 'other'}"):
            return "a replay of a request already served"
        return None

    def _first_use(self, key: str) -> bool:
        now = self._monotonic()
        with self._lock:
            while self._seen and (
                next(iter(self._seen.values())) < now - WINDOW_SECONDS or len(self._seen) > MAX_REMEMBERED
            ):
                self._seen.popitem(last=False)
            if key in self._seen:
                return False
            self._seen[key] = now
            return True


def _header(headers: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = headers.get(name)
    if isinstance(values, str):
        return values
    return values[0] if values else None
