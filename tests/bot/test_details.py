"""The connection details page in Slack, driven through signed requests."""

import json

import pytest

from storage.models import Connection
from support import texts


def test_list_is_ephemeral_sorted_errors_first_with_open_buttons(fake, driver, connect, app_ctx):
    ok = connect("demo:business=acme,accounts=20")
    bad = connect("demo:business=globex,accounts=5")
    with app_ctx.db.begin() as session:
        session.get(Connection, bad).credentials_status = "error"
    result = driver.user("UVIEW").command("/connections", channel="C0DATA")
    assert result.ok and result.message is not None
    assert fake.messages("C0DATA") == []  # nothing public
    message = fake.ephemerals("UVIEW")[-1]
    opens = [e for e in message.elements() if e.get("action_id") == "connection.open"]
    assert [json.loads(e["value"])["c"] for e in opens] == [bad, ok]
    with app_ctx.db.begin() as session:
        active = session.get(Connection, ok).accounts_active
    assert 0 < active < 20 and f"{active} active of 20" in texts(message.blocks)  # as the card's header says


def test_open_then_every_tab_in_place_through_response_url(fake, driver, connect):
    connect()
    vera = driver.user("UVIEW")
    vera.command("/connections", channel="C0DATA")
    vera.click(fake.ephemerals("UVIEW")[-1], "connection.open")
    card = fake.wait_for(lambda: len(fake.ephemerals("UVIEW")) == 2 and fake.ephemerals("UVIEW")[-1])
    assert "Extraction orders" in texts(card.blocks) and "No extraction orders yet" in texts(card.blocks)
    for tab, expect in (
        ("accounts", "Sync accounts"),
        ("settings", "Delete connection"),
        ("orders", "No extraction orders"),
    ):
        vera.click(card, f"connection.tab.{tab}")
        card = fake.wait_for(
            lambda expect=expect: expect in texts(fake.ephemerals("UVIEW")[-1].blocks) and fake.ephemerals("UVIEW")[-1]
        )
    assert len(fake.ephemerals("UVIEW")) == 2  # replaced in place, not posted again
    assert not fake.calls("chat.update")  # ephemeral messages are never chat.updated


def test_card_by_id_and_unknown_id_and_search(fake, driver, connect):
    cid = connect("demo:business=hooli,accounts=3")
    vera = driver.user("UVIEW")
    vera.command("/connections", str(cid), channel="C0DATA")
    assert "Hooli" in texts(fake.ephemerals("UVIEW")[-1].blocks)
    vera.command("/connections", "999", channel="C0DATA")
    assert "There is no connection 999" in fake.ephemerals("UVIEW")[-1].visible_text
    vera.command("/connections", "nothing-like-this", channel="C0DATA")
    assert "No connection matches" in texts(fake.ephemerals("UVIEW")[-1].blocks)
    vera.command("/connections", "help", channel="C0DATA")
    assert "/connections &lt;id&gt;" in texts(fake.ephemerals("UVIEW")[-1].blocks)
    for digits in ("9" * 20, "²", "#" + "9" * 19):  # searched, not looked up: no id that long
        vera.command("/connections", digits, channel="C0DATA")
        assert "No connection matches" in texts(fake.ephemerals("UVIEW")[-1].blocks), digits


def test_a_command_mentioning_payload_is_answered_like_any_other(fake, driver, connect):
    """bolt reads a form body containing the word "payload" as an interaction (bot.app.ConnbotApp)."""
    cid = connect("demo:business=hooli,accounts=3")
    fake.add_channel("C0PAYLOAD", "payload-team")
    vera = driver.user("UVIEW")
    assert vera.command("/connections", "payload", channel="C0DATA").failure is None
    assert "No connection matches" in texts(fake.ephemerals("UVIEW")[-1].blocks)
    assert vera.command("/connections", str(cid), channel="C0PAYLOAD").failure is None
    assert "Hooli" in texts(fake.ephemerals("UVIEW")[-1].blocks)


def test_another_team_sees_not_found(fake, driver, connect):
    cid = connect()
    fake.add_team("T0OTHER")
    fake.add_user("UOTHER", team_id="T0OTHER")
    fake.add_channel("C0OTHER", "other", team_id="T0OTHER")
    driver.user("UOTHER").command("/connections", str(cid), channel="C0OTHER")
    assert f"There is no connection {cid}" in fake.ephemerals("UOTHER")[-1].visible_text
    driver.user("UOTHER").command("/connections", channel="C0OTHER")
    assert "No connections yet" in texts(fake.ephemerals("UOTHER")[-1].blocks)


