"""Finds the installed data sources through the `connbot.sources` entry-point group."""

from __future__ import annotations

import threading
from functools import cache
from importlib.metadata import entry_points

from sources.base import Source

ENTRY_POINT_GROUP = "connbot.sources"


class UnknownSource(LookupError):
    def __init__(self, name: str):
        super().__init__(f"No data source named {name!r} is installed")
        self.name = name


def installed_sources() -> dict[str, Source]:
    """Every installed source by name, loaded once. Built-ins register the same way as plugins."""
    with _loading:  # threads starting together would each scan the installed packages
        return _load()


_loading = threading.Lock()


@cache
def _load() -> dict[str, Source]:
    found: dict[str, Source] = {}
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        factory = ep.load()
        source = factory()
        found[source.name] = source
    return found


def get_source(name: str) -> Source:
    try:
        return installed_sources()[name]
    except KeyError:
        raise UnknownSource(name) from None


def close_sources() -> None:
    """At shutdown: each loaded source that keeps something open (a pool of connections to its
    platform) closes it, through its optional `close()`."""
    if not _load.cache_info().currsize:
        return  # none was loaded: nothing to close, and nothing to load now
    for source in _load().values():
        close = getattr(source, "close", None)
        if callable(close):
            close()
