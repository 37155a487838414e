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
    return fake.wait_for(
        lambda: fake.modal(user.id) and fake.modal(user.id).callback_id == "extract.accounts" and fake.modal(user.id)
    )


def runs(ctx):
    with ctx.db.begin() as session:
        return session.scalars(select(ExtractionRun).order_by(ExtractionRun.id)).all()


def wait_runs_done(fake, ctx, n):
    return fake.wait_for(
        lambda: len(runs(ctx)) >= n and all(r.status != "running" for r in runs(ctx)) and runs(ctx), timeout=30
    )


def warehouse_rows(ctx, table="demo__campaign_daily"):
    with duckdb.connect(ctx.settings.warehouse, read_only=True) as con:
        total = con.execute(f'select count(*) from "{table}"').fetchone()[0]
        distinct = con.execute(
            f'select count(*) from (select distinct date, account_id, campaign_id from "{table}")'
        ).fetchone()[0]
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
    otto.choose(card, "order.menu", json.dumps({"c": cid, "o": order_id, "a": "run", "p": 0}, separators=(",", ":")))
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
    from fakeslack.client import SlackUser  # noqa: F401

    body = {
        **otto._base("view_submission"),
        "trigger_id": fake.issue_trigger("UOPS"),
        "view": payload,
        "response_urls": [],
    }
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
    # T0 is 2026-11-28: 3,650 days back (two leap days) is 2016-11-30, the earliest date an order may load from.
    result = otto.submit(
        step3, {"history_days": {"value": None}, "load_since": {"value": "1900-01-01"}, "name": {"value": "Old"}}
    )
    assert "Pick a date from 2016-11-30 on" in texts(result.view.errors)
    step4 = otto.submit(step3, {"history_days": {"value": None}, "load_since": {"value": "2016-11-30"}}).view
    assert step4.callback_id == "extract.review" and "since 2016-11-30" in texts(step4.blocks)


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

    services.ctx.settings = replace(services.ctx.settings, operators=("UOPS",))
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
    fake.wait_for(
        lambda: [m for m in fake.ephemerals("UOPS") if "Extract is unavailable: credentials error" in m.visible_text]
    )
    assert fake.modal("UOPS") is None


def test_pause_resume_and_delete_order_from_the_menu(fake, driver, connect, app_ctx):
    cid = connect("demo:accounts=25")
    otto = driver.user("UOPS")
    otto.submit(four_steps(fake, otto, cid))
    wait_runs_done(fake, app_ctx, 1)
    order_id = runs(app_ctx)[0].order_id

    def menu(user, action):
        """The card the command showed (replaced in place by the menu's answer); not the latest
        ephemeral, which the first run's own card may still come to be."""
        card = user.command("/connections", str(cid), channel="C0DATA").message
        user.choose(
            card, "order.menu", json.dumps({"c": cid, "o": order_id, "a": action, "p": 0}, separators=(",", ":"))
        )
        return card

    card = menu(otto, "pause")
    fake.wait_for(lambda: "Paused" in texts(card.blocks))
    card = menu(otto, "resume")
    # The command showed the order paused; Resume replaces that card.
    fake.wait_for(lambda: "Paused" not in texts(card.blocks))
    menu(otto, "delete")  # operators may not delete orders
    fake.wait_for(
        lambda: [m for m in fake.ephemerals("UOPS") if "admin role to delete an extraction order" in m.visible_text]
    )
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
        return [
            e.action
            for e in session.scalars(select(AuditEvent).where(AuditEvent.outcome == "ok").order_by(AuditEvent.id))
        ]


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
        otto.choose(
            fake.ephemerals("UOPS")[-1],
            "order.menu",
            json.dumps({"c": cid, "o": first[0].order_id, "a": "run", "p": 0}, separators=(",", ":")),
        )
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
def test_a_step_submitted_after_the_connection_changed_is_answered_over_the_form(
    fake, driver, connect, app_ctx, stale_by
):
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
    assert ("was deleted by" in texts(notice.blocks)) or ("unavailable" in texts(notice.blocks))
    assert form.callback_id == "extract.accounts"  # closing the notice goes back to the form
    assert fake.calls("views.push") == []


