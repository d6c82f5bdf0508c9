"""The queue report as files: CSV (the csv module) and XLSX (openpyxl), one row per group.

Shared by the centre and central, so both hand out the same columns. Cells a spreadsheet would
run as a formula are prefixed with an apostrophe.
"""
from __future__ import annotations

import csv
import io

COLUMNS = ("scope", "group", "key", "issued", "served", "no_show", "transferred", "cancelled",
           "wait_p50_s", "wait_p90_s", "wait_max_s", "service_p50_s", "service_p90_s", "service_max_s",
           "within_target", "feedback_count", "feedback_mean")


def _safe(value):
    """A cell a spreadsheet will not run as a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


def rows(report: dict, scope: str = "") -> list[list]:
    """One row for the total, then one per centre (in a report over centres), service, attendant,
    counter and hour of a weekday."""
    out = []

    def add(group: str, key: str, row: dict) -> None:
        """One row; figures a group does not have stay empty."""
        wait, service = row.get("wait_s") or {}, row.get("service_s") or {}
        feedback = row.get("feedback") or {}
        out.append([_safe(scope), group, _safe(key), row.get("issued"), row.get("served"), row.get("no_show"),
                    row.get("transferred"), row.get("cancelled"), wait.get("p50"), wait.get("p90"), wait.get("max"),
                    service.get("p50"), service.get("p90"), service.get("max"), row.get("within_target"),
                    feedback.get("count"), feedback.get("mean")])

    add("total", "all", {**report["totals"], "feedback": report["feedback"]})
    for row in report.get("centres", ()):
        add("centre", row["code"], row)
    for row in report["services"]:
        add("service", row["code"], row)
    for row in report["staff"]:
        add("staff", row["id"], row)
    for row in report["counters"]:
        add("counter", row["id"], row)
    for row in report["hours"]:
        add("hour", f"{row['weekday']}:{row['hour']:02d}", {"issued": row["issued"]})
    return out


def to_csv(report: dict, scope: str = "") -> str:
    """The report as CSV text (the caller adds a BOM for spreadsheets)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["from", "to", *COLUMNS])
    for row in rows(report, scope):
        writer.writerow([report["from"], report["to"], *("" if v is None else v for v in row)])
    return buffer.getvalue()


def to_xlsx(report: dict, scope: str = "", *, low_title: str = "low scores") -> bytes:
    """The report as an XLSX workbook: the figures, then the low scores with their comments."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "report"
    sheet.append(["from", "to", *COLUMNS])
    for row in rows(report, scope):
        sheet.append([report["from"], report["to"], *row])
    sheet.freeze_panes = "A2"
    low = book.create_sheet(low_title[:31])
    over_centres = "centres" in report
    low.append(["day", *(["centre"] if over_centres else []), "service", "staff", "counter", "score", "comment"])
    for item in report["feedback"]["low"]:
        low.append([item["day"], *([_safe(item["centre"])] if over_centres else []), _safe(item["service"]),
                    _safe(item["staff"] or ""), _safe(item["counter"] or ""), item["score"], _safe(item["comment"])])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
