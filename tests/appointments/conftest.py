"""Fixtures for the appointment tests: central on SQLite and PostgreSQL (the sync tests' fixtures,
imported, not copied), ready to book; the screens' browser context that fails a test on any CSP
violation, console or page error (the web tests' fixtures, imported)."""
from __future__ import annotations

import pytest

from tests.appointments.support import make_bookable
from tests.sync.conftest import (backend, central_app, central_url_db, ops, pg_url,  # noqa: F401
                                 server_clock, sqlite_template)
from tests.web.conftest import context, page, watch  # noqa: F401


@pytest.fixture
def bookable(central_app, ops, tmp_path):
    """Central with ERB-01 configured for appointments and its booking key published."""
    make_bookable(ops, central_app, tmp_path)
    return central_app