# -- when Create cannot create (accounts gone inactive, anything else invalid) ---------------------


def deactivate(ctx, *account_ids):
    from storage.models import Account

    with ctx.db.begin() as session:
        for account_id in account_ids:
            session.get(Account, account_id).active = False


def account_name(ctx, account_id):
    from storage.models import Account

    with ctx.db.begin() as session:
        return session.get(Account, account_id).name


def test_create_with_an_account_gone_inactive_stays_on_review_without_it(fake, driver, connect, app_ctx):
    from bot.routing import unpack_draft

    cid = connect("demo:accounts=25")
    otto = driver.user("UOPS")
    review = four_steps(fake, otto, cid)
    gone, kept = unpack_draft(review.payload["private_metadata"]).a
    deactivate(app_ctx, gone)  # e.g. the daily account sync ran since step 1
    result = otto.submit(review)
    assert result.ok, result.failure
    view = result.view
    assert view.callback_id == "extract.review", view.visible_text
    text = view.visible_text
    assert "Created" not in text and "Not created" in text and account_name(app_ctx, gone) in text
    assert "Press Create again" in text and "Accounts (1)" in text
    assert unpack_draft(view.private_metadata).a == (kept,)  # the rest of the draft is kept
    assert "Created the extraction order" in texts(otto.submit(view).view.blocks)
    wait_runs_done(fake, app_ctx, 1)
    with app_ctx.db.begin() as session:
        assert [oa.account_id for oa in session.scalars(select(OrderAccount))] == [kept]


def test_create_with_every_account_gone_inactive_says_to_go_back_and_offers_no_create(fake, driver, connect, app_ctx):
    from bot.routing import unpack_draft
    from fakeslack.client import NotSubmittable

    cid = connect("demo:accounts=25")
    otto = driver.user("UOPS")
    review = four_steps(fake, otto, cid)
    deactivate(app_ctx, *unpack_draft(review.payload["private_metadata"]).a)
    view = otto.submit(review).view
    assert view.callback_id == "extract.review", view.visible_text
    assert "Not created" in view.visible_text and "Select at least one account. Go Back" in view.visible_text
    assert "submit" not in view.payload and "Create" not in view.visible_text  # nothing to create with
    with pytest.raises(NotSubmittable):
        otto.submit(view)
    with app_ctx.db.begin() as session:
        assert session.scalars(select(ExtractionOrder)).all() == []


@pytest.mark.parametrize("refused_by", ["breaking its credentials", "removing the operator role"])
def test_a_refused_create_rebuilds_the_review_from_the_state_now(fake, driver, connect, app_ctx, services, refused_by):
    """Create refused after step 3: the review is updated in place and offers Create only when it can
    work (a notice pushed over it went Back to the old review, which still offered Create)."""
    from storage.models import Connection

    cid = connect("demo:accounts=25")
    otto = driver.user("UOPS")
    review = four_steps(fake, otto, cid)
    if refused_by == "breaking its credentials":
        with app_ctx.db.begin() as session:
            session.get(Connection, cid).credentials_status = "error"
        reason = "Extract is unavailable: credentials error"
    else:
        from dataclasses import replace

        services.ctx.settings = replace(services.ctx.settings, operators=("UADMIN",))
        reason = "You need the operator role to set up an extraction"
    result = otto.submit(review)
    assert result.ok, result.failure
    view = result.view
    assert view.callback_id == "extract.review" and len(fake.views("UOPS")) == 1, view.visible_text  # not pushed
    assert "Not created." in view.visible_text and reason in view.visible_text
    assert "Create is not offered until that changes" in view.visible_text
    assert "submit" not in view.payload  # Back, or Cancel: nothing else can work
    assert unpack_draft_of(view).a == unpack_draft_of(review).a  # what was chosen is kept
    with app_ctx.db.begin() as session:
        assert session.scalars(select(ExtractionOrder)).all() == []


