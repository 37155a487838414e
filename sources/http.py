"""Shared plumbing of the sources that talk to a platform over HTTPS (Facebook Ads, Google Ads).

- `HttpClient`: JSON requests with urllib and a timeout on every call, no redirects (a bearer
  token must never follow one to another host), and bounded retries of transient errors that
  wait what the platform asks for, through an injectable sleep.
- `redact`: takes secrets out of any text that may reach an exception, a log or a reply.
- `typed_table`: the typed Arrow batches of `extract` (its argument checks are `sources.base.select_fields`).

Settings shared by every HTTP source, read from the environment when a source is built:

    CONNBOT_SOURCE_HTTP_TIMEOUT     seconds to connect and for each read (default 60)
    CONNBOT_SOURCE_HTTP_ATTEMPTS    tries of one request, the first included (default 4)
    CONNBOT_SOURCE_MAX_RETRY_WAIT   longest wait before a retry, in seconds (default 300); a
                                    platform asking for more gets the error raised at once,
                                    with its `retry_after`, for the caller to schedule
"""

from __future__ import annotations

import codecs
import http.client
import json
import logging
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, BinaryIO
from urllib.parse import urlencode, urlsplit

import pyarrow as pa

from sources.base import (
    FieldType,
    SourceError,
    TemplateField,
    TransientSourceError,
)

log = logging.getLogger(__name__)

ENV_TIMEOUT = "CONNBOT_SOURCE_HTTP_TIMEOUT"
ENV_ATTEMPTS = "CONNBOT_SOURCE_HTTP_ATTEMPTS"
ENV_MAX_WAIT = "CONNBOT_SOURCE_MAX_RETRY_WAIT"


def env_number(env: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    """A number from the environment; a wrong one raises ValueError naming the variable."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {raw!r}") from None
    if not value >= minimum:  # also rejects NaN
        raise ValueError(f"{name} must be at least {minimum:g}, not {raw!r}")
    return value


@dataclass(frozen=True)
class HttpSettings:
    timeout: float = 60.0  # seconds, to connect and for each read
    attempts: int = 4  # tries of one request, the first included
    backoff: float = 2.0  # first wait when the platform does not say how long; doubles
    max_wait: float = 300.0  # longest wait taken here; longer ones are the caller's to schedule

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> HttpSettings:
        env = os.environ if env is None else env
        return cls(
            timeout=env_number(env, ENV_TIMEOUT, cls.timeout, 0.001),
            attempts=int(env_number(env, ENV_ATTEMPTS, cls.attempts, 1)),
            max_wait=env_number(env, ENV_MAX_WAIT, cls.max_wait, 0),
        )


def redact(text: str, secrets: Sequence[str]) -> str:
    """The text without any of the secrets (nor their URL-encoded forms)."""
    for secret in secrets:
        if secret:
            for form in {secret, urlencode({"": secret})[1:]}:
                text = text.replace(form, "***")
    return text


def platform_message(text: object, secrets: Sequence[str], limit: int = 300) -> str:
    """A platform's error message, safe and short enough to show."""
    message = redact(" ".join(str(text).split()), secrets)
    return message if len(message) <= limit else message[: limit - 1] + "…"


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]  # case-insensitive (an email.message.Message)
    payload: Any  # the parsed JSON body; None when the body is empty or not JSON

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


# Turns a platform's answer into its SourceError, or None when it is not an error the platform
# describes (the client then judges by the HTTP status alone).
Classifier = Callable[[Response], SourceError | None]


def retry_after_header(headers: Mapping[str, str]) -> float | None:
    """`Retry-After` in seconds; the HTTP-date form is not used by these platforms."""
    try:
        seconds = float(headers.get("Retry-After") or "")
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # the 3xx answer itself is returned, and treated as an error


