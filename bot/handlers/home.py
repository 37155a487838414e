"""App Home: the connected sources list for the user who opens it."""

from __future__ import annotations

from slack_bolt import App

from bot.cards import publish_home
from bot.services import Services
from bot.errors import guarded


def register(app: App, services: Services) -> None:
    guard = guarded(services)

    @app.event("app_home_opened")
    @guard
    def home_opened(event: dict, body: dict) -> None:
        if event.get("tab", "home") != "home":
            return
        actor = services.roles.viewer(body.get("team_id") or event.get("view", {}).get("team_id", ""), event["user"])
        publish_home(services, actor)