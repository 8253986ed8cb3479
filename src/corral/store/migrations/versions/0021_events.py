"""Event history (issue 18): the events the server publishes, kept (bounded) so the UI's events page and
`corral events --since` start with what happened before they looked.

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("time", sa.Float, nullable=False),
        sa.Column("environment_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("resource_type", sa.String(32), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("resource_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("data", sa.JSON, nullable=False),
    )
    op.create_index("ix_events_time", "events", ["time"])
    op.create_index("ix_events_environment_id", "events", ["environment_id"])


def downgrade() -> None:
    op.drop_index("ix_events_environment_id", "events")
    op.drop_index("ix_events_time", "events")
    op.drop_table("events")
