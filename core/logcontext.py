"""What the code running now is about (the Slack request, team, connection, order, run), so that
every log line written meanwhile says so (connbot/logs.py writes them as JSON fields).

Kept in context variables: a piece of work runs `isolated`, binds what it learns with `bind`, and
what it bound ends with it; the threads it hands work to run in a copy of its context
(`ContextThreadPoolExecutor`, `thread`). Only ids: nothing here may ever hold user text or a
secret, which is why the names are fixed.
"""

from __future__ import annotations

import contextvars
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from structlog.contextvars import bind_contextvars, get_contextvars

T = TypeVar("T")
P = ParamSpec("P")

# run_id is an extraction run's, sync_id an account sync's (numbered apart).
FIELDS = frozenset({"request_id", "request_kind", "team", "connection_id", "order_id", "run_id", "sync_id"})


def isolated(fn: Callable[..., T], /, *args: Any, **fields: Any) -> T:
    """`fn(*args)` in a copy of the current context with `fields` bound: whatever it binds ends
    with it."""

    def run() -> T:
        bind(**fields)
        return fn(*args)

    return contextvars.copy_context().run(run)


def bind(**fields: Any) -> None:
    """Bind `fields` (those given as None are left as they are) until the end of the current
    context: call it in code that runs `isolated`."""
    unknown = fields.keys() - FIELDS
    if unknown:
        raise TypeError(f"not a log context field: {', '.join(sorted(unknown))}")
    bind_contextvars(**{name: value for name, value in fields.items() if value is not None})


def current() -> dict[str, Any]:
    return {name: value for name, value in get_contextvars().items() if name in FIELDS}


def request_id() -> str | None:
    return current().get("request_id")


def new_request_id() -> str:
    """Short enough to be read out from a message: "reference 3F2A9C1B"."""
    return uuid.uuid4().hex[:8].upper()


class ContextThreadPoolExecutor(ThreadPoolExecutor):
    """A thread pool whose tasks run in a copy of their submitter's context."""

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        context = contextvars.copy_context()

        def run() -> T:
            return context.run(fn, *args, **kwargs)

        return super().submit(run)


def thread(target: Callable[[], Any], *, name: str, daemon: bool = True) -> threading.Thread:
    """A thread (not started) that runs `target` in a copy of the caller's context."""
    return threading.Thread(target=contextvars.copy_context().run, args=(target,), name=name, daemon=daemon)
