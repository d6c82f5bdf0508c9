"""Who maintains each configuration document: `config` (config-load, which may also remove it) or
`system` (central's own documents such as the receipt trust list and back-office decisions,
which a configuration file must never remove).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: Union[str, Sequence[str], None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Add config_docs.source; existing documents came from configuration files."""
    with op.batch_alter_table("config_docs") as batch:
        batch.add_column(sa.Column("source", sa.String(16), nullable=False, server_default="config"))


def downgrade() -> None:
    """Drop config_docs.source."""
    with op.batch_alter_table("config_docs") as batch:
        batch.drop_column("source")
