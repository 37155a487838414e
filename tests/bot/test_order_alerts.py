"""Order alerts (failing, stale, silent) and "I'm on it", driven as Slack and the scheduler drive them:
runs through the engine into the warehouse, the alert poster's flush on the controlled clock, and
signed requests for every button."""

import json
import threading
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from bot.app import create_app
from engine.extraction import run_order
from operations.auth import Actor, Role
from operations.orders import OrderSpec, create_order, delete_order, set_paused
from sources.demo import DemoSource
from storage.models import Account, Alert, AuditEvent, ExtractionOrder
from support import alerts_in, break_credentials, fix, make_context, text_objects, texts

TEAM = "T0FAKE001"
OPS = Actor(TEAM, "UOPS", Role.OPERATOR)
DAILY = {"kind": "daily", "at": "06:00"}
FIELDS = ("campaign_name", "impressions", "clicks", "spend")
# 20 accounts of 5 campaigns, 4 days a run: about 400 rows, well above the "too few rows" floor.
TOKEN = "demo:accounts=30"


class QuietDemo(DemoSource):
    """The demo platform, which can be told to answer every report with no rows."""

    quiet = False

    def extract(self, *args):
        batches = super().extract(*args)
        return iter(()) if self.quiet else batches


@pytest.fixture
def platform(app_ctx):
    source = QuietDemo(sleep=app_ctx.sleep)
    app_ctx.source = lambda name: source
    return source


def make_order(ctx, cid, *, name="Campaigns by day", schedule=DAILY, accounts=20) -> int:
    with ctx.db.begin() as session:
        ids = session.scalars(
            select(Account.id).where(Account.connection_id == cid, Account.active.is_(True)).order_by(Account.id)
        ).all()[:accounts]
    spec = OrderSpec(tuple(ids), "campaign_daily", name, FIELDS, schedule, "UTC", history_days=3)
    return create_order(ctx, OPS, cid, spec, idempotency_key=uuid.uuid4().hex)[0]


def scheduled_run(ctx, clock, oid, *, hours=24):
    """The next daily occurrence: the clock moves on, then the order runs."""
    clock.advance(hours=hours)
    return run_order(ctx, TEAM, oid, trigger="schedule", scheduled_for=clock.now())


def remove_a_field(ctx, oid):
    """The platform removed a metric the order extracts: its runs fail (the platform refuses)."""
    with ctx.db.begin() as session:
        session.execute(
            update(ExtractionOrder).where(ExtractionOrder.id == oid).values(fields=[*FIELDS, "removed_metric"])
        )


def restore_fields(ctx, oid):
    with ctx.db.begin() as session:
        session.execute(update(ExtractionOrder).where(ExtractionOrder.id == oid).values(fields=list(FIELDS)))


def escalate(fake, driver, cid):
    """Someone escalated the connection to the CSM: its thread follows the alerts."""
    ada = driver.user("UADMIN")
    ada.command("/connections", str(cid), channel="C0DATA")
    ada.click(fake.ephemerals("UADMIN")[-1], "connection.tab.settings")
    card = fake.wait_for(
        lambda: fake.ephemerals("UADMIN")[-1].find("connection.escalate") and fake.ephemerals("UADMIN")[-1]
    )
    ada.click(card, "connection.escalate")
    ada.submit(fake.wait_for(lambda: fake.modal("UADMIN")), {"reason": {"value": "nightly runs"}})
    return fake.wait_for(lambda: fake.messages("C0ESC") and fake.messages("C0ESC")[0])


def settled(services):
    """Every change so far judged and posted (a flush waits for one under way)."""
    services.alerts.flush()


def open_alerts(ctx, kind=None):
    with ctx.db.begin() as session:
        query = select(Alert).where(Alert.resolved_at.is_(None))
        if kind:
            query = query.where(Alert.kind == kind)
        return session.scalars(query.order_by(Alert.id)).all()


def the_alert(fake):
    return fake.wait_for(lambda: alerts_in(fake) and alerts_in(fake)[-1])


def replies(fake, alert):
    return fake.thread("C0ALERT", alert.ts)[1:]


# ---- failing --------------------------------------------------------------------------------------


