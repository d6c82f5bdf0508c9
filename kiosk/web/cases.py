"""Requests and receipts on the screens: the attendant's "register a request" form for the ticket
being served, the cases list by due date with overdue ones highlighted, a case's page (status
changes, receipt reprint, reference check), the kiosk-wide receipt verification page `/verify`,
and the supervisor's monthly report with server-rendered SVG charts and a CSV export.

Forms are plain HTML forms (they work without JavaScript); after a change the browser is sent to
the case's page (post, redirect, get), so reloading never registers a request twice. Refused input
re-renders the form with the reason in the staff member's language and changes nothing.
"""
from __future__ import annotations

import datetime as dt
import logging

from flask import Blueprint, Response, flash, get_flashed_messages, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext

from kiosk import cases, keys, services
from kiosk.app import kiosk
from kiosk.domain import cases as domain
from kiosk.domain.errors import InvalidTransition, KioskError, NotFound, ValidationFailed
from kiosk.web import htmx
from kiosk.web.auth import current_staff, staff_required
from kiosk.web.kiosk import qr_svg
from kiosk.web.screens import error_text, lname

log = logging.getLogger(__name__)

bp = Blueprint("cases", __name__)

ROLES = ("attendant", "supervisor")

# What to tell the staff member about each refused field, in their language.
FIELD_TEXTS = {
    "kind": lazy_gettext("Choose what the citizen came for: request, inquiry or referral."),
    "reference": lazy_gettext("Enter the ID card or document number: 4 to 32 letters or digits."),
    "documents": lazy_gettext("Tick only documents from this service's list."),
    "contact": lazy_gettext("The contact is too long or contains characters that cannot be stored."),
    "notes": lazy_gettext("The notes are too long or contain characters that cannot be stored."),
    "details": lazy_gettext("The referral details are too long or contain characters that cannot be stored."),
    "provider": lazy_gettext("A referral needs a provider from the directory; other requests name none."),
    "lang": lazy_gettext("Choose the receipt's language: Arabic, Kurdish or English."),
    "reason": lazy_gettext("A rejection needs a reason (at most 500 characters)."),
    "status": lazy_gettext("Choose completed, rejected or referred."),
    "month": lazy_gettext("Choose a month like 2026-11."),
    "code": lazy_gettext("Scan the receipt's QR code or paste its text."),
}
VERDICT_TEXTS = {
    "ok": lazy_gettext("Authentic receipt, signed by a centre key the ministry trusts."),
    "malformed": lazy_gettext("This is not a receipt code, or it was damaged or typed wrongly."),
    "wrong_host": lazy_gettext("This code names another verification site: it is not one of our receipts."),
    "unsupported_alg": lazy_gettext("This code uses a signature method receipts never use: it is not genuine."),
    "unknown_key": lazy_gettext("The signing key is not known here. The list of trusted keys may be out of date: "
                                "ask the supervisor to run the sync."),
    "bad_signature": lazy_gettext("The signature does not match the contents: the receipt was altered or forged."),
    "bad_payload": lazy_gettext("The signed contents are not a receipt this kiosk can read."),
    "key_not_valid": lazy_gettext("The signing key was not in service on the date the receipt shows."),
    "centre_mismatch": lazy_gettext("The receipt names a centre other than the one whose key signed it."),
    "key_revoked": lazy_gettext("The key that signed this receipt has been revoked: ask the centre for a new receipt."),
    "receipt_revoked": lazy_gettext("This receipt has been revoked."),
    "receipt_expired": lazy_gettext("This receipt is past its verification date."),
    "no_trust_list": lazy_gettext("Receipts cannot be checked on this kiosk yet: the list of trusted keys has not "
                                  "arrived. Ask the supervisor to run the sync."),
    "layout": lazy_gettext("The scanner typed Arabic letters: switch its keyboard layout to English (Latin) "
                           "and scan again."),
}
OUTCOME_TEXTS = {
    "valid": lazy_gettext("Valid"),
    "invalid": lazy_gettext("Not valid"),
    "expired": lazy_gettext("Expired"),
    "revoked": lazy_gettext("Revoked"),
    "cannot_verify": lazy_gettext("Cannot check here"),
    "layout": lazy_gettext("Scanner set up wrongly"),
}
NOTICES = {
    "registered": lazy_gettext("The request is registered."),
    "printed": lazy_gettext("The receipt was sent to the printer."),
    "print_off": lazy_gettext("No printer is set up: show the receipt on screen or photograph its code."),
    "print_failed": lazy_gettext("The printer did not take the receipt. Check the printer and print it again."),
    "receipt_unavailable": lazy_gettext("The receipt could not be signed yet. The request is saved: "
                                        "issue the receipt again after the sync, or call the supervisor."),
    "status": lazy_gettext("The status is saved."),
    "reference_ok": lazy_gettext("The reference matches this request."),
    "reference_wrong": lazy_gettext("The reference does NOT match this request."),
    "receipt_unverified": lazy_gettext("The receipt is signed, but its key is not in the trust list yet, so it "
                                       "does not verify. Export the key (flask --app kiosk export-key), have "
                                       "central enrol it, then sync."),
}
# notices that report a failure, shown in the error style
ERROR_NOTICES = frozenset({"print_failed", "receipt_unavailable", "reference_wrong", "receipt_unverified"})


