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

T = TypeVar("T")
P = ParamSpec("P")

# run_id is an extraction run's, sync_id an account sync's (numbered apart).
FIELDS = frozenset({"request_id", "request_kind", "team", "connection_id", "order_id", "run_id", "sync_id"})
# One variable per field, as contextvars wants them: a copied context carries them, a value set in
# it ends with it.
_VARS: dict[str, contextvars.ContextVar[Any]] = {
    name: contextvars.ContextVar(f"connbot_log_{name}", default=None) for name in sorted(FIELDS)
}


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
    for name, value in fields.items():
        if value is not None:
            _VARS[name].set(value)


def current() -> dict[str, Any]:
    """The fields bound in the current context (connbot/logs.py adds them to every JSON line)."""
    return {name: value for name, var in _VARS.items() if (value := var.get()) is not None}


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
