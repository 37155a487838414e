"""Small modals of the order menu, and its Run history."""

from __future__ import annotations

from typing import Any

from bot.blocks.common import (
    actions,
    button,
    context,
    divider,
    mrkdwn,
    notice_modal,
    plain,
    plural,
    section,
    slack_date,
    user_mention,
)
from bot.ids import Action, Callback
from bot.routing import HistoryRef, pack
from operations.cards import HistoryRun, RunHistory

OUTCOME = {
    "succeeded": "🟩 *Succeeded*",
    "failed": "🟥 *Failed*",
    "cancelled": "⬜ *Cancelled*",
    "running": "🟦 *Running*",
    "queued": "🟦 *Queued*",
}


def confirm_delete_order(metadata: str, order_name: str) -> dict:
    return {
        "type": "modal",
        "callback_id": Callback.DELETE_ORDER,
        "title": plain("Delete order", 24),
        "submit": plain("Delete", 24),
        "close": plain("Cancel", 24),
        "private_metadata": metadata,
        "blocks": [
            section(plain(f"Delete the extraction order “{order_name}”?", 2000)),
            context(
                mrkdwn(
                    "Its schedule stops now and a run in progress stops at its next batch. Rows it loaded stay in the warehouse. You cannot undo this."
                )
            ),
        ],
    }


def notice_view(title: str, text: str) -> dict:
    return notice_modal(title, [section(plain(text, 2000))])


def run_history_modal(h: RunHistory) -> dict[str, Any]:
    """An order's last runs, newest first: when, trigger, who, duration, rows, outcome, error."""
    blocks: list[dict[str, Any]] = [
        section(plain(f"{h.order_name}", 500)),
        context(
            mrkdwn(
                f"The last {plural(h.page.total, 'run')}, newest first · page {h.page.number} of {h.page.count}"
                if h.page.total
                else "No run yet."
            )
        ),
    ]
    for run in h.runs:
        blocks.append(divider())
        blocks.append(context(*_run_line(run)))
    nav = []
    index = h.page.offset // h.page.limit
    if h.page.has_previous:
        nav.append(
            button("Newer", f"{Action.HISTORY_PAGE}.prev", pack(HistoryRef(h.connection_id, h.order_id, index - 1)))
        )
    if h.page.has_next:
        nav.append(
            button("Older", f"{Action.HISTORY_PAGE}.next", pack(HistoryRef(h.connection_id, h.order_id, index + 1)))
        )
    if nav:
        blocks.append(actions(*nav, block_id=f"history:{index}"))
    return {
        "type": "modal",
        "callback_id": Callback.RUN_HISTORY,
        "title": plain("Run history", 24),
        "close": plain("Close", 24),
        "private_metadata": pack(HistoryRef(h.connection_id, h.order_id, index)),
        "blocks": blocks,
    }


TRIGGER_TEXT = {"created": "first run", "schedule": "scheduled", "manual": "Run now"}


def _run_line(run: HistoryRun) -> list[dict[str, Any]]:
    who = f" by {user_mention(run.triggered_by)}" if run.triggered_by else ""
    took = "waiting for a worker" if run.status == "queued" else "still running"
    if run.finished_at is not None:
        took = f"took {_duration((run.finished_at - run.started_at).total_seconds())}"
    line = [
        mrkdwn(f"{OUTCOME.get(run.status, run.status)} {slack_date(run.started_at)}"),
        mrkdwn(f"{TRIGGER_TEXT.get(run.trigger, run.trigger)}{who} · {took} · {run.rows:,} rows"),
    ]
    if run.error:
        line.append(plain(f"Error: {run.error}", 1000))
    return line


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"
