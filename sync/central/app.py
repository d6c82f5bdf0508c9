"""The ministry's central server: `flask --app sync.central ...` and gunicorn start here.

Configuration: defaults, then CENTRAL_* environment variables, then the `config` mapping given to
create_app. CENTRAL_DATABASE_URL selects the database (a SQLite file in the instance folder when
unset; `postgresql+psycopg://...` in production). The schema is migrated at start-up unless
CENTRAL_AUTO_UPGRADE is off (then run `flask --app sync.central db-upgrade` when deploying).
CENTRAL_DEFAULT_LANGUAGE (ar, ckb or en; Arabic by default) is the pages' language for a browser
that states none of the three (sync/central/i18n.py).
"""
from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path

from flask import Flask, abort, jsonify, render_template, request, send_from_directory
from werkzeug.exceptions import HTTPException

from kiosk.domain.queue_report import DEFAULT_TARGET_WAIT_MIN
from sync import protocol
from sync.central import db, i18n
from sync.central.errors import ApiError

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
# The screens' web font (Arabic, Sorani and Latin subsets of Noto Sans): without it a browser may
# fall back to a font that lacks Sorani letters or does not join Arabic script well.
FONTS = ROOT / "kiosk" / "static" / "fonts"
# The screens' templates: the top-level templates/ folder, which an installed wheel carries as
# kiosk/templates (central is installed from the same distribution; it reads the files, imports nothing).
TEMPLATES = next((p for p in (ROOT / "kiosk" / "templates", ROOT / "templates") if p.is_dir()), ROOT / "templates")

DEFAULTS = {
    "CENTRAL_DATABASE_URL": None,       # default: sqlite:///<instance>/central.sqlite3
    "CENTRAL_AUTO_UPGRADE": True,
    "CENTRAL_MAX_SKEW_S": protocol.MAX_SKEW_S,
    "CENTRAL_ENROL_TTL_HOURS": 24,
    # appointments (docs/appointments.md): public requests per address and minute, SMS reminders
    "CENTRAL_BOOKING_RATE_PER_MIN": 10,
    "CENTRAL_SMS_NOTIFIER": "off",      # off | http | package.module:Factory
    "CENTRAL_SMS_URL": "",
    "CENTRAL_SMS_AUTHORIZATION": "",    # the Authorization header the gateway wants, if any
    "CENTRAL_SMS_FORMAT": "json",       # json | form
    "CENTRAL_SMS_TO_FIELD": "to",
    "CENTRAL_SMS_TEXT_FIELD": "text",
    "CENTRAL_SMS_EXTRA": "{}",          # more fields every message carries (a JSON object: sender id ...)
    "CENTRAL_SMS_TIMEOUT_S": 10,
    "CENTRAL_DEFAULT_LANGUAGE": "ar",
    # the national dashboard (docs/central.md): a centre with no sync for longer stands out, and the
    # target wait of a service that sets none
    "CENTRAL_STALE_HOURS": 6,
    "CENTRAL_TARGET_WAIT_MIN": DEFAULT_TARGET_WAIT_MIN,
    "MAX_CONTENT_LENGTH": protocol.MAX_BODY_BYTES,
}

CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; font-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")


class SystemClock:
    """The server's clock (UTC). Central does not import the kiosk package (kiosk.clock would pull
    in the whole centre app), so it keeps this four-line clock of its own."""

    def now(self) -> dt.datetime:
        """Current time as an aware UTC datetime."""
        return dt.datetime.now(dt.timezone.utc)


class Central:
    """Per-app collaborators: the database engine, the clock, the settings the API needs."""

    def __init__(self, engine, clock, max_skew_s: int):
        """Keep the collaborators."""
        self.engine = engine
        self.clock = clock
        self.max_skew_s = max_skew_s


def _from_environ(config: dict, environ) -> None:
    """Apply CENTRAL_* environment variables, converting and checking their values."""
    for name, default in DEFAULTS.items():
        if name not in environ or not name.startswith("CENTRAL_"):
            continue
        raw = environ[name]
        if isinstance(default, bool):
            if raw.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(f"{name} must be true or false, got {raw!r}")
            config[name] = raw.lower() in ("1", "true", "yes", "on")
        elif isinstance(default, int):
            try:
                config[name] = int(raw)
            except ValueError:
                raise ValueError(f"{name} must be a whole number, got {raw!r}") from None
        else:
            config[name] = raw


