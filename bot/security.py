"""Refuses replayed requests.

bolt verifies the signature and that the timestamp is within five minutes; within those five
minutes a captured request could be sent again. A signature is single-use here: a second
request with the same timestamp and signature gets 401 and changes nothing. Slack's own event
retries may come within the same second (same signature) but carry `X-Slack-Retry-Num`, which is
part of the key; events are then de-duplicated by event id (operations/deliveries.py).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from slack_bolt import BoltResponse
from slack_bolt.request import BoltRequest

WINDOW_SECONDS = 5 * 60
MAX_REMEMBERED = 200_000  # bounded memory whatever arrives


class ReplayGuard:
    def __init__(self, clock=time.monotonic):
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()
        self._clock = clock

    def first_use(self, signature: str) -> bool:
        now = self._clock()
        with self._lock:
            while self._seen and (
                next(iter(self._seen.values())) < now - WINDOW_SECONDS or len(self._seen) > MAX_REMEMBERED
            ):
                self._seen.popitem(last=False)
            if signature in self._seen:
                return False
            self._seen[signature] = now
            return True

    def middleware(self, req: BoltRequest, resp: BoltResponse, next):
        signature = (req.headers.get("x-slack-signature") or [None])[0]
        retry = (req.headers.get("x-slack-retry-num") or ["0"])[0]
        if signature and req.mode == "http" and not self.first_use(f"{signature}:{retry}"):
            return BoltResponse(status=401, body="")
        return next()
