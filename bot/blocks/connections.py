"""The connected sources list and the connection details card."""

from __future__ import annotations

from typing import Any

from bot.blocks.common import (
    actions,
    button,
    confirm,
    context,
    divider,
    escape,
    fields_section,
    header,
    mrkdwn,
    option,
    overflow,
    plain,
    plural,
    section,
    slack_date,
    user_mention,
)
from bot.ids import Action, Callback, OrderAction, Tab
from bot.routing import CardRef, ListRef, OrderRef, pack
from operations.cards import (
    MAX_SEARCH,
    AccountsTab,
    Card,
    ConnectionList,
    ConnectionSummary,
    InQueue,
    OrdersTab,
    SettingsTab,
    StreamsSummary,
    Tombstone,
)
from storage.repositories import OpenAlert, Page, as_connection_id

STATUS_ICON = {"active": ":large_green_circle:", "error": ":red_circle:", "unknown": ":white_circle:"}
STATUS_WORD = {"active": "Active", "error": "Error", "unknown": "Not checked"}
ORDER_ICON = {
    "Active": ":large_green_circle:",
    "Paused": ":double_vertical_bar:",
    "Error": ":red_circle:",
    "Syncing": ":arrows_counterclockwise:",
    "Queued": ":hourglass_flowing_sand:",
    "Cannot run": ":warning:",
}
RUN_WORD = {"running": "running", "succeeded": "succeeded", "failed": "failed", "cancelled": "cancelled"}
# Run and sync history at a glance, oldest to newest.
STRIP = {"succeeded": "🟩", "failed": "🟥", "cancelled": "⬜", "running": "🟦", "queued": "🟦"}
ALERT_KINDS = ("credentials", "failing", "stale", "silent")
RETRIED = "retried after a worker stopped"
ACTIONS_TEXT = {
    "connection.create": "made the connection",
    "connection.reconnect": "re-connected",
    "connection.delete": "deleted the connection",
    "accounts.sync": "synced accounts",
    "order.create": "created an order",
    "order.run": "ran an order",
    "order.pause": "paused an order",
    "order.resume": "resumed an order",
    "order.delete": "deleted an order",
    "connection.alert_channel": "changed the alert channel",
    "connection.escalate": "escalated to the CSM",
    "order.silent_alerts": "changed an order's too-few-rows alerts",
    "alert.acknowledge": "took an alert (I'm on it)",
    "alert.release": "released an alert",
}


def strip(statuses) -> str:
    return "".join(STRIP.get(status, "⬜") for status in statuses)


def alerts_text(alerts: tuple[OpenAlert, ...]) -> str:
    """Which alerts are open, and whether someone is on them: "failing ×2 (<@U1> on it)"."""
    parts = []
    for kind in ALERT_KINDS:
        group = [a for a in alerts if a.kind == kind]
        if not group:
            continue
        owners = sorted({a.acknowledged_by for a in group if a.acknowledged_by})
        waiting = sum(1 for a in group if not a.acknowledged_by)
        if not owners:
            who = "nobody on it yet"
        else:
            who = ", ".join(user_mention(o) for o in owners) + " on it"
            if waiting:
                who += f", {waiting:,} not yet"
        parts.append(f"{kind}{f' ×{len(group):,}' if len(group) > 1 else ''} ({who})")
    return ":rotating_light: " + " · ".join(parts)


def credentials_text(c: ConnectionSummary) -> str:
    return f"{STATUS_ICON.get(c.credentials_status, '')} {STATUS_WORD.get(c.credentials_status, c.credentials_status)}"


# ---- list ------------------------------------------------------------------------------------