def test_accounts_tab_pages_in_place(fake, driver, connect):
    cid = connect("demo:accounts=40")
    vera = driver.user("UVIEW")
    vera.command("/connections", str(cid), channel="C0DATA")
    vera.click(fake.ephemerals("UVIEW")[-1], "connection.tab.accounts")
    card = fake.wait_for(
        lambda: "page 1 of 3" in texts(fake.ephemerals("UVIEW")[-1].blocks) and fake.ephemerals("UVIEW")[-1]
    )
    vera.click(card, "connection.tab.next")
    card = fake.wait_for(
        lambda: "page 2 of 3" in texts(fake.ephemerals("UVIEW")[-1].blocks) and fake.ephemerals("UVIEW")[-1]
    )
    assert card.find("connection.tab.prev") is not None


def test_share_in_channel_posts_a_card_that_updates_with_chat_update(fake, driver, connect):
    cid = connect()
    vera = driver.user("UVIEW")
    vera.command("/connections", str(cid), channel="C0DATA")
    vera.click(fake.ephemerals("UVIEW")[-1], "connection.share")
    shared = fake.wait_for(lambda: fake.messages("C0DATA") and fake.messages("C0DATA")[-1])
    driver.user("UOPS").click(shared, "connection.tab.settings")
    fake.wait_calls("chat.update")
    assert "Delete connection" in texts(fake.message("C0DATA", shared.ts).blocks)


def test_share_where_the_bot_cannot_join_says_what_to_do(fake, driver, connect):
    fake.add_channel("C0PRIV", "private", private=True, bot_member=False)
    cid = connect()
    vera = driver.user("UVIEW")
    vera.command("/connections", str(cid), channel="C0PRIV")
    vera.click(fake.ephemerals("UVIEW", "C0PRIV")[-1], "connection.share")
    note = fake.wait_for(lambda: [m for m in fake.ephemerals("UVIEW") if "/invite @connbot" in m.visible_text])
    assert note
    fake.clear_records()  # the refused postMessage is the behaviour under test


def _card_in_dm(fake, driver, user_id, how, cid):
    """A card in the user's direct message with connbot: opened from the App Home (a message), or
    asked for with /connections in that DM (an ephemeral)."""
    user = driver.user(user_id)
    dm = fake.im(user_id).id
    if how == "from the App Home":
        user.open_home()
        home = fake.wait_for(lambda: fake.home(user_id))
        user.click(home, "connection.open")
        return fake.wait_for(lambda: fake.messages(dm) and fake.messages(dm)[-1])
    user.command("/connections", str(cid), channel=dm)
    return fake.wait_for(lambda: fake.ephemerals(user_id, dm) and fake.ephemerals(user_id, dm)[-1])


@pytest.mark.parametrize("how", ["from the App Home", "typed in the DM"])
def test_share_from_a_dm_offers_a_channel_and_shares_there(fake, driver, connect, how):
    cid = connect("demo:business=initech,accounts=2")
    vera = driver.user("UVIEW")
    card = _card_in_dm(fake, driver, "UVIEW", how, cid)
    dm = fake.im("UVIEW").id
    in_dm = len(fake.messages(dm)) + len(fake.ephemerals("UVIEW", dm))
    clicked = vera.click(card, "connection.share")
    assert clicked.ok, clicked.failure  # answered within Slack's 3 seconds
    picker = fake.wait_for(lambda: fake.modal("UVIEW"))
    assert "no one to share it with" in picker.visible_text
    select = next(b["element"] for b in picker.blocks if b.get("block_id") == "share_channel")
    assert select["type"] == "conversations_select" and select["filter"]["include"] == ["public", "private"]
    done = vera.submit(picker, {"share_channel": {"value": "C0DATA"}}).view
    assert "Shared in" in done.visible_text
    shared = fake.wait_for(lambda: fake.messages("C0DATA") and fake.messages("C0DATA")[-1])
    assert "Initech" in texts(shared.blocks) and "<@UVIEW> shared" in shared.text
    assert len(fake.messages(dm)) + len(fake.ephemerals("UVIEW", dm)) == in_dm  # no second card in the DM
    driver.user("UOPS").click(shared, "connection.tab.settings")  # the channel copy works
    fake.wait_for(lambda: "Delete connection" in texts(fake.message("C0DATA", shared.ts).blocks))


