"""Extraction orders: create (the four-step set-up), run now, pause, resume, delete."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.errors import Conflict, ConnbotError, InvalidInput, NotAllowed, NotFound, StaleAction
from core.events import ConnectionChanged
from engine import schedules
from engine.catalogs import connection_templates
from engine.context import Context
from engine.executor import cancel_unfinished
from operations.audit import audit
from operations.auth import Actor, Role, authorize
from operations.cards import ConnectionSummary, connection_summary, extract_blocker, read_summary
from operations.validation import clean_text
from sources.base import ExtractionTemplate
from storage.models import Account, AlertKind, AlertResolution, ExtractionOrder, OrderAccount, OrderStatus
from storage.repositories import Accounts, Connections, Orders, close_alerts

MAX_ACCOUNTS_PER_ORDER = 150  # what the set-up modal can carry, ids only
MAX_HISTORY_DAYS = 3650

# An account as step 1 of the set-up lists it: (id, external id, name, added).
AccountChoice = tuple[int, str, str, datetime]


class InactiveAccounts(InvalidInput):
    """Selected accounts that are no longer active (an account sync ran since they were picked)."""

    def __init__(self, account_ids: Sequence[int]):
        super().__init__(
            "Some selected accounts are no longer active.",
            {"accounts": "Some selected accounts are no longer active; go back and select again."},
        )
        self.account_ids = tuple(account_ids)


@dataclass(frozen=True)
class OrderSpec:
    """What the four steps collected."""

    account_ids: tuple[int, ...]
    template: str
    name: str
    fields: tuple[str, ...]
    schedule: dict[str, Any] = field(default_factory=dict)
    timezone: str = "UTC"
    history_days: int | None = 30
    load_since: date | None = None
    # For a template without a primary key: the fields that identify a row. None of them: each
    # run replaces the connection's rows.
    key_fields: tuple[str, ...] = ()


def templates_of(ctx: Context, source_name: str, connection_id: int) -> tuple[ExtractionTemplate, ...]:
    """The templates the connection offers (its connector's streams, or the source's reports)."""
    return connection_templates(ctx, ctx.source(source_name), connection_id)


def template_of(ctx: Context, source_name: str, connection_id: int, template: str) -> ExtractionTemplate:
    for t in templates_of(ctx, source_name, connection_id):
        if t.name == template:
            return t
    raise InvalidInput("Choose an extraction template.", {"template": "Choose one of the templates listed."})


def require_extract_available(ctx: Context, actor: Actor, connection_id: int) -> ConnectionSummary:
    """The seed: Extract only for an active connection with at least one active account."""
    return _available(connection_summary(ctx, actor, connection_id))


def _available(summary: ConnectionSummary) -> ConnectionSummary:
    blocker = extract_blocker(summary)
    if blocker:
        raise StaleAction(f"Extract is unavailable: {blocker}.")
    return summary


def open_setup(ctx: Context, actor: Actor, connection_id: int, *, limit: int) -> tuple[int, list[AccountChoice]]:
    """Extract pressed, in one read: the connection (another team's id is "not found" whatever the
    role), then the role, then whether Extract is still available (an old card is refused with the
    reason), and the first page of step 1: (active accounts, [(id, external id, name, added)])."""
    with ctx.db.read() as session:
        summary = read_summary(ctx, session, actor, connection_id)
        actor.require(Role.OPERATOR, "set up an extraction")
        _available(summary)
        return _active_accounts(session, connection_id, offset=0, limit=limit, search=None)


def check_selection_size(account_ids: Sequence[int]) -> None:
    """The per-order account limit, checked where accounts are picked and again on create."""
    if not account_ids:
        raise InvalidInput("Select at least one account.", {"accounts": "Select at least one account."})
    if len(account_ids) > MAX_ACCOUNTS_PER_ORDER:
        extra = len(account_ids) - MAX_ACCOUNTS_PER_ORDER
        raise InvalidInput(
            "Too many accounts.",
            {
                "accounts": f"An order takes at most {MAX_ACCOUNTS_PER_ORDER} accounts and {len(account_ids):,} are selected: "
                f"untick {extra:,}, and make another order for the rest."
            },
        )


def order_fields(
    template: ExtractionTemplate, chosen: Sequence[str], key_fields: Sequence[str] = ()
) -> tuple[str, ...]:
    """The fields an order extracts: the template's primary key, or the key fields the order chose
    (they cannot be removed), then the chosen ones."""
    return tuple(dict.fromkeys([*template.primary_key, *key_fields, *chosen]))


def validate_spec(ctx: Context, source_name: str, connection_id: int, spec: OrderSpec, today: date) -> OrderSpec:
    """Checks every field; InvalidInput names the field to fix."""
    template = template_of(ctx, source_name, connection_id, spec.template)
    name = clean_text(spec.name, field="name", label="Order name", max_length=255)
    if spec.load_since is None:
        if spec.history_days is None or not 1 <= spec.history_days <= MAX_HISTORY_DAYS:
            raise InvalidInput(
                "Historical depth is out of range.",
                {"history_days": f"Enter a number of days from 1 to {MAX_HISTORY_DAYS}."},
            )
    elif spec.load_since > today:
        raise InvalidInput("The start date is in the future.", {"load_since": "Pick a date today or earlier."})
    elif (today - spec.load_since).days > MAX_HISTORY_DAYS:  # as far back as the deepest history
        earliest = today - timedelta(days=MAX_HISTORY_DAYS)
        raise InvalidInput(
            "The start date is too far back.",
            {
                "load_since": f"Pick a date from {earliest.isoformat()} on: an order loads at most {MAX_HISTORY_DAYS:,} days of history."
            },
        )
    known = {f.name for f in template.fields}
    unknown = [f for f in spec.fields if f not in known]
    if unknown:
        raise InvalidInput("Unknown fields.", {"metrics": f"Not fields of this template: {', '.join(unknown)}."})
    key_fields = tuple(dict.fromkeys(spec.key_fields))
    if key_fields and template.primary_key:
        raise InvalidInput("This template has its own key.", {"key_fields": "This template has its own key."})
    if strangers := [f for f in key_fields if f not in known]:
        raise InvalidInput(
            "Unknown key fields.", {"key_fields": f"Not fields of this template: {', '.join(strangers)}."}
        )
    fields = order_fields(template, spec.fields, key_fields)
    # A template of dimensions only (a stream of text fields) has nothing to choose here.
    if template.metrics and not any(template.field(f).kind == "metric" for f in fields):
        raise InvalidInput("Choose at least one metric.", {"metrics": "Choose at least one metric."})
    schedule = schedules.validate(spec.schedule, spec.timezone)
    check_selection_size(spec.account_ids)
    return OrderSpec(
        tuple(dict.fromkeys(spec.account_ids)),
        template.name,
        name,
        fields,
        schedule,
        spec.timezone,
        None if spec.load_since else spec.history_days,
        spec.load_since,
        key_fields,
    )


def creation_refusal(ctx: Context, actor: Actor, connection_id: int, spec: OrderSpec) -> ConnbotError | None:
    """What Create would answer for this order now, from the current state: its refusal
    (NotAllowed, StaleAction, InvalidInput, InactiveAccounts), or None when it would create it.
    A deleted connection raises NotFound."""
    try:
        _creatable(ctx, actor, connection_id, spec)
    except (NotAllowed, StaleAction, InvalidInput) as refusal:
        return refusal
    return None


def _creatable(ctx: Context, actor: Actor, connection_id: int, spec: OrderSpec) -> OrderSpec:
    """The checks of Create, on the current state: the role, Extract still available, every
    field valid and every account still active. Returns the spec as it would be saved."""
    authorize(ctx, actor, Role.OPERATOR, "set up an extraction", connection_id)
    require_extract_available(ctx, actor, connection_id)
    with ctx.db.begin() as session:
        connection = Connections(session, actor.team_id).get(connection_id)
        spec = validate_spec(ctx, connection.source, connection.id, spec, ctx.clock.now().date())
        accounts = session.scalars(
            select(Account).where(Account.connection_id == connection.id, Account.id.in_(spec.account_ids))
        ).all()
        usable = {a.id for a in accounts if a.active and a.removed_at is None}
        if len(usable) != len(spec.account_ids):
            raise InactiveAccounts([a for a in spec.account_ids if a not in usable])
    return spec


def create_order(
    ctx: Context, actor: Actor, connection_id: int, spec: OrderSpec, *, idempotency_key: str
) -> tuple[int, bool]:
    """Returns (order id, created). The same idempotency key (a double submit) finds the same order."""
    authorize(ctx, actor, Role.OPERATOR, "set up an extraction", connection_id)
    with ctx.db.begin() as session:
        existing = session.scalar(select(ExtractionOrder.id).where(ExtractionOrder.idempotency_key == idempotency_key))
    if existing is not None:
        return existing, False
    spec = _creatable(ctx, actor, connection_id, spec)
    try:
        with ctx.db.begin() as session:
            order = ExtractionOrder(
                team_id=actor.team_id,
                connection_id=connection_id,
                name=spec.name,
                template=spec.template,
                fields=list(spec.fields),
                history_days=spec.history_days,
                load_since=spec.load_since,
                schedule=spec.schedule,
                timezone=spec.timezone,
                status=OrderStatus.ACTIVE,
                created_by=actor.user_id or "system",
                created_at=ctx.clock.now(),
                idempotency_key=idempotency_key,
                key_fields=list(spec.key_fields) or None,
            )
            session.add(order)
            session.flush()
            session.add_all(OrderAccount(order_id=order.id, account_id=a) for a in spec.account_ids)
            audit(
                ctx,
                session,
                actor,
                "order.create",
                connection_id=connection_id,
                order_id=order.id,
                template=spec.template,
                accounts=len(spec.account_ids),
                schedule=spec.schedule,
            )
            order_id = order.id
    except IntegrityError:  # the same submit raced us: it created the order
        with ctx.db.begin() as session:
            found = session.scalar(select(ExtractionOrder.id).where(ExtractionOrder.idempotency_key == idempotency_key))
        if found is None:
            raise
        return found, False
    ctx.events.publish(ConnectionChanged(actor.team_id, connection_id, "order"))
    return order_id, True


def _order(ctx: Context, actor: Actor, connection_id: int, order_id: int) -> ExtractionOrder:
    with ctx.db.read() as session:
        Connections(session, actor.team_id).require(connection_id)
        return Orders(session, actor.team_id).get(order_id, connection_id=connection_id)


def order_name(ctx: Context, actor: Actor, connection_id: int, order_id: int) -> str:
    return _order(ctx, actor, connection_id, order_id).name


def set_paused(ctx: Context, actor: Actor, connection_id: int, order_id: int, paused: bool) -> None:
    authorize(ctx, actor, Role.OPERATOR, "pause or resume an order", connection_id)
    with ctx.db.begin() as session:
        Connections(session, actor.team_id).get(connection_id)
        order = Orders(session, actor.team_id).get(order_id, connection_id=connection_id)
        if paused and order.status == OrderStatus.PAUSED:
            raise Conflict("This order is already paused.")
        if not paused and order.status != OrderStatus.PAUSED:
            raise Conflict("This order is not paused.")
        now = ctx.clock.now()
        order.status = OrderStatus.PAUSED if paused else OrderStatus.ACTIVE
        if paused:  # whoever paused it is dealing with it: its alerts close
            close_alerts(session, at=now, by=actor.user_id, resolution=AlertResolution.ORDER_PAUSED, order_id=order_id)
        else:  # what happened before is not held against it (operations/order_health.py)
            order.resumed_at = now
        audit(
            ctx,
            session,
            actor,
            "order.pause" if paused else "order.resume",
            connection_id=connection_id,
            order_id=order_id,
        )
    ctx.events.publish(ConnectionChanged(actor.team_id, connection_id, "order"))


def set_silent_alerts(ctx: Context, actor: Actor, connection_id: int, order_id: int, enabled: bool) -> None:
    """Turn the order's "too few rows" alerts off (an open one closes) or on again."""
    authorize(ctx, actor, Role.OPERATOR, "change the alerts of an order", connection_id)
    with ctx.db.begin() as session:
        Connections(session, actor.team_id).get(connection_id)
        order = Orders(session, actor.team_id).get(order_id, connection_id=connection_id)
        if order.silent_alerts == enabled:
            raise Conflict(f"Too-few-rows alerts are already {'on' if enabled else 'off'} for this order.")
        order.silent_alerts = enabled
        if not enabled:
            close_alerts(
                session,
                at=ctx.clock.now(),
                by=actor.user_id,
                resolution=AlertResolution.MUTED,
                order_id=order_id,
                kinds=[AlertKind.SILENT],
            )
        audit(
            ctx, session, actor, "order.silent_alerts", connection_id=connection_id, order_id=order_id, enabled=enabled
        )
    ctx.events.publish(ConnectionChanged(actor.team_id, connection_id, "order"))