def connection_list(data: ConnectionList) -> list[dict[str, Any]]:
    title = "Connected sources" if not data.search else f"Connected sources matching “{data.search}”"
    blocks: list[dict[str, Any]] = [header(title)]
    if not data.items:
        if data.search:
            blocks.append(section(plain(f"No connection matches “{data.search}”.")))
            blocks.append(
                context(mrkdwn("Try part of a data source, business account or ID, or `/connections` for all."))
            )
        else:
            blocks.append(
                section(
                    mrkdwn(
                        "No connections yet. Use *Make a new connection* on the connbot App Home, or `/connections new`."
                    )
                )
            )
        return blocks
    blocks.append(
        context(
            mrkdwn(
                f"{plural(data.page.total, 'connection')} · open alerts first, then errors · "
                "`/connections &lt;id&gt;` opens one"
            )
        )
    )
    for c in data.items:
        blocks.append(divider())
        fields = [
            plain(f"Business account ID: {c.business_account_id or '—'}", 300),
            mrkdwn(f"*Credentials:* {credentials_text(c)}"),
            mrkdwn(f"*Accounts:* {c.account_status}"),
            mrkdwn(f"*Created:* {slack_date(c.created_at, '{date_short}')}"),
            mrkdwn(f"*Last authorization:* {slack_date(c.last_authorized_at, '{date_short}')}"),
            mrkdwn(f"*ID:* {c.id}"),
        ]
        if c.open_alerts:
            fields.append(mrkdwn(f"*Alerts:* {alerts_text(c.open_alerts)}"))
        urgent = not c.credentials_ok or bool(c.open_alerts)
        blocks.append(
            section(
                plain(f"{c.source_title} · {c.business_account_name}", 300),
                fields=fields,
                accessory=button("Open", Action.OPEN, pack(CardRef(c.id)), style="primary" if urgent else None),
            )
        )
    nav = _list_nav(data.page, data.search)
    if nav:
        blocks.append(nav)
    return blocks


def _list_nav(page: Page, search: str | None) -> dict[str, Any] | None:
    search = search[:MAX_SEARCH] if search else None
    elements = []
    if page.has_previous:
        elements.append(button("Previous", f"{Action.LIST_PAGE}.prev", pack(ListRef(page.offset - page.limit, search))))
    if page.has_next:
        elements.append(button("Next", f"{Action.LIST_PAGE}.next", pack(ListRef(page.offset + page.limit, search))))
    if not elements:
        return None
    return actions(*elements, block_id=f"nav:{page.offset}")


# ---- card ------------------------------------------------------------------------------------


def connection_card(card: Card) -> list[dict[str, Any]]:
    c = card.connection
    blocks: list[dict[str, Any]] = [header(f"{c.source_title} · {c.business_account_name}")]
    extract = None
    if card.extract_blocker is None:
        extract = button("Extract", Action.EXTRACT, pack(CardRef(c.id, card.tab)), style="primary")
    blocks.append(
        fields_section(
            [
                plain(f"Data source: {c.source_title}", 300),
                mrkdwn(f"*Credentials status:* {credentials_text(c)}"),
                plain(f"Business account: {c.business_account_name}", 300),
                mrkdwn(f"*Active accounts:* {c.accounts.active:,} active of {c.accounts.total:,}"),
                plain(f"Business account ID: {c.business_account_id or '—'}", 300),
                mrkdwn(f"*Last authorization:* {slack_date(c.last_authorized_at)}"),
            ],
            accessory=extract,
        )
    )
    if c.credentials_status == "error":
        # The fix, where the problem is shown: someone woken at 3 a.m. should not hunt for it.
        blocks.append(
            section(
                plain(f"Credentials error: {c.error_message or 'unknown reason'}", 1000),
                accessory=button("Re-connect", Action.RECONNECT, pack(CardRef(c.id, card.tab)), style="primary"),
            )
        )
        blocks.append(
            context(
                plain(f"Code: {c.error_code or '—'}", 200),
                mrkdwn(f"since {slack_date(c.error_since)} · checked {slack_date(c.checked_at)}"),
            )
        )
    if c.source_missing:
        blocks.append(section(plain(f"⚠️ {c.source_missing}", 1000)))
    if card.extract_blocker:
        blocks.append(context(mrkdwn(f":no_entry_sign: Extract is unavailable: {card.extract_blocker}")))
    blocks.append(_tabs(c.id, card.tab))
    blocks.append(divider())
    if isinstance(card.content, OrdersTab):
        blocks += _orders(c, card.content)
    elif isinstance(card.content, AccountsTab):
        blocks += _accounts(c, card.content)
    elif isinstance(card.content, SettingsTab):
        blocks += _settings(c, card.content)
    blocks.append(context(mrkdwn(f"Connection {c.id} · `/connections {c.id}` opens this card")))
    return blocks


