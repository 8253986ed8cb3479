"""Access control (issue 16): users, environment memberships, scoped API keys and the audit log.

Existing keys keep working unchanged: the new key columns are all nullable.

Revision ID: 0018
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("password_digest", sa.Text, nullable=True),
        sa.Column("source", sa.String(16), nullable=False, server_default="local"),
        sa.Column("admin", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "memberships",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "environment_id", sa.String(64), sa.ForeignKey("environments.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("subject_kind", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("environment_id", "subject_kind", "subject"),
    )
    op.create_index("ix_memberships_environment_id", "memberships", ["environment_id"])
    op.create_index("ix_memberships_subject", "memberships", ["subject"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("auth_kind", sa.String(16), nullable=False),
        sa.Column("access_key", sa.String(64), nullable=False),
        sa.Column("environment_id", sa.String(64), nullable=True),
        sa.Column("action", sa.String(255), nullable=False),
        sa.Column("resource", sa.Text, nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("address", sa.String(64), nullable=False, server_default=""),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_environment_id", "audit_log", ["environment_id"])
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("user_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("environment_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("role", sa.String(16), nullable=True))
        batch.add_column(sa.Column("expires_at", sa.Float, nullable=True))
        batch.add_column(sa.Column("last_used_at", sa.Float, nullable=True))
        batch.add_column(sa.Column("container_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("sealed_secret", sa.Text, nullable=True))
        batch.create_foreign_key("fk_api_keys_user_id", "users", ["user_id"], ["id"], ondelete="CASCADE")
        batch.create_foreign_key(
            "fk_api_keys_environment_id", "environments", ["environment_id"], ["id"], ondelete="CASCADE"
        )
        batch.create_index("ix_api_keys_user_id", ["user_id"])
        batch.create_index("ix_api_keys_environment_id", ["environment_id"])
        batch.create_index("ix_api_keys_container_id", ["container_id"])


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_index("ix_api_keys_container_id")
        batch.drop_index("ix_api_keys_environment_id")
        batch.drop_index("ix_api_keys_user_id")
        batch.drop_constraint("fk_api_keys_environment_id", type_="foreignkey")
        batch.drop_constraint("fk_api_keys_user_id", type_="foreignkey")
        for column in (
            "sealed_secret",
            "container_id",
            "last_used_at",
            "expires_at",
            "role",
            "environment_id",
            "user_id",
        ):
            batch.drop_column(column)
    op.drop_table("audit_log")
    op.drop_table("memberships")
    op.drop_table("users")
