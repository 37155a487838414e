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


@dataclass(eq=False)
class Context:
    settings: Settings
    db: Database
    vault: Vault
    clock: Clock = field(default_factory=Clock)
    events: EventBus = field(default_factory=EventBus)
    # Every data source by name (entry points and installed connectors: engine/connectors.py).
    source: Callable[[str], Source] | None = None
    sources: Callable[[], dict[str, Source]] | None = None
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
        if self.source is None or self.sources is None:
            directory = SourceDirectory(self.db)
            self.source = self.source or directory.get
            self.sources = self.sources or directory.all

    def __repr__(self) -> str:
        return f"Context(db={self.db.dialect}, executor={self.executor.name})"