def test_failing_fires_once_reminds_daily_and_a_run_now_from_it_resolves_it_in_place(
    fake, driver, services, alerting, connect, platform, clock
):
    cid = connect(TOKEN)
    oid = make_order(alerting, cid)
    thread = escalate(fake, driver, cid)
    assert scheduled_run(alerting, clock, oid).status == "succeeded"
    remove_a_field(alerting, oid)
    assert scheduled_run(alerting, clock, oid).status == "failed"
    settled(services)
    assert alerts_in(fake) == []  # one failure is not a pattern yet (CONNBOT_ORDER_FAILURES_BEFORE_ALERT=2)

    scheduled_run(alerting, clock, oid)
    alert = the_alert(fake)
    shown = texts(alert.blocks)
    assert "Failing: Campaigns by day" in shown and "Its last 2 runs failed" in shown
    assert "the platform refused" in shown and "removed_metric" in shown and "set it up again" in shown
    for action in ("alert.order.run", "connection.open", "alert.order.pause", "connection.escalate", "alert.ack"):
        assert alert.find(action) is not None, action
    clock.advance(hours=1)
    run_order(alerting, TEAM, oid, trigger="manual", user_id="UOPS")  # still failing: no second alert
    settled(services)
    assert len(alerts_in(fake)) == 1

    now = clock.now()
    services.alerts.flush(now + timedelta(hours=5))
    assert replies(fake, alert) == []
    services.alerts.flush(now + timedelta(hours=25))
    services.alerts.flush(now + timedelta(hours=30))
    assert len(replies(fake, alert)) == 1 and "Still failing since" in replies(fake, alert)[0].text
    services.alerts.flush(now + timedelta(hours=50))
    assert len(replies(fake, alert)) == 2

    restore_fields(alerting, oid)
    assert driver.user("UOPS").click(alert, "alert.order.run").ok
    fake.wait_for(lambda: "Resolved" in texts(fake.message("C0ALERT", alert.ts).blocks), timeout=20)
    resolved = fake.message("C0ALERT", alert.ts)
    assert "a run started by <@UOPS> succeeded" in texts(resolved.blocks)
    assert resolved.find("alert.order.run") is None and resolved.find("alert.ack") is None
    assert "resolved" in resolved.text and "Campaigns by day" in resolved.text
    fake.wait_for(lambda: "Resolved" in replies(fake, alert)[-1].text)
    assert len(alerts_in(fake)) == 1
    fake.wait_for(lambda: len(fake.thread("C0ESC", thread.ts)) == 3)
    notes = [m.text for m in fake.thread("C0ESC", thread.ts)[1:]]
    assert "“Campaigns by day” is failing: its last 2 runs failed (the platform refused)" in notes[0]
    assert "“Campaigns by day”: :white_check_mark: Resolved: a run started by <@UOPS>" in notes[1]


def test_pausing_from_the_alert_closes_it_in_place_and_a_deleted_order_closes_its_alert(
    fake, driver, services, alerting, connect, platform, clock
):
    cid = connect(TOKEN)
    paused, deleted = make_order(alerting, cid, name="Paused one"), make_order(alerting, cid, name="Deleted one")
    for oid in (paused, deleted):
        remove_a_field(alerting, oid)
        for _ in range(2):
            scheduled_run(alerting, clock, oid, hours=1)
    fake.wait_for(lambda: len(alerts_in(fake)) == 2)
    first = next(m for m in alerts_in(fake) if "Paused one" in texts(m.blocks))
    assert driver.user("UOPS").click(first, "alert.order.pause", confirm=True).ok
    fake.wait_for(lambda: "paused the order" in texts(fake.message("C0ALERT", first.ts).blocks))
    closed = fake.message("C0ALERT", first.ts)
    assert "<@UOPS> paused the order" in texts(closed.blocks) and "Resolved" not in texts(closed.blocks)
    assert closed.find("alert.order.run") is None
    # The note goes to the click's response_url after the alert is updated: wait for it too.
    fake.wait_for(lambda: any("Resume it from its card" in m.visible_text for m in fake.ephemerals("UOPS")))

    second = next(m for m in alerts_in(fake) if "Deleted one" in texts(m.blocks))
    delete_order(alerting, Actor(TEAM, "UADMIN", Role.ADMIN), cid, deleted)
    fake.wait_for(lambda: "the order was deleted by <@UADMIN>" in texts(fake.message("C0ALERT", second.ts).blocks))
    assert "closed: order deleted" in fake.message("C0ALERT", second.ts).text
    assert open_alerts(alerting) == []

    # Tried by hand while paused, resumed days later: what happened before is not held against it
    # (neither failing nor stale); new failures are.
    clock.advance(days=3)
    for _ in range(2):
        assert run_order(alerting, TEAM, paused, trigger="manual", user_id="UOPS").status == "failed"
    settled(services)
    clock.advance(minutes=30)
    set_paused(alerting, OPS, cid, paused, False)
    services.alerts.flush(clock.now() + timedelta(hours=1))
    assert open_alerts(alerting) == [] and len(alerts_in(fake)) == 2
    for _ in range(2):
        scheduled_run(alerting, clock, paused, hours=1)
    fake.wait_for(lambda: len(alerts_in(fake)) == 3)


