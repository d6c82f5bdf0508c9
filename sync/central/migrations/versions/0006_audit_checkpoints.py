"""Audit checkpoints: what central keeps of each audit entry, the kiosks' signed chain heads, and
the gaps, altered entries and forks found in them.

Revision ID: 0006_audit_checkpoints
Revises: 0005
Create Date: 2026-12-05
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0006_audit_checkpoints"
down_revision: Union[str, Sequence[str], None] = "0005"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create audit_entries, audit_checkpoints and audit_flags."""
    op.create_table(
        "audit_entries",
        sa.Column("centre", sa.String(32), primary_key=True),
        sa.Column("n", sa.BigInteger(), primary_key=True),
        sa.Column("entry_id", sa.String(128), nullable=False),
        sa.Column("prev", sa.String(256), nullable=False),
        sa.Column("hash", sa.String(256), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("intact", sa.Boolean(), nullable=False),
        sa.Column("device_id", sa.String(26), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_audit_entries_entry", "audit_entries", ["centre", "entry_id"])
    op.create_table(
        "audit_checkpoints",
        sa.Column("centre", sa.String(32), primary_key=True),
        sa.Column("checkpoint_id", sa.String(128), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("device_id", sa.String(26), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("doc", JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("checked_n", sa.BigInteger(), nullable=True),
        sa.Column("checked_hash", sa.String(256), nullable=True),
    )
    op.create_index("ix_audit_checkpoints_centre_n", "audit_checkpoints", ["centre", "n"])
    op.create_index("ix_audit_checkpoints_status", "audit_checkpoints", ["status", "centre"])
    op.create_table(
        "audit_flags",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("centre", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("device_id", sa.String(26), nullable=True),
        sa.Column("detail", sa.String(1000), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("flagged_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ux_audit_flags_fingerprint", "audit_flags", ["centre", "fingerprint"], unique=True)


def downgrade() -> None:
    """Drop them."""
    op.drop_index("ux_audit_flags_fingerprint", table_name="audit_flags")
    op.drop_table("audit_flags")
    op.drop_index("ix_audit_checkpoints_status", table_name="audit_checkpoints")
    op.drop_index("ix_audit_checkpoints_centre_n", table_name="audit_checkpoints")
    op.drop_table("audit_checkpoints")
    op.drop_index("ix_audit_entries_entry", table_name="audit_entries")
    op.drop_table("audit_entries")
