"""Fixtures for the fake Slack's own tests.

``fake`` is the pattern app tests should copy: a started FakeSlack with a small
workspace, checked at teardown with ``assert_clean()`` so that a Block Kit
violation, a user-visible failure or an API misuse fails the test that caused
it.  Tests that provoke such problems on purpose assert on them and then call
``fake.clear_records()``.
"""

from __future__ import annotations

import pytest
from slack_sdk import WebClient

from fakeslack import FakeClock, FakeSlack

from .slackworld import (
    ALICE,
    BOB,
    CAROL,
    GENERAL,
    MENU_BLOCKS,
    OPS,
    RANDOM,
    SECRET,
    STEP_TWO,
    mrkdwn,
    new_connection_view,
)


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake(fake_clock, request):
    with FakeSlack(clock=fake_clock, wall=fake_clock) as fake:
        fake.add_user(ALICE, "alice", real_name="Alice A", is_admin=True, tz="Europe/Paris", tz_offset=3600)
        fake.add_user(BOB, "bob")
        fake.add_user(CAROL, "carol", is_owner=True)
        fake.add_channel(GENERAL, "general")
        fake.add_channel(OPS, "ops", private=True, members=[ALICE])
        fake.add_channel(RANDOM, "random", bot_member=False)
        yield fake
        if not getattr(request.node, "rep_call_failed", False):
            fake.assert_clean()


@pytest.fixture
def client(fake) -> WebClient:
    return WebClient(token=fake.team.bot_token, base_url=fake.base_url)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    # Let the fixture skip its teardown check when the test itself failed.
    report = yield
    if report.when == "call" and report.failed:
        item.rep_call_failed = True
    return report


@pytest.fixture
def ack_timer() -> FakeClock:
    """Measures the app's ack time in the driver; listeners advance it to be 'slow'."""
    return FakeClock(0.0)


@pytest.fixture
def bolt_app(fake, fake_clock, ack_timer):
    from slack_bolt import App

    app = App(
        signing_secret=SECRET,
        client=WebClient(token=fake.team.bot_token, base_url=fake.base_url),
    )
    seen: dict[str, list] = {"commands": [], "actions": [], "submissions": [], "closed": [], "events": []}
    app.seen = seen  # what the listeners received, for payload-shape assertions

    @app.command("/hello")
    def hello(ack, body):
        seen["commands"].append(body)
        ack(f"Hello <@{body['user_id']}>")

    @app.command("/announce")
    def announce(ack):
        ack(response_type="in_channel", text="Announcement for everyone")

    @app.command("/menu")
    def menu(ack, respond):
        ack()
        respond(text="Menu", blocks=MENU_BLOCKS)

    @app.command("/post-menu")
    def post_menu(ack, body, client):
        ack()
        client.chat_postMessage(channel=body["channel_id"], text="Menu", blocks=MENU_BLOCKS)

    @app.action("sync")
    def sync(ack, body, respond):
        ack()
        seen["actions"].append(body)
        respond(replace_original=True, text=f"Synced connection {body['actions'][0]['value']}")

    @app.action("delete")
    def delete(ack, body, respond):
        ack()
        seen["actions"].append(body)
        respond(delete_original=True)

    @app.action("more")
    def more(ack, body, respond):
        ack()
        seen["actions"].append(body)
        respond(replace_original=True, text=f"Chose {body['actions'][0]['selected_option']['value']}")

    @app.command("/new")
    def new(ack, body, client):
        ack()
        client.views_open(trigger_id=body["trigger_id"], view=new_connection_view(body["channel_id"]))

    @app.command("/new-late")
    def new_late(ack, body, client):
        ack()
        fake_clock.advance(3.5)  # the app took too long before opening the modal
        client.views_open(trigger_id=body["trigger_id"], view=new_connection_view(body["channel_id"]))

    @app.view("new_conn")
    def submitted(ack, body, view, client):
        seen["submissions"].append(body)
        values = view["state"]["values"]
        name = values["name"]["name"]["value"]
        if name == "taken":
            ack(response_action="errors", errors={"name": "That name is taken"})
        elif name == "next":
            ack(response_action="push", view=STEP_TWO)
        elif name == "rename":
            ack(response_action="update", view=new_connection_view(view["private_metadata"], title="Renamed"))
        elif name == "cancel all":
            ack(response_action="clear")
        elif name == "too long title":
            ack(
                response_action="update",
                view=new_connection_view("C", title="A title far too long for Slack"),
            )
        else:
            ack()
            kind = values["kind"]["kind"]["selected_option"]["value"]
            client.chat_postMessage(channel=view["private_metadata"], text=f"Created {name} ({kind})")

    @app.view("all_inputs")
    def all_inputs(ack, body):
        seen["submissions"].append(body)
        ack()

    @app.action("refresh")
    def refresh(ack, body, client):
        ack()
        seen["actions"].append(body)
        view = body["view"]
        client.views_update(
            view_id=view["id"],
            hash=view["hash"],
            view={
                "type": view["type"],
                "blocks": [{"type": "section", "text": mrkdwn("Refreshed")}],
                **({"title": view["title"]} if view["type"] == "modal" else {}),
            },
        )

    @app.view("step_two")
    def step_two(ack):
        ack()

    @app.view_closed("new_conn")
    def closed(ack, body):
        ack()
        seen["closed"].append(body)

    @app.event("app_mention")
    def mention(event, say, request):
        seen["events"].append((event, request.headers.get("x-slack-retry-num", [None])[0]))
        say(text="Hi!", thread_ts=event["ts"])

    @app.event("app_home_opened")
    def home_opened(event, client):
        client.views_publish(
            user_id=event["user"],
            view={"type": "home", "blocks": [{"type": "section", "text": mrkdwn("Welcome home")}]},
        )

    @app.command("/slow")
    def slow(ack):
        ack_timer.advance(3.5)  # the listener took 3.5 s before acknowledging
        ack("late")

    @app.command("/boom")
    def boom(ack):
        raise RuntimeError("listener crashed before ack")

    return app


@pytest.fixture
def driver(fake, bolt_app, ack_timer):
    from fakeslack import AppDriver, bolt_target

    return AppDriver(fake, bolt_target(bolt_app), SECRET, timer=ack_timer)


@pytest.fixture
def alice(driver):
    return driver.user(ALICE)
