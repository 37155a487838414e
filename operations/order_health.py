"""Order alerts: an extraction order that is failing, stale or silent.

The rules, in one place (the card's strips use `usual_rows` and `too_few_rows` too):
- failing: its runs failed `CONNBOT_ORDER_FAILURES_BEFORE_ALERT` times in a row (2 by default);
  resolved by its next successful run.
- stale: no successful run for two schedule intervals (48 hours for a daily order, 12 for one
  every 6 hours), whatever the reason (runs skipped, failing, stuck queued or running), unless a
  run was queued or started within the last interval;
  resolved by a success. Not while the order is failing: that alert explains it.
- silent: a run succeeded with 0 rows, or under 10% of the median of its last 7 successful runs
  (the first run, a backfill, left out; at least 3 of them), while that median is above
  SILENT_FLOOR; resolved by a run with its usual rows. Each order may turn it off.

A credentials error explains an order's failures: orders of a connection whose credentials are
in error are not judged, and what happened before the credentials were fixed (or before the
order was resumed) is not held against the order.

`evaluate_orders` runs in the alert poster's flush, every minute and after every run: it judges
each order's newest finished run once (a claim on the order row: two processes never judge the
same run) and opens stale alerts. Alert rows are written here; posting them is the Slack layer's.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import Select, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.context import Context
from operations.dml import changed_rows
from storage.models import (
    UNFINISHED,
    Alert,
    AlertKind,
    AlertResolution,
    Connection,
    CredentialsStatus,
    ExtractionOrder,
    ExtractionRun,
    OrderStatus,
    RunStatus,
    Workspace,
)
from storage.repositories import installed

log = logging.getLogger(__name__)

USUAL_RUNS = 7  # the median of this many recent successful runs is what an order usually loads
MIN_USUAL_RUNS = 3  # fewer successful runs than this tell nothing usual
SILENT_SHARE = 0.10
SILENT_FLOOR = 100  # an order that usually loads this few rows is not alerted for loading fewer
STALE_INTERVALS = 2


# ---- the rules ---------------------------------------------------------------------------------


def usual_rows(previous: Sequence[int]) -> int | None:
    """What an order usually loads: the median rows of its recent successful runs (newest first,
    the backfill left out); None with too few of them to say."""
    recent = list(previous)[:USUAL_RUNS]
    if len(recent) < MIN_USUAL_RUNS:
        return None
    return round(statistics.median(recent))


def too_few_rows(rows: int, usual: int | None) -> bool:
    return usual is not None and usual > SILENT_FLOOR and rows < usual * SILENT_SHARE


_INTERVALS = {"daily": timedelta(days=1), "weekly": timedelta(days=7), "monthly": timedelta(days=31)}


def schedule_interval(schedule: Mapping[str, Any]) -> timedelta | None:
    """The longest gap between two runs of a schedule; None for an order run by hand only."""
    kind: str | None = schedule.get("kind")
    if kind == "hourly":
        return timedelta(hours=int(schedule.get("every_hours") or 1))
    return _INTERVALS.get(kind) if kind is not None else None


class ErrorOrigin(StrEnum):
    PLATFORM = "platform"  # the data source refused (a removed field, a quota, lost access...)
    CONNBOT = "connbot"  # connbot itself failed
    WAREHOUSE = "warehouse"  # the warehouse refused the rows


# Words of engine/extraction.py's own failures: its configuration (keys, an uninstalled source).
_CONNBOT_HINTS = ("CONNBOT_SECRET_KEYS", "install it again")


def error_origin(error: str | None) -> ErrorOrigin:
    """Where a failed run's error came from, from what the run records."""
    from engine.extraction import INTERNAL_ERROR, INTERRUPTED, REFUSED, WAREHOUSE_FAILED  # pyarrow: when judging

    text = error or ""
    if text.endswith(REFUSED):  # a definitive refusal, whatever the platform's own words say
        return ErrorOrigin.PLATFORM
    if text.startswith(WAREHOUSE_FAILED):
        return ErrorOrigin.WAREHOUSE
    if text in (INTERNAL_ERROR, INTERRUPTED) or any(hint in text for hint in _CONNBOT_HINTS):
        return ErrorOrigin.CONNBOT
    return ErrorOrigin.PLATFORM


