"""Central's configuration pages: a centre's services, counters, staff (with PIN reset), priority
classes and working calendar, edited by ministry operators in Arabic, Sorani or English.

Decisions:
- One rule book: a document built from a form passes `feed.check_config`, the same checks as
  `config-load`; each problem is shown beside its field in the operator's language, and the form
  comes back with everything typed (except a PIN, which is never shown back).
- A saved document goes into the existing configuration feed (`feed.save_doc`), so kiosks get it
  at their next pull, and into central's configuration audit (who, when, what changed).
- Documents saved here are marked as the pages' (`source = "page"`): a later `config-load` of a
  file that lacks them keeps them; a file that names one replaces it (docs/sync.md).
- Nothing is deleted here: a service, counter, staff member or class is switched off ("active"),
  which kiosks honour at once and which keeps the history readable.
- The same operator login, form token and error page as central's other pages (views.py).
"""
from __future__ import annotations

import datetime as dt
import logging
import re

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask_babel import lazy_gettext
from sqlalchemy import select

from kiosk.domain import cases
from sync.central import feed, i18n, names, views
from sync.central.errors import CentralError
from sync.central.models import Centre, ConfigAudit

log = logging.getLogger(__name__)

bp = Blueprint("central_config", __name__, url_prefix="/centres/<centre>/config")
# Deny by default: the same operator sign-in as every other central page.
bp.before_request(views._require_operator)

TABLES = ("services", "counters", "staff", "priority_classes")
LANGS = i18n.LANGS
_NATIVE_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")
_NEW = "+new"
_PIN_PLACEHOLDER = "$argon2id$placeholder"  # lets a staff document with a new PIN pass the shape check before hashing

TABLE_TITLES = {
    "services": lazy_gettext("Services"),
    "counters": lazy_gettext("Counters"),
    "staff": lazy_gettext("Staff"),
    "priority_classes": lazy_gettext("Priority classes"),
}
ROLE_TEXTS = {"attendant": lazy_gettext("Attendant"), "supervisor": lazy_gettext("Supervisor")}
WEEKDAY_TEXTS = {
    "mon": lazy_gettext("Monday"), "tue": lazy_gettext("Tuesday"), "wed": lazy_gettext("Wednesday"),
    "thu": lazy_gettext("Thursday"), "fri": lazy_gettext("Friday"), "sat": lazy_gettext("Saturday"),
    "sun": lazy_gettext("Sunday"),
}
# What each form field must hold, shown beside the field when the check fails.
RULES = {
    "key": lazy_gettext("Letters A-Z, digits and . _ : - only, starting with a letter or digit."),
    "code": lazy_gettext("1 to 16 letters A-Z, digits and . _ : -, starting with a letter or digit."),
    "prefix": lazy_gettext("One to three capital letters A-Z."),
    "name": lazy_gettext("Required, at most 300 characters."),
    "display_name": lazy_gettext("Required, at most 200 characters."),
    "target_wait_min": lazy_gettext("A whole number of minutes from 1 to 1440, or empty."),
    "daily_cap": lazy_gettext("A whole number of at least 1, or empty for no limit."),
    "fee_iqd": lazy_gettext("A whole number of dinars, 0 or more."),
    "documents": lazy_gettext("Give each document in all three languages: the same number of lines in each box."),
    "role": lazy_gettext("Choose attendant or supervisor."),
    "pin": lazy_gettext("4 to 12 digits."),
    "pin_needed": lazy_gettext("A new staff member needs a PIN."),
    "rank": lazy_gettext("A whole number from 0 to 1000."),
    "services": lazy_gettext("Choose only services of this centre."),
    "taken": lazy_gettext("This code is already used in this centre."),
    "weekend": lazy_gettext("Leave at least one working day a week."),
    "holidays": lazy_gettext("One date per line, like 2026-12-25."),
    "other": lazy_gettext("This value is not valid."),
}
# Form fields of each table, in page order (names.* become name_ar, name_ckb, name_en).
_FIELD_OF = {"id": "key", "code": "key", "names": "name", "documents": "documents", "pin_hash": "pin"}


