"""Appointments at central: free slots, booking, cancelling, and the public JSON API for the
ministry's portal or a call centre (`/api/v1/slots`, `/api/v1/appointments`).

Decisions:
- A slot is never overbooked: every booking of a slot updates that slot's one row in
  `appointment_slots` with `booked = booked + 1 WHERE booked < capacity`. PostgreSQL re-checks the
  condition on the row a concurrent booking just committed (the update waits for its lock), and
  SQLite runs one writer at a time (BEGIN IMMEDIATE), so of N concurrent bookings of a slot of
  capacity C exactly C succeed and the others get 409 slot_full. A cancellation frees the place.
- Bookings reach the centre's kiosks through the configuration feed they already pull (table
  `appointments`, central's own documents, never removed by a configuration file). Booking for a
  slot closes `close_before_min` before it starts, so a kiosk that syncs in time has it.
- The QR is signed with central's booking key (CENTRAL_RECEIPTS_DIR/booking-key.pem), which the
  published trust list names as `BOOKING_SIGNER`: a kiosk checks a booking offline, even one made
  after its last sync. Booking is refused (503) until that key is on the published list.
- A phone number is optional and kept only for the reminder: not at all when reminders are off,
  and erased once the reminder went out, the booking was cancelled or the slot has passed.
- Public, unauthenticated endpoints count requests per client address and minute in the database
  (several workers share one count); booking, cancelling and looking up a code are limited.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import click
from flask import Blueprint, Flask, current_app, jsonify, request
from flask.cli import with_appcontext
from sqlalchemy import Connection, and_, case, delete, select, update

from kiosk import keys
from kiosk.domain import appointments as ap
from kiosk.domain import receipts, trustlist
from kiosk.domain.cases import Calendar
from sync.central import feed
from sync.central.errors import ApiError
from sync.central.models import Appointment, AppointmentSlot, Centre, ConfigDoc, RateLimit
from sync.central.sql import insert_for

log = logging.getLogger(__name__)

BOOKING_KEY = "booking-key.pem"
LANGS = ("ar", "ckb", "en")
STATES = ("booked", "cancelled")
MAX_BODY = 4096
_PHONE_SEPARATORS = re.compile(r"[\s\-().\u200e\u200f]+")
# A booking key vouches for bookings issued inside its window: from a day before it is made (clock
# differences) to 14 months after (a year and the overlap with its successor, as centre keys).
KEY_BACK_DAYS = 1
KEY_FORWARD_DAYS = 425
# A booking leaves its centre's feed (kiosks forget it) this long after its slot ended; central
# keeps its own row.
FEED_KEEP_DAYS = 30

bp = Blueprint("appointments_api", __name__, url_prefix="/api/v1")


def _central():
    """The app's Central (engine, clock)."""
    return current_app.extensions["central"]


# -- configuration -----------------------------------------------------------------------------------

def _setting(conn: Connection, centre: str, key: str) -> dict | None:
    """One of a centre's current settings documents."""
    doc = conn.execute(select(ConfigDoc.doc).where(ConfigDoc.centre == centre, ConfigDoc.tbl == "settings",
                                                   ConfigDoc.key == key, ConfigDoc.deleted.is_(False))).scalar()
    return doc if isinstance(doc, dict) else None


def rules(conn: Connection, centre: str) -> tuple[ap.Settings, Calendar]:
    """A centre's appointment settings and working calendar (nothing bookable when either is broken:
    config-load validates both, so that means someone wrote the database by hand)."""
    try:
        return ap.Settings.from_doc(_setting(conn, centre, ap.SETTING)), Calendar.from_settings(
            _setting(conn, centre, "calendar"))
    except ValueError as exc:
        log.error("appointments of centre %s are off: %s", centre, exc)
        return ap.Settings(), Calendar()


def known_centre(conn: Connection, centre: object) -> bool:
    """True for a registered centre."""
    return isinstance(centre, str) and conn.execute(select(Centre.code).where(Centre.code == centre)).first() is not None


def service_names(conn: Connection, centre: str) -> dict[str, dict]:
    """The names of a centre's configured services, by code."""
    rows = conn.execute(select(ConfigDoc.key, ConfigDoc.doc).where(
        ConfigDoc.centre == centre, ConfigDoc.tbl == "services", ConfigDoc.deleted.is_(False)))
    return {row.key: row.doc.get("names") or {} for row in rows if isinstance(row.doc, dict)}


