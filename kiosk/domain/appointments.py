"""Appointments: the slots a centre offers, booking codes, the signed booking QR, and when a booking
may check in. Plain Python shared by central (which books) and the kiosk (which checks in offline).

Slots come from central's `settings/appointments` document (validated by `Settings.from_doc`):

    {"id": "appointments", "timezone": "Asia/Baghdad", "days_ahead": 14, "close_before_min": 120,
     "early_min": 30, "grace_min": 15, "ratio": 2, "remind_before_h": 24,
     "services": {"A": {"slot_min": 15, "capacity": 2,
                        "hours": {"sun": ["08:00-12:00", "13:00-14:30"], "mon": ["08:00-12:00"]}}}}

A day has slots when it is a working day of the centre's calendar (`settings/calendar`: weekend and
holidays) and the service has hours on that weekday. Times are the centre's local times.

A booking QR is signed like a receipt (COSE_Sign1, ES256, kiosk.domain.receipts) by central's
booking key, which the trust list names with the reserved centre code `BOOKING_SIGNER`; its own
external AAD keeps a booking from ever passing as a receipt or a trust list:

    QR text  = "HTTPS://" VERIFY-HOST "/A#" BASE32(COSE_Sign1)
    payload  = canonical CBOR {0: 1, 1: code, 2: centre, 3: service, 4: start, 5: end, 6: issued_at}
"""
from __future__ import annotations

import base64
import datetime as dt
import enum
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import cbor2

from kiosk.clock import parse_iso
from kiosk.domain import receipts
from kiosk.domain.receipts import ReceiptError, epoch, from_epoch

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

    from kiosk.domain.cases import Calendar
    from kiosk.domain.trustlist import TrustList

UTC = dt.timezone.utc
SETTING = "appointments"
TABLE = "appointments"
# The trust list's entry for central's booking key: a name no centre may take (`add-centre` and
# `trust-enrol` refuse it), so the booking key never vouches for a real centre's receipts.
BOOKING_SIGNER = "central-appointments"
BOOKING_AAD = b"appointment-v1"
QR_PATH = "/A#"
# A real booking QR is ~230 characters; the cap bounds the work done on hostile input.
MAX_QR_TEXT_LENGTH = 400
PAYLOAD_VERSION = 1
CODE_LENGTH = 8
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32: no I, L, O or U
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-4]):([0-5][0-9])$")
# What people type for a code: any Unicode decimal digit, Crockford's look-alikes, separators.
_LOOKALIKES = str.maketrans({"I": "1", "L": "1", "O": "0"})
_SEPARATORS = re.compile(r"[\s\-_.\u200e\u200f\u2066-\u2069]+")


class BookingError(ValueError):
    """A booking code or QR that cannot be accepted; `reason` is a stable code screens translate."""

    def __init__(self, reason: str, detail: str = ""):
        """Keep the reason and a detail for logs (never shown to citizens)."""
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


# -- settings and slots ----------------------------------------------------------------------------

@dataclass(frozen=True)
class ServiceSlots:
    """How one service is booked: slot length, people per slot, opening hours per weekday."""

    slot_min: int
    capacity: int
    hours: Mapping[int, tuple[tuple[int, int], ...]]  # weekday (Monday = 0) -> (from, to) minutes of the day


@dataclass(frozen=True)
class Slot:
    """One bookable period of a service (UTC times)."""

    service: str
    start: dt.datetime
    end: dt.datetime
    capacity: int


def _int(doc: Mapping, name: str, default: int, low: int, high: int) -> int:
    """A whole-number setting within bounds; ValueError naming it otherwise."""
    value = doc.get(name, default)
    if type(value) is not int or not low <= value <= high:
        raise ValueError(f"appointments {name} must be a whole number from {low} to {high}")
    return value


