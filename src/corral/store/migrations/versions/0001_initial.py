"""Foundation tables: environments, api_keys, registration_tokens, hosts, host_containers.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "environments",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(63), nullable=False, unique=True),
        sa.Column("orchestration", sa.String(32), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "hosts",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "environment_id",
            sa.String(64),
            sa.ForeignKey("environments.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("state_reason", sa.Text, nullable=False),
        sa.Column("driver", sa.String(32), nullable=False),
        sa.Column("driver_options", sa.JSON, nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("facts", sa.JSON, nullable=False),
        sa.Column("last_seen", sa.Float, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("environment_id", "name", name="uq_hosts_environment_name"),
    )
    op.create_table(
        "api_keys",
        sa.Column("access_key", sa.String(64), primary_key=True),
        sa.Column("secret_digest", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("host_id", sa.String(64), sa.ForeignKey("hosts.id", ondelete="CASCADE"), nullable=True, index=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "registration_tokens",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "environment_id",
            sa.String(64),
            sa.ForeignKey("environments.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("secret_digest", sa.String(64), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "host_containers",
        sa.Column("host_id", sa.String(64), sa.ForeignKey("hosts.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("docker_id", sa.String(128), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("image", sa.Text, nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("exit_code", sa.Integer, nullable=True),
        sa.Column("restart_count", sa.Integer, nullable=False),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
    )


def downgrade() -> None:
    for table in ("host_containers", "registration_tokens", "api_keys", "hosts", "environments"):
        op.drop_table(table)