def test_share_from_a_dm_into_a_channel_connbot_cannot_join_says_what_to_do(fake, driver, connect):
    fake.add_channel("C0PRIV", "private", private=True, bot_member=False)
    cid = connect()
    vera = driver.user("UVIEW")
    vera.click(_card_in_dm(fake, driver, "UVIEW", "from the App Home", cid), "connection.share")
    picker = fake.wait_for(lambda: fake.modal("UVIEW"))
    again = vera.submit(picker, {"share_channel": {"value": "C0PRIV"}}).view
    assert again.callback_id == "connection.share.submit" and "/invite @connbot" in again.visible_text
    assert fake.messages("C0PRIV") == []
    fake.clear_records()  # the refused postMessage is the behaviour under test


def test_extract_only_offered_when_possible_and_refused_from_an_old_card(fake, driver, connect, app_ctx):
    cid = connect()
    vera = driver.user("UVIEW")
    vera.command("/connections", str(cid), channel="C0DATA")
    card = fake.ephemerals("UVIEW")[-1]
    assert card.find("connection.extract") is not None
    with app_ctx.db.begin() as session:
        session.get(Connection, cid).credentials_status = "error"
    vera.click(card, "connection.extract")  # the old card still shows the button
    refusal = fake.wait_for(
        lambda: [m for m in fake.ephemerals("UVIEW") if "Extract is unavailable: credentials error" in m.visible_text]
    )
    assert refusal
    vera.command("/connections", str(cid), channel="C0DATA")
    fresh = fake.ephemerals("UVIEW")[-1]
    assert fresh.find("connection.extract") is None
    assert "Extract is unavailable: credentials error" in texts(fresh.blocks)


def test_a_card_of_a_deleted_connection_becomes_a_tombstone(fake, driver, connect, app_ctx):
    cid = connect()
    vera = driver.user("UVIEW")
    vera.command("/connections", str(cid), channel="C0DATA")
    card = fake.ephemerals("UVIEW")[-1]
    with app_ctx.db.begin() as session:
        c = session.get(Connection, cid)
        c.deleted_at, c.deleted_by, c.credentials = app_ctx.clock.now(), "UADMIN", None
    vera.click(card, "connection.tab.accounts")
    fake.wait_for(lambda: "was deleted" in texts(fake.ephemerals("UVIEW")[-1].blocks))
    assert "<@UADMIN>" in texts(fake.ephemerals("UVIEW")[-1].blocks)


def test_forged_button_value_gets_a_clear_message(fake, driver, connect):
    connect()
    vera = driver.user("UVIEW")
    vera.command("/connections", channel="C0DATA")
    message = fake.ephemerals("UVIEW")[-1]
    # The element as shown, but with a value connbot never produced (an old or forged payload).
    open_button = next(
        b["accessory"] for b in message.blocks if b.get("accessory", {}).get("action_id") == "connection.open"
    )
    open_button["value"] = "not json"
    vera.click(message, "connection.open", value="not json")
    fake.wait_for(lambda: [m for m in fake.ephemerals("UVIEW") if "older version of the message" in m.visible_text])


def test_app_home_lists_connections_with_make_a_new_connection(fake, driver, connect):
    connect("demo:business=initech,accounts=2")
    driver.user("UVIEW").open_home()
    home = fake.wait_for(lambda: fake.home("UVIEW"))
    assert home.find("connection.new") is not None and "Initech" in texts(home.blocks)
    driver.user("UVIEW").click(home, "connection.open")
    dm = fake.wait_for(lambda: fake.messages(fake.im("UVIEW").id))
    assert "Initech" in texts(dm[-1].blocks)


def test_app_home_is_republished_after_a_change(fake, driver, connect, services):
    connect("demo:business=initech,accounts=2")
    driver.user("UVIEW").open_home()
    fake.wait_for(lambda: "Initech" in texts(fake.home("UVIEW").blocks) if fake.home("UVIEW") else False)
    connect("demo:business=hooli,accounts=2")  # made elsewhere (another user, the CLI)
    fake.wait_for(lambda: "Hooli" in texts(fake.home("UVIEW").blocks), timeout=10)


