"""Environment secrets (issue 17 item 3, model/files.py): the value sealed with the data dir's key.

Revision ID: 0020
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "secrets",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "environment_id", sa.String(64), sa.ForeignKey("environments.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value_encrypted", sa.Text, nullable=False),
        sa.Column("stack", sa.String(255), nullable=False, server_default=""),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.UniqueConstraint("environment_id", "name", name="uq_secrets_environment_name"),
    )
    op.create_index("ix_secrets_environment_id", "secrets", ["environment_id"])


def downgrade() -> None:
    op.drop_index("ix_secrets_environment_id", table_name="secrets")
    op.drop_table("secrets")
