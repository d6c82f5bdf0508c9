"""Fixtures shared by every test: a fresh data directory, a frozen clock, the app, a live server,
and a guard that fails any test trying to reach an address outside this machine."""
from __future__ import annotations

import ipaddress
import os
import socket
import threading
from pathlib import Path

import pytest

from kiosk import create_app, services
from kiosk.clock import FrozenClock


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch):
    """Tests talk to loopback only: a connection anywhere else fails the test at once."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def check(address):
        host = address[0] if isinstance(address, tuple) else None
        if host is None:
            return  # unix socket
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = ipaddress.ip_address(socket.gethostbyname(host))
        if not ip.is_loopback:
            raise AssertionError(f"test tried to reach {address!r}: only loopback is allowed")

    def connect(self, address):
        check(address)
        return real_connect(self, address)

    def connect_ex(self, address):
        check(address)
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required"]


def browser_env() -> dict[str, str]:
    """The environment Chromium runs in. The browser is the citizen's device: it reads the real
    clock, never a time-shifting preload (under faketime Chromium's network stack stalls); pages
    that need the system's time get it through Playwright's clock."""
    return {k: v for k, v in os.environ.items() if k != "LD_PRELOAD" and not k.startswith("FAKETIME")}


@pytest.fixture(scope="session")
def browser():
    """One headless Debian Chromium for the whole run, shared by every folder's browser tests
    (Playwright's sync API allows one instance per process; never a downloaded browser)."""
    from playwright.sync_api import sync_playwright
    assert Path(CHROMIUM).exists(), "Debian's chromium is required at /usr/bin/chromium (./run test installs it)"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, env=browser_env())
        yield chromium
        chromium.close()


@pytest.fixture
def data_dir(tmp_path) -> Path:
    """An empty data directory for one test (owner-only, as `flask --app kiosk check` expects)."""
    path = tmp_path / "data"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture
def clock() -> FrozenClock:
    """Time stands still unless the test moves it."""
    return FrozenClock("2026-11-22T06:00:00Z")


@pytest.fixture
def app_config(data_dir) -> dict:
    """Settings for the test app (tests may change them before `app` is built)."""
    return {"DATA_DIR": str(data_dir), "SECRET_KEY": "test-secret-key", "TICKET_RATE_PER_MIN": 0,
            "INBOX_POLL_S": 1, "PRINTER_URL": "off"}


@pytest.fixture
def app(app_config, clock):
    """The centre app with the demo centre loaded, on a fresh store."""
    application = create_app(app_config, clock=clock)
    with application.app_context():
        services.load_demo_data(application.extensions["kiosk"].centre)
    yield application
    application.extensions["kiosk"].close()


@pytest.fixture
def centre(app):
    """The use cases' collaborators of the test app."""
    return app.extensions["kiosk"].centre


@pytest.fixture
def client(app):
    """Flask's test client."""
    return app.test_client()


class WsgiServer:
    """A WSGI app (central's) served by waitress on a free loopback port, in a background thread."""

    def __init__(self, app, threads: int = 16):
        """Bind at once (so the URL is known) and start serving."""
        from waitress.server import create_server
        self.app = app
        self.server = create_server(app, host="127.0.0.1", port=0, threads=threads, ident="central-test")
        self.port = self.server.effective_port
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self._run, name="wsgi-server", daemon=True)
        self.thread.start()

    def _run(self):
        """Serve until closed."""
        try:
            self.server.run()
        except OSError:
            pass  # the socket was closed by stop()

    def stop(self):
        """Stop accepting, finish the worker threads, and close the connections clients kept
        alive (waitress's close() closes only the listening socket)."""
        self.server.task_dispatcher.shutdown(timeout=5)
        channels = [c for c in list(self.server._map.values()) if c is not self.server]
        self.server.close()
        self.thread.join(timeout=5)
        for channel in channels:
            channel.close()


@pytest.fixture
def live_server(app):
    """The test app behind the kiosk's production server (hypercorn, streams on its event loop)."""
    from kiosk.web.server import ServerThread
    server = ServerThread(app)
    yield server
    server.stop()
