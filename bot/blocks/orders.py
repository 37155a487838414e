"""Small modals of the order menu."""

from __future__ import annotations

from bot.blocks.common import context, mrkdwn, notice_modal, plain, section
from bot.ids import Callback


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
