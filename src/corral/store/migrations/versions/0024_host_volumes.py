"""Host volumes (issue 17 item 4): each host's engine volumes as its agent reports them, so the volume list, the
stack removal and the scheduler's volume affinity read them from the in-memory state like the host's images.

Revision ID: 0024
Revises: 0023
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("hosts") as batch:
        batch.add_column(sa.Column("volumes", sa.JSON, nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("hosts") as batch:
        batch.drop_column("volumes")
