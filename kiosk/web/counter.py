"""The attendant console: open a counter, call the next ticket (with the reason), recall, start,
finish, no-show, hold, requeue, transfer, call a specific ticket, breaks; a live waiting list.

Every action re-renders the `console` block; the waiting list and the day's figures refresh
themselves on the `queue-changed` event of the staff stream.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager

from flask import Blueprint, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext
from markupsafe import Markup

from kiosk import services
from kiosk.app import kiosk
from kiosk.clock import parse_iso
from kiosk.domain.errors import KioskError, NotFound
from kiosk.web import htmx
from kiosk.web.auth import current_staff, staff_required
from kiosk.web.screens import bdi, error_text, lname, minutes

log = logging.getLogger(__name__)

bp = Blueprint("counter", __name__, url_prefix="/counter")

ROLES = ("attendant", "supervisor")
ACTIONS = {"recall": "recall", "start": "start", "finish": "finish", "no-show": "no_show",
           "hold": "hold", "requeue": "requeue", "reactivate": "reactivate"}
RULE_TEXTS = {
    "overdue": lazy_gettext("waited %(wait)s, longer than the maximum wait"),
    "priority": lazy_gettext("priority (%(class)s), waited %(wait)s"),
    "turn": lazy_gettext("a normal ticket's turn after priority calls, waited %(wait)s"),
    "next": lazy_gettext("next in line, waited %(wait)s"),
    "chosen": lazy_gettext("chosen from the waiting list, waited %(wait)s"),
    "appointment": lazy_gettext("appointment whose time has come, waited %(wait)s"),
    "early": lazy_gettext("appointment before its time, nobody else waiting"),
}
DONE_TEXTS = {
    "recall": lazy_gettext("Called %(number)s again."),
    "start": lazy_gettext("Serving %(number)s."),
    "finish": lazy_gettext("%(number)s is finished."),
    "no_show": lazy_gettext("%(number)s did not come: marked as not present."),
    "hold": lazy_gettext("%(number)s is on hold."),
    "requeue": lazy_gettext("%(number)s is back in the queue."),
    "reactivate": lazy_gettext("%(number)s is back in the queue."),
}
STATUS_TEXTS = {
    "open": lazy_gettext("The counter is open."),
    "break": lazy_gettext("You are on a break. The counter takes no calls."),
    "closed": lazy_gettext("The counter is closed."),
}


def printer_info() -> dict:
    """The printer's status for staff screens; state "none" means preview / not configured."""
    printer = kiosk().centre.printer
    if printer is None:
        return {"state": "none", "can_reprint": False, "pending": 0, "last_error": None, "checked_at": None}
    info = {"state": "unknown", "pending": 0, "last_error": None, "checked_at": None}
    if hasattr(printer, "status"):
        try:
            info.update(printer.status() or {})
        except Exception:
            log.exception("printer status failed")
            info["state"] = "error"
    info["can_reprint"] = callable(getattr(printer, "reprint", None))
    return info


def _class_names() -> dict[str, str]:
    """Priority class id -> name in the current language."""
    return {p["id"]: lname(p.get("names")) for p in services.priority_classes(kiosk().centre)}


def waited_s(ticket: dict) -> int:
    """How long the citizen waited before this call (from arrival, kept across transfers)."""
    called_at = next((e["at"] for e in reversed(ticket["events"]) if e["state"] == "called"), None)
    if called_at is None:
        return 0
    arrival = parse_iso(ticket.get("arrival_at") or ticket["issued_at"])
    return max(0, int((parse_iso(called_at) - arrival).total_seconds()))


def call_reason(ticket: dict, classes: dict[str, str] | None = None) -> str:
    """Why this ticket was called, in the attendant's language ("priority (Over 65), waited 12 minutes")."""
    event = next((e for e in reversed(ticket["events"]) if e["state"] == "called"), {})
    rule = event.get("reason") or "next"
    template = RULE_TEXTS.get(rule, RULE_TEXTS["next"])
    classes = classes if classes is not None else _class_names()
    return str(template) % {"wait": minutes(waited_s(ticket)),
                            "class": classes.get(ticket["priority"], ticket["priority"])}


