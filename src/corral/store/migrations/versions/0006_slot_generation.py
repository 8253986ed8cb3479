"""A generation per container slot, so that a rolling upgrade's new container gets a name of its own.

Why: during an in-service upgrade the old container stays (stopped, `retired`) for a rollback while the new one of
the same service index runs beside it; Docker names must differ, so the new one is `STACK-SERVICE-INDEX-uN`.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("container_slots") as batch:
        batch.add_column(sa.Column("generation", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("container_slots") as batch:
        batch.drop_column("generation")
