"""The log as CONNBOT_LOG_FORMAT=json writes it, read back line by line: each line says which
request, team, connection, order and run it is about, and an unexpected error's reference is the
request id found in every line of that request."""

from __future__ import annotations

import json
import re
from datetime import datetime

from sqlalchemy import select

import bot.handlers.commands
from engine.account_sync import sync_accounts
from operations.auth import Actor, Role
from operations.orders import OrderSpec, create_order
from sources.demo import DemoSource
from sources.registry import get_source
from storage.models import Account, ExtractionRun

TEAM = "T0FAKE001"
PLANT = "4242424242"


def test_an_unexpected_error_quotes_the_request_id_of_its_log_lines(fake, driver, connect, json_log, monkeypatch):
    cid = connect("demo:accounts=5")

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(bot.handlers.commands, "card_message", broken)
    driver.user("UOPS").command("/connections", str(cid), channel="C0DATA")
    shown = fake.wait_for(lambda: fake.ephemerals("UOPS"))[-1].visible_text
    reference = re.search(r"Something went wrong on our side \(reference ([0-9A-F]{8})\)", shown)[1]

    records = json_log.records()
    error = next(r for r in records if r["message"] == f"unexpected error, reference {reference}")
    assert (error["level"], error["logger"]) == ("error", "bot.errors")
    assert (error["request_id"], error["request_kind"], error["team"]) == (reference, "command", TEAM)
    assert "RuntimeError: a bug" in error["exception"]
    assert datetime.fromisoformat(error["time"]).utcoffset().total_seconds() == 0
    assert all(r.get("request_kind") == "command" for r in records if r.get("request_id") == reference)


def test_a_run_pressed_in_slack_logs_its_ids_and_the_request_that_started_it(fake, driver, connect, app_ctx, json_log):
    cid = connect("demo:accounts=5")
    with app_ctx.db.begin() as session:
        accounts = tuple(session.scalars(select(Account.id).where(Account.connection_id == cid, Account.active)))
    spec = OrderSpec(
        accounts[:1], "campaign_daily", "Daily", ("impressions",), schedule={"kind": "daily", "at": "06:00"}
    )
    order_id, _ = create_order(app_ctx, Actor(TEAM, "UOPS", Role.OPERATOR), cid, spec, idempotency_key="logs-test")
    otto = driver.user("UOPS")
    otto.command("/connections", str(cid), channel="C0DATA")
    card = fake.ephemerals("UOPS")[-1]
    value = json.dumps({"c": cid, "o": order_id, "a": "run", "p": 0}, separators=(",", ":"))
    block = next(b for b in card.blocks if value in [o["value"] for o in b.get("accessory", {}).get("options", [])])
    otto.choose(card, "order.menu", value, block_id=block["block_id"])

    def finished():
        return [
            r
            for r in json_log.records()
            if re.fullmatch(r"extraction run \d+ of order \d+: \w+, \d+ rows", r["message"])
        ]

    line = fake.wait_for(finished, timeout=20)[0]
    with app_ctx.db.begin() as session:
        run_id = session.scalar(select(ExtractionRun.id))
    assert {k: line.get(k) for k in ("team", "connection_id", "order_id", "run_id", "request_kind")} == {
        "team": TEAM,
        "connection_id": cid,
        "order_id": order_id,
        "run_id": run_id,
        "request_kind": "block_actions",
    }
    # The run's lines, in a thread of its own, carry the id of the request that claimed it.
    claimed = next(
        r for r in json_log.records() if re.fullmatch(r"extraction run \d+ of order \d+ claimed .*", r["message"])
    )
    assert re.fullmatch(r"[0-9A-F]{8}", line["request_id"]) and claimed["request_id"] == line["request_id"]


def test_work_without_a_request_has_its_ids_and_no_request_id(connect, app_ctx, json_log):
    cid = connect("demo-flaky:accounts=5", sync=False)  # its transient errors are logged, then retried
    json_log.clear()
    assert sync_accounts(app_ctx, TEAM, cid, trigger="schedule").status == "succeeded"
    retried = [r for r in json_log.records() if "retrying in" in r["message"]]
    assert retried and all((r["team"], r["connection_id"], r["sync_id"]) == (TEAM, cid, 1) for r in retried)
    assert not [r for r in json_log.records() if "request_id" in r]


def test_a_traceback_in_the_log_never_shows_a_secret_held_in_a_variable(connect, app_ctx, json_log):
    class Broken(DemoSource):
        def list_accounts(self, credentials):
            token = credentials["token"]  # a local variable holding the secret, as a bug would have
            raise RuntimeError(f"unexpected answer for a token of {len(token)} characters")

    cid = connect(f"demo:seed={PLANT}", sync=False)
    app_ctx.source = lambda name: Broken() if name == "demo" else get_source(name)
    assert sync_accounts(app_ctx, TEAM, cid, trigger="schedule").status == "failed"
    assert PLANT not in json_log.text
    failure = next(r for r in json_log.records() if r["message"].startswith("account sync"))
    assert "RuntimeError: unexpected answer" in failure["exception"]  # the traceback, as text