def unpack_draft_of(view):
    from bot.routing import unpack_draft

    return unpack_draft(view.private_metadata)


def test_the_review_offers_create_again_once_it_can_work(fake, driver, connect, app_ctx):
    from storage.models import Connection

    cid = connect("demo:accounts=25")
    otto = driver.user("UOPS")
    review = four_steps(fake, otto, cid)
    with app_ctx.db.begin() as session:
        session.get(Connection, cid).credentials_status = "error"
    refused = otto.submit(review).view
    assert "submit" not in refused.payload
    with app_ctx.db.begin() as session:
        session.get(Connection, cid).credentials_status = "active"  # e.g. re-connected meanwhile
    otto.click(refused, "extract.back")
    step3 = fake.wait_for(lambda: fake.modal("UOPS").callback_id == "extract.configure" and fake.modal("UOPS"))
    again = otto.submit(step3).view
    assert again.callback_id == "extract.review" and again.payload["submit"]["text"] == "Create"
    assert "Created the extraction order" in otto.submit(again).view.visible_text


def test_back_to_step_one_takes_out_accounts_gone_inactive(fake, driver, connect, app_ctx):
    from bot.routing import unpack_draft

    cid = connect("demo:accounts=25")
    otto = driver.user("UOPS")
    review = four_steps(fake, otto, cid)
    gone, kept = unpack_draft(review.payload["private_metadata"]).a  # ticked on pages 1 and 2
    deactivate(app_ctx, gone)
    for step in ("extract.configure", "extract.template", "extract.accounts"):
        otto.click(fake.modal("UOPS"), "extract.back")
        fake.wait_for(lambda step=step: fake.modal("UOPS").callback_id == step)
    step1 = fake.modal("UOPS")
    # An inactive account is on no page: it would stay selected unseen, and Create would refuse it.
    assert unpack_draft(step1.private_metadata).a == (kept,)
    assert account_name(app_ctx, gone) in step1.visible_text and "no longer active" in step1.visible_text
    ticked = next(b for b in step1.blocks if b.get("block_id", "").startswith("accounts:"))["element"][
        "initial_options"
    ]
    assert [o["value"] for o in ticked] == [str(kept)]  # moved up to page 1, still ticked
    step2 = otto.submit(step1).view
    step3 = otto.submit(step2).view
    assert "Accounts (1)" in otto.submit(step3).view.visible_text


# -- the size of a selection -------------------------------------------------------------------------


def tick_pages(fake, user, step1, pages):
    """Tick every account of `pages` pages, paging with Next; returns the modal on the next page."""
    for _ in range(pages):
        shown = options_of(step1)
        user.fill(step1, {accounts_block(step1): {"value": shown}})
        user.click(step1, "extract.accounts.next")
        step1 = fake.wait_for(lambda shown=shown: options_of(fake.modal(user.id)) != shown and fake.modal(user.id))
    return step1


def search(fake, driver, user, view, text):
    """Type `text` in the accounts search and press Enter (the fake types only into selects)."""
    action = {
        "action_id": "extract.search",
        "block_id": "accounts_search",
        "type": "plain_text_input",
        "value": text,
        "action_ts": fake.new_ts(),
    }
    body = {
        **user._base("block_actions"),
        "container": {"type": "view", "view_id": view.id},
        "view": fake.view(view.id).to_api(),
        "trigger_id": fake.issue_trigger(user.id, view_id=view.id),
        "actions": [action],
    }
    assert driver._interactive("block_actions", body, user.id).ok


