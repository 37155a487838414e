"""Alerts for on-call (credentials, and orders failing, stale or silent), and CSM escalation threads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.blocks.common import (
    actions,
    button,
    confirm,
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
from bot.routing import AlertRef, CardRef, OrderRef, pack
from operations.alerts import AlertCard, EscalationCard

ALERT_BLOCK_PREFIX = "alert:"  # the block id of an alert's buttons: "alert:<id>"

# What each kind of alert is called, in its header and wherever it is listed.
KIND_TITLE = {
    "credentials": "Credentials error",
    "failing": "Failing",
    "stale": "No fresh data",
    "silent": "Too few rows",
}
ORIGIN_TEXT = {
    "platform": "the platform refused",
    "connbot": "connbot failed",
    "warehouse": "the warehouse refused",
}
WHAT_TO_DO = {
    "platform": "The data source refused the run. A removed field or report: delete the order and set it up again "
    "with *Extract*. A quota, or accounts that lost access: fix it on the platform's side, then *Run now*; "
    "or *Escalate to CSM*.",
    "connbot": "connbot itself failed; its log says why (search it for the order). *Run now* tries again; "
    "if it fails again, *Escalate to CSM*.",
    "warehouse": "The warehouse refused the rows: check its space, permissions and schema, then *Run now*.",
}


def alert_message(a: AlertCard) -> list[dict[str, Any]]:
    blocks = _credentials(a) if not a.is_order_alert else _order_alert(a)
    if a.resolved_at is not None:
        blocks.append(section(mrkdwn(resolution_text(a))))
        return blocks
    if a.acknowledged_by:
        blocks.append(context(mrkdwn(acknowledged_text(a.acknowledged_by, a.acknowledged_at))))
    blocks.append(actions(*_buttons(a), block_id=f"{ALERT_BLOCK_PREFIX}{a.id}"))
    return blocks


def _credentials(a: AlertCard) -> list[dict[str, Any]]:
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
    return blocks


def _order_alert(a: AlertCard) -> list[dict[str, Any]]:
    d = a.details
    where = [
        plain(f"Order: {a.order_name}", 300),
        plain(f"Schedule: {a.order_schedule or '—'}", 300),
        plain(f"Connection: {a.source_title} · {a.business_account_name}", 300),
        mrkdwn(f"*Connection ID:* {a.connection_id}"),
    ]
    blocks: list[dict[str, Any]] = [header(f"{KIND_TITLE[a.kind]}: {a.order_name}")]
    if a.kind == "failing":
        origin = a.error_code or "platform"
        blocks.append(
            section(
                mrkdwn(
                    f"Its last {d.get('failures', 0):,} runs failed, since {slack_date(_at(d.get('since')) or a.since)}: "
                    f"*{ORIGIN_TEXT.get(origin, origin)}*."
                ),
                fields=where,
            )
        )
        blocks.append(section(plain(f"Last error: {a.error_message or 'none recorded'}", 2000)))
        blocks.append(context(mrkdwn(WHAT_TO_DO.get(origin, WHAT_TO_DO["platform"]))))
    elif a.kind == "stale":
        last = _at(d.get("last_success_at"))
        since = slack_date(last) if last else "it was set up"
        hours = d.get("interval_hours", 24)
        blocks.append(
            section(
                mrkdwn(
                    f"No successful run since {since}: more than two intervals of its schedule ({hours:,} hours each)."
                ),
                fields=where,
            )
        )
        blocks.append(context(mrkdwn(_latest_run_text(d))))
        blocks.append(
            context(
                mrkdwn(
                    "Whatever the reason (runs skipped, stuck or failing), *Run now* tries at once; "
                    "*Open details* shows its runs."
                )
            )
        )
    else:  # silent
        blocks.append(
            section(
                mrkdwn(
                    f"Loaded {d.get('rows', 0):,} rows {slack_date(_at(d.get('run_at')) or a.since)}; "
                    f"usually about {d.get('usual_rows', 0):,}."
                ),
                fields=where,
            )
        )
        blocks.append(
            context(
                mrkdwn(
                    "A platform that stopped reporting, accounts that lost their data, or a really quiet day. "
                    "If it is expected, turn off too-few-rows alerts in the order's menu on its card."
                )
            )
        )
    return blocks


def _latest_run_text(d: dict) -> str:
    status, at = d.get("last_run_status"), _at(d.get("last_run_at"))
    if status is None:
        return "No run at all since: its scheduled runs were skipped."
    if status == "running":
        return f"A run has been under way since {slack_date(at)}: it may be stuck."
    if status == "queued":
        return f"A run has been waiting for a worker since {slack_date(at)}: is `connbot worker` running?"
    return f"The latest run {status} {slack_date(at)}."


def _buttons(a: AlertCard) -> list[dict[str, Any]]:
    card = pack(CardRef(a.connection_id, "settings" if not a.is_order_alert else "orders"))
    if not a.is_order_alert:
        elements = [
            button("Re-connect", Action.RECONNECT, card, style="primary"),
            button("Open details", Action.OPEN, card),
        ]
    else:
        order = pack(OrderRef(a.connection_id, a.order_id or 0))
        elements = [
            button("Run now", Action.ALERT_RUN_NOW, order, style="primary"),
            button("Open details", Action.OPEN, card),
        ]
        if a.kind != "silent":
            elements.append(
                button(
                    "Pause order",
                    Action.ALERT_PAUSE,
                    order,
                    confirm_dialog=confirm(
                        "Pause this order?",
                        "Its schedule stops until someone resumes it from its card, and this alert closes.",
                        "Pause",
                    ),
                )
            )
    elements.append(button("Escalate to CSM", Action.ESCALATE, card))
    ref = pack(AlertRef(a.id))
    if a.acknowledged_by:
        elements.append(button("Release", Action.ALERT_RELEASE, ref))
    else:
        elements.append(button("I'm on it", Action.ALERT_ACK, ref))
    return elements


def _at(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def acknowledged_text(user_id: str | None, at: datetime | None) -> str:
    return f":raising_hand: {user_mention(user_id)} is on it since {slack_date(at)}."


def released_text(user_id: str | None) -> str:
    return f"{user_mention(user_id)} released it: nobody is on it now."


def resolution_text(a: AlertCard) -> str:
    """How a closed alert ended, in its message and its thread: on-call must not read a deletion
    (or a pause) as a fix."""
    who, when = user_mention(a.resolved_by), slack_date(a.resolved_at)
    if a.resolution == "connection_deleted":
        return f":wastebasket: Closed: the connection was deleted by {who} at {when}; nothing was fixed."
    if a.resolution == "order_deleted":
        return f":wastebasket: Closed: the order was deleted by {who} at {when}; nothing was fixed."
    if a.resolution == "order_paused":
        return f":double_vertical_bar: Closed: {who} paused the order at {when}; it runs again once resumed."
    if a.resolution == "muted":
        return f":mute: Closed: {who} turned off too-few-rows alerts for this order at {when}."
    if not a.is_order_alert:
        return resolved_text(a.resolved_by, a.resolved_at)
    rows = a.details.get("resolved_rows", 0)
    run = "a run"
    if a.details.get("resolved_trigger") == "manual" and a.resolved_by:
        run = f"a run started by {user_mention(a.resolved_by)}"
    elif a.details.get("resolved_trigger") == "schedule":
        run = "a scheduled run"
    if a.kind == "silent":
        return f":white_check_mark: Resolved: {run} loaded {rows:,} rows at {when}."
    return f":white_check_mark: Resolved: {run} succeeded at {when} ({rows:,} rows)."


def resolved_text(user_id: str | None, at: datetime | None) -> str:
    return f":white_check_mark: Resolved by {user_mention(user_id, system='a successful check')} at {slack_date(at)}."


def alert_text(a: AlertCard) -> str:
    """The notification text: no user data beyond what `escape` makes inert."""
    if a.resolved_at is None:
        state = KIND_TITLE[a.kind].lower()
    elif a.resolution in (None, "fixed"):
        state = "resolved"
    else:
        state = "closed: " + {
            "connection_deleted": "connection deleted",
            "order_deleted": "order deleted",
            "order_paused": "order paused",
            "muted": "alerts turned off",
        }.get(a.resolution, a.resolution)
    if a.is_order_alert:
        return f"Order {escape(a.order_name or '')} of connection {a.connection_id}: {state}"
    return f"Connection {a.connection_id} ({escape(a.source_title)} · {escape(a.business_account_name)}): {state}"


def reminder_text(a: AlertCard) -> str:
    d = a.details
    if a.kind == "failing":
        text = f"Still failing since {slack_date(_at(d.get('since')) or a.since)}. *Run now* once the cause is fixed."
    elif a.kind == "stale":
        last = _at(d.get("last_success_at"))
        text = f"Still no successful run since {slack_date(last) if last else 'it was set up'}."
    elif a.kind == "silent":
        text = f"Still no run with its usual rows since {slack_date(a.since)}."
    else:
        text = f"Still broken since {slack_date(a.since)}. Re-connect fixes it."
    if a.acknowledged_by:
        text += f" {user_mention(a.acknowledged_by)} is on it since {slack_date(a.acknowledged_at)}."
    return text


def escalation_note(a: AlertCard) -> str:
    """The follow-up in the connection's CSM thread when an order alert opens, closes, or someone
    takes it; order names escaped (mrkdwn)."""
    order = f"Extraction order “{escape(a.order_name or '')}”"
    if a.resolved_at is not None:
        return f"{order}: {resolution_text(a)}"
    d = a.details
    if a.kind == "failing":
        origin = ORIGIN_TEXT.get(a.error_code or "platform", a.error_code)
        what = f"is failing: its last {d.get('failures', 0):,} runs failed ({origin})."
    elif a.kind == "stale":
        last = _at(d.get("last_success_at"))
        what = f"has had no successful run since {slack_date(last) if last else 'it was set up'}."
    else:
        what = f"loaded {d.get('rows', 0):,} rows; usually about {d.get('usual_rows', 0):,}."
    return f":red_circle: {order} {what}"


def taken_note(a: AlertCard, user_id: str | None, *, taken: bool) -> str:
    """The escalation thread's note when someone says "I'm on it" (or releases)."""
    what = (
        f"the alert about extraction order “{escape(a.order_name or '')}”"
        if a.is_order_alert
        else "the credentials alert"
    )
    if taken:
        return f":raising_hand: {user_mention(user_id)} is on {what}."
    return f"{user_mention(user_id)} released {what}: nobody is on it now."


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
