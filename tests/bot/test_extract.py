"""Extract: the four steps through signed Slack requests, runs into the warehouse, the order menu."""

import json

import duckdb
import pytest
from sqlalchemy import select

from storage.models import ExtractionOrder, ExtractionRun, OrderAccount
from support import texts


def accounts_block(view) -> str:
    return next(b["block_id"] for b in view.blocks if b.get("block_id", "").startswith("accounts:"))


def options_of(view) -> list[str]:
    block = next(b for b in view.blocks if b.get("block_id", "").startswith("accounts:"))
    return [o["value"] for o in block["element"]["options"]]


def open_extract(fake, user, cid):
    user.command("/connections", str(cid), channel="C0DATA")
    user.click(fake.ephemerals(user.id)[-1], "connection.extract")
    return fake.wait_for(lambda: fake.modal(user.id) and fake.modal(user.id).callback_id == "extract.accounts" and fake.modal(user.id))


def runs(ctx):
    with ctx.db.begin() as session:
        return session.scalars(select(ExtractionRun).order_by(ExtractionRun.id)).all()


def wait_runs_done(fake, ctx, n):
    return fake.wait_for(lambda: len(runs(ctx)) >= n and all(r.status != "running" for r in runs(ctx)) and runs(ctx), timeout=30)


def warehouse_rows(ctx, table="demo__campaign_daily"):
    with duckdb.connect(ctx.settings.warehouse, read_only=True) as con:
        total = con.execute(f'select count(*) from "{table}"').fetchone()[0]
        distinct = con.execute(f'select count(*) from (select distinct date, account_id, campaign_id from "{table}")').fetchone()[0]
    return total, distinct


def four_steps(fake, user, cid, *, pick=2, history="3", template="campaign_daily"):
    step1 = open_extract(fake, user, cid)
    first_page = options_of(step1)
    user.fill(step1, {accounts_block(step1): {"value": first_page[:1]}})
    user.click(step1, "extract.accounts.next")
    step1 = fake.wait_for(lambda: options_of(fake.modal(user.id)) != first_page and fake.modal(user.id))
    user.fill(step1, {accounts_block(step1): {"value": options_of(step1)[: pick - 1]}})
    step2 = user.submit(step1).view
    assert step2.callback_id == "extract.template", texts(step2.errors)
    step3 = user.submit(step2, {"template": {"value": template}}).view
    assert step3.callback_id == "extract.configure"
    step4 = user.submit(step3, {"history_days": {"value": history}}).view
    assert step4.callback_id == "extract.review", step4.errors
    assert f"Accounts ({pick})" in texts(step4.blocks)  # the selection survived paging
    return step4


def test_four_steps_create_an_order_whose_runs_load_without_duplicates(fake, driver, connect, app_ctx):
    cid = connect("demo:accounts=25")
    otto = driver.user("UOPS")
    review = four_steps(fake, otto, cid)
    done = otto.submit(review).view
    assert "Created the extraction order" in texts(done.blocks)
    first = wait_runs_done(fake, app_ctx, 1)
    assert (first[0].trigger, first[0].status) == ("created", "succeeded"), first[0].error
    total, distinct = warehouse_rows(app_ctx)
    assert total == distinct == 2 * 5 * 4  # accounts × campaigns × days (today and the 3 before)
    assert first[0].rows == total

    otto.command("/connections", str(cid), channel="C0DATA")
    card = fake.ephemerals("UOPS")[-1]
    assert "Succeeded" in texts(card.blocks) or "succeeded" in texts(card.blocks)
    order_id = runs(app_ctx)[0].order_id
    otto.choose(card, "order.menu", json.dumps({"c": cid, "o": order_id, "a": "run"}, separators=(",", ":")))
    second = wait_runs_done(fake, app_ctx, 2)
    assert (second[1].trigger, second[1].status) == ("manual", "succeeded")
    assert warehouse_rows(app_ctx) == (total, distinct)  # merged, not duplicated


