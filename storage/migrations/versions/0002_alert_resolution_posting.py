"""alert resolution posting

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 13:01:06.645646
"""

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resolution_posted_at", storage.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.alter_column("channel", existing_type=sa.VARCHAR(length=32), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.alter_column("channel", existing_type=sa.VARCHAR(length=32), nullable=False)
        batch_op.drop_column("resolution_posted_at")
