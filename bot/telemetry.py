"""What the Slack adapter tells about its work, in the log context and the metrics.

Each request from Slack gets an id (the reference an unexpected error shows), and its kind, team
and connection are bound into the log context for as long as it is handled, background work
included (core.logcontext). It is counted by kind and outcome, with the time to its
acknowledgement. Each HTTP request to the Web API is counted by method and outcome, rate limits
apart (core.metrics).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from slack_bolt import BoltResponse
from slack_bolt.request import BoltRequest
from slack_sdk.http_retry import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from bot.errors import connection_id_of
from core import logcontext, metrics

_INTERACTIONS = frozenset(
    {
        "block_actions",
        "block_suggestion",
        "view_submission",
        "view_closed",
        "shortcut",
        "message_action",
        "url_verification",
    }
)
_EVENT_TYPE = re.compile(r"[a-z_]{1,48}")


def request_kind(body: dict[str, Any]) -> str:
    """`command`, an interaction type (`block_actions`, `view_submission`...), `event:<type>`, or
    `other`."""
    if body.get("command"):
        return "command"
    kind = body.get("type")
    if kind == "event_callback":
        event_type = str((body.get("event") or {}).get("type"))
        return f"event:{event_type}" if _EVENT_TYPE.fullmatch(event_type) else "event:other"
    return kind if kind in _INTERACTIONS else "other"


def observed_dispatch(dispatch: Callable[[BoltRequest], BoltResponse], req: BoltRequest) -> BoltResponse:
    """`dispatch(req)` with the request's id and kind in its log context (which ends with it),
    counted when it is acknowledged: bolt answers Slack once a listener acks, or at once when
    none matches."""
    kind = request_kind(req.body if isinstance(req.body, dict) else {})
    started = time.perf_counter()
    response = logcontext.isolated(dispatch, req, request_id=logcontext.new_request_id(), request_kind=kind)
    outcome = _outcome(response)
    if outcome == "refused":  # its body is not Slack's: its kind says nothing
        kind = "unverified"
    metrics.SLACK_REQUESTS.labels(kind, outcome).inc()
    metrics.SLACK_ACK_SECONDS.labels(kind).observe(time.perf_counter() - started)
    return response


def _outcome(response: BoltResponse | None) -> str:
    status = response.status if response is not None else 500
    if status == 401:
        return "refused"  # signature, timestamp or replay
    if status == 404:
        return "unhandled"  # no listener, or none acknowledged within 3 seconds
    if status >= 300:
        return "error"
    body = response.body if response is not None else ""
    if isinstance(body, str) and body.startswith("{") and '"errors"' in body:
        try:
            if json.loads(body).get("response_action") == "errors":
                return "invalid_input"  # a form answered with errors beside its fields
        except ValueError:
            pass
    return "ok"


class WebApiObserver(RetryHandler):
    """Counts every HTTP request of a Web API client and retries none. First among the client's
    retry handlers, it is shown each answer, each retry included (slack_sdk asks its handlers in
    order until one retries); bolt's per-request clients copy the list."""

    def can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        method = metrics.label(urlsplit(request.url).path.rsplit("/", 1)[-1])
        if response is None:
            outcome = "connection_error"
        elif response.status_code == 429:
            outcome = "ratelimited"
            metrics.SLACK_API_RATE_LIMITED.labels(method).inc()
        elif response.status_code >= 300:
            outcome = f"http_{response.status_code}"
        elif isinstance(response.body, dict) and response.body.get("ok") is False:
            outcome = metrics.label(response.body.get("error"))
        else:
            outcome = "ok"
        metrics.SLACK_API_REQUESTS.labels(method, outcome).inc()
        return False


def bind_request(req: BoltRequest, resp: BoltResponse, next: Callable[[], None]) -> None:
    """bolt middleware, after the request is verified: its team and the connection it is about
    join the log context (the request's own, see `observed_dispatch`)."""
    body = req.body if isinstance(req.body, dict) else {}
    logcontext.bind(team=req.context.team_id, connection_id=connection_id_of(body))
    next()