def bookable_centres(conn: Connection) -> list[dict]:
    """Centres with at least one bookable service: code, name and their services."""
    out = []
    for centre in conn.execute(select(Centre.code, Centre.name).order_by(Centre.code)):
        settings, _ = rules(conn, centre.code)
        if settings.services:
            out.append({"code": centre.code, "name": centre.name, "services": sorted(settings.services)})
    return out


# -- refusals --------------------------------------------------------------------------------------

def refused(status: int, code: str, message: str, **fields: str) -> ApiError:
    """An error of the appointment endpoints (fields name the wrong inputs of a 422)."""
    return ApiError(status, code, message, **({"fields": fields} if fields else {}))


# -- slots -----------------------------------------------------------------------------------------

def free_slots(conn: Connection, centre: str, service: str, day: dt.date, now: dt.datetime) -> list[dict]:
    """The slots of a service on a local day that can still be booked, with their free places."""
    settings, calendar = rules(conn, centre)
    if service not in settings.services:
        raise refused(404, "not_found", f"centre {centre} takes no appointments for service {service!r}")
    slots = [s for s in settings.slots(service, day, calendar) if settings.is_open(s, now)]
    if not slots:
        return []
    booked = dict(conn.execute(select(AppointmentSlot.start_at, AppointmentSlot.booked).where(
        AppointmentSlot.centre == centre, AppointmentSlot.service == service,
        AppointmentSlot.start_at.in_([s.start for s in slots]))).all())
    return [{"start": receipts.iso(s.start), "end": receipts.iso(s.end),
             "free": max(0, s.capacity - booked.get(s.start, 0))} for s in slots]


# -- the signing key -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Signer:
    """Central's booking key and the host its QR texts name (the published trust list's)."""

    key: keys.SigningKey
    verify_host: str

    def sign(self, booking: ap.Booking) -> str:
        """The booking's QR text."""
        return ap.sign(booking, self.key.private_key, self.verify_host)


def booking_key_path(app: Flask | None = None) -> Path:
    """Where central keeps its booking key."""
    from sync.central.receipts import receipts_dir
    return receipts_dir(app) / BOOKING_KEY


def signer(conn: Connection) -> Signer:
    """The booking key, once the published trust list names it (else kiosks could not check the
    QR offline); 503 not_configured otherwise."""
    from sync.central.receipts import open_published
    try:
        key = keys.load_root_key(booking_key_path())  # any P-256 key file, checked alike
    except keys.KeyFileError as exc:
        log.error("appointments cannot be booked: %s", exc)
        raise refused(503, "not_configured", "appointments cannot be booked yet: central has no booking key") from None
    published = open_published(conn)
    listed = published is not None and any(
        k.centre == ap.BOOKING_SIGNER and k.kid == key.kid for k in published.keys)
    if not listed:
        log.error("appointments cannot be booked: the booking key %s is not on the published trust list", key.kid.hex())
        raise refused(503, "not_configured", "appointments cannot be booked yet: the booking key is not published")
    return Signer(key, published.verify_host)


# -- booking and cancelling ------------------------------------------------------------------------

def view(row) -> dict:
    """An appointment as the API answers it (never the phone number)."""
    return {"code": row.code, "centre": row.centre, "service": row.service, "start": receipts.iso(row.start_at),
            "end": receipts.iso(row.end_at), "qr": row.qr, "state": row.state}


def feed_doc(row) -> dict:
    """What the centre's kiosks pull: the booking without the phone number."""
    return {"id": row.code, "code": row.code, "service": row.service, "start_at": receipts.iso(row.start_at),
            "end_at": receipts.iso(row.end_at), "state": row.state, "lang": row.lang,
            "booked_at": receipts.iso(row.booked_at)}


def normalise_phone(value: object) -> str:
    """A phone number as digits with an optional leading +, from what people type (Arabic-Indic
    digits, spaces, dashes, 00 for +); ValueError when it is not 7 to 15 digits."""
    if not isinstance(value, str) or len(value) > 40:
        raise ValueError("a phone number is 7 to 15 digits")
    text = _PHONE_SEPARATORS.sub("", value)
    plus = text.startswith("+") or text.startswith("00")
    text = text[1:] if text.startswith("+") else text[2:] if text.startswith("00") else text
    digits = "".join(str(int(ch)) if ch.isdecimal() else "x" for ch in text)
    if not 7 <= len(digits) <= 15 or not digits.isdigit():
        raise ValueError("a phone number is 7 to 15 digits")
    return ("+" if plus else "") + digits