def create_app(config: dict | None = None, *, clock=None, engine=None) -> Flask:
    """Build the central app; `config` overrides settings, `clock`/`engine` are injected by tests."""
    app = Flask("sync.central", root_path=str(Path(__file__).parent),
                template_folder=str(TEMPLATES), static_folder="static",
                instance_path=os.environ.get("CENTRAL_INSTANCE_PATH") or None)
    app.config.update(DEFAULTS)
    _from_environ(app.config, os.environ)
    app.config.update(config or {})
    app.json.ensure_ascii = False
    url = app.config["CENTRAL_DATABASE_URL"]
    if not url and engine is None:
        Path(app.instance_path).mkdir(mode=0o700, parents=True, exist_ok=True)
        url = f"sqlite:///{Path(app.instance_path) / 'central.sqlite3'}"
        app.config["CENTRAL_DATABASE_URL"] = url
    engine = engine or db.make_engine(url)
    if app.config["CENTRAL_AUTO_UPGRADE"]:
        db.upgrade(engine)
    app.extensions["central"] = Central(engine, clock or SystemClock(), int(app.config["CENTRAL_MAX_SKEW_S"]))
    i18n.register(app)

    from sync.central import api, cli, views
    from sync.central.openapi import SPEC

    @app.get("/api/v1/openapi.json")
    def openapi():
        """The OpenAPI 3.1 description of central's sync API and public receipt endpoints."""
        return jsonify(SPEC)

    @app.get("/fonts/<name>")
    def font(name: str):
        """The pages' web font files (public, like the stylesheet that names them)."""
        if not (name.startswith("KioskSans-") and name.endswith(".woff2")):
            abort(404)
        return send_from_directory(FONTS, name, max_age=86400)

    app.register_blueprint(api.bp)
    app.register_blueprint(views.bp)
    cli.register(app)
    from sync.central import receipts; receipts.register(app)
    from sync.central import appointments; appointments.register(app)
    from sync.central import queue_report; queue_report.register(app)
    from sync.central import config_pages; config_pages.register(app)
    from sync.central import dashboard; dashboard.register(app)
    _register_errors(app)

    @app.after_request
    def _security_headers(response):
        """Strict CSP (no inline script or style) and the usual hardening headers."""
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        return response

    return app


def _is_api() -> bool:
    """True for requests to the sync API and the public JSON API (they get JSON errors, pages HTML)."""
    return request.path.startswith((protocol.API_PREFIX, "/api/v1/"))


def _register_errors(app: Flask) -> None:
    """Turn every error into the sync API's JSON shape, or an error page for operators."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        """A refusal decided by the sync code."""
        if exc.status >= 500:
            log.error("sync API error %s: %s", exc.code, exc.message)
        return jsonify(exc.body()), exc.status

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        """Werkzeug's errors (404, 405, 413, a client that hung up mid-body ...)."""
        codes = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                 405: "method_not_allowed", 413: "payload_too_large", 415: "unsupported_media_type"}
        code = codes.get(exc.code or 500, "http_error")
        if _is_api():
            message = (f"the body is larger than {app.config['MAX_CONTENT_LENGTH']} bytes"
                       if exc.code == 413 else exc.description or exc.name)
            response = app.make_response((jsonify({"error": {"code": code, "message": message}}), exc.code))
        else:
            response = app.make_response((error_page(exc.code or 500, _detail(exc)), exc.code))
        if exc.code == 405 and getattr(exc, "valid_methods", None):
            response.headers["Allow"] = ", ".join(exc.valid_methods)  # RFC 9110: a 405 names what works
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        """A bug or a database outage: log it, answer 500 (the agent retries later)."""
        log.exception("unexpected error on %s %s", request.method, request.path)
        if _is_api():
            return jsonify({"error": {"code": "internal_error",
                                      "message": "central could not process the request; retry later"}}), 500
        return error_page(500), 500


def _detail(exc: HTTPException) -> str | None:
    """What a page said about its refusal (central's pages pass translated descriptions), or None
    when the exception carries only Werkzeug's stock English text."""
    description = exc.description
    return description if description and description != type(exc).description else None


def error_page(status: int, detail: str | None = None) -> str:
    """An error page in the reader's language."""
    message = i18n.ERROR_TEXTS.get(status) or i18n.ERROR_TEXTS[500]
    return render_template("central/error.html", status=status, message=message, detail=detail)
