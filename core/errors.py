"""Typed errors raised anywhere and rendered once, by the app's error handler or the CLI.

The message of a `ConnbotError` is written for the person who sees it: what happened and what
to do. It never contains secrets.
"""

from __future__ import annotations


class ConnbotError(Exception):
    """A failure the user can understand; its message is shown as is."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class ConfigError(ConnbotError):
    """A wrong setting: names the variable and what it expects."""


class NotFound(ConnbotError):
    pass


class NotAllowed(ConnbotError):
    """The user lacks the role an action needs."""

    def __init__(self, message: str, *, role: str = "", action: str = ""):
        super().__init__(message)
        self.role = role
        self.action = action


class StaleAction(ConnbotError):
    """A button from an older message that no longer matches the state."""


class InvalidInput(ConnbotError):
    """Bad input. `fields` maps form block ids to the message shown on that field."""

    def __init__(self, message: str, fields: dict[str, str] | None = None):
        super().__init__(message)
        self.fields = dict(fields or {})


class Conflict(ConnbotError):
    """The action is already done or under way (a second delete, a second sync)."""


class NotInstalled(ConnbotError):
    """connbot has no bot token for the workspace: never installed there, or uninstalled."""


class Unavailable(ConnbotError):
    """A dependency (the database, a source) cannot be reached right now."""
