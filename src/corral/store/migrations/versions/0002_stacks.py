"""Stacks, services and container slots.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stacks",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "environment_id",
            sa.String(64),
            sa.ForeignKey("environments.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("files", sa.JSON, nullable=False),
        sa.Column("warnings", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.UniqueConstraint("environment_id", "name", name="uq_stacks_environment_name"),
    )
    op.create_table(
        "services",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "stack_id", sa.String(64), sa.ForeignKey("stacks.id", ondelete="CASCADE"), nullable=False, index=True
        ),
        sa.Column("environment_id", sa.String(64), nullable=False, index=True),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("scale", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.UniqueConstraint("stack_id", "name", name="uq_services_stack_name"),
    )
    op.create_table(
        "container_slots",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("environment_id", sa.String(64), nullable=False, index=True),
        sa.Column(
            "stack_id", sa.String(64), sa.ForeignKey("stacks.id", ondelete="CASCADE"), nullable=False, index=True
        ),
        sa.Column(
            "service_id", sa.String(64), sa.ForeignKey("services.id", ondelete="CASCADE"), nullable=False, index=True
        ),
        sa.Column("stack", sa.String(63), nullable=False),
        sa.Column("service", sa.String(63), nullable=False),
        sa.Column("index", sa.Integer, nullable=False),
        sa.Column("host_id", sa.String(64), nullable=False, index=True),
        sa.Column("config_hash", sa.String(64), nullable=False),
        sa.Column("running", sa.Boolean, nullable=False),
        sa.Column("start_requested_at", sa.Float, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    for table in ("container_slots", "services", "stacks"):
        op.drop_table(table)