def test_step_one_counts_what_it_can_see_and_refuses_more_than_an_order_takes(fake, driver, connect, app_ctx):
    from sqlalchemy import update

    from bot.routing import unpack_draft
    from storage.models import Account

    cid = connect("demo:accounts=200")  # about 165 active
    with app_ctx.db.begin() as session:  # ids as long as they get: 10 digits
        session.execute(update(Account).where(Account.connection_id == cid).values(id=Account.id + 2_000_000_000))
    otto = driver.user("UOPS")
    step1 = open_extract(fake, otto, cid)
    assert "0 accounts selected" not in step1.visible_text  # boxes ticked here are not counted until paging
    last = tick_pages(fake, otto, step1, 15)
    assert "150 accounts selected on other pages" in last.visible_text and "up to 150 accounts" in last.visible_text
    otto.fill(last, {accounts_block(last): {"value": options_of(last)[:1]}})
    refused = otto.submit(last).view
    assert refused.callback_id == "extract.accounts"
    assert "at most 150 accounts and 151 are selected" in refused.errors[accounts_block(last)]
    otto.fill(last, {accounts_block(last): {"value": []}})
    step2 = otto.submit(last).view
    assert step2.callback_id == "extract.template", texts(step2.errors)

    # The longest draft: 150 ten-digit ids, a 255-character name, every field, a 200-character search.
    step3 = otto.submit(step2, {"template": {"value": "campaign_daily"}}).view
    template = app_ctx.source("demo").templates()[0]
    name = ('"Q4" \\ spend · ' * 20)[:254] + "!"
    review = otto.submit(
        step3,
        {
            "name": {"value": name},
            "history_days": {"value": "3650"},
            "schedule_kind": {"value": "monthly"},
            "schedule_day": {"value": "28"},
            "schedule_at": {"value": "23:30"},
            "dimensions": {"value": [f.name for f in template.dimensions if f.name not in template.primary_key]},
            "metrics": {"value": [f.name for f in template.metrics]},
        },
    ).view
    assert review.callback_id == "extract.review", texts(review.errors)
    assert "Accounts (150)" in review.visible_text
    for step in ("extract.configure", "extract.template", "extract.accounts"):
        otto.click(fake.modal("UOPS"), "extract.back")
        fake.wait_for(lambda step=step: fake.modal("UOPS").callback_id == step)
    step1 = fake.modal("UOPS")
    search(fake, driver, otto, step1, ('no such "account" \\ ' * 10)[:199] + "!")
    step1 = fake.wait_for(lambda: "No active account matches" in fake.modal("UOPS").visible_text and fake.modal("UOPS"))
    draft = unpack_draft(step1.private_metadata)
    assert (len(draft.a), len(draft.n), len(draft.q)) == (150, 255, 200)
    assert fake.problems() == [] and fake.failures == []  # no view over Slack's limits, no error
    assert otto.submit(step1).view.callback_id == "extract.template"


def test_every_builtin_template_fits_a_draft_at_its_maxima_in_private_metadata():
    from bot.routing import MAX_METADATA, Draft, pack_draft, search_that_fits
    from core.settings import load_settings
    from engine.context import Context

    ctx = Context(settings=load_settings({}, dotenv=False), db=None, vault=None)
    for source in ("demo", "facebook_ads", "google_ads"):
        for template in ctx.source(source).templates():
            draft = Draft(
                c=2**31 - 1,
                k="f" * 32,
                a=tuple(range(2**31 - 150, 2**31)),
                q='"' * 200,
                p=2**31 - 1,
                t=template.name,
                n='"' * 255,
                h=3650,
                s="2026-11-28",
                sk="monthly",
                se=12,
                sa="23:30",
                sw=6,
                sd=28,
                tz="America/Argentina/ComodRivadavia",
                f=tuple(f.name for f in template.fields),
                ch="C" + "0" * 10,
                ts="1700000000.123456",
            )
            assert len(pack_draft(search_that_fits(draft))) <= MAX_METADATA, (source, template.name)
            assert len(pack_draft(draft.but(q="q" * 200, n="n" * 255))) <= MAX_METADATA  # plain text: nothing cut