def _console(counter_id: str, *, notice: Markup | str | None = None, error: str | None = None) -> dict:
    """Everything the console template shows for one counter."""
    centre = kiosk().centre
    counter = next((k for k in services.counters_list(centre) if k["id"] == counter_id), None)
    if counter is None:
        raise NotFound(f"unknown counter {counter_id!r}", counter=counter_id)
    staff = current_staff()
    classes = _class_names()
    current = [{**services.ticket_view(centre, t), "reason_text": call_reason(t, classes)}
               for t in centre.tickets.at_counter(counter_id)]
    parked = sorted(centre.tickets.parked_at(counter_id), key=lambda t: t["events"][-1]["at"])
    return {"counter": counter, "base": url_for("counter.console", counter_id=counter_id), "current": current, "parked": parked,
            "waiting": services.waiting_list(centre, counter_id), "classes": classes,
            "stats": services.staff_today(centre, staff["id"]), "staff": staff,
            "services": services.services_list(centre, active_only=True),
            "service_names": {s["code"]: lname(s.get("names")) for s in services.services_list(centre)},
            "printer": printer_info(), "notice": notice, "error": error}


def _render(counter_id: str, block: str = "console", *, status: int = 200, **kwargs):
    """The console page, or one of its blocks for htmx."""
    return htmx.render("counter/console.html", block, status=status, **_console(counter_id, **kwargs))


def _require_open(counter_id: str) -> str | None:
    """An error text when the counter is on a break or closed (it must not take calls then)."""
    counter = next((k for k in services.counters_list(kiosk().centre) if k["id"] == counter_id), None)
    if counter is not None and counter["status"] != "open":
        return _("Open the counter before calling tickets.")
    return None


@contextmanager
def _acting(counter_id: str, action: str, ticket_id: str | None = None):
    """Check the counter rights (services.authorize: an attendant acts only at the counter they
    hold and on tickets called there) and do the action in the same store transaction."""
    centre = kiosk().centre
    with centre.store.transaction():
        services.authorize(centre, current_staff(), action=action, counter=counter_id, ticket_id=ticket_id)
        yield centre


def _action_error(counter_id: str, exc: KioskError):
    """Show why an action failed inside the console (htmx swaps only 2xx answers, so 200 for htmx)."""
    log.info("counter %s action refused: %s", counter_id, exc.message)
    status = 200 if htmx.is_htmx() else exc.status
    return _render(counter_id, status=status, error=error_text(exc.code))


@bp.get("")
@staff_required(*ROLES)
def index():
    """Choose a counter (or go straight back to the one this session has open)."""
    chosen = session.get("counter")
    counters = services.counters_list(kiosk().centre)
    if chosen and any(k["id"] == chosen for k in counters):
        return htmx.redirect(url_for("counter.console", counter_id=chosen))
    return render_template("counter/choose.html", counters=counters)


@bp.post("/open")
@staff_required(*ROLES)
def open_counter():
    """Open a counter for this attendant."""
    counter_id = request.form.get("counter") or ""
    try:
        with _acting(counter_id, "counter_open") as centre:
            services.set_counter_status(centre, counter_id, "open", by=current_staff()["id"])
    except KioskError as exc:
        return render_template("counter/choose.html", counters=services.counters_list(kiosk().centre),
                               error=error_text(exc.code)), exc.status
    session["counter"] = counter_id
    return htmx.redirect(url_for("counter.console", counter_id=counter_id))


@bp.get("/<counter_id>")
@staff_required(*ROLES)
def console(counter_id):
    """The console of one counter."""
    session["counter"] = counter_id
    return _render(counter_id)


@bp.get("/<counter_id>/waiting")
@staff_required(*ROLES)
def waiting(counter_id):
    """The live waiting list (refreshed on queue changes)."""
    return htmx.render("counter/console.html", "waiting", **_console(counter_id))


@bp.get("/<counter_id>/stats")
@staff_required(*ROLES)
def stats(counter_id):
    """Today's served count and average service time (refreshed on queue changes)."""
    return htmx.render("counter/console.html", "stats", **_console(counter_id))


