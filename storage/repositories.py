"""Queries and writes, always scoped by the Slack team. No Slack, no sources here.

Counting and paging happen in SQL so that cost depends on the page size, not on the data size.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias, cast

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    ScalarSelect,
    Select,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.orm import QueryableAttribute, Session

from core.errors import NotFound
from storage.models import (
    UNFINISHED,
    Account,
    AccountSyncRun,
    Alert,
    AlertKind,
    AuditEvent,
    Connection,
    ConnectionCatalog,
    CredentialsStatus,
    Escalation,
    ExtractionOrder,
    ExtractionRun,
    JobClaim,
    OAuthState,
    OrderAccount,
    OrderState,
    Workspace,
)

# A row of a statement whose columns mypy does not know (a table's, or a hand-built select's):
# read by name (`row.status`), as cards do.
AnyRow: TypeAlias = "Row[*tuple[Any, ...]]"
_AnySelect: TypeAlias = "Select[*tuple[Any, ...]]"


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


@dataclass(frozen=True)
class Page:
    offset: int
    limit: int
    total: int

    @property
    def has_previous(self) -> bool:
        return self.offset > 0

    @property
    def has_next(self) -> bool:
        return self.offset + self.limit < self.total

    @property
    def number(self) -> int:
        return self.offset // self.limit + 1

    @property
    def count(self) -> int:
        return max(1, -(-self.total // self.limit))


@dataclass(frozen=True)
class AccountCounts:
    total: int  # not removed by a sync
    active: int

    @classmethod
    def of(cls, connection: Connection) -> AccountCounts:
        """As of the last account sync, which keeps them on the connection."""
        return cls(connection.accounts_total, connection.accounts_active)


# Cards read a handful of rows per click: plain rows from statements built once, not ORM objects.
_SHOWN_CONNECTION = select(*(column for column in Connection.__table__.c if column.name != "credentials")).where(
    Connection.id == bindparam("cid"), Connection.team_id == bindparam("team")
)
# The Accounts tab shows the last 7 syncs as a strip; the newest ones also tell the header.
RECENT_SYNCS = 7
_RECENT_SYNCS = (
    select(AccountSyncRun.__table__)
    .where(AccountSyncRun.connection_id == bindparam("cid"))
    .order_by(AccountSyncRun.started_at.desc(), AccountSyncRun.id.desc())
    .limit(RECENT_SYNCS)
)


_CONNECTION_ID = re.compile(r"#?([0-9]{1,18})")  # 18 digits: within any database's integer


def as_connection_id(text: str) -> int | None:
    """The connection id that `text` names ("12" or "#12"), if it names one."""
    match = _CONNECTION_ID.fullmatch(text.strip())
    return int(match[1]) if match else None


class Connections:
    def __init__(self, session: Session, team_id: str):
        self.session = session
        self.team_id = team_id

    def get(self, connection_id: int, *, include_deleted: bool = False, for_update: bool = False) -> Connection:
        query = select(Connection).where(Connection.id == connection_id, Connection.team_id == self.team_id)
        if for_update:
            query = query.with_for_update()
        connection = self.session.scalars(query).first()
        if connection is None or (connection.is_deleted and not include_deleted):
            raise self.not_found(connection_id)
        return connection

    def shown(self, connection_id: int, *, include_deleted: bool = False) -> AnyRow:
        """The connection as a card or a form shows it: a plain row of every column but the
        credentials, which neither needs. A deleted one only with `include_deleted` (its tombstone)."""
        row = self.session.connection().execute(_SHOWN_CONNECTION, {"cid": connection_id, "team": self.team_id}).first()
        if row is None or (row.deleted_at is not None and not include_deleted):
            raise self.not_found(connection_id)
        return row

    def require(self, connection_id: int, *, include_deleted: bool = False) -> None:
        """Like `get`, without loading the connection: a check that it exists for this team."""
        query = select(Connection.id).where(Connection.id == connection_id, Connection.team_id == self.team_id)
        if not include_deleted:
            query = query.where(Connection.deleted_at.is_(None))
        if self.session.scalar(query) is None:
            raise self.not_found(connection_id)

    @staticmethod
    def not_found(connection_id: int) -> NotFound:
        return NotFound(f"There is no connection {connection_id}. Type `/connections` to see the list.")

    def add(self, connection: Connection) -> Connection:
        if connection.team_id != self.team_id:
            raise ValueError("connection belongs to another team")
        self.session.add(connection)
        self.session.flush()
        return connection

    def _live(self, search: str | None) -> Select[Connection]:
        query = select(Connection).where(Connection.team_id == self.team_id, Connection.deleted_at.is_(None))
        if search:
            pattern = _like(search)
            conditions: list[ColumnElement[bool]] = [
                func.lower(Connection.source).like(pattern, escape="\\"),
                func.lower(Connection.title).like(pattern, escape="\\"),
                func.lower(Connection.business_account_name).like(pattern, escape="\\"),
                func.lower(Connection.business_account_id).like(pattern, escape="\\"),
            ]
            if (connection_id := as_connection_id(search)) is not None:
                conditions.append(Connection.id == connection_id)
            query = query.where(or_(*conditions))
        return query

    def count(self, search: str | None = None) -> int:
        return self.session.scalars(select(func.count()).select_from(self._live(search).subquery())).one()

    def list(self, *, offset: int, limit: int, search: str | None = None) -> Sequence[Connection]:
        """Those with an open alert first, then credentials errors, then by data source and title."""
        alerted = exists().where(Alert.connection_id == Connection.id, Alert.resolved_at.is_(None))
        alerts_first = case((alerted, 0), else_=1)
        errors_first = case((Connection.credentials_status == CredentialsStatus.ERROR, 0), else_=1)
        query = self._live(search).order_by(
            alerts_first, errors_first, Connection.source, Connection.title, Connection.id
        )
        return self.session.scalars(query.offset(offset).limit(limit)).all()

    def all_live(self) -> Sequence[Connection]:
        return self.session.scalars(self._live(None).order_by(Connection.id)).all()


def live_connection_ids(session: Session) -> Sequence[tuple[str, int]]:
    """(team, id) of every live connection of every team: for the scheduler only."""
    return (
        session.execute(
            select(Connection.team_id, Connection.id).where(Connection.deleted_at.is_(None)).order_by(Connection.id)
        )
        .tuples()
        .all()
    )


class Accounts:
    """Accounts of one connection (the caller has already scoped the connection to its team)."""

    def __init__(self, session: Session, connection_id: int):
        self.session = session
        self.connection_id = connection_id

    def _current(self, search: str | None = None, *, active_only: bool = False) -> _AnySelect:
        query = select(Account.__table__).where(
            Account.connection_id == self.connection_id, Account.removed_at.is_(None)
        )
        if active_only:
            query = query.where(Account.active.is_(True))
        if search:
            pattern = _like(search)
            query = query.where(
                or_(
                    func.lower(Account.name).like(pattern, escape="\\"),
                    func.lower(Account.external_id).like(pattern, escape="\\"),
                )
            )
        return query

    def counts(self) -> AccountCounts:
        """As of the last account sync (it keeps them on the connection)."""
        row = self.session.execute(
            select(Connection.accounts_total, Connection.accounts_active).where(Connection.id == self.connection_id)
        ).one()
        return AccountCounts(total=row[0], active=row[1])

    def count(self, search: str | None = None, *, active_only: bool = False) -> int:
        if not search:  # the common case: no count over every account
            counts = self.counts()
            return counts.active if active_only else counts.total
        return self.session.scalars(
            select(func.count()).select_from(self._current(search, active_only=active_only).subquery())
        ).one()

    def recount(self) -> None:
        """Counts the accounts (after a sync) and keeps the result on the connection."""
        self.session.execute(
            update(Connection).where(Connection.id == self.connection_id).values(**self.counted(self.connection_id))
        )

    @staticmethod
    def counted(connection_id: int | ColumnElement[int]) -> dict[str, ScalarSelect[int]]:
        """The connection's account counts, as SQL for an UPDATE of its row."""
        current = (Account.connection_id == connection_id, Account.removed_at.is_(None))
        return {
            "accounts_total": select(func.count()).where(*current).scalar_subquery(),
            "accounts_active": select(func.count()).where(*current, Account.active.is_(True)).scalar_subquery(),
        }

    def page(
        self, *, offset: int, limit: int, search: str | None = None, active_only: bool = False
    ) -> Sequence[AnyRow]:
        """A page of accounts, as rows (for display)."""
        # The order of the ix_accounts_listing index.
        query = self._current(search, active_only=active_only).order_by(
            Account.active.desc(), func.lower(Account.name), Account.id
        )
        return self.session.connection().execute(query.offset(offset).limit(limit)).all()

    def by_ids(self, ids: Sequence[int]) -> Sequence[Account]:
        if not ids:
            return []
        return self.session.scalars(
            select(Account).where(Account.connection_id == self.connection_id, Account.id.in_(ids)).order_by(Account.id)
        ).all()


