"""Staff sessions for the screens: PIN login (argon2 through services.authenticate), idle timeout
and role checks. The citizen kiosk and the hall display never log in, so they never reach these.

The session cookie carries only a random session id (and the language and CSRF token); the session
itself lives on the server (kiosk.security.StaffSessions), so logging out, a changed PIN, the
supervisor's "sign out everywhere" and the idle timeout end it for every copy of the cookie. Each
request also checks the staff record: a PIN changed (by anyone, or pulled from central) or a
deactivated account ends the session. Live refreshes (SSE-triggered htmx GETs and polling) are not
activity, otherwise an unattended console would never time out.
"""
from __future__ import annotations

import ipaddress
import logging
import unicodedata
from functools import wraps
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, g, make_response, render_template, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_babel import gettext as _

from kiosk import services
from kiosk.app import kiosk
from kiosk.domain.errors import Forbidden, KioskError, OutsideStaffNetwork, RateLimited, Unauthorized
from kiosk.security import StaffSessions, pin_fingerprint
from kiosk.web import htmx

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__, url_prefix="/staff")

# what a staff session leaves in the cookie (older versions kept the staff id and role there)
STAFF_KEYS = ("sid", "counter", "staff", "staff_role", "staff_fp", "staff_seen_at")
# kept in the cookie from a session's expiry to the next login, so that every request of the screen
# (a click, a live refresh, the stream reconnecting: whichever the server saw first ended the
# session) sends to a login page that says why
EXPIRED_KEY = "staff_expired"


class KioskSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie, marked Secure whenever this request arrived over HTTPS (directly, or
    through TRUSTED_PROXIES that say so), so a cookie set over HTTPS is never sent over plain HTTP,
    while a centre that runs plain HTTP on its LAN keeps working."""

    def get_cookie_secure(self, app) -> bool:
        """Secure for HTTPS requests (or when SESSION_COOKIE_SECURE forces it)."""
        return bool(app.config["SESSION_COOKIE_SECURE"] or request.is_secure)


def to_ascii_digits(text: str) -> str:
    """Arabic-Indic (and any other Unicode) digits to 0-9, so a PIN typed on an Arabic layout works."""
    return "".join(str(unicodedata.digit(ch)) if ch.isdigit() else ch for ch in text)


def on_staff_network() -> bool:
    """True when this request comes from one of STAFF_NETWORKS (after TRUSTED_PROXIES)."""
    try:
        address = ipaddress.ip_address((request.remote_addr or "").split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in kiosk().app.config["STAFF_NETWORKS"])


def require_staff_network() -> None:
    """403 for staff pages, the staff API and staff streams asked for from outside the staff
    networks (citizens' Wi-Fi): a stolen PIN or cookie is useless from the hall."""
    if not on_staff_network():
        log.warning("staff request from %s outside the staff networks refused", request.remote_addr)
        raise OutsideStaffNetwork("staff screens and the staff API are not available from this network")


@bp.before_request
def _login_pages_on_staff_network() -> None:
    """The login and logout pages, too, exist only on the staff networks."""
    require_staff_network()


def sessions() -> StaffSessions:
    """The app's server-side staff sessions."""
    return kiosk().sessions


def end_session(reason: str) -> None:
    """End the staff session on the server and forget it in the cookie (the language stays)."""
    record = g.pop("staff_session", None)
    if sessions().end(session.get("sid")) or record is not None:
        log.info("staff session of %s ended: %s", record.staff if record else "?", reason)
    for key in STAFF_KEYS:
        session.pop(key, None)


def current_staff() -> dict | None:
    """The logged-in staff document, or None (an idle, ended or revoked session is ended here)."""
    if "staff_doc" in g:
        return g.staff_doc
    staff = None
    token = session.get("sid")
    if token:
        record = sessions().get(token, kind="screen")
        doc = kiosk().centre.store.get("staff", record.staff) if record else None
        if record is None:
            end_session("idle, ended elsewhere or unknown")
            g.session_expired = session[EXPIRED_KEY] = True
        elif doc is None or not doc.get("active", True) or pin_fingerprint(doc["pin_hash"]) != record.fingerprint:
            g.staff_session = record
            end_session("staff record changed")
            g.session_expired = session[EXPIRED_KEY] = True
        else:
            staff = doc
            g.staff_session = record
    elif any(key in session for key in STAFF_KEYS[2:]):
        end_session("cookie of an older version")  # sessions kept in the cookie are not trusted
    g.staff_doc = staff
    return staff


def _is_activity() -> bool:
    """A click or form the staff member made, as opposed to a live refresh."""
    if request.method != "GET":
        return True
    return not request.headers.get("HX-Request") and "text/event-stream" not in request.headers.get("Accept", "")


def login_url() -> str:
    """The login page, coming back to the current page afterwards."""
    target = request.full_path.rstrip("?") if request.method == "GET" and not htmx.is_htmx() else None
    if request.headers.get("HX-Request") and request.headers.get("HX-Current-URL"):
        parts = urlsplit(request.headers["HX-Current-URL"])
        target = parts.path + (f"?{parts.query}" if parts.query else "")
    query = {"next": target} if target and safe_next(target) else {}
    if session.get(EXPIRED_KEY) or g.get("session_expired"):
        query["expired"] = "1"
    return url_for("auth.login") + (f"?{urlencode(query)}" if query else "")


def _to_login():
    """Send an anonymous or timed-out request to the login page in a way its client follows."""
    if "text/event-stream" in request.headers.get("Accept", ""):
        raise Unauthorized("log in again")
    if request.headers.get("HX-Request"):
        # a 302 would be followed by the browser and the login page swapped into the console
        response = make_response("", 401)
        response.headers["HX-Redirect"] = login_url()
        return response
    return htmx.redirect(login_url())


def staff_required(*roles: str):
    """Views behind a staff login; `roles` limits which roles may use them (403 for the others)."""
    def decorate(view):
        """Wrap one view."""
        @wraps(view)
        def wrapper(*args, **kwargs):
            """Check the network, the session and the role, note the activity, run the view."""
            require_staff_network()
            staff = current_staff()
            if staff is None:
                return _to_login()
            if roles and staff.get("role") not in roles:
                raise Forbidden(f"this needs the role {' or '.join(roles)}")
            if _is_activity():
                sessions().touch(session["sid"])
            return view(*args, **kwargs)
        return wrapper
    return decorate


def safe_next(target: str | None) -> bool:
    """Only local paths (never `//host` or a scheme) may be redirect targets after login."""
    if not target or len(target) > 2048 or not target.startswith("/") or target.startswith("//"):
        return False
    # Browsers drop tabs and newlines inside URLs and read a backslash as a slash, so "/\t/evil"
    # and "/\\evil" both lead off the host; CR/LF would also break the Location header. Refuse any
    # control, space or backslash character rather than trying to clean them.
    if any(not ch.isprintable() or ch.isspace() or ch == "\\" for ch in target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


def _home_for(role: str) -> str:
    """Where a role starts."""
    return url_for("admin.index") if role == "supervisor" else url_for("counter.index")


@bp.get("/login")
def login():
    """The PIN login form."""
    if current_staff() is not None and not request.args.get("expired"):
        return htmx.redirect(_home_for(g.staff_doc["role"]))
    return render_template("auth/login.html", next=request.args.get("next", ""),
                           expired=bool(request.args.get("expired")), error=None)


@bp.post("/login")
def do_login():
    """Check the name and PIN; start a staff session."""
    from kiosk.web.screens import minutes, rotate_csrf_token
    staff_id = (request.form.get("staff") or "").strip()
    pin = to_ascii_digits(request.form.get("pin") or "")
    target = request.form.get("next") or ""
    try:
        staff = services.login(kiosk().centre, kiosk().logins, staff_id, pin, address=request.remote_addr or "")
    except RateLimited as exc:
        wait = exc.details["retry_after_s"]
        response = make_response(render_template(
            "auth/login.html", next=target, expired=False,
            error=_("Too many wrong attempts. Try again in %(wait)s, or ask the supervisor to unlock "
                    "your name.", wait=minutes(wait))), 429)
        response.headers["Retry-After"] = str(wait)
        return response
    except Unauthorized:
        return render_template("auth/login.html", next=target, expired=False,
                               error=_("Wrong name or PIN.")), 401
    end_session("new login")
    rotate_csrf_token()
    # a new id at every login: an id planted in the browser before login is never promoted
    session.pop(EXPIRED_KEY, None)
    session["sid"], _record = sessions().start(staff, kind="screen", address=request.remote_addr or "")
    log.info("staff %s logged in on the screens", staff["id"])
    return htmx.redirect(target if safe_next(target) else _home_for(staff["role"]))


@bp.post("/logout")
def logout():
    """End the session; counters the person holds are closed (freed for others, and the wait
    estimate counts open counters only)."""
    staff = current_staff()
    if staff is not None:
        for counter in services.counters_list(kiosk().centre):
            if counter["status"] != "closed" and counter.get("staff") == staff["id"]:
                try:
                    services.set_counter_status(kiosk().centre, counter["id"], "closed", by=staff["id"])
                except KioskError as exc:
                    log.warning("could not close counter %s at logout: %s", counter["id"], exc.message)
    end_session("logout")
    return htmx.redirect(url_for("auth.login"))
