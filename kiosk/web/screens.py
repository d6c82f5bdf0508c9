"""What every screen shares: languages (Flask-Babel), security headers and CSRF, template filters,
static files, and the screens' blueprints. `register(app)` installs all of it on the centre app.

Decisions:
- The language lives in the session (the citizen's or the staff member's choice); `ar` means the
  Babel locale `ar_IQ` (Iraqi month names), `ckb` is Central Kurdish. Babel never converts digits,
  so the `digits` filter does.
- Strict CSP (no inline script or style, so htmx runs with the hardened config in base.html).
- CSRF: one random token per session, sent by htmx as `X-CSRF-Token` and by plain forms as the
  `csrf_token` field. It lives as long as the session (a console stays open a whole shift) and is
  replaced at login. The JSON API uses bearer tokens, not cookies, so it needs no CSRF token.
"""
from __future__ import annotations

import gzip
import hashlib
import hmac
import ipaddress
import logging
import math
import mimetypes
import os
import secrets
import threading
from pathlib import Path
from zoneinfo import ZoneInfo

from flask import Blueprint, Flask, Response, current_app, g, request, send_from_directory, session, url_for
from flask_babel import Babel, force_locale, get_locale, gettext, lazy_gettext, ngettext
from markupsafe import Markup
from werkzeug.exceptions import NotFound as HTTPNotFound
from werkzeug.security import safe_join

from kiosk.clock import parse_iso
from kiosk.domain.errors import KioskError
from kiosk.i18n import locales
from kiosk.i18n.locales import LOCALES, arabic_indic, locale_info
from kiosk.i18n.locales import digits as lang_digits

log = logging.getLogger(__name__)

I18N_DIR = Path(__file__).resolve().parent.parent / "i18n"

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; "
       "media-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
# Only features Chromium knows: an unknown one ("bluetooth") is reported on every page's console.
PERMISSIONS = ("camera=(), microphone=(), geolocation=(), payment=(), usb=(), serial=(), "
               "interest-cohort=(), autoplay=(self), fullscreen=(self)")
HTMX_CONFIG = ('{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,'
               '"selfRequestsOnly":true,"historyCacheSize":0,"historyRestoreAsHxRequest":false,'
               '"refreshOnHistoryMiss":true,"historyEnabled":false,"defaultSettleDelay":0}')
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
COMPRESSIBLE = (".js", ".css", ".svg", ".json", ".txt", ".html")


class CsrfFailed(KioskError):
    """A state-changing request without this session's CSRF token."""

    code, status = "csrf_failed", 400


# -- languages -------------------------------------------------------------------------------------

def current_lang() -> str:
    """The language of this request: one a view chose for it (`g.lang`, e.g. a followed ticket's),
    else the session's choice if configured, else the centre's default."""
    config = current_app.config
    lang = g.get("lang") or session.get("lang")
    return lang if lang in config["LANGUAGES"] else config["DEFAULT_LANGUAGE"]


def select_locale() -> str:
    """Flask-Babel's locale selector."""
    return LOCALES[current_lang()]


def digits(value, lang: str | None = None):
    """Digits in the numbering system of `lang`, else of the request's locale; keeps Markup safe."""
    if lang:
        return lang_digits(value, lang)
    return arabic_indic(value) if get_locale().default_numbering_system == "arab" else value


def bdi(value) -> Markup:
    """A left-to-right token (ticket number, code) isolated inside right-to-left text."""
    return Markup('<bdi dir="ltr">%s</bdi>') % value


def minutes(seconds) -> str:
    """A duration as whole minutes in words of the current language ("12 minutes"), rounded up."""
    n = max(0, math.ceil((seconds or 0) / 60))
    return digits(ngettext("%(num)d minute", "%(num)d minutes", n))


def _moment(value):
    """An ISO UTC time (or a datetime) as a datetime."""
    return parse_iso(value) if isinstance(value, str) else value