# ---- evaluation --------------------------------------------------------------------------------


@dataclass
class Changes:
    """Alerts this evaluation opened and resolved (committed), for the follow-ups."""

    opened: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)


def evaluate_orders(ctx: Context, now: datetime) -> Changes:
    changes = Changes()
    with ctx.db.read() as session:
        rows = session.execute(_WATCHED).all()
        open_kinds = _open_kinds(session)
    for row in rows:
        if not (_has_new_run(row) or _may_be_stale(row, open_kinds.get(row.id, set()), now)):
            continue
        try:
            _evaluate(ctx, row.id, now, changes)
        except IntegrityError:  # another process opened the same alert first
            log.debug("order %s: alert opened by another process", row.id)
    return changes


class WatchedOrder(Protocol):
    """A row of `_watched_orders`: an order and what the rules need of it."""

    @property
    def id(self) -> int: ...
    @property
    def schedule(self) -> dict[str, Any]: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def resumed_at(self) -> datetime | None: ...
    @property
    def alerts_checked_run_id(self) -> int | None: ...
    @property
    def newest_id(self) -> int | None: ...  # the newest run of the order, if any
    @property
    def newest_status(self) -> str | None: ...
    @property
    def newest_started_at(self) -> datetime | None: ...
    @property
    def last_success_at(self) -> datetime | None: ...
    @property
    def credentials_fixed_at(self) -> datetime | None: ...
    @property
    def installed_at(self) -> datetime | None: ...  # of its workspace; None without a workspace row


