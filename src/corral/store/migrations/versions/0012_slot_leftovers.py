"""Removed slots whose containers may still run, so that their index waits (issue 14: one container per index).

Why: a slot removed by a scale-down, a move or a deleted stack keeps its container running until the agent has
stopped it; its index must not get a new container on another host before that, also across a server restart.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slot_leftovers",
        sa.Column("slot_id", sa.String(64), primary_key=True),
        sa.Column("environment_id", sa.String(64), nullable=False, index=True),
        sa.Column("stack", sa.String(63), nullable=False),
        sa.Column("service", sa.String(63), nullable=False),
        sa.Column("index", sa.Integer, nullable=False),
        sa.Column("host_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("ip", sa.String(64), nullable=False, server_default=""),
        sa.Column("created_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("slot_leftovers")