def when(value, weekday: bool = False) -> str:
    """An ISO UTC time as the centre's local date (with its weekday if asked) and time, in the
    page's language and digits."""
    if not value:
        return "–"
    return locales.format_datetime(_moment(value), current_lang(), _centre_tz(), weekday=weekday)


def day(value) -> str:
    """An ISO UTC time as the centre's local date only (a due date has no time of day)."""
    if not value:
        return "–"
    return locales.format_date(_moment(value), current_lang(), _centre_tz())


def number(value) -> str:
    """A whole number with the page language's grouping and digits (fees)."""
    return locales.format_number(int(value or 0), current_lang())


def _centre_tz() -> ZoneInfo:
    """The centre's time zone."""
    return ZoneInfo(current_app.config["TIMEZONE"])


def lname(names: dict | None, lang: str | None = None) -> str:
    """A configured name (service, counter, priority class) in the current language, else any."""
    names = names or {}
    lang = lang or current_lang()
    return names.get(lang) or names.get("en") or next(iter(names.values()), "")


def tri(message: str) -> list[dict]:
    """One message in each configured language, for screens that everybody reads (hall display)."""
    out = []
    for lang in current_app.config["LANGUAGES"]:
        with force_locale(LOCALES[lang]):
            out.append({**locale_info(lang), "text": gettext(message)})
    return out


def csrf_field() -> Markup:
    """The hidden CSRF field of a plain form (htmx sends the header as well)."""
    return Markup('<input type="hidden" name="csrf_token" value="%s">') % csrf_token()


def ticket_number(number: str, cls: str = "num") -> Markup:
    """A ticket number as printed (Latin digits, isolated left-to-right), followed by the same
    number in the page language's digits when they differ, as on the ticket and the hall display."""
    out = Markup('<bdi dir="ltr" class="%s">%s</bdi>') % (cls, number)
    local = digits(number)
    if local != number:
        out += Markup(' <bdi dir="ltr" class="num num-local">%s</bdi>') % local
    return out


def tri_spans(items: list[dict]) -> Markup:
    """A `tri()` message as one span per language, each marked with its own lang and dir."""
    return Markup("").join(Markup('<span lang="%s" dir="%s">%s</span>') % (i["html_lang"], i["dir"], i["text"])
                           for i in items)


def alerts(notice=None, error=None) -> Markup:
    """The outcome of an action: a status line, an error line, or nothing."""
    out = Markup("")
    if notice:
        out += Markup('<p class="alert alert-ok" role="status">%s</p>') % notice
    if error:
        out += Markup('<p class="alert alert-error" role="alert">%s</p>') % error
    return out


ERROR_TEXTS = {
    "bad_request": lazy_gettext("The request could not be understood."),
    "csrf_failed": lazy_gettext("This page has expired. Please start again."),
    "unauthorized": lazy_gettext("Please log in."),
    "forbidden": lazy_gettext("You are not allowed to do this."),
    "not_found": lazy_gettext("This page or item does not exist."),
    "method_not_allowed": lazy_gettext("This action is not possible here."),
    "conflict": lazy_gettext("This was changed in the meantime. Please try again."),
    "invalid_transition": lazy_gettext("This is not possible for the ticket in its current state."),
    "already_rated": lazy_gettext("Thank you: this visit has already been rated."),
    "counter_taken": lazy_gettext("Another attendant holds this counter. Choose a free counter."),
    "counter_not_open": lazy_gettext("Open the counter before calling tickets."),
    "not_your_ticket": lazy_gettext("This ticket was called at another counter. Only its attendant or a "
                                    "supervisor can act on it."),
    "outside_staff_network": lazy_gettext("Staff screens cannot be used from this network."),
    "payload_too_large": lazy_gettext("The request is too large."),
    "unsupported_media_type": lazy_gettext("The request has an unsupported format."),
    "rate_limited": lazy_gettext("Too many requests. Please wait a moment."),
    "unknown_service": lazy_gettext("This service does not exist."),
    "validation_failed": lazy_gettext("Some values are not valid."),
    "service_unavailable": lazy_gettext("This service is not taking tickets now. Please ask at the information desk."),
    "storage_error": lazy_gettext("The centre cannot save changes right now. Please call the supervisor."),
    "internal_error": lazy_gettext("Something went wrong. Nothing was changed. Please try again."),
}


