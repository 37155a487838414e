"""The log: standard `logging` everywhere, written as text lines (the default) or as JSON lines
(`CONNBOT_LOG_FORMAT=json`) by structlog's formatter for standard records.

A JSON line has `time` (ISO 8601, UTC), `level`, `logger`, `message`, the context bound with
core.logcontext (`request_id`, `request_kind`, `team`, `connection_id`, `order_id`, `run_id`,
when known) and `exception` (the traceback as text) when there is one. Nothing else of a record
is written: `extra=` fields and local variables of a traceback could carry a secret.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

from core import logcontext

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FORMATS = ("text", "json")


def formatter(log_format: str) -> logging.Formatter:
    if log_format == "text":
        return logging.Formatter(TEXT_FORMAT)
    if log_format != "json":
        raise ValueError(f"log format {log_format!r}: expected one of {', '.join(FORMATS)}")
    import structlog  # only for JSON lines: a process writing text never loads it

    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            _with_context,
            # The traceback as plain text: structlog's dict tracebacks would show local variables.
            structlog.processors.format_exc_info,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.EventRenamer("message"),
            structlog.processors.JSONRenderer(),
        ],
    )


def _with_context(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """The ids core.logcontext holds for the code that wrote the line."""
    for name, value in logcontext.current().items():
        event.setdefault(name, value)
    return event


def configure(*, level: int = logging.INFO, log_format: str = "text") -> None:
    """One handler on the root logger, writing to standard error in `log_format`."""
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(log_format))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if level > logging.DEBUG:
        # A line per job started and ended (procrastinate), and per request of the sources
        # (httpx, its URL without the query, see sources.http): -v shows them.
        logging.getLogger("procrastinate").setLevel(logging.WARNING)
        logging.getLogger("httpx").setLevel(logging.WARNING)
