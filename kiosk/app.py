"""The centre app's factory: `flask --app kiosk ...` and the tests both start here."""
from __future__ import annotations

import logging
import os
import secrets
import threading
from pathlib import Path

from flask import Flask, current_app

from kiosk import config as config_mod
from kiosk.clock import SystemClock
from kiosk.events import Broker
from kiosk.security import LoginThrottle, StaffSessions
from kiosk.store import Store
from sync.files import private_dir, write_atomic

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
# An installed wheel carries the top-level templates/ folder as kiosk/templates (setup.py).
TEMPLATES = next((p for p in (Path(__file__).resolve().parent / "templates", ROOT / "templates") if p.is_dir()),
                 ROOT / "templates")


class KioskState:
    """Per-app collaborators. The store opens on first use, so commands that must not take the
    writer's lock (sync, check of a running kiosk) never do."""

    def __init__(self, app: Flask, *, store=None, printer=None, clock=None, sync_status=None):
        """Remember what was injected; build the rest lazily."""
        self.app = app
        self._sync_status = sync_status or agent_status
        self.clock = clock or SystemClock()
        self.events = Broker()
        self.sessions = StaffSessions(app.config, self.clock)
        self.logins = LoginThrottle(self.clock)
        self._store = store
        self._printer = printer
        self._centre = None
        self._lock = threading.Lock()
        self.background: list[threading.Thread] = []
        self.stopping = threading.Event()

    @property
    def centre(self):
        """The use cases' collaborators (opens the store the first time)."""
        if self._centre is None:
            with self._lock:
                if self._centre is None:
                    from kiosk.services import Centre
                    store = self._store or Store(self.app.config["DATA_DIR"], clock=self.clock)
                    if self._printer is None:
                        self._printer = self._make_printer()
                    self._centre = Centre(store=store, clock=self.clock, events=self.events,
                                          config=self.app.config, printer=self._printer)
                    self.apply_inbox()
        return self._centre

    def _make_printer(self):
        """The configured printer behind the slip builder; None when printing is switched off."""
        url = self.app.config["PRINTER_URL"]
        if url == "off":
            return None
        from kiosk.printing import make_printer
        from kiosk.slips import TicketPrinting
        return TicketPrinting(self.app, make_printer(url, self.app.config["DATA_DIR"], clock=self.clock,
                                                     max_pending=self.app.config["PRINT_QUEUE_MAX"]))

    def apply_inbox(self) -> int:
        """Apply configuration the sync agent pulled from central (services, counters, staff...)."""
        from sync.inbox import apply_inbox
        applied = apply_inbox(self._centre.store, self.app.config["DATA_DIR"])
        if applied:
            log.info("applied %d configuration changes from central", applied)
            self.events.publish("queue-changed", {"config": True})
            # a newly pulled trust list is taken (and written where `verify` reads it) at once
            from kiosk import cases
            cases.current_trust_list(self._centre)
        return applied

    def sync_status(self) -> dict | None:
        """The sync job's status for the screens and /healthz (None: sync is not installed here)."""
        try:
            status = self._sync_status(self.app.config["DATA_DIR"])
        except Exception as exc:
            log.exception("sync status failed")
            return {"last_error": str(exc)}
        return None if status is None else dict(status)

    def close(self) -> None:
        """Stop background work and release the store."""
        self.stopping.set()
        for thread in self.background:
            thread.join(timeout=5)
        if self._printer is not None and hasattr(self._printer, "close"):
            self._printer.close()
        if self._centre is not None:
            self._centre.store.close()
            self._centre = None


def agent_status(data_dir: Path) -> dict | None:
    """The sync agent's status (enrolment, last sync, clock offset), or None where the sync
    package is not installed. The app is where the agent and the screens meet: the web layer is
    handed this function and imports nothing of the agent."""
    try:
        from sync.agent import status
    except ImportError:
        return None
    return status(data_dir)


def kiosk() -> KioskState:
    """The current app's KioskState."""
    return current_app.extensions["kiosk"]


def _secret_key(data_dir: Path) -> str:
    """The session/token signing key: generated once per centre machine, kept in the data directory."""
    path = data_dir / "secret.key"
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        private_dir(data_dir)
        key = secrets.token_urlsafe(48)
        write_atomic(path, key.encode("ascii"), mode=0o600)
        return key


