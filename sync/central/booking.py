"""The public booking pages at central, in Arabic, Sorani and English: choose a centre, a service, a
day and a free time, give a phone number for a reminder if you like, and get a code and a QR to
bring to the centre; look a booking up and cancel it with its code. No login and no script.

Pages are rendered like the /R page (`sync.central.receipts._page`: central's languages from
sync.central.i18n, ?lang= or the browser's, and a strict CSP); every form's address carries the
page's language. Forms are protected by a random token in a SameSite=Strict cookie that the form
must repeat (another site can neither read the cookie nor make the browser send it), and by
refusing another origin. Booking, cancelling and looking up a code count against the address's
requests per minute, as the JSON API does.
"""
from __future__ import annotations

import datetime as dt
import hmac
import logging
import secrets

import qrcode
import qrcode.image.svg
from flask import Blueprint, Flask, Response, abort, current_app, g, redirect, request, url_for
from markupsafe import Markup

from kiosk.domain import appointments as ap
from kiosk.i18n import locales
from sync.central import appointments as booking
from sync.central import i18n, names
from sync.central.errors import ApiError
from sync.central.receipts import _page

log = logging.getLogger(__name__)

bp = Blueprint("booking", __name__)
COOKIE = "booking_form"


def _central():
    """The app's Central (engine, clock)."""
    return current_app.extensions["central"]


# -- form protection -------------------------------------------------------------------------------

def form_token() -> str:
    """This browser's form token (a new one is set as a cookie with the page)."""
    token = request.cookies.get(COOKIE)
    if not token or len(token) != 43:
        token = g.setdefault("new_form_token", secrets.token_urlsafe(32))
    return token


@bp.after_request
def _set_token(response: Response) -> Response:
    """Hand out a new form token, and never cache a booking page."""
    token = g.get("new_form_token")
    if token:
        response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", secure=request.is_secure, path="/")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def check_form() -> None:
    """400 unless the form repeats the cookie's token; 403 for a request from another origin."""
    origin = request.headers.get("Origin")
    if origin and origin != "null" and origin.rstrip("/") != request.host_url.rstrip("/"):
        abort(403)
    cookie, sent = request.cookies.get(COOKIE, ""), request.form.get("token", "")
    if not cookie or not hmac.compare_digest(cookie.encode(), sent.encode()):
        abort(400)


# -- what the pages show ---------------------------------------------------------------------------

def qr_svg(text: str) -> Markup:
    """A QR code as inline SVG (no script, no image file)."""
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage,
                        error_correction=qrcode.constants.ERROR_CORRECT_M)
    svg = image.to_string(encoding="unicode")
    return Markup(svg.replace("<svg ", '<svg class="qr" role="img" aria-labelledby="qr-label" ', 1))


def _show(template: str, status: int = 200, **context) -> Response:
    """A booking page in the reader's language."""
    return _page(template, status, token=form_token(),
                 code_text=lambda code: Markup('<bdi dir="ltr" class="code">%s</bdi>') % ap.format_code(code),
                 **context)


def _error(status: int, error: str) -> Response:
    """An error page of the booking pages, in the reader's language (`error`: a message key of
    central/appointments/_messages.html)."""
    return _show("central/appointments/error.html", status, error=error)


def _centre_or_404(conn, code: str) -> tuple[str, names.Directory]:
    """A centre's name in the page's language and the names of its services; 404 for no centre."""
    directory = names.directory(conn, code)
    name = directory.centre(code)
    if name is None:
        abort(404)
    return name, directory


def _times(settings: ap.Settings):
    """Formatting of a slot's local time and date in the page's language."""
    lang = i18n.current_lang()

    def time(moment: dt.datetime) -> str:
        return locales.digits(moment.astimezone(settings.timezone).strftime("%H:%M"), lang)

    def day(moment: dt.datetime | dt.date) -> str:
        if isinstance(moment, dt.datetime):
            moment = moment.astimezone(settings.timezone)
        return locales.format_date(moment, lang, weekday=True)
    return time, day


# -- pages -----------------------------------------------------------------------------------------

@bp.get("/book")
def start():
    """The bookable centres."""
    with _central().engine.connect() as conn:
        directory = names.directory(conn)
        centres = [{**c, "name": directory.centre(c["code"])} for c in booking.bookable_centres(conn)]
    return _show("central/appointments/start.html", centres=centres)


@bp.get("/book/<centre>")
def services(centre: str):
    """The bookable services of a centre."""
    with _central().engine.connect() as conn:
        name, directory = _centre_or_404(conn, centre)
        settings, _ = booking.rules(conn, centre)
    listed = [{"code": code, "name": directory.service(code, centre) or code} for code in sorted(settings.services)]
    return _show("central/appointments/services.html", centre=centre, centre_name=name, services=listed)


