"""Alerts for on-call (credentials, and extraction orders failing, stale or silent), "I'm on it",
and CSM escalations: what to post, and recording that it was.

Alert rows are written with the change that raises them (engine/credentials.py for credentials,
operations/order_health.py for orders); this module tells the Slack layer what still has to be
posted, updated or reminded, and records the outcome.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.errors import Conflict, InvalidInput, NotFound
from engine.context import Context
from engine.schedules import describe
from operations.audit import audit
from operations.auth import Actor, Role, authorize
from operations.cards import source_title
from operations.dml import changed_rows
from operations.validation import clean_text
from operations.workspaces import workspace_settings
from storage.models import (
    Alert,
    AlertKind,
    Connection,
    CredentialsStatus,
    Escalation,
    ExtractionOrder,
    ExtractionRun,
)
from storage.repositories import Connections, installed

REMIND_EVERY = timedelta(days=1)
# "I'm on it" pauses the reminders this long.
ACKNOWLEDGED_FOR = timedelta(days=1)
MAX_POST_ATTEMPTS = 20
# A post takes one Slack call (and the client's retries); a claim older than this was left by a
# process that stopped half-way, and the next flush takes it over.
POST_CLAIM = timedelta(minutes=2)


@dataclass(frozen=True)
class AlertCard:
    id: int
    team_id: str
    connection_id: int
    kind: str  # AlertKind
    source_title: str
    business_account_name: str
    business_account_id: str
    error_code: str | None
    error_message: str | None
    since: datetime
    affected_orders: tuple[str, ...]
    channel: str | None
    ts: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    resolution: str | None  # AlertResolution, once closed
    order_id: int | None = None
    order_name: str | None = None
    order_schedule: str | None = None
    details: dict[str, Any] = field(default_factory=dict)  # the facts as it fired (order alerts)
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None

    @property
    def is_order_alert(self) -> bool:
        return self.kind != AlertKind.CREDENTIALS


def alert_card(ctx: Context, alert_id: int) -> AlertCard:
    with ctx.db.begin() as session:
        alert = _alert(session, alert_id)
        connection = session.get(Connection, alert.connection_id)
        assert connection is not None  # the alert's foreign key; connections are never deleted before it
        order = session.get(ExtractionOrder, alert.order_id) if alert.order_id is not None else None
        orders: Sequence[str] = ()
        if order is None:
            orders = session.scalars(
                select(ExtractionOrder.name)
                .where(ExtractionOrder.connection_id == connection.id, ExtractionOrder.deleted_at.is_(None))
                .order_by(ExtractionOrder.id)
                .limit(20)
            ).all()
        return AlertCard(
            id=alert.id,
            team_id=alert.team_id,
            connection_id=connection.id,
            kind=alert.kind,
            source_title=source_title(ctx, connection.source),
            # As it fired: a re-connect to another business account must not rewrite the history.
            business_account_name=alert.business_account_name or connection.business_account_name,
            business_account_id=alert.business_account_id or connection.business_account_id,
            error_code=alert.error_code,
            error_message=alert.error_message,
            since=alert.opened_at,
            affected_orders=tuple(orders),
            channel=alert.channel or connection.alert_channel or workspace_settings(ctx, alert.team_id).alert_channel,
            ts=alert.ts,
            resolved_at=alert.resolved_at,
            resolved_by=alert.resolved_by,
            resolution=alert.resolution,
            order_id=alert.order_id,
            order_name=order.name if order is not None else None,
            order_schedule=describe(order.schedule, order.timezone) if order is not None else None,
            details=dict(alert.details or {}),
            acknowledged_by=alert.acknowledged_by,
            acknowledged_at=alert.acknowledged_at,
        )


def _not_explained() -> ColumnElement[bool]:
    """Order alerts of a connection whose credentials are in error wait: the credentials alert
    explains them (and lists the orders)."""
    return or_(Alert.kind == AlertKind.CREDENTIALS, Connection.credentials_status != CredentialsStatus.ERROR)


def to_post(ctx: Context) -> list[int]:
    """Open alerts not yet in Slack (new, or whose post failed and is retried). Those of a
    workspace that uninstalled connbot wait: a reinstall posts them."""
    with ctx.db.begin() as session:
        return list(
            session.scalars(
                select(Alert.id)
                .join(Connection, Connection.id == Alert.connection_id)
                .where(
                    Alert.ts.is_(None),
                    Alert.resolved_at.is_(None),
                    Alert.post_attempts < MAX_POST_ATTEMPTS,
                    _not_explained(),
                    installed(Alert.team_id),
                )
                .order_by(Alert.id)
            )
        )


def to_mark_resolved(ctx: Context) -> list[int]:
    with ctx.db.begin() as session:
        return list(
            session.scalars(
                select(Alert.id)
                .where(
                    Alert.ts.is_not(None),
                    Alert.resolved_at.is_not(None),
                    Alert.resolution_posted_at.is_(None),
                    installed(Alert.team_id),
                )
                .order_by(Alert.id)
            )
        )


def _remindable(now: datetime) -> tuple[ColumnElement[bool], ...]:
    """Open for a day, not reminded for a day, and nobody said "I'm on it" within a day."""
    cutoff = now - REMIND_EVERY
    return (
        Alert.resolved_at.is_(None),
        Alert.opened_at <= cutoff,
        or_(Alert.last_reminded_at.is_(None), Alert.last_reminded_at <= cutoff),
        or_(Alert.acknowledged_at.is_(None), Alert.acknowledged_at <= now - ACKNOWLEDGED_FOR),
    )


def to_remind(ctx: Context, now: datetime) -> list[int]:
    """Still open after a day: at most one reminder a day."""
    with ctx.db.begin() as session:
        return list(
            session.scalars(
                select(Alert.id)
                .join(Connection, Connection.id == Alert.connection_id)
                .where(Alert.ts.is_not(None), *_remindable(now), _not_explained(), installed(Alert.team_id))
                .order_by(Alert.id)
            )
        )


def claim_post(ctx: Context, alert_id: int, now: datetime) -> bool:
    """One poster at a time, however many processes look at the same row: the claim holds until
    the post is recorded, fails, or is older than POST_CLAIM (its process stopped half-way)."""
    with ctx.db.begin() as session:
        claimed = changed_rows(
            session,
            update(Alert)
            .where(
                Alert.id == alert_id,
                Alert.ts.is_(None),
                or_(Alert.post_claimed_at.is_(None), Alert.post_claimed_at <= now - POST_CLAIM),
            )
            .values(post_claimed_at=now, post_attempts=Alert.post_attempts + 1),
        )
        return claimed == 1


def mark_posted(ctx: Context, alert_id: int, channel: str, ts: str) -> None:
    with ctx.db.begin() as session:
        alert = _alert(session, alert_id)
        alert.channel, alert.ts, alert.last_post_error = channel, ts, None


def mark_post_failed(ctx: Context, alert_id: int, error: str) -> None:
    """Not posted: the next flush tries again."""
    with ctx.db.begin() as session:
        alert = _alert(session, alert_id)
        alert.last_post_error, alert.post_claimed_at = error, None


def claim_resolution(ctx: Context, alert_id: int, now: datetime) -> bool:
    with ctx.db.begin() as session:
        done = changed_rows(
            session,
            update(Alert)
            .where(Alert.id == alert_id, Alert.resolution_posted_at.is_(None))
            .values(resolution_posted_at=now),
        )
        return done == 1


def release_resolution(ctx: Context, alert_id: int) -> None:
    """Slack did not take the resolution: the next flush posts it again."""
    with ctx.db.begin() as session:
        session.execute(update(Alert).where(Alert.id == alert_id).values(resolution_posted_at=None))


def claim_reminder(ctx: Context, alert_id: int, now: datetime) -> bool:
    with ctx.db.begin() as session:
        done = changed_rows(
            session, update(Alert).where(Alert.id == alert_id, *_remindable(now)).values(last_reminded_at=now)
        )
        return done == 1


# ---- "I'm on it" ------------------------------------------------------------------------------


def acknowledge(ctx: Context, actor: Actor, alert_id: int) -> None:
    """`actor` is on it: one person at a time, however many press at once."""
    with ctx.db.begin() as session:
        alert = _team_alert(session, actor, alert_id)
        now = ctx.clock.now()
        taken = changed_rows(
            session,
            update(Alert)
            .where(Alert.id == alert_id, Alert.resolved_at.is_(None), Alert.acknowledged_by.is_(None))
            .values(acknowledged_by=actor.user_id, acknowledged_at=now),
        )
        if not taken:
            session.refresh(alert)
            if alert.resolved_at is not None:
                raise Conflict("This alert is already closed; nobody needs to be on it.")
            if alert.acknowledged_by == actor.user_id:
                raise Conflict("You are already on it.")
            raise Conflict(
                f"<@{alert.acknowledged_by}> is already on it, since {alert.acknowledged_at:%Y-%m-%d %H:%M} UTC."
            )
        _audit(ctx, session, actor, "alert.acknowledge", alert)


def release(ctx: Context, actor: Actor, alert_id: int) -> None:
    """The person on it gives it back."""
    with ctx.db.begin() as session:
        alert = _team_alert(session, actor, alert_id)
        released = changed_rows(
            session,
            update(Alert)
            .where(Alert.id == alert_id, Alert.resolved_at.is_(None), Alert.acknowledged_by == actor.user_id)
            .values(acknowledged_by=None, acknowledged_at=None),
        )
        if not released:
            session.refresh(alert)
            if alert.resolved_at is not None:
                raise Conflict("This alert is already closed.")
            if alert.acknowledged_by is None:
                raise Conflict("Nobody is on it now: press *I'm on it* to take it.")
            raise Conflict(
                f"<@{alert.acknowledged_by}> is on it; only they can release it. Ask them in the alert's thread."
            )
        _audit(ctx, session, actor, "alert.release", alert)


def _audit(ctx: Context, session: Session, actor: Actor, action: str, alert: Alert) -> None:
    audit(
        ctx,
        session,
        actor,
        action,
        connection_id=alert.connection_id,
        order_id=alert.order_id,
        alert_id=alert.id,
        kind=alert.kind,
    )


_GONE = "This alert no longer exists."


def _team_alert(session: Session, actor: Actor, alert_id: int) -> Alert:
    alert = session.scalars(select(Alert).where(Alert.id == alert_id, Alert.team_id == actor.team_id)).first()
    if alert is None:
        raise NotFound(_GONE)
    return alert


def _alert(session: Session, alert_id: int) -> Alert:
    """Of any team: for the poster, which has the id from the alerts to post."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(_GONE)
    return alert