def test_double_submit_creates_one_order(fake, driver, connect, app_ctx):
    cid = connect("demo:accounts=25")
    otto = driver.user("UOPS")
    review = four_steps(fake, otto, cid)
    stale = fake.view(review.id)
    payload = stale.to_api()
    otto.submit(review)
    # Slack delivers the same submission again (a double click before the modal changed)
    from connbot.fakeslack.client import SlackUser  # noqa: F401

    body = {**otto._base("view_submission"), "trigger_id": fake.issue_trigger("UOPS"), "view": payload, "response_urls": []}
    driver._interactive("view_submission", body, "UOPS")
    wait_runs_done(fake, app_ctx, 1)
    with app_ctx.db.begin() as session:
        assert len(session.scalars(select(ExtractionOrder)).all()) == 1
        assert len(session.scalars(select(OrderAccount)).all()) == 2


def test_empty_selection_and_bad_configuration_are_refused_inline(fake, driver, connect):
    cid = connect("demo:accounts=12")
    otto = driver.user("UOPS")
    step1 = open_extract(fake, otto, cid)
    result = otto.submit(step1)
    assert "Select at least one account" in texts(result.view.errors)
    otto.fill(step1, {accounts_block(step1): {"value": options_of(step1)[:1]}})
    step2 = otto.submit(step1).view
    step3 = otto.submit(step2, {"template": {"value": "campaign_daily"}}).view
    result = otto.submit(step3, {"history_days": {"value": None}})  # neither a depth nor a date
    assert "from 1 to 3650" in texts(result.view.errors)
    result = otto.submit(step3, {"history_days": {"value": "3"}, "name": {"value": "   "}})
    assert "Enter the order name" in texts(result.view.errors)


def test_back_remembers_what_was_typed(fake, driver, connect):
    cid = connect("demo:accounts=12")
    otto = driver.user("UOPS")
    step1 = open_extract(fake, otto, cid)
    otto.fill(step1, {accounts_block(step1): {"value": options_of(step1)[:1]}})
    step2 = otto.submit(step1).view
    step3 = otto.submit(step2, {"template": {"value": "campaign_daily"}}).view
    otto.fill(step3, {"name": {"value": "Remember me"}, "history_days": {"value": "9"}})
    otto.click(step3, "extract.back")
    step2 = fake.wait_for(lambda: fake.modal("UOPS").callback_id == "extract.template" and fake.modal("UOPS"))
    step3 = otto.submit(step2).view  # same template kept
    assert "Remember me" in texts(step3.blocks) and '"initial_value": "9"' in texts(step3.blocks)


def test_viewer_cannot_extract_and_an_old_card_is_refused(fake, driver, connect, services, app_ctx):
    from dataclasses import replace

    from storage.models import Connection

    services.roles.settings = replace(services.roles.settings, operators=("UOPS",))
    cid = connect("demo:accounts=12")
    vera = driver.user("UVIEW")
    vera.command("/connections", str(cid), channel="C0DATA")
    vera.click(fake.ephemerals("UVIEW")[-1], "connection.extract")
    fake.wait_for(lambda: [m for m in fake.ephemerals("UVIEW") if "operator role" in m.visible_text])
    otto = driver.user("UOPS")
    otto.command("/connections", str(cid), channel="C0DATA")
    card = fake.ephemerals("UOPS")[-1]
    with app_ctx.db.begin() as session:
        session.get(Connection, cid).credentials_status = "error"
    otto.click(card, "connection.extract")
    fake.wait_for(lambda: [m for m in fake.ephemerals("UOPS") if "Extract is unavailable: credentials error" in m.visible_text])
    assert fake.modal("UOPS") is None