def _tabs(connection_id: int, selected: str) -> dict[str, Any]:
    elements = [
        button(
            tab.heading,
            f"{Action.TAB}.{tab.value}",
            pack(CardRef(connection_id, tab.value)),
            style="primary" if tab.value == selected else None,
        )
        for tab in Tab
    ]
    elements.append(button("Share in channel", Action.SHARE, pack(CardRef(connection_id, selected))))
    return actions(*elements, block_id="tabs")


def _pager(connection_id: int, tab: str, page: Page) -> dict[str, Any] | None:
    index = page.offset // page.limit
    elements = []
    if page.has_previous:
        elements.append(button("Previous", f"{Action.TAB}.prev", pack(CardRef(connection_id, tab, index - 1))))
    if page.has_next:
        elements.append(button("Next", f"{Action.TAB}.next", pack(CardRef(connection_id, tab, index + 1))))
    if not elements:
        return None
    return actions(*elements, block_id=f"pager:{tab}:{index}")


def _orders(c: ConnectionSummary, tab: OrdersTab) -> list[dict[str, Any]]:
    if not tab.orders:
        hint = (
            "Click *Extract* above to set one up."
            if c.credentials_ok and c.accounts.active
            else "Once Extract is available, click it to set one up."
        )
        return [section(mrkdwn(f"*No extraction orders yet.* {hint}"))]
    blocks = [
        context(
            mrkdwn(
                f"*Extraction orders* · {plural(tab.page.total, 'order')} · page {tab.page.number} of {tab.page.count}"
            )
        )
    ]
    for order in tab.orders:
        blocks.append(
            section(
                plain(f"{order.name}", 500),
                accessory=overflow(
                    Action.ORDER_MENU,
                    _order_options(
                        c.id, order.id, order.status, order.silent_alerts, tab.page.offset // tab.page.limit
                    ),
                ),
            )
        )
        run = order.last_run
        last = "no run yet"
        if run is not None and run.status == "queued":
            last = f"queued {slack_date(run.at)} · {_place(run.queue)}"
        elif run is not None and run.status == "running":
            last = f"running since {slack_date(run.at)} · {run.rows:,} rows so far"
        elif run is not None:
            last = f"last run {slack_date(run.at)} · {run.rows:,} rows · {RUN_WORD.get(run.status, run.status)}"
        if run is not None and run.retried:
            last += f" · {RETRIED}"
        next_run = f"next {slack_date(order.next_run_at)}" if order.next_run_at else "no next run"
        glance = [
            mrkdwn(f"{ORDER_ICON.get(order.status, '')} *{order.status}*"),
            plain(f"{order.template_title} · {plural(order.accounts, 'account')} · {order.schedule}", 300),
            mrkdwn(f"{last} · {next_run}"),
        ]
        if order.recent_runs:
            glance.append(mrkdwn(f"last {plural(len(order.recent_runs), 'run')} {strip(order.recent_runs)}"))
        if order.usual_rows is not None and run is not None:
            glance.append(mrkdwn(f":warning: {run.rows:,} rows, usually ~{order.usual_rows:,}"))
        blocks.append(context(*glance))
        if order.usable_accounts is not None and order.usable_accounts < order.accounts:
            blocks.append(context(mrkdwn(_accounts_gone(order.accounts, order.usable_accounts))))
        if run is not None and run.status == "failed" and run.error:
            blocks.append(context(plain(f"Last error: {run.error}", 500)))
        if run is not None and run.queue is not None and run.queue.no_worker_minutes is not None:
            blocks.append(context(mrkdwn(no_worker_text(run.queue.no_worker_minutes))))
    pager = _pager(c.id, "orders", tab.page)
    if pager:
        blocks.append(pager)
    return blocks


def _place(queue: InQueue | None) -> str:
    if queue is None:  # a worker took it since the card was read
        return "starting"
    return "next in line" if queue.ahead == 0 else f"{queue.ahead:,} ahead"


def no_worker_text(minutes: int) -> str:
    return f":warning: No worker has picked this up for {minutes:,} minutes: is `connbot worker` running?"


