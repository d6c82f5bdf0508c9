"""The queue report at central: one centre's, or every centre's side by side, over the ticket and
feedback records the kiosks pushed (archived days included: a kiosk's day close never removes
them here).

The figures come from the same pure function the centre's supervisor screen uses
(kiosk.domain.queue_report), so a centre's report at central equals its own once it has synced.
Records carry their service day in an indexed column (sync_records.day), so a range of days is
one index range scan per centre; the documents are streamed, never held.

Pages for operators (`/queue-report`, with `?centre=` for one centre) and the same figures as
JSON, CSV and XLSX (`/queue-report.json|.csv|.xlsx`).
"""
from __future__ import annotations

import datetime as dt
from typing import Iterator

from babel.dates import get_day_names
from flask import Blueprint, Flask, Response, abort, current_app, jsonify, render_template, request
from flask_babel import gettext
from sqlalchemy import Connection, select

from kiosk.domain import queue_report as domain
from kiosk.domain import report_files
from kiosk.domain.errors import ValidationFailed
from kiosk.i18n.locales import isolate
from sync.central import i18n, names, views
from sync.central.models import Centre, ConfigDoc, Record

NATIONAL_MAX_DAYS = 92  # a country's report reads every centre's tickets: a quarter at most
STREAM_ROWS = 2000
FILE_TYPES = {"csv": "text/csv", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}

bp = Blueprint("queue_report", __name__)
bp.before_request(views._require_operator)


def targets_s(conn: Connection, centres: list[str],
              default_min: int = domain.DEFAULT_TARGET_WAIT_MIN) -> dict[tuple[str, str], float]:
    """Each centre's services' target waits in seconds (central's configuration; `default_min`
    for a service that sets none), keyed by (centre, service code)."""
    out = {}
    rows = conn.execute(select(ConfigDoc.centre, ConfigDoc.doc).where(
        ConfigDoc.tbl == "services", ConfigDoc.deleted.is_(False), ConfigDoc.centre.in_(centres)))
    for centre, doc in rows:
        if isinstance(doc, dict) and doc.get("code"):
            minutes = doc.get("target_wait_min") or default_min
            out[(centre, doc["code"])] = 60.0 * int(minutes)
    return out


def _records(conn: Connection, centre: str, table: str, first: dt.date, last: dt.date,
             tag: bool) -> Iterator[dict]:
    """The live documents of `table` at `centre` of service days `first`..`last` (by the indexed
    day), streamed; with `tag` each carries its centre."""
    query = (select(Record.doc).where(Record.centre == centre, Record.tbl == table, Record.deleted.is_(False),
                                      Record.day >= first.isoformat(), Record.day <= last.isoformat())
             .execution_options(yield_per=STREAM_ROWS))
    for (doc,) in conn.execute(query):
        if isinstance(doc, dict):
            yield {**doc, "centre": centre} if tag else doc


def report(conn: Connection, first: dt.date, last: dt.date, centre: str | None = None, *,
           default_target_min: int = domain.DEFAULT_TARGET_WAIT_MIN) -> dict:
    """One centre's queue report, or with no centre the national one (a row per centre, and
    attendants and counters named CENTRE/id)."""
    centres = [centre] if centre else list(conn.execute(select(Centre.code).order_by(Centre.code)).scalars())
    targets = targets_s(conn, centres, default_target_min)
    national = centre is None

    def stream(table: str) -> Iterator[dict]:
        for code in centres:
            yield from _records(conn, code, table, first, last, national)

    if national:
        return domain.queue_report(stream("tickets"), stream("feedback"), first=first, last=last,
                                   targets_s=targets, tz=i18n.TIMEZONE, by_centre=True)
    return domain.queue_report(stream("tickets"), stream("feedback"), first=first, last=last,
                               targets_s={code: s for (_, code), s in targets.items()}, tz=i18n.TIMEZONE)


# -- pages and files -------------------------------------------------------------------------------

def _args() -> tuple[dt.date, dt.date, str | None, dict[str, str]]:
    """(first, last, centre or None, errors by field) from the query; 404 for an unknown centre."""
    centre = request.args.get("centre") or None
    central = views._central()
    if centre is not None:
        with central.engine.connect() as conn:
            if conn.execute(select(Centre.code).where(Centre.code == centre)).first() is None:
                abort(404, description=gettext("There is no centre %(centre)s.", centre=isolate(centre)))
    today = central.clock.now().astimezone(i18n.TIMEZONE).date().isoformat()
    longest = domain.MAX_RANGE_DAYS if centre else NATIONAL_MAX_DAYS
    try:
        first, last = domain.parse_range(request.args.get("from") or None, request.args.get("to") or None, today,
                                         max_days=longest)
    except ValidationFailed as exc:
        texts = {"from": gettext("Choose a first day like 2026-11-01."),
                 "to": i18n.digits(gettext("Choose a last day on or after the first, at most %(days)d days later.",
                                           days=longest - 1))}
        return None, None, centre, {k: texts[k] for k in exc.fields}
    return first, last, centre, {}


def _default_target() -> int:
    """The target wait of a service that sets none (CENTRAL_TARGET_WAIT_MIN)."""
    return int(current_app.config["CENTRAL_TARGET_WAIT_MIN"])


def _weekdays() -> list[str]:
    """Monday..Sunday in the page's language (the report's weekday 0 is Monday)."""
    wide = get_day_names("wide", locale=i18n.LOCALES[i18n.current_lang()])
    return [wide[n] for n in range(7)]


@bp.get("/queue-report")
def page():
    """The report page: figures per service, attendant and counter (and centre, nationally),
    server-drawn charts and the low ratings; printable."""
    first, last, centre, errors = _args()
    central = views._central()
    with central.engine.connect() as conn:
        centres = list(conn.execute(select(Centre.code).order_by(Centre.code)).scalars())
        directory = names.directory(conn, centre)
        result = report(conn, first, last, centre, default_target_min=_default_target()) if not errors else None
    context = {"report": result, "errors": errors, "centre": centre, "centres": centres, "names": directory,
               "first": first.isoformat() if first else request.args.get("from", ""),
               "last": last.isoformat() if last else request.args.get("to", ""), "weekdays": _weekdays()}
    if result is not None:
        context.update(
            service_names={row["code"]: directory.service(row["code"], centre) or row["code"]
                           for row in result["services"]},
            centre_names={row["code"]: directory.centre(row["code"]) or row["code"]
                          for row in result.get("centres", [])},
            trend=[(dt.date.fromisoformat(d["day"]), d["issued"]) for d in result["days"]])
    return render_template("central/queue_report.html", **context), 422 if errors else 200


@bp.get("/queue-report.<any(json, csv, xlsx):fmt>")
def download(fmt: str):
    """The report as JSON (the kiosk API's shape, plus `centres` nationally), CSV or XLSX."""
    first, last, centre, errors = _args()
    if errors:
        return jsonify({"error": {"code": "validation_failed", "message": "invalid date range",
                                  "fields": errors}}), 422
    with views._central().engine.connect() as conn:
        result = report(conn, first, last, centre, default_target_min=_default_target())
    if fmt == "json":
        return jsonify(result)
    scope = centre or "national"
    content = ("\ufeff" + report_files.to_csv(result, scope)).encode("utf-8") if fmt == "csv" \
        else report_files.to_xlsx(result, scope)
    response = Response(content, mimetype=FILE_TYPES[fmt])
    response.headers["Content-Disposition"] = f'attachment; filename="queue-{scope}-{first}-{last}.{fmt}"'
    return response


def register(app: Flask) -> None:
    """Add the report's pages to central."""
    app.register_blueprint(bp)