def book(conn: Connection, *, centre: str, service: str, start: dt.datetime, lang: str, phone: str | None,
         now: dt.datetime, sign: Signer, keep_phone: bool) -> dict:
    """Book one place in a slot (one transaction); ApiError 422 for a slot that does not exist or
    cannot be booked now, 409 slot_full when every place is taken."""
    settings, calendar = rules(conn, centre)
    if service not in settings.services:
        raise refused(422, "validation_failed", "this service takes no appointments at this centre",
                      service="takes no appointments at this centre")
    slot = settings.slot_at(service, start, calendar)
    if slot is None:
        raise refused(422, "validation_failed", "no slot starts at that time", start="is not the start of a slot")
    if not settings.is_open(slot, now):
        raise refused(422, "validation_failed", "booking for this slot is closed",
                      start="is past, too soon or too far ahead to book")
    conn.execute(insert_for(conn, AppointmentSlot).values(centre=centre, service=service, start_at=slot.start, booked=0)
                 .on_conflict_do_nothing(index_elements=[AppointmentSlot.centre, AppointmentSlot.service,
                                                         AppointmentSlot.start_at]))
    taken = conn.execute(update(AppointmentSlot).where(
        AppointmentSlot.centre == centre, AppointmentSlot.service == service, AppointmentSlot.start_at == slot.start,
        AppointmentSlot.booked < slot.capacity).values(booked=AppointmentSlot.booked + 1)).rowcount
    if taken != 1:
        raise refused(409, "slot_full", "every place in this slot is taken")
    code = ap.new_code()
    while conn.execute(select(Appointment.code).where(Appointment.code == code)).first() is not None:
        code = ap.new_code()
    qr = sign.sign(ap.Booking(code=code, centre=centre, service=service, start=slot.start, end=slot.end, issued_at=now))
    row = Appointment(code=code, centre=centre, service=service, start_at=slot.start, end_at=slot.end, state="booked",
                      lang=lang, phone=phone if keep_phone else None, qr=qr, booked_at=now)
    conn.execute(Appointment.__table__.insert().values(
        code=row.code, centre=row.centre, service=row.service, start_at=row.start_at, end_at=row.end_at,
        state=row.state, lang=row.lang, phone=row.phone, qr=row.qr, booked_at=row.booked_at))
    feed.lock_feed(conn)
    feed._record(conn, centre, ap.TABLE, code, "put", feed_doc(row), now)
    log.info("appointment booked at %s for service %s at %s", centre, service, receipts.iso(slot.start))
    return view(row)


def find(conn: Connection, code: object):
    """The appointment with a code (typed in any way people type codes), or None."""
    code = ap.normalise_code(code)
    if code is None:
        return None
    return conn.execute(select(Appointment).where(Appointment.code == code)).first()


def cancel(conn: Connection, code: object, now: dt.datetime) -> dict:
    """Cancel a booking by its code: its place is free again and the kiosks pull the cancellation.
    Cancelling twice is harmless; 404 for an unknown code, 409 too_late once the slot has started."""
    normalised = ap.normalise_code(code)
    row = conn.execute(select(Appointment).where(Appointment.code == normalised).with_for_update()).first() \
        if normalised else None
    if row is None:
        raise refused(404, "not_found", "no appointment has this code")
    if row.state == "cancelled":
        return view(row)
    if now >= row.start_at:
        raise refused(409, "too_late", "the appointment's time has come; it can no longer be cancelled")
    conn.execute(update(Appointment).where(Appointment.code == row.code).values(
        state="cancelled", cancelled_at=now, phone=None))
    conn.execute(update(AppointmentSlot).where(
        AppointmentSlot.centre == row.centre, AppointmentSlot.service == row.service,
        AppointmentSlot.start_at == row.start_at).values(booked=AppointmentSlot.booked - 1))
    row = conn.execute(select(Appointment).where(Appointment.code == row.code)).first()
    feed.lock_feed(conn)
    feed._record(conn, row.centre, ap.TABLE, row.code, "put", feed_doc(row), now)
    log.info("appointment at %s for service %s at %s cancelled", row.centre, row.service, receipts.iso(row.start_at))
    return view(row)