# ---- stale ----------------------------------------------------------------------------------------


def test_stale_fires_after_two_schedule_intervals_waits_for_a_run_under_way_and_a_success_resolves_it(
    fake, services, alerting, connect, platform, clock
):
    from engine.extraction import execute_run, start_run

    cid = connect(TOKEN)
    oid = make_order(alerting, cid)
    assert scheduled_run(alerting, clock, oid, hours=0).status == "succeeded"
    start = clock.now()
    services.alerts.flush(start + timedelta(hours=47))
    assert alerts_in(fake) == []
    clock.set(start + timedelta(hours=48, minutes=1))
    run_id = start_run(alerting, TEAM, oid, trigger="manual", user_id="UOPS")  # under way: it gets its chance
    services.alerts.flush(start + timedelta(hours=48, minutes=30))
    assert alerts_in(fake) == []
    services.alerts.flush(start + timedelta(hours=73))  # running for a whole interval: stuck
    alert = the_alert(fake)
    shown = texts(alert.blocks)
    assert "No fresh data: Campaigns by day" in shown and "No successful run since" in shown
    assert "24 hours each" in shown and "may be stuck" in shown
    services.alerts.flush(start + timedelta(hours=74))
    assert len(alerts_in(fake)) == 1

    clock.set(start + timedelta(hours=75))
    execute_run(alerting, TEAM, run_id)
    fake.wait_for(lambda: "Resolved" in texts(fake.message("C0ALERT", alert.ts).blocks))
    assert "a run started by <@UOPS> succeeded" in texts(fake.message("C0ALERT", alert.ts).blocks)


def test_an_uninstalled_workspaces_orders_are_not_judged_and_a_reinstall_starts_their_watch_again(
    fake, services, alerting, connect, platform, clock
):
    from operations.workspaces import note_workspace, uninstall

    oid = make_order(alerting, connect(TOKEN))
    assert scheduled_run(alerting, clock, oid, hours=0).status == "succeeded"
    start = clock.now()
    uninstall(alerting, team_id=TEAM, enterprise_id=None, is_enterprise_install=False, reason="app_uninstalled")
    services.alerts.flush(start + timedelta(days=10))  # its runs stopped with the uninstall: not stale
    clock.set(start + timedelta(days=10))
    note_workspace(alerting, TEAM, None, reinstall=True)  # someone uses connbot there again
    services.alerts.flush(start + timedelta(days=11))
    assert open_alerts(alerting) == [] and alerts_in(fake) == []
    services.alerts.flush(start + timedelta(days=12, minutes=1))  # two intervals since the reinstall
    assert "No fresh data: Campaigns by day" in texts(the_alert(fake).blocks)


# ---- silent ---------------------------------------------------------------------------------------


