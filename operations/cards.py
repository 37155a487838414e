"""Read models for the connected sources list and the connection details card.

Plain frozen dataclasses: the block builders render them without touching the database.
Every query is paged in SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeAlias

from sqlalchemy import func, select
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from core.errors import NotFound
from engine.catalogs import catalog_summary, is_catalog_source
from engine.context import Context
from engine.executor import Waiting
from engine.schedules import account_sync_trigger, describe, next_fire, order_trigger
from operations.auth import Actor
from operations.order_health import too_few_rows, usual_rows
from sources.config import config_spec, field_title, pointer_path
from sources.registry import UnknownSource
from storage.models import (
    UNFINISHED,
    AccountSyncRun,
    Connection,
    CredentialsStatus,
    ExtractionRun,
    OrderStatus,
    RunStatus,
)
from storage.repositories import (
    AccountCounts,
    Accounts,
    Audit,
    Connections,
    OpenAlert,
    Orders,
    Page,
    RecentSyncs,
    SyncRuns,
    account_counts_for,
    open_alerts_for,
)

LIST_PAGE_SIZE = 10
ACCOUNTS_PAGE_SIZE = 15
ORDERS_PAGE_SIZE = 8
AUDIT_SHOWN = 5
MAX_SEARCH = 200
RUN_STRIP = 14  # an order's last runs, at a glance on the Orders tab
HISTORY_RUNS = 30  # the Run history modal lists this many, paged
HISTORY_PAGE_SIZE = 10

TABS = ("orders", "accounts", "settings")
# A plain row of a statement that reads what a card shows (storage.repositories): columns by name.
ShownRow: TypeAlias = Row[*tuple[Any, ...]]
# A queued run or sync that waited this long while no worker was alive says so.
NO_WORKER_AFTER = timedelta(minutes=10)


@dataclass(frozen=True)
class ConnectionSummary:
    id: int
    source: str
    source_title: str
    title: str
    business_account_name: str
    business_account_id: str
    credentials_ok: bool
    credentials_status: str  # active | error | unknown
    error_code: str | None
    error_message: str | None
    checked_at: datetime | None
    error_since: datetime | None
    account_status: str  # "Loading accounts", "No accounts", "N accounts", "N active of M", "Error"
    accounts: AccountCounts
    created_at: datetime
    created_by: str
    last_authorized_at: datetime | None
    # Why its data source cannot be used (a removed connector) and how to bring it back; None: it can.
    source_missing: str | None = None
    open_alerts: tuple[OpenAlert, ...] = ()  # filled for lists


@dataclass(frozen=True)
class ConnectionList:
    items: tuple[ConnectionSummary, ...]
    page: Page
    search: str | None


@dataclass(frozen=True)
class InQueue:
    """A queued run or sync (queue execution): its place, and whether it waits for no worker."""

    ahead: int  # jobs a worker takes before it
    no_worker_minutes: int | None = None  # set once it waited NO_WORKER_AFTER with no worker alive


@dataclass(frozen=True)
class RunSummary:
    at: datetime  # when it started (while queued: when it was queued)
    finished_at: datetime | None
    rows: int
    status: str  # queued | running | succeeded | failed | cancelled
    error: str | None
    queue: InQueue | None = None  # while queued
    retried: bool = False  # started again after the worker carrying it out stopped


@dataclass(frozen=True)
class OrderRow:
    id: int
    name: str
    template_title: str
    accounts: int
    schedule: str
    status: str  # Active | Paused | Error | Syncing | Queued | Cannot run
    last_run: RunSummary | None
    next_run_at: datetime | None
    usable_accounts: int | None = None  # of `accounts`, still active and enabled; None: all of them
    recent_runs: tuple[str, ...] = ()  # statuses of its last RUN_STRIP runs, oldest first
    usual_rows: int | None = None  # what it usually loads, when its last run loaded far fewer
    silent_alerts: bool = True  # "too few rows" alerts on


@dataclass(frozen=True)
class OrdersTab:
    orders: tuple[OrderRow, ...]
    page: Page


@dataclass(frozen=True)
class AccountRow:
    id: int
    external_id: str
    name: str
    active: bool
    status: str
    currency: str
    timezone: str
    added_at: datetime
    enabled: bool


@dataclass(frozen=True)
class SyncSummary:
    started_at: datetime
    finished_at: datetime | None
    trigger: str
    triggered_by: str | None
    status: str
    accounts_read: int
    added: int
    removed: int
    changed: int
    error: str | None
    queue: InQueue | None = None  # while queued
    retried: bool = False  # started again after the worker carrying it out stopped


@dataclass(frozen=True)
class StreamsSummary:
    """A connection whose templates are the streams its connector discovers (Airbyte)."""

    streams: int  # found by the last discovery; 0 before the first
    discovered_at: datetime | None


@dataclass(frozen=True)
class AccountsTab:
    accounts: tuple[AccountRow, ...]
    page: Page
    last_sync: SyncSummary | None
    running_sync: SyncSummary | None
    next_sync_at: datetime | None
    streams: StreamsSummary | None = None  # None: a source with fixed templates
    recent_syncs: tuple[str, ...] = ()  # statuses of the last syncs, oldest first


@dataclass(frozen=True)
class AuditRow:
    at: datetime
    user_id: str | None
    action: str
    outcome: str


@dataclass(frozen=True)
class SettingsTab:
    auth_type: str
    account_sync_mode: str
    credentials_hint: tuple[tuple[str, str], ...]  # (label, masked value)
    last_authorized_by: str | None
    alert_channel: str | None
    audit: tuple[AuditRow, ...]


@dataclass(frozen=True)
class Card:
    connection: ConnectionSummary
    extract_blocker: str | None  # why Extract is unavailable, or None
    tab: str
    content: OrdersTab | AccountsTab | SettingsTab


@dataclass(frozen=True)
class HistoryRun:
    started_at: datetime
    finished_at: datetime | None
    trigger: str  # created | schedule | manual
    triggered_by: str | None
    rows: int
    status: str
    error: str | None


@dataclass(frozen=True)
class RunHistory:
    """The Run history modal: an order's last HISTORY_RUNS runs, a page at a time."""

    connection_id: int
    order_id: int
    order_name: str
    runs: tuple[HistoryRun, ...]
    page: Page