def _central():
    """The app's Central (engine, clock)."""
    return current_app.extensions["central"]


def _ascii(text: str) -> str:
    """Arabic-Indic and Persian digits as 0-9 (operators type either), spaces trimmed."""
    return text.translate(_NATIVE_DIGITS).strip()


def _centre_or_404(conn, code: str) -> None:
    """404 for an unknown centre."""
    if conn.execute(select(Centre.code).where(Centre.code == code)).first() is None:
        abort(404)


def _table_or_404(table: str) -> None:
    """404 for a table the pages do not edit."""
    if table not in TABLES:
        abort(404)


def _page(template: str, centre: str, status: int = 200, **values):
    """Render a configuration page with what every one of them shows."""
    with _central().engine.connect() as conn:
        directory = names.directory(conn, centre)
    return render_template(template, centre=centre, names=directory, csrf_token=views.form_token(),
                           table_titles=TABLE_TITLES, role_texts=ROLE_TEXTS, weekday_texts=WEEKDAY_TEXTS,
                           rules=RULES, **values), status


# -- reading a form --------------------------------------------------------------------------------

def _int(form, field: str, errors: dict, *, optional: bool) -> int | str | None:
    """A whole number from a form field (native digits allowed); the raw text when it is not one,
    with the field's rule noted in `errors`."""
    raw = _ascii(form.get(field, ""))
    if not raw and optional:
        return None
    if re.fullmatch(r"[0-9]{1,9}", raw):
        return int(raw)
    errors.setdefault(field, RULES[field])
    return raw