def test_a_choice_of_an_earlier_step_refused_late_is_said_over_the_form_not_on_the_name(fake, driver, connect):
    import json as _json

    from bot.routing import unpack_draft

    cid = connect("demo:accounts=12")
    otto = driver.user("UOPS")
    step1 = open_extract(fake, otto, cid)
    otto.fill(step1, {accounts_block(step1): {"value": options_of(step1)[:1]}})
    step3 = otto.submit(otto.submit(step1).view, {"template": {"value": "campaign_daily"}}).view
    # a draft from before step 1 enforced the limit
    draft = unpack_draft(step3.private_metadata)
    step3.payload["private_metadata"] = _json.dumps(
        {**_json.loads(step3.private_metadata), "a": [draft.a[0] + i for i in range(151)]}
    )
    result = otto.submit(step3, {"name": {"value": "Mine"}, "history_days": {"value": "3"}})
    assert result.ok and result.view.errors == {}
    view = result.view
    assert (
        view.callback_id == "extract.configure"
        and "at most 150 accounts" in view.visible_text
        and "Go Back" in view.visible_text
    )
    assert "Mine" in texts(view.blocks)  # what was typed is kept


# -- the card after the first run ---------------------------------------------------------------------


def says_running(message) -> bool:
    return "running" in message.visible_text.lower()


def test_first_run_from_an_ephemeral_card_leaves_one_card_with_its_result(fake, driver, connect, app_ctx):
    cid = connect("demo:accounts=25")
    otto = driver.user("UOPS")
    done = otto.submit(four_steps(fake, otto, cid)).view
    assert "a fresh card will show its result" in done.visible_text
    wait_runs_done(fake, app_ctx, 1)
    fake.wait_for(lambda: "succeeded" in fake.ephemerals("UOPS")[-1].visible_text.lower())
    posted = fake.calls("chat.postEphemeral")
    assert not [m for m in fake.ephemerals("UOPS") if says_running(m)]
    assert len([c for c in posted if c.args.get("user") == "UOPS"]) == 1  # one card, not one per update


def _review_from_a_channel_copy(fake, otto, cid):
    """Share the card in #data-team, then Extract from that copy up to its review step."""
    otto.command("/connections", str(cid), channel="C0DATA")
    otto.click(fake.ephemerals("UOPS")[-1], "connection.share")
    shared = fake.wait_for(lambda: fake.messages("C0DATA") and fake.messages("C0DATA")[-1])
    otto.click(shared, "connection.extract")
    step1 = fake.wait_for(
        lambda: fake.modal("UOPS") and fake.modal("UOPS").callback_id == "extract.accounts" and fake.modal("UOPS")
    )
    otto.fill(step1, {accounts_block(step1): {"value": options_of(step1)[:1]}})
    step3 = otto.submit(otto.submit(step1).view, {"template": {"value": "campaign_daily"}}).view
    return shared, otto.submit(step3, {"history_days": {"value": "3"}}).view


def test_first_run_from_a_channel_copy_updates_that_copy(fake, driver, connect, app_ctx):
    cid = connect("demo:accounts=25")
    otto = driver.user("UOPS")
    shared, review = _review_from_a_channel_copy(fake, otto, cid)
    posted = len(fake.ephemerals("UOPS"))
    done = otto.submit(review).view
    assert "the card in the channel shows its progress" in done.visible_text
    wait_runs_done(fake, app_ctx, 1)
    fake.wait_for(lambda: "succeeded" in fake.message("C0DATA", shared.ts).visible_text.lower())
    assert not says_running(fake.message("C0DATA", shared.ts))
    assert len(fake.ephemerals("UOPS")) == posted  # updated in place, no extra card