def set_alert_channel(
    ctx: Context,
    actor: Actor,
    connection_id: int,
    channel: str | None,
    *,
    before_saving: Callable[[str], None] | None = None,
) -> None:
    """`before_saving` is given the channel once the actor may change it: it refuses a channel
    alerts could not be posted to (by raising)."""
    authorize(ctx, actor, Role.ADMIN, "change the alert channel", connection_id)
    if channel and before_saving is not None:
        before_saving(channel)
    with ctx.db.begin() as session:
        connection = Connections(session, actor.team_id).get(connection_id)
        connection.alert_channel = channel
        audit(
            ctx, session, actor, "connection.alert_channel", connection_id=connection_id, channel=channel or "default"
        )


# ---- escalations ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EscalationCard:
    connection_id: int
    source_title: str
    business_account_name: str
    business_account_id: str
    credentials_status: str
    error_message: str | None
    recent_runs: tuple[tuple[str, datetime, str, int, str | None], ...]  # (order, when, status, rows, error)
    escalated_by: str
    reason: str


def escalation_card(ctx: Context, actor: Actor, connection_id: int, reason: str) -> EscalationCard:
    reason = clean_text(reason, field="reason", label="Reason", max_length=1000)
    with ctx.db.begin() as session:
        c = Connections(session, actor.team_id).get(connection_id)
        runs = session.execute(
            select(
                ExtractionOrder.name,
                ExtractionRun.started_at,
                ExtractionRun.status,
                ExtractionRun.rows,
                ExtractionRun.error,
            )
            .join(ExtractionOrder, ExtractionOrder.id == ExtractionRun.order_id)
            .where(ExtractionRun.connection_id == c.id)
            .order_by(ExtractionRun.started_at.desc(), ExtractionRun.id.desc())
            .limit(5)
        ).all()
        return EscalationCard(
            c.id,
            source_title(ctx, c.source),
            c.business_account_name,
            c.business_account_id,
            c.credentials_status,
            c.credentials_error_message,
            tuple(r.tuple() for r in runs),
            actor.user_id or "connbot",
            reason,
        )