def test_silent_fires_on_far_fewer_rows_resolves_on_usual_rows_and_can_be_turned_off(
    fake, driver, services, alerting, connect, platform, clock
):
    cid = connect(TOKEN)
    oid = make_order(alerting, cid)
    loaded = [scheduled_run(alerting, clock, oid).rows for _ in range(4)]  # the first is the backfill
    platform.quiet = True
    assert scheduled_run(alerting, clock, oid).rows == 0
    alert = the_alert(fake)
    usual = sorted(loaded[1:])[1]
    assert "Loaded 0 rows" in texts(alert.blocks) and f"usually about {usual:,}." in texts(alert.blocks)
    assert alert.find("alert.order.pause") is None  # pausing is not the fix for a quiet platform
    scheduled_run(alerting, clock, oid)
    settled(services)
    assert len(alerts_in(fake)) == 1

    platform.quiet = False
    scheduled_run(alerting, clock, oid)
    fake.wait_for(lambda: "Resolved" in texts(fake.message("C0ALERT", alert.ts).blocks))
    assert f"a scheduled run loaded {usual:,} rows" in texts(fake.message("C0ALERT", alert.ts).blocks)

    platform.quiet = True
    scheduled_run(alerting, clock, oid)
    again = fake.wait_for(lambda: len(alerts_in(fake)) == 2 and alerts_in(fake)[-1])
    otto = driver.user("UOPS")
    otto.command("/connections", str(cid), channel="C0DATA")
    card = fake.ephemerals("UOPS")[-1]
    assert "⚠" not in texts(card.blocks) or f"0 rows, usually ~{usual:,}" in texts(card.blocks)
    assert f":warning: 0 rows, usually ~{usual:,}" in texts(card.blocks)
    _choose(otto, card, oid, "silent_off")
    fake.wait_for(lambda: "turned off too-few-rows alerts" in texts(fake.message("C0ALERT", again.ts).blocks))
    card = fake.wait_for(lambda: "Turn on too-few-rows alerts" in texts(fake.ephemerals("UOPS")[-1].blocks))
    scheduled_run(alerting, clock, oid)
    settled(services)
    assert len(alerts_in(fake)) == 2 and open_alerts(alerting) == []
    with alerting.db.begin() as session:
        assert session.scalars(select(AuditEvent.details).where(AuditEvent.action == "order.silent_alerts")).all() == [
            {"enabled": False}
        ]


def _choose(user, card, order_id, action):
    """Pick `action` in the menu of order `order_id` on the card."""
    for block in card.blocks:
        for opt in (block.get("accessory") or {}).get("options", []):
            value = json.loads(opt["value"])
            if value["o"] == order_id and value["a"] == action:
                return user.choose(card, "order.menu", opt["value"], block_id=block["block_id"])
    raise AssertionError(f"no {action} for order {order_id} in the card's menus")


# ---- a credentials error explains the orders' failures ----------------------------------------------


def test_only_the_credentials_alert_while_the_credentials_are_broken_and_none_for_what_they_explained(
    fake, services, alerting, connect, platform, clock
):
    cid = connect(TOKEN)
    oid = make_order(alerting, cid)
    scheduled_run(alerting, clock, oid)
    break_credentials(alerting, cid, times=0)
    for _ in range(2):  # the runs see the expired token: failing, and the credentials break
        assert scheduled_run(alerting, clock, oid).status == "failed"
    alert = the_alert(fake)
    assert "Credentials error" in texts(alert.blocks) and "Campaigns by day" in texts(alert.blocks)
    for days in (1, 3, 5):  # days without a run (refused): stale, failing, but explained
        services.alerts.flush(clock.now() + timedelta(days=days))
    assert len(alerts_in(fake)) == 1 and [a.kind for a in open_alerts(alerting)] == ["credentials"]

    clock.advance(days=5)
    fix(alerting, cid, TOKEN)
    fake.wait_for(lambda: "Resolved" in texts(fake.message("C0ALERT", alert.ts).blocks))
    services.alerts.flush(clock.now() + timedelta(hours=1))
    assert len(alerts_in(fake)) == 1 and open_alerts(alerting) == []  # what they explained is not news


def test_an_order_alert_opened_before_the_credentials_broke_waits_for_their_fix(
    fake, services, alerting, connect, platform, clock
):
    cid = connect(TOKEN)
    oid = make_order(alerting, cid)
    remove_a_field(alerting, oid)
    fake.channel("C0ALERT").is_private, fake.channel("C0ALERT").bot_member = True, False  # Slack refuses it
    for _ in range(2):
        scheduled_run(alerting, clock, oid, hours=1)
    settled(services)
    assert [a.kind for a in open_alerts(alerting)] == ["failing"] and alerts_in(fake) == []
    fake.clear_records()  # the refused posts are the behaviour under test

    break_credentials(alerting, cid)
    fake.channel("C0ALERT").bot_member = True
    credentials = the_alert(fake)
    services.alerts.flush(clock.now() + timedelta(hours=1))
    assert alerts_in(fake) == [credentials]  # the failing alert waits

    fix(alerting, cid, TOKEN)
    failing = fake.wait_for(lambda: len(alerts_in(fake)) == 2 and alerts_in(fake)[-1])
    assert "Failing: Campaigns by day" in texts(failing.blocks)


