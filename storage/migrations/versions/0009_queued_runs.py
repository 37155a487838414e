"""queued runs and syncs: the task-queue job behind each, how many times it was started, and
at most one queued or running per order (per connection for syncs)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

ONE_AT_A_TIME = {
    "extraction_runs": ("uq_extraction_runs_one_running", "order_id"),
    "account_sync_runs": ("uq_account_sync_runs_one_running", "connection_id"),
}


def _index(table: str, where: str) -> None:
    name, column = ONE_AT_A_TIME[table]
    op.drop_index(name, table_name=table)
    op.create_index(name, table, [column], unique=True, sqlite_where=sa.text(where), postgresql_where=sa.text(where))


def upgrade() -> None:
    for table in ONE_AT_A_TIME:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("job_id", sa.BigInteger(), nullable=True))
            batch.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        _index(table, "status IN ('queued', 'running')")


def downgrade() -> None:
    for table in ONE_AT_A_TIME:
        op.execute(
            sa.text(f"UPDATE {table} SET status = 'cancelled' WHERE status = 'queued'")  # no worker will run them
        )
        _index(table, "status = 'running'")
        with op.batch_alter_table(table) as batch:
            batch.drop_column("attempts")
            batch.drop_column("job_id")