def open_escalation(ctx: Context, team_id: str, connection_id: int) -> tuple[str, str] | None:
    """(channel, thread_ts) of the connection's escalation thread, if there is one."""
    row = _open_escalation(ctx, team_id, connection_id)
    return (row.channel, row.thread_ts) if row is not None and row.thread_ts else None


@dataclass(frozen=True)
class EscalationThread:
    """Where an escalation goes: a thread to continue, or the claim to start one (`thread_ts` None)."""

    id: int
    channel: str
    thread_ts: str | None

    @property
    def is_new(self) -> bool:
        return self.thread_ts is None


# A thread's first message takes one Slack call; a claim older than this was left by a process
# that stopped half-way, and the next escalation takes it over.
STALE_CLAIM = timedelta(seconds=60)
CLAIM_WAIT_SECONDS = 1.5


def claim_escalation(ctx: Context, actor: Actor, connection_id: int, channel: str, reason: str) -> EscalationThread:
    """The connection's escalation thread, or the claim to start it: one thread per connection,
    even when two people escalate at once (a unique open row per connection). While another
    escalation is posting the thread's first message, waits a moment for it."""
    deadline = time.monotonic() + CLAIM_WAIT_SECONDS
    while True:
        row = _open_escalation(ctx, actor.team_id, connection_id)
        if row is not None and row.thread_ts:
            return EscalationThread(row.id, row.channel, row.thread_ts)
        if row is None:
            claimed = _insert_claim(ctx, actor, connection_id, channel, reason)
        elif row.created_at <= ctx.clock.now() - STALE_CLAIM:
            claimed = _take_over_claim(ctx, actor, row, channel, reason)
        else:
            claimed = None
        if claimed is not None:
            return EscalationThread(claimed, channel, None)
        if time.monotonic() > deadline:
            raise Conflict("Another escalation of this connection is being posted right now; try again in a moment.")
        time.sleep(0.05)