def field_errors(exc: ValidationFailed) -> dict[str, str]:
    """Each refused field with its explanation in the current language."""
    return {name: str(FIELD_TEXTS.get(name, error_text("validation_failed"))) for name in exc.fields}


def _status_code(exc: KioskError) -> int:
    """htmx swaps only 2xx answers, so refusals inside an htmx form come back as 200."""
    return 200 if htmx.is_htmx() else exc.status


def _service_names() -> dict[str, str]:
    """Service code -> name in the current language."""
    return {s["code"]: lname(s.get("names")) for s in services.services_list(kiosk().centre)}


def group_rows(group: dict[str, domain.Figures], names: dict) -> list[tuple[str, dict]]:
    """A report group as chart rows: (label in the current language, figures)."""
    return [(str(names.get(key, key)), figures.as_row()) for key, figures in group.items()]


def _texts() -> dict:
    """Translated labels every cases template uses."""
    return {"kinds": cases.KIND_TEXTS, "statuses": cases.STATUS_TEXTS, "sectors": cases.SECTOR_TEXTS,
            "service_names": _service_names(), "staff": current_staff(), "group_rows": group_rows}


def _notices() -> list[dict]:
    """Notices left by the previous step (post, redirect, get): their text and whether each is a failure."""
    return [{"text": str(NOTICES[key]), "error": key in ERROR_NOTICES}
            for key in get_flashed_messages() if key in NOTICES]


# -- list ------------------------------------------------------------------------------------------

def _list_context(counter: str | None, show_all: bool) -> dict:
    """The cases list, and the tickets being served at the counter when one is given."""
    centre = kiosk().centre
    serving = []
    if counter:
        services.get_counter(centre, counter)
        serving = cases.cases_at_counter(centre, counter)
    return {"items": cases.list_cases(centre, include_closed=show_all), "serving": serving, "counter": counter,
            "show_all": show_all, **_texts()}


@bp.get("/cases")
@staff_required(*ROLES)
def index():
    """Cases by due date (overdue highlighted); with ?counter=, the tickets being served there first."""
    counter = request.args.get("counter") or None
    show_all = request.args.get("show") == "all"
    return htmx.render("cases/index.html", "cases", notices=_notices(), **_list_context(counter, show_all))


# -- register --------------------------------------------------------------------------------------

def _form_context(ticket_id: str, *, values: dict | None = None, errors: dict | None = None) -> dict:
    """The registration form for a ticket being served."""
    centre = kiosk().centre
    ticket = services.get_ticket(centre, ticket_id)
    if ticket["state"] not in cases.SERVING_STATES:
        raise InvalidTransition("a request is registered while its ticket is being served")
    service = services.get_service(centre, ticket["service"])
    return {"ticket": ticket, "service": service, "providers": cases.providers(centre),
            "values": values or {"kind": "request", "lang": ticket.get("lang")}, "errors": errors or {},
            "kinds": cases.KIND_TEXTS, **{k: v for k, v in _texts().items() if k != "kinds"}}


@bp.get("/cases/new")
@staff_required(*ROLES)
def new():
    """The "register a request" form for the ticket being served (?ticket=ID)."""
    try:
        context = _form_context(request.args.get("ticket") or "")
    except KioskError as exc:
        return _refused(exc)
    return render_template("cases/new.html", **context)