def _lines(text: str) -> list[str]:
    """The non-empty lines of a text box."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def doc_from_form(table: str, form, current: dict | None, key: str | None,
                  services: list[str]) -> tuple[dict, dict[str, str]]:
    """The document a form describes, built over the current one (fields the page does not show,
    such as a service's pictogram, are kept), and the errors found while reading it."""
    errors: dict[str, str] = {}
    doc = dict(current or {})
    doc["id"] = key if key is not None else _ascii(form.get("key", ""))
    if table in ("services", "counters", "priority_classes"):
        doc["names"] = {lang: form.get(f"name_{lang}", "").strip() for lang in LANGS}
    doc["active"] = form.get("active") == "1"
    if table == "services":
        doc["code"] = doc["id"]
        doc["prefix"] = _ascii(form.get("prefix", "")).upper()
        doc["target_wait_min"] = _int(form, "target_wait_min", errors, optional=True)
        doc["daily_cap"] = _int(form, "daily_cap", errors, optional=True)
        doc["fee_iqd"] = _int(form, "fee_iqd", errors, optional=False)
        columns = {lang: _lines(form.get(f"documents_{lang}", "")) for lang in LANGS}
        if len({len(v) for v in columns.values()}) != 1:
            errors["documents"] = RULES["documents"]
        doc["documents"] = [dict(zip(LANGS, row)) for row in zip(*(columns[lang] for lang in LANGS))]
    elif table == "counters":
        chosen = form.getlist("services")
        if any(code not in services for code in chosen):
            errors["services"] = RULES["services"]
        doc["services"] = [code for code in services if code in chosen]
    elif table == "staff":
        doc["display_name"] = form.get("display_name", "").strip()
        doc["role"] = form.get("role", "")
        pin = _ascii(form.get("pin", ""))
        if pin:
            if not re.fullmatch(r"[0-9]{4,12}", pin):
                errors["pin"] = RULES["pin"]
            doc["pin"] = pin
            doc["pin_hash"] = _PIN_PLACEHOLDER
        elif current is None:
            errors["pin"] = RULES["pin_needed"]
    elif table == "priority_classes":
        doc["rank"] = _int(form, "rank", errors, optional=False)
    return doc, errors


def _form_field(table: str, path: str) -> str:
    """The form field a problem of `check_config` belongs to ("names.ckb" -> "name_ckb")."""
    head, _, rest = path.partition(".")
    if head == "names":
        return f"name_{rest.split('.')[0]}" if rest else "name_ar"
    return _FIELD_OF.get(head, head)


def _rule_for(field: str) -> str:
    """The rule text shown beside a field."""
    if field.startswith("name_"):
        return RULES["name"]
    return RULES.get(field, RULES["other"])


def check(table: str, doc: dict) -> dict[str, str]:
    """Field -> rule text for every problem `config-load` would find in this document."""
    candidate = {k: v for k, v in doc.items() if k != "pin"}
    _docs, problems = feed.check_config({table: [candidate]})
    errors: dict[str, str] = {}
    for _table, _index, path, _message in problems:
        field = _form_field(table, path)
        errors.setdefault(field, _rule_for(field))
    return errors


# -- pages -----------------------------------------------------------------------------------------

@bp.get("")
def index(centre: str):
    """The centre's configuration: every service, counter, staff member and priority class, the
    working calendar and the latest changes."""
    with _central().engine.connect() as conn:
        _centre_or_404(conn, centre)
        docs = {table: sorted(feed.current_docs(conn, centre, table).values(), key=_order(table))
                for table in TABLES}
        calendar = feed.current_docs(conn, centre, "settings").get(cases.CALENDAR_SETTING)
        recent = _audit_rows(conn, centre, limit=10)
    return _page("central/config/index.html", centre, docs=docs, calendar=_calendar_view(calendar),
                 recent=recent, saved=request.args.get("saved"))


def _order(table: str):
    """How a table's rows are listed."""
    if table == "priority_classes":
        return lambda d: (d.get("rank", 0), d["id"])
    return lambda d: (len(d["id"]), d["id"])


@bp.get("/<table>/<key>")
def edit(centre: str, table: str, key: str):
    """The form of one document (`+new` for a new one)."""
    _table_or_404(table)
    with _central().engine.connect() as conn:
        _centre_or_404(conn, centre)
        current = None if key == _NEW else feed.current_docs(conn, centre, table).get(key)
        services = sorted(feed.current_docs(conn, centre, "services"))
    if key != _NEW and current is None:
        abort(404)
    return _form_page(centre, table, key, current, _values_of(table, current), {}, services,
                      checked=set((current or {}).get("services", [])))


@bp.post("/<table>/<key>")
def save(centre: str, table: str, key: str):
    """Check a submitted form with config-load's rules; save it into the feed (audited), or show
    the form again with each problem beside its field."""
    views.check_form()
    _table_or_404(table)
    central = _central()
    now = central.clock.now()
    with central.engine.begin() as conn:
        _centre_or_404(conn, centre)
        existing = feed.current_docs(conn, centre, table)
        services = sorted(feed.current_docs(conn, centre, "services"))
        current = None if key == _NEW else existing.get(key)
        if key != _NEW and current is None:
            abort(404)
        doc, errors = doc_from_form(table, request.form, current, None if key == _NEW else key, services)
        for field, text in check(table, doc).items():
            errors.setdefault(field, text)
        if key == _NEW and doc["id"] in existing:
            errors.setdefault("key", RULES["taken"])
        if not errors:
            if "pin" in doc:
                feed.hash_pins(conn, centre, [doc])
            try:
                feed.save_doc(conn, centre, table, doc, actor=views.operator(), now=now)
            except CentralError:
                abort(409)
    if errors:
        return _form_page(centre, table, key, current, request.form.to_dict(), errors, services,
                          checked=set(request.form.getlist("services")), status=422)
    log.info("operator %s saved %s/%s of centre %s", views.operator(), table, doc["id"], centre)
    return redirect(url_for("central_config.index", centre=centre, saved=f"{table}/{doc['id']}"), 303)


def _values_of(table: str, doc: dict | None) -> dict[str, str]:
    """A document as the form's field values."""
    if doc is None:
        return {"active": "1", "role": "attendant", "fee_iqd": "0", "rank": "10"}
    values = {"key": doc["id"], "active": "1" if doc.get("active", True) else ""}
    for lang in LANGS:
        values[f"name_{lang}"] = (doc.get("names") or {}).get(lang, "")
    for field in ("prefix", "target_wait_min", "daily_cap", "fee_iqd", "display_name", "role", "rank"):
        if doc.get(field) is not None:
            values[field] = str(doc[field])
    for lang in LANGS:
        values[f"documents_{lang}"] = "\n".join(d.get(lang, "") for d in doc.get("documents") or [])
    return values


def _form_page(centre, table, key, current, values, errors, services, *, checked, status=200):
    """Render the form of one document."""
    values = {k: v for k, v in values.items() if k not in ("pin", "csrf_token")}  # a PIN is never shown back
    return _page("central/config/edit.html", centre, status=status, table=table, key=key, new=key == _NEW,
                 current=current, values=values, errors=errors, services=services, checked=checked)


# -- the working calendar --------------------------------------------------------------------------

def _calendar_view(doc: dict | None) -> dict:
    """The calendar document as the page shows it (the kiosk's default when central sent none)."""
    parsed = cases.Calendar.from_settings(doc) if doc else cases.Calendar()
    return {"weekend": [cases.WEEKDAYS[d] for d in sorted(parsed.weekend)],
            "holidays": sorted(d.isoformat() for d in parsed.holidays), "sent": doc is not None}


@bp.get("/calendar")
def calendar(centre: str):
    """Working days and holidays of the centre."""
    with _central().engine.connect() as conn:
        _centre_or_404(conn, centre)
        doc = feed.current_docs(conn, centre, "settings").get(cases.CALENDAR_SETTING)
    view = _calendar_view(doc)
    return _page("central/config/calendar.html", centre, weekend=view["weekend"],
                 holidays="\n".join(view["holidays"]), errors={})


@bp.post("/calendar")
def save_calendar(centre: str):
    """Check and save the weekend and holidays (the kiosk closes its citizen screen on them)."""
    views.check_form()
    central = _central()
    errors: dict[str, str] = {}
    weekend = [day for day in cases.WEEKDAYS if day in request.form.getlist("weekend")]
    holidays = []
    for line in _lines(request.form.get("holidays", "").translate(_NATIVE_DIGITS)):
        try:
            if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", line):
                raise ValueError(line)
            holidays.append(dt.date.fromisoformat(line).isoformat())
        except ValueError:
            errors["holidays"] = RULES["holidays"]
    if len(weekend) == len(cases.WEEKDAYS):
        errors["weekend"] = RULES["weekend"]
    with central.engine.begin() as conn:
        _centre_or_404(conn, centre)
        current = feed.current_docs(conn, centre, "settings").get(cases.CALENDAR_SETTING)
        doc = {**(current or {}), "id": cases.CALENDAR_SETTING, "weekend": weekend, "holidays": sorted(set(holidays))}
        if not errors:
            _docs, problems = feed.check_config({"settings": [doc]})
            if problems:
                errors["holidays"] = RULES["holidays"]
        if not errors:
            try:
                feed.save_doc(conn, centre, "settings", doc, actor=views.operator(), now=central.clock.now())
            except CentralError:
                abort(409)
    if errors:
        return _page("central/config/calendar.html", centre, status=422, weekend=weekend,
                     holidays=request.form.get("holidays", ""), errors=errors)
    log.info("operator %s saved the calendar of centre %s", views.operator(), centre)
    return redirect(url_for("central_config.index", centre=centre, saved="settings/calendar"), 303)


# -- the audit -------------------------------------------------------------------------------------

def _audit_rows(conn, centre: str, *, limit: int) -> list:
    """The latest configuration changes of a centre, newest first."""
    return conn.execute(select(ConfigAudit).where(ConfigAudit.centre == centre)
                        .order_by(ConfigAudit.id.desc()).limit(limit)).all()


@bp.get("/audit")
def audit(centre: str):
    """Who changed what in this centre's configuration, and when (the latest 500 changes)."""
    with _central().engine.connect() as conn:
        _centre_or_404(conn, centre)
        rows = _audit_rows(conn, centre, limit=500)
    return _page("central/config/audit.html", centre, rows=rows)


def register(app) -> None:
    """Install the configuration pages."""
    app.register_blueprint(bp)