@dataclass(frozen=True)
class Tombstone:
    id: int
    title: str
    deleted_by: str | None
    deleted_at: datetime


def source_title(ctx: Context, name: str) -> str:
    return _source_state(ctx, name)[0]


def _source_state(ctx: Context, name: str) -> tuple[str, str | None]:
    """(title, why it cannot be used): a removed connector says how to add it back."""
    try:
        return ctx.source(name).title, None
    except UnknownSource as missing:
        return name, str(missing)


def _account_status(counts: AccountCounts, sync: AccountSyncRun | ShownRow | None) -> str:
    if sync is None or (sync.status in UNFINISHED and counts.total == 0):
        return "Loading accounts"
    if sync.status == RunStatus.FAILED and counts.total == 0:
        return "Error"
    if counts.total == 0:
        return "No accounts"
    if counts.active != counts.total:  # as the card's header counts them
        return f"{counts.active:,} active of {counts.total:,}"
    return f"{counts.total:,} account{'s' if counts.total != 1 else ''}"


def _summary(
    ctx: Context,
    c: Connection | ShownRow,
    counts: AccountCounts,
    sync: AccountSyncRun | ShownRow | None,
    alerts: tuple[OpenAlert, ...] = (),
) -> ConnectionSummary:
    title, missing = _source_state(ctx, c.source)
    return ConnectionSummary(
        id=c.id,
        source=c.source,
        source_title=title,
        title=c.title,
        business_account_name=c.business_account_name,
        business_account_id=c.business_account_id,
        credentials_ok=c.credentials_status == CredentialsStatus.ACTIVE,
        credentials_status=c.credentials_status,
        error_code=c.credentials_error_code,
        error_message=c.credentials_error_message,
        checked_at=c.credentials_checked_at,
        error_since=c.credentials_error_since,
        account_status=_account_status(counts, sync),
        accounts=counts,
        created_at=c.created_at,
        created_by=c.created_by,
        last_authorized_at=c.last_authorized_at,
        source_missing=missing,
        open_alerts=alerts,
    )