# ---- several processes ------------------------------------------------------------------------------


def test_two_processes_post_each_kind_once_and_remind_it_once(
    fake, alerting, connect, platform, clock, db_url, tmp_path
):
    """Two app processes (each its own database engine and alert poster) flush at the same moment:
    every alert is judged, posted and reminded once."""
    cid = connect(TOKEN)
    failing, stale, silent = (make_order(alerting, cid, name=n) for n in ("Failing one", "Stale one", "Silent one"))
    # The runs happen in a worker that posts nothing: both apps find the same work waiting.
    worker = make_context(db_url, tmp_path / "worker", clock)
    worker.settings, worker.vault, worker.source = alerting.settings, alerting.vault, alerting.source
    for _ in range(4):
        for oid in (failing, silent):
            run_order(worker, TEAM, oid, trigger="schedule", scheduled_for=clock.now())
        clock.advance(hours=1)
    run_order(worker, TEAM, stale, trigger="schedule", scheduled_for=clock.now())
    remove_a_field(worker, failing)
    platform.quiet = True
    clock.advance(days=3)
    for oid in (failing, silent):
        for _ in range(2):
            run_order(worker, TEAM, oid, trigger="manual")

    apps = []
    for n in range(2):
        ctx = make_context(db_url, tmp_path / f"app{n}", clock)
        ctx.settings, ctx.vault, ctx.source = alerting.settings, alerting.vault, alerting.source
        apps.append(create_app(ctx)[1])
    try:
        for at in (clock.now(), clock.now() + timedelta(hours=25)):
            start = threading.Barrier(len(apps))

            def flush(services, at=at, start=start):
                start.wait()
                services.alerts.flush(at)

            threads = [threading.Thread(target=flush, args=(services,)) for services in apps]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        roots = alerts_in(fake)
        titles = sorted(texts(m.blocks).split('"text": "', 2)[1].split('"')[0] for m in roots)
        assert titles == ["Failing: Failing one", "No fresh data: Stale one", "Too few rows: Silent one"]
        assert [len(replies(fake, m)) for m in roots] == [1, 1, 1]  # one reminder each
    finally:
        for services in apps:
            services.executor.shutdown(wait=True)
            services.ctx.db.dispose()
        worker.db.dispose()


def test_a_post_under_way_is_not_claimed_again_until_it_is_recorded_or_fails(alerting, connect, clock):
    from operations.alerts import POST_CLAIM, claim_post, mark_post_failed, mark_posted

    cid = connect()
    break_credentials(alerting, cid)  # no app here: the alert waits to be posted
    [alert] = open_alerts(alerting)
    now = clock.now()
    assert claim_post(alerting, alert.id, now)
    assert not claim_post(alerting, alert.id, now + timedelta(seconds=5))  # another process, meanwhile
    assert claim_post(alerting, alert.id, now + POST_CLAIM)  # the first one stopped half-way
    mark_post_failed(alerting, alert.id, "ratelimited")
    assert claim_post(alerting, alert.id, now + POST_CLAIM)  # the next flush tries again
    mark_posted(alerting, alert.id, "C0ALERT", "1.2")
    assert not claim_post(alerting, alert.id, now + 2 * POST_CLAIM)


# ---- "I'm on it" ------------------------------------------------------------------------------------