def delete_order(ctx: Context, actor: Actor, connection_id: int, order_id: int) -> None:
    """Its schedule ends; a queued run is cancelled, one in progress stops at its next batch;
    loaded rows stay."""
    from engine.extraction import ORDER_DELETED

    authorize(ctx, actor, Role.ADMIN, "delete an extraction order", connection_id)
    with ctx.db.begin() as session:
        Connections(session, actor.team_id).get(connection_id)
        order = session.scalars(
            select(ExtractionOrder)
            .where(
                ExtractionOrder.id == order_id,
                ExtractionOrder.team_id == actor.team_id,
                ExtractionOrder.connection_id == connection_id,
            )
            .with_for_update()
        ).first()
        if order is None:
            raise NotFound(f"Extraction order {order_id} no longer exists.")
        if order.deleted_at is not None:
            raise Conflict("This order was already deleted.")
        order.deleted_at, order.deleted_by = ctx.clock.now(), actor.user_id
        cancel_unfinished(ctx, session, order_id=order_id, reason=ORDER_DELETED)
        close_alerts(
            session, at=order.deleted_at, by=actor.user_id, resolution=AlertResolution.ORDER_DELETED, order_id=order_id
        )
        audit(ctx, session, actor, "order.delete", connection_id=connection_id, order_id=order_id)
    ctx.events.publish(ConnectionChanged(actor.team_id, connection_id, "order"))