def _minutes(text: str) -> int:
    """Minutes after midnight of HH:MM (24:00 allowed as the end of a day)."""
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _ranges(service: str, day: str, value: object) -> tuple[tuple[int, int], ...]:
    """A weekday's opening hours: ["08:00-12:00", ...], sorted, not overlapping."""
    where = f"appointments services.{service}.hours.{day}"
    if not isinstance(value, list) or len(value) > 12:
        raise ValueError(f"{where} must be a list of at most 12 ranges like \"08:00-12:00\"")
    spans = []
    for item in value:
        found = _HOURS.match(item) if isinstance(item, str) else None
        if not found:
            raise ValueError(f"{where}: {item!r} is not a range like \"08:00-12:00\"")
        start, end = _minutes(item[:5]), _minutes(item[6:])
        if end <= start or end > 24 * 60:
            raise ValueError(f"{where}: {item!r} ends before it starts")
        spans.append((start, end))
    spans.sort()
    if any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:])):
        raise ValueError(f"{where}: the ranges overlap")
    return tuple(spans)


@dataclass(frozen=True)
class Settings:
    """Central's appointment settings for one centre (what `settings/appointments` says)."""

    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Baghdad"))
    days_ahead: int = 14          # today and this many days after it can be booked
    close_before_min: int = 120   # booking for a slot closes this long before it starts
    early_min: int = 30           # check-in opens this long before the slot
    grace_min: int = 15           # and closes this long after it starts (then: a no-show)
    ratio: int = 2                # appointment calls in a row before a waiting walk-in's turn
    remind_before_h: int = 24     # the reminder goes out this long before the slot
    services: Mapping[str, ServiceSlots] = field(default_factory=dict)

    @classmethod
    def from_doc(cls, doc: Mapping | None) -> Settings:
        """The settings of a `settings/appointments` document (none: nothing bookable); ValueError
        naming the problem when it is malformed."""
        if not doc:
            return cls()
        if not isinstance(doc, Mapping):
            raise ValueError("settings/appointments must be an object")
        try:
            timezone = ZoneInfo(doc.get("timezone", "Asia/Baghdad"))
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise ValueError(f"appointments timezone {doc.get('timezone')!r} is not a time zone name") from None
        raw = doc.get("services", {})
        if not isinstance(raw, Mapping) or len(raw) > 200:
            raise ValueError("appointments services must be an object of at most 200 services by code")
        services = {}
        for code, spec in raw.items():
            if not receipts.is_code(code) or len(code) > 16:
                raise ValueError(f"appointments services: {code!r} is not a service code")
            if not isinstance(spec, Mapping):
                raise ValueError(f"appointments services.{code} must be an object")
            hours = spec.get("hours")
            if not isinstance(hours, Mapping) or any(day not in WEEKDAYS for day in hours):
                raise ValueError(f"appointments services.{code}.hours must map mon..sun to lists of ranges")
            services[code] = ServiceSlots(
                slot_min=_int(spec, "slot_min", 15, 5, 480), capacity=_int(spec, "capacity", 1, 1, 1000),
                hours={WEEKDAYS.index(day): _ranges(code, day, value) for day, value in hours.items()})
        return cls(timezone=timezone, days_ahead=_int(doc, "days_ahead", 14, 0, 366),
                   close_before_min=_int(doc, "close_before_min", 120, 0, 7 * 24 * 60),
                   early_min=_int(doc, "early_min", 30, 0, 24 * 60), grace_min=_int(doc, "grace_min", 15, 0, 24 * 60),
                   ratio=_int(doc, "ratio", 2, 1, 100), remind_before_h=_int(doc, "remind_before_h", 24, 1, 24 * 14),
                   services=services)

    def slots(self, service: str, day: dt.date, calendar: Calendar) -> list[Slot]:
        """The slots of a service on a local day, in order (none on rest days and holidays)."""
        spec = self.services.get(service)
        if spec is None or not calendar.is_working_day(day):
            return []
        out = []
        midnight = dt.datetime.combine(day, dt.time(0), tzinfo=self.timezone)
        for opens, closes in spec.hours.get(day.weekday(), ()):
            # wall-clock arithmetic: 08:00 is 08:00 local whatever the offset that day
            for minute in range(opens, closes - spec.slot_min + 1, spec.slot_min):
                start = midnight + dt.timedelta(minutes=minute)
                out.append(Slot(service, start.astimezone(UTC),
                                (start + dt.timedelta(minutes=spec.slot_min)).astimezone(UTC), spec.capacity))
        return out

    def slot_at(self, service: str, start: dt.datetime, calendar: Calendar) -> Slot | None:
        """The slot of a service starting exactly at `start`, if there is one."""
        local_day = start.astimezone(self.timezone).date()
        return next((s for s in self.slots(service, local_day, calendar) if s.start == start), None)

    def local_day(self, moment: dt.datetime) -> dt.date:
        """The centre's local date of a moment."""
        return moment.astimezone(self.timezone).date()

    def bookable_days(self, now: dt.datetime) -> list[dt.date]:
        """Today and the `days_ahead` days after it (local dates)."""
        today = self.local_day(now)
        return [today + dt.timedelta(days=n) for n in range(self.days_ahead + 1)]

    def closes_at(self, slot: Slot) -> dt.datetime:
        """When booking for a slot closes (so every kiosk can have it before it starts)."""
        return slot.start - dt.timedelta(minutes=self.close_before_min)

    def is_open(self, slot: Slot, now: dt.datetime) -> bool:
        """True while a slot can be booked: on a bookable day and before it closes."""
        return self.local_day(slot.start) in self.bookable_days(now) and now < self.closes_at(slot)


