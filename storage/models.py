"""SQLAlchemy models: the system of record. Every row belongs to a Slack team (`team_id`)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Integer primary keys that autoincrement on both SQLite and PostgreSQL.
Id = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC; always returns aware datetimes (SQLite keeps no time zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


class CredentialsStatus(StrEnum):
    ACTIVE = "active"
    ERROR = "error"
    UNKNOWN = "unknown"


class SyncMode(StrEnum):
    ALL = "all"  # new accounts found by a sync are enabled for extraction
    SELECTED = "selected"  # new accounts are added but not enabled


class Connection(Base):
    __tablename__ = "connections"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32), index=True)
    source: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(255))
    business_account_id: Mapped[str] = mapped_column(String(255), default="")
    business_account_name: Mapped[str] = mapped_column(String(255), default="")
    auth_type: Mapped[str] = mapped_column(String(32))
    account_sync_mode: Mapped[str] = mapped_column(String(16), default=SyncMode.ALL)
    # Ciphertext only (Fernet); NULL once the connection is deleted.
    credentials: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Masked form of the credentials in use, for the re-connect form ("ab…1234").
    credentials_hint: Mapped[dict[str, Any]] = mapped_column(default=dict)
    credentials_status: Mapped[str] = mapped_column(String(16), default=CredentialsStatus.UNKNOWN)
    credentials_error_code: Mapped[str | None] = mapped_column(String(128))
    credentials_error_message: Mapped[str | None] = mapped_column(Text)
    credentials_checked_at: Mapped[datetime | None]
    credentials_error_since: Mapped[datetime | None]
    auth_failures: Mapped[int] = mapped_column(Integer, default=0)
    # Kept by each account sync (the only writer of accounts), so that cards and lists read two
    # numbers instead of counting 100,000 rows on every click.
    accounts_total: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    accounts_active: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    alert_channel: Mapped[str | None] = mapped_column(String(32))
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]
    last_authorized_at: Mapped[datetime | None]
    last_authorized_by: Mapped[str | None] = mapped_column(String(32))
    deleted_at: Mapped[datetime | None]
    deleted_by: Mapped[str | None] = mapped_column(String(32))
    # The form that made it (a modal's view id): the same submission delivered twice makes one.
    idempotency_key: Mapped[str | None] = mapped_column(String(128))

    accounts: Mapped[list[Account]] = relationship(back_populates="connection", lazy="raise")

    __table_args__ = (
        Index("ix_connections_team_live", "team_id", "deleted_at"),
        Index("uq_connections_idempotency_key", "idempotency_key", unique=True),
    )

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id"))
    external_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(512))
    currency: Mapped[str] = mapped_column(String(16), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(64), default="ACTIVE")
    active: Mapped[bool] = mapped_column(default=True)
    enabled: Mapped[bool] = mapped_column(default=True)  # enabled for extraction
    added_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    removed_at: Mapped[datetime | None]  # vanished from the source; never hard-deleted

    connection: Mapped[Connection] = relationship(back_populates="accounts", lazy="raise")

    __table_args__ = (
        UniqueConstraint("connection_id", "external_id"),
        Index("ix_accounts_connection_active", "connection_id", "active"),
        # The Accounts tab's and the Extract modal's order, so a page is read from the index
        # instead of sorting every account of the connection.
        Index(
            "ix_accounts_listing",
            "connection_id",
            text("active DESC"),
            text("lower(name)"),
            "id",
            sqlite_where=text("removed_at IS NULL"),
            postgresql_where=text("removed_at IS NULL"),
        ),
    )


class OrderStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    ERROR = "error"


class ExtractionOrder(Base):
    __tablename__ = "extraction_orders"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    template: Mapped[str] = mapped_column(String(128))
    fields: Mapped[list[Any]] = mapped_column(default=list)
    history_days: Mapped[int | None] = mapped_column(Integer)
    load_since: Mapped[date | None] = mapped_column(Date)
    # {"kind": "hourly"|"daily"|"weekly"|"monthly", "every_hours": 6, "at": "06:00", "weekday": 0, "day": 1}
    schedule: Mapped[dict[str, Any]] = mapped_column(default=dict)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    status: Mapped[str] = mapped_column(String(16), default=OrderStatus.ACTIVE)
    error_message: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]
    # The submission that created the order; a double submit finds the same row.
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    deleted_at: Mapped[datetime | None]
    deleted_by: Mapped[str | None] = mapped_column(String(32))
    # The fields an order of a template without a primary key merges on; None: the template's
    # own key (or, without one, each run replaces the connection's rows).
    key_fields: Mapped[list[Any] | None] = mapped_column(JSON)
    # Order alerts (operations/order_health.py): runs before the last resume are not held
    # against the order; "too few rows" alerts may be turned off per order.
    resumed_at: Mapped[datetime | None]
    silent_alerts: Mapped[bool] = mapped_column(default=True, server_default=true())
    # The newest finished run the order alerts have judged: the periodic sweep skips orders
    # with nothing new, and two processes never judge the same run twice.
    alerts_checked_run_id: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        Index("ix_extraction_orders_team", "team_id"),
        # The card's Extraction orders tab: its count and page come from the index, unsorted.
        Index(
            "ix_extraction_orders_listing",
            "connection_id",
            "team_id",
            "created_at",
            "id",
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )


class OrderAccount(Base):
    __tablename__ = "extraction_order_accounts"

    order_id: Mapped[int] = mapped_column(ForeignKey("extraction_orders.id"), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)


class RunStatus(StrEnum):
    QUEUED = "queued"  # waiting for a worker (queue execution only)
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


# A run or sync not finished yet: at most one per order, or per connection.
UNFINISHED = (RunStatus.QUEUED, RunStatus.RUNNING)
_UNFINISHED_SQL = text("status IN ('queued', 'running')")


class ExtractionRun(Base):
    __tablename__ = "extraction_runs"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("extraction_orders.id"))
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id"))
    trigger: Mapped[str] = mapped_column(String(16))  # schedule | created | manual
    triggered_by: Mapped[str | None] = mapped_column(String(32))
    # For scheduled runs: the occurrence; unique so two schedulers cannot run it twice.
    scheduled_for: Mapped[datetime | None]
    range_start: Mapped[date | None] = mapped_column(Date)
    range_end: Mapped[date | None] = mapped_column(Date)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    rows: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.RUNNING)
    error: Mapped[str | None] = mapped_column(Text)
    # The task-queue job carrying it out (queue execution), deferred with this row.
    job_id: Mapped[int | None] = mapped_column(BigInteger)
    # How many times a process started carrying it out: more than one after a worker stopped.
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    __table_args__ = (
        UniqueConstraint("order_id", "scheduled_for"),
        Index("ix_extraction_runs_order_started", "order_id", "started_at"),
        # An order's last success and its failures since then, read by the order alerts.
        Index("ix_extraction_runs_order_status_started", "order_id", "status", "started_at"),
        # At most one run of an order queued or running at a time.
        Index(
            "uq_extraction_runs_one_running",
            "order_id",
            unique=True,
            sqlite_where=_UNFINISHED_SQL,
            postgresql_where=_UNFINISHED_SQL,
        ),
    )


class AccountSyncRun(Base):
    __tablename__ = "account_sync_runs"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id"))
    trigger: Mapped[str] = mapped_column(String(16))  # schedule | manual | connect | reconnect
    triggered_by: Mapped[str | None] = mapped_column(String(32))
    scheduled_for: Mapped[datetime | None]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.RUNNING)
    accounts_read: Mapped[int] = mapped_column(Integer, default=0)
    added: Mapped[int] = mapped_column(Integer, default=0)
    removed: Mapped[int] = mapped_column(Integer, default=0)
    changed: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    job_id: Mapped[int | None] = mapped_column(BigInteger)  # as ExtractionRun's
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    __table_args__ = (
        UniqueConstraint("connection_id", "scheduled_for"),
        Index("ix_account_sync_runs_connection_started", "connection_id", "started_at"),
        Index(
            "uq_account_sync_runs_one_running",
            "connection_id",
            unique=True,
            sqlite_where=_UNFINISHED_SQL,
            postgresql_where=_UNFINISHED_SQL,
        ),
    )


class AuditEvent(Base):
    """Who did what, refusals included. Never deleted with a connection."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime]
    user_id: Mapped[str | None] = mapped_column(String(32))  # None: the system (scheduler)
    action: Mapped[str] = mapped_column(String(64))
    connection_id: Mapped[int | None] = mapped_column(BigInteger)  # no FK: outlives the row's meaning
    order_id: Mapped[int | None] = mapped_column(BigInteger)
    outcome: Mapped[str] = mapped_column(String(16))  # ok | refused | failed
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)

    __table_args__ = (
        Index("ix_audit_events_team_at", "team_id", "at"),
        Index("ix_audit_events_connection_at", "connection_id", "at"),
    )


