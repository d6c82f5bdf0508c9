"""A centre's name in each of the three languages (`{"ar", "ckb", "en"}`), shown on the operators'
pages and on the public /R page in the reader's language; `centres.name` stays the fallback.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0004"
down_revision: Union[str, Sequence[str], None] = "0003"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    """Add centres.names (empty for existing centres: their one name is shown in every language)."""
    with op.batch_alter_table("centres") as batch:
        batch.add_column(sa.Column("names", Json, nullable=True))


def downgrade() -> None:
    """Drop centres.names."""
    with op.batch_alter_table("centres") as batch:
        batch.drop_column("names")
