"""Quotas per environment (issue 14, model/quotas.py): each environment's own limits over the server's defaults.

Existing environments keep `{}`: the `CORRAL_QUOTA_*` defaults apply to them.

Revision ID: 0014
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("environments") as batch:
        batch.add_column(sa.Column("quotas", sa.JSON, nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("environments") as batch:
        batch.drop_column("quotas")
