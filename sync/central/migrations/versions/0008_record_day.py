"""The service day of each record that has one (tickets, feedback ...), indexed per centre and
table, so that reports over a range of days read only those days' records.

Revision ID: 0008
Revises: 0007_config_audit
Create Date: 2026-12-05
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: Union[str, Sequence[str], None] = "0007_config_audit"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Add sync_records.day, fill it from the documents already received, and index it."""
    with op.batch_alter_table("sync_records") as batch:
        batch.add_column(sa.Column("day", sa.String(10), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("UPDATE sync_records SET day = doc ->> 'day' "
                   "WHERE jsonb_typeof(doc) = 'object' AND length(doc ->> 'day') = 10")
    else:
        op.execute("UPDATE sync_records SET day = json_extract(doc, '$.day') "
                   "WHERE json_valid(doc) AND json_type(doc) = 'object' "
                   "AND length(json_extract(doc, '$.day')) = 10")
    op.create_index("ix_sync_records_day", "sync_records", ["centre", "tbl", "day"])


def downgrade() -> None:
    """Drop the index and the column."""
    op.drop_index("ix_sync_records_day", table_name="sync_records")
    with op.batch_alter_table("sync_records") as batch:
        batch.drop_column("day")