def account_counts_for(session: Session, connection_ids: Sequence[int]) -> dict[int, AccountCounts]:
    """Counts for a page of connections in one query."""
    if not connection_ids:
        return {}
    rows = session.execute(
        select(Connection.id, Connection.accounts_total, Connection.accounts_active).where(
            Connection.id.in_(connection_ids)
        )
    ).all()
    found = {cid: AccountCounts(total, active) for cid, total, active in rows}
    return {cid: found.get(cid, AccountCounts(0, 0)) for cid in connection_ids}


@dataclass(frozen=True)
class RecentSyncs:
    """Rows of `account_sync_runs`, for display."""

    latest: AnyRow | None
    finished: AnyRow | None  # the latest that ended, however
    running: AnyRow | None
    recent: tuple[AnyRow, ...] = ()  # up to RECENT_SYNCS, newest first


class SyncRuns:
    def __init__(self, session: Session):
        self.session = session

    def recent(self, connection_id: int) -> RecentSyncs:
        """The latest sync, the latest finished and the running (or queued) one, in one query: a
        sync runs only alone (a unique index says so), so the running one is the latest."""
        rows = self.session.connection().execute(_RECENT_SYNCS, {"cid": connection_id}).all()
        latest = rows[0] if rows else None
        return RecentSyncs(
            latest=latest,
            finished=next((run for run in rows if run.status not in UNFINISHED), None),
            running=latest if latest is not None and latest.status in UNFINISHED else None,
            recent=tuple(rows),
        )

    def running(self, connection_id: int) -> AccountSyncRun | None:
        """The connection's sync that is running or queued, if any."""
        return self.session.scalars(
            select(AccountSyncRun).where(
                AccountSyncRun.connection_id == connection_id, AccountSyncRun.status.in_(UNFINISHED)
            )
        ).first()

    def latest_for(self, connection_ids: Sequence[int]) -> dict[int, AccountSyncRun]:
        """The newest sync run of each connection, in one query."""
        if not connection_ids:
            return {}
        newest = (
            select(AccountSyncRun.connection_id, func.max(AccountSyncRun.id).label("id"))
            .where(AccountSyncRun.connection_id.in_(connection_ids))
            .group_by(AccountSyncRun.connection_id)
            .subquery()
        )
        runs = self.session.scalars(select(AccountSyncRun).join(newest, AccountSyncRun.id == newest.c.id)).all()
        return {run.connection_id: run for run in runs}


