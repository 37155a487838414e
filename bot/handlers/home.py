"""App Home: the connected sources list for the user who opens it (bot/home.py keeps it current)."""

from __future__ import annotations

from slack_bolt import App

from bot.errors import guarded
from bot.services import Services


def register(app: App, services: Services) -> None:
    guard = guarded(services)

    @app.event("app_home_opened")
    @guard
    def home_opened(event: dict, body: dict) -> None:
        if event.get("tab", "home") != "home":
            return
        services.home.opened(body.get("team_id") or event.get("view", {}).get("team_id", ""), event["user"])