def _watched_orders() -> Select[*tuple[Any, ...]]:
    """Orders the rules apply to, with what they need: live, not paused, of a live connection
    whose credentials are not in error. One statement, built once; each subquery reads one index
    range."""
    order = ExtractionOrder
    newest_id = (
        select(ExtractionRun.id)
        .where(ExtractionRun.order_id == order.id)
        .order_by(ExtractionRun.started_at.desc(), ExtractionRun.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    last_success = (
        select(func.max(ExtractionRun.started_at))
        .where(ExtractionRun.order_id == order.id, ExtractionRun.status == RunStatus.SUCCEEDED)
        .scalar_subquery()
    )
    credentials_fixed = (
        select(func.max(Alert.resolved_at))
        .where(
            Alert.connection_id == order.connection_id,
            Alert.kind == AlertKind.CREDENTIALS,
            Alert.resolution == AlertResolution.FIXED,
        )
        .scalar_subquery()
    )
    newest = ExtractionRun.__table__.alias("newest")
    return (
        select(
            order.id,
            order.schedule,
            order.created_at,
            order.resumed_at,
            order.alerts_checked_run_id,
            newest.c.id.label("newest_id"),
            newest.c.status.label("newest_status"),
            newest.c.started_at.label("newest_started_at"),
            last_success.label("last_success_at"),
            credentials_fixed.label("credentials_fixed_at"),
            Workspace.installed_at.label("installed_at"),
        )
        .join(Connection, Connection.id == order.connection_id)
        .outerjoin(Workspace, Workspace.team_id == Connection.team_id)
        .outerjoin(newest, newest.c.id == newest_id)
        .where(
            order.deleted_at.is_(None),
            order.status != OrderStatus.PAUSED,
            Connection.deleted_at.is_(None),
            Connection.credentials_status != CredentialsStatus.ERROR,
            # An uninstalled workspace's orders do not run: they are not judged until a reinstall.
            installed(Connection.team_id),
        )
    )


_WATCHED = _watched_orders()
_WATCHED_ONE = _WATCHED.where(ExtractionOrder.id == bindparam("order_id"))


def _watched(session: Session, order_id: int) -> WatchedOrder | None:
    return session.execute(_WATCHED_ONE, {"order_id": order_id}).first()


def _open_kinds(session: Session, order_id: int | None = None) -> dict[int, set[str]]:
    query = select(Alert.order_id, Alert.kind).where(Alert.resolved_at.is_(None), Alert.order_id.is_not(None))
    if order_id is not None:
        query = query.where(Alert.order_id == order_id)
    found: dict[int, set[str]] = {}
    for oid, kind in session.execute(query):
        assert oid is not None  # the query reads order alerts only
        found.setdefault(oid, set()).add(kind)
    return found


def _has_new_run(row: WatchedOrder) -> bool:
    return (
        row.newest_id is not None and row.newest_status not in UNFINISHED and row.newest_id != row.alerts_checked_run_id
    )


def _watched_since(row: WatchedOrder) -> datetime:
    """Runs before this are not held against the order: it did not exist, was paused, its
    credentials were broken (which explains them), or its workspace had uninstalled connbot."""
    return max(t for t in (row.created_at, row.resumed_at, row.credentials_fixed_at, row.installed_at) if t is not None)


def _may_be_stale(row: WatchedOrder, open_kinds: set[str], now: datetime) -> bool:
    interval = schedule_interval(row.schedule or {})
    if interval is None or open_kinds & {AlertKind.STALE, AlertKind.FAILING}:
        return False
    since = max(t for t in (_watched_since(row), row.last_success_at) if t is not None)
    if now - since < STALE_INTERVALS * interval:
        return False
    # A run queued or under way gets its chance; one waiting or running longer than an interval is stuck.
    return not (
        row.newest_status in UNFINISHED and row.newest_started_at is not None and now - row.newest_started_at < interval
    )


def _evaluate(ctx: Context, order_id: int, now: datetime, changes: Changes) -> None:
    opened: list[int] = []
    resolved: list[int] = []
    with ctx.db.begin() as session:
        # The order's row is the claim: evaluations of one order take turns, in any process.
        session.execute(select(ExtractionOrder.id).where(ExtractionOrder.id == order_id).with_for_update())
        row = _watched(session, order_id)
        if row is None:  # paused, deleted or its credentials broke since the sweep read it
            return
        open_kinds = _open_kinds(session, order_id).get(order_id, set())
        if _has_new_run(row):
            session.execute(
                update(ExtractionOrder)
                .where(ExtractionOrder.id == order_id)
                .values(alerts_checked_run_id=row.newest_id)
            )
            run = session.get(ExtractionRun, row.newest_id)
            assert run is not None  # just read; runs are deleted only with their workspace's data
            if run.started_at >= _watched_since(row):
                _judge(ctx, session, row, run, open_kinds, opened, resolved)
                # None if its credentials broke or its workspace uninstalled connbot meanwhile.
                row = _watched(session, order_id)
        if row is not None and _may_be_stale(row, open_kinds, now):
            opened.append(_open(session, order_id, AlertKind.STALE, now, details=_stale_details(session, row, now)))
    changes.opened += opened
    changes.resolved += resolved


def _judge(
    ctx: Context,
    session: Session,
    row: WatchedOrder,
    run: ExtractionRun,
    open_kinds: set[str],
    opened: list[int],
    resolved: list[int],
) -> None:
    """What the order's newest finished run says: a success resolves failing and stale (and
    silent when it loaded its usual rows); a failure may make the order failing."""
    order = session.get(ExtractionOrder, row.id)
    assert order is not None  # its row is this unit of work's claim (_evaluate)
    if run.status == RunStatus.SUCCEEDED:
        done = {"resolved_rows": run.rows, "resolved_trigger": run.trigger}
        for kind in (AlertKind.FAILING, AlertKind.STALE):
            if kind in open_kinds and (alert_id := _resolve(session, order.id, kind, run, done)):
                resolved.append(alert_id)
                open_kinds.discard(kind)
        if not order.silent_alerts:
            return
        usual = usual_rows(_previous_success_rows(session, run))
        if too_few_rows(run.rows, usual):
            if AlertKind.SILENT not in open_kinds:
                details: dict[str, object] = {
                    "rows": run.rows,
                    "usual_rows": usual,
                    "run_at": run.started_at.isoformat(),
                }
                opened.append(_open(session, order.id, AlertKind.SILENT, run.finished_at or run.started_at, details))
                open_kinds.add(AlertKind.SILENT)
        elif AlertKind.SILENT in open_kinds and (alert_id := _resolve(session, order.id, AlertKind.SILENT, run, done)):
            resolved.append(alert_id)
            open_kinds.discard(AlertKind.SILENT)
        return
    if run.status != RunStatus.FAILED or AlertKind.FAILING in open_kinds:
        return
    after = [ExtractionRun.started_at >= _watched_since(row)]
    if row.last_success_at is not None:
        after.append(ExtractionRun.started_at > row.last_success_at)
    failures, first = session.execute(
        select(func.count(), func.min(ExtractionRun.started_at)).where(
            ExtractionRun.order_id == order.id, ExtractionRun.status == RunStatus.FAILED, *after
        )
    ).one()
    if failures < ctx.settings.order_failures_before_alert:
        return
    details = {"failures": failures, "since": first.isoformat(), "run_at": run.started_at.isoformat()}
    opened.append(
        _open(
            session,
            order.id,
            AlertKind.FAILING,
            run.finished_at or run.started_at,
            details,
            error_code=error_origin(run.error),
            error_message=run.error,
        )
    )
    open_kinds.add(AlertKind.FAILING)


def _previous_success_rows(session: Session, run: ExtractionRun) -> list[int]:
    return list(
        session.scalars(
            select(ExtractionRun.rows)
            .where(
                ExtractionRun.order_id == run.order_id,
                ExtractionRun.status == RunStatus.SUCCEEDED,
                ExtractionRun.started_at <= run.started_at,
                ExtractionRun.id != run.id,
                ExtractionRun.trigger != "created",  # the backfill loads far more than a usual run
            )
            .order_by(ExtractionRun.started_at.desc(), ExtractionRun.id.desc())
            .limit(USUAL_RUNS)
        )
    )


def _stale_details(session: Session, row: WatchedOrder, now: datetime) -> dict[str, object]:
    interval = schedule_interval(row.schedule)
    assert interval is not None  # stale (_may_be_stale): it has a schedule
    newest = session.get(ExtractionRun, row.newest_id) if row.newest_id is not None else None
    return {
        "last_success_at": row.last_success_at.isoformat() if row.last_success_at else None,
        "interval_hours": round(interval.total_seconds() / 3600),
        "last_run_status": newest.status if newest else None,
        "last_run_at": newest.started_at.isoformat() if newest else None,
    }


def _open(
    session: Session,
    order_id: int,
    kind: AlertKind,
    at: datetime,
    details: dict[str, object],
    *,
    error_code: str | None = None,
    error_message: str | None = None,
) -> int:
    order = session.get(ExtractionOrder, order_id)
    assert order is not None  # its row is this unit of work's claim (_evaluate)
    connection = session.get(Connection, order.connection_id)
    assert connection is not None  # the order's foreign key
    alert = Alert(
        team_id=order.team_id,
        connection_id=connection.id,
        kind=kind,
        order_id=order.id,
        error_code=error_code,
        error_message=error_message,
        details=details,
        business_account_id=connection.business_account_id,
        business_account_name=connection.business_account_name,
        opened_at=at,
    )
    session.add(alert)
    session.flush()  # a second open alert of the order and kind fails here (uq_alerts_one_open_order)
    log.info("order %s: %s alert %s opened", order_id, kind.value, alert.id)
    return alert.id


def _resolve(
    session: Session, order_id: int, kind: AlertKind, run: ExtractionRun, details: dict[str, object]
) -> int | None:
    alert = session.scalars(
        select(Alert).where(Alert.order_id == order_id, Alert.kind == kind, Alert.resolved_at.is_(None))
    ).first()
    if alert is None:
        return None
    done = changed_rows(
        session,
        update(Alert)
        .where(Alert.id == alert.id, Alert.resolved_at.is_(None))
        .values(
            resolved_at=run.finished_at or run.started_at,
            resolved_by=run.triggered_by,
            resolution=AlertResolution.FIXED,
            details={**(alert.details or {}), **details},
        ),
    )
    return alert.id if done == 1 else None