def _cookies_and_proxies(app: Flask) -> None:
    """Session cookie flags, and what to believe of a reverse proxy in front of the kiosk."""
    from kiosk.web.auth import KioskSessionInterface
    # Flask defines SESSION_COOKIE_SAMESITE (as None), so setdefault never set it: assign. Strict:
    # no other site ever needs to send a request with a staff member's cookie.
    app.config["SESSION_COOKIE_SAMESITE"] = "Strict"
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.session_interface = KioskSessionInterface()  # Secure whenever the request came over HTTPS
    hops = app.config["TRUSTED_PROXIES"]
    if hops:
        # Only behind that many proxies of our own are X-Forwarded-For/-Proto/-Host true; without
        # one, anybody could claim any address (staff network, login throttling) or HTTPS.
        from werkzeug.middleware.proxy_fix import ProxyFix
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)


def create_app(config: dict | None = None, *, store=None, printer=None, clock=None, sync_status=None) -> Flask:
    """Build the centre app; `config` overrides settings, the keywords inject collaborators (tests);
    `sync_status(data_dir)` is what the screens and /healthz know of the sync job."""
    # instance folder: KIOSK_INSTANCE_PATH, else Flask's choice (instance/ beside the source tree,
    # <prefix>/var/kiosk-instance for an installed package)
    app = Flask("kiosk", root_path=str(ROOT / "kiosk"), template_folder=str(TEMPLATES),
                instance_path=os.environ.get("KIOSK_INSTANCE_PATH") or None)
    settings = config_mod.load(app.instance_path, config)
    if settings["PRINTER_URL"] != "off":
        from hardware import check_shaping, parse_printer_url
        try:
            parse_printer_url(settings["PRINTER_URL"])
        except ValueError as exc:
            raise config_mod.ConfigError(f"PRINTER_URL: {exc}") from None
        check_shaping()  # refuse to start rather than print tickets nobody can read
    app.config.update(settings)
    # a data directory of a newer store format is refused before anything reads or writes it
    from kiosk.store.format import check_version
    check_version(app.config["DATA_DIR"])
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = _secret_key(app.config["DATA_DIR"])
    app.json.ensure_ascii = False
    _cookies_and_proxies(app)
    app.extensions["kiosk"] = KioskState(app, store=store, printer=printer, clock=clock, sync_status=sync_status)

    from kiosk.web import api, errors, health, home
    errors.register(app)
    from kiosk.web import screens; screens.register(app)
    app.register_blueprint(home.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(api.bp)

    from kiosk import cli
    cli.register(app)
    return app


def start_background(app: Flask) -> None:
    """Start the housekeeping thread of a serving kiosk (day close, compaction); tests call it
    explicitly."""
    state: KioskState = app.extensions["kiosk"]

    def housekeeping():
        """Close the service days before today (first pass, then after each midnight), and
        snapshot the store every COMPACT_EVERY commits and after a day close, so start-up replay
        stays short and the snapshot holds the live set only."""
        from kiosk.usecases.days import close_days
        closed_for = None
        while not state.stopping.is_set():
            closed = False
            try:
                today = state.centre.today()
                if today != closed_for:
                    closed_for = today  # a failure is retried after midnight or at the next start
                    closed = bool(close_days(state.centre)["closed"])
            except Exception:
                log.exception("closing the earlier service days failed (nothing is lost: their records stay "
                              "live); `flask --app kiosk check` tells why")
            try:
                storage = state.centre.store.storage
                if closed or storage.seq - storage.snapshot_seq >= app.config["COMPACT_EVERY"]:
                    log.info("compacting the store at commit %d", storage.seq)
                    state.centre.store.compact()
            except Exception:
                log.exception("housekeeping failed")
            state.stopping.wait(10)

    def inbox():
        """Pick up configuration pulled by the sync agent within a few seconds."""
        while not state.stopping.wait(app.config["INBOX_POLL_S"]):
            try:
                state.apply_inbox()
            except Exception:
                log.exception("applying pulled configuration failed")

    for target, name in ((housekeeping, "kiosk-housekeeping"), (inbox, "kiosk-inbox")):
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        state.background.append(thread)
