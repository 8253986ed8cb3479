"""Columns for issue 4's second half: image platforms per host, container health, service upgrades, retired slots.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("hosts") as batch:
        batch.add_column(sa.Column("images", sa.JSON, nullable=False, server_default="{}"))
    with op.batch_alter_table("host_containers") as batch:
        batch.add_column(sa.Column("health", sa.String(32), nullable=False, server_default=""))
        batch.add_column(sa.Column("health_reason", sa.Text, nullable=False, server_default=""))
    with op.batch_alter_table("services") as batch:
        batch.add_column(sa.Column("state", sa.String(32), nullable=False, server_default="active"))
        batch.add_column(sa.Column("state_since", sa.Float, nullable=False, server_default="0"))
        batch.add_column(sa.Column("upgrade", sa.JSON, nullable=False, server_default="{}"))
    with op.batch_alter_table("container_slots") as batch:
        batch.add_column(sa.Column("retired", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("updated_at", sa.Float, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("container_slots") as batch:
        batch.drop_column("updated_at")
        batch.drop_column("retired")
    with op.batch_alter_table("services") as batch:
        batch.drop_column("upgrade")
        batch.drop_column("state_since")
        batch.drop_column("state")
    with op.batch_alter_table("host_containers") as batch:
        batch.drop_column("health_reason")
        batch.drop_column("health")
    with op.batch_alter_table("hosts") as batch:
        batch.drop_column("images")
