"""the idempotency key of a new connection

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 19:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("connections", sa.Column("idempotency_key", sa.String(length=128), nullable=True))
    op.create_index("uq_connections_idempotency_key", "connections", ["idempotency_key"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_connections_idempotency_key", table_name="connections")
    with op.batch_alter_table("connections") as batch:
        batch.drop_column("idempotency_key")
