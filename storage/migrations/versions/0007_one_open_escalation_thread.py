"""one open escalation thread per connection, claimed before its first message is posted

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 20:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Two escalations at once could open two threads before: keep the newest open one.
    op.execute(
        "UPDATE escalations SET closed_at = created_at WHERE closed_at IS NULL AND id < "
        "(SELECT max(e.id) FROM escalations e WHERE e.team_id = escalations.team_id "
        "AND e.connection_id = escalations.connection_id AND e.closed_at IS NULL)"
    )
    with op.batch_alter_table("escalations") as batch:
        batch.alter_column("thread_ts", existing_type=sa.String(length=32), nullable=True)
    op.create_index(
        "uq_escalations_open",
        "escalations",
        ["team_id", "connection_id"],
        unique=True,
        sqlite_where=sa.text("closed_at IS NULL"),
        postgresql_where=sa.text("closed_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_escalations_open", table_name="escalations")
    op.execute("DELETE FROM escalations WHERE thread_ts IS NULL")
    with op.batch_alter_table("escalations") as batch:
        batch.alter_column("thread_ts", existing_type=sa.String(length=32), nullable=False)
