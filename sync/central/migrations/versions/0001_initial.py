"""Initial schema: centres, devices and their cursors, enrolments, nonces, synced records with the
ticket-event projection, quarantine, inbound batches, configuration documents and change feed,
operators.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from sync.central.models import UTCDateTime

revision: str = "0001"
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create every table."""
    op.create_table(
        "centres",
        sa.Column("code", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "devices",
        sa.Column("device_id", sa.String(26), primary_key=True),
        sa.Column("centre", sa.String(32), sa.ForeignKey("centres.code"), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("public_key", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("enrolled_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.Column("last_seen_at", UTCDateTime(), nullable=True),
        sa.Column("last_push_at", UTCDateTime(), nullable=True),
        sa.Column("last_pull_at", UTCDateTime(), nullable=True),
        sa.Column("clock_offset_s", sa.Float(), nullable=True),
        sa.Column("head_seq", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_devices_centre", "devices", ["centre"])
    op.create_table(
        "device_cursors",
        sa.Column("device_id", sa.String(26), sa.ForeignKey("devices.device_id"), primary_key=True),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_hlc", sa.String(40), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "enrolments",
        sa.Column("code_hash", sa.String(64), primary_key=True),
        sa.Column("centre", sa.String(32), sa.ForeignKey("centres.code"), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.Column("device_id", sa.String(26), nullable=True),
    )
    op.create_table(
        "sync_nonces",
        sa.Column("device_id", sa.String(26), primary_key=True),
        sa.Column("nonce", sa.String(32), primary_key=True),
        sa.Column("seen_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_sync_nonces_seen_at", "sync_nonces", ["seen_at"])
    op.create_table(
        "sync_records",
        sa.Column("centre", sa.String(32), primary_key=True),
        sa.Column("tbl", sa.String(63), primary_key=True),
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("device_id", sa.String(26), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hlc", sa.String(40), nullable=False),
        sa.Column("doc", Json, nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_sync_records_changed", "sync_records", ["centre", "tbl", "updated_at"])
    op.create_table(
        "ticket_events",
        sa.Column("ticket_id", sa.String(128), primary_key=True),
        sa.Column("idx", sa.Integer(), primary_key=True),
        sa.Column("centre", sa.String(32), nullable=False),
        sa.Column("device_id", sa.String(26), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("counter", sa.String(64), nullable=True),
        sa.Column("by", sa.String(128), nullable=True),
        sa.Column("event", Json, nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_ticket_events_centre_at", "ticket_events", ["centre", "at"])
    op.create_table(
        "sync_quarantine",
        sa.Column("device_id", sa.String(26), primary_key=True),
        sa.Column("seq", sa.BigInteger(), primary_key=True),
        sa.Column("idx", sa.Integer(), primary_key=True),
        sa.Column("centre", sa.String(32), nullable=False),
        sa.Column("tbl", sa.String(63), nullable=True),
        sa.Column("key", sa.String(128), nullable=True),
        sa.Column("reason", sa.String(400), nullable=False),
        sa.Column("change", sa.Text(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_sync_quarantine_centre", "sync_quarantine", ["centre"])
    op.create_table(
        "sync_batches",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("device_id", sa.String(26), nullable=False),
        sa.Column("from_seq", sa.BigInteger(), nullable=False),
        sa.Column("to_seq", sa.BigInteger(), nullable=False),
        sa.Column("applied", sa.Integer(), nullable=False),
        sa.Column("quarantined", sa.Integer(), nullable=False),
        sa.Column("body_sha256", sa.String(64), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_sync_batches_device_id", "sync_batches", ["device_id"])
    op.create_table(
        "config_docs",
        sa.Column("centre", sa.String(32), sa.ForeignKey("centres.code"), primary_key=True),
        sa.Column("tbl", sa.String(63), primary_key=True),
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("doc", Json, nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "config_changes",
        sa.Column("seq", BigId, primary_key=True, autoincrement=True),
        sa.Column("centre", sa.String(32), nullable=False),
        sa.Column("tbl", sa.String(63), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("op", sa.String(8), nullable=False),
        sa.Column("doc", Json, nullable=True),
        sa.Column("changed_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_config_changes_centre_seq", "config_changes", ["centre", "seq"])
    op.create_table(
        "operators",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    """Drop every table (loses all synced data: only for development databases)."""
    for name in ("operators", "config_changes", "config_docs", "sync_batches", "sync_quarantine",
                 "ticket_events", "sync_records", "sync_nonces", "enrolments", "device_cursors",
                 "devices", "centres"):
        op.drop_table(name)
