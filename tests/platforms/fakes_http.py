"""A local HTTP server for the source tests: 127.0.0.1, an ephemeral port, its own thread,
HTTP/1.1 with keep-alive, over TLS when given a server context (see `self_signed`).

The platform fakes (`fakes_facebook`, `fakes_google`) answer through a handler function; tests
script failures in front of it with `fail()` and read what was asked in `requests`, and how
many connections clients opened in `connections` (the most open at once in `most_open`).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode()))

    @property
    def bearer(self) -> str:
        return self.headers.get("authorization", "").removeprefix("Bearer ")


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-able, or bytes sent as they are
    headers: dict[str, str] = field(default_factory=dict)
    chunk_size: int = 0  # > 0: the body goes out in pieces of this size, each flushed
    stall: bool = False  # answer only when the test ends (to make the client time out)


@dataclass
class _Failure:
    match: str  # part of "METHOD /path"
    replies: list[Reply]


def self_signed(directory: Path, host: str = "127.0.0.1") -> tuple[Path, ssl.SSLContext]:
    """A certificate for `host` signed by its own key: its file (for a client to trust, e.g. as
    SSL_CERT_FILE), and a server context that presents it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, False, False, False), critical=True
        )  # digital signature, certificate signing
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "fake-platform.pem", directory / "fake-platform.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return cert_file, context


class FakeServer:
    def __init__(self, handle: Callable[[Request], Reply], tls: ssl.SSLContext | None = None):
        self.handle = handle
        self.requests: list[Request] = []
        self.errors: list[str] = []  # exceptions of the fake itself: a test must fail on them
        self.connections = 0  # accepted (and, over TLS, shaken hands with)
        self.open = 0
        self.most_open = 0
        self.tls = tls
        self._failures: list[_Failure] = []
        self._release = threading.Event()
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self  # type: ignore[attr-defined]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.01,), daemon=True)
        self._thread.start()

    def fail(self, match: str, *replies: Reply) -> None:
        """The next requests whose "METHOD /path" contains `match` get these replies, in order."""
        with self._lock:
            self._failures.append(_Failure(match, list(replies)))

    def requests_to(self, match: str) -> list[Request]:
        return [r for r in self.requests if match in f"{r.method} {r.path}"]

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    def _reply(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            for failure in self._failures:
                if failure.replies and failure.match in f"{request.method} {request.path}":
                    return failure.replies.pop(0)
        try:
            return self.handle(request)
        except Exception:  # noqa: BLE001 - reported to the test through `errors`
            self.errors.append(traceback.format_exc())
            return Reply(418, {"fake_error": "the fake server failed; see FakeServer.errors"})

    def _opened(self) -> None:
        with self._lock:
            self.connections += 1
            self.open += 1
            self.most_open = max(self.most_open, self.open)

    def _closed(self) -> None:
        with self._lock:
            self.open -= 1


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # not a client gone, or refusing the certificate
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: with Nagle's algorithm the body would wait for
    # the client's delayed ACK (40 ms) on every kept-alive connection, as no real platform does.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        tls = self.server.fake.tls  # type: ignore[attr-defined]
        if tls is not None:  # the handshake in this connection's thread, not the accepting one
            self.request = tls.wrap_socket(self.request, server_side=True)
        super().setup()

    def handle(self) -> None:
        fake: FakeServer = self.server.fake  # type: ignore[attr-defined]
        fake._opened()
        try:
            super().handle()
        finally:
            fake._closed()

    def finish(self) -> None:
        super().finish()
        if self.server.fake.tls is not None:  # type: ignore[attr-defined]
            self.request.close()  # wrapping detached the socket the server closes itself

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet tests

    def _serve(self) -> None:
        fake: FakeServer = self.server.fake  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        request = Request(
            method=self.command,
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self.rfile.read(length),
        )
        reply = fake._reply(request)
        if reply.stall:
            fake._release.wait(10)
            return
        body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        step = reply.chunk_size or len(body) or 1
        for start in range(0, len(body), step):
            self.wfile.write(body[start : start + step])
            self.wfile.flush()
