"""token rotation: an installation's refresh token (encrypted) and when its bot token expires

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 08:30:00
"""

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("installations") as batch:
        batch.add_column(sa.Column("bot_refresh_token", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("bot_token_expires_at", storage.models.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("installations") as batch:
        batch.drop_column("bot_token_expires_at")
        batch.drop_column("bot_refresh_token")