def clean_search(text: str | None) -> str | None:
    text = " ".join((text or "").split())[:MAX_SEARCH]
    return text or None


def connection_list(ctx: Context, actor: Actor, *, offset: int = 0, search: str | None = None) -> ConnectionList:
    search = clean_search(search)
    with ctx.db.read() as session:
        repo = Connections(session, actor.team_id)
        total = repo.count(search)
        offset = _clamp_offset(offset, total, LIST_PAGE_SIZE)
        rows = repo.list(offset=offset, limit=LIST_PAGE_SIZE, search=search)
        ids = [c.id for c in rows]
        counts = account_counts_for(session, ids)
        syncs = SyncRuns(session).latest_for(ids)
        alerts = open_alerts_for(session, ids)
        items = tuple(_summary(ctx, c, counts[c.id], syncs.get(c.id), alerts[c.id]) for c in rows)
    return ConnectionList(items, Page(offset, LIST_PAGE_SIZE, total), search)


def _clamp_offset(offset: int, total: int, size: int) -> int:
    """A page beyond the end (the list shrank) shows the last page instead."""
    if offset < 0:
        return 0
    if offset >= total:
        return max(0, (total - 1) // size * size)
    return offset - offset % size


def extract_blocker(summary: ConnectionSummary) -> str | None:
    """The seed: Extract only for an active connection with at least one active account."""
    if summary.source_missing:
        return "its connector is not installed"
    if not summary.credentials_ok:
        return (
            "credentials error"
            if summary.credentials_status == CredentialsStatus.ERROR
            else "credentials not checked yet"
        )
    if summary.accounts.active == 0:
        return "no active accounts"
    return None


def connection_summary(ctx: Context, actor: Actor, connection_id: int) -> ConnectionSummary:
    """The header alone (no tab): for checks such as whether Extract is available."""
    with ctx.db.read() as session:
        return read_summary(ctx, session, actor, connection_id)


def read_summary(ctx: Context, session: Session, actor: Actor, connection_id: int) -> ConnectionSummary:
    """`connection_summary` within the caller's unit of work."""
    connection = Connections(session, actor.team_id).shown(connection_id)
    return _summary(ctx, connection, _counts(connection), SyncRuns(session).recent(connection.id).latest)


def _counts(connection: ShownRow) -> AccountCounts:
    """As of the last account sync, which keeps them on the connection's row (`AccountCounts.of`)."""
    return AccountCounts(connection.accounts_total, connection.accounts_active)


def load_card(ctx: Context, actor: Actor, connection_id: int, tab: str = "orders", page: int = 0) -> Card | Tombstone:
    tab = tab if tab in TABS else "orders"
    with ctx.db.read() as session:
        connection = Connections(session, actor.team_id).shown(connection_id, include_deleted=True)
        if (gone := _tombstone(connection)) is not None:
            return gone
        syncs = SyncRuns(session).recent(connection.id)
        summary = _summary(ctx, connection, _counts(connection), syncs.latest)
        content: OrdersTab | AccountsTab | SettingsTab
        if tab == "orders":
            content = _orders_tab(ctx, session, actor, connection, page)
        elif tab == "accounts":
            content = _accounts_tab(ctx, session, connection, syncs, page)
        else:
            content = _settings_tab(ctx, session, actor, connection)
    return Card(summary, extract_blocker(summary), tab, content)


def deleted_connection(ctx: Context, actor: Actor, connection_id: int) -> Tombstone | None:
    """The tombstone of the team's connection if it was deleted; None while it lives, and for an
    id that never was the team's (its callers then answer "not found" as usual)."""
    with ctx.db.read() as session:
        try:
            return _tombstone(Connections(session, actor.team_id).shown(connection_id, include_deleted=True))
        except NotFound:
            return None


def _tombstone(connection: ShownRow) -> Tombstone | None:
    if connection.deleted_at is None:
        return None
    return Tombstone(connection.id, connection.title, connection.deleted_by, connection.deleted_at)


def _orders_tab(ctx: Context, session: Session, actor: Actor, connection: ShownRow, page: int) -> OrdersTab:
    repo = Orders(session, actor.team_id)
    offset = max(0, page) * ORDERS_PAGE_SIZE
    orders = repo.shown(connection.id, offset=offset, limit=ORDERS_PAGE_SIZE)
    total = orders[0].total if orders else repo.count(connection.id)
    if not orders and offset:  # the list shrank below this page: show its last page
        offset = _clamp_offset(offset, total, ORDERS_PAGE_SIZE)
        orders = repo.shown(connection.id, offset=offset, limit=ORDERS_PAGE_SIZE) if total else ()
    now = ctx.clock.now()
    queued = _waiting(ctx, session, [o.run_job_id for o in orders if o.run_status == RunStatus.QUEUED])
    recent = repo.recent_runs([o.id for o in orders], RUN_STRIP)
    rows = tuple(_order_row(ctx, connection, o, now, queued, recent[o.id]) for o in orders)
    return OrdersTab(rows, Page(offset, ORDERS_PAGE_SIZE, total))


def _waiting(ctx: Context, session: Session, job_ids: list[int | None]) -> dict[int, Waiting]:
    ids = [job_id for job_id in job_ids if job_id is not None]
    return ctx.executor.waiting(session, ids) if ids else {}


def _in_queue(waiting: Waiting | None, queued_at: datetime, now: datetime) -> InQueue | None:
    if waiting is None:  # taken by a worker since the row was read
        return None
    waited = now - queued_at
    alone = not waiting.workers_alive and waited >= NO_WORKER_AFTER
    return InQueue(waiting.ahead, int(waited.total_seconds() // 60) if alone else None)


def _template_title(ctx: Context, source: str, template: str) -> str:
    try:
        for t in ctx.source(source).templates():
            if t.name == template:
                return t.title
    except UnknownSource:
        pass
    return template


def order_status(order: ShownRow) -> str:
    """Of a row of `Orders.shown`."""
    if order.run_status == RunStatus.RUNNING:
        return "Syncing"
    if order.run_status == RunStatus.QUEUED:
        return "Queued"
    status = {OrderStatus.PAUSED: "Paused", OrderStatus.ERROR: "Error"}.get(order.status, "Active")
    if status == "Active" and order.accounts and not order.usable_accounts:
        return "Cannot run"  # a sync took all its accounts away: not to be shown as healthy
    return status


def _usual_when_far_fewer(recent: list[ShownRow]) -> int | None:
    """What the order usually loads, when its last run (a success) loaded far fewer rows: the rule
    of the "too few rows" alert, over the runs the strip shows."""
    if not recent or recent[0].status != RunStatus.SUCCEEDED:
        return None
    previous = [r.rows for r in recent[1:] if r.status == RunStatus.SUCCEEDED and r.trigger != "created"]
    usual = usual_rows(previous)
    return usual if too_few_rows(recent[0].rows, usual) else None


def _order_row(
    ctx: Context,
    connection: ShownRow,
    order: ShownRow,
    now: datetime,
    queued: dict[int, Waiting],
    recent: list[ShownRow],
) -> OrderRow:
    next_run = None
    if order.status != OrderStatus.PAUSED:
        next_run = next_fire(order_trigger(order.schedule, order.timezone), now)
    return OrderRow(
        id=order.id,
        name=order.name,
        template_title=_template_title(ctx, connection.source, order.template),
        accounts=order.accounts,
        schedule=describe(order.schedule, order.timezone),
        status=order_status(order),
        last_run=(
            RunSummary(
                order.run_started_at,
                order.run_finished_at,
                order.run_rows,
                order.run_status,
                order.run_error,
                queue=(
                    _in_queue(queued.get(order.run_job_id), order.run_started_at, now)
                    if order.run_status == RunStatus.QUEUED
                    else None
                ),
                retried=(order.run_attempts or 0) > 1,
            )
            if order.run_status is not None
            else None
        ),
        next_run_at=next_run,
        usable_accounts=order.usable_accounts,
        recent_runs=tuple(r.status for r in reversed(recent)),
        usual_rows=_usual_when_far_fewer(recent),
        silent_alerts=order.silent_alerts,
    )


def _sync_summary(run: ShownRow | None, queue: InQueue | None = None) -> SyncSummary | None:
    if run is None:
        return None
    return SyncSummary(
        run.started_at,
        run.finished_at,
        run.trigger,
        run.triggered_by,
        run.status,
        run.accounts_read,
        run.added,
        run.removed,
        run.changed,
        run.error,
        queue=queue,
        retried=run.attempts > 1,
    )


def _accounts_tab(ctx: Context, session: Session, connection: ShownRow, syncs: RecentSyncs, page: int) -> AccountsTab:
    repo = Accounts(session, connection.id)
    total = connection.accounts_total
    offset = _clamp_offset(page * ACCOUNTS_PAGE_SIZE, total, ACCOUNTS_PAGE_SIZE)
    accounts = tuple(
        AccountRow(a.id, a.external_id, a.name, a.active, a.status, a.currency, a.timezone, a.added_at, a.enabled)
        for a in repo.page(offset=offset, limit=ACCOUNTS_PAGE_SIZE)
    )
    trigger = account_sync_trigger(connection.id, ctx.settings.sync_at, ctx.settings.timezone)
    now = ctx.clock.now()
    running, queue = syncs.running, None
    if running is not None and running.status == RunStatus.QUEUED:
        queue = _in_queue(_waiting(ctx, session, [running.job_id]).get(running.job_id), running.started_at, now)
    return AccountsTab(
        accounts=accounts,
        page=Page(offset, ACCOUNTS_PAGE_SIZE, total),
        last_sync=_sync_summary(syncs.finished),
        running_sync=_sync_summary(running, queue),
        next_sync_at=next_fire(trigger, now),
        streams=_streams(ctx, session, connection),
        recent_syncs=tuple(run.status for run in reversed(syncs.recent)),
    )


def _streams(ctx: Context, session: Session, connection: ShownRow) -> StreamsSummary | None:
    try:
        if not is_catalog_source(ctx.source(connection.source)):
            return None
    except UnknownSource:  # the card says the source is missing
        return None
    found = catalog_summary(session, connection.id)
    return StreamsSummary(found.streams, found.discovered_at) if found else StreamsSummary(0, None)


def _settings_tab(ctx: Context, session: Session, actor: Actor, connection: ShownRow) -> SettingsTab:
    labels = {}
    try:
        source = ctx.source(connection.source)
        spec = config_spec(source)
        if spec is None:
            labels = {f.name: f.label for f in source.credential_fields}
        else:  # a spec source's hint is keyed by JSON pointer
            labels = {k: field_title(spec, pointer_path(k)) for k in connection.credentials_hint}
    except UnknownSource:
        pass
    hint = tuple((labels.get(k, k), v) for k, v in sorted(connection.credentials_hint.items()))
    audit = tuple(
        AuditRow(e.at, e.user_id, e.action, e.outcome)
        for e in Audit(session, actor.team_id).recent(connection_id=connection.id, limit=AUDIT_SHOWN)
    )
    return SettingsTab(
        auth_type=connection.auth_type,
        account_sync_mode=connection.account_sync_mode,
        credentials_hint=hint,
        last_authorized_by=connection.last_authorized_by,
        alert_channel=connection.alert_channel,
        audit=audit,
    )


def run_history(ctx: Context, actor: Actor, connection_id: int, order_id: int, page: int = 0) -> RunHistory:
    """The order's last HISTORY_RUNS runs, newest first, a page at a time."""
    with ctx.db.read() as session:
        Connections(session, actor.team_id).require(connection_id)
        repo = Orders(session, actor.team_id)
        order = repo.get(order_id, connection_id=connection_id)
        shown = select(ExtractionRun.id).where(ExtractionRun.order_id == order_id).limit(HISTORY_RUNS).subquery()
        total = session.execute(select(func.count()).select_from(shown)).scalar_one()
        offset = _clamp_offset(page * HISTORY_PAGE_SIZE, total, HISTORY_PAGE_SIZE)
        runs = tuple(
            HistoryRun(r.started_at, r.finished_at, r.trigger, r.triggered_by, r.rows, r.status, r.error)
            for r in repo.runs_page(order_id, offset=offset, limit=HISTORY_PAGE_SIZE)
        )
        return RunHistory(connection_id, order_id, order.name, runs, Page(offset, HISTORY_PAGE_SIZE, total))