def test_app_home_is_republished_only_for_those_who_may_still_be_looking(fake, driver, connect, clock):
    from bot.home import STILL_LOOKING

    connect("demo:business=initech,accounts=2")
    driver.user("UVIEW").open_home()
    clock.advance(seconds=STILL_LOOKING.total_seconds() + 1)
    driver.user("UOPS").open_home()
    fake.wait_for(lambda: fake.home("UVIEW") and fake.home("UOPS"))
    connect("demo:business=hooli,accounts=2")
    fake.wait_for(lambda: "Hooli" in texts(fake.home("UOPS").blocks), timeout=10)
    assert "Hooli" not in texts(fake.home("UVIEW").blocks)  # it is published afresh when opened
    driver.user("UVIEW").open_home()
    fake.wait_for(lambda: "Hooli" in texts(fake.home("UVIEW").blocks))


def test_app_home_is_republished_at_the_page_its_viewer_is_on(fake, driver, connect, app_ctx):
    from engine.account_sync import sync_accounts

    ids = [connect(f"demo:business={i % 5 + 1},accounts=2", sync=False) for i in range(12)]
    vera = driver.user("UVIEW")
    vera.open_home()
    home = fake.wait_for(
        lambda: fake.home("UVIEW") and fake.home("UVIEW").find("connections.page.next") and fake.home("UVIEW")
    )
    vera.click(home, "connections.page.next")
    fake.wait_for(lambda: fake.home("UVIEW").find("connections.page.prev"))
    published = len(fake.calls("views.publish"))
    sync_accounts(app_ctx, "T0FAKE001", ids[0], trigger="schedule")  # a change: the Home is re-published
    fake.wait_for(lambda: len(fake.calls("views.publish")) > published, timeout=10)
    assert fake.home("UVIEW").find("connections.page.prev") is not None  # still on page 2
    vera.open_home()  # and opening it again finds it there
    fake.wait_for(lambda: len(fake.calls("views.publish")) > published + 1)
    assert fake.home("UVIEW").find("connections.page.prev") is not None


def test_republishing_many_homes_keeps_within_slacks_rate():
    from bot.home import REPUBLISHES_PER_MINUTE, republish_window

    assert republish_window(1) == 2.0  # a change shows within seconds for a few viewers
    for viewers in (1, 10, 100, 1000):
        assert viewers / republish_window(viewers) * 60 <= REPUBLISHES_PER_MINUTE <= 50


def _add_orders(ctx, cid, n=1):
    """Extraction orders as the Extract modal would leave them (newest first on the card)."""
    from datetime import timedelta

    from storage.models import ExtractionOrder

    with ctx.db.begin() as session:
        orders = [
            ExtractionOrder(
                team_id="T0FAKE001",
                connection_id=cid,
                name=f"Order {i}",
                template="campaign_daily",
                fields=["impressions"],
                schedule={"kind": "daily", "at": "06:00"},
                timezone="UTC",
                status="active",
                created_by="UADMIN",
                created_at=ctx.clock.now() - timedelta(minutes=100 - i),
            )
            for i in range(n)
        ]
        session.add_all(orders)
        session.flush()
        return [o.id for o in orders]


def _choose_order_action(user, card, cid, order_id, action):
    value = json.dumps({"c": cid, "o": order_id, "a": action, "p": 0}, separators=(",", ":"))
    block = next(b for b in card.blocks if value in [o["value"] for o in b.get("accessory", {}).get("options", [])])
    user.choose(card, "order.menu", value, block_id=block["block_id"])


def test_delete_order_replaces_the_ephemeral_card_it_was_chosen_on(fake, driver, connect, app_ctx):
    cid = connect()
    keep, gone = _add_orders(app_ctx, cid, 2)
    ada = driver.user("UADMIN")
    ada.command("/connections", str(cid), channel="C0DATA")
    card = fake.ephemerals("UADMIN")[-1]
    assert "Order 1" in texts(card.blocks)
    _choose_order_action(ada, card, cid, gone, "delete")
    confirm = fake.wait_for(lambda: fake.modal("UADMIN"))
    assert "Deleted" in texts(ada.submit(confirm).view.blocks)
    fake.wait_for(lambda: "Order 1" not in texts(fake.ephemerals("UADMIN")[-1].blocks))
    assert "Order 0" in texts(fake.ephemerals("UADMIN")[-1].blocks)
    assert len(fake.ephemerals("UADMIN")) == 1  # replaced in place, not posted again