def _refused(exc: KioskError, status: int | None = None):
    """An error page for a refused step, in the staff member's language."""
    text = _("Register the request while the ticket is being served.") if exc.code == "invalid_transition" \
        else error_text(exc.code)
    return render_template("cases/refused.html", message=text, code=exc.code, **_texts()), status or exc.status


@bp.post("/cases")
@staff_required(*ROLES)
def register():
    """Register the request, sign its receipt and print it; then show the case."""
    form = request.form
    ticket_id = form.get("ticket") or ""
    values = {name: form.get(name, "") for name in ("kind", "reference", "contact", "notes", "provider", "details",
                                                    "lang")}
    values["documents"] = form.getlist("documents")
    centre = kiosk().centre
    staff = current_staff()
    try:
        doc = cases.register_case(centre, ticket_id=ticket_id, kind=values["kind"], reference=values["reference"],
                                  documents=values["documents"], contact=values["contact"], notes=values["notes"],
                                  provider=values["provider"], details=values["details"],
                                  lang=values["lang"] or None, by=staff["id"])
    except ValidationFailed as exc:
        log.info("registration refused: %s", ", ".join(sorted(exc.fields)))
        values["reference"] = ""  # the reference is never echoed back into a page
        try:
            context = _form_context(ticket_id, values=values, errors=field_errors(exc))
        except KioskError as inner:
            return _refused(inner)
        return render_template("cases/new.html", **context), 422
    except KioskError as exc:
        return _refused(exc)
    flash("registered")
    _issue_and_print(doc["id"], staff["id"], doc.get("lang"))
    return htmx.redirect(url_for("cases.show", case_id=doc["id"]))


def _issue_and_print(case_id: str, staff_id: str, lang: str | None) -> None:
    """Sign the receipt if needed and queue it on the printer; leave a notice for the next page."""
    centre = kiosk().centre
    try:
        record = cases.issue_receipt(centre, case_id, by=staff_id)
    except KioskError as exc:
        log.warning("receipt for case %s not issued: %s", case_id, exc.message)
        flash("receipt_unavailable")
        return
    if record.get("verifies") != "ok":
        flash("receipt_unverified")
    job = cases.print_receipt(centre, case_id, lang=lang)
    flash("printed" if job else ("print_off" if centre.printer is None else "print_failed"))


# -- one case --------------------------------------------------------------------------------------

def _case_context(case_id: str, **extra) -> dict:
    """Everything the case page shows (sealed fields opened for staff)."""
    centre = kiosk().centre
    doc = cases.get_case(centre, case_id)
    record = cases.receipt_of(centre, doc)
    return {"case": cases.case_view(centre, doc), "secrets": cases.case_secrets(centre, doc), "receipt": record,
            "qr": qr_svg(record["text"]) if record else None, "providers": cases.providers(centre),
            "demo_receipt": bool(record) and keys.is_demo_host(cases.receipt_host(record)),
            "receipt_check": cases.receipt_check(centre, record) if record else None,
            "notices": _notices(), "errors": {}, "error": None, **_texts(), **extra}


@bp.get("/cases/<case_id>")
@staff_required(*ROLES)
def show(case_id):
    """A case: its status, promised date, receipt (with its QR), and the actions still possible."""
    try:
        return render_template("cases/case.html", **_case_context(case_id))
    except NotFound as exc:
        return _refused(exc)


@bp.post("/cases/<case_id>/status")
@staff_required(*ROLES)
def set_status(case_id):
    """Complete, reject (with a reason) or refer (to a provider) an open case."""
    form = request.form
    try:
        cases.change_status(kiosk().centre, case_id, form.get("status") or "", by=current_staff()["id"],
                            reason=form.get("reason"), provider=form.get("provider"), details=form.get("details"))
    except ValidationFailed as exc:
        try:
            context = _case_context(case_id, errors=field_errors(exc))
        except NotFound as missing:
            return _refused(missing)
        return render_template("cases/case.html", **context), 422
    except InvalidTransition as exc:
        try:
            context = _case_context(case_id, error=_("This request is already closed; its status cannot change."))
        except NotFound as missing:
            return _refused(missing)
        return render_template("cases/case.html", **context), exc.status
    except KioskError as exc:
        return _refused(exc)
    flash("status")
    return htmx.redirect(url_for("cases.show", case_id=case_id))


