"""Airbyte connectors: the installed connectors, each connection's discovered catalog, each
order's saved state, and the key fields an order may choose

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 02:00:00
"""

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "connectors",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("package", sa.String(length=255), nullable=True),
        sa.Column("version", sa.String(length=64), nullable=True),
        sa.Column("executable", sa.Text(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("installed_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("removed_at", storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connectors")),
        sa.UniqueConstraint("name", name=op.f("uq_connectors_name")),
    )
    op.create_table(
        "connection_catalogs",
        sa.Column("connection_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("catalog", sa.JSON(), nullable=False),
        sa.Column("streams", sa.Integer(), nullable=False),
        sa.Column("discovered_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"], ["connections.id"], name=op.f("fk_connection_catalogs_connection_id_connections")
        ),
        sa.PrimaryKeyConstraint("connection_id", name=op.f("pk_connection_catalogs")),
    )
    op.create_table(
        "extraction_order_states",
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=True),
        sa.Column("saved_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["extraction_orders.id"], name=op.f("fk_extraction_order_states_order_id_extraction_orders")
        ),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_extraction_order_states")),
    )
    op.add_column("extraction_orders", sa.Column("key_fields", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("extraction_orders") as batch:
        batch.drop_column("key_fields")
    op.drop_table("extraction_order_states")
    op.drop_table("connection_catalogs")
    op.drop_table("connectors")