def _accounts_gone(accounts: int, usable: int) -> str:
    if usable == 0:
        return (
            ":warning: None of its accounts is active any more, so its runs fail: Re-connect with credentials "
            "that see them, or delete it and set up a new order with Extract."
        )
    verb = "is" if usable == 1 else "are"
    return f":warning: {usable:,} of its {plural(accounts, 'account')} {verb} still active; runs skip the others."


def _order_options(
    connection_id: int, order_id: int, status: str, silent_alerts: bool, page: int
) -> list[dict[str, Any]]:
    def ref(action: OrderAction) -> str:
        return pack(OrderRef(connection_id, order_id, action.value, page))

    options = [] if status == "Cannot run" else [option("Run now", ref(OrderAction.RUN_NOW))]  # it would only fail
    if status == "Paused":
        options.append(option("Resume", ref(OrderAction.RESUME)))
    else:
        options.append(option("Pause", ref(OrderAction.PAUSE)))
    options.append(option("Run history", ref(OrderAction.HISTORY)))
    if silent_alerts:
        options.append(option("Turn off too-few-rows alerts", ref(OrderAction.SILENT_OFF)))
    else:
        options.append(option("Turn on too-few-rows alerts", ref(OrderAction.SILENT_ON)))
    options.append(option("Delete order…", ref(OrderAction.DELETE)))  # at most 5 options in a menu
    return options