@bp.post("/cases/<case_id>/receipt")
@staff_required(*ROLES)
def print_again(case_id):
    """Issue the receipt if it could not be signed before, and print it (in a chosen language)."""
    lang = request.form.get("lang") or None
    if lang is not None and lang not in services.LANGS:
        try:
            context = _case_context(case_id, errors={"lang": str(FIELD_TEXTS["lang"])})
        except NotFound as exc:
            return _refused(exc)
        return render_template("cases/case.html", **context), 422
    try:
        cases.get_case(kiosk().centre, case_id)
    except NotFound as exc:
        return _refused(exc)
    _issue_and_print(case_id, current_staff()["id"], lang)
    return htmx.redirect(url_for("cases.show", case_id=case_id))


@bp.post("/cases/<case_id>/check")
@staff_required(*ROLES)
def check_reference(case_id):
    """At collection: does the ID card in hand match the reference the request was made with?"""
    centre = kiosk().centre
    try:
        doc = cases.get_case(centre, case_id)
    except NotFound as exc:
        return _refused(exc)
    flash("reference_ok" if cases.matches_reference(centre, doc, request.form.get("reference") or "")
          else "reference_wrong")
    return htmx.redirect(url_for("cases.show", case_id=case_id))


# -- verification (any terminal of the centre, no login) -------------------------------------------

@bp.get("/verify")
def verify_form():
    """The verification page: the cursor waits in the code field for a scanner (or a paste)."""
    return render_template("cases/verify.html", result=None, errors={}, **_texts())


@bp.post("/verify")
def verify():
    """Verify the scanned code offline and show the verdict, the contents and the current status."""
    try:
        result = cases.verify_scanned(kiosk().centre, request.form.get("code"))
    except ValidationFailed as exc:
        return render_template("cases/verify.html", result=None, errors=field_errors(exc), **_texts()), 422
    outcome = result["outcome"]
    result["outcome_text"] = OUTCOME_TEXTS[outcome]
    result["reason_text"] = VERDICT_TEXTS.get(result["reason"], error_text("bad_request"))
    status = 200 if outcome in ("valid", "expired", "revoked") else 422
    return render_template("cases/verify.html", result=result, errors={}, **_texts()), status


# -- monthly report ----------------------------------------------------------------------------

def _month() -> str:
    """The requested month, or the current one (the centre's local calendar)."""
    centre = kiosk().centre
    month = request.args.get("month") or centre.today()[:7]
    domain.parse_month(month)
    return month


def _shift(month: str, step: int) -> str:
    """The month `step` months after `month`."""
    year, number = domain.parse_month(month)
    index = year * 12 + number - 1 + step
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


@bp.get("/cases/report")
@staff_required("supervisor")
def report_page():
    """The month's figures per service and kind, with SVG charts and a CSV link."""
    try:
        month = _month()
    except ValidationFailed as exc:
        return render_template("cases/report.html", result=None, errors=field_errors(exc), month="",
                               **_texts()), 422
    result = cases.report(kiosk().centre, month)
    return render_template("cases/report.html", result=result, month=month, errors={},
                           previous=_shift(month, -1), next=_shift(month, 1),
                           days=sorted(result.per_day.items()), **_texts())


@bp.get("/cases/report.csv")
@staff_required("supervisor")
def report_csv():
    """The month's figures as CSV (UTF-8 with BOM, so spreadsheets show Arabic and Kurdish right)."""
    try:
        month = _month()
    except ValidationFailed as exc:
        return render_template("cases/report.html", result=None, errors=field_errors(exc), month="",
                               **_texts()), 422
    centre = kiosk().centre
    body = cases.report_csv(cases.report(centre, month), scope=centre.config["CENTRE"])
    response = Response("\ufeff" + body, mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="requests-{centre.config["CENTRE"]}-{month}.csv"'
    return response


def month_label(month: str) -> str:
    """A month as 'November 2026' in the current language."""
    from flask_babel import format_date
    year, number = domain.parse_month(month)
    return format_date(dt.date(year, number, 1), "MMMM y")


bp.add_app_template_filter(month_label, "month_label")
