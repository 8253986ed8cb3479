"""Catalog sources, private registry credentials, and where a stack came from (issue 6).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("stacks") as batch:
        batch.add_column(sa.Column("catalog", sa.JSON, nullable=False, server_default="{}"))
    op.create_table(
        "catalogs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("environment_id", sa.String(64), nullable=False, server_default=""),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("url", sa.Text, nullable=False, server_default=""),
        sa.Column("branch", sa.String(255), nullable=False, server_default=""),
        sa.Column("commit", sa.String(64), nullable=False, server_default=""),
        sa.Column("refreshed_at", sa.Float, nullable=False, server_default="0"),
        sa.Column("error", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("environment_id", "name", name="uq_catalogs_environment_name"),
    )
    op.create_table(
        "registries",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "environment_id",
            sa.String(64),
            sa.ForeignKey("environments.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("server", sa.String(255), nullable=False),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("password_encrypted", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("environment_id", "server", name="uq_registries_environment_server"),
    )


def downgrade() -> None:
    op.drop_table("registries")
    op.drop_table("catalogs")
    with op.batch_alter_table("stacks") as batch:
        batch.drop_column("catalog")
