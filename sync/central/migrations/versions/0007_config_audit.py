"""Central's configuration audit: who changed which configuration document of a centre, when and
what (from the configuration pages and from config-load).

Revision ID: 0007_config_audit
Revises: 0006_audit_checkpoints
Create Date: 2026-12-08
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007_config_audit"
down_revision: Union[str, Sequence[str], None] = "0006_audit_checkpoints"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Create config_audit."""
    op.create_table(
        "config_audit",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("centre", sa.String(32), nullable=False),
        sa.Column("tbl", sa.String(63), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("changes", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
    )
    op.create_index("ix_config_audit_centre_at", "config_audit", ["centre", "at"])


def downgrade() -> None:
    """Drop it."""
    op.drop_index("ix_config_audit_centre_at", table_name="config_audit")
    op.drop_table("config_audit")
