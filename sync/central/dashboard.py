"""The national dashboard: every centre side by side (docs/central.md, "National dashboard").

Per centre: last sync and backlog, today's tickets (issued, served, waiting), waits against the
services' targets and feedback (kiosk.domain.queue_report over central's ticket and feedback
records, the code the kiosk's own report uses), requests overdue, tickets per day for 14 days,
and the audit chain's status (sync/central/checkpoints.py). A centre that has not synced for more
than CENTRAL_STALE_HOURS stands out.

Each measure is one query over all centres, never one per centre: the page costs the same number
of queries for 5 centres or 50, and reads only today's records (by their indexed service day) and
14 days of issue events (indexed by centre and time), not the year behind them
(bench/bench_dashboard.py).
"""
from __future__ import annotations

import datetime as dt
import logging

import click
from flask import Blueprint, abort, current_app, render_template
from flask.cli import with_appcontext
from markupsafe import Markup
from sqlalchemy import Connection, case, func, select

from kiosk.domain import queue_report
from sync.central import checkpoints, i18n, names, receipts, views
from sync.central.models import Centre, Device, DeviceCursor, Record, TicketEventRow
from sync.central.queue_report import targets_s as report_targets

log = logging.getLogger(__name__)

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")
bp.before_request(views._require_operator)

TREND_DAYS = 14
UTC = dt.timezone.utc


def _central():
    """The app's Central (engine, clock, settings)."""
    return current_app.extensions["central"]


def _iso(moment: dt.datetime) -> str:
    """The kiosks' time format (UTC, milliseconds, Z): event times compare as text."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _day_bounds(day: dt.date, tz) -> tuple[str, str]:
    """A local service day as [start, end) in the kiosks' UTC time format."""
    start = dt.datetime.combine(day, dt.time(), tz)
    return _iso(start), _iso(dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tz))