class Orders:
    """Extraction orders of one team."""

    def __init__(self, session: Session, team_id: str):
        self.session = session
        self.team_id = team_id

    def _live(self, connection_id: int) -> Select[ExtractionOrder]:
        return select(ExtractionOrder).where(*self._of_connection(connection_id))

    def _of_connection(self, connection_id: int) -> tuple[ColumnElement[bool], ...]:
        return (
            ExtractionOrder.team_id == self.team_id,
            ExtractionOrder.connection_id == connection_id,
            ExtractionOrder.deleted_at.is_(None),
        )

    def get(self, order_id: int, *, connection_id: int | None = None) -> ExtractionOrder:
        query = select(ExtractionOrder).where(
            ExtractionOrder.id == order_id,
            ExtractionOrder.team_id == self.team_id,
            ExtractionOrder.deleted_at.is_(None),
        )
        if connection_id is not None:
            query = query.where(ExtractionOrder.connection_id == connection_id)
        order = self.session.scalars(query).first()
        if order is None:
            raise NotFound(f"Extraction order {order_id} no longer exists.")
        return order

    def count(self, connection_id: int) -> int:
        return self.session.scalars(select(func.count()).where(*self._of_connection(connection_id))).one()

    def shown(self, connection_id: int, *, offset: int, limit: int) -> Sequence[AnyRow]:
        """A page of the connection's orders, newest first, as a card shows them: each row has the
        order's columns, `accounts` (how many it extracts), its newest run as `run_started_at`,
        `run_finished_at`, `run_rows`, `run_status`, `run_error`, `run_job_id`, `run_attempts` (None
        without one), and `total`,
        the connection's live orders. One statement; no rows past the end."""
        return (
            self.session.connection()
            .execute(_SHOWN_ORDERS, {"team": self.team_id, "cid": connection_id, "offset": offset, "limit": limit})
            .all()
        )

    def all_live(self, connection_id: int) -> Sequence[ExtractionOrder]:
        return self.session.scalars(self._live(connection_id).order_by(ExtractionOrder.id)).all()

    def recent_runs(self, order_ids: Sequence[int], limit: int) -> dict[int, list[AnyRow]]:
        """The newest `limit` runs of each order (newest first), in one statement: one index range
        per order, however many runs an order has had."""
        if not order_ids:
            return {}
        parts = [
            select(
                ExtractionRun.order_id,
                ExtractionRun.id,
                ExtractionRun.status,
                ExtractionRun.rows,
                ExtractionRun.trigger,
                ExtractionRun.started_at,
            )
            .where(ExtractionRun.order_id == order_id)
            .order_by(ExtractionRun.started_at.desc(), ExtractionRun.id.desc())
            .limit(limit)
            .subquery()
            .select()
            for order_id in order_ids
        ]
        found: dict[int, list[AnyRow]] = {order_id: [] for order_id in order_ids}
        for row in self.session.execute(union_all(*parts)).all():
            found[row.order_id].append(row)
        for runs in found.values():
            runs.sort(key=lambda run: (run.started_at, run.id), reverse=True)
        return found

    def runs_page(self, order_id: int, *, offset: int, limit: int) -> Sequence[ExtractionRun]:
        return self.session.scalars(
            select(ExtractionRun)
            .where(ExtractionRun.order_id == order_id)
            .order_by(ExtractionRun.started_at.desc(), ExtractionRun.id.desc())
            .offset(offset)
            .limit(limit)
        ).all()