# -- codes -----------------------------------------------------------------------------------------

def new_code() -> str:
    """A random booking code: 8 of Crockford's base32 digits (40 bits), read aloud and typed easily."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(text: object) -> str | None:
    """The canonical code in what someone typed: any digits (Arabic-Indic too), upper or lower case,
    Crockford's look-alikes (I and L for 1, O for 0), spaces and dashes; None when it is no code."""
    if not isinstance(text, str) or len(text) > 64:
        return None
    chars = []
    for ch in _SEPARATORS.sub("", text):
        if ch.isdecimal():
            try:
                ch = str(int(ch))
            except ValueError:
                return None
        chars.append(ch)
    code = "".join(chars).upper().translate(_LOOKALIKES)
    if len(code) != CODE_LENGTH or any(ch not in CODE_ALPHABET for ch in code):
        return None
    return code


def format_code(code: str) -> str:
    """A code as printed and shown: two groups of four (K7M2-Q9XD)."""
    return f"{code[:4]}-{code[4:]}"


# -- the signed booking ----------------------------------------------------------------------------

class Key(enum.IntEnum):
    """Integer keys of the booking payload map."""

    VERSION = 0
    CODE = 1
    CENTRE = 2
    SERVICE = 3
    START = 4
    END = 5
    ISSUED_AT = 6


@dataclass(frozen=True)
class Booking:
    """What a booking QR proves: this code is booked at this centre, for this service and slot."""

    code: str
    centre: str
    service: str
    start: dt.datetime
    end: dt.datetime
    issued_at: dt.datetime

    def __post_init__(self):
        """Validate every field and normalise times to whole UTC seconds."""
        if normalise_code(self.code) != self.code:
            raise ValueError("code must be 8 of Crockford's base32 digits")
        for name in ("centre", "service"):
            if not receipts.is_code(getattr(self, name)):
                raise ValueError(f"{name} must be a code")
        for name in ("start", "end", "issued_at"):
            object.__setattr__(self, name, receipts.utc_seconds(getattr(self, name), name))
        if self.end <= self.start:
            raise ValueError("a slot ends after it starts")


def encode_payload(booking: Booking) -> bytes:
    """The canonical CBOR payload of a booking."""
    return cbor2.dumps({Key.VERSION: PAYLOAD_VERSION, Key.CODE: booking.code, Key.CENTRE: booking.centre,
                        Key.SERVICE: booking.service, Key.START: epoch(booking.start), Key.END: epoch(booking.end),
                        Key.ISSUED_AT: epoch(booking.issued_at)}, canonical=True)


def decode_payload(data: bytes) -> Booking:
    """A Booking from canonical payload bytes; BookingError('bad_payload') for anything else."""
    try:
        fields = receipts.strict_loads(data)
        if type(fields) is not dict or set(fields) != set(Key) or any(type(k) is not int for k in fields):
            raise ValueError("payload keys differ from version 1")
        if type(fields[Key.VERSION]) is not int or fields[Key.VERSION] != PAYLOAD_VERSION:
            raise ValueError("unknown payload version")
        return Booking(code=fields[Key.CODE], centre=fields[Key.CENTRE], service=fields[Key.SERVICE],
                       start=from_epoch(fields[Key.START], "start"), end=from_epoch(fields[Key.END], "end"),
                       issued_at=from_epoch(fields[Key.ISSUED_AT], "issued_at"))
    except (ReceiptError, ValueError, TypeError) as exc:
        raise BookingError("bad_payload", str(exc)) from None


