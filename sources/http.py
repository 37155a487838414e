"""Shared plumbing of the sources that talk to a platform over HTTPS (Facebook Ads, Google Ads).

- `HttpClient`: JSON requests to one platform through one pool of keep-alive connections
  (httpx), shared by every thread of the process and bounded; a timeout on every call, TLS
  verified against the system's certificates, proxies from the environment, no redirects (a
  bearer token must never follow one to another host), no cookies kept, and bounded retries of
  transient errors that wait what the platform asks for, through an injectable sleep.
- `redact`: takes secrets out of any text that may reach an exception, a log or a reply.
- `typed_table`: the typed Arrow batches of `extract` (its argument checks are `sources.base.select_fields`).

Settings shared by every HTTP source, read from the environment when a source is built:

    CONNBOT_SOURCE_HTTP_TIMEOUT     seconds to connect, for each read, and to wait for a free
                                    connection of the pool (default 60)
    CONNBOT_SOURCE_HTTP_ATTEMPTS    tries of one request, the first included (default 4)
    CONNBOT_SOURCE_MAX_RETRY_WAIT   longest wait before a retry, in seconds (default 300); a
                                    platform asking for more gets the error raised at once,
                                    with its `retry_after`, for the caller to schedule
    CONNBOT_SOURCE_HTTP_CONNECTIONS connections a source keeps open at most, by all the
                                    threads of the process together (default 64); a request
                                    finding them all busy waits for one
"""

from __future__ import annotations

import codecs
import http.cookiejar
import json
import logging
import os
import re
import ssl
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol, TypeVar
from urllib.parse import urlencode

import httpx
import pyarrow as pa

