"""the business account an alert fired for

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 20:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("business_account_id", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("business_account_name", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("business_account_name")
        batch.drop_column("business_account_id")
