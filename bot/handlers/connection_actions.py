"""Buttons that act on a connection: Sync accounts, Extract, Re-connect, Delete, the order menu."""

from __future__ import annotations

import logging
import threading

from slack_bolt import Ack, App

from bot.cards import refresh_card
from bot.ids import Action
from bot.routing import CardRef, OrderRef, unpack
from bot.services import Services
from bot.surface import Surface
from bot.errors import guarded
from core.errors import Conflict, NotYetAvailable, StaleAction
from engine.account_sync import run_sync
from operations.cards import extract_blocker, load_card, Card
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

    @app.action(Action.EXTRACT)
    @guard
    def extract(ack: Ack, body: dict, action: dict) -> None:
        ack()
        ref = unpack(CardRef, action.get("value"))
        surface = Surface.of(body)
        actor = services.roles.viewer(surface.team_id, surface.user_id)
        card = load_card(services.ctx, actor, ref.c, "orders")
        if not isinstance(card, Card):
            refresh_card(services, surface, actor, ref.c, "orders")
            return
        blocker = extract_blocker(card.connection)
        if blocker:
            raise StaleAction(f"Extract is unavailable: {blocker}.")
        raise NotYetAvailable("Setting up an extraction from Slack")

    @app.action(Action.ORDER_MENU)
    @guard
    def order_menu(ack: Ack, body: dict, action: dict) -> None:
        ack()
        unpack(OrderRef, (action.get("selected_option") or {}).get("value"))
        raise NotYetAvailable("Managing extraction orders from Slack")


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
        refresh_card(services, surface, actor, connection_id, "accounts")

    run_sync(services.ctx, actor.team_id, run_id, progress=progress)
    if not refresh_card(services, surface, actor, connection_id, "accounts"):
        surface.tell(services.client, "The account sync finished, but the card could not be updated. Open it again with `/connections`.")
