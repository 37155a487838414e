"""the listing index of extraction orders

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 16:05:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_extraction_orders_listing",
        "extraction_orders",
        ["connection_id", "team_id", "created_at", "id"],
        unique=False,
        sqlite_where=sa.text("deleted_at IS NULL"),
        postgresql_where=sa.text("deleted_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_extraction_orders_listing", table_name="extraction_orders")