def _open_escalation(ctx: Context, team_id: str, connection_id: int) -> Escalation | None:
    with ctx.db.begin() as session:
        row = session.scalars(
            select(Escalation)
            .where(
                Escalation.team_id == team_id, Escalation.connection_id == connection_id, Escalation.closed_at.is_(None)
            )
            .order_by(Escalation.id.desc())
            .limit(1)
        ).first()
        if row is not None:
            session.expunge(row)
        return row


def _insert_claim(ctx: Context, actor: Actor, connection_id: int, channel: str, reason: str) -> int | None:
    try:
        with ctx.db.begin() as session:
            Connections(session, actor.team_id).get(connection_id)
            claim = Escalation(
                team_id=actor.team_id,
                connection_id=connection_id,
                channel=channel,
                thread_ts=None,
                reason=reason,
                created_by=actor.user_id or "connbot",
                created_at=ctx.clock.now(),
            )
            session.add(claim)
            session.flush()
            return claim.id
    except IntegrityError:  # another escalation claimed it first
        return None


def _take_over_claim(ctx: Context, actor: Actor, stale: Escalation, channel: str, reason: str) -> int | None:
    with ctx.db.begin() as session:
        taken = changed_rows(
            session,
            update(Escalation)
            .where(Escalation.id == stale.id, Escalation.thread_ts.is_(None), Escalation.created_at == stale.created_at)
            .values(channel=channel, reason=reason, created_by=actor.user_id or "connbot", created_at=ctx.clock.now()),
        )
    return stale.id if taken else None


def record_escalation(
    ctx: Context, actor: Actor, thread: EscalationThread, connection_id: int, channel: str, ts: str
) -> None:
    """The escalation was posted: as the first message of a claimed thread (its ts recorded), or
    as a reply in the thread."""
    with ctx.db.begin() as session:
        if thread.is_new:
            session.execute(update(Escalation).where(Escalation.id == thread.id).values(channel=channel, thread_ts=ts))
        audit(
            ctx,
            session,
            actor,
            "connection.escalate",
            connection_id=connection_id,
            channel=channel,
            thread="started" if thread.is_new else "continued",
        )


def abandon_escalation(ctx: Context, thread: EscalationThread) -> None:
    """The first message could not be posted: free the claim for the next try."""
    if thread.is_new:
        with ctx.db.begin() as session:
            session.execute(delete(Escalation).where(Escalation.id == thread.id, Escalation.thread_ts.is_(None)))


def require_escalation_channel(ctx: Context, team_id: str) -> str:
    channel = workspace_settings(ctx, team_id).escalation_channel
    if not channel:
        raise InvalidInput(
            "No escalation channel is set for this workspace: an admin chooses one in connbot's App Home, "
            "under Settings."
        )
    return channel
