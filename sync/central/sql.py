"""The dialect-specific pieces central needs: INSERT ... ON CONFLICT for SQLite and PostgreSQL."""
from __future__ import annotations

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite


def insert_for(conn: Connection, model):
    """An INSERT for `model` that offers on_conflict_do_nothing/do_update on this connection's dialect."""
    table = getattr(model, "__table__", model)
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise RuntimeError(f"central supports SQLite and PostgreSQL, not {conn.dialect.name}")


def batched(conn: Connection, stmt, rows: list[dict], returning) -> None:
    """Execute an ON CONFLICT statement for many rows in multi-row batches.

    SQLAlchemy 2.1 turns its multi-VALUES batching off for ON CONFLICT without RETURNING on
    PostgreSQL (measured with psycopg2 at about half the speed, one row per statement); with
    RETURNING the rows go as multi-row statements. SQLite's own executemany is already fast.
    """
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        conn.execute(stmt.returning(returning), rows).all()
    else:
        conn.execute(stmt, rows)
