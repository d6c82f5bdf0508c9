"""Central's pages for ministry operators: centres, their devices, sync lag, clock offsets and
quarantined records. Read-only; HTTP basic authentication against the operators table."""
from __future__ import annotations

import datetime as dt

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import Blueprint, abort, current_app, render_template, request
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sync.central.models import Centre, Device, DeviceCursor, Operator, Quarantined

bp = Blueprint("central", __name__)

_hasher = PasswordHasher()


def _central():
    """The app's Central (engine, clock, settings)."""
    return current_app.extensions["central"]


@bp.before_request
def _require_operator():
    """Deny by default: only a known operator with the right password sees anything."""
    auth = request.authorization
    if auth is None or auth.type != "basic" or not auth.username or auth.password is None:
        return _challenge()
    with _central().engine.connect() as conn:
        stored = conn.execute(select(Operator.password_hash).where(Operator.name == auth.username)).scalar()
    try:
        if stored is None or not _hasher.verify(stored, auth.password):
            return _challenge()
    except (VerificationError, InvalidHashError):
        return _challenge()
    return None


def _challenge():
    """401 asking the browser for credentials."""
    body = render_template("central/denied.html"), 401
    response = current_app.make_response(body)
    response.headers["WWW-Authenticate"] = 'Basic realm="central", charset="UTF-8"'
    return response


def _ago(now: dt.datetime, moment: dt.datetime | None) -> str:
    """'3 min ago' style age of a time, or a dash."""
    if moment is None:
        return "never"
    seconds = int((now - moment).total_seconds())
    if seconds < 0:
        return "in the future"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


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
                    "quarantined": count, "last_sync_at": last_sync, "last_sync_ago": _ago(now, last_sync)})
    return out


@bp.get("/")
def index():
    """Every centre with its devices' last sync, lag and clock offset."""
    with Session(_central().engine) as session:
        centres = session.scalars(select(Centre).order_by(Centre.code)).all()
        devices = _devices(session)
    by_centre: dict[str, list[dict]] = {c.code: [] for c in centres}
    for row in devices:
        by_centre.setdefault(row["device"].centre, []).append(row)
    return render_template("central/index.html", centres=centres, by_centre=by_centre)


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
    return render_template("central/centre.html", centre=found, devices=devices, quarantine=quarantine)
