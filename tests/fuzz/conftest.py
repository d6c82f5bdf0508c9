"""The fuzz tests use the sync tests' central fixtures (both databases, an enrolled device)."""
from tests.sync.conftest import (backend, central_app, central_url_db, device, ops, pg_url,  # noqa: F401
                                 server_clock, sqlite_template)
