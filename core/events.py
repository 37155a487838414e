"""Domain events, published after a unit of work commits, so that the Slack layer can react
(post or resolve an alert, refresh the App Home) without the engine knowing about Slack."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    team_id: str
    connection_id: int


@dataclass(frozen=True)
class CredentialsBroke(Event):
    code: str
    message: str
    at: datetime
    source: str


@dataclass(frozen=True)
class CredentialsFixed(Event):
    by: str | None  # user id, or None when a check by the system found them working
    at: datetime


@dataclass(frozen=True)
class RunFinished(Event):
    """An extraction run ended (succeeded, failed or cancelled), however it was started: the
    order alerts judge it, the metrics count it."""

    order_id: int
    run_id: int
    status: str
    source: str
    seconds: float
    rows: int


@dataclass(frozen=True)
class ConnectionChanged(Event):
    """Anything shown on a card or list changed (sync finished, order created, deleted...)."""

    what: str


@dataclass(frozen=True)
class SyncFinished(Event):
    """An account sync ended (succeeded, failed or cancelled), however it was started."""

    source: str
    status: str
    seconds: float
    accounts_read: int


@dataclass(frozen=True)
class WorkspaceChanged:
    """A workspace was installed, uninstalled or purged, or its settings were saved."""

    team_id: str
    what: str  # installed | uninstalled | purged | settings


E = TypeVar("E", bound="Event | WorkspaceChanged")


class EventBus:
    def __init__(self) -> None:
        # Each list holds handlers of its key's type only (subscribe pairs them), which a dict's
        # type cannot say: publish calls them with an instance of that type.
        self._subscribers: dict[type, list[Callable[[Any], object]]] = defaultdict(list)

    def subscribe(self, event_type: type[E], handler: Callable[[E], object]) -> None:
        self._subscribers[event_type].append(handler)

    def publish(self, event: Event | WorkspaceChanged) -> None:
        for event_type, handlers in list(self._subscribers.items()):
            if isinstance(event, event_type):
                for handler in handlers:
                    try:
                        handler(event)
                    except Exception:
                        # A subscriber's failure must not undo the committed change that raised it.
                        log.exception(
                            "event handler %s failed for %s",
                            getattr(handler, "__name__", handler),
                            type(event).__name__,
                        )
