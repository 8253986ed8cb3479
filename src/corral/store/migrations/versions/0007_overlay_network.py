"""Columns for the managed overlay network (issue 5): per-environment settings, host slices and pair status, and
container addresses and allocated host ports.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("environments") as batch:
        batch.add_column(sa.Column("network", sa.JSON, nullable=False, server_default="{}"))
    with op.batch_alter_table("hosts") as batch:
        batch.add_column(sa.Column("overlay_slice", sa.String(64), nullable=False, server_default=""))
        batch.add_column(sa.Column("connectivity", sa.JSON, nullable=False, server_default="{}"))
    with op.batch_alter_table("container_slots") as batch:
        batch.add_column(sa.Column("ip", sa.String(64), nullable=False, server_default=""))
        batch.add_column(sa.Column("host_ports", sa.JSON, nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("container_slots") as batch:
        batch.drop_column("host_ports")
        batch.drop_column("ip")
    with op.batch_alter_table("hosts") as batch:
        batch.drop_column("connectivity")
        batch.drop_column("overlay_slice")
    with op.batch_alter_table("environments") as batch:
        batch.drop_column("network")
