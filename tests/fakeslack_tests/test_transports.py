"""Delivering to the app over WSGI and real HTTP, and the generated methods.json."""

from __future__ import annotations

import json
import threading
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from slack_bolt.adapter.wsgi import SlackRequestHandler

from fakeslack import AppDriver, make_methods, wsgi_target
from fakeslack.server import METHODS_FILE, load_methods

from .slackworld import ALICE, GENERAL, SECRET


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


class _ThreadedWSGIServer(WSGIServer):
    # bolt answers a request while its listener calls back into the fake: one
    # thread per request, as a production server would.
    def process_request(self, request, client_address):
        threading.Thread(target=super().process_request, args=(request, client_address), daemon=True).start()


@pytest.fixture
def http_app(bolt_app):
    server = make_server(
        "127.0.0.1", 0, SlackRequestHandler(bolt_app), server_class=_ThreadedWSGIServer, handler_class=_Quiet
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/slack/events"
    server.shutdown()
    server.server_close()


def test_over_real_http(fake, http_app):
    driver = AppDriver(fake, http_app, SECRET)
    alice = driver.user(ALICE)
    assert alice.command("/hello", channel=GENERAL).ok
    assert fake.ephemerals(ALICE)[0].text == f"Hello <@{ALICE}>"
    alice.command("/menu", channel=GENERAL)
    menu = fake.wait_for(lambda: [m for m in fake.ephemerals(ALICE) if m.blocks])[-1]
    assert alice.click(menu, "sync").ok
    fake.wait_for(lambda: menu.text == "Synced connection 42")
    body = json.dumps({"type": "url_verification", "challenge": "c"}).encode()
    assert driver.send_raw(body, "application/json", secret="not-the-secret")[0] == 401


def test_through_bolts_wsgi_handler(fake, bolt_app):
    driver = AppDriver(fake, wsgi_target(SlackRequestHandler(bolt_app)), SECRET)
    assert driver.user(ALICE).command("/announce", channel=GENERAL).ok
    assert fake.messages(GENERAL)[0].text == "Announcement for everyone"
    assert driver.send_raw(b"command=%2Fhello", secret="wrong")[0] == 401


def test_unreachable_app_is_a_dispatch_failure(fake):
    driver = AppDriver(fake, "http://127.0.0.1:9/slack/events", SECRET)  # nothing listens on port 9
    result = driver.user(ALICE).command("/hello", channel=GENERAL)
    assert result.failure.kind == "dispatch_failed" and result.status is None
    fake.clear_records()


def test_users_of_another_team(fake, driver, bolt_app):
    other = fake.add_team("T0OTHER", "other-co")
    fake.add_user("U9ZED", "zed", team_id=other.id)
    fake.add_channel("C9THEIRS", "theirs", team_id=other.id)
    driver.user("U9ZED").command("/hello", channel="C9THEIRS")
    body = bolt_app.seen["commands"][0]
    assert (body["team_id"], body["team_domain"], body["channel_id"]) == ("T0OTHER", "other-co", "C9THEIRS")


# --- methods.json ---------------------------------------------------------------------------
def test_methods_json_has_what_the_fake_needs():
    methods = load_methods()
    assert methods["chat.update"]["required"] == ["channel", "ts"]
    assert "thread_ts" in methods["chat.postMessage"]["args"] and methods["chat.postMessage"]["json"]
    assert methods["users.info"]["json"] is False
    assert all("token" not in m["args"] for m in methods.values())
    assert methods["workflows.stepCompleted"].get("retired") is True
    assert METHODS_FILE.stat().st_size < 60_000


SPEC_DIR = make_methods.default_spec_dir()


@pytest.mark.skipif(not (SPEC_DIR / make_methods.OPENAPI_FILE).exists(), reason="Slack API reference files absent")
def test_methods_json_is_what_the_generator_makes(tmp_path):
    out = tmp_path / "methods.json"
    make_methods.main([str(SPEC_DIR), "-o", str(out)])
    assert out.read_text() == METHODS_FILE.read_text(), "run: python -m fakeslack.make_methods"
