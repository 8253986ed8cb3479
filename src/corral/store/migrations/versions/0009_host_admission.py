"""Host admission: registration tokens expire, count their uses and can be revoked; environments may require
approval of new hosts (issue 13).

Tokens that existed before keep working as they did: no expiry, unlimited uses.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("registration_tokens") as batch:
        batch.add_column(sa.Column("expires_at", sa.Float, nullable=True))
        batch.add_column(sa.Column("max_uses", sa.Integer, nullable=True))
        batch.add_column(sa.Column("uses", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("revoked_at", sa.Float, nullable=True))
    with op.batch_alter_table("environments") as batch:
        batch.add_column(sa.Column("require_approval", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("environments") as batch:
        batch.drop_column("require_approval")
    with op.batch_alter_table("registration_tokens") as batch:
        batch.drop_column("revoked_at")
        batch.drop_column("uses")
        batch.drop_column("max_uses")
        batch.drop_column("expires_at")
