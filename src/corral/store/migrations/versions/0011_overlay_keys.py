"""Each host's WireGuard public key and listen port, sent by its agent, for the encrypted overlay (issue 13).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("hosts") as batch:
        batch.add_column(sa.Column("overlay_key", sa.String(64), nullable=False, server_default=""))
        batch.add_column(sa.Column("overlay_port", sa.Integer, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("hosts") as batch:
        batch.drop_column("overlay_port")
        batch.drop_column("overlay_key")
