"""Fixtures for the sync tests: central on SQLite and on PostgreSQL (a database of its own per test
session, dropped at the end), central served over loopback HTTP, enrolled kiosk data directories.

PostgreSQL must be reachable at SYNC_TEST_PG (default 127.0.0.1:5432, user postgres, trust auth):
when it is not, the PostgreSQL half of the suite fails with a message saying so; it never skips.
"""
from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from kiosk.clock import FrozenClock
from kiosk.store import Store
from sync import agent as agent_mod
from sync.central import create_app, db
from sync.central.models import Base
from tests.sync.support import HttpServer, SignedDevice

PG_SERVER = os.environ.get("SYNC_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def pg_url():
    """A fresh, uniquely named PostgreSQL database for this test session, migrated once."""
    name = f"kiosk_sync_{secrets.token_hex(6)}"
    admin = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any failure here means the same thing
        admin.dispose()
        pytest.fail(f"PostgreSQL is required for the sync tests and is not reachable at {PG_SERVER} "
                    f"({exc.__class__.__name__}: {exc}). Start it or set SYNC_TEST_PG.", pytrace=False)
    url = f"{PG_SERVER}/{name}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A migrated SQLite database file, copied for each test (migrating every time is slower)."""
    path = tmp_path_factory.mktemp("central-template") / "central.sqlite3"
    engine = db.make_engine(f"sqlite:///{path}")
    db.upgrade(engine)
    engine.dispose()
    return path


def _truncate(url: str) -> None:
    """Empty every central table of the shared PostgreSQL test database."""
    engine = create_engine(url)
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    """Which database central runs on in this test."""
    return request.param


@pytest.fixture
def central_url_db(backend, request, tmp_path, sqlite_template) -> str:
    """A clean, migrated central database URL for this test."""
    if backend == "sqlite":
        path = tmp_path / "central.sqlite3"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("pg_url")
    _truncate(url)
    return url


@pytest.fixture
def server_clock() -> FrozenClock:
    """Central's clock (the kiosk side gets its own, so skew can be tested)."""
    return FrozenClock("2026-11-22T09:00:00Z")


@pytest.fixture
def central_app(central_url_db, server_clock):
    """The central app on the test database."""
    app = create_app({"CENTRAL_DATABASE_URL": central_url_db, "TESTING": True}, clock=server_clock)
    yield app
    app.extensions["central"].engine.dispose()


@pytest.fixture
def central_server(central_app):
    """Central served over loopback HTTP."""
    server = HttpServer(central_app)
    yield server
    server.stop()


@dataclass
class CentralOps:
    """Operator actions on the test central, through its own command line."""

    app: object

    def cli(self, *args: str, input: str | None = None) -> str:
        """Run `flask --app sync.central ARGS` in-process; fail the test if it fails."""
        result = self.app.test_cli_runner().invoke(args=list(args), input=input)
        assert result.exit_code == 0, result.output + repr(result.exception)
        return result.output

    def add_centre(self, code: str = "ERB-01", name: str = "Erbil public service centre") -> str:
        """Register a centre."""
        self.cli("add-centre", code, name)
        return code

    def code(self, centre: str = "ERB-01", label: str = "kiosk-1") -> str:
        """A one-time enrolment code."""
        return self.cli("enroll", centre, label).splitlines()[0].strip()

    @property
    def engine(self):
        """Central's database engine."""
        return self.app.extensions["central"].engine


@pytest.fixture
def ops(central_app) -> CentralOps:
    """Operator actions on central."""
    return CentralOps(central_app)


@pytest.fixture
def kiosk_clock() -> FrozenClock:
    """The kiosk's clock, set to agree with central's at first."""
    return FrozenClock("2026-11-22T09:00:00Z")


@pytest.fixture
def kiosk_dir(tmp_path) -> Path:
    """An empty kiosk data directory."""
    path = tmp_path / "kiosk"
    path.mkdir()
    return path


@pytest.fixture
def store(kiosk_dir, kiosk_clock):
    """The kiosk's store (the process that owns the data directory)."""
    s = Store(kiosk_dir, clock=kiosk_clock, fsync=False)
    yield s
    s.close()


@pytest.fixture
def enrolled(ops, central_server, kiosk_dir, kiosk_clock, store):
    """A kiosk data directory enrolled at central for centre ERB-01; returns its credential."""
    ops.add_centre()
    return agent_mod.enroll(kiosk_dir, central_server.url, ops.code(), centre="ERB-01", clock=kiosk_clock)


@pytest.fixture
def make_agent(kiosk_dir, kiosk_clock):
    """Build an agent for the kiosk (fast retries, so fault tests stay short)."""
    def build(**kwargs):
        kwargs.setdefault("centre", "ERB-01")
        kwargs.setdefault("clock", kiosk_clock)
        kwargs.setdefault("retry_delay_s", 0.01)
        kwargs.setdefault("timeout", (2, 5))
        return agent_mod.Agent(kiosk_dir, **kwargs)
    return build


@pytest.fixture
def device(central_app, ops, server_clock) -> SignedDevice:
    """A device enrolled at centre ERB-01, signing through the test client."""
    ops.add_centre()
    dev = SignedDevice(central_app.test_client(), server_clock)
    response = dev.enrol(ops.code(), "ERB-01")
    assert response.status_code == 201, response.get_json()
    return dev