class HttpClient:
    """Requests to one platform. `platform` names it in messages ("Facebook")."""

    def __init__(
        self,
        platform: str,
        settings: HttpSettings,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.platform = platform
        self.settings = settings
        self._sleep = sleep
        self._opener = urllib.request.build_opener(_NoRedirects)

    def request(
        self,
        method: str,
        url: str,
        *,
        classify: Classifier,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        form: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> Response:
        """One call, retried while it fails transiently; a 2xx answer, or the SourceError."""
        request = _build(method, url, headers, params, form, json_body)
        return self._retrying(request, lambda: self._exchange(request, classify))

    def open_stream(
        self,
        method: str,
        url: str,
        *,
        classify: Classifier,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> BinaryIO:
        """An open 2xx answer to read as it arrives (the caller closes it). Retried like
        `request` until the answer starts; a failure while reading is the caller's."""
        request = _build(method, url, headers, None, None, json_body)
        return self._retrying(request, lambda: self._open_ok(request, classify))

    def _retrying(self, request: urllib.request.Request, call: Callable[[], Any]) -> Any:
        what = f"{request.get_method()} {urlsplit(request.full_url).path}"  # never the query
        attempt = 1
        while True:
            try:
                return call()
            except TransientSourceError as error:
                wait = error.retry_after
                if wait is None:
                    wait = self.settings.backoff * 2 ** (attempt - 1)
                if attempt >= self.settings.attempts or wait > self.settings.max_wait:
                    raise
                log.warning(
                    "%s %s: transient error %s; retry %d of %d in %.1f s",
                    self.platform,
                    what,
                    error.code,
                    attempt,
                    self.settings.attempts - 1,
                    wait,
                )
                self._sleep(wait)
                attempt += 1

    def _exchange(self, request: urllib.request.Request, classify: Classifier) -> Response:
        with self._open(request) as answer:
            body = self._read(answer)
            response = Response(answer.status, answer.headers, _json_or_none(body))
        error = classify(response) or (None if response.ok else self._status_error(response))
        if error is not None:
            raise error
        if response.payload is None:
            raise SourceError(f"{self.platform} answered with something other than JSON", code="bad_answer")
        return response

    def _open_ok(self, request: urllib.request.Request, classify: Classifier) -> BinaryIO:
        answer = self._open(request)
        if 200 <= answer.status < 300:
            return answer
        with answer:
            body = self._read(answer)
        response = Response(answer.status, answer.headers, _json_or_none(body))
        raise classify(response) or self._status_error(response)

    def _open(self, request: urllib.request.Request):
        try:
            return self._opener.open(request, timeout=self.settings.timeout)
        except urllib.error.HTTPError as answer:
            return answer  # a non-2xx answer, judged from its body
        except (OSError, http.client.HTTPException) as problem:  # URLError and timeouts too
            raise self.network_error(problem) from None

    def _read(self, answer) -> bytes:
        try:
            return answer.read()
        except (OSError, http.client.HTTPException) as problem:
            raise self.network_error(problem) from None

    def _status_error(self, response: Response) -> SourceError:
        status = response.status
        if status == 429 or status >= 500:
            return TransientSourceError(
                f"{self.platform} is unavailable or rate limiting (HTTP {status})",
                code=f"http_{status}",
                retry_after=retry_after_header(response.headers),
            )
        return SourceError(f"{self.platform} refused the request (HTTP {status})", code=f"http_{status}")

    def network_error(self, problem: BaseException) -> TransientSourceError:
        cause = getattr(problem, "reason", problem)  # a URLError wraps the socket's error
        if isinstance(cause, TimeoutError) or "timed out" in str(cause):
            reason, code = f"no answer within {self.settings.timeout:g} s", "timeout"
        else:
            reason, code = getattr(cause, "strerror", None) or type(cause).__name__, "network"
        return TransientSourceError(f"{self.platform} could not be reached ({reason})", code=code)


def _build(method, url, headers, params, form, json_body) -> urllib.request.Request:
    if params:
        url = f"{url}{'&' if urlsplit(url).query else '?'}{urlencode(params)}"
    data = None
    all_headers = {"Accept": "application/json", **(headers or {})}
    if form is not None:
        data = urlencode(form).encode()
        all_headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif json_body is not None:
        data = json.dumps(json_body).encode()
        all_headers["Content-Type"] = "application/json"
    return urllib.request.Request(url, data=data, headers=all_headers, method=method)


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body) if body.strip() else None
    except ValueError:
        return None


_SPACE = re.compile(r"[ \t\n\r]*")


def iter_json_array(stream: BinaryIO, client: HttpClient, chunk_size: int = 1 << 16) -> Iterator[Any]:
    """The elements of the JSON array a stream carries, each as soon as it has arrived whole."""
    decoder = json.JSONDecoder()
    text = codecs.getincrementaldecoder("utf-8")()
    buffer, pos, eof = "", 0, False
    state = "open"  # then "first" (a value or "]"), "value", "after" (a comma or "]")

    def read_more(at_least: int) -> None:
        # Grows the unparsed text to `at_least` characters: an element too big for the buffer
        # is parsed again only after the buffer doubled, so big elements cost linear time.
        nonlocal buffer, pos, eof
        buffer = buffer[pos:]
        pos = 0
        while len(buffer) < at_least and not eof:
            try:
                chunk = stream.read(chunk_size)
            except (OSError, http.client.HTTPException) as problem:
                raise client.network_error(problem) from None
            eof = not chunk
            buffer += text.decode(chunk, final=eof)

    while True:
        pos = _SPACE.match(buffer, pos).end()
        if pos == len(buffer):
            if eof:
                raise SourceError(f"{client.platform} sent an incomplete answer", code="bad_answer")
            read_more(1)
            continue
        char = buffer[pos]
        if state == "open":
            if char != "[":
                raise SourceError(f"{client.platform} sent an unexpected answer", code="bad_answer")
            pos, state = pos + 1, "first"
        elif state in ("first", "after") and char == "]":
            return
        elif state == "after":
            if char != ",":
                raise SourceError(f"{client.platform} sent an unexpected answer", code="bad_answer")
            pos, state = pos + 1, "value"
        else:
            try:
                value, end = decoder.raw_decode(buffer, pos)
                complete = end < len(buffer) or eof  # a number may go on in the next chunk
            except ValueError:
                value, complete = None, False
            if not complete:
                if eof:
                    raise SourceError(f"{client.platform} sent a malformed answer", code="bad_answer")
                read_more(2 * (len(buffer) - pos))
                continue
            yield value
            pos, state = end, "after"


# --- extraction --------------------------------------------------------------------------------

# Money keeps 6 decimals: Google's micros exactly, and Facebook's costs per mille.
MONEY = pa.decimal128(18, 6)
MONEY_QUANTUM = Decimal("0.000001")
ARROW_TYPES: Mapping[FieldType, pa.DataType] = {
    FieldType.TEXT: pa.string(),
    FieldType.INTEGER: pa.int64(),
    FieldType.DECIMAL: MONEY,
    FieldType.FLOAT: pa.float64(),
    FieldType.DATE: pa.date32(),
    FieldType.TIMESTAMP: pa.timestamp("us", tz="UTC"),
    FieldType.BOOLEAN: pa.bool_(),
}


def money(value: Decimal) -> Decimal:
    return value.quantize(MONEY_QUANTUM)


def typed_table(rows: list[dict[str, Any]], columns: Sequence[TemplateField]) -> pa.Table:
    """Rows of Python values (int, Decimal, float, date, str, None) as a typed Arrow table."""
    schema = pa.schema([pa.field(f.name, ARROW_TYPES[f.type]) for f in columns])
    return pa.Table.from_pylist(rows, schema=schema)
