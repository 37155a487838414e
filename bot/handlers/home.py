"""App Home: the connected sources list for the user who opens it."""

from __future__ import annotations

from slack_bolt import Ack, App

from bot.cards import publish_home
from bot.ids import Action
from bot.services import Services
from core.errors import NotYetAvailable


def register(app: App, services: Services) -> None:
    @app.event("app_home_opened")
    def home_opened(event: dict, body: dict) -> None:
        if event.get("tab", "home") != "home":
            return
        actor = services.roles.viewer(body.get("team_id") or event.get("view", {}).get("team_id", ""), event["user"])
        publish_home(services, actor)

    @app.action(Action.NEW_CONNECTION)
    def new_connection(ack: Ack) -> None:
        ack()
        raise NotYetAvailable("Making a new connection from Slack")
