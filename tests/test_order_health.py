"""The rules of the order alerts (operations/order_health.py), which the card's strips share."""

from datetime import timedelta

from engine.extraction import INTERNAL_ERROR, INTERRUPTED, REFUSED, WAREHOUSE_FAILED
from operations.order_health import error_origin, schedule_interval, too_few_rows, usual_rows


def test_what_an_order_usually_loads_needs_three_runs_and_takes_the_median_of_seven():
    assert usual_rows([1200, 1300]) is None
    assert usual_rows([1200, 0, 1300]) == 1200
    assert usual_rows([5, 5, 5, 5, 5, 5, 5, 9000, 9000]) == 5  # only the newest seven count


def test_too_few_rows_is_under_a_tenth_of_the_usual_above_a_floor():
    assert too_few_rows(0, 12_400) and too_few_rows(1_239, 12_400)
    assert not too_few_rows(1_240, 12_400)
    assert not too_few_rows(0, 100) and not too_few_rows(0, None)  # too small, or nothing usual yet


def test_two_schedule_intervals_make_an_order_stale():
    assert schedule_interval({"kind": "daily", "at": "06:00"}) == timedelta(days=1)
    assert schedule_interval({"kind": "hourly", "every_hours": 6}) == timedelta(hours=6)
    assert schedule_interval({"kind": "weekly", "weekday": 0, "at": "06:00"}) == timedelta(days=7)
    assert schedule_interval({"kind": "monthly", "day": 1, "at": "06:00"}) == timedelta(days=31)
    assert schedule_interval({}) is None  # run by hand only: never stale


def test_where_a_failed_runs_error_came_from_is_read_from_what_the_run_recorded():
    assert error_origin(f"{WAREHOUSE_FAILED}disk full") == "warehouse"
    assert error_origin(INTERNAL_ERROR) == "connbot" and error_origin(INTERRUPTED) == "connbot"
    assert (
        error_origin("The stored credentials cannot be decrypted with the configured keys (CONNBOT_SECRET_KEYS)")
        == "connbot"
    )
    assert error_origin("The report no longer has the field(s) spend_v2; delete this order…") == "platform"
    assert error_origin("(#17) User request limit reached") == "platform"
    assert error_origin(f"Field spend_v2 is unknown; install it again. {REFUSED}") == "platform"


def test_a_platform_refusing_every_run_makes_the_order_failing_without_slack(ctx):
    """The rows are written where the runs are recorded, Slack or not; the platform's definitive
    refusal (demo-refused) is classified from what the run records."""
    from sqlalchemy import select

    from engine.account_sync import sync_accounts
    from engine.extraction import REFUSED, run_order
    from operations.auth import Actor, Role
    from operations.connections import make_connection
    from operations.order_health import evaluate_orders
    from operations.orders import OrderSpec, create_order
    from storage.models import Account, Alert

    cid = make_connection(ctx, Actor("T1", "UADMIN", Role.ADMIN), "demo", {"token": "demo-refused:accounts=5"})
    sync_accounts(ctx, "T1", cid, trigger="connect")
    with ctx.db.begin() as session:
        accounts = tuple(session.scalars(select(Account.id).where(Account.connection_id == cid, Account.active)))
    spec = OrderSpec(
        accounts, "campaign_daily", "Refused", ("campaign_name", "spend"), {"kind": "daily", "at": "06:00"}
    )
    oid, _ = create_order(ctx, Actor("T1", "UOPS", Role.OPERATOR), cid, spec, idempotency_key="k1")
    for _ in range(2):
        ctx.clock.advance(hours=1)
        result = run_order(ctx, "T1", oid, trigger="manual", user_id="UOPS")
        assert result.status == "failed" and result.error.endswith(REFUSED)
        evaluate_orders(ctx, ctx.clock.now())
    with ctx.db.begin() as session:
        alerts = session.scalars(select(Alert)).all()
    assert [(a.kind, a.order_id, a.error_code, a.details["failures"]) for a in alerts] == [
        ("failing", oid, "platform", 2)
    ]
    assert evaluate_orders(ctx, ctx.clock.now()).opened == []  # judged once


def test_an_order_whose_credentials_break_while_its_run_is_judged_is_left_for_the_credentials_alert(ctx, monkeypatch):
    """Under read committed another process may break the credentials between the two reads of
    the order: the second then finds nothing, and the evaluation ends there instead of failing."""
    from sqlalchemy import select, update

    from engine.account_sync import sync_accounts
    from engine.extraction import run_order
    from operations import order_health
    from operations.auth import Actor, Role
    from operations.connections import make_connection
    from operations.orders import OrderSpec, create_order
    from storage.models import Account, Connection, CredentialsStatus, ExtractionOrder

    cid = make_connection(ctx, Actor("T1", "UADMIN", Role.ADMIN), "demo", {"token": "demo-refused:accounts=5"})
    sync_accounts(ctx, "T1", cid, trigger="connect")
    with ctx.db.begin() as session:
        accounts = tuple(session.scalars(select(Account.id).where(Account.connection_id == cid, Account.active)))
    spec = OrderSpec(
        accounts, "campaign_daily", "Refused", ("campaign_name", "spend"), {"kind": "daily", "at": "06:00"}
    )
    oid, _ = create_order(ctx, Actor("T1", "UOPS", Role.OPERATOR), cid, spec, idempotency_key="k1")
    ctx.clock.advance(hours=1)
    run = run_order(ctx, "T1", oid, trigger="manual", user_id="UOPS")
    judge = order_health._judge

    def judged_while_the_credentials_break(ctx, session, row, *args):
        judge(ctx, session, row, *args)
        session.execute(
            update(Connection).where(Connection.id == cid).values(credentials_status=CredentialsStatus.ERROR)
        )

    monkeypatch.setattr(order_health, "_judge", judged_while_the_credentials_break)
    ctx.clock.advance(days=3)  # long enough to be stale, had the order still been watched
    assert order_health.evaluate_orders(ctx, ctx.clock.now()).opened == []
    with ctx.db.begin() as session:
        assert session.get(ExtractionOrder, oid).alerts_checked_run_id == run.run_id