def qr_prefix(verify_host: str) -> str:
    """`HTTPS://<HOST>/A#`: the fixed start of every booking QR text for that host."""
    return f"HTTPS://{receipts.normalise_host(verify_host)}{QR_PATH}"


def sign(booking: Booking, private_key: ec.EllipticCurvePrivateKey, verify_host: str) -> str:
    """The QR text of a booking signed with central's booking key."""
    signed = receipts.cose_sign(encode_payload(booking), private_key, BOOKING_AAD)
    return qr_prefix(verify_host) + base64.b32encode(signed).decode("ascii").rstrip("=")


def looks_like_qr(text: object) -> bool:
    """True for text a scanner typed from a booking QR (rather than a typed code)."""
    return isinstance(text, str) and text.strip().upper().startswith("HTTPS://")


def verify(text: str, trust_list: TrustList) -> Booking:
    """The booking a scanned QR text proves, checked offline against the accepted trust list;
    BookingError with a reason (malformed, wrong_host, unsupported_alg, unknown_key, bad_signature,
    bad_payload, key_not_valid, key_revoked) otherwise.

    A keyboard-wedge scanner may type the text in lower case (caps lock): the QR text is upper case
    by construction, so it is read in upper case."""
    if not isinstance(text, str) or len(text) > MAX_QR_TEXT_LENGTH:
        raise BookingError("malformed", "not a string of booking length")
    text = text.strip().upper()
    prefix = qr_prefix(trust_list.verify_host)
    if not text.startswith(prefix):
        if text.startswith("HTTPS://") and QR_PATH in text:
            raise BookingError("wrong_host", "prefix names another host")
        raise BookingError("malformed", "no booking prefix")
    try:
        message = receipts.cose_parse(receipts.b32decode_canonical(text[len(prefix):]))
    except ReceiptError as exc:
        raise BookingError(exc.reason, exc.detail) from None
    candidates = [key for key in trust_list.keys_for(message.kid) if key.centre == BOOKING_SIGNER]
    if not candidates:
        if trust_list.is_key_revoked(message.kid):
            raise BookingError("key_revoked")
        raise BookingError("unknown_key", message.kid.hex())
    signer = next((key for key in candidates if message.verify(key.public_key, BOOKING_AAD)), None)
    if signer is None:
        raise BookingError("bad_signature")
    booking = decode_payload(message.payload)
    if not signer.not_before_at <= booking.issued_at <= signer.not_after_at:
        raise BookingError("key_not_valid")
    if trust_list.is_key_revoked(message.kid):
        raise BookingError("key_revoked")
    return booking


# -- check-in --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Window:
    """When a booking may check in: from `opens_at` (early) to `closes_at` (end of the grace period)."""

    opens_at: dt.datetime
    closes_at: dt.datetime

    @classmethod
    def of(cls, start: dt.datetime, settings: Settings) -> Window:
        """The check-in window of a slot starting at `start`."""
        return cls(start - dt.timedelta(minutes=settings.early_min), start + dt.timedelta(minutes=settings.grace_min))

    def verdict(self, now: dt.datetime) -> str:
        """"too_early", "open" or "too_late" at `now`."""
        if now < self.opens_at:
            return "too_early"
        if now > self.closes_at:
            return "too_late"
        return "open"


def state_at(doc: Mapping, *, checked_in: bool, now: dt.datetime, settings: Settings) -> str:
    """A pulled booking's state at the centre: cancelled, checked_in, no_show (not checked in by the
    end of its grace period) or booked."""
    if doc.get("state") == "cancelled":
        return "cancelled"
    if checked_in:
        return "checked_in"
    if Window.of(parse_iso(doc["start_at"]), settings).verdict(now) == "too_late":
        return "no_show"
    return "booked"
