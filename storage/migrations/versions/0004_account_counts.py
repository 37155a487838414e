"""account counts on connections and the listing index

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 13:49:08.557056
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("connections", schema=None) as batch_op:
        batch_op.add_column(sa.Column("accounts_total", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("accounts_active", sa.Integer(), server_default="0", nullable=False))
    # The counts of connections synced before this revision.
    op.execute(
        "UPDATE connections SET "
        "accounts_total = (SELECT count(*) FROM accounts a WHERE a.connection_id = connections.id AND a.removed_at IS NULL), "
        "accounts_active = (SELECT count(*) FROM accounts a WHERE a.connection_id = connections.id "
        "AND a.removed_at IS NULL AND a.active)"
    )
    op.create_index(
        "ix_accounts_listing",
        "accounts",
        ["connection_id", sa.text("active DESC"), sa.text("lower(name)"), "id"],
        unique=False,
        sqlite_where=sa.text("removed_at IS NULL"),
        postgresql_where=sa.text("removed_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_accounts_listing", table_name="accounts")
    with op.batch_alter_table("connections", schema=None) as batch_op:
        batch_op.drop_column("accounts_active")
        batch_op.drop_column("accounts_total")