def _shown_orders() -> _AnySelect:
    live = (
        ExtractionOrder.team_id == bindparam("team"),
        ExtractionOrder.connection_id == bindparam("cid"),
        ExtractionOrder.deleted_at.is_(None),
    )
    page = (
        select(ExtractionOrder.__table__)
        .where(*live)
        .order_by(ExtractionOrder.created_at.desc(), ExtractionOrder.id.desc())
        .offset(bindparam("offset"))
        .limit(bindparam("limit"))
        .subquery("page")
    )
    run = ExtractionRun.__table__.alias("run")
    newest = select(func.max(ExtractionRun.id)).where(ExtractionRun.order_id == page.c.id).scalar_subquery()
    accounts = select(func.count()).where(OrderAccount.order_id == page.c.id).scalar_subquery()
    # What a run would extract (engine.extraction._account_ids): a card must not look healthy
    # when a sync took its accounts away.
    usable = (
        select(func.count())
        .select_from(OrderAccount)
        .join(Account, Account.id == OrderAccount.account_id)
        .where(
            OrderAccount.order_id == page.c.id,
            Account.enabled.is_(True),
            Account.active.is_(True),
            Account.removed_at.is_(None),
        )
        .scalar_subquery()
    )
    total = select(func.count()).select_from(ExtractionOrder).where(*live).scalar_subquery()  # not correlated: once
    return (
        select(
            page,
            accounts.label("accounts"),
            usable.label("usable_accounts"),
            run.c.started_at.label("run_started_at"),
            run.c.finished_at.label("run_finished_at"),
            run.c.rows.label("run_rows"),
            run.c.status.label("run_status"),
            run.c.error.label("run_error"),
            run.c.job_id.label("run_job_id"),
            run.c.attempts.label("run_attempts"),
            total.label("total"),
        )
        .outerjoin(run, run.c.id == newest)
        .order_by(page.c.created_at.desc(), page.c.id.desc())
    )