def test_a_channel_copy_slack_will_not_update_after_the_first_run_is_said_to_the_user(fake, driver, connect, app_ctx):
    cid = connect("demo:accounts=25")
    otto = driver.user("UOPS")
    _, review = _review_from_a_channel_copy(fake, otto, cid)
    fake.fail_next("chat.update", status=500, times=None)
    otto.submit(review)
    wait_runs_done(fake, app_ctx, 1)
    note = fake.wait_for(
        lambda: [m for m in fake.ephemerals("UOPS") if "did not accept the updated card" in m.visible_text], timeout=15
    )
    assert f"/connections {cid}" in note[-1].visible_text
    fake.clear_faults()
    fake.clear_records()  # the refused updates are the behaviour under test


def test_a_streams_fields_ride_in_private_metadata_by_name_when_they_fit_else_as_a_mask():
    from bot.routing import MAX_METADATA, Draft, draft_fields, pack_draft, unpack_draft, with_fields

    offered = [f"property_{i:04d}_{'x' * 50}" for i in range(1000)]  # 1,000 fields of 64 characters
    draft = Draft(c=7, k="k" * 32, a=tuple(range(2**31 - 150, 2**31)), t="contacts", n='"' * 255)

    few = with_fields(draft, [offered[3], offered[1]], offered)
    assert (few.f, few.fm) == ((offered[3], offered[1]), None)  # by name, in the order chosen

    half = offered[::2]
    carried = unpack_draft(pack_draft(with_fields(draft, half, offered)))
    assert len(pack_draft(carried)) <= MAX_METADATA and carried.f is None
    assert draft_fields(carried, offered) == tuple(half)
    assert draft_fields(carried, [*offered, "new_field"]) is None  # rediscovered since: the defaults again
    assert draft_fields(carried.but(fm="garbage"), offered) is None
    nothing = unpack_draft(pack_draft(with_fields(draft, [], offered)))
    assert draft_fields(nothing, offered) == ()


def test_pickers_of_more_than_100_options_are_searched_as_one_types():
    from bot.blocks.extract import configure_step, field_options, stream_options, template_step
    from bot.routing import Draft
    from sources.base import ExtractionTemplate, FieldKind, FieldType, TemplateField

    def template(name: str, fields: int) -> ExtractionTemplate:
        made = tuple(TemplateField(f"f{i}", f"Field {i}", FieldType.TEXT, FieldKind.DIMENSION) for i in range(fields))
        return ExtractionTemplate(name, name.title(), "", made, ())

    templates = tuple(template(f"stream_{i}", 3) for i in range(150))
    draft = Draft(c=1, k="k", t="stream_120")
    picker = next(b for b in template_step(draft, templates)["blocks"] if b.get("block_id") == "template")
    assert picker["element"]["type"] == "external_select"
    assert picker["element"]["initial_option"]["value"] == "stream_120"  # the choice so far, beyond 100
    assert [o["value"] for o in stream_options(templates, " Stream_14 ")] == [f"stream_14{i}" for i in ("", *range(10))]
    assert len(stream_options(templates, "")) == 100 and stream_options(templates, "nothing like it") == []
    assert (
        next(b for b in template_step(draft, templates[:100])["blocks"] if b.get("block_id") == "template")["element"][
            "type"
        ]
        == "static_select"
    )

    wide = template("events", 101)  # no primary key: the key-field picker is as wide
    view = configure_step(draft.but(t="events"), wide, ["UTC"])
    pickers = {b["block_id"]: b for b in view["blocks"] if b.get("block_id") in ("dimensions", "key_fields")}
    assert {k: b["element"]["type"] for k, b in pickers.items()} == {
        "dimensions": "multi_external_select",
        "key_fields": "multi_external_select",
    }
    assert len(pickers["dimensions"]["element"]["initial_options"]) == 101  # a stream's default: every field
    assert "initial_options" not in pickers["key_fields"]["element"] and pickers["key_fields"]["optional"]
    assert pickers["key_fields"]["hint"]["text"].startswith("The fields that together identify a row")
    assert [o["value"] for o in field_options(wide, "key_fields", "field 10")] == ["f10", "f100"]
    assert field_options(wide, "metrics", "") == [] and field_options(wide, "unknown", "f") == []
