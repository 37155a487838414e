"""The HTTP face of :class:`~fakeslack.server.FakeSlack`.

Parses requests the way Slack's API front end does -- arguments from the query
string plus a form-encoded or JSON body, the token from ``Authorization:
Bearer`` or a ``token`` argument -- and hands them to ``FakeSlack.handle_api``
or ``FakeSlack.handle_response_url``.  No state lives here.
"""

from __future__ import annotations

import base64
import json
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from .webapi import SlackError

if TYPE_CHECKING:  # pragma: no cover
    from .server import FakeSlack


class HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeSlack


class RequestHandler(BaseHTTPRequestHandler):
    """HTTP adapter: parse like Slack's front end, answer from FakeSlack."""

    server: HTTPServer
    server_version = "FakeSlack/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        try:
            status, headers, body = self._answer()
        except Exception:  # a bug of the fake itself: answer, and make the test fail
            detail = traceback.format_exc()
            self.server.fake.internal_errors.append(detail)
            status, headers, body = (
                500,
                {},
                {"ok": False, "error": "fakeslack_internal_error", "detail": detail[-2000:]},
            )
        try:
            self._send(status, headers, body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a timeout test): nothing to answer

    def _answer(self) -> tuple[int, dict[str, str], dict]:
        fake = self.server.fake
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        content_type = (self.headers.get("Content-Type") or "").lower()
        if parts.path.startswith("/api/"):
            method = parts.path[len("/api/") :]
            args, transport, parse_error = _parse_api_body(parts.query, raw, content_type)
            token = args.pop("token", None)
            auth = self.headers.get("Authorization") or ""
            if auth.lower().startswith("bearer "):
                token = auth[7:].strip()
            elif auth.lower().startswith("basic "):  # an app's client id and secret (oauth.v2.access)
                client_id, _, secret = base64.b64decode(auth[6:].strip()).decode("utf-8", "replace").partition(":")
                args.setdefault("client_id", client_id)
                args.setdefault("client_secret", secret)
            status, headers, body = fake.handle_api(
                method, args, token=token, transport=transport, parse_error=parse_error
            )
        elif parts.path.startswith("/response/") and self.command == "POST":
            status, headers, body = fake.handle_response_url(parts.path[len("/response/") :], raw, content_type)
        else:
            status, headers, body = 404, {}, {"ok": False, "error": "not_found"}
        return status, headers, body

    def _send(self, status: int, headers: dict[str, str], body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


def _parse_api_body(query: str, raw: bytes, content_type: str) -> tuple[dict, str, SlackError | None]:
    """Arguments from the query string and body, as Slack's API front end reads them."""
    args: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    transport = "query"
    if not raw:
        return args, transport, None
    if content_type.startswith("application/json"):
        transport = "json"
        try:
            data = json.loads(raw)
        except ValueError:
            return args, transport, SlackError("invalid_json")
        if not isinstance(data, dict):
            return args, transport, SlackError("json_not_object")
        args.update(data)
    elif content_type.startswith("application/x-www-form-urlencoded") or not content_type:
        transport = "form"
        args.update(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    else:  # multipart (file uploads) is not needed by connbot
        return (
            args,
            "form",
            SlackError("invalid_form_data", messages=[f"[ERROR] unsupported body type {content_type}"]),
        )
    return args, transport, None
