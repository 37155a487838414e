"""Credentials alerts for on-call, and CSM escalation threads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.blocks.common import (
    actions,
    button,
    context,
    escape,
    header,
    mrkdwn,
    notice_modal,
    plain,
    section,
    slack_date,
    user_mention,
)
from bot.ids import Action
from bot.routing import CardRef, pack
from operations.alerts import AlertCard, EscalationCard

ALERT_BLOCK_PREFIX = "alert:"  # the block id of an alert's buttons: "alert:<id>"


def alert_message(a: AlertCard) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [
        header(f"Credentials error: {a.source_title} · {a.business_account_name}"),
        section(
            plain(f"{a.error_message or 'The data source refused the credentials.'}", 2000),
            fields=[
                plain(f"Business account ID: {a.business_account_id or '—'}", 300),
                plain(f"Error code: {a.error_code or '—'}", 300),
                mrkdwn(f"*Since:* {slack_date(a.since)}"),
                mrkdwn(f"*Connection:* {a.connection_id}"),
            ],
        ),
    ]
    if a.affected_orders:
        blocks.append(context(plain("Orders affected: " + ", ".join(a.affected_orders), 2000)))
    else:
        blocks.append(context(mrkdwn("No extraction orders are affected.")))
    if a.resolved_at is not None:
        blocks.append(section(mrkdwn(resolution_text(a))))
        return blocks
    ref = pack(CardRef(a.connection_id, "settings"))
    blocks.append(
        actions(
            button("Re-connect", Action.RECONNECT, ref, style="primary"),
            button("Open details", Action.OPEN, ref),
            button("Escalate to CSM", Action.ESCALATE, ref),
            block_id=f"{ALERT_BLOCK_PREFIX}{a.id}",
        )
    )
    return blocks


def resolution_text(a: AlertCard) -> str:
    """How a closed alert ended, in its message and its thread: on-call must not read a deletion
    as fixed credentials."""
    if a.connection_deleted:
        return (
            f":wastebasket: Closed: the connection was deleted by {user_mention(a.resolved_by)} "
            f"at {slack_date(a.resolved_at)}; nothing was fixed."
        )
    return resolved_text(a.resolved_by, a.resolved_at)


def resolved_text(user_id: str | None, at: datetime) -> str:
    return f":white_check_mark: Resolved by {user_mention(user_id, system='a successful check')} at {slack_date(at)}."


def alert_text(a: AlertCard) -> str:
    state = (
        ("closed: connection deleted" if a.connection_deleted else "resolved") if a.resolved_at else "credentials error"
    )
    return f"Connection {a.connection_id} ({escape(a.source_title)} · {escape(a.business_account_name)}): {state}"


def reminder_text(a: AlertCard) -> str:
    return f"Still broken since {slack_date(a.since)}. Re-connect fixes it."


def escalation_modal(connection_id: int, callback_id: str, title: str) -> dict:
    return {
        "type": "modal",
        "callback_id": callback_id,
        "title": plain("Escalate to CSM", 24),
        "submit": plain("Escalate", 24),
        "close": plain("Cancel", 24),
        "private_metadata": pack(CardRef(connection_id)),
        "blocks": [
            section(plain(f"Escalate {title} to the Customer Success Manager.", 500)),
            {
                "type": "input",
                "block_id": "reason",
                "label": plain("Why? What have you tried?"),
                "element": {"type": "plain_text_input", "action_id": "value", "multiline": True, "max_length": 1000},
            },
        ],
    }


def escalation_message(e: EscalationCard, csm_group: str | None) -> list[dict[str, Any]]:
    who = f"<!subteam^{csm_group}>" if csm_group else "Customer Success"
    blocks: list[dict[str, Any]] = [
        header(f"Escalation: {e.source_title} · {e.business_account_name}"),
        section(mrkdwn(f"{who}: {user_mention(e.escalated_by)} asks for help with connection {e.connection_id}.")),
        section(plain(f"Why: {e.reason}", 2000)),
        context(
            plain(f"Business account ID: {e.business_account_id or '—'} · credentials: {e.credentials_status}", 300),
            plain(f"Last error: {e.error_message or 'none'}", 500),
        ),
    ]
    for order, when, status, rows, error in e.recent_runs:
        blocks.append(
            context(
                plain(f"{order}: {status}, {rows:,} rows" + (f" — {error}" if error else ""), 500),
                mrkdwn(slack_date(when)),
            )
        )
    blocks.append(
        context(
            mrkdwn(
                f"`/connections {e.connection_id}` opens the card · `@connbot status {e.connection_id}` in this thread replies with it"
            )
        )
    )
    return blocks


def follow_up(text: str) -> list[dict[str, Any]]:
    return [section(mrkdwn(text))]


def escalated(channel: str) -> dict:
    return notice_modal("Escalate to CSM", [section(mrkdwn(f"Escalated in <#{channel}>."))], close="Done")
