"""Appointments booked at central: the bookings, the count per slot that keeps a slot from being
overbooked under concurrent requests, and the public endpoints' request counts per address.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: Union[str, Sequence[str], None] = "0004"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Create appointments, appointment_slots and rate_limits."""
    op.create_table(
        "appointments",
        sa.Column("code", sa.String(16), primary_key=True),
        sa.Column("centre", sa.String(32), sa.ForeignKey("centres.code"), nullable=False),
        sa.Column("service", sa.String(16), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("lang", sa.String(8), nullable=False),
        sa.Column("phone", sa.String(32), nullable=True),
        sa.Column("qr", sa.Text(), nullable=False),
        sa.Column("booked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reminded_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_appointments_slot", "appointments", ["centre", "service", "start_at"])
    op.create_index("ix_appointments_start_at", "appointments", ["start_at"])
    op.create_table(
        "appointment_slots",
        sa.Column("centre", sa.String(32), primary_key=True),
        sa.Column("service", sa.String(16), primary_key=True),
        sa.Column("start_at", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("booked", sa.Integer(), nullable=False),
    )
    op.create_table(
        "rate_limits",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("window", sa.BigInteger(), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
    )
    op.create_index("ix_rate_limits_window", "rate_limits", ["window"])


def downgrade() -> None:
    """Drop them."""
    op.drop_index("ix_rate_limits_window", table_name="rate_limits")
    op.drop_table("rate_limits")
    op.drop_table("appointment_slots")
    op.drop_index("ix_appointments_start_at", table_name="appointments")
    op.drop_index("ix_appointments_slot", table_name="appointments")
    op.drop_table("appointments")