class AlertKind(StrEnum):
    CREDENTIALS = "credentials"  # of a connection
    FAILING = "failing"  # of an order: its runs failed several times in a row
    STALE = "stale"  # of an order: no successful run for two schedule intervals
    SILENT = "silent"  # of an order: a run succeeded with far fewer rows than usual


ORDER_ALERT_KINDS = (AlertKind.FAILING, AlertKind.STALE, AlertKind.SILENT)


class AlertResolution(StrEnum):
    """How an alert closed; only FIXED means the problem went away."""

    FIXED = "fixed"
    CONNECTION_DELETED = "connection_deleted"
    ORDER_DELETED = "order_deleted"
    ORDER_PAUSED = "order_paused"
    MUTED = "muted"  # "too few rows" alerts turned off for the order


class Alert(Base):
    """An alert posted for on-call: one open alert per connection for its credentials, and one
    per order and kind for extraction orders."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id"))
    kind: Mapped[str] = mapped_column(String(16), default=AlertKind.CREDENTIALS, server_default="credentials")
    order_id: Mapped[int | None] = mapped_column(ForeignKey("extraction_orders.id"))
    channel: Mapped[str | None] = mapped_column(String(32))  # chosen when posted
    ts: Mapped[str | None] = mapped_column(String(32))  # None until posted
    # Credentials: the platform's code and message. Failing: where the last error came from
    # (platform | connbot | warehouse) and the run's error.
    error_code: Mapped[str | None] = mapped_column(String(128))
    error_message: Mapped[str | None] = mapped_column(Text)
    # The facts as the alert fired (failures in a row, rows against the usual...), so that its
    # message tells the same story when it is resolved.
    details: Mapped[dict[str, Any] | None] = mapped_column()
    # The business account the credentials broke for: kept when a re-connect switches to another.
    business_account_id: Mapped[str | None] = mapped_column(String(255))
    business_account_name: Mapped[str | None] = mapped_column(String(255))
    opened_at: Mapped[datetime]
    post_attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Set while a process posts it: the claim that keeps two processes from posting it twice.
    post_claimed_at: Mapped[datetime | None]
    last_post_error: Mapped[str | None] = mapped_column(Text)
    last_reminded_at: Mapped[datetime | None]
    # "I'm on it": who, since when (reminders pause for a day).
    acknowledged_by: Mapped[str | None] = mapped_column(String(32))
    acknowledged_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(32))
    resolution: Mapped[str | None] = mapped_column(String(32))  # AlertResolution
    # When the alert message was updated to "Resolved"; NULL while that is still to do.
    resolution_posted_at: Mapped[datetime | None]

    __table_args__ = (
        Index(
            "uq_alerts_one_open",
            "connection_id",
            unique=True,
            sqlite_where=text("resolved_at IS NULL AND kind = 'credentials'"),
            postgresql_where=text("resolved_at IS NULL AND kind = 'credentials'"),
        ),
        Index(
            "uq_alerts_one_open_order",
            "order_id",
            "kind",
            unique=True,
            sqlite_where=text("resolved_at IS NULL AND order_id IS NOT NULL"),
            postgresql_where=text("resolved_at IS NULL AND order_id IS NOT NULL"),
        ),
        # Lists put connections with an open alert first.
        Index(
            "ix_alerts_open",
            "connection_id",
            sqlite_where=text("resolved_at IS NULL"),
            postgresql_where=text("resolved_at IS NULL"),
        ),
    )


class Escalation(Base):
    """A CSM escalation thread; later events of the connection are replied into it."""

    __tablename__ = "escalations"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id"), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    # NULL while its first message is being posted: the row is the claim to start the thread.
    thread_ts: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]

    __table_args__ = (
        # One open thread per connection, even when two people escalate at once.
        Index(
            "uq_escalations_open",
            "team_id",
            "connection_id",
            unique=True,
            sqlite_where=text("closed_at IS NULL"),
            postgresql_where=text("closed_at IS NULL"),
        ),
    )


class JobClaim(Base):
    """A scheduled occurrence claimed before it runs, so no two schedulers run it."""

    __tablename__ = "job_claims"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    job_key: Mapped[str] = mapped_column(String(128))
    scheduled_for: Mapped[datetime]
    claimed_by: Mapped[str] = mapped_column(String(128))
    claimed_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("job_key", "scheduled_for"),)


class OAuthState(Base):
    """One OAuth sign-in offered in a connect / re-connect modal: short-lived and used once.

    The state travels in the sign-in URL; only its SHA-256 is stored, so a copy of the table
    yields no usable link. The PKCE code verifier is stored encrypted (Fernet, like credentials).
    """

    __tablename__ = "oauth_states"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    team_id: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(16))  # new | reconnect
    connection_id: Mapped[int | None] = mapped_column(ForeignKey("connections.id"))  # for reconnect
    # Choices made in the modal before signing in (the URL button submits nothing).
    sync_mode: Mapped[str] = mapped_column(String(16), default=SyncMode.ALL)
    confirm_business: Mapped[bool] = mapped_column(default=False)  # re-connect: switching is fine
    code_verifier: Mapped[bytes | None] = mapped_column(LargeBinary)  # ciphertext; None without PKCE
    # The Slack modal to update when the sign-in ends, and its routing (private_metadata: ids only).
    view_id: Mapped[str | None] = mapped_column(String(64), index=True)
    slack_meta: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class Workspace(Base):
    """A Slack workspace (team) connbot serves: whether it is installed, and the settings its
    admins chose in the App Home. Its connections are kept for a while after an uninstall, so a
    reinstall finds everything back; then they are deleted with their credentials."""

    __tablename__ = "workspaces"

    team_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # Set for a workspace of an Enterprise Grid organization: an org-wide install serves it.
    enterprise_id: Mapped[str | None] = mapped_column(String(32))
    installed_at: Mapped[datetime | None]
    installed_by: Mapped[str | None] = mapped_column(String(32))
    uninstalled_at: Mapped[datetime | None] = mapped_column(index=True)
    # app_uninstalled | tokens_revoked | team_access_revoked
    uninstall_reason: Mapped[str | None] = mapped_column(String(32))
    # NULL until its admins save the settings: the environment's defaults apply until then.
    settings_saved_at: Mapped[datetime | None]
    settings_saved_by: Mapped[str | None] = mapped_column(String(32))
    alert_channel: Mapped[str | None] = mapped_column(String(32))
    escalation_channel: Mapped[str | None] = mapped_column(String(32))
    csm_group: Mapped[str | None] = mapped_column(String(32))
    admins: Mapped[list[Any]] = mapped_column(default=list)  # user and user-group ids
    operators: Mapped[list[Any]] = mapped_column(default=list)


class Installation(Base):
    """The bot token Slack issued when a workspace, or a whole Enterprise Grid organization
    (`is_enterprise_install`, no team), installed connbot. One per workspace or organization:
    a reinstall replaces it."""

    __tablename__ = "installations"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    # "T:<team id>", or "E:<enterprise id>" for an org-wide install: what a reinstall replaces.
    key: Mapped[str] = mapped_column(String(80), unique=True)
    enterprise_id: Mapped[str | None] = mapped_column(String(32), index=True)
    team_id: Mapped[str | None] = mapped_column(String(32))
    is_enterprise_install: Mapped[bool] = mapped_column(default=False)
    app_id: Mapped[str] = mapped_column(String(32))
    bot_id: Mapped[str | None] = mapped_column(String(32))
    bot_user_id: Mapped[str | None] = mapped_column(String(32))
    bot_scopes: Mapped[str] = mapped_column(Text, default="")
    bot_token: Mapped[bytes] = mapped_column(LargeBinary)  # ciphertext (the vault's keys)
    # Token rotation on (Slack's app setting): the bot token expires, and this renews it (ciphertext).
    bot_refresh_token: Mapped[bytes | None] = mapped_column(LargeBinary)
    bot_token_expires_at: Mapped[datetime | None]
    installed_by: Mapped[str | None] = mapped_column(String(32))
    team_name: Mapped[str] = mapped_column(String(255), default="")
    enterprise_name: Mapped[str] = mapped_column(String(255), default="")
    enterprise_url: Mapped[str] = mapped_column(String(255), default="")
    installed_at: Mapped[datetime]


class InstallState(Base):
    """The state of one "Add to Slack" attempt: used once, within minutes. Only its SHA-256 is
    stored, as for the sources' sign-ins (OAuthState)."""

    __tablename__ = "install_states"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class Connector(Base):
    """An Airbyte connector installed for the deployment (not one team's): its source is
    `airbyte:<name>`. A removed one keeps its row (`removed_at`), so that its connections can say
    which package brings it back."""

    __tablename__ = "connectors"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    package: Mapped[str | None] = mapped_column(String(255))  # None: registered with --executable
    version: Mapped[str | None] = mapped_column(String(64))
    executable: Mapped[str] = mapped_column(Text)
    # The SPEC message's `spec` (connectionSpecification, documentationUrl...): no secret.
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)
    installed_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    removed_at: Mapped[datetime | None]


class ConnectionCatalog(Base):
    """The streams a connection's connector discovered (its CATALOG), refreshed by each account
    sync: the connection's extraction templates."""

    __tablename__ = "connection_catalogs"

    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id"), primary_key=True)
    catalog: Mapped[dict[str, Any]] = mapped_column(default=dict)
    streams: Mapped[int] = mapped_column(Integer, default=0)
    discovered_at: Mapped[datetime]


class OrderState(Base):
    """Where an extraction order's next read resumes (an Airbyte STATE), saved only once the
    records before it are committed to the warehouse."""

    __tablename__ = "extraction_order_states"

    order_id: Mapped[int] = mapped_column(ForeignKey("extraction_orders.id"), primary_key=True)
    state: Mapped[list[Any]] = mapped_column(default=list)
    run_id: Mapped[int | None] = mapped_column(BigInteger)  # the run that saved it
    saved_at: Mapped[datetime]
