"""Buttons that act on a connection: Sync accounts, Extract, Re-connect, Delete, the order menu."""

from __future__ import annotations

import logging
import threading

from slack_bolt import Ack, App

from bot.blocks.orders import confirm_delete_order, notice_view
from bot.cards import card_message, refresh_card
from bot.errors import guarded
from bot.ids import Action, Callback, OrderAction
from bot.routing import CardRef, OrderRef, pack, unpack
from bot.services import Services
from bot.surface import Surface
from core.errors import Conflict, NotFound, StaleAction
from engine.account_sync import run_sync
from operations.auth import Role, authorize
from operations.orders import delete_order, order_name, request_run, set_paused
from operations.sync import request_sync

log = logging.getLogger(__name__)

# Progress updates at most this often (chat.update is rate limited; response_url has 5 uses).
PROGRESS_EVERY_SECONDS = 2.0


def register(app: App, services: Services) -> None:
    guard = guarded(services)

    @app.action(Action.SYNC_ACCOUNTS)
    @guard
    def sync_accounts(ack: Ack, body: dict, action: dict) -> None:
        ack()
        ref = unpack(CardRef, action.get("value"))
        surface = Surface.of(body)
        actor = services.roles.actor(surface.team_id, surface.user_id)
        try:
            run_id = request_sync(services.ctx, actor, ref.c)
        except Conflict as busy:
            surface.tell(services.client, busy.message)
            refresh_card(services, surface, actor, ref.c, "accounts")
            return
        refresh_card(services, surface, actor, ref.c, "accounts")
        services.background(_run_sync_with_progress, services, surface, actor, ref.c, run_id)

    @app.action(Action.ORDER_MENU)
    @guard
    def order_menu(ack: Ack, body: dict, action: dict) -> None:
        ack()
        ref = unpack(OrderRef, (action.get("selected_option") or {}).get("value"))
        surface = Surface.of(body)
        actor = services.roles.actor(surface.team_id, surface.user_id)
        ctx = services.ctx
        if ref.a == OrderAction.DELETE:
            authorize(ctx, actor, Role.ADMIN, "delete an extraction order", ref.c)
            meta = pack(OrderRef(ref.c, ref.o, ref.a))
            services.client.views_open(trigger_id=body["trigger_id"], view=confirm_delete_order(meta, order_name(ctx, actor, ref.c, ref.o)))
            return
        if ref.a == OrderAction.RUN_NOW:
            try:
                run_id = request_run(ctx, actor, ref.c, ref.o)
            except Conflict as busy:
                surface.tell(services.client, busy.message)
                return
            refresh_card(services, surface, actor, ref.c, "orders")
            services.background(_run_then_refresh, services, surface, actor, ref.c, run_id)
            return
        if ref.a in (OrderAction.PAUSE, OrderAction.RESUME):
            try:
                set_paused(ctx, actor, ref.c, ref.o, ref.a == OrderAction.PAUSE)
            except Conflict as already:
                surface.tell(services.client, already.message)
            refresh_card(services, surface, actor, ref.c, "orders")
            return
        raise StaleAction("This menu is from an older version of the card. Open it again with `/connections`.")

    @app.view_submission(Callback.DELETE_ORDER)
    @guard
    def delete_order_confirmed(ack: Ack, body: dict, view: dict) -> None:
        ref = unpack(OrderRef, view.get("private_metadata"))
        actor = services.roles.actor(Surface.of(body).team_id, body["user"]["id"])
        try:
            delete_order(services.ctx, actor, ref.c, ref.o)
        except (Conflict, NotFound) as gone:
            ack(response_action="update", view=notice_view("Delete order", gone.message))
            return
        ack(response_action="update", view=notice_view("Delete order", "Deleted. Its schedule has stopped; the rows it loaded stay in the warehouse."))


def _run_then_refresh(services: Services, surface: Surface, actor, connection_id: int, run_id: int) -> None:
    from engine.extraction import execute_run

    execute_run(services.ctx, actor.team_id, run_id)
    refresh_card(services, surface, actor, connection_id, "orders")


def _run_sync_with_progress(services: Services, surface: Surface, actor, connection_id: int, run_id: int) -> None:
    clock = services.ctx.clock
    last = {"at": clock.now()}
    lock = threading.Lock()

    def progress(read: int) -> None:
        now = clock.now()
        with lock:
            # Keep a response_url use for the final card.
            if (now - last["at"]).total_seconds() < PROGRESS_EVERY_SECONDS or surface.budget_left <= 2:
                return
            last["at"] = now
        blocks, text = card_message(services, actor, connection_id, "accounts")
        surface.replace(services.client, blocks, text)  # a lost progress update is not worth a message

    run_sync(services.ctx, actor.team_id, run_id, progress=progress)
    refresh_card(services, surface, actor, connection_id, "accounts")