from sources.base import (
    FieldType,
    SourceError,
    TemplateField,
    TransientSourceError,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

ENV_TIMEOUT = "CONNBOT_SOURCE_HTTP_TIMEOUT"
ENV_ATTEMPTS = "CONNBOT_SOURCE_HTTP_ATTEMPTS"
ENV_MAX_WAIT = "CONNBOT_SOURCE_MAX_RETRY_WAIT"
ENV_CONNECTIONS = "CONNBOT_SOURCE_HTTP_CONNECTIONS"


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
    timeout: float = 60.0  # seconds, to connect, for each read, and for a free connection
    attempts: int = 4  # tries of one request, the first included
    backoff: float = 2.0  # first wait when the platform does not say how long; doubles
    max_wait: float = 300.0  # longest wait taken here; longer ones are the caller's to schedule
    # Open at once, by every thread together. Account syncs (two threads per request slot) and
    # extraction runs each hold one while they read a streamed answer: keep it above their sum.
    connections: int = 64

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> HttpSettings:
        env = os.environ if env is None else env
        return cls(
            timeout=env_number(env, ENV_TIMEOUT, cls.timeout, 0.001),
            attempts=int(env_number(env, ENV_ATTEMPTS, cls.attempts, 1)),
            max_wait=env_number(env, ENV_MAX_WAIT, cls.max_wait, 0),
            connections=int(env_number(env, ENV_CONNECTIONS, cls.connections, 1)),
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
    headers: Mapping[str, str]  # case-insensitive (httpx.Headers)
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


class _NoQueryInLogs(logging.Filter):
    """httpx logs every request's URL (at INFO): the query is left out, as in the sources' own
    lines, so nothing a URL may carry (a paging URL holds the token it was asked with) is logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                arg.copy_with(query=None, fragment=None, username=None, password=None)
                if isinstance(arg, httpx.URL)
                else arg
                for arg in record.args
            )
        return True


if not any(isinstance(f, _NoQueryInLogs) for f in logging.getLogger("httpx").filters):
    logging.getLogger("httpx").addFilter(_NoQueryInLogs())


class HttpClient:
    """Requests to one platform. `platform` names it in messages ("Facebook").

    The pool is opened by the first request and shared by every thread. `close()` closes it (a
    request after that opens a new one); so does the client's garbage collection, and the
    interpreter's exit."""

    def __init__(
        self,
        platform: str,
        settings: HttpSettings,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.platform = platform
        self.settings = settings
        self._sleep = sleep
        self._pool: httpx.Client | None = None
        self._closing: weakref.finalize[[], HttpClient] | None = None
        self._lock = threading.Lock()
        # Requests in flight, at most one per connection of the pool. When requests queue inside
        # httpcore's pool (1.0.9) for its connections, it can hand one connection to two of them
        # or close one under a request (encode/httpcore#1110): they wait here instead, so the
        # pool always has a connection free, or room for one.
        self._in_flight = threading.BoundedSemaphore(settings.connections)

    def __repr__(self) -> str:
        return f"HttpClient({self.platform}, {'open' if self._pool else 'closed'})"

    def close(self) -> None:
        """Closes the pool's connections."""
        with self._lock:
            closing, self._closing, self._pool = self._closing, None, None
        if closing is not None:
            closing()

    def _client(self) -> httpx.Client:
        with self._lock:
            if self._pool is None:
                self._pool = _open_pool(self.settings)
                self._closing = weakref.finalize(self, self._pool.close)
            return self._pool

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
        request = self._build(method, url, headers, params, form, json_body)
        return self._retrying(request, lambda: self._exchange(request, classify))

    def open_stream(
        self,
        method: str,
        url: str,
        *,
        classify: Classifier,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> Stream:
        """An open 2xx answer to read as it arrives (the caller closes it, which hands its
        connection back to the pool). Retried like `request` until the answer starts; a
        failure while reading is the caller's."""
        request = self._build(method, url, headers, None, None, json_body)
        return self._retrying(request, lambda: self._open_ok(request, classify))

    def _build(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        params: Mapping[str, str] | None,
        form: Mapping[str, str] | None,
        json_body: Any,
    ) -> httpx.Request:
        return self._client().build_request(
            method,
            url,
            params=params or None,  # a next page's URL carries its own query, kept as it is
            headers={"Accept": "application/json", **(headers or {})},
            data=form,
            json=json_body,
        )

    def _retrying(self, request: httpx.Request, call: Callable[[], T]) -> T:
        what = f"{request.method} {request.url.path}"  # never the query
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

    def _take_turn(self) -> None:
        """Waits for one of the requests in flight to end (the timeout at most)."""
        if not self._in_flight.acquire(timeout=self.settings.timeout):
            raise self._all_busy()

    def _exchange(self, request: httpx.Request, classify: Classifier) -> Response:
        self._take_turn()
        try:
            answer = self._client().send(request)  # read whole: the connection is back in the pool
        except httpx.RequestError as problem:
            raise self.network_error(problem) from None
        finally:
            self._in_flight.release()
        response = Response(answer.status_code, answer.headers, _json_or_none(answer.content))
        error = classify(response) or (None if response.ok else self._status_error(response))
        if error is not None:
            raise error
        if response.payload is None:
            raise SourceError(f"{self.platform} answered with something other than JSON", code="bad_answer")
        return response

    def _open_ok(self, request: httpx.Request, classify: Classifier) -> Stream:
        self._take_turn()
        try:
            answer = self._client().send(request, stream=True)
        except httpx.RequestError as problem:
            self._in_flight.release()
            raise self.network_error(problem) from None
        except BaseException:
            self._in_flight.release()
            raise
        if answer.is_success:
            return Stream(answer, self, end_turn=self._in_flight.release)
        try:
            body = answer.read()
        except httpx.RequestError as problem:
            raise self.network_error(problem) from None
        finally:
            answer.close()
            self._in_flight.release()
        response = Response(answer.status_code, answer.headers, _json_or_none(body))
        raise classify(response) or self._status_error(response)

    def _status_error(self, response: Response) -> SourceError:
        status = response.status
        if status == 429 or status >= 500:
            return TransientSourceError(
                f"{self.platform} is unavailable or rate limiting (HTTP {status})",
                code=f"http_{status}",
                retry_after=retry_after_header(response.headers),
            )
        return SourceError(f"{self.platform} refused the request (HTTP {status})", code=f"http_{status}")

    def _all_busy(self) -> TransientSourceError:
        reason = f"all {self.settings.connections} connections busy for {self.settings.timeout:g} s"
        return TransientSourceError(f"{self.platform} could not be reached ({reason})", code="pool_timeout")

    def network_error(self, problem: httpx.RequestError) -> TransientSourceError:
        if isinstance(problem, httpx.PoolTimeout):
            return self._all_busy()
        if isinstance(problem, httpx.TimeoutException):
            reason, code = f"no answer within {self.settings.timeout:g} s", "timeout"
        else:
            reason, code = _os_reason(problem) or type(problem).__name__, "network"
        return TransientSourceError(f"{self.platform} could not be reached ({reason})", code=code)


def _open_pool(settings: HttpSettings) -> httpx.Client:
    return httpx.Client(
        timeout=httpx.Timeout(settings.timeout),
        limits=httpx.Limits(max_connections=settings.connections, max_keepalive_connections=settings.connections),
        # The system's certificates, as the standard library uses (SSL_CERT_FILE and
        # SSL_CERT_DIR included), not the bundle httpx ships.
        verify=ssl.create_default_context(),
        follow_redirects=False,
        trust_env=True,  # HTTP(S)_PROXY, ALL_PROXY and NO_PROXY
        # One pool serves every login: a cookie one answer sets must not ride along another's.
        cookies=http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[])),
    )


def _os_reason(problem: BaseException) -> str | None:
    """The operating system's words for a failed connection ("Connection refused"), found
    among the causes httpx chains."""
    seen: BaseException | None = problem
    while seen is not None:
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror
        seen = seen.__cause__ or seen.__context__
    return None


class Stream:
    """A streamed answer, read as a file is (`read`, `close`, `with`), as it arrives. Reading
    fails with the client's TransientSourceError when the connection does. Closing it (or its
    garbage collection) hands the connection back and ends its turn."""

    def __init__(self, answer: httpx.Response, client: HttpClient, end_turn: Callable[[], object]):
        self._client = client
        self._chunks = answer.iter_bytes()
        self._pending = b""
        self._closing = weakref.finalize(self, _close_stream, answer, end_turn)

    def read(self, size: int = -1) -> bytes:
        """At most `size` bytes of what has arrived (all the rest when negative); b"" at the end."""
        try:
            if size < 0:
                return self._pending + b"".join(self._chunks)
            while not self._pending:
                chunk = next(self._chunks, None)
                if chunk is None:
                    return b""
                self._pending = chunk
        except httpx.RequestError as problem:
            raise self._client.network_error(problem) from None
        data, self._pending = self._pending[:size], self._pending[size:]
        return data

    def close(self) -> None:
        self._closing()  # once, however often it is called

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _close_stream(answer: httpx.Response, end_turn: Callable[[], object]) -> None:
    try:
        answer.close()
    finally:
        end_turn()


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body) if body.strip() else None
    except ValueError:
        return None


_SPACE = re.compile(r"[ \t\n\r]*")


class Readable(Protocol):
    """What `iter_json_array` reads: a Stream, or a file opened in binary mode."""

    def read(self, size: int = -1, /) -> bytes: ...


def iter_json_array(stream: Readable, client: HttpClient, chunk_size: int = 1 << 16) -> Iterator[Any]:
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
            chunk = stream.read(chunk_size)  # a Stream raises the client's SourceError
            eof = not chunk
            buffer += text.decode(chunk, final=eof)

    while True:
        if (space := _SPACE.match(buffer, pos)) is not None:  # always: the pattern matches ""
            pos = space.end()
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