def error_text(code: str) -> str:
    """A user-facing, translated message for an error code (the API's English text is for logs)."""
    text = ERROR_TEXTS.get(code)
    return str(text) if text is not None else gettext("Something went wrong. Please try again.")


# -- CSRF ------------------------------------------------------------------------------------------

def csrf_token() -> str:
    """This session's CSRF token (created on first use)."""
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def rotate_csrf_token() -> str:
    """A fresh token (at login, so a token seen before login is useless afterwards)."""
    session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def check_csrf() -> None:
    """Refuse a state-changing screen request without this session's token or from another origin."""
    if request.method not in UNSAFE_METHODS or request.path.startswith("/api/"):
        return
    origin = request.headers.get("Origin")
    if origin and origin != "null" and origin.rstrip("/") != request.host_url.rstrip("/"):
        raise CsrfFailed("cross-origin request refused")
    expected = session.get("csrf")
    sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token") or ""
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise CsrfFailed("missing or wrong CSRF token; reload the page")


# -- responses -------------------------------------------------------------------------------------

def security_headers(response: Response) -> Response:
    """Headers on every answer: CSP, no framing, no sniffing, same-origin referrer, no features."""
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Permissions-Policy", PERMISSIONS)
    if _trustworthy_origin():
        # Chromium ignores COOP on a plain-HTTP LAN address and logs an error on every page there
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if response.mimetype == "text/html":
        # a citizen's ticket page must not be kept anywhere the next citizen could bring it back
        headers.setdefault("Cache-Control", "no-store")
        _maybe_gzip(response)
    return response


def _trustworthy_origin() -> bool:
    """HTTPS, or this machine itself (the browsers' "potentially trustworthy" origins)."""
    if request.is_secure:
        return True
    host = request.host.rsplit(":", 1)[0].strip("[]") if not request.host.endswith("]") else request.host.strip("[]")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _accepts_gzip() -> bool:
    """The client takes gzip (every browser does; the test client does not ask for it)."""
    return "gzip" in request.headers.get("Accept-Encoding", "")


def _maybe_gzip(response: Response) -> None:
    """Compress a finished HTML page (not a stream) for a client that accepts it."""
    response.vary.add("Accept-Encoding")
    if (response.is_streamed or response.direct_passthrough or "Content-Encoding" in response.headers
            or not _accepts_gzip() or response.status_code < 200 or response.status_code in (204, 304)):
        return
    data = response.get_data()
    if len(data) < 1024:
        return
    response.set_data(gzip.compress(data, compresslevel=6, mtime=0))
    response.headers["Content-Encoding"] = "gzip"


