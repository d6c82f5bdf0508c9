"""Appointments at the centre: checking in at the kiosk, offline, and the day's bookings.

Bookings come from central through the pull (table `appointments`, central's documents: booked or
cancelled). A citizen checks in by typing the short code (looked up in the pulled bookings) or by
scanning the booking QR (verified offline against the accepted trust list, so even a booking made
after the last sync checks in; a pulled cancellation still refuses it). A booking checks in once:
its ticket carries the code and the slot, and the ticket index knows every code that checked in.
Whether a booking came too early or too late is decided from `settings/appointments` (early_min,
grace_min) and the kiosk's clock; a booking not checked in by the end of its grace period is a
no-show.
"""
from __future__ import annotations

import datetime as dt
import logging
import re

from kiosk import services
from kiosk.clock import iso, parse_iso
from kiosk.domain import appointments as ap
from kiosk.domain.errors import CheckInRefused, NotFound, ValidationFailed

log = logging.getLogger(__name__)

# A keyboard-wedge scanner on an Arabic keyboard layout types Arabic letters instead of the code.
_ARABIC_LETTERS = re.compile(r"[\u0600-\u065f\u066e-\u06ff]")


class ScannerLayout(NotFound):
    """The text came from a scanner typing through an Arabic keyboard layout."""

    code = "scanner_layout"


def settings(c: services.Centre) -> ap.Settings:
    """Central's `settings/appointments` (defaults when none was pulled or it cannot be read)."""
    try:
        return ap.Settings.from_doc(c.store.get("settings", ap.SETTING))
    except ValueError as exc:
        log.error("ignoring settings/appointments from central: %s", exc)
        return ap.Settings()


def _booking(c: services.Centre, text: object) -> dict:
    """The booking a typed code or a scanned QR names: {"code", "service", "start_at", "end_at"}."""
    if not isinstance(text, str) or not text.strip():
        raise NotFound("no appointment code given")
    if _ARABIC_LETTERS.search(text):
        raise ScannerLayout("the text is in Arabic letters: set the scanner's keyboard layout to Latin")
    if ap.looks_like_qr(text):
        from kiosk import cases
        trust = cases.current_trust_list(c)
        if trust is None:
            raise NotFound("booking QR codes cannot be checked here yet: no trust list")
        try:
            signed = ap.verify(text, trust)
        except ap.BookingError as exc:
            log.info("a booking QR was refused at check-in: %s", exc.reason)
            raise NotFound(f"not a valid appointment QR code ({exc.reason})") from None
        if signed.centre != c.config["CENTRE"]:
            raise NotFound(f"this appointment is for centre {signed.centre}")
        code, found = signed.code, {"code": signed.code, "service": signed.service, "start_at": iso(signed.start),
                                    "end_at": iso(signed.end)}
    else:
        code = ap.normalise_code(text)
        doc = c.store.get(ap.TABLE, code) if code else None
        if doc is None:
            raise NotFound("no appointment has this code at this centre")
        found = {"code": code, "service": doc["service"], "start_at": doc["start_at"], "end_at": doc["end_at"]}
    pulled = c.store.get(ap.TABLE, code) or {}
    if pulled.get("state") == "cancelled":
        raise CheckInRefused("cancelled", "this appointment was cancelled", start_at=found["start_at"])
    return found


def check_in(c: services.Centre, text: object, *, lang: str | None = None) -> dict:
    """Check a booking in from a typed code or a scanned QR text and issue its ticket (marked with
    the booking's code and slot); NotFound, or CheckInRefused with already_checked_in, cancelled,
    too_early (with opens_at: when to come back) or too_late."""
    if lang is not None and lang not in services.LANGS:
        raise ValidationFailed("unsupported language", {"lang": "must be one of ar, ckb, en"})
    found = _booking(c, text)
    earlier = c.tickets.ticket_of_appointment(found["code"])
    if earlier is not None:
        raise CheckInRefused("already_checked_in", f"this appointment already checked in as ticket {earlier['number']}",
                             ticket=earlier["number"])
    window = ap.Window.of(parse_iso(found["start_at"]), settings(c))
    verdict = window.verdict(c.clock.now())
    if verdict == "too_early":
        raise CheckInRefused("too_early", f"too early: check-in opens at {iso(window.opens_at)}",
                             opens_at=iso(window.opens_at), start_at=found["start_at"])
    if verdict == "too_late":
        raise CheckInRefused("too_late", f"too late: check-in closed at {iso(window.closes_at)}; take a ticket instead",
                             start_at=found["start_at"], service=found["service"])
    ticket = services.issue_ticket(c, service=found["service"], lang=lang, appointment=found)
    log.info("appointment checked in as ticket %s", ticket["number"])
    return ticket


def day_bookings(c: services.Centre, day: dt.date | None = None) -> list[dict]:
    """The pulled bookings of a local day, by time, each with its state at the centre (booked,
    checked_in, no_show, cancelled) and the number of its ticket once checked in."""
    day = day or dt.date.fromisoformat(c.today())
    now, rules, tz = c.clock.now(), settings(c), c.tz
    out = []
    for doc in c.store.find(ap.TABLE, lambda d: parse_iso(d["start_at"]).astimezone(tz).date() == day):
        ticket = c.tickets.ticket_of_appointment(doc["id"])
        out.append({**doc, "ticket": ticket["number"] if ticket else None,
                    "state_now": ap.state_at(doc, checked_in=ticket is not None, now=now, settings=rules)})
    return sorted(out, key=lambda d: (d["start_at"], d["service"], d["id"]))