def prune_feed(conn: Connection, now: dt.datetime, keep_days: int = FEED_KEEP_DAYS) -> int:
    """Tombstone the feed documents of bookings whose slot ended more than `keep_days` ago, so a
    kiosk's store does not grow with every booking ever made; returns how many."""
    old = conn.execute(select(Appointment.centre, Appointment.code).join(ConfigDoc, and_(
        ConfigDoc.centre == Appointment.centre, ConfigDoc.tbl == ap.TABLE, ConfigDoc.key == Appointment.code,
        ConfigDoc.deleted.is_(False))).where(Appointment.end_at < now - dt.timedelta(days=keep_days))).all()
    if old:
        feed.lock_feed(conn)
    for centre, code in old:
        feed._record(conn, centre, ap.TABLE, code, "del", None, now)
    return len(old)


# -- rate limits -----------------------------------------------------------------------------------

def allow(scope: str, address: str, per_minute: int, now: dt.datetime) -> bool:
    """Count one request of `address` to `scope` in this minute; False beyond `per_minute` (0: no limit)."""
    if per_minute <= 0:
        return True
    window = int(now.timestamp() // 60)
    table = RateLimit.__table__
    with _central().engine.begin() as conn:
        ins = insert_for(conn, RateLimit).values(key=f"{scope}:{address}"[:200], window=window, hits=1)
        hits = conn.execute(ins.on_conflict_do_update(index_elements=[RateLimit.key], set_={
            "hits": case((table.c.window == window, table.c.hits + 1), else_=1), "window": window})
            .returning(RateLimit.hits)).scalar_one()
    return hits <= per_minute


def limit(scope: str) -> None:
    """429 rate_limited once this client address used up its requests of this minute."""
    central = _central()
    if not allow(scope, request.remote_addr or "?", int(current_app.config["CENTRAL_BOOKING_RATE_PER_MIN"]),
                 central.clock.now()):
        raise ApiError(429, "rate_limited", "too many requests from this address; try again in a minute")


def forget_old_counts(conn: Connection, now: dt.datetime) -> int:
    """Remove request counts of windows that ended more than an hour ago."""
    return conn.execute(delete(RateLimit).where(RateLimit.window < int(now.timestamp() // 60) - 60)).rowcount


# -- the JSON API ----------------------------------------------------------------------------------

def _body() -> dict:
    """The request's JSON object (415 unless JSON, 413 beyond 4 KB, 400 when not an object)."""
    if request.mimetype != "application/json":
        raise refused(415, "unsupported_media_type", "send application/json")
    if (request.content_length or 0) > MAX_BODY:
        raise refused(413, "payload_too_large", f"at most {MAX_BODY} bytes")
    raw = request.get_data(cache=False)
    if len(raw) > MAX_BODY:
        raise refused(413, "payload_too_large", f"at most {MAX_BODY} bytes")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise refused(400, "bad_request", "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise refused(400, "bad_request", "the body must be a JSON object")
    return data


def parse_booking(data: dict) -> dict:
    """The fields of a booking request, checked; 422 naming every wrong field."""
    wrong = {name: "unknown field" for name in data if name not in ("centre", "service", "start", "lang", "phone")}
    for name in ("centre", "service", "start", "lang"):
        if not isinstance(data.get(name), str):
            wrong[name] = "required text"
    out = {"centre": data.get("centre"), "service": data.get("service"), "lang": data.get("lang"), "phone": None}
    if isinstance(out["lang"], str) and out["lang"] not in LANGS:
        wrong["lang"] = "must be ar, ckb or en"
    if isinstance(data.get("start"), str):
        try:
            start = dt.datetime.fromisoformat(data["start"].replace("Z", "+00:00"))
            if start.tzinfo is None:
                raise ValueError
            out["start"] = start.astimezone(dt.timezone.utc)
        except ValueError:
            wrong["start"] = "must be an ISO 8601 time with a zone, as /api/v1/slots gives it"
    if data.get("phone") is not None:
        try:
            out["phone"] = normalise_phone(data["phone"])
        except ValueError as exc:
            wrong["phone"] = str(exc)
    if wrong:
        raise refused(422, "validation_failed", "the booking is not valid", **wrong)
    return out


def reminders_on(app: Flask | None = None) -> bool:
    """True when a reminder notifier is configured (only then is a phone number kept)."""
    return (app or current_app).config.get("CENTRAL_SMS_NOTIFIER", "off") != "off"


def book_now(data: dict) -> dict:
    """Book from checked fields in one transaction (the API and the public page share this)."""
    central = _central()
    now = central.clock.now()
    with central.engine.begin() as conn:
        if not known_centre(conn, data["centre"]):
            raise refused(422, "validation_failed", "unknown centre", centre="is not a centre")
        return book(conn, centre=data["centre"], service=data["service"], start=data["start"], lang=data["lang"],
                    phone=data["phone"], now=now, sign=signer(conn), keep_phone=reminders_on())


@bp.get("/slots")
def slots_endpoint():
    """The free slots of a service at a centre on a date (public)."""
    args = request.args
    wrong = {name: "required" for name in ("centre", "service", "date") if not args.get(name)}
    wrong.update({name: "unknown parameter" for name in args if name not in ("centre", "service", "date")})
    day = None
    if args.get("date"):
        try:
            day = dt.date.fromisoformat(args["date"])
        except ValueError:
            wrong["date"] = "must be a date like 2026-12-01"
    if wrong:
        raise refused(422, "validation_failed", "the query is not valid", **wrong)
    central = _central()
    with central.engine.connect() as conn:
        if not known_centre(conn, args["centre"]):
            raise refused(404, "not_found", f"no centre {args['centre']!r}")
        found = free_slots(conn, args["centre"], args["service"], day, central.clock.now())
    return jsonify({"slots": found})


@bp.post("/appointments")
def book_endpoint():
    """Book a slot (public, rate-limited per address)."""
    limit("book")
    booked = book_now(parse_booking(_body()))
    response = jsonify({"appointment": booked})
    response.status_code = 201
    response.headers["Location"] = f"/api/v1/appointments/{booked['code']}"
    return response


@bp.get("/appointments/<code>")
def get_endpoint(code):
    """An appointment by its code (rate-limited: codes must not be guessed by trying)."""
    limit("lookup")
    with _central().engine.connect() as conn:
        row = find(conn, code)
    if row is None:
        raise refused(404, "not_found", "no appointment has this code")
    return jsonify({"appointment": view(row)})


@bp.delete("/appointments/<code>")
def cancel_endpoint(code):
    """Cancel an appointment with its code (rate-limited)."""
    limit("cancel")
    central = _central()
    with central.engine.begin() as conn:
        cancelled = cancel(conn, code, central.clock.now())
    return jsonify({"appointment": cancelled})


@bp.after_request
def _no_store(response):
    """Answers describe live bookings: never cached."""
    response.headers["Cache-Control"] = "no-store"
    return response


# -- operator commands -----------------------------------------------------------------------------

@click.command("booking-key-create")
@with_appcontext
def booking_key_create_command():
    """Create central's booking key and enrol it in the draft of the next trust list (then run
    trust-publish so kiosks can check booking QR codes offline)."""
    from sync.central import receipts_cli
    path = booking_key_path()
    try:
        key = keys.create_key_file(path, "booking key")
    except keys.KeyFileError as exc:
        raise click.ClickException(str(exc)) from None
    now = _central().clock.now()
    listed = trustlist.TrustedKey.from_public_key(ap.BOOKING_SIGNER, key.public_key,
                                                  now - dt.timedelta(days=KEY_BACK_DAYS),
                                                  now + dt.timedelta(days=KEY_FORWARD_DAYS))
    directory = path.parent
    draft = receipts_cli.read_draft(directory)
    draft["keys"] = [e for e in draft["keys"] if e.get("kid") != key.kid.hex()]
    draft["keys"].append({"centre": ap.BOOKING_SIGNER, "kid": key.kid.hex(), "pem": key.public_pem(),
                          "not_before_at": receipts.iso(listed.not_before_at),
                          "not_after_at": receipts.iso(listed.not_after_at)})
    receipts_cli.write_draft(directory, draft)
    click.echo(f"booking key {key.kid.hex()} created at {path} and enrolled as {ap.BOOKING_SIGNER} until "
               f"{receipts.iso(listed.not_after_at)}; run trust-publish to send it to the kiosks")


def register(app: Flask) -> None:
    """Install the appointment API, the public booking pages and their commands on central."""
    from sync.central import booking, reminders
    app.register_blueprint(bp)
    booking.register(app)
    reminders.register(app)
    app.cli.add_command(booking_key_create_command)