def test_pause_resume_and_delete_order_from_the_menu(fake, driver, connect, app_ctx):
    cid = connect("demo:accounts=25")
    otto = driver.user("UOPS")
    otto.submit(four_steps(fake, otto, cid))
    wait_runs_done(fake, app_ctx, 1)
    order_id = runs(app_ctx)[0].order_id

    def menu(user, action):
        user.command("/connections", str(cid), channel="C0DATA")
        card = fake.ephemerals(user.id)[-1]
        user.choose(card, "order.menu", json.dumps({"c": cid, "o": order_id, "a": action}, separators=(",", ":")))

    menu(otto, "pause")
    fake.wait_for(lambda: "Paused" in texts(fake.ephemerals("UOPS")[-1].blocks))
    menu(otto, "resume")
    fake.wait_for(lambda: "Paused" not in texts(fake.ephemerals("UOPS")[-1].blocks))
    menu(otto, "delete")  # operators may not delete orders
    fake.wait_for(lambda: [m for m in fake.ephemerals("UOPS") if "admin role to delete an extraction order" in m.visible_text])
    ada = driver.user("UADMIN")
    menu(ada, "delete")
    confirm = fake.wait_for(lambda: fake.modal("UADMIN"))
    assert "cannot undo" in texts(confirm.blocks)
    assert "Deleted" in texts(ada.submit(confirm).view.blocks)
    with app_ctx.db.begin() as session:
        assert session.get(ExtractionOrder, order_id).deleted_at is not None
    actions = [a for a in _audit_actions(app_ctx) if a.startswith("order.")]
    assert actions == ["order.create", "order.pause", "order.resume", "order.delete"]


def _audit_actions(ctx):
    from storage.models import AuditEvent

    with ctx.db.begin() as session:
        return [e.action for e in session.scalars(select(AuditEvent).where(AuditEvent.outcome == "ok").order_by(AuditEvent.id))]


@pytest.mark.postgres
def test_four_steps_into_a_postgresql_warehouse(fake, driver, connect, app_ctx, pg_server):
    import uuid
    from dataclasses import replace

    import psycopg

    schema = f"wh_slack_{uuid.uuid4().hex[:10]}"
    server = "postgresql://postgres@127.0.0.1:5432/test"
    app_ctx.settings = replace(app_ctx.settings, warehouse=f"{server}?schema={schema}")
    try:
        cid = connect("demo:accounts=25")
        otto = driver.user("UOPS")
        otto.submit(four_steps(fake, otto, cid))
        first = wait_runs_done(fake, app_ctx, 1)
        assert first[0].status == "succeeded", first[0].error
        otto.command("/connections", str(cid), channel="C0DATA")
        otto.choose(fake.ephemerals("UOPS")[-1], "order.menu", json.dumps({"c": cid, "o": first[0].order_id, "a": "run"}, separators=(",", ":")))
        second = wait_runs_done(fake, app_ctx, 2)
        assert second[1].status == "succeeded"
        with psycopg.connect(server, autocommit=True) as con:
            total, distinct = con.execute(
                f'SELECT count(*), count(DISTINCT (date, account_id, campaign_id)) FROM "{schema}".demo__campaign_daily'
            ).fetchone()
        assert total == distinct == 2 * 5 * 4
    finally:
        with psycopg.connect(server, autocommit=True) as con:
            con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.mark.parametrize("stale_by", ["deleting the connection", "breaking its credentials"])
def test_a_step_submitted_after_the_connection_changed_is_answered_over_the_form(fake, driver, connect, app_ctx, stale_by):
    from operations.auth import Actor
    from operations.connections import delete_connection
    from storage.models import Connection

    cid = connect("demo:accounts=12")
    otto = driver.user("UOPS")
    step1 = open_extract(fake, otto, cid)
    otto.fill(step1, {accounts_block(step1): {"value": options_of(step1)[:1]}})
    if stale_by == "deleting the connection":
        delete_connection(app_ctx, Actor.system("T0FAKE001"), cid)
    else:
        with app_ctx.db.begin() as session:
            session.get(Connection, cid).credentials_status = "error"
    result = otto.submit(step1)
    assert result.ok, result.failure  # answered within Slack's 3 seconds: no error banner
    notice, form = fake.views("UOPS")[-1], fake.views("UOPS")[0]
    assert ("There is no connection" in texts(notice.blocks)) or ("unavailable" in texts(notice.blocks))
    assert form.callback_id == "extract.accounts"  # closing the notice goes back to the form
    assert fake.calls("views.push") == []