def test_delete_order_updates_the_channel_copy_it_was_chosen_on(fake, driver, connect, app_ctx):
    cid = connect()
    keep, gone = _add_orders(app_ctx, cid, 2)
    ada = driver.user("UADMIN")
    ada.command("/connections", str(cid), channel="C0DATA")
    ada.click(fake.ephemerals("UADMIN")[-1], "connection.share")
    shared = fake.wait_for(lambda: fake.messages("C0DATA") and fake.messages("C0DATA")[-1])
    _choose_order_action(ada, shared, cid, gone, "delete")
    ada.submit(fake.wait_for(lambda: fake.modal("UADMIN")))
    fake.wait_for(lambda: "Order 1" not in texts(fake.message("C0DATA", shared.ts).blocks))
    assert "Order 0" in texts(fake.message("C0DATA", shared.ts).blocks)


def test_delete_order_submitted_to_another_replica_still_updates_the_channel_copy(fake, driver, connect, app_ctx):
    """The ephemeral card's response_url stays in the process that opened the modal; a channel
    copy is found from the ids in private_metadata by any replica."""
    from bot.app import create_app
    from connbot.server import wsgi_app
    from fakeslack.client import AppDriver, wsgi_target

    cid = connect()
    keep, gone = _add_orders(app_ctx, cid, 2)
    ada = driver.user("UADMIN")
    ada.command("/connections", str(cid), channel="C0DATA")
    ada.click(fake.ephemerals("UADMIN")[-1], "connection.share")
    shared = fake.wait_for(lambda: fake.messages("C0DATA") and fake.messages("C0DATA")[-1])
    _choose_order_action(ada, shared, cid, gone, "delete")
    confirm = fake.wait_for(lambda: fake.modal("UADMIN"))
    other_app, other_services = create_app(app_ctx)
    try:
        other = AppDriver(fake, wsgi_target(wsgi_app(other_app)), signing_secret="test-signing-secret")
        other.user("UADMIN").submit(confirm)
        fake.wait_for(lambda: "Order 1" not in texts(fake.message("C0DATA", shared.ts).blocks))
    finally:
        other_services.executor.shutdown(wait=True)


def test_sync_accounts_keeps_the_accounts_page(fake, driver, connect):
    cid = connect("demo:accounts=40")
    otto = driver.user("UOPS")
    otto.command("/connections", str(cid), channel="C0DATA")
    otto.click(fake.ephemerals("UOPS")[-1], "connection.tab.accounts")
    card = fake.wait_for(
        lambda: "page 1 of 3" in texts(fake.ephemerals("UOPS")[-1].blocks) and fake.ephemerals("UOPS")[-1]
    )
    otto.click(card, "connection.tab.next")
    card = fake.wait_for(
        lambda: "page 2 of 3" in texts(fake.ephemerals("UOPS")[-1].blocks) and fake.ephemerals("UOPS")[-1]
    )
    otto.click(card, "connection.sync_accounts")
    fake.wait_for(lambda: "+0 added" in texts(fake.ephemerals("UOPS")[-1].blocks))
    assert "page 2 of 3" in texts(fake.ephemerals("UOPS")[-1].blocks)


def test_order_actions_keep_the_orders_page(fake, driver, connect, app_ctx):
    cid = connect()
    ids = _add_orders(app_ctx, cid, 12)
    ada = driver.user("UADMIN")
    ada.command("/connections", str(cid), channel="C0DATA")
    ada.click(fake.ephemerals("UADMIN")[-1], "connection.tab.next")
    card = fake.wait_for(
        lambda: "page 2 of" in texts(fake.ephemerals("UADMIN")[-1].blocks) and fake.ephemerals("UADMIN")[-1]
    )

    def orders_on(message):
        return {json.loads(o["value"])["o"] for b in message.blocks for o in b.get("accessory", {}).get("options", [])}

    on_page = sorted(orders_on(card) & set(ids))

    def choose(order_id, action):
        value = json.dumps({"c": cid, "o": order_id, "a": action, "p": 1}, separators=(",", ":"))
        block = next(b for b in card.blocks if value in [o["value"] for o in b.get("accessory", {}).get("options", [])])
        ada.choose(card, "order.menu", value, block_id=block["block_id"])

    choose(on_page[0], "pause")
    card = fake.wait_for(
        lambda: "Paused" in texts(fake.ephemerals("UADMIN")[-1].blocks) and fake.ephemerals("UADMIN")[-1]
    )
    assert "page 2 of" in texts(card.blocks)
    choose(on_page[1], "delete")
    ada.submit(fake.wait_for(lambda: fake.modal("UADMIN")))
    fake.wait_for(lambda: on_page[1] not in orders_on(fake.ephemerals("UADMIN")[-1]))
    assert "page 2 of" in texts(fake.ephemerals("UADMIN")[-1].blocks)


