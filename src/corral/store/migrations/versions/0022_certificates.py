"""Environment certificates for load balancers (issue 19 item 3, model/certificates.py): the key sealed with the
data dir's key, the certificate and what it says in clear.

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "certificates",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "environment_id", sa.String(64), sa.ForeignKey("environments.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("cert_pem", sa.Text, nullable=False),
        sa.Column("key_encrypted", sa.Text, nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("sans", sa.Text, nullable=False, server_default=""),
        sa.Column("issuer", sa.Text, nullable=False, server_default=""),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("not_before", sa.Float, nullable=False),
        sa.Column("not_after", sa.Float, nullable=False),
        sa.Column("chain_length", sa.Integer, nullable=False, server_default="1"),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.UniqueConstraint("environment_id", "name", name="uq_certificates_environment_name"),
    )
    op.create_index("ix_certificates_environment_id", "certificates", ["environment_id"])


def downgrade() -> None:
    op.drop_index("ix_certificates_environment_id", table_name="certificates")
    op.drop_table("certificates")
