"""Engines and migrations for central: SQLite (a file, no set-up) or PostgreSQL (production)."""
from __future__ import annotations

import logging
import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, make_url, text

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
_MIGRATION_LOCK = 0x6B696F736B  # pg_advisory_xact_lock key: one migrator at a time


def make_engine(url: str, **kwargs) -> Engine:
    """An engine for `url`; SQLite gets WAL, full fsync and eager write locks."""
    if url.startswith("sqlite"):
        _owner_only_sqlite(url)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        _tune_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL (None for an in-memory database or another backend)."""
    parsed = make_url(url)
    if not parsed.get_backend_name() == "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _owner_only_sqlite(url: str) -> None:
    """Create a new SQLite file as 0600 before SQLite does (it would use 0644): it holds operator
    password hashes and every centre's records. SQLite gives its -wal and -shm files the mode of
    the database file. An existing file keeps its mode (`flask --app sync.central check`)."""
    path = sqlite_path(url)
    if path is None or path.exists():
        return
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def _tune_sqlite(engine: Engine) -> None:
    """Take the write lock at BEGIN (BEGIN IMMEDIATE): two pushes racing on one device then queue
    instead of failing with SQLITE_BUSY when the reader upgrades to a writer."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        """Let SQLAlchemy, not the driver, emit BEGIN; set durable WAL mode."""
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        """Start every transaction as a writer."""
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def alembic_config() -> Config:
    """Alembic configuration pointing at the migrations shipped in this package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Bring the schema to `revision`; safe when several workers start at once. Returns the revision."""
    config = alembic_config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
        current = MigrationContext.configure(conn).get_current_revision()
    log.info("central schema at revision %s", current)
    return current


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None when never migrated)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    """The newest revision shipped."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
