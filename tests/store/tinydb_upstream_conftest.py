"""Fixtures that run TinyDB's released test suite on our storage (installed as that suite's
conftest.py by tests/store/test_tinydb_upstream.py; TinyDB's own conftest is kept beside it as
upstream_conftest.py, and only its `db` fixture is replaced).

Every test's `db` is a KioskDB on a JournalStorage in the test's temporary directory, filled the
way TinyDB's fixture fills it. When the test is done, the store is reopened from disk twice (once
replaying the journal, once from a fresh snapshot) and must hold exactly what memory held: so each
upstream test also checks that everything it did was journaled.
"""
import pytest

from kiosk.store.journal import KioskDB

from .upstream_conftest import storage

__all__ = ["db", "storage"]


def contents(db) -> dict:
    """Every table and document the store holds in memory, as plain data."""
    return {name: {key: dict(doc) for key, doc in table.items()} for name, table in db.storage.tables.items()}


@pytest.fixture(params=["kiosk"])
def db(tmp_path):
    """TinyDB's `db` fixture on our journaled storage, checked against a restart afterwards."""
    directory = tmp_path / "kiosk-store"
    db_ = KioskDB(directory)
    db_.drop_tables()
    db_.insert_multiple({"int": 1, "char": c} for c in "abc")
    yield db_
    held = contents(db_)
    db_.storage.close()
    reopened = KioskDB(directory)
    try:
        assert contents(reopened) == held, "the journal does not hold what memory held"
        reopened.compact()
    finally:
        reopened.close()
    reopened = KioskDB(directory)
    try:
        assert contents(reopened) == held, "the snapshot does not hold what memory held"
    finally:
        reopened.close()
