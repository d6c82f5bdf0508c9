"""Central's pages for ministry operators: centres, their devices, sync lag, clock offsets,
quarantined records and locked sign-ins, in the operator's language (sync/central/i18n.py). HTTP
basic authentication against the operators table."""
from __future__ import annotations

import hashlib
import hmac
import logging
import math

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask_babel import gettext, ngettext
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sync.central import i18n, logins, names
from sync.central.app import error_page
from sync.central.models import Centre, Device, DeviceCursor, Operator, Quarantined

log = logging.getLogger(__name__)

bp = Blueprint("central", __name__)


def _central():
    """The app's Central (engine, clock, settings)."""
    return current_app.extensions["central"]


@bp.before_request
def _require_operator():
    """Deny by default: only a known operator with the right password sees anything. Wrong
    passwords back off per name and per address (sync.central.logins), and an unknown name costs
    as long to refuse as a known one."""
    auth = request.authorization
    if auth is None or auth.type != "basic" or not auth.username or auth.password is None:
        return _challenge()
    central = _central()
    try:
        ok = logins.sign_in(central.engine, auth.username, auth.password, address=request.remote_addr or "",
                            now=central.clock.now())
    except logins.Locked as exc:
        wait = i18n.digits(ngettext("%(num)d minute", "%(num)d minutes", math.ceil(exc.retry_after_s / 60)))
        detail = gettext("Too many wrong passwords for this name or from this address. Try again in "
                         "%(wait)s, or ask another operator to unlock it.", wait=wait)
        response = current_app.make_response((error_page(429, detail), 429))
        response.headers["Retry-After"] = str(exc.retry_after_s)
        return response
    return None if ok else _challenge()


def _challenge():
    """401 asking the browser for credentials."""
    body = render_template("central/denied.html"), 401
    response = current_app.make_response(body)
    response.headers["WWW-Authenticate"] = 'Basic realm="central", charset="UTF-8"'
    return response


def operator() -> str:
    """The signed-in operator's name."""
    return request.authorization.username


def form_token() -> str:
    """A form token bound to the operator's stored password hash: another site cannot know it."""
    with _central().engine.connect() as conn:
        stored = conn.execute(select(Operator.password_hash).where(Operator.name == operator())).scalar() or ""
    return hmac.new(stored.encode(), b"receipts-form:" + operator().encode(), hashlib.sha256).hexdigest()


def check_form() -> None:
    """Refuse a state change from another origin or without the operator's form token.

    HTTP basic credentials are sent by the browser to any request, even one another site makes it
    send, so a token is needed as for any cookie session."""
    origin = request.headers.get("Origin")
    if origin and origin.rstrip("/") != request.host_url.rstrip("/"):
        abort(403)
    if not hmac.compare_digest(request.form.get("csrf_token", ""), form_token()):
        abort(400)


def _devices(session: Session, centre: str | None = None) -> list[dict]:
    """Devices with their cursor, lag and quarantine count."""
    quarantined = (select(Quarantined.device_id, func.count().label("n"))
                   .group_by(Quarantined.device_id).subquery())
    query = (select(Device, DeviceCursor.last_seq, func.coalesce(quarantined.c.n, 0).label("quarantined"))
             .join(DeviceCursor, DeviceCursor.device_id == Device.device_id)
             .outerjoin(quarantined, quarantined.c.device_id == Device.device_id)
             .order_by(Device.centre, Device.label))
    if centre is not None:
        query = query.where(Device.centre == centre)
    now = _central().clock.now()
    out = []
    for device, last_seq, count in session.execute(query).all():
        last_sync = max((t for t in (device.last_push_at, device.last_pull_at) if t), default=None)
        out.append({"device": device, "acked_seq": last_seq, "lag": max(device.head_seq - last_seq, 0),
                    "quarantined": count, "last_sync_at": last_sync, "last_sync_ago": i18n.ago(now, last_sync)})
    return out


@bp.get("/")
def index():
    """Every centre with its devices' last sync, lag and clock offset."""
    with Session(_central().engine) as session:
        centres = session.scalars(select(Centre).order_by(Centre.code)).all()
        devices = _devices(session)
        directory = names.directory(session.connection())
    by_centre: dict[str, list[dict]] = {c.code: [] for c in centres}
    for row in devices:
        by_centre.setdefault(row["device"].centre, []).append(row)
    return render_template("central/index.html", centres=centres, by_centre=by_centre, names=directory)


@bp.get("/centres/<code>")
def centre(code: str):
    """One centre: its devices in detail and its quarantined records."""
    with Session(_central().engine) as session:
        found = session.get(Centre, code)
        if found is None:
            abort(404)
        devices = _devices(session, code)
        quarantine = session.scalars(select(Quarantined).where(Quarantined.centre == code)
                                     .order_by(Quarantined.received_at.desc(), Quarantined.seq.desc())
                                     .limit(200)).all()
        directory = names.directory(session.connection(), code)
    return render_template("central/centre.html", centre=found, devices=devices, quarantine=quarantine,
                           names=directory)


@bp.get("/operators/locks")
def locks():
    """Operator names and addresses locked after wrong passwords, with an unlock button each."""
    with _central().engine.connect() as conn:
        rows = logins.locked(conn, _central().clock.now())
        names = set(conn.execute(select(Operator.name)).scalars())
    return render_template("central/locks.html", locks=rows, operators=names, csrf_token=form_token(),
                           done=request.args.get("unlocked"))


@bp.post("/operators/locks")
def unlock():
    """Let a locked operator name or address try again at once (logged with who did it)."""
    check_form()
    kind, key = request.form.get("kind", ""), request.form.get("key", "")
    with _central().engine.begin() as conn:
        found = logins.unlock(conn, kind, key)
    if found:
        log.info("operator %s unlocked %s %s", operator(), kind, key[:64])
    return redirect(url_for("central.locks", unlocked=key[:64] if found else ""), 303)