# The orders tab, built once: a page of orders, then for those rows only their account counts
# and newest runs, and beside them the count of every live order.
_SHOWN_ORDERS = _shown_orders()


class Audit:
    def __init__(self, session: Session, team_id: str):
        self.session = session
        self.team_id = team_id

    def record(
        self,
        *,
        at: datetime,
        user_id: str | None,
        action: str,
        outcome: str = "ok",
        connection_id: int | None = None,
        order_id: int | None = None,
        details: dict[str, Any] | None = None,  # as the JSON column holds them
    ) -> AuditEvent:
        event = AuditEvent(
            team_id=self.team_id,
            at=at,
            user_id=user_id,
            action=action,
            outcome=outcome,
            connection_id=connection_id,
            order_id=order_id,
            details=details or {},
        )
        self.session.add(event)
        return event

    def recent(
        self, *, connection_id: int | None = None, since: datetime | None = None, limit: int = 5
    ) -> Sequence[AuditEvent]:
        query = select(AuditEvent).where(AuditEvent.team_id == self.team_id)
        if connection_id is not None:
            query = query.where(AuditEvent.connection_id == connection_id)
        if since is not None:
            query = query.where(AuditEvent.at >= since)
        return self.session.scalars(query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit)).all()


def all_audit_events(
    session: Session, *, team_id: str | None, connection_id: int | None, since: datetime | None, limit: int
) -> Sequence[AuditEvent]:
    """For the CLI, which may look across teams."""
    query = select(AuditEvent)
    conditions: list[ColumnElement[bool]] = []
    if team_id:
        conditions.append(AuditEvent.team_id == team_id)
    if connection_id is not None:
        conditions.append(AuditEvent.connection_id == connection_id)
    if since is not None:
        conditions.append(AuditEvent.at >= since)
    if conditions:
        query = query.where(and_(*conditions))
    return session.scalars(query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit)).all()


def close_alerts(
    session: Session,
    *,
    at: datetime,
    by: str | None,
    resolution: str,
    connection_id: int | None = None,
    order_id: int | None = None,
    kinds: Iterable[str] | None = None,
) -> list[int]:
    """Close the open alerts of a connection or an order (of `kinds`, or all), in the caller's
    unit of work; returns their ids. The Slack layer then marks them closed in place."""
    conditions: list[ColumnElement[bool]] = [Alert.resolved_at.is_(None)]
    if connection_id is not None:
        conditions.append(Alert.connection_id == connection_id)
    if order_id is not None:
        conditions.append(Alert.order_id == order_id)
    if kinds is not None:
        conditions.append(Alert.kind.in_(list(kinds)))
    ids = list(session.scalars(select(Alert.id).where(*conditions).with_for_update()))
    if ids:
        session.execute(
            update(Alert)
            .where(Alert.id.in_(ids), Alert.resolved_at.is_(None))
            .values(resolved_at=at, resolved_by=by, resolution=resolution)
        )
    return ids


@dataclass(frozen=True)
class OpenAlert:
    """An open alert as lists show it."""

    kind: str
    acknowledged_by: str | None