def national(conn: Connection, now: dt.datetime, *, stale_hours: float, target_wait_min: int,
             tz=i18n.TIMEZONE) -> list[dict]:
    """Every centre's row of the dashboard, by centre code."""
    today = now.astimezone(tz).date()
    codes = [row.code for row in conn.execute(select(Centre.code).order_by(Centre.code))]
    rows = {code: {"code": code, "last_sync_at": None, "backlog": 0, "devices": 0, "issued": 0, "served": 0,
                   "waiting": 0, "wait_p50_s": None, "wait_p90_s": None, "within_target": None,
                   "targets_min": [], "feedback_count": 0, "feedback_mean": None, "overdue": 0,
                   "trend": [0] * TREND_DAYS, "audit": {"flags": 0, "pending": 0, "verified_n": None}}
            for code in codes}
    if not codes:
        return []

    # 1. sync: newest push or pull of any active device, and the commits not yet acknowledged
    last_sync = func.max(case((Device.last_push_at > func.coalesce(Device.last_pull_at, Device.last_push_at),
                               Device.last_push_at), else_=func.coalesce(Device.last_pull_at, Device.last_push_at)))
    backlog = func.sum(case((Device.head_seq > DeviceCursor.last_seq, Device.head_seq - DeviceCursor.last_seq),
                            else_=0))
    for row in conn.execute(select(Device.centre, last_sync, backlog, func.count())
                            .join(DeviceCursor, DeviceCursor.device_id == Device.device_id)
                            .where(Device.status == "active").group_by(Device.centre)):
        if row[0] in rows:
            moment = row[1]
            if moment is not None and moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            rows[row[0]].update(last_sync_at=moment, backlog=int(row[2] or 0), devices=row[3])

    # 2. targets: each centre's services (central's configuration, as the queue report reads them)
    targets: dict[str, dict[str, float]] = {code: {} for code in codes}
    for (centre, service), seconds in report_targets(conn, codes, target_wait_min).items():
        targets[centre][service] = seconds

    # 3. today's tickets and their feedback, by the records' indexed service day
    tickets: dict[str, list[dict]] = {code: [] for code in codes}
    feedback: dict[str, list[dict]] = {code: [] for code in codes}
    for row in conn.execute(select(Record.centre, Record.tbl, Record.doc)
                            .where(Record.centre.in_(codes), Record.tbl.in_(("tickets", "feedback")),
                                   Record.day == today.isoformat(), Record.deleted.is_(False))):
        if isinstance(row.doc, dict):
            (tickets if row.tbl == "tickets" else feedback)[row.centre].append(row.doc)
    for code in codes:
        try:
            report = queue_report.queue_report(tickets[code], feedback[code], first=today, last=today,
                                               targets_s=targets[code], tz=tz)
        except (KeyError, TypeError, ValueError) as exc:  # a malformed record must not hide the page
            log.warning("centre %s: today's tickets could not be summarised (%s)", code, exc)
            continue
        totals = report["totals"]
        rows[code].update(issued=totals["issued"], served=totals["served"],
                          waiting=sum(1 for t in tickets[code] if t.get("state") == "waiting"),
                          wait_p50_s=totals["wait_s"]["p50"], wait_p90_s=totals["wait_s"]["p90"],
                          within_target=totals["within_target"],
                          targets_min=sorted({int(s // 60) for s in targets[code].values()}) or [target_wait_min],
                          feedback_count=report["feedback"]["count"], feedback_mean=report["feedback"]["mean"])

    # 4. trend: tickets issued per local day for 14 days, counted per UTC hour in the database
    first = today - dt.timedelta(days=TREND_DAYS - 1)
    lo14, _ = _day_bounds(first, tz)
    _, hi = _day_bounds(today, tz)
    hour = func.substr(TicketEventRow.at, 1, 13)
    for row in conn.execute(select(TicketEventRow.centre, hour, func.count())
                            .where(TicketEventRow.centre.in_(codes), TicketEventRow.at >= lo14,
                                   TicketEventRow.at < hi, TicketEventRow.idx == 0)
                            .group_by(TicketEventRow.centre, hour)):
        try:
            local = dt.datetime.fromisoformat(row[1] + ":00:00+00:00").astimezone(tz).date()
        except ValueError:
            continue
        index = (local - first).days
        if 0 <= index < TREND_DAYS:
            rows[row[0]]["trend"][index] += row[2]

    # 5. requests overdue (the receipts pages' rule: open and past the promised date). Only the
    # requests the kiosk still has open are read: a year of answered requests stays in the database
    known = receipts.decisions(conn)
    for row in conn.execute(select(Record.centre, Record.doc)
                            .where(Record.centre.in_(codes), Record.tbl == receipts.CASES, Record.deleted.is_(False),
                                   Record.doc["status"].as_string() == "open")):
        if isinstance(row.doc, dict):
            view = receipts.case_view(row.centre, row.doc, known.get((row.centre, row.doc.get("id"))), now)
            if view["overdue"]:
                rows[row.centre]["overdue"] += 1

    # 6. the audit chain
    for code, status in checkpoints.status_by_centre(conn).items():
        if code in rows:
            rows[code]["audit"] = {"flags": status.get("flags", 0), "pending": status.get(checkpoints.PENDING, 0),
                                   "verified_n": status.get("verified_n")}

    stale_after = dt.timedelta(hours=stale_hours)
    for row in rows.values():
        row["stale"] = row["last_sync_at"] is None or now - row["last_sync_at"] > stale_after
        row["audit_state"] = ("flag" if row["audit"]["flags"] else
                              "ok" if row["audit"]["verified_n"] is not None else "none")
        row["trend_days"] = [(first + dt.timedelta(days=i)).isoformat() for i in range(TREND_DAYS)]
    return [rows[code] for code in codes]


def sparkline(values: list[int], label: str) -> Markup:
    """A small server-drawn SVG line of `values` (presentation attributes only: the CSP allows no
    inline style), with its numbers as the accessible name."""
    width, height, pad = 140, 36, 3
    top = max(values) if values and max(values) > 0 else 1
    step = (width - 2 * pad) / max(len(values) - 1, 1)
    points = " ".join(f"{pad + i * step:.1f},{height - pad - (v / top) * (height - 2 * pad):.1f}"
                      for i, v in enumerate(values))
    last_x, last_y = points.split(" ")[-1].split(",") if values else ("0", "0")
    return Markup('<svg class="spark" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
                  'aria-label="{label}"><title>{label}</title>'
                  '<line x1="0" y1="{base}" x2="{w}" y2="{base}" stroke="#d0d7de" stroke-width="1"/>'
                  '<polyline points="{points}" fill="none" stroke="#0b3d91" stroke-width="2" '
                  'stroke-linejoin="round" stroke-linecap="round"/>'
                  '<circle cx="{x}" cy="{y}" r="2.5" fill="#0b3d91"/></svg>').format(
        w=width, h=height, base=height - pad, points=points, x=last_x, y=last_y, label=label)


@bp.get("/")
def index():
    """Every centre side by side."""
    central = _central()
    now = central.clock.now()
    stale_hours = float(current_app.config["CENTRAL_STALE_HOURS"])
    with central.engine.connect() as conn:
        rows = national(conn, now, stale_hours=stale_hours,
                        target_wait_min=int(current_app.config["CENTRAL_TARGET_WAIT_MIN"]))
        directory = names.directory(conn)
    for row in rows:
        row["last_sync_ago"] = i18n.ago(now, row["last_sync_at"])
        row["spark"] = sparkline(row["trend"], " ".join(i18n.digits(v) for v in row["trend"]))
    return render_template("central/dashboard.html", rows=rows, names=directory, now=now,
                           stale_hours=stale_hours, trend_days=TREND_DAYS,
                           stale=sum(1 for r in rows if r["stale"]),
                           flagged=sum(1 for r in rows if r["audit_state"] == "flag"))


@bp.get("/audit/<code>")
def audit(code: str):
    """One centre's audit flags (never removed) and its latest checkpoints."""
    central = _central()
    with central.engine.connect() as conn:
        if conn.execute(select(Centre.code).where(Centre.code == code)).scalar() is None:
            abort(404)
        found = checkpoints.flags(conn, code)
        recent = checkpoints.latest(conn, code, limit=20)
        directory = names.directory(conn, code)
    return render_template("central/dashboard_audit.html", code=code, flags=found, checkpoints=recent,
                           names=directory)


@click.command("audit-verify")
@with_appcontext
def audit_verify_command():
    """Finish checking audit checkpoints whose segments are long (a centre's first checkpoint over
    a long history is otherwise checked part by part, one part per push)."""
    central = _central()
    parts = 0
    while True:
        with central.engine.begin() as conn:
            more = checkpoints.verify_pending(conn, None, central.clock.now())
        if not more:
            break
        parts += 1
    with central.engine.connect() as conn:
        pending = conn.execute(select(func.count()).select_from(checkpoints.AuditCheckpoint)
                               .where(checkpoints.AuditCheckpoint.status == checkpoints.PENDING)).scalar()
    click.echo(f"checked {parts} long segment parts; {pending} checkpoints wait for entries")


def register(app) -> None:
    """Add the dashboard's pages and the audit-verify command."""
    app.register_blueprint(bp)
    app.cli.add_command(audit_verify_command)