def _slots_page(centre: str, service: str, day: dt.date | None, *, status: int = 200, error: str | None = None,
                chosen: str | None = None, phone: str = "") -> Response:
    """The days that still have free times, and the free times of one of them."""
    central = _central()
    now = central.clock.now()
    with central.engine.connect() as conn:
        name, directory = _centre_or_404(conn, centre)
        settings, _calendar = booking.rules(conn, centre)
        if service not in settings.services:
            abort(404)
        days = []
        for candidate in settings.bookable_days(now):
            found = booking.free_slots(conn, centre, service, candidate, now)
            if any(s["free"] for s in found):
                days.append((candidate, found))
    if day is None and days:
        day = days[0][0]
    slots = next((found for candidate, found in days if candidate == day), [])
    time, day_text = _times(settings)
    shown = [{**s, "label": time(dt.datetime.fromisoformat(s["start"].replace("Z", "+00:00")))} for s in slots]
    return _show("central/appointments/slots.html", status, centre=centre, centre_name=name, service=service,
                 service_name=directory.service(service, centre) or service,
                 days=[(d, day_text(d)) for d, _ in days], day=day, day_label=day_text(day) if day else "",
                 slots=shown, error=error, chosen=chosen, phone=phone, reminders=booking.reminders_on())


@bp.get("/book/<centre>/<service>")
def slots(centre: str, service: str):
    """Choose a day and a time."""
    try:
        day = dt.date.fromisoformat(request.args["date"]) if request.args.get("date") else None
    except ValueError:
        abort(404)
    return _slots_page(centre, service, day)


@bp.post("/book/<centre>/<service>")
def book(centre: str, service: str):
    """Book the chosen time, then show the booking with its code and QR."""
    check_form()
    start, phone = request.form.get("start", ""), request.form.get("phone", "").strip()
    try:
        booking.limit("book")
        data = booking.parse_booking({"centre": centre, "service": service, "start": start,
                                      "lang": i18n.current_lang(), **({"phone": phone} if phone else {})})
        made = booking.book_now(data)
    except ApiError as exc:
        log.info("booking page refused a booking at %s: %s", centre, exc.code)
        fields = exc.extra.get("fields", {})
        if exc.code == "not_configured" or "centre" in fields:
            return _error(exc.status, "unavailable" if exc.code == "not_configured" else "not_found")
        message = ("bad_phone" if "phone" in fields else "bad_start" if "start" in fields or "service" in fields
                   else exc.code if exc.code in ("slot_full", "rate_limited") else "failed")
        local_day = None
        try:
            with _central().engine.connect() as conn:
                settings, _calendar = booking.rules(conn, centre)
            local_day = settings.local_day(dt.datetime.fromisoformat(start.replace("Z", "+00:00")))
        except ValueError:
            pass
        return _slots_page(centre, service, local_day, status=exc.status, error=message, chosen=start, phone=phone)
    return redirect(url_for("booking.show", code=made["code"], lang=i18n.current_lang(), made=1), 303)


@bp.post("/book/find")
def find():
    """Look a booking up by its code."""
    check_form()
    code = ap.normalise_code(request.form.get("code", ""))
    if code is None:
        return _error(404, "not_found")
    return redirect(url_for("booking.show", code=code, lang=i18n.current_lang()), 303)


def _booking_page(code: str, *, status: int = 200, notice: str | None = None, error: str | None = None) -> Response:
    """One booking: its code, QR, centre, service, day and time, and the cancel button."""
    try:
        booking.limit("lookup")
    except ApiError:
        return _error(429, "rate_limited")
    central = _central()
    with central.engine.connect() as conn:
        row = booking.find(conn, code)
        if row is None:
            return _error(404, "not_found")
        name, directory = _centre_or_404(conn, row.centre)
        settings, _calendar = booking.rules(conn, row.centre)
    time, day_text = _times(settings)
    window = ap.Window.of(row.start_at, settings)
    return _show("central/appointments/booking.html", status, booking=row, centre_name=name,
                 service_name=directory.service(row.service, row.centre) or row.service,
                 day_label=day_text(row.start_at), start_label=time(row.start_at), end_label=time(row.end_at),
                 opens_label=time(window.opens_at), qr=qr_svg(row.qr), notice=notice, error=error,
                 can_cancel=row.state == "booked" and central.clock.now() < row.start_at)


@bp.get("/appointment/<code>")
def show(code: str):
    """A booking by its code."""
    return _booking_page(code, notice="booked" if request.args.get("made") else None)


@bp.post("/appointment/<code>/cancel")
def cancel(code: str):
    """Cancel a booking with its code."""
    check_form()
    central = _central()
    try:
        booking.limit("cancel")
        with central.engine.begin() as conn:
            booking.cancel(conn, code, central.clock.now())
    except ApiError as exc:
        if exc.code in ("not_found", "rate_limited"):
            return _error(exc.status, exc.code)
        return _booking_page(code, status=exc.status, error="too_late")
    return _booking_page(code, notice="cancelled")


@bp.get("/A")
@bp.get("/a")
def qr_landing():
    """Where a phone's camera lands when it reads a booking QR: the QR is for the centre's kiosk."""
    return _show("central/appointments/qr.html")


def register(app: Flask) -> None:
    """Install the booking pages."""
    app.register_blueprint(bp)
