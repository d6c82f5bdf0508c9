"""Appointments at the centre: the citizen's check-in at the touchscreen (a keyboard-wedge scanner
types the booking QR, or the citizen types the short code on the screen's keypad), the JSON
check-in for integrations, and the staff's list of the day's bookings.

The check-in field keeps the focus, so whatever the scanner types lands in it and its Enter
submits. Every refusal is an answer on the screen in the citizen's language, never an error page:
too early (come back at ...), too late (take a normal ticket instead), already checked in (your
ticket is ...), cancelled, or not found.
"""
from __future__ import annotations

import datetime as dt
import logging

from flask import Blueprint, abort, current_app, jsonify, request, session, url_for

from kiosk import services
from kiosk.app import kiosk
from kiosk.clock import parse_iso
from kiosk.domain import appointments as ap
from kiosk.domain.errors import KioskError, RateLimited
from kiosk.i18n import locales
from kiosk.usecases import appointments as usecase
from kiosk.web import htmx
from kiosk.web.api import body, limiter, public_ticket
from kiosk.web.auth import current_staff, staff_required
from kiosk.web.kiosk import PRINTER_PROBLEMS, _printer_state, qr_svg
from kiosk.web.screens import current_lang

log = logging.getLogger(__name__)

bp = Blueprint("appointments", __name__)
MAX_TEXT = ap.MAX_QR_TEXT_LENGTH


def _allowed() -> None:
    """The same per-terminal limit as taking a ticket."""
    if not limiter.allow("kiosk:" + (request.remote_addr or "?"), current_app.config["TICKET_RATE_PER_MIN"]):
        raise RateLimited("too many check-ins from this terminal; wait a moment")


def _local(value: str | None) -> dt.datetime | None:
    """An ISO UTC time as the centre's local time."""
    return parse_iso(value).astimezone(kiosk().centre.tz) if value else None


def _clock_time(moment: dt.datetime | None, lang: str) -> str:
    """HH:MM in the language's digits."""
    return locales.digits(moment.strftime("%H:%M"), lang) if moment else ""


@bp.app_template_filter("clock")
def clock_filter(value: str | None) -> str:
    """An ISO UTC time as the centre's local HH:MM in the page's digits (a slot's start on the
    counter's and supervisor's lists)."""
    return _clock_time(_local(value), current_lang())


@bp.post("/api/v1/appointments/check-in")
def check_in_api():
    """Check a booking in by its short code or its QR text; 201 with the ticket."""
    data = body({"code": str, "lang": str}, required=("code",))
    _allowed()
    ticket = usecase.check_in(kiosk().centre, data["code"][:MAX_TEXT + 1], lang=data.get("lang"))
    response = jsonify({"ticket": public_ticket(ticket)})
    response.status_code = 201
    response.headers["Location"] = f"/api/v1/tickets/{ticket['id']}"
    return response


def _chosen_lang() -> str | None:
    """The citizen's language, if they chose one in this visit."""
    lang = session.get("lang")
    return lang if lang in current_app.config["LANGUAGES"] else None


def _form(*, refusal: str | None = None, status: int = 200, **facts):
    """The check-in screen, with the answer to the last attempt when it was refused."""
    return htmx.render("kiosk/appointment.html", "main", status=status, refusal=refusal, **facts)


@bp.get("/kiosk/appointment")
def check_in_form():
    """"I have an appointment": a field for the scanner or the keypad."""
    if _chosen_lang() is None:
        return htmx.redirect(url_for("kiosk.language"))
    return _form()


@bp.post("/kiosk/appointment")
def check_in_screen():
    """Check in and show the ticket, or say why not and what to do."""
    lang = _chosen_lang()
    if lang is None:
        return htmx.redirect(url_for("kiosk.language"))
    centre = kiosk().centre
    text = (request.form.get("code") or "")[:MAX_TEXT + 1]
    try:
        _allowed()
        ticket = usecase.check_in(centre, text, lang=lang)
    except KioskError as exc:
        log.info("check-in refused: %s", exc.code)
        details = exc.details
        start = _local(details.get("start_at"))
        opens = _local(details.get("opens_at"))
        today = dt.date.fromisoformat(centre.today())
        service = None
        if details.get("service"):
            try:
                service = services.get_service(centre, details["service"])
            except KioskError:
                service = None
        # a refusal is an answer, not a fault: htmx swaps only 2xx answers
        return _form(refusal=exc.code, status=200 if htmx.is_htmx() else exc.status,
                     start_time=_clock_time(start, lang), opens_time=_clock_time(opens, lang),
                     opens_day=locales.format_date(opens, lang, weekday=True) if opens and opens.date() != today else None,
                     ticket_number=details.get("ticket"), service=service)
    service = services.get_service(centre, ticket["service"])
    start = _local(ticket["slot_start_at"])
    return htmx.render("kiosk/checked_in.html", "main", ticket=ticket, service=service, qr=qr_svg(ticket["qr"]),
                       start_time=_clock_time(start, lang), started=parse_iso(ticket["slot_start_at"]) <= centre.clock.now(),
                       printer=_printer_state(), printer_problems=PRINTER_PROBLEMS)


@bp.get("/appointments")
@staff_required()
def today():
    """The day's bookings with their state at the centre (staff)."""
    centre = kiosk().centre
    try:
        day = dt.date.fromisoformat(request.args["day"]) if request.args.get("day") else None
    except ValueError:
        abort(400)
    bookings = usecase.day_bookings(centre, day)
    names = {s["code"]: s.get("names") for s in services.services_list(centre)}
    counts = {state: sum(1 for b in bookings if b["state_now"] == state)
              for state in ("booked", "checked_in", "no_show", "cancelled")}
    return htmx.render("appointments/today.html", "bookings", bookings=bookings, names=names, counts=counts,
                       day=day or dt.date.fromisoformat(centre.today()), staff=current_staff(),
                       code_text=ap.format_code)
