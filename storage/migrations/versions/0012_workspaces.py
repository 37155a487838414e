"""workspaces (installed or not, their settings), their Slack installations (encrypted bot
tokens) and the states of "Add to Slack" attempts

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 10:00:00
"""

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_WHEN = storage.models.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "workspaces",
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("enterprise_id", sa.String(length=32), nullable=True),
        sa.Column("installed_at", _WHEN, nullable=True),
        sa.Column("installed_by", sa.String(length=32), nullable=True),
        sa.Column("uninstalled_at", _WHEN, nullable=True),
        sa.Column("uninstall_reason", sa.String(length=32), nullable=True),
        sa.Column("settings_saved_at", _WHEN, nullable=True),
        sa.Column("settings_saved_by", sa.String(length=32), nullable=True),
        sa.Column("alert_channel", sa.String(length=32), nullable=True),
        sa.Column("escalation_channel", sa.String(length=32), nullable=True),
        sa.Column("csm_group", sa.String(length=32), nullable=True),
        sa.Column("admins", sa.JSON(), nullable=False),
        sa.Column("operators", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("team_id", name=op.f("pk_workspaces")),
    )
    op.create_index(op.f("ix_workspaces_uninstalled_at"), "workspaces", ["uninstalled_at"], unique=False)
    op.create_table(
        "installations",
        sa.Column("id", _ID, nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("enterprise_id", sa.String(length=32), nullable=True),
        sa.Column("team_id", sa.String(length=32), nullable=True),
        sa.Column("is_enterprise_install", sa.Boolean(), nullable=False),
        sa.Column("app_id", sa.String(length=32), nullable=False),
        sa.Column("bot_id", sa.String(length=32), nullable=True),
        sa.Column("bot_user_id", sa.String(length=32), nullable=True),
        sa.Column("bot_scopes", sa.Text(), nullable=False),
        sa.Column("bot_token", sa.LargeBinary(), nullable=False),
        sa.Column("installed_by", sa.String(length=32), nullable=True),
        sa.Column("team_name", sa.String(length=255), nullable=False),
        sa.Column("enterprise_name", sa.String(length=255), nullable=False),
        sa.Column("enterprise_url", sa.String(length=255), nullable=False),
        sa.Column("installed_at", _WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_installations")),
        sa.UniqueConstraint("key", name=op.f("uq_installations_key")),
    )
    op.create_index(op.f("ix_installations_enterprise_id"), "installations", ["enterprise_id"], unique=False)
    op.create_table(
        "install_states",
        sa.Column("id", _ID, nullable=False),
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("expires_at", _WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_install_states")),
        sa.UniqueConstraint("state_hash", name=op.f("uq_install_states_state_hash")),
    )


def downgrade() -> None:
    op.drop_table("install_states")
    op.drop_index(op.f("ix_installations_enterprise_id"), table_name="installations")
    op.drop_table("installations")
    op.drop_index(op.f("ix_workspaces_uninstalled_at"), table_name="workspaces")
    op.drop_table("workspaces")
