"""Reliability and security promises (docs/RELIABILITY.md), proven through the Slack path."""

import json
import logging
import socket
import threading
import time
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from connbot.server import wsgi_app
from fakeslack.client import AppDriver
from storage.models import AuditEvent, Connection
from support import serving_http, text_objects, texts

SECRET = "test-signing-secret"  # tests/bot/conftest.py signs with it


def audit_count(ctx) -> int:
    with ctx.db.begin() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent))


# ---- request authenticity ------------------------------------------------------------------


def _slash_body(text="") -> bytes:
    return urlencode(
        {
            "token": "x",
            "team_id": "T0FAKE001",
            "team_domain": "fake",
            "channel_id": "C0DATA",
            "channel_name": "data-team",
            "user_id": "UADMIN",
            "user_name": "ada",
            "command": "/connections",
            "text": text,
            "api_app_id": "A0FAKEAPP",
            "is_enterprise_install": "false",
            "response_url": "http://127.0.0.1:1/none",
            "trigger_id": "1.2.3",
        }
    ).encode()


def test_forged_stale_or_unsigned_requests_get_401(fake, driver):
    body = _slash_body()
    status, _, _ = driver.send_raw(body, secret="not-the-secret")
    assert status == 401
    status, _, _ = driver.send_raw(body, timestamp=str(int(time.time()) - 6 * 60))
    assert status == 401
    status, _, _ = driver.target(body, {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 401
    assert driver.send_raw(body)[0] == 200  # the same body, rightly signed, is served
    assert [c.method for c in fake.calls() if c.method != "auth.test"] == []


def _refusals(caplog) -> list[logging.LogRecord]:
    """Log records at WARNING and above: a refused request leaves exactly one, without a traceback."""
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


def _only_a_warning(caplog) -> None:
    (record,) = _refusals(caplog)
    assert record.levelno == logging.WARNING and record.exc_info is None and not record.exc_text
    assert "refused a request" in record.getMessage() and "\n" not in record.getMessage()


@pytest.mark.parametrize(
    "timestamp, signature",
    [
        ("yesterday", None),  # the report: HTTP 500 with an empty body
        ("", None),
        (" 1700000000", None),
        ("1_700_000_000", None),
        ("١٧٠٠٠٠٠٠٠٠", None),  # digits int() would take
        ("9" * 5000, None),  # more digits than int() converts
        ("-1", None),
        ("1e9", None),
        (None, None),  # the right signature, no timestamp
        ("now", "v0=é" + "0" * 62),  # a non-ASCII signature: compare_digest raised TypeError
        ("now", "v0=" + "0" * 64),
        ("now", ""),
        ("now", "missing"),
    ],
)
def test_a_malformed_header_gets_401_changes_nothing_and_logs_one_warning(
    fake, driver, app_ctx, caplog, timestamp, signature
):
    body = _slash_body()
    headers = driver.signed_headers(body, "application/x-www-form-urlencoded")
    if timestamp is None:
        del headers["X-Slack-Request-Timestamp"]
    elif timestamp != "now":
        headers["X-Slack-Request-Timestamp"] = timestamp
    if signature == "missing":
        del headers["X-Slack-Signature"]
    elif signature is not None:
        headers["X-Slack-Signature"] = signature
    before = audit_count(app_ctx)
    caplog.clear()
    status, _, _ = driver.target(body, headers)
    assert status == 401
    _only_a_warning(caplog)
    assert audit_count(app_ctx) == before
    assert [c.method for c in fake.calls() if c.method != "auth.test"] == []


def test_a_malformed_timestamp_gets_401_over_real_http(fake, bolt, caplog):
    with serving_http(wsgi_app(bolt[0]), threads=2) as base:
        driver = AppDriver(fake, f"{base}/slack/events", signing_secret=SECRET)
        status, _, _ = driver.send_raw(_slash_body(), timestamp="yesterday")
        assert status == 401
        assert driver.send_raw(_slash_body())[0] == 200  # the same body, rightly signed, is served
    assert [r for r in _refusals(caplog) if "refused a request" in r.getMessage()]


_latin1 = st.text(st.characters(codec="latin-1"), max_size=60)  # what a WSGI server hands over
_header_values = st.one_of(st.none(), _latin1, st.text(max_size=30))
_timestamps = st.one_of(
    _header_values,
    st.just("now"),
    st.integers(-(10**20), 10**20).map(str),
    st.text("0123456789 +-_.eE", max_size=24),
    st.sampled_from(["yesterday", "١٧٠٠٠٠٠٠٠٠", "9" * 5000, "0x10", "NaN"]),
)
_signatures = st.one_of(
    _header_values,
    st.just("right"),  # the right signature for whatever timestamp was chosen
    st.text("0123456789abcdefABCDEFv=", max_size=70).map(lambda t: "v0=" + t),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    timestamp=_timestamps,
    signature=_signatures,
    retry=_header_values,
    content_type=st.one_of(st.just("application/x-www-form-urlencoded"), _header_values),
)
def test_no_header_value_yields_a_5xx(fake, driver, app_ctx, caplog, timestamp, signature, retry, content_type):
    from fakeslack.client import sign

    body = _slash_body()
    now = str(int(time.time()))
    timestamp = now if timestamp == "now" else timestamp
    fresh = timestamp is not None and timestamp.isascii() and timestamp.isdigit() and len(timestamp) < 20
    fresh = fresh and abs(int(timestamp) - int(now)) <= 5 * 60
    if signature == "right":
        signature = sign(SECRET, timestamp or "", body)
        assume(not fresh)  # that would be a genuine request
    headers = {
        name: value
        for name, value in (
            ("X-Slack-Request-Timestamp", timestamp),
            ("X-Slack-Signature", signature),
            ("X-Slack-Retry-Num", retry),
            ("Content-Type", content_type),
        )
        if value is not None
    }
    before = audit_count(app_ctx)
    caplog.clear()
    status, _, _ = driver.target(body, headers)
    assert status == 401, (status, headers)
    _only_a_warning(caplog)
    assert audit_count(app_ctx) == before
    assert [c.method for c in fake.calls() if c.method != "auth.test"] == []


def test_a_replayed_request_is_refused_and_changes_nothing(fake, driver, connect, app_ctx):
    cid = connect()
    ada = driver.user("UADMIN")
    ada.command("/connections", str(cid), channel="C0DATA")
    ada.click(fake.ephemerals("UADMIN")[-1], "connection.tab.settings")
    card = fake.wait_for(
        lambda: "Delete connection" in texts(fake.ephemerals("UADMIN")[-1].blocks) and fake.ephemerals("UADMIN")[-1]
    )
    clicked = ada.click(card, "connection.delete", confirm=True)
    fake.wait_for(lambda: "was deleted" in texts(fake.ephemerals("UADMIN")[-1].blocks))
    before = audit_count(app_ctx)
    status, _, _ = driver.target(clicked.body, dict(clicked.headers))  # captured and sent again
    assert status == 401
    time.sleep(0.2)
    assert audit_count(app_ctx) == before


# ---- Slack faults -----------------------------------------------------------------------------


def _open_card(fake, user, cid):
    user.command("/connections", str(cid), channel="C0DATA")
    user.click(fake.ephemerals(user.id)[-1], "connection.share")
    return fake.wait_for(lambda: fake.messages("C0DATA") and fake.messages("C0DATA")[-1])


def test_rate_limited_and_failing_updates_are_retried(fake, driver, connect):
    cid = connect()
    otto = driver.user("UOPS")
    shared = _open_card(fake, otto, cid)
    fake.fail_next("chat.update", status=429, retry_after=1)
    otto.click(shared, "connection.tab.accounts")
    fake.wait_for(lambda: "Sync accounts" in texts(fake.message("C0DATA", shared.ts).blocks), timeout=10)
    fake.fail_next("chat.update", status=503)
    otto.click(shared, "connection.tab.settings")
    fake.wait_for(lambda: "Delete connection" in texts(fake.message("C0DATA", shared.ts).blocks), timeout=10)
    assert len(fake.calls("chat.update")) == 4  # each failure was retried once


def test_an_update_slack_keeps_refusing_is_reported_to_the_user(fake, driver, connect):
    cid = connect()
    otto = driver.user("UOPS")
    shared = _open_card(fake, otto, cid)
    fake.fail_next("chat.update", status=500, times=None)
    otto.click(shared, "connection.tab.accounts")
    note = fake.wait_for(
        lambda: [m for m in fake.ephemerals("UOPS") if "did not accept the updated card" in m.visible_text], timeout=15
    )
    assert note
    fake.clear_faults()
    fake.clear_records()  # the refused calls are the behaviour under test


def test_a_call_slack_keeps_refusing_is_said_as_slacks_not_as_our_bug(fake, driver, connect, caplog):
    cid = connect()
    vera = driver.user("UVIEW")
    vera.open_home()
    home = fake.wait_for(
        lambda: fake.home("UVIEW") and fake.home("UVIEW").find("connection.open") and fake.home("UVIEW")
    )
    fake.fail_next("chat.postMessage", error="restricted_action")  # refused at once, not retried
    with caplog.at_level("WARNING"):
        vera.click(home, "connection.open", value=json.dumps({"c": cid, "t": "orders", "p": 0}, separators=(",", ":")))
        notice = fake.wait_for(lambda: fake.modal("UVIEW"), timeout=15)
    assert "Slack did not accept connbot's answer just now (restricted_action)" in texts(notice.blocks)
    assert [r for r in caplog.records if r.levelname == "ERROR" and r.name == "bot.errors"] == []
    fake.clear_records()  # the refused post is the behaviour under test


def test_a_notice_whose_trigger_expired_is_sent_as_a_dm(fake, driver, connect):
    connect()
    vera = driver.user("UVIEW")  # not an admin: "Make a new connection" is refused
    vera.open_home()
    home = fake.wait_for(
        lambda: fake.home("UVIEW") and fake.home("UVIEW").find("connection.new") and fake.home("UVIEW")
    )
    fake.fail_next("views.push", error="expired_trigger_id")  # Slack's retries outlasted the trigger
    vera.click(home, "connection.new")
    dm = fake.wait_for(lambda: fake.messages(fake.im("UVIEW").id))
    assert "admin role" in dm[-1].text
    fake.clear_records()  # the refused push is the behaviour under test


# ---- database faults -------------------------------------------------------------------------


class _Proxy:
    """A TCP forwarder that can cut every connection, to make PostgreSQL unreachable for a while."""

    def __init__(self, port: int):
        self.target = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = threading.Event()
        self.up.set()
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up.is_set():
                client.close()
                continue
            server = socket.create_connection(("127.0.0.1", self.target))
            self.sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.close()
                except OSError:
                    pass

    def cut(self):
        self.up.clear()
        for s in self.sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.sockets.clear()

    def restore(self):
        self.up.set()

    def close(self):
        self.listener.close()


@pytest.mark.postgres
def test_database_outage_says_temporarily_unavailable_and_recovers_without_restart(fake, pg_migrated, tmp_path, clock):
    from bot.app import create_app
    from connbot.server import wsgi_app
    from fakeslack.client import AppDriver, wsgi_target
    from support import make_context

    proxy = _Proxy(5432)
    url = pg_migrated.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
    ctx = make_context(url, tmp_path, clock, SLACK_API_URL=fake.base_url)
    try:
        app, services = create_app(ctx)
        driver = AppDriver(fake, wsgi_target(wsgi_app(app)), signing_secret="test-signing-secret")
        vera = driver.user("UVIEW")
        vera.command("/connections", channel="C0DATA")
        assert "Connected sources" in texts(fake.ephemerals("UVIEW")[-1].blocks)
        proxy.cut()
        vera.command("/connections", channel="C0DATA")
        assert "temporarily unavailable" in fake.ephemerals("UVIEW")[-1].visible_text
        proxy.restore()
        vera.command("/connections", channel="C0DATA")
        assert "Connected sources" in texts(fake.ephemerals("UVIEW")[-1].blocks)
    finally:
        ctx.db.dispose()
        proxy.close()


# ---- bad input ---------------------------------------------------------------------------------

nasty_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=400) | st.sampled_from(
    ["' OR 1=1 --", "<!channel>", "*bold* _it_ ~s~", "%_\\", "\x00\x07", "#12", "12" * 20, " " * 300, "payload"]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=nasty_text)
def test_any_slash_command_text_gets_a_clear_answer(fake, driver, connect_once, text):
    before = len(fake.ephemerals("UVIEW"))
    result = driver.user("UVIEW").command("/connections", text, channel="C0DATA")
    assert result.ok and result.failure is None
    if text.strip().lower() != "new":
        assert len(fake.ephemerals("UVIEW")) == before + 1
    assert not fake.failures and not fake.violations


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(token=nasty_text.filter(lambda t: t.strip()))
def test_any_typed_credentials_get_an_inline_answer_and_store_nothing_bad(fake, driver, app_ctx, token):
    ada = driver.user("UADMIN")
    ada.command("/connections", "new", channel="C0DATA")
    view = fake.wait_for(lambda: fake.modal("UADMIN"))
    if view.callback_id == "connection.new.source":
        view = ada.submit(view, {"source": {"value": "demo"}}).view
    result = ada.submit(view, {"token": {"value": token[:3000]}})
    assert result.ok and result.failure is None
    shown = texts(result.view.blocks) + texts(result.view.errors)
    assert result.view.errors or "is connected" in shown or "Checking" in shown
    fake.close_views("UADMIN")
    assert not fake.failures and not fake.violations


@pytest.fixture
def connect_once(connect):
    """Hypothesis re-uses the function's fixtures across examples: one connection for them all."""
    return connect("demo:accounts=3")


# ---- isolation and injection -----------------------------------------------------------------


@pytest.mark.parametrize(
    "action_id, value",
    [
        ("connection.tab.settings", {"c": None, "t": "settings"}),
        ("connection.delete", {"c": None, "t": "settings"}),
        ("connection.sync_accounts", {"c": None, "t": "accounts"}),
        ("connection.extract", {"c": None, "t": "orders"}),
        ("connection.reconnect", {"c": None, "t": "settings"}),
    ],
)
def test_another_team_cannot_see_or_change_a_connection_by_forging_its_id(
    fake, driver, connect, app_ctx, action_id, value
):
    cid = connect()
    fake.add_team("T0OTHER")
    fake.add_user("UOTHER", team_id="T0OTHER", is_admin=True)
    fake.add_channel("C0OTHER", "other", team_id="T0OTHER")
    intruder = driver.user("UOTHER")
    intruder.command("/connections", channel="C0OTHER")  # a real message of theirs to click on
    own = fake.ephemerals("UOTHER")[-1]
    payload = {
        **intruder._base("block_actions"),
        "container": {"type": "message", "message_ts": own.ts, "channel_id": "C0OTHER", "is_ephemeral": True},
        "trigger_id": fake.issue_trigger("UOTHER"),
        "channel": {"id": "C0OTHER", "name": "other"},
        "response_url": fake.issue_response_url("UOTHER", "C0OTHER", source=own),
        "actions": [
            {
                "action_id": action_id,
                "block_id": "tabs",
                "type": "button",
                "action_ts": "1.2",
                "value": json.dumps({**value, "c": cid}),
                "text": {"type": "plain_text", "text": "x"},
            }
        ],
    }
    driver._interactive("block_actions", payload, "UOTHER")
    answer = fake.wait_for(
        lambda: [m for m in fake.ephemerals("UOTHER") if f"There is no connection {cid}" in m.visible_text]
    )
    assert "Acme" not in texts([m.blocks for m in fake.ephemerals("UOTHER")])
    with app_ctx.db.begin() as session:
        c = session.get(Connection, cid)
        assert c.deleted_at is None and c.credentials is not None
    assert fake.modal("UOTHER") is None and answer


@pytest.mark.parametrize(
    "value", ['{"c":[1]}', '{"c":1,"p":"x"}', "[1,2]", '"x"', '{"c":"abc"}', '{"c":true}', '{"c":99999999999}']
)
def test_a_forged_button_value_is_refused_clearly(fake, driver, connect, caplog, value):
    connect()
    vera = driver.user("UVIEW")
    vera.command("/connections", "1", channel="C0DATA")
    card = fake.ephemerals("UVIEW")[-1]
    [tab] = [e for b in card.blocks for e in b.get("elements") or () if e.get("action_id") == "connection.tab.accounts"]
    tab["value"] = value  # as a forged payload would carry it
    with caplog.at_level("ERROR"):
        assert vera.click(card, "connection.tab.accounts", value=value).ok
        fake.wait_for(lambda: "older version of the message" in fake.ephemerals("UVIEW")[-1].visible_text)
    assert [r for r in caplog.records if r.levelname == "ERROR"] == []


PLANTED = ["<!channel>", "<@U0FAKEBOT>", "<https://evil.example|click>", "*bold*"]


def test_planted_names_never_render_as_mentions_links_or_formatting(fake, driver, connect, app_ctx):
    cid = connect("demo:accounts=20")
    with app_ctx.db.begin() as session:
        from storage.models import Account

        c = session.get(Connection, cid)
        c.business_account_name = "Evil " + " ".join(PLANTED)
        for i, account in enumerate(session.scalars(select(Account).where(Account.connection_id == cid))):
            account.name = f"{PLANTED[i % len(PLANTED)]} {i}"
    otto = driver.user("UOPS")
    otto.command("/connections", channel="C0DATA")
    otto.command("/connections", str(cid), channel="C0DATA")
    card = fake.ephemerals("UOPS")[-1]
    for tab in ("accounts", "settings", "orders"):
        otto.click(card, f"connection.tab.{tab}")
    otto.click(card, "connection.share")
    fake.wait_for(lambda: fake.messages("C0DATA"))
    otto.click(fake.ephemerals("UOPS")[-1], "connection.extract")
    fake.wait_for(lambda: fake.modal("UOPS"))
    sent = [
        c.args
        for c in fake.calls()
        if c.method in ("chat.postMessage", "chat.update", "chat.postEphemeral", "views.open", "response_url")
    ]
    sent += [m.blocks for m in fake.ephemerals("UOPS")]
    mrkdwn = [t["text"] for t in text_objects(sent) if t["type"] == "mrkdwn"]
    for planted in PLANTED:
        assert not any(planted in t for t in mrkdwn), planted
    fallback = [c.args.get("text") or "" for c in fake.calls() if c.method in ("chat.postMessage", "chat.update")]
    assert not any("<!channel>" in t or "<@U0FAKEBOT>" in t for t in fallback)


def test_serving_starts_with_the_start_up_objects_out_of_the_collectors_sight():
    """A full garbage collection would otherwise walk them in the middle of a request."""
    import gc

    from connbot.server import settle_start_up

    before = gc.get_freeze_count()
    try:
        settle_start_up()
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()


@pytest.mark.parametrize("secret", [None, "not-the-secret"], ids=["rightly signed", "wrongly signed"])
def test_a_body_that_is_not_utf8_is_refused_with_a_4xx_and_changes_nothing(fake, driver, app_ctx, caplog, secret):
    body = _slash_body("\u00e9t\u00e9").replace(b"%C3%A9", b"\xe9") + b"&junk=\xff\xfe"
    before = audit_count(app_ctx)
    caplog.clear()
    status, _, _ = driver.send_raw(body, secret=secret)
    assert status == 400  # read before its signature: Slack only ever sends UTF-8
    assert audit_count(app_ctx) == before
    assert [c.method for c in fake.calls() if c.method != "auth.test"] == []
    _only_a_warning(caplog)
