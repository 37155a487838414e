"""The HTTP sources' connections: one bounded pool of keep-alive connections per source, shared
by every thread, over verified TLS, through the environment's proxies, closed at shutdown."""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import pytest
from platforms.fakes_facebook import VERSION, FakeGraph, buc_headers
from platforms.fakes_google import VERSION as GOOGLE_VERSION
from platforms.fakes_http import Reply, self_signed

from engine.account_sync import sync_accounts, sync_threads
from operations.auth import Actor, Role
from operations.connections import make_connection
from sources.base import CheckStatus, Credentials
from sources.facebook_ads import FacebookAdsSource
from sources.google_ads import GoogleAdsSource
from sources.http import HttpClient, HttpSettings, Response
from sources.registry import close_sources, installed_sources
from storage.models import RunStatus

ADMIN = Actor("T1", "UADMIN", Role.ADMIN)


class Waits(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def facebook(graph, connections: int = 64, timeout: float = 5, waits=None) -> FacebookAdsSource:
    return FacebookAdsSource(
        api_url=graph.url,
        api_version=VERSION,
        http=HttpSettings(timeout=timeout, connections=connections),
        sleep=waits if waits is not None else Waits(),
        env={},
    )


def login(graph, n: int) -> Credentials:
    """A login of its own: user n, business 900 + n."""
    token = f"EAAlogin{n}"
    graph.add_login(token, businesses=[{"id": str(900 + n), "name": f"Business {n}"}]).user = {
        "id": str(n),
        "name": f"User {n}",
    }
    return Credentials({"access_token": token})


def client_sockets(port: int) -> int:
    """Sockets of this process connected to `port` (the client ends, not the server's)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = 0
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            remote_port, inode = int(fields[2].rsplit(":", 1)[1], 16), fields[9]
            found += remote_port == port and inode in inodes
    return found


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


# --- keep-alive ---------------------------------------------------------------------------------


def test_requests_reuse_one_connection(graph):
    source = facebook(graph)
    source.page_size = 1
    credentials = login(graph, 1)
    assert source.check_credentials(credentials).ok
    assert len([a for page in source.list_accounts(credentials) for a in page]) == 9
    assert len(graph.server.requests) == 2 + 9
    assert graph.server.connections == 1  # one handshake, not eleven


def test_a_connection_the_platform_closed_is_replaced(graph):
    source = facebook(graph)
    credentials = login(graph, 1)
    graph.server.fail("GET /v21.0/me", Reply(body={"id": "1"}, headers={"Connection": "close"}))
    assert source.check_credentials(credentials).ok
    assert source.check_credentials(credentials).ok
    assert graph.server.connections == 2 and len(graph.server.requests) == 4


def test_cookies_are_not_kept_between_logins(graph):
    source = facebook(graph)
    first, second = login(graph, 1), login(graph, 2)
    cookie = "fr=0abc; Path=/; Max-Age=7776000; HttpOnly"
    graph.server.fail("GET /v21.0/me", Reply(body={"id": "1"}, headers={"Set-Cookie": cookie}))
    assert source.check_credentials(first).ok
    assert source.check_credentials(second).ok
    assert [r.headers.get("cookie") for r in graph.server.requests] == [None] * 4


# --- one bounded pool, shared by threads --------------------------------------------------------


def test_threads_share_a_bounded_pool_and_each_gets_its_own_answers(graph):
    source = facebook(graph, connections=3)
    source.page_size = 2
    logins = {n: login(graph, n) for n in range(12)}

    def work(n: int) -> tuple[int, str, int]:
        business = source.business_account(logins[n])
        listed = [a.external_id for page in source.list_accounts(logins[n]) for a in page]
        return n, business.id, len(listed)

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(work, [n for _ in range(4) for n in logins]))
    assert results == [(n, str(900 + n), 9) for _ in range(4) for n in logins]
    assert graph.server.most_open <= 3 and graph.server.connections <= 3
    assert len(graph.server.requests) == 48 * (2 + 5)


def test_many_syncs_at_once_leave_no_connection_open(ctx, graph):
    """Account syncs of 24 connections, run as the scheduler runs them, through a pool of 4:
    never more than 4 connections, and none left once the source is closed."""
    source = facebook(graph, connections=4)
    source.page_size = 2
    ctx.source = lambda _: source
    ids = [make_connection(ctx, ADMIN, "facebook_ads", dict(login(graph, n))) for n in range(24)]
    port = port_of(graph.url)
    before = client_sockets(port)

    with ThreadPoolExecutor(sync_threads(ctx.settings.sync_concurrency)) as pool:
        results = list(pool.map(lambda cid: sync_accounts(ctx, "T1", cid, trigger="schedule"), ids))
    assert [(r.status, r.accounts_read) for r in results] == [(RunStatus.SUCCEEDED, 9)] * 24
    assert graph.server.most_open <= 4
    assert client_sockets(port) - before <= 4  # kept alive for the next requests, no more

    source.close()
    assert client_sockets(port) == 0
    assert source.check_credentials(Credentials(dict(login(graph, 99)))).ok  # a new pool after close


def test_an_abandoned_stream_gives_its_connection_back(google):
    """A Google Ads extraction stopped part-way (its batches no longer wanted) closes its
    stream: with a pool of one connection, the next request still gets one."""
    google.add_client("client", "secret", "1//refresh")
    google.batch_size = 1
    source = GoogleAdsSource(
        api_url=google.url,
        api_version=GOOGLE_VERSION,
        token_url=google.token_url,
        http=HttpSettings(timeout=3, connections=1, attempts=1),
        env={},
    )
    credentials = Credentials(
        {
            "client_id": "client",
            "client_secret": "secret",
            "refresh_token": "1//refresh",
            "developer_token": "DEV-TOKEN",
        }
    )
    for _ in range(3):
        batches = source.extract(credentials, ["6666666666"], "campaign_daily", [], date(2024, 1, 1), date(2024, 1, 9))
        assert next(batches).num_rows == 1
        batches.close()
    result = source.check_credentials(credentials)
    assert result.ok, result
    assert client_sockets(port_of(google.url)) == 1  # the one kept alive


# --- TLS, proxies, logs ---------------------------------------------------------------------------


@pytest.fixture
def tls_graph(tmp_path):
    certificate, context = self_signed(tmp_path)
    fake = FakeGraph(tls=context)
    yield fake, certificate
    fake.close()


def test_tls_is_verified_against_the_certificates_the_environment_trusts(tls_graph, monkeypatch):
    graph, certificate = tls_graph
    credentials = login(graph, 1)
    assert graph.url.startswith("https://")

    refused = FacebookAdsSource(api_url=graph.url, http=HttpSettings(timeout=5, attempts=1), env={})
    result = refused.check_credentials(credentials)
    assert (result.status, result.code) == (CheckStatus.TRANSIENT, "network")
    assert "CERTIFICATE_VERIFY_FAILED" in result.reason
    assert graph.server.requests == []

    monkeypatch.setenv("SSL_CERT_FILE", str(certificate))  # as an operator trusts a private CA
    source = facebook(graph)
    source.page_size = 4
    assert source.check_credentials(credentials).ok
    assert len([a for page in source.list_accounts(credentials) for a in page]) == 9
    assert len(graph.server.requests) == 5 and graph.server.connections == 1  # shaken hands with once


def test_requests_go_through_the_proxy_the_environment_names(graph, monkeypatch):
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", graph.url)  # the fake answers absolute-form requests too
    source = FacebookAdsSource(api_url="http://graph.invalid", http=HttpSettings(timeout=5, attempts=1), env={})
    assert source.check_credentials(login(graph, 1)).ok
    assert [(r.path, r.headers["host"]) for r in graph.server.requests] == [
        (f"/{VERSION}/me", "graph.invalid"),
        (f"/{VERSION}/me/adaccounts", "graph.invalid"),
    ]


def test_no_query_reaches_the_logs(graph, caplog):
    """httpx logs each request's URL: a secret in a query (a paging URL may carry a token) must
    not reach the logs with it."""
    caplog.set_level(logging.DEBUG)
    login(graph, 1)
    client = HttpClient("Facebook", HttpSettings(timeout=5))
    url = f"{graph.url}/{VERSION}/me?access_token=EAAplanted-in-a-query&fields=id"
    answer = client.request("GET", url, classify=lambda _: None, headers={"Authorization": "Bearer EAAlogin1"})
    assert isinstance(answer, Response) and answer.payload == {"id": "1"}
    assert graph.server.requests[0].query["access_token"] == "EAAplanted-in-a-query"  # it was sent...
    assert f"GET {graph.url}/{VERSION}/me " in caplog.text  # ...and the request logged...
    assert "EAAplanted" not in caplog.text and "fields=id" not in caplog.text  # ...without its query
    client.close()


def test_usage_headers_are_read_whatever_their_case(graph):
    """HTTP/2 and proxies lower-case header names."""
    waits = Waits()
    source = facebook(graph, waits=waits)
    ((name, value),) = buc_headers(3).items()
    graph.server.fail("GET /v21.0/me", Reply(400, {"error": {"code": 17, "message": "limit"}}, {name.lower(): value}))
    assert source.check_credentials(login(graph, 1)).ok
    assert waits == [180.0]


# --- shutdown -----------------------------------------------------------------------------------


def test_shutdown_closes_the_installed_sources_pools():
    sources = installed_sources()
    pools = [s._http._client() for s in sources.values() if hasattr(s, "_http")]
    assert len(pools) == 2 and not any(p.is_closed for p in pools)
    close_sources()
    assert all(p.is_closed for p in pools)
