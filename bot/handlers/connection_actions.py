"""Buttons that act on a connection: Sync accounts, Extract, Re-connect, Delete, the order menu."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass

from slack_bolt import Ack, App

from bot.blocks.common import notice_modal
from bot.blocks.connections import tombstone
from bot.blocks.orders import confirm_delete_order, notice_view, run_history_modal
from bot.cards import card_message, refresh_card, show_card_after_modal
from bot.errors import guarded
from bot.ids import Action, Callback, OrderAction
from bot.routing import CardRef, HistoryRef, OrderRef, pack, unpack
from bot.services import Services
from bot.surface import Surface
from core.errors import Conflict, NotFound, StaleAction
from engine.context import Context
from engine.executor import Work, carry_out
from operations.auth import Actor, Role, authorize
from operations.cards import deleted_connection, run_history
from operations.orders import delete_order, order_name, request_run, set_paused, set_silent_alerts
from operations.sync import request_sync

log = logging.getLogger(__name__)

# Progress updates at most this often (chat.update is rate limited; response_url has 5 uses).
PROGRESS_EVERY_SECONDS = 2.0


@dataclass(frozen=True)
class DeleteOrderMeta:
    """Routing for the Delete order confirmation: ids only."""

    c: int  # connection id
    o: int  # order id
    p: int = 0  # the orders page the menu was on
    ch: str | None = None  # channel of the card the menu was on
    ts: str | None = None  # ts of that card, when it is a channel message


def register(app: App, services: Services) -> None:
    guard = guarded(services)
    cards_behind_modals = services.cards_behind_modals

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
            surface.tell(services.client_for(surface.team_id), busy.message)
            refresh_card(services, surface, actor, ref.c, "accounts", ref.p)
            return
        refresh_card(services, surface, actor, ref.c, "accounts", ref.p)
        services.background(_run_sync_with_progress, services, surface, actor, ref.c, ref.p, run_id)

    @app.action(Action.ORDER_MENU)
    @guard
    def order_menu(ack: Ack, body: dict, action: dict) -> None:
        ack()
        ref = unpack(OrderRef, (action.get("selected_option") or {}).get("value"))
        surface = Surface.of(body)
        actor = services.roles.actor(surface.team_id, surface.user_id)
        try:
            act_on_order(ref, surface, actor, body["trigger_id"])
        except NotFound as gone:
            if deleted_connection(services.ctx, actor, ref.c) is not None:
                raise  # the card becomes the connection's tombstone (bot.errors)
            # The order was deleted since this card was drawn: redraw it, and say so.
            refresh_card(services, surface, actor, ref.c, "orders", ref.p)
            surface.tell(
                services.client_for(surface.team_id), f"{gone.message} The card now shows the orders there are."
            )

    def act_on_order(ref: OrderRef, surface: Surface, actor, trigger_id: str) -> None:
        ctx = services.ctx
        if ref.a == OrderAction.DELETE:
            authorize(ctx, actor, Role.ADMIN, "delete an extraction order", ref.c)
            meta = DeleteOrderMeta(
                ref.c, ref.o, ref.p, surface.channel_id, surface.ts if surface.kind == "message" else None
            )
            view = confirm_delete_order(pack(meta), order_name(ctx, actor, ref.c, ref.o))
            opened = services.client_for(surface.team_id).views_open(trigger_id=trigger_id, view=view)
            cards_behind_modals.keep((opened.get("view") or {}).get("id"), surface)
            return
        if ref.a == OrderAction.RUN_NOW:
            try:
                run_id = request_run(ctx, actor, ref.c, ref.o)
            except Conflict as busy:
                surface.tell(services.client_for(surface.team_id), busy.message)
                return
            refresh_card(services, surface, actor, ref.c, "orders", ref.p)
            services.background(_run_then_refresh, services, surface, actor, ref.c, ref.o, ref.p, run_id)
            return
        if ref.a == OrderAction.HISTORY:
            history = run_history(ctx, actor, ref.c, ref.o)
            services.client_for(surface.team_id).views_open(trigger_id=trigger_id, view=run_history_modal(history))
            return
        # By the value a menu option carries (a str): an OrderAction is one.
        switches: dict[str, tuple[Callable[[Context, Actor, int, int, bool], None], bool]] = {
            OrderAction.PAUSE: (set_paused, True),
            OrderAction.RESUME: (set_paused, False),
            OrderAction.SILENT_OFF: (set_silent_alerts, False),
            OrderAction.SILENT_ON: (set_silent_alerts, True),
        }
        if ref.a in switches:
            switch, on = switches[ref.a]
            try:
                switch(ctx, actor, ref.c, ref.o, on)
            except Conflict as already:
                surface.tell(services.client_for(surface.team_id), already.message)
            refresh_card(services, surface, actor, ref.c, "orders", ref.p)
            return
        raise StaleAction("This menu is from an older version of the card. Open it again with `/connections`.")

    @app.action(re.compile(rf"^{re.escape(Action.HISTORY_PAGE)}\.(prev|next)$"))
    @guard
    def history_page(ack: Ack, body: dict, action: dict) -> None:
        ack()
        ref = unpack(HistoryRef, action.get("value"))
        surface = Surface.of(body)
        actor = services.roles.viewer(surface.team_id, surface.user_id)
        history = run_history(services.ctx, actor, ref.c, ref.o, ref.p)
        services.client_for(surface.team_id).views_update(view_id=surface.view_id, view=run_history_modal(history))

    @app.view_submission(Callback.DELETE_ORDER)
    @guard
    def delete_order_confirmed(ack: Ack, body: dict, view: dict) -> None:
        meta = unpack(DeleteOrderMeta, view.get("private_metadata"))
        actor = services.roles.actor(Surface.of(body).team_id, body["user"]["id"])
        try:
            delete_order(services.ctx, actor, meta.c, meta.o)
            ack(
                response_action="update",
                view=notice_view(
                    "Delete order", "Deleted. Its schedule has stopped; the rows it loaded stay in the warehouse."
                ),
            )
        except (Conflict, NotFound) as gone:
            deleted = deleted_connection(services.ctx, actor, meta.c) if isinstance(gone, NotFound) else None
            notice = (
                notice_modal("Delete order", tombstone(deleted))
                if deleted
                else notice_view("Delete order", gone.message)
            )
            ack(response_action="update", view=notice)
        # The card the menu was on: without the order now (or the connection's tombstone).
        card = cards_behind_modals.take(view.get("id"))
        if card is not None:
            refresh_card(services, card, actor, meta.c, "orders", meta.p)
        else:
            show_card_after_modal(services, actor, meta.c, "orders", meta.ch, meta.ts, meta.p)


def _run_then_refresh(
    services: Services, surface: Surface, actor, connection_id: int, order_id: int, page: int, run_id: int
) -> None:
    """Inline the run executes here; queued, the card is refreshed when a worker has finished it."""

    def refreshed() -> None:
        refresh_card(services, surface, actor, connection_id, "orders", page)

    carry_out(services.ctx, Work("run", actor.team_id, run_id, order_id), then=refreshed)


def _run_sync_with_progress(
    services: Services, surface: Surface, actor, connection_id: int, page: int, run_id: int
) -> None:
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
        blocks, text = card_message(services, actor, connection_id, "accounts", page)
        surface.replace(
            services.client_for(surface.team_id), blocks, text
        )  # a lost progress update is not worth a message

    def refreshed() -> None:
        refresh_card(services, surface, actor, connection_id, "accounts", page)

    carry_out(services.ctx, Work("sync", actor.team_id, run_id, connection_id), progress=progress, then=refreshed)