def request_run(ctx: Context, actor: Actor, connection_id: int, order_id: int) -> int:
    """Run now: claims a run (Conflict when one is running); the caller executes it."""
    from engine.extraction import start_run

    authorize(ctx, actor, Role.OPERATOR, "run an order now", connection_id)
    _order(ctx, actor, connection_id, order_id)
    run_id = start_run(ctx, actor.team_id, order_id, trigger="manual", user_id=actor.user_id)
    with ctx.db.begin() as session:
        audit(ctx, session, actor, "order.run", connection_id=connection_id, order_id=order_id, run_id=run_id)
    return run_id


def start_first_run(ctx: Context, actor: Actor, order_id: int) -> int:
    from engine.extraction import start_run

    return start_run(ctx, actor.team_id, order_id, trigger="created", user_id=actor.user_id)


def active_accounts_page(
    ctx: Context, actor: Actor, connection_id: int, *, offset: int, limit: int, search: str | None
) -> tuple[int, list[AccountChoice]]:
    """Step 1 of the set-up: active accounts, paged in SQL."""
    with ctx.db.read() as session:
        Connections(session, actor.team_id).require(connection_id)
        return _active_accounts(session, connection_id, offset=offset, limit=limit, search=search)


def _active_accounts(
    session: Session, connection_id: int, *, offset: int, limit: int, search: str | None
) -> tuple[int, list[AccountChoice]]:
    repo = Accounts(session, connection_id)
    total = repo.count(search, active_only=True)
    rows = repo.page(offset=offset, limit=limit, search=search, active_only=True)
    return total, [(a.id, a.external_id, a.name, a.added_at) for a in rows]


