"""Block builders are pure: golden outputs, Slack's limits for any data, no injection."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.blocks.connections import connection_card, connection_list, tombstone
from bot.blocks.home import home_view
from fakeslack.limits import check_message, check_view
from operations.cards import (
    AccountRow,
    AccountsTab,
    AuditRow,
    Card,
    ConnectionList,
    ConnectionSummary,
    OrderRow,
    OrdersTab,
    RunSummary,
    SettingsTab,
    SyncSummary,
    Tombstone,
    extract_blocker,
)
from storage.repositories import AccountCounts, OpenAlert, Page
from support import compare_golden, text_objects, texts

GOLDEN = Path(__file__).parent / "golden"
T = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
EVIL = ["<!channel>", "<@U123>", "<https://evil.example|click>", "*bold*", "_it_", "a & b", "~x~", "`code`"]


def summary(name="Acme Retail", status="active", active=12, total=15, **kw):
    base = dict(
        id=7,
        source="demo",
        source_title="Demo Ads",
        title=f"Demo Ads · {name}",
        business_account_name=name,
        business_account_id="biz_0001",
        credentials_ok=status == "active",
        credentials_status=status,
        error_code=None,
        error_message=None,
        checked_at=T,
        error_since=None,
        account_status=f"{total} accounts",
        accounts=AccountCounts(total, active),
        created_at=T - timedelta(days=30),
        created_by="U0ADMIN",
        last_authorized_at=T - timedelta(days=2),
    )
    base.update(kw)
    return ConnectionSummary(**base)


def card(content, tab, s=None):
    s = s or summary()
    return Card(s, extract_blocker(s), tab, content)


def orders_tab(n=2, name="Daily campaigns"):
    run = RunSummary(T, T + timedelta(minutes=3), 12345, "succeeded", None)
    strip = ("succeeded", "failed", "cancelled", "succeeded", "running")
    rows = tuple(
        OrderRow(
            i,
            f"{name} {i}",
            "Campaign daily",
            3,
            "Every 6 hours",
            "Active" if i % 2 else "Paused",
            run if i % 2 else None,
            T + timedelta(hours=6),
            recent_runs=strip[: i * 2],
        )
        for i in range(1, n + 1)
    )
    return OrdersTab(rows, Page(0, 8, n))


def accounts_tab(n=3, name="Account"):
    rows = tuple(
        AccountRow(
            i, f"act_{i}", f"{name} {i}", i != 2, "ACTIVE" if i != 2 else "CLOSED", "USD", "Europe/Paris", T, True
        )
        for i in range(n)
    )
    sync = SyncSummary(T, T + timedelta(seconds=42), "manual", "U0OPS", "succeeded", 15, 2, 1, 0, None)
    recent = ("failed", "succeeded", "succeeded")
    return AccountsTab(rows, Page(0, 15, n), sync, None, T + timedelta(hours=18), recent_syncs=recent)


def settings_tab():
    audit = (
        AuditRow(T, "U0ADMIN", "connection.reconnect", "ok"),
        AuditRow(T, "U0VIEW", "connection.delete", "refused"),
    )
    return SettingsTab("token", "all", (("Token", "de…1234"),), "U0ADMIN", None, audit)


def golden(name: str, value) -> None:
    compare_golden(GOLDEN / f"{name}.json", value)


def test_golden_list():
    items = (
        summary("Initech", open_alerts=(OpenAlert("failing", "U0OPS"), OpenAlert("failing", None))),
        summary(
            "Globex",
            status="error",
            error_message="Token expired",
            error_code="token_expired",
            open_alerts=(OpenAlert("credentials", None),),
        ),
        summary(),
    )
    golden("list", connection_list(ConnectionList(items, Page(10, 10, 25), None)))


def test_golden_card_tabs():
    golden("card_orders", connection_card(card(orders_tab(), "orders")))
    golden("card_accounts", connection_card(card(accounts_tab(), "accounts")))
    golden("card_settings", connection_card(card(settings_tab(), "settings")))
    broken = summary(status="error", error_message="Token expired", error_code="token_expired", error_since=T)
    golden("card_error", connection_card(card(orders_tab(0), "orders", broken)))
    golden("tombstone", tombstone(Tombstone(7, "Demo Ads · Acme", "U0ADMIN", T)))


def test_an_order_whose_accounts_went_inactive_does_not_look_healthy():
    from dataclasses import replace

    tab = orders_tab(1)
    row = tab.orders[0]
    assert "still active" not in texts(
        connection_card(card(replace(tab, orders=(replace(row, usable_accounts=3),)), "orders"))
    )
    some = texts(connection_card(card(replace(tab, orders=(replace(row, usable_accounts=1),)), "orders")))
    assert "1 of its 3 accounts is still active" in some
    stranded = connection_card(
        card(replace(tab, orders=(replace(row, usable_accounts=0, status="Cannot run"),)), "orders")
    )
    assert "None of its accounts is active any more, so its runs fail" in texts(stranded)
    assert ":warning: *Cannot run*" in texts(stranded) and ":large_green_circle: *Active*" not in texts(stranded)
    menu = [o["text"]["text"] for b in stranded for o in (b.get("accessory") or {}).get("options", [])]
    assert menu == ["Pause", "Run history", "Turn off too-few-rows alerts", "Delete order…"]  # no Run now


def test_a_running_order_shows_its_rows_so_far_and_a_connector_its_streams():
    from dataclasses import replace

    from operations.cards import StreamsSummary

    tab = orders_tab(1)
    running = replace(tab.orders[0], status="Syncing", last_run=RunSummary(T, None, 4200, "running", None))
    shown = texts(connection_card(card(replace(tab, orders=(running,)), "orders")))
    assert (
        "running since <!date^1795856400^{date_short_pretty} {time}|2026-11-28 09:00 UTC> · 4,200 rows so far" in shown
    )
    streams = replace(accounts_tab(), streams=StreamsSummary(3, T))
    assert "*Streams:* 3 streams (the extraction templates), discovered <!date^1795856400" in texts(
        connection_card(card(streams, "accounts"))
    )
    never = replace(accounts_tab(), streams=StreamsSummary(0, None))
    assert "*Streams:* not discovered yet." in texts(connection_card(card(never, "accounts")))
    missing = summary(source_missing="The connector airbyte:x is not installed.")
    blocks = connection_card(card(orders_tab(), "orders", missing))
    assert "⚠️ The connector airbyte:x is not installed." in texts(blocks)
    assert "Extract is unavailable: its connector is not installed" in texts(blocks)


def test_a_failed_sync_says_why_and_what_to_do():
    failed = SyncSummary(
        T, T + timedelta(seconds=3), "manual", "U0OPS", "failed", 0, 0, 0, 0, "The demo token has expired"
    )
    tab = AccountsTab(accounts_tab().accounts, Page(0, 15, 3), failed, None, T + timedelta(hours=18))
    broken = summary(
        status="error", error_message="The demo token has expired", error_code="token_expired", error_since=T
    )
    golden("card_accounts_failed_sync", connection_card(card(tab, "accounts", broken)))
    # Credentials still Active (a first refusal does not break them yet): both ways out are named.
    shown = json.dumps(connection_card(card(tab, "accounts")))
    assert "Why: The demo token has expired" in shown and "*Re-connect* in the Settings tab" in shown


def test_sync_accounts_carries_the_page_it_was_pressed_on():
    tab = accounts_tab()
    second_page = AccountsTab(tab.accounts, Page(15, 15, 40), tab.last_sync, None, tab.next_sync_at)
    blocks = connection_card(card(second_page, "accounts"))
    sync = next(b["accessory"] for b in blocks if b.get("accessory", {}).get("action_id") == "connection.sync_accounts")
    assert json.loads(sync["value"]) == {"c": 7, "t": "accounts", "p": 1}


def test_extract_button_only_when_active_with_an_active_account():
    def has_extract(blocks):
        return any(b.get("accessory", {}).get("action_id") == "connection.extract" for b in blocks)

    assert has_extract(connection_card(card(orders_tab(), "orders")))
    for s, reason in [
        (summary(status="error"), "credentials error"),
        (summary(active=0, total=4), "no active accounts"),
    ]:
        blocks = connection_card(card(orders_tab(), "orders", s))
        assert not has_extract(blocks)
        assert f"Extract is unavailable: {reason}" in json.dumps(blocks)


def test_selected_tab_is_primary_and_the_only_one():
    for tab, content in (("orders", orders_tab()), ("accounts", accounts_tab()), ("settings", settings_tab())):
        tabs = next(b for b in connection_card(card(content, tab)) if b.get("block_id") == "tabs")
        primary = [e["action_id"] for e in tabs["elements"] if e.get("style") == "primary"]
        assert primary == [f"connection.tab.{tab}"]


def test_delete_carries_the_seed_confirmation():
    blocks = connection_card(card(settings_tab(), "settings"))
    delete = next(
        e for b in blocks if b["type"] == "actions" for e in b["elements"] if e["action_id"] == "connection.delete"
    )
    text = delete["confirm"]["text"]["text"]
    assert "stops extracting data" in text and "does not affect the data" in text and "cannot undo" in text
    assert delete["style"] == "danger"


@pytest.mark.parametrize("evil", EVIL)
def test_user_text_never_reaches_mrkdwn(evil):
    s = summary(name=f"Acme {evil}", business_account_id=f"id{evil}", error_message=f"bad {evil}", status="error")
    outputs = [
        connection_list(ConnectionList((s,), Page(0, 10, 1), evil)),
        connection_card(card(orders_tab(name=evil), "orders", s)),
        connection_card(card(accounts_tab(name=evil), "accounts", s)),
        connection_card(card(settings_tab(), "settings", s)),
        tombstone(Tombstone(1, evil, "U1", T)),
    ]
    for blocks in outputs:
        for obj in text_objects(blocks, []):
            if obj["type"] == "mrkdwn":
                assert evil not in obj["text"], obj


def test_limits_hold_for_huge_names_and_counts():
    long = "𝕏" * 255 + "<!channel>" + "ש" * 100
    s = summary(
        name=long, business_account_id="9" * 255, active=100_000, total=100_000, error_message=long, status="error"
    )
    for content, tab in (
        (orders_tab(8, long), "orders"),
        (accounts_tab(15, long), "accounts"),
        (settings_tab(), "settings"),
    ):
        blocks = connection_card(card(content, tab, s))
        assert check_message(blocks, text="x") == []
    data = ConnectionList(tuple(summary(name=long) for _ in range(10)), Page(10, 10, 10_000), long)
    assert check_message(connection_list(data), text="x") == []
    assert check_view(home_view(data)) == []


# ---- alerts and the run history -------------------------------------------------------------------


def alert(kind="failing", name="Campaigns by day", error="Field 'spend_v2' was removed", **kw):
    from operations.alerts import AlertCard

    details = {
        "failing": {"failures": 3, "since": (T - timedelta(days=2)).isoformat(), "run_at": T.isoformat()},
        "stale": {
            "last_success_at": (T - timedelta(hours=50)).isoformat(),
            "interval_hours": 24,
            "last_run_status": "failed",
            "last_run_at": (T - timedelta(hours=2)).isoformat(),
        },
        "silent": {"rows": 0, "usual_rows": 12400, "run_at": T.isoformat()},
        "credentials": {},
    }[kind]
    base = dict(
        id=31,
        team_id="T1",
        connection_id=7,
        kind=kind,
        source_title="Demo Ads",
        business_account_name="Acme Retail",
        business_account_id="biz_0001",
        error_code={"failing": "platform", "credentials": "token_expired"}.get(kind),
        error_message=error if kind in ("failing", "credentials") else None,
        since=T,
        affected_orders=(name,) if kind == "credentials" else (),
        channel="C0ALERT",
        ts="1.2",
        resolved_at=None,
        resolved_by=None,
        resolution=None,
        order_id=None if kind == "credentials" else 5,
        order_name=None if kind == "credentials" else name,
        order_schedule=None if kind == "credentials" else "Daily at 06:00 UTC",
        details=details,
    )
    base.update(kw)
    return AlertCard(**base)


def test_golden_alerts():
    from bot.blocks.alerts import alert_message

    for kind in ("credentials", "failing", "stale", "silent"):
        golden(f"alert_{kind}", alert_message(alert(kind)))
    golden("alert_failing_taken", alert_message(alert(acknowledged_by="U0OPS", acknowledged_at=T)))
    resolved = alert(
        resolved_at=T + timedelta(hours=3),
        resolved_by="U0OPS",
        resolution="fixed",
        details={"failures": 3, "since": T.isoformat(), "resolved_rows": 12345, "resolved_trigger": "manual"},
    )
    golden("alert_failing_resolved", alert_message(resolved))


def test_every_way_an_alert_closes_is_said_as_it_happened():
    from bot.blocks.alerts import alert_text, resolution_text

    closed = dict(resolved_at=T, resolved_by="U0ADMIN")
    said = {
        "connection_deleted": "the connection was deleted by <@U0ADMIN>",
        "order_deleted": "the order was deleted by <@U0ADMIN>",
        "order_paused": "<@U0ADMIN> paused the order",
        "muted": "<@U0ADMIN> turned off too-few-rows alerts",
    }
    for resolution, words in said.items():
        a = alert("silent", resolution=resolution, **closed)
        assert words in resolution_text(a) and "Resolved" not in resolution_text(a), resolution
        assert "closed: " in alert_text(a) and "resolved" not in alert_text(a)
    scheduled = alert(
        "stale", resolution="fixed", details={"resolved_trigger": "schedule", "resolved_rows": 9}, **closed
    )
    assert "Resolved: a scheduled run succeeded" in resolution_text(scheduled) and "(9 rows)" in resolution_text(
        scheduled
    )
    fixed = alert("credentials", resolution="fixed", resolved_at=T, resolved_by=None)
    assert "Resolved by a successful check" in resolution_text(fixed)


def test_golden_run_history():
    from bot.blocks.orders import run_history_modal
    from operations.cards import HistoryRun, RunHistory

    runs = (
        HistoryRun(T, None, "manual", "U0OPS", 0, "running", None),
        HistoryRun(
            T - timedelta(days=1),
            T - timedelta(days=1) + timedelta(seconds=95),
            "schedule",
            None,
            12400,
            "succeeded",
            None,
        ),
        HistoryRun(
            T - timedelta(days=2),
            T - timedelta(days=2) + timedelta(hours=2, minutes=5),
            "schedule",
            None,
            310,
            "failed",
            "Quota exceeded",
        ),
        HistoryRun(
            T - timedelta(days=3),
            T - timedelta(days=3) + timedelta(seconds=4),
            "created",
            "U0ADMIN",
            88000,
            "cancelled",
            "The extraction order was deleted.",
        ),
    )
    golden("run_history", run_history_modal(RunHistory(7, 5, "Campaigns by day", runs, Page(10, 10, 30))))


@pytest.mark.parametrize("evil", EVIL)
def test_alert_and_history_text_never_reaches_mrkdwn(evil):
    from bot.blocks.alerts import alert_message, escalation_note, reminder_text, taken_note
    from bot.blocks.orders import run_history_modal
    from operations.cards import HistoryRun, RunHistory

    outputs = []
    for kind in ("credentials", "failing", "stale", "silent"):
        a = alert(kind, name=evil, error=f"bad {evil}", business_account_name=evil, business_account_id=evil)
        outputs += [
            alert_message(a),
            alert_message(alert(kind, name=evil, resolved_at=T, resolution="order_deleted", resolved_by="U1")),
            [
                mrkdwn_text(escalation_note(a)),
                mrkdwn_text(reminder_text(a)),
                mrkdwn_text(taken_note(a, "U1", taken=True)),
            ],
        ]
    runs = (HistoryRun(T, T, "schedule", None, 1, "failed", f"bad {evil}"),)
    outputs.append(run_history_modal(RunHistory(7, 5, evil, runs, Page(0, 10, 1)))["blocks"])
    for blocks in outputs:
        for obj in text_objects(blocks, []):
            if obj["type"] == "mrkdwn":
                assert evil not in obj["text"], obj


def mrkdwn_text(text):
    return {"type": "mrkdwn", "text": text}


def test_alert_and_history_limits_hold_for_huge_names_and_errors():
    from bot.blocks.alerts import alert_message, alert_text
    from bot.blocks.orders import run_history_modal
    from operations.cards import HistoryRun, RunHistory

    long = "𝕏" * 255 + "<!channel>" + "ש" * 100
    error = "e" * 20_000
    for kind in ("credentials", "failing", "stale", "silent"):
        for extra in ({}, {"acknowledged_by": "U" + "9" * 30, "acknowledged_at": T}):
            a = alert(kind, name=long, error=error, business_account_name=long, business_account_id="9" * 255, **extra)
            a = replace_affected(a, tuple(long for _ in range(20)))
            assert check_message(alert_message(a), text=alert_text(a)) == []
    runs = tuple(HistoryRun(T, T + timedelta(hours=30), "manual", "U0OPS", 10**12, "failed", error) for _ in range(10))
    assert check_view(run_history_modal(RunHistory(7, 5, long, runs, Page(10, 10, 30)))) == []


def replace_affected(a, orders):
    from dataclasses import replace

    return replace(a, affected_orders=orders) if a.kind == "credentials" else a