def test_im_on_it_from_two_people_at_once_ends_with_one_owner_and_pauses_reminders(
    fake, driver, services, alerting, connect, clock
):
    fake.add_user("UOPS2", "olga")
    cid = connect()
    break_credentials(alerting, cid)
    alert = the_alert(fake)
    thread = escalate(fake, driver, cid)

    clock.advance(hours=20)
    results = {}
    start = threading.Barrier(2)

    unclaimed = alert.copy()  # as both see it when they press

    def press(user_id):
        start.wait()
        results[user_id] = driver.user(user_id).click(unclaimed, "alert.ack")

    threads = [threading.Thread(target=press, args=(u,)) for u in ("UOPS", "UOPS2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.ok for r in results.values())
    owner = fake.wait_for(lambda: open_alerts(alerting)[0].acknowledged_by)
    other = ({"UOPS", "UOPS2"} - {owner}).pop()
    shown = fake.wait_for(
        lambda: fake.message("C0ALERT", alert.ts).find("alert.release") and fake.message("C0ALERT", alert.ts)
    )
    assert f"<@{owner}> is on it since" in texts(shown.blocks) and shown.find("alert.ack") is None
    fake.wait_for(lambda: any(f"<@{owner}> is already on it" in m.visible_text for m in fake.ephemerals(other)))
    notes = fake.wait_for(lambda: [m.text for m in replies(fake, alert)])
    assert len(notes) == 1 and notes[0].startswith(f":raising_hand: <@{owner}> is on it since <!date^")
    fake.wait_for(
        lambda: any(f"<@{owner}> is on the credentials alert" in m.text for m in fake.thread("C0ESC", thread.ts))
    )
    with alerting.db.begin() as session:
        taken = session.scalars(select(AuditEvent.user_id).where(AuditEvent.action == "alert.acknowledge")).all()
    assert taken == [owner]

    services.alerts.flush(clock.now() + timedelta(hours=5))  # opened 25 h ago, taken 5 h ago: no reminder
    assert len(replies(fake, alert)) == 1
    services.alerts.flush(clock.now() + timedelta(hours=25))
    reminder = replies(fake, alert)[-1].text
    assert "Still broken" in reminder and f"<@{owner}> is on it" in reminder

    driver.user(other).click(fake.message("C0ALERT", alert.ts), "alert.release")
    fake.wait_for(lambda: any("only they can release it" in m.visible_text for m in fake.ephemerals(other)))
    # The owner gives it back while the other, whose screen is behind, takes it: one owner or
    # none, as the message says.
    refusals = len(fake.ephemerals(other))
    start = threading.Barrier(2)
    shown = {owner: fake.message("C0ALERT", alert.ts).copy(), other: unclaimed}

    def act(user_id, action):
        start.wait()
        results[user_id] = driver.user(user_id).click(shown[user_id], action)

    threads = [
        threading.Thread(target=act, args=(owner, "alert.release")),
        threading.Thread(target=act, args=(other, "alert.ack")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    def taken_and_released():
        with alerting.db.begin() as session:
            return session.scalars(
                select(AuditEvent.action).where(AuditEvent.action.in_(["alert.acknowledge", "alert.release"]))
            ).all()

    # Both answered: the release audited, and the other's press audited or refused.
    fake.wait_for(
        lambda: (
            "alert.release" in taken_and_released()
            and (len(taken_and_released()) == 3 or len(fake.ephemerals(other)) > refusals)
        )
    )
    done = taken_and_released()
    [now_on] = {a.acknowledged_by for a in open_alerts(alerting)}
    assert done.count("alert.release") == 1 and now_on in (None, other)  # released, then taken or refused
    fake.wait_for(lambda: len(replies(fake, alert)) == 2 + len(done) - 1)  # a note for each, after the reminder

    def says(message):
        if now_on is None:
            return "is on it" not in texts(message.blocks) and message.find("alert.ack") is not None
        return f"<@{now_on}> is on it" in texts(message.blocks) and message.find("alert.release") is not None

    fake.wait_for(lambda: says(fake.message("C0ALERT", alert.ts)))
    notes = [f"<@{owner}> released the credentials alert"] + ([f"<@{other}> is on the"] if now_on else [])
    fake.wait_for(lambda: all(any(n in m.text for m in fake.thread("C0ESC", thread.ts)) for n in notes))


# ---- history at a glance ----------------------------------------------------------------------------

LONG_ERROR = "The platform said: <!channel> *quota* exceeded for <https://evil.example|this> account " + "é" * 3000


def test_strips_and_the_run_history_stay_within_slacks_limits_for_1000_orders_and_long_errors(
    fake, driver, app_ctx, connect, clock
):
    from sqlalchemy import insert

    from storage.models import ExtractionRun

    cid = connect(TOKEN)
    start = clock.now() - timedelta(days=40)
    with app_ctx.db.begin() as session:
        session.execute(
            insert(ExtractionOrder),
            [
                dict(
                    team_id=TEAM,
                    connection_id=cid,
                    name=f"Order {i:04d} <!channel> " + "x" * 200,
                    template="campaign_daily",
                    fields=list(FIELDS),
                    schedule=DAILY,
                    timezone="UTC",
                    status="active",
                    created_by="UOPS",
                    created_at=start + timedelta(minutes=i),
                )
                for i in range(1000)
            ],
        )
        newest = session.scalars(
            select(ExtractionOrder.id).order_by(ExtractionOrder.created_at.desc(), ExtractionOrder.id.desc()).limit(8)
        ).all()
        runs = []
        for oid in newest:
            for day in range(40):  # 40 days of runs, every third one failing with a long error
                failed = day % 3 == 0
                at = start + timedelta(days=day, hours=6)
                runs.append(
                    dict(
                        order_id=oid,
                        connection_id=cid,
                        trigger="schedule" if day else "created",
                        triggered_by=None,
                        started_at=at,
                        finished_at=at + timedelta(minutes=3, seconds=day),
                        rows=0 if failed else 1200 + day,
                        status="failed" if failed else "succeeded",
                        error=LONG_ERROR if failed else None,
                    )
                )
        session.execute(insert(ExtractionRun), runs)

    otto = driver.user("UOPS")
    otto.command("/connections", str(cid), channel="C0DATA")
    card = fake.ephemerals("UOPS")[-1]
    shown = texts(card.blocks)
    assert "1,000 orders" in shown and "page 1 of 125" in shown
    last_14 = "".join("🟥" if day % 3 == 0 else "🟩" for day in range(26, 40))  # oldest to newest
    assert last_14.endswith("🟥") and shown.count(f"last 14 runs {last_14}") == 8
    otto.click(card, "connection.tab.next")
    card = fake.wait_for(
        lambda: "page 2 of 125" in texts(fake.ephemerals("UOPS")[-1].blocks) and fake.ephemerals("UOPS")[-1]
    )
    otto.click(card, "connection.tab.prev")
    card = fake.wait_for(
        lambda: "page 1 of 125" in texts(fake.ephemerals("UOPS")[-1].blocks) and fake.ephemerals("UOPS")[-1]
    )

    _choose(otto, card, newest[0], "history")
    modal = fake.wait_for(lambda: fake.modal("UOPS"))
    assert "The last 30 runs, newest first · page 1 of 3" in texts(modal.blocks)
    assert texts(modal.blocks).count("🟥 *Failed*") == 4 and "took 3m 39s" in texts(modal.blocks)  # days 39, 36, 33, 30
    for page in (2, 3):
        otto.click(modal, "order.history.page.next")
        modal = fake.wait_for(
            lambda p=page: f"page {p} of 3" in texts(fake.modal("UOPS").blocks) and fake.modal("UOPS")
        )
    assert modal.find("order.history.page.next") is None
    assert modal.find("order.history.page.prev") is not None
    for obj in text_objects(modal.blocks) + text_objects(card.blocks):
        if obj["type"] == "mrkdwn":
            assert "<!channel>" not in obj["text"] and "evil.example" not in obj["text"], obj


def test_lists_and_the_app_home_put_connections_with_an_open_alert_first_and_say_who_is_on_it(
    fake, driver, services, alerting, connect, platform, clock
):
    healthy = connect("demo:business=acme,accounts=30")  # Acme sorts first by title
    failing = connect("demo:business=umbrella,accounts=30")
    oid = make_order(alerting, failing)
    remove_a_field(alerting, oid)
    for _ in range(2):
        scheduled_run(alerting, clock, oid, hours=1)
    alert = the_alert(fake)

    vera = driver.user("UVIEW")
    vera.command("/connections", channel="C0DATA")
    listed = fake.ephemerals("UVIEW")[-1]
    opens = [json.loads(e["value"])["c"] for e in listed.elements() if e.get("action_id") == "connection.open"]
    assert opens == [failing, healthy]
    assert "failing (nobody on it yet)" in texts(listed.blocks)

    driver.user("UOPS").click(alert, "alert.ack")
    fake.wait_for(lambda: fake.message("C0ALERT", alert.ts).find("alert.release"))
    vera.open_home()
    home = fake.wait_for(
        lambda: fake.home("UVIEW") and "on it" in texts(fake.home("UVIEW").blocks) and fake.home("UVIEW")
    )
    opens = [json.loads(e["value"])["c"] for e in home.elements() if e.get("action_id") == "connection.open"]
    assert opens == [failing, healthy] and "failing (<@UOPS> on it)" in texts(home.blocks)
