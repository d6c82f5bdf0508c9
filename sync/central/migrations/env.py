"""Alembic environment: runs on the connection handed in by `sync.central.db.upgrade`, or on
CENTRAL_DATABASE_URL when the `alembic` command is used directly."""
import os

from alembic import context
from sqlalchemy import create_engine

from sync.central.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    """Emit SQL for CENTRAL_DATABASE_URL without connecting (`alembic upgrade --sql`)."""
    context.configure(url=os.environ["CENTRAL_DATABASE_URL"], target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate over the given connection (or a fresh one)."""
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(os.environ["CENTRAL_DATABASE_URL"])
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