def _accounts(c: ConnectionSummary, tab: AccountsTab) -> list[dict[str, Any]]:
    sync_button = None
    if tab.running_sync is None:
        # The page rides along so the refreshed tab stays where the user was.
        sync_button = button(
            "Sync accounts", Action.SYNC_ACCOUNTS, pack(CardRef(c.id, "accounts", tab.page.offset // tab.page.limit))
        )
    blocks = [
        section(
            mrkdwn(
                f"*Accounts* · {c.accounts.active:,} active of {c.accounts.total:,} · page {tab.page.number} of {tab.page.count}"
            ),
            accessory=sync_button,
        )
    ]
    running = tab.running_sync
    if running is not None and running.status == "queued":
        who = user_mention(running.triggered_by, system="the daily schedule")
        blocks.append(
            context(
                mrkdwn(
                    f":hourglass_flowing_sand: Sync queued · {_place(running.queue)} · requested by {who} {slack_date(running.started_at)}"
                )
            )
        )
        if running.queue is not None and running.queue.no_worker_minutes is not None:
            blocks.append(context(mrkdwn(no_worker_text(running.queue.no_worker_minutes))))
    elif running is not None:
        progress = sync_progress_text(running.accounts_read, running.triggered_by, running.started_at)
        retried = f" · {RETRIED}" if running.retried else ""
        blocks.append(context(mrkdwn(f":arrows_counterclockwise: {progress}{retried}")))
    sync_glance = [mrkdwn(_last_sync_text(tab)), mrkdwn("The list of accounts is updated daily.")]
    if tab.recent_syncs:
        sync_glance.append(mrkdwn(f"last {plural(len(tab.recent_syncs), 'sync')} {strip(tab.recent_syncs)}"))
    blocks.append(context(*sync_glance))
    if tab.streams is not None:
        blocks.append(context(mrkdwn(_streams_text(tab.streams))))
    failed = tab.last_sync if tab.last_sync is not None and tab.last_sync.status == "failed" else None
    if failed is not None:
        blocks.append(context(plain(f"Why: {failed.error or 'unknown reason'}", 500), mrkdwn(_after_failed_sync(c))))
    if not tab.accounts:
        blocks.append(section(mrkdwn("No accounts yet. *Sync accounts* reads them from the data source.")))
    for account in tab.accounts:
        state = "Active" if account.active else f"Inactive ({account.status.lower()})"
        blocks.append(
            section(
                plain(f"{account.name}", 500),
                fields=[
                    plain(f"ID: {account.external_id}", 300),
                    plain(f"{state}{'' if account.enabled else ' · not enabled for extraction'}", 300),
                    plain(f"{account.currency or '—'} · {account.timezone or '—'}", 300),
                    mrkdwn(f"Added {slack_date(account.added_at, '{date_short}')}"),
                ],
            )
        )
    pager = _pager(c.id, "accounts", tab.page)
    if pager:
        blocks.append(pager)
    return blocks


def _streams_text(streams: StreamsSummary) -> str:
    """The templates of a connector: the streams its last discovery found."""
    if streams.discovered_at is None:
        return "*Streams:* not discovered yet. *Sync accounts* reads them from the data source."
    return (
        f"*Streams:* {plural(streams.streams, 'stream')} (the extraction templates), "
        f"discovered {slack_date(streams.discovered_at)} by the last account sync."
    )


def sync_progress_text(read: int, by: str | None, started_at) -> str:
    who = user_mention(by, system="the daily schedule")
    return f"Syncing accounts… {read:,} read · started by {who} {slack_date(started_at)}"


def _last_sync_text(tab: AccountsTab) -> str:
    s = tab.last_sync
    next_text = f"Next daily sync {slack_date(tab.next_sync_at)}."
    if s is None:
        return f"Never synced. {next_text}"
    who = "daily schedule" if s.trigger == "schedule" else user_mention(s.triggered_by)
    took = ""
    if s.finished_at:
        took = f" in {max(0, int((s.finished_at - s.started_at).total_seconds())):,}s"
    if s.status == "failed":
        return f"Last sync {slack_date(s.started_at)} by {who} failed. {next_text}"
    return (
        f"Last sync {slack_date(s.started_at)} by {who}{took}: "
        f"+{s.added:,} added, −{s.removed:,} removed, {s.changed:,} changed. {next_text}"
    )


def _after_failed_sync(c: ConnectionSummary) -> str:
    """What to do after a failed sync: credentials the source refused need new ones first."""
    if c.credentials_status == "error":
        return "To fix it: *Re-connect* with working credentials (button above), then *Sync accounts* again."
    return "Try *Sync accounts* again. If the reason is about credentials, *Re-connect* in the Settings tab; otherwise *Escalate to CSM* there."


def _settings(c: ConnectionSummary, tab: SettingsTab) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [
        section(mrkdwn("*Settings* · what is used to pull data from your account into the warehouse")),
        fields_section(
            [
                mrkdwn(f"*Auth type:* {tab.auth_type.replace('_', ' ')}"),
                plain(f"Business account: {c.business_account_name}", 300),
                plain(f"Business account ID: {c.business_account_id or '—'}", 300),
                mrkdwn(
                    f"*Account sync:* {'Sync all accounts' if tab.account_sync_mode == 'all' else 'Selected accounts only'}"
                ),
                mrkdwn(f"*Connected by:* {user_mention(c.created_by)} {slack_date(c.created_at)}"),
                mrkdwn(
                    f"*Last authorization:* {slack_date(c.last_authorized_at)} by {user_mention(tab.last_authorized_by)}"
                ),
                mrkdwn(f"*Credentials status:* {credentials_text(c)} · checked {slack_date(c.checked_at)}"),
                mrkdwn(f"*Alert channel:* {f'<#{tab.alert_channel}>' if tab.alert_channel else 'default'}"),
            ]
        ),
    ]
    if tab.credentials_hint:
        blocks.append(
            context(plain("In use: " + ", ".join(f"{label} {value}" for label, value in tab.credentials_hint), 1000))
        )
    blocks.append(
        actions(
            button("Re-connect", Action.RECONNECT, pack(CardRef(c.id, "settings"))),
            button(
                "Delete connection",
                Action.DELETE,
                pack(CardRef(c.id, "settings")),
                style="danger",
                confirm_dialog=confirm(
                    "Delete this connection?",
                    "Deleting a connection stops extracting data for it immediately. It removes our reference to the "
                    "connection but does not affect the data already in the warehouse. You cannot undo this.",
                    "Delete",
                    danger=True,
                ),
            ),
            button("Escalate to CSM", Action.ESCALATE, pack(CardRef(c.id, "settings"))),
            block_id="settings_actions",
        )
    )
    channel_select = {
        "type": "conversations_select",
        "action_id": Action.ALERT_CHANNEL,
        "placeholder": plain("Alert channel (default)"),
        "filter": {"include": ["public", "private"], "exclude_bot_users": True},
    }
    if tab.alert_channel:
        channel_select["initial_conversation"] = tab.alert_channel
    blocks.append(actions(channel_select, block_id=f"{ALERT_CHANNEL_BLOCK_PREFIX}{c.id}"))
    if tab.audit:
        lines = [
            f"{slack_date(e.at, '{date_short} {time}')} {user_mention(e.user_id)} "
            f"{ACTIONS_TEXT.get(e.action, escape(e.action))}{'' if e.outcome == 'ok' else f' ({e.outcome})'}"
            for e in tab.audit
        ]
        blocks.append(context(mrkdwn("*Recent activity*\n" + "\n".join(lines))))
    return blocks


# The alert-channel select carries no value: its block id names the connection.
ALERT_CHANNEL_BLOCK_PREFIX = "alert_channel:"


def alert_channel_target(block_id: str) -> int | None:
    """The connection an alert-channel select is for, from its block id; None for any other block."""
    if not block_id.startswith(ALERT_CHANNEL_BLOCK_PREFIX):
        return None
    return as_connection_id(block_id.removeprefix(ALERT_CHANNEL_BLOCK_PREFIX))


SHARE_CHANNEL_BLOCK = "share_channel"
VALUE = "value"  # the action_id of an input's element


def share_channel_picker(metadata: str, card_title: str, problem: str | None = None) -> dict[str, Any]:
    """Share in channel pressed in a direct message, where there is no one to share with: pick a
    channel. `problem`: why the last choice could not be shared (our text, mrkdwn)."""
    blocks: list[dict[str, Any]] = [
        section(plain(f"{card_title}: this card is in a direct message, with no one to share it with.", 2000)),
    ]
    if problem:
        blocks.append(section(mrkdwn(f"⚠️ {problem}")))
    blocks.append(
        {
            "type": "input",
            "block_id": SHARE_CHANNEL_BLOCK,
            "label": plain("Share it in"),
            "element": {
                "type": "conversations_select",
                "action_id": VALUE,
                "placeholder": plain("Choose a channel"),
                # Channels only: the conversation it was opened from is this direct message.
                "filter": {"include": ["public", "private"], "exclude_bot_users": True},
            },
        }
    )
    blocks.append(context(mrkdwn("connbot joins a public channel to post there; a private one must invite it first.")))
    return {
        "type": "modal",
        "callback_id": Callback.SHARE,
        "title": plain("Share in channel", 24),
        "submit": plain("Share", 24),
        "close": plain("Cancel", 24),
        "private_metadata": metadata,
        "blocks": blocks,
    }


def tombstone(t: Tombstone) -> list[dict[str, Any]]:
    return [
        section(plain(f"🗑 {t.title} was deleted.", 500)),
        context(
            mrkdwn(
                f"Deleted by {user_mention(t.deleted_by)} {slack_date(t.deleted_at)}. Its warehouse data is untouched."
            )
        ),
    ]


def tombstone_text(t: Tombstone) -> str:
    """The tombstone in one mrkdwn sentence, for answers that are not cards (a modal, an alert)."""
    return (
        f"🗑 Connection {t.id}, {escape(t.title)}, was deleted by {user_mention(t.deleted_by)} {slack_date(t.deleted_at)}. "
        "Type `/connections` to see the list."
    )


def card_fallback(card: Card | Tombstone) -> str:
    """Notification text: no user data beyond what `escape` makes inert."""
    if isinstance(card, Tombstone):
        return f"Connection {card.id} was deleted"
    return f"Connection {card.connection.id}: {escape(card.connection.source_title)} · {escape(card.connection.business_account_name)}"


def help_message() -> list[dict[str, Any]]:
    return [
        header("connbot: your data-source connections"),
        section(
            mrkdwn(
                "`/connections` lists the connected sources (open alerts first, then errors)\n"
                "`/connections &lt;text&gt;` searches data source, title, business account and ID\n"
                "`/connections &lt;id&gt;` opens a connection's details\n"
                "`/connections new` makes a new connection (admins)\n"
                "`/connections help` shows this help"
            )
        ),
        context(mrkdwn("In a thread, `@connbot status &lt;id&gt;` replies with the connection's card.")),
    ]


def text_message(text: str) -> list[dict[str, Any]]:
    """A short notice of ours (no user data)."""
    return [section(mrkdwn(text))]
