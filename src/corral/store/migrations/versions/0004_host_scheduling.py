"""Host scheduling switches: deactivated (not schedulable) and evacuating.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("hosts") as batch:
        batch.add_column(sa.Column("schedulable", sa.Boolean, nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column("evacuating", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("hosts") as batch:
        batch.drop_column("evacuating")
        batch.drop_column("schedulable")