@bp.post("/<counter_id>/call-next")
@staff_required(*ROLES)
def call_next(counter_id):
    """Call the next ticket by the queue policy and say why it was chosen."""
    refused = _require_open(counter_id)
    if refused:
        return _render(counter_id, error=refused)
    try:
        with _acting(counter_id, "call_next") as centre:
            result = services.call_next(centre, counter=counter_id, by=current_staff()["id"])
    except KioskError as exc:
        return _action_error(counter_id, exc)
    if result is None:
        return _render(counter_id, notice=_("Nobody is waiting for this counter's services."))
    ticket, _reason, _rule = result
    notice = Markup(_("Called %(number)s: %(reason)s")) % {"number": bdi(ticket["number"]),
                                                          "reason": call_reason(ticket)}
    return _render(counter_id, notice=notice)


@bp.post("/<counter_id>/tickets/<ticket_id>/call")
@staff_required(*ROLES)
def call_ticket(counter_id, ticket_id):
    """Call a specific waiting ticket (allowed and audited as out of turn)."""
    refused = _require_open(counter_id)
    if refused:
        return _render(counter_id, error=refused)
    try:
        with _acting(counter_id, "call") as centre:
            ticket = services.call_ticket(centre, ticket_id, counter=counter_id, by=current_staff()["id"])
    except KioskError as exc:
        return _action_error(counter_id, exc)
    notice = Markup(_("Called %(number)s: %(reason)s")) % {"number": bdi(ticket["number"]),
                                                          "reason": call_reason(ticket)}
    return _render(counter_id, notice=notice)


@bp.post("/<counter_id>/tickets/<ticket_id>/transfer")
@staff_required(*ROLES)
def transfer(counter_id, ticket_id):
    """Send the citizen to another service's queue; they keep their arrival time."""
    centre = kiosk().centre
    try:
        old = services.get_ticket(centre, ticket_id)
        with _acting(counter_id, "transfer", ticket_id):
            new = services.transfer(centre, ticket_id, service=request.form.get("service") or "",
                                    by=current_staff()["id"])
        service = services.get_service(centre, new["service"])
    except KioskError as exc:
        return _action_error(counter_id, exc)
    notice = Markup(_("%(number)s transferred to %(service)s as %(new)s.")) % {
        "number": bdi(old["number"]), "service": lname(service.get("names")), "new": bdi(new["number"])}
    return _render(counter_id, notice=notice)


@bp.post("/<counter_id>/tickets/<ticket_id>/reprint")
@staff_required(*ROLES)
def reprint(counter_id, ticket_id):
    """Print a ticket again (only offered when the printer can reprint)."""
    centre = kiosk().centre
    printer = centre.printer
    try:
        with _acting(counter_id, "reprint"):
            ticket = services.get_ticket(centre, ticket_id)
            service = services.get_service(centre, ticket["service"])
    except KioskError as exc:
        return _action_error(counter_id, exc)
    if not callable(getattr(printer, "reprint", None)):
        return _render(counter_id, error=_("This printer cannot reprint."))
    try:
        printer.reprint(ticket, service, services.priority_names(centre, ticket))
    except Exception:
        log.exception("reprint of ticket %s failed", ticket["number"])
        return _render(counter_id, error=_("The printer did not accept the ticket. Check the printer."))
    return _render(counter_id, notice=Markup(_("Ticket %(number)s sent to the printer again.")) % {
        "number": bdi(ticket["number"])})


@bp.post("/<counter_id>/tickets/<ticket_id>/<action>")
@staff_required(*ROLES)
def act(counter_id, ticket_id, action):
    """recall, start, finish, no-show, hold, requeue, reactivate."""
    if action not in ACTIONS:
        return _action_error(counter_id, NotFound(f"unknown action {action!r}"))
    try:
        with _acting(counter_id, ACTIONS[action], ticket_id) as centre:
            ticket = services.act(centre, ticket_id, ACTIONS[action], by=current_staff()["id"],
                                  counter=counter_id if action == "recall" else None)
    except KioskError as exc:
        return _action_error(counter_id, exc)
    return _render(counter_id, notice=Markup(str(DONE_TEXTS[ACTIONS[action]])) % {"number": bdi(ticket["number"])})


@bp.post("/<counter_id>/status")
@staff_required(*ROLES)
def set_status(counter_id):
    """Open, break or close the counter."""
    status = request.form.get("status") or ""
    try:
        with _acting(counter_id, f"counter_{status}") as centre:
            services.set_counter_status(centre, counter_id, status, by=current_staff()["id"])
    except KioskError as exc:
        return _action_error(counter_id, exc)
    return _render(counter_id, notice=str(STATUS_TEXTS[status]))