def test_the_menu_of_an_order_deleted_since_redraws_the_card_and_says_so(fake, driver, connect, app_ctx):
    from operations.auth import Actor
    from operations.orders import delete_order

    cid = connect()
    keep, gone = _add_orders(app_ctx, cid, 2)
    ada = driver.user("UADMIN")
    ada.command("/connections", str(cid), channel="C0DATA")
    card = fake.ephemerals("UADMIN")[-1].copy()  # as the person still sees it
    delete_order(app_ctx, Actor.system("T0FAKE001"), cid, gone)
    _choose_order_action(ada, card, cid, gone, "pause")
    note = fake.wait_for(lambda: [m for m in fake.ephemerals("UADMIN") if "no longer exists" in m.visible_text])
    assert "The card now shows the orders there are" in note[-1].visible_text
    redrawn = [c for c in fake.calls("response_url") if c.args.get("replace_original") in (True, "true")]
    assert redrawn and "Order 1" not in texts(redrawn[-1].args) and "Order 0" in texts(redrawn[-1].args)


def _delete_connection(ctx, cid):
    with ctx.db.begin() as session:
        c = session.get(Connection, cid)
        c.deleted_at, c.deleted_by, c.credentials = ctx.clock.now(), "UADMIN", None


def test_every_button_of_an_old_card_of_a_deleted_connection_shows_its_tombstone(fake, driver, connect, app_ctx):
    cid = connect()
    (order,) = _add_orders(app_ctx, cid, 1)
    ada = driver.user("UADMIN")
    ada.command("/connections", str(cid), channel="C0DATA")
    orders_card = fake.ephemerals("UADMIN")[-1].copy()  # as a stale client still shows it
    ada.click(orders_card, "connection.tab.accounts")
    accounts_card = fake.wait_for(
        lambda: "Sync accounts" in texts(fake.ephemerals("UADMIN")[-1].blocks) and fake.ephemerals("UADMIN")[-1].copy()
    )
    ada.click(accounts_card, "connection.tab.settings")
    settings_card = fake.wait_for(
        lambda: (
            "Delete connection" in texts(fake.ephemerals("UADMIN")[-1].blocks) and fake.ephemerals("UADMIN")[-1].copy()
        )
    )
    _delete_connection(app_ctx, cid)

    presses = [
        lambda: ada.click(accounts_card, "connection.sync_accounts"),
        *(
            lambda action=action: _choose_order_action(ada, orders_card, cid, order, action)
            for action in ("run", "pause", "delete")
        ),
        lambda: ada.click(orders_card, "connection.share"),
        lambda: ada.click(orders_card, "connection.extract"),
        lambda: ada.click(settings_card, "connection.reconnect"),
        lambda: ada.click(settings_card, "connection.delete", confirm=True),
        lambda: ada.click(settings_card, "connection.escalate"),
        lambda: ada.choose(settings_card, "connection.alert_channel", "C0DATA"),
    ]

    def replaced_since(before: int):
        # Delete also says "already deleted" beside the card, before or after replacing it.
        answers = fake.calls("response_url")[before:]
        return next((a for a in answers if a.args.get("replace_original") in (True, "true")), None)

    for press in presses:
        before = len(fake.calls("response_url"))
        press()
        answer = fake.wait_for(lambda before=before: replaced_since(before))
        assert "was deleted" in texts(answer.args) and "<@UADMIN>" in texts(answer.args), texts(answer.args)
    assert not [m for m in fake.ephemerals("UADMIN") if "There is no connection" in m.visible_text]
    assert fake.messages("C0DATA") == []  # nothing shared publicly
    assert fake.modal("UADMIN") is None
