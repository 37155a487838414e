"""order alerts (failing, stale, silent), "I'm on it", how an alert closed, and a post claim that
holds while the post is in flight

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("kind", sa.String(length=16), nullable=False, server_default="credentials"))
        batch.add_column(sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True))
        batch.add_column(sa.Column("details", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("acknowledged_by", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("resolution", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("post_claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_foreign_key("fk_alerts_order_id_extraction_orders", "extraction_orders", ["order_id"], ["id"])
    # Until now an alert closed either because the credentials were fixed or because the
    # connection was deleted (at the alert's closing time).
    op.execute(
        "UPDATE alerts SET resolution = CASE WHEN EXISTS (SELECT 1 FROM connections c "
        "WHERE c.id = alerts.connection_id AND c.deleted_at = alerts.resolved_at) "
        "THEN 'connection_deleted' ELSE 'fixed' END WHERE resolved_at IS NOT NULL"
    )
    op.drop_index("uq_alerts_one_open", table_name="alerts")
    op.create_index(
        "uq_alerts_one_open",
        "alerts",
        ["connection_id"],
        unique=True,
        sqlite_where=sa.text("resolved_at IS NULL AND kind = 'credentials'"),
        postgresql_where=sa.text("resolved_at IS NULL AND kind = 'credentials'"),
    )
    op.create_index(
        "uq_alerts_one_open_order",
        "alerts",
        ["order_id", "kind"],
        unique=True,
        sqlite_where=sa.text("resolved_at IS NULL AND order_id IS NOT NULL"),
        postgresql_where=sa.text("resolved_at IS NULL AND order_id IS NOT NULL"),
    )
    op.create_index(
        "ix_alerts_open",
        "alerts",
        ["connection_id"],
        sqlite_where=sa.text("resolved_at IS NULL"),
        postgresql_where=sa.text("resolved_at IS NULL"),
    )
    with op.batch_alter_table("extraction_orders") as batch:
        batch.add_column(sa.Column("resumed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("silent_alerts", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column("alerts_checked_run_id", sa.BigInteger(), nullable=True))
    op.create_index("ix_extraction_runs_order_status_started", "extraction_runs", ["order_id", "status", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_extraction_runs_order_status_started", table_name="extraction_runs")
    with op.batch_alter_table("extraction_orders") as batch:
        batch.drop_column("alerts_checked_run_id")
        batch.drop_column("silent_alerts")
        batch.drop_column("resumed_at")
    op.drop_index("ix_alerts_open", table_name="alerts")
    op.drop_index("uq_alerts_one_open_order", table_name="alerts")
    op.drop_index("uq_alerts_one_open", table_name="alerts")
    op.execute("DELETE FROM alerts WHERE kind <> 'credentials'")
    op.create_index(
        "uq_alerts_one_open",
        "alerts",
        ["connection_id"],
        unique=True,
        sqlite_where=sa.text("resolved_at IS NULL"),
        postgresql_where=sa.text("resolved_at IS NULL"),
    )
    with op.batch_alter_table("alerts") as batch:
        batch.drop_constraint("fk_alerts_order_id_extraction_orders", type_="foreignkey")
        batch.drop_column("post_claimed_at")
        batch.drop_column("resolution")
        batch.drop_column("acknowledged_at")
        batch.drop_column("acknowledged_by")
        batch.drop_column("details")
        batch.drop_column("order_id")
        batch.drop_column("kind")
