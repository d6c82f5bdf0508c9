"""The citizen touchscreen: language, then service (with the documents it needs), then priority and
the ticket. Three taps from the idle screen to a ticket, no typing.

Nothing about a citizen outlives their visit: the session holds only the language, the ticket is
rendered straight from the POST (no URL to come back to), htmx keeps no history, pages are
`no-store`, and the idle reset clears the session and reloads the language screen.
"""
from __future__ import annotations

import logging
from pathlib import Path

import qrcode
from flask import Blueprint, abort, current_app, render_template, request, session, url_for
from markupsafe import Markup

from kiosk import services
from kiosk.app import kiosk
from kiosk.domain.errors import KioskError, RateLimited
from kiosk.web import htmx
from kiosk.web.api import limiter
from kiosk.web.screens import error_text

log = logging.getLogger(__name__)

bp = Blueprint("kiosk", __name__, url_prefix="/kiosk")

PICTOGRAMS = Path(__file__).resolve().parent.parent / "static" / "pictograms"
PRINTER_PROBLEMS = ("offline", "paper_out", "error")


def pictogram(name: str | None) -> str:
    """Static path of a service's or priority class's pictogram (our generic one if none matches)."""
    if name and name.isidentifier() and (PICTOGRAMS / f"{name}.svg").is_file():
        return f"pictograms/{name}.svg"
    return "pictograms/generic.svg"


def qr_svg(text: str) -> Markup:
    """The ticket's QR as inline SVG: one path of horizontal runs (a few KB, no script, no image file)."""
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4)
    qr.add_data(text)
    qr.make(fit=True)
    matrix = qr.get_matrix()
    size = len(matrix)
    runs = []
    for y, row in enumerate(matrix):
        x = 0
        while x < size:
            if row[x]:
                start = x
                while x < size and row[x]:
                    x += 1
                runs.append(f"M{start} {y}h{x - start}v1h-{x - start}z")
            else:
                x += 1
    return Markup(
        f'<svg class="qr" viewBox="0 0 {size} {size}" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'aria-labelledby="qr-label" shape-rendering="crispEdges">'
        f'<rect width="{size}" height="{size}" fill="#fff"/><path fill="#000" d="{"".join(runs)}"/></svg>')


def _chosen_lang() -> str | None:
    """The citizen's language, if they chose one in this visit."""
    lang = session.get("lang")
    return lang if lang in current_app.config["LANGUAGES"] else None


def _printer_state() -> str:
    """"none" without a printer, else the printer's state (online, paper_out, ...)."""
    printer = kiosk().centre.printer
    if printer is None or not hasattr(printer, "status"):
        return "none"
    try:
        return str(printer.status().get("state", "unknown"))
    except Exception:
        log.exception("printer status failed")
        return "error"


@bp.get("")
def language():
    """The idle screen: three big buttons, each in its own language."""
    return render_template("kiosk/language.html")


@bp.post("/lang")
def choose_language():
    """Remember the language for this visit and go to the services (a full load: lang and dir change)."""
    lang = request.form.get("lang")
    if lang not in current_app.config["LANGUAGES"]:
        abort(400)
    session.clear()
    session["lang"] = lang
    return htmx.redirect(url_for("kiosk.service_list"))


@bp.get("/services")
def service_list():
    """Large service tiles with pictograms."""
    if _chosen_lang() is None:
        return htmx.redirect(url_for("kiosk.language"))
    centre = kiosk().centre
    tiles = [{**s, "pictogram_path": pictogram(s.get("pictogram")), "availability": services.availability(centre, s)}
             for s in services.services_list(centre)]
    return htmx.render("kiosk/services.html", "main", tiles=tiles, closed_day=services.centre_closed(centre))


def _service_page(code: str, *, error: str | None = None, status: int = 200):
    """The documents a service needs and the buttons that take a ticket (normal or priority)."""
    centre = kiosk().centre
    try:
        service = services.get_service(centre, code)
    except KioskError:
        abort(404)
    classes = [{**p, "pictogram_path": pictogram(p["id"])} for p in services.priority_classes(centre)]
    return htmx.render("kiosk/service.html", "main", status=status, service=service, classes=classes,
                       pictogram_path=pictogram(service.get("pictogram")), error=error,
                       availability=services.availability(centre, service))


@bp.get("/services/<code>")
def service_detail(code):
    """Second tap: what to bring, and how to take the ticket."""
    if _chosen_lang() is None:
        return htmx.redirect(url_for("kiosk.language"))
    return _service_page(code)


@bp.post("/tickets")
def take_ticket():
    """Third tap: issue the ticket and show it with its QR (also the fallback if paper fails)."""
    lang = _chosen_lang()
    if lang is None:
        return htmx.redirect(url_for("kiosk.language"))
    code = request.form.get("service") or ""
    priority = request.form.get("priority") or services.NORMAL
    try:
        if not limiter.allow("kiosk:" + (request.remote_addr or "?"), current_app.config["TICKET_RATE_PER_MIN"]):
            raise RateLimited("too many tickets from this terminal")
        ticket = services.issue_ticket(kiosk().centre, service=code, priority=priority, lang=lang)
    except KioskError as exc:
        log.info("kiosk could not issue a ticket for %s: %s", code, exc.code)
        if exc.code == "unknown_service":
            abort(404)
        # a refusal is an answer, not a fault: the page says why (htmx swaps only 2xx answers)
        error = None if exc.code == "service_unavailable" else error_text(exc.code)
        return _service_page(code, error=error, status=200 if htmx.is_htmx() else exc.status)
    centre = kiosk().centre
    service = services.get_service(centre, ticket["service"])
    priority_class = next((p for p in services.priority_classes(centre) if p["id"] == ticket["priority"]), None)
    return htmx.render("kiosk/ticket.html", "main", ticket=ticket, service=service, qr=qr_svg(ticket["qr"]),
                       printer=_printer_state(), printer_problems=PRINTER_PROBLEMS, priority_class=priority_class)


@bp.post("/reset")
def reset():
    """Idle timeout or "done": forget everything of this visit and show the language screen again."""
    session.clear()
    return htmx.redirect(url_for("kiosk.language"))