def open_alerts_for(session: Session, connection_ids: Sequence[int]) -> dict[int, tuple[OpenAlert, ...]]:
    """The open alerts of a page of connections, in one query (credentials first, then by kind)."""
    if not connection_ids:
        return {}
    order = case((Alert.kind == AlertKind.CREDENTIALS, 0), else_=1)
    rows = session.execute(
        select(Alert.connection_id, Alert.kind, Alert.acknowledged_by)
        .where(Alert.connection_id.in_(list(connection_ids)), Alert.resolved_at.is_(None))
        .order_by(Alert.connection_id, order, Alert.kind, Alert.id)
    ).all()
    found: dict[int, list[OpenAlert]] = {}
    for connection_id, kind, by in rows:
        found.setdefault(connection_id, []).append(OpenAlert(kind, by))
    return {cid: tuple(found.get(cid, ())) for cid in connection_ids}


def open_alert_counts(session: Session) -> dict[str, int]:
    """Open alerts of every team, by kind (every kind, those with none at 0)."""
    counts = dict.fromkeys(AlertKind, 0)
    for kind, count in session.execute(
        select(Alert.kind, func.count()).where(Alert.resolved_at.is_(None)).group_by(Alert.kind)
    ):
        counts[AlertKind(kind)] = count
    return {str(kind): count for kind, count in counts.items()}


# -- workspaces -------------------------------------------------------------------------------------

_UNINSTALLED = select(Workspace.team_id).where(Workspace.uninstalled_at.is_not(None))


def installed(team_id: ColumnElement[str] | QueryableAttribute[str]) -> ColumnElement[bool]:
    """`team_id` (a column) is of a workspace that has not uninstalled connbot: its jobs run."""
    return team_id.not_in(_UNINSTALLED)


def purge_team(session: Session, team_id: str) -> dict[str, int]:
    """Deletes every row of the team but its audit trail: connections with their credentials and
    catalogs, accounts, orders and their saved states, runs, alerts, escalations, sign-ins, the
    claims of its scheduled jobs and its workspace row. Returns how many of each kind were deleted."""
    connections = select(Connection.id).where(Connection.team_id == team_id)
    orders = select(ExtractionOrder.id).where(ExtractionOrder.connection_id.in_(connections))
    claim_keys = [f"sync:{cid}" for cid in session.scalars(connections)]
    claim_keys += [f"order:{oid}" for oid in session.scalars(orders)]
    deleted: dict[str, int] = {}
    for name, statement in (
        ("order accounts", delete(OrderAccount).where(OrderAccount.order_id.in_(orders))),
        ("order states", delete(OrderState).where(OrderState.order_id.in_(orders))),
        ("catalogs", delete(ConnectionCatalog).where(ConnectionCatalog.connection_id.in_(connections))),
        ("extraction runs", delete(ExtractionRun).where(ExtractionRun.connection_id.in_(connections))),
        ("account syncs", delete(AccountSyncRun).where(AccountSyncRun.connection_id.in_(connections))),
        ("alerts", delete(Alert).where(Alert.connection_id.in_(connections))),
        ("escalations", delete(Escalation).where(Escalation.connection_id.in_(connections))),
        ("sign-ins", delete(OAuthState).where(OAuthState.team_id == team_id)),
        ("extraction orders", delete(ExtractionOrder).where(ExtractionOrder.connection_id.in_(connections))),
        ("accounts", delete(Account).where(Account.connection_id.in_(connections))),
        ("connections", delete(Connection).where(Connection.team_id == team_id)),
        ("workspace", delete(Workspace).where(Workspace.team_id == team_id)),
    ):
        # A DELETE's result is a CursorResult, which counts the rows; Session.execute says Result.
        result = cast(
            "CursorResult[*tuple[Any, ...]]",
            session.execute(statement, execution_options={"synchronize_session": False}),
        )
        deleted[name] = result.rowcount
    for start in range(0, len(claim_keys), 500):
        session.execute(delete(JobClaim).where(JobClaim.job_key.in_(claim_keys[start : start + 500])))
    return deleted
