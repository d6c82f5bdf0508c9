"""The supervisor's queue report (`/admin/report`, with its CSV and XLSX) and the citizen's
feedback: the phone page's question after a finished visit (`/t/<id>/feedback`, the endpoint
`feedback.ticket` the follow page links to) and the counter-side tablet (`/feedback/<counter>`).

Both feedback screens are plain forms (they work without JavaScript): five faces as submit
buttons and an optional comment. The phone's page takes a session only to carry its CSRF token.
"""
from __future__ import annotations

import datetime as dt

from babel.dates import get_day_names
from flask import Blueprint, Response, current_app, g, redirect, render_template, request, url_for
from flask_babel import get_locale, lazy_gettext

from kiosk import services
from kiosk.app import kiosk
from kiosk.domain import queue_report, report_files
from kiosk.domain.errors import AlreadyRated, InvalidTransition, KioskError, NotFound, ValidationFailed
from kiosk.usecases import insight
from kiosk.web.auth import current_staff, require_staff_network, staff_required
from kiosk.web.follow import _page_lang
from kiosk.web.screens import error_text, lname

reports = Blueprint("reports", __name__, url_prefix="/admin/report")
bp = Blueprint("feedback", __name__)

FACES = (  # score, pictogram, label
    (5, "face-5", lazy_gettext("Very good")),
    (4, "face-4", lazy_gettext("Good")),
    (3, "face-3", lazy_gettext("Neither good nor bad")),
    (2, "face-2", lazy_gettext("Bad")),
    (1, "face-1", lazy_gettext("Very bad")),
)
RANGE_TEXTS = {"from": lazy_gettext("Choose a first day like 2026-11-01."),
               "to": lazy_gettext("Choose a last day on or after the first, at most a year later.")}
FILE_TYPES = {"csv": "text/csv", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def weekday_names() -> list[str]:
    """Monday..Sunday in the current language (the report's weekday 0 is Monday)."""
    names = get_day_names("wide", locale=get_locale())
    return [names[n] for n in range(7)]


def _range() -> tuple[dt.date, dt.date]:
    """The range asked for (default: this month so far, also for a field left empty in the form)."""
    return queue_report.parse_range(request.args.get("from") or None, request.args.get("to") or None,
                               kiosk().centre.today())


def report_context(report: dict) -> dict:
    """What the report template needs besides the figures (shared with central's page)."""
    return {"report": report, "weekdays": weekday_names(),
            "service_names": {s["code"]: lname(s.get("names")) for s in services.services_list(kiosk().centre)},
            "trend": [(dt.date.fromisoformat(d["day"]), d["issued"]) for d in report["days"]]}


@reports.get("")
@staff_required("supervisor")
def page():
    """The report of a range of days, with its charts and file links."""
    try:
        first, last = _range()
    except ValidationFailed as exc:
        errors = {k: str(RANGE_TEXTS[k]) for k in exc.fields}
        return render_template("reports/queue.html", report=None, errors=errors, staff=current_staff(),
                               first=request.args.get("from", ""), last=request.args.get("to", "")), 422
    report = insight.queue_report(kiosk().centre, first, last)
    return render_template("reports/queue.html", errors={}, staff=current_staff(), first=first.isoformat(),
                           last=last.isoformat(), **report_context(report))


@reports.get("/<any(csv, xlsx):fmt>")
@staff_required("supervisor")
def download(fmt):
    """The report as CSV (UTF-8 with BOM, so spreadsheets show Arabic and Kurdish right) or XLSX."""
    centre = kiosk().centre
    first, last = _range()
    report = insight.queue_report(centre, first, last)
    scope = centre.config["CENTRE"]
    content = ("\ufeff" + report_files.to_csv(report, scope)).encode("utf-8") if fmt == "csv" \
        else report_files.to_xlsx(report, scope)
    response = Response(content, mimetype=FILE_TYPES[fmt])
    response.headers["Content-Disposition"] = f'attachment; filename="queue-{scope}-{first}-{last}.{fmt}"'
    return response


# -- feedback --------------------------------------------------------------------------------------

def _form_values() -> tuple[object, str | None]:
    """The score button pressed and the comment typed."""
    raw = request.form.get("score", "")
    score: object = int(raw) if raw.isascii() and raw.isdigit() else raw
    return score, request.form.get("comment") or None


@bp.route("/t/<ticket_id>/feedback", methods=["GET", "POST"])
def ticket(ticket_id: str):
    """Ask the citizen on their phone how the visit went; one answer per ticket."""
    centre = kiosk().centre
    try:
        found = services.get_ticket(centre, ticket_id)
    except NotFound:
        g.lang = _page_lang(None)
        raise
    g.lang = _page_lang(found.get("lang"))
    state, status = "ask", 200
    if found["state"] != "done":
        state, status = "not_done", 409
    elif request.method == "POST":
        score, comment = _form_values()
        try:
            insight.give_feedback(centre, ticket_id, score=score, comment=comment)
            state = "thanks"
        except AlreadyRated:
            state, status = "rated", 409
        except (ValidationFailed, InvalidTransition) as exc:
            state, status = "ask", exc.status
            g.feedback_error = error_text(exc.code)
    elif insight.rated(centre, found):
        state = "rated"
    return render_template("feedback/ticket.html", ticket=found, state=state, faces=FACES,
                           error=g.get("feedback_error"),
                           action=url_for("feedback.ticket", ticket_id=ticket_id, lang=g.lang)), status


@bp.route("/feedback/<counter>", methods=["GET", "POST"])
def counter(counter: str):
    """The counter-side tablet: big faces for the citizen whose visit just finished here."""
    require_staff_network()
    centre = kiosk().centre
    g.lang = request.args.get("lang") if request.args.get("lang") in current_app.config["LANGUAGES"] else None
    thanks = False
    error = None
    if request.method == "POST":
        score, comment = _form_values()
        try:
            waiting = insight.awaiting_feedback(centre, counter)
            if waiting is None or waiting["id"] != request.form.get("ticket"):
                raise AlreadyRated("this visit is rated, or another one finished since")
            insight.give_feedback(centre, waiting["id"], score=score, comment=comment)
            thanks = True
        except KioskError as exc:
            error = error_text(exc.code)
        if error is None:
            return redirect(url_for("feedback.counter", counter=counter, lang=g.lang, thanks=1), 303)
    waiting = insight.awaiting_feedback(centre, counter)
    if waiting is not None and g.lang is None:
        g.lang = waiting.get("lang")
    return render_template("feedback/counter.html", counter=counter, waiting=waiting, faces=FACES,
                           thanks=thanks or request.args.get("thanks") == "1", error=error)