def still_active(ctx: Context, actor: Actor, connection_id: int, account_ids: Sequence[int]) -> tuple[int, ...]:
    """The ids of a selection that are still active accounts of the connection, in the selection's order."""
    if not account_ids:
        return ()
    with ctx.db.read() as session:
        Connections(session, actor.team_id).require(connection_id)
        active = {
            a.id
            for a in Accounts(session, connection_id).by_ids(list(account_ids))
            if a.active and a.removed_at is None
        }
    return tuple(a for a in account_ids if a in active)


def account_labels(
    ctx: Context, actor: Actor, connection_id: int, account_ids: Sequence[int]
) -> list[tuple[int, str, str]]:
    with ctx.db.read() as session:
        Connections(session, actor.team_id).require(connection_id)
        return [(a.id, a.external_id, a.name) for a in Accounts(session, connection_id).by_ids(list(account_ids))]


def account_timezones(ctx: Context, actor: Actor, connection_id: int, account_ids: Sequence[int]) -> list[str]:
    """The time zones of the selected accounts, for the schedule's time zone choice."""
    with ctx.db.read() as session:
        Connections(session, actor.team_id).require(connection_id)
        return list(
            session.scalars(
                select(Account.timezone)
                .where(Account.connection_id == connection_id, Account.id.in_(list(account_ids)))
                .distinct()
                .limit(50)
            )
        )
