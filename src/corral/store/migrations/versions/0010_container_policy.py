"""The dangerous container settings each environment allows (issue 13, model/policy.py).

Existing environments become locked (allow nothing), like new ones: running stacks keep running, and the next
`corral up` with a dangerous field names the setting to allow.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("environments") as batch:
        batch.add_column(sa.Column("allow", sa.JSON, nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("environments") as batch:
        batch.drop_column("allow")
