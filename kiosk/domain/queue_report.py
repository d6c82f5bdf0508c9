"""The queue report: what happened to the tickets of a range of service days, from their events.

Plain Python over ticket and feedback documents, so the centre (live and archived days) and
central (the records it received) compute the same figures with the same code.

Definitions (docs/reports.md):
- issued: every ticket of the range, a transferred citizen's new ticket included (it is issued
  for the new service); the heatmap counts them by the local hour and weekday they were issued;
- served: ended done; transferred: ended transferred; no_show: ended not present (also when the
  day close then cancelled it); cancelled: any other cancel; tickets still open count as issued only;
- wait: from arrival (the issue, or a transferred citizen's first arrival) to the first call;
- service time: from the last start to the finish of a served ticket;
- within target: the share of called tickets whose wait is at most the service's target;
- p50/p90 are nearest-rank percentiles, in seconds rounded to one decimal.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Iterable
from zoneinfo import ZoneInfo

from kiosk.clock import parse_iso
from kiosk.domain.errors import ValidationFailed

OUTCOMES = ("served", "no_show", "transferred", "cancelled")
# wait distribution buckets, upper bounds in minutes (the last is open-ended)
WAIT_BUCKETS_MIN = (5, 10, 15, 20, 30, 45, 60)
MAX_COMMENT = 500
SCORES = range(1, 6)
LOW_SCORE = 2  # scores at or below this are listed for the supervisor
MAX_RANGE_DAYS = 366  # the longest range a report covers
DEFAULT_TARGET_WAIT_MIN = 20  # "served within target" of a service that sets no target


def parse_range(first: str | None, last: str | None, today: str, *,
                max_days: int = MAX_RANGE_DAYS) -> tuple[dt.date, dt.date]:
    """`from`/`to` as dates (default when None: the month so far); ValidationFailed names a bad
    field (an empty one included)."""
    problems = {}
    dates = {}
    end_default = dt.date.fromisoformat(today)
    for name, raw, default in (("from", first, end_default.replace(day=1)), ("to", last, end_default)):
        try:
            dates[name] = dt.date.fromisoformat(raw) if raw is not None else default
            if raw is not None and len(raw) != 10:
                raise ValueError(raw)
        except ValueError:
            problems[name] = "a date YYYY-MM-DD"
    if not problems and dates["from"] > dates["to"]:
        problems["to"] = "not before from"
    if not problems and (dates["to"] - dates["from"]).days >= max_days:
        problems["to"] = f"at most {max_days} days after from"
    if problems:
        raise ValidationFailed("invalid date range", problems)
    return dates["from"], dates["to"]


def days_between(first: dt.date, last: dt.date) -> list[str]:
    """Every service day of the range."""
    return [(first + dt.timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending list (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


def spread(values: list[float]) -> dict:
    """p50, p90 and max of durations in seconds."""
    ordered = sorted(values)
    return {"p50": _round(percentile(ordered, 0.5)), "p90": _round(percentile(ordered, 0.9)),
            "max": _round(ordered[-1] if ordered else None)}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def outcome(ticket: dict) -> str | None:
    """How a ticket ended (one of OUTCOMES), or None while it is open."""
    state = ticket["state"]
    if state == "done":
        return "served"
    if state in ("transferred", "no_show"):
        return state
    if state == "cancelled":
        states = [e["state"] for e in ticket["events"]]
        return "no_show" if len(states) > 1 and states[-2] == "no_show" else "cancelled"
    return None


def wait_seconds(ticket: dict) -> float | None:
    """Arrival to first call, or None if it was never called."""
    for event in ticket["events"]:
        if event["state"] == "called":
            arrival = parse_iso(ticket.get("arrival_at") or ticket["issued_at"])
            return max(0.0, (parse_iso(event["at"]) - arrival).total_seconds())
    return None


def served_by(ticket: dict) -> tuple[str | None, str | None, float | None]:
    """(staff id, counter, service seconds) of a served ticket, from its last start and its finish."""
    started = None
    for event in ticket["events"]:
        if event["state"] == "serving":
            started = event
        elif event["state"] == "done" and started is not None:
            seconds = max(0.0, (parse_iso(event["at"]) - parse_iso(started["at"])).total_seconds())
            return (event.get("by") or started.get("by"), event.get("counter") or started.get("counter")
                    or ticket.get("counter"), seconds)
    return None, ticket.get("counter"), None


@dataclass
class _Group:
    """Running figures of one service, attendant or counter."""

    counts: dict = field(default_factory=lambda: dict.fromkeys(("issued", *OUTCOMES), 0))
    waits: list = field(default_factory=list)
    within: int = 0
    service: list = field(default_factory=list)
    scores: list = field(default_factory=list)

    def figures(self) -> dict:
        """The group as the report shows it."""
        return {**self.counts, "wait_s": spread(self.waits), "service_s": spread(self.service),
                "within_target": round(self.within / len(self.waits), 4) if self.waits else None,
                "feedback": feedback_figures(self.scores)}


def feedback_figures(scores: list[int]) -> dict:
    """Count and mean of scores."""
    return {"count": len(scores), "mean": round(sum(scores) / len(scores), 2) if scores else None}


def queue_report(tickets: Iterable[dict], feedback: Iterable[dict], *, first: dt.date, last: dt.date,
                 targets_s: dict[str, float] | dict[tuple[str, str], float], tz: ZoneInfo,
                 by_centre: bool = False) -> dict:
    """The report of the tickets of days `first`..`last` (tickets of other days are ignored) and the
    feedback given on them; `targets_s` is each service's target wait in seconds.

    Tickets and feedback are read once, in any order, and never held: a year of a centre (or a
    month of a country) costs the figures' memory, not the documents'. With `by_centre` (central's
    national report) every document carries its `centre`: the report gains a row per centre,
    attendants and counters are named "CENTRE/id", and `targets_s` is keyed by (centre, service).
    """
    lo, hi = first.isoformat(), last.isoformat()
    services: dict[str, _Group] = {}
    centres: dict[str, _Group] = {}
    staff: dict[str, _Group] = {}
    counters: dict[str, _Group] = {}
    hours: dict[tuple[int, int], int] = {}
    days: dict[str, dict] = {}
    buckets = [0] * (len(WAIT_BUCKETS_MIN) + 1)
    all_waits: list[float] = []
    within = 0
    for ticket in tickets:
        day = ticket["day"]
        if not lo <= day <= hi:
            continue
        code = ticket["service"]
        place = ticket["centre"] if by_centre else None
        groups = [services.setdefault(code, _Group())]
        if by_centre:
            groups.append(centres.setdefault(place, _Group()))
        for group in groups:
            group.counts["issued"] += 1
        issued = parse_iso(ticket["issued_at"]).astimezone(tz)
        hours[(issued.weekday(), issued.hour)] = hours.get((issued.weekday(), issued.hour), 0) + 1
        daily = days.setdefault(day, {"day": day, "issued": 0, "served": 0, "waits": []})
        daily["issued"] += 1
        end = outcome(ticket)
        wait = wait_seconds(ticket)
        target = targets_s.get((place, code) if by_centre else code)
        on_time = wait is not None and target is not None and wait <= target
        for group in groups:
            if end:
                group.counts[end] += 1
            if wait is not None:
                group.waits.append(wait)
                group.within += on_time
        if wait is not None:
            all_waits.append(wait)
            daily["waits"].append(wait)
            within += on_time
            index = next((i for i, bound in enumerate(WAIT_BUCKETS_MIN) if wait <= bound * 60), len(WAIT_BUCKETS_MIN))
            buckets[index] += 1
        if end == "served":
            daily["served"] += 1
            who, counter, seconds = served_by(ticket)
            if seconds is not None:
                for group in groups:
                    group.service.append(seconds)
            for key, table in ((who, staff), (counter, counters)):
                if key:
                    member = table.setdefault(_member(place, key), _Group())
                    member.counts["served"] += 1
                    if seconds is not None:
                        member.service.append(seconds)
    scores: list[int] = []
    low: list[dict] = []
    for doc in feedback:
        # a feedback document names its ticket's day, service, attendant and counter (new_feedback)
        if not lo <= (doc.get("day") or "") <= hi:
            continue  # feedback on a ticket outside the range
        code, who, counter = doc["service"], doc.get("staff"), doc.get("counter")
        place = doc["centre"] if by_centre else None
        score = int(doc["score"])
        scores.append(score)
        services.setdefault(code, _Group()).scores.append(score)
        if by_centre:
            centres.setdefault(place, _Group()).scores.append(score)
        if who:
            staff.setdefault(_member(place, who), _Group()).scores.append(score)
        if counter:
            counters.setdefault(_member(place, counter), _Group()).scores.append(score)
        if score <= LOW_SCORE:
            item = {"ticket": doc.get("ticket") or doc["id"], "day": doc.get("day"), "service": code,
                    "staff": who, "counter": counter, "score": score, "comment": doc.get("comment") or "",
                    "at": doc.get("at")}
            if by_centre:
                item["centre"] = place
            low.append(item)
    report = {
        "from": lo, "to": hi,
        "services": [{"code": code, **_service_row(g)} for code, g in sorted(services.items())],
        "staff": [{"id": key, **_staff_row(g)} for key, g in sorted(staff.items())],
        "counters": [{"id": key, **_staff_row(g)} for key, g in sorted(counters.items())],
        "hours": [{"weekday": w, "hour": h, "issued": n} for (w, h), n in sorted(hours.items())],
        "days": [{"day": d["day"], "issued": d["issued"], "served": d["served"],
                  "wait_p50_s": _round(percentile(sorted(d["waits"]), 0.5))} for _, d in sorted(days.items())],
        "wait_buckets": [{"up_to_min": bound, "tickets": n}
                         for bound, n in zip((*WAIT_BUCKETS_MIN, None), buckets)],
        "totals": {**{k: sum(g.counts[k] for g in services.values()) for k in ("issued", *OUTCOMES)},
                   "wait_s": spread(all_waits),
                   "within_target": round(within / len(all_waits), 4) if all_waits else None},
        "feedback": {**feedback_figures(scores), "low": sorted(low, key=lambda x: (x["day"] or "", x["at"] or ""))},
    }
    if by_centre:
        report["centres"] = [{"code": code, **_service_row(g)} for code, g in sorted(centres.items())]
    return report


def _member(place: str | None, key: str) -> str:
    """An attendant's or counter's key: its id, or "CENTRE/id" in a report over centres."""
    return key if place is None else f"{place}/{key}"


def _service_row(group: _Group) -> dict:
    """A service's figures in the API's shape."""
    row = group.figures()
    return {k: row[k] for k in ("issued", *OUTCOMES, "wait_s", "service_s", "within_target", "feedback")}


def _staff_row(group: _Group) -> dict:
    """An attendant's or counter's figures: what they served, how long it took, how it was rated."""
    row = group.figures()
    return {"served": row["served"], "service_s": row["service_s"], "feedback": row["feedback"]}


def check_feedback(score: object, comment: object) -> dict[str, str]:
    """What is wrong with a feedback answer (field -> reason), empty when it is acceptable."""
    problems = {}
    if isinstance(score, bool) or not isinstance(score, int) or score not in SCORES:
        problems["score"] = "a whole number from 1 to 5"
    if comment is not None and (not isinstance(comment, str) or len(comment) > MAX_COMMENT
                                or any(ord(ch) < 32 and ch not in "\n\t" for ch in comment)):
        problems["comment"] = f"at most {MAX_COMMENT} characters of text"
    return problems


def new_feedback(ticket: dict, *, score: int, comment: str | None, at: str) -> dict:
    """The anonymous feedback record of a finished ticket: keyed by the ticket (one per ticket),
    with the service, attendant and counter copied so that reports need not join, and nothing about
    the citizen."""
    who, counter, _ = served_by(ticket)
    doc = {"id": ticket["id"], "ticket": ticket["id"], "day": ticket["day"], "service": ticket["service"],
           "staff": who, "counter": counter, "score": score, "at": at}
    text = (comment or "").strip()
    if text:
        doc["comment"] = text
    return doc
