"""The supervisor view: live counts per service and counter, the longest wait, counters open,
printer and sync status, and switching services on and off or capping them for the day."""
from __future__ import annotations

import datetime as dt
import logging
import re

from flask import Blueprint, request, url_for
from flask_babel import gettext as _

from kiosk import services
from kiosk.app import kiosk
from kiosk.domain.errors import KioskError
from kiosk.ops import health as ops_health
from kiosk.web import htmx
from kiosk.web.auth import current_staff, staff_required, to_ascii_digits
from kiosk.web.counter import printer_info
from kiosk.web.screens import error_text, lname

log = logging.getLogger(__name__)

bp = Blueprint("admin", __name__, url_prefix="/admin")

SYNC_FIELDS = ("enrolled", "last_success_at", "last_attempt_at", "pending", "clock_offset_s", "last_error")


def sync_status() -> dict | None:
    """The sync job's status, from the function the app was handed (None: sync not installed)."""
    return kiosk().sync_status()


def health_warnings() -> list[str]:
    """The machine's health problems a supervisor must act on: "disk_low", "sync_failing"."""
    from kiosk.web.health import current_health
    return ops_health.warnings(current_health())


def accounts() -> tuple[list[dict], list[dict]]:
    """Every staff member with their live sessions and lock, and the other locked names and
    addresses (someone guessing names, or a device that typed wrong PINs)."""
    live: dict[str, int] = {}
    for record in kiosk().sessions.active():
        live[record.staff] = live.get(record.staff, 0) + 1
    locks = {(x["kind"], x["key"]): x for x in kiosk().logins.locked()}
    out = []
    for doc in sorted(kiosk().centre.store.all("staff"), key=lambda d: d["id"]):
        lock = locks.pop(("account", doc["id"]), None)
        out.append({"id": doc["id"], "name": doc.get("display_name") or doc["id"], "role": doc.get("role"),
                    "active": doc.get("active", True), "sessions": live.get(doc["id"], 0), "lock": lock})
    return out, list(locks.values())


def _overview(notice: str | None = None, error: str | None = None, *, account_notice: str | None = None) -> dict:
    """Everything the supervisor view shows."""
    centre = kiosk().centre
    data = services.overview(centre)
    staff_accounts, other_locks = accounts()
    return {"overview": data, "printer": printer_info(), "sync": sync_status(), "sync_fields": SYNC_FIELDS,
            "notice": notice, "error": error, "staff": current_staff(), "accounts": staff_accounts,
            "other_locks": other_locks, "account_notice": account_notice,
            "health_warnings": health_warnings()}


@bp.get("")
@staff_required("supervisor")
def index():
    """The supervisor view (or its live `overview` block)."""
    return htmx.render("admin/index.html", "overview", **_overview())


@bp.post("/services/<code>")
@staff_required("supervisor")
def update_service(code):
    """Switch a service on or off, or set (or clear) its daily cap."""
    centre = kiosk().centre
    changes: dict = {}
    if "active" in request.form:
        changes["active"] = request.form["active"] == "1"
        if not changes["active"]:
            if request.form.get("confirm") != "1" and code in {x["code"] for x in services.services_list(centre)}:
                # citizens are turned away until it is switched on again: ask first, and for how long
                return htmx.render("admin/index.html", "settings", **_overview(), confirming=code,
                                   next_day=services.opening(centre, services.calendar(centre).next_working_day(
                                       dt.date.fromisoformat(centre.today()))))
            changes["until_next_day"] = request.form.get("until") == "next_day"
    if "daily_cap" in request.form:
        raw = to_ascii_digits(request.form["daily_cap"].strip())
        if raw and not re.fullmatch(r"[0-9]{1,6}", raw):
            status = 200 if htmx.is_htmx() else 422
            return htmx.render("admin/index.html", "settings", status=status,
                               **_overview(error=_("The daily limit must be a whole number, or empty for no limit.")))
        changes["daily_cap"] = int(raw) if raw else None
    try:
        service = services.update_service(centre, code, by=current_staff()["id"], **changes)
    except KioskError as exc:
        status = 200 if htmx.is_htmx() else exc.status
        return htmx.render("admin/index.html", "settings", status=status, **_overview(error=error_text(exc.code)))
    return htmx.render("admin/index.html", "settings",
                       **_overview(notice=_("%(service)s saved.") % {"service": lname(service.get("names"))}))


@bp.post("/staff/<staff_id>/sign-out")
@staff_required("supervisor")
def sign_out_everywhere(staff_id):
    """End every session of one staff member (a lost phone, a shared PIN, someone who left)."""
    ended = kiosk().sessions.end_all(staff_id)
    services.audit_staff_action(kiosk().centre, by=current_staff()["id"], action="sign_out_everywhere",
                                target=staff_id, detail={"sessions": ended})
    if staff_id == current_staff()["id"]:
        from kiosk.web.auth import end_session
        end_session("signed out everywhere")
        return htmx.redirect(url_for("auth.login"))
    return htmx.render("admin/index.html", "accounts",
                       **_overview(account_notice=_("%(name)s is signed out everywhere.") % {"name": staff_id}))


@bp.post("/locks")
@staff_required("supervisor")
def unlock():
    """Let a locked name or address try again at once (the supervisor vouches for the person)."""
    kind, key = request.form.get("kind") or "", request.form.get("key") or ""
    if kind not in ("account", "address") or not kiosk().logins.unlock(kind, key):
        return htmx.render("admin/index.html", "accounts", **_overview(
            account_notice=_("This name or device was not locked (any more).")))
    services.audit_staff_action(kiosk().centre, by=current_staff()["id"], action="login_unlock",
                                target=key[:128], detail={"kind": kind})
    return htmx.render("admin/index.html", "accounts", **_overview(account_notice=_("%(name)s may log in again.")
                                                                  % {"name": key[:128]}))
