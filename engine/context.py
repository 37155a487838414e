"""What every operation needs, built once at start-up (see connbot/runtime.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from core.clock import Clock
from core.events import EventBus
from core.settings import Settings
from engine.connectors import SourceDirectory
from engine.executor import Executor, InlineExecutor
from sources.base import Source
from storage.db import Database
from storage.vault import Vault


# Markers of a Context built without `source` / `sources`: __post_init__ replaces them, so that
# the fields are never None.
def _from_directory(name: str) -> Source:
    raise AssertionError("Context.__post_init__ replaces this default")


def _all_from_directory() -> dict[str, Source]:
    raise AssertionError("Context.__post_init__ replaces this default")


@dataclass(eq=False)
class Context:
    settings: Settings
    db: Database
    vault: Vault
    clock: Clock = field(default_factory=Clock)
    events: EventBus = field(default_factory=EventBus)
    # Every data source by name (entry points and installed connectors: engine/connectors.py);
    # the database's SourceDirectory unless given.
    source: Callable[[str], Source] = _from_directory
    sources: Callable[[], dict[str, Source]] = _all_from_directory
    # Back-off waits go through here, so tests do not sleep.
    sleep: Callable[[float], None] = time.sleep
    # Where runs and syncs execute (engine/executor.py): threads of this process unless
    # connbot.runtime.start_executor sets the task queue.
    executor: Executor = field(default_factory=InlineExecutor)
    # Account-sync requests in flight to sources, across every sync of this process (scheduled
    # or pressed): `CONNBOT_SYNC_CONCURRENCY` of them. See engine.account_sync.sync_threads.
    sync_slots: threading.BoundedSemaphore = field(init=False)

    def __post_init__(self) -> None:
        self.sync_slots = threading.BoundedSemaphore(self.settings.sync_concurrency)
        if self.source is _from_directory or self.sources is _all_from_directory:
            directory = SourceDirectory(self.db)
            if self.source is _from_directory:
                self.source = directory.get
            if self.sources is _all_from_directory:
                self.sources = directory.all

    def __repr__(self) -> str:
        return f"Context(db={self.db.dialect}, executor={self.executor.name})"