class StaticFiles:
    """Serves kiosk/static: gzip for text assets (compressed once, kept in memory), and a year of
    caching for URLs that carry the file's content hash (`asset()`), revalidation otherwise."""

    def __init__(self, folder: str):
        """Serve from `folder`."""
        self.folder = folder
        self._lock = threading.Lock()
        self._hashes: dict[str, tuple[tuple, str]] = {}
        self._gzipped: dict[str, tuple[tuple, bytes]] = {}

    def _stat_key(self, path: str) -> tuple:
        """What changes when the file changes."""
        st = os.stat(path)
        return (st.st_mtime_ns, st.st_size)

    def version(self, filename: str) -> str:
        """A short content hash of a static file (cache-busting query value)."""
        path = safe_join(self.folder, filename)
        if path is None or not os.path.isfile(path):
            raise FileNotFoundError(f"no static file {filename!r}")
        key = self._stat_key(path)
        with self._lock:
            cached = self._hashes.get(path)
            if cached and cached[0] == key:
                return cached[1]
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:10]
        with self._lock:
            self._hashes[path] = (key, digest)
        return digest

    def _gzip(self, path: str) -> bytes:
        """The gzip encoding of a file, cached until the file changes."""
        key = self._stat_key(path)
        with self._lock:
            cached = self._gzipped.get(path)
            if cached and cached[0] == key:
                return cached[1]
        data = gzip.compress(Path(path).read_bytes(), compresslevel=9, mtime=0)
        with self._lock:
            self._gzipped[path] = (key, data)
        return data

    def serve(self, filename: str) -> Response:
        """The static view."""
        path = safe_join(self.folder, filename)
        if path is None or not os.path.isfile(path):
            raise HTTPNotFound()
        versioned = bool(request.args.get("v"))
        if filename.endswith(COMPRESSIBLE) and _accepts_gzip():
            mimetype = mimetypes.guess_type(filename)[0] or "application/octet-stream"
            response = Response(self._gzip(path), mimetype=mimetype)
            response.headers["Content-Encoding"] = "gzip"
            response.set_etag(self.version(filename) + "-gz")
            response.make_conditional(request)
        else:
            response = send_from_directory(self.folder, filename, max_age=None)
        response.vary.add("Accept-Encoding")
        if versioned:
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        elif filename.startswith("fonts/"):
            # fonts are named from the stylesheet without a hash; they change only with a release
            response.headers["Cache-Control"] = "public, max-age=86400"
        else:
            response.headers["Cache-Control"] = "no-cache"
        return response


def asset(filename: str) -> str:
    """URL of a static file with its content hash, so browsers may cache it for a year."""
    files: StaticFiles = current_app.extensions["kiosk_static"]
    return url_for("static", filename=filename, v=files.version(filename))


# -- wiring ----------------------------------------------------------------------------------------

def _template_context() -> dict:
    """Values every screen template gets."""
    lang = current_lang()
    info = locale_info(lang)
    return {"lang": lang, "html_lang": info["html_lang"], "dir": info["dir"], "locale_info": info,
            "languages": [locale_info(x) for x in current_app.config["LANGUAGES"]],
            "htmx_config": HTMX_CONFIG}


def register(app: Flask) -> None:
    """Install languages, security, filters, static files and the screens on the centre app."""
    from kiosk import launch
    from kiosk.i18n import catalogues
    from kiosk.web import (admin, appointments, auth, cases, counter, display, follow, insight,
                           kiosk as kiosk_screen, sse)

    catalogues.ensure_compiled()
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(I18N_DIR)
    app.config["BABEL_DEFAULT_LOCALE"] = LOCALES[app.config["DEFAULT_LANGUAGE"]]
    app.config["BABEL_DEFAULT_TIMEZONE"] = app.config["TIMEZONE"]
    Babel(app, locale_selector=select_locale)

    files = StaticFiles(app.static_folder)
    app.extensions["kiosk_static"] = files
    app.view_functions["static"] = files.serve

    app.before_request(check_csrf)
    app.after_request(security_headers)
    app.context_processor(_template_context)
    app.jinja_env.globals.update(csrf_token=csrf_token, csrf_field=csrf_field, asset=asset, tri=tri,
                                 tri_spans=tri_spans, ticket_number=ticket_number, alerts=alerts,
                                 error_text=error_text)
    app.jinja_env.filters.update(digits=digits, bdi=bdi, minutes=minutes, lname=lname, when=when, day=day,
                                 number=number)

    for module in (auth, kiosk_screen, counter, display, admin, sse, cases, follow, insight, appointments):
        app.register_blueprint(module.bp)
    app.register_blueprint(insight.reports)
    app.register_blueprint(ui)
    app.cli.add_command(launch.launch_command)


# what belongs to no single screen
ui = Blueprint("ui", __name__)


@ui.post("/lang")
def set_language():
    """Staff screens' language switch: a full page load, so <html lang dir> changes too."""
    from kiosk.web import htmx
    from kiosk.web.auth import safe_next
    lang = request.form.get("lang")
    if lang in current_app.config["LANGUAGES"]:
        session["lang"] = lang
    target = request.form.get("next") or "/"
    return htmx.redirect(target if safe_next(target) else "/")
