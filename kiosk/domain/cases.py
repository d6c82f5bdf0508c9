"""Requests (cases) a citizen submits at a counter: kinds, statuses and their transitions, the due
date promised from the service's SLA counted over the centre's working days, overdue checks, and
the monthly report's figures. Plain Python: no Flask, no store, no clock of its own.

The statuses follow the citizen-affairs office's practice: a request is open until it is completed,
rejected (a reason is required) or referred to a provider (the provider is required). Closed
statuses are final. A referral registered as such is handed over at once, so it starts referred.
"""
from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from kiosk.domain.errors import InvalidTransition, ValidationFailed
from kiosk.domain.receipts import ReceiptStatus

UTC = dt.timezone.utc

DEFAULT_SLA_HOURS = 72
MAX_SLA_HOURS = 24 * 366
# Iraq and the Kurdistan Region rest on Friday and Saturday (Python: Monday = 0).
DEFAULT_WEEKEND = frozenset({4, 5})
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_HOLIDAYS = 400
# The settings document (from central) that holds the weekend and the holidays.
CALENDAR_SETTING = "calendar"
MAX_REASON_CHARS = 500
MONTH_RE = re.compile(r"^(20[0-9]{2})-(0[1-9]|1[0-2])$")


class Kind(str, enum.Enum):
    """What the citizen came for."""

    REQUEST = "request"      # a document or decision the centre (or a back office) must produce
    INQUIRY = "inquiry"      # a question that needs an answer
    REFERRAL = "referral"    # a link to a provider (housing, vocational training, education, legal aid)


class Status(str, enum.Enum):
    """Where a case stands; every status but open is final."""

    OPEN = "open"
    COMPLETED = "completed"
    REJECTED = "rejected"
    REFERRED = "referred"

    @property
    def closed(self) -> bool:
        """True for the final statuses."""
        return self is not Status.OPEN

    @property
    def receipt_status(self) -> ReceiptStatus:
        """The same status as receipts carry it."""
        return ReceiptStatus[self.name]


# The transition table: from a status, the statuses a case may move to.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.OPEN: frozenset({Status.COMPLETED, Status.REJECTED, Status.REFERRED}),
    Status.COMPLETED: frozenset(),
    Status.REJECTED: frozenset(),
    Status.REFERRED: frozenset(),
}

SECTORS = ("housing", "vocational_training", "education", "legal_aid", "health", "psychosocial",
           "livelihoods", "other")


def parse_kind(value: object) -> Kind:
    """A Kind from form or JSON input; ValidationFailed names the field otherwise."""
    try:
        return Kind(value)
    except ValueError:
        raise ValidationFailed("unknown kind", {"kind": "must be request, inquiry or referral"}) from None


def parse_status(value: object) -> Status:
    """A Status from input; ValidationFailed otherwise."""
    try:
        return Status(value)
    except ValueError:
        raise ValidationFailed("unknown status",
                               {"status": "must be open, completed, rejected or referred"}) from None


def check_transition(current: Status, new: Status, *, reason: str | None = None,
                     provider: str | None = None) -> None:
    """Refuse a move the table does not allow, a rejection without a reason, a referral without a provider."""
    if new not in TRANSITIONS[current]:
        raise InvalidTransition(f"a {current.value} case cannot become {new.value}",
                                status=current.value, to=new.value)
    if new is Status.REJECTED and not (reason or "").strip():
        raise ValidationFailed("a rejection needs a reason", {"reason": "required when rejecting"})
    if new is Status.REFERRED and not (provider or "").strip():
        raise ValidationFailed("a referral needs a provider", {"provider": "required when referring"})
    if reason is not None and len(reason) > MAX_REASON_CHARS:
        raise ValidationFailed("reason too long", {"reason": f"at most {MAX_REASON_CHARS} characters"})


def sla_hours(service: Mapping) -> int | float:
    """The service's promised answer time in hours; 72 when not configured (0 or missing means unset)."""
    value = service.get("sla_hours")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return DEFAULT_SLA_HOURS
    return min(value, MAX_SLA_HOURS)


# -- the centre's calendar -------------------------------------------------------------------------

@dataclass(frozen=True)
class Calendar:
    """Working days of a centre: every day but the weekend and the listed holidays."""

    weekend: frozenset[int] = DEFAULT_WEEKEND
    holidays: frozenset[dt.date] = frozenset()

    def __post_init__(self):
        """Refuse a calendar with no working day at all (a due date would never come)."""
        object.__setattr__(self, "weekend", frozenset(self.weekend))
        object.__setattr__(self, "holidays", frozenset(self.holidays))
        if not self.weekend <= set(range(7)):
            raise ValueError("weekend days are 0 (Monday) to 6 (Sunday)")
        if len(self.weekend) >= 7:
            raise ValueError("a calendar needs at least one working day a week")

    @classmethod
    def from_settings(cls, doc: Mapping | None) -> Calendar:
        """The calendar of a `settings/calendar` document:
        {"id": "calendar", "weekend": ["fri", "sat"], "holidays": ["2026-12-25", ...]}; ValueError if malformed."""
        if not doc:
            return cls()
        weekend = doc.get("weekend", [WEEKDAYS[d] for d in sorted(DEFAULT_WEEKEND)])
        if not isinstance(weekend, list) or any(day not in WEEKDAYS for day in weekend):
            raise ValueError("calendar weekend must be a list of mon, tue, wed, thu, fri, sat, sun")
        holidays = doc.get("holidays", [])
        if not isinstance(holidays, list) or len(holidays) > MAX_HOLIDAYS:
            raise ValueError(f"calendar holidays must be a list of at most {MAX_HOLIDAYS} dates")
        days = set()
        for item in holidays:
            try:
                days.add(dt.date.fromisoformat(item))
            except (TypeError, ValueError):
                raise ValueError(f"calendar holiday {item!r} is not a date like 2026-12-25") from None
        return cls(frozenset(WEEKDAYS.index(day) for day in weekend), frozenset(days))

    def is_working_day(self, day: dt.date) -> bool:
        """True when the centre works on `day`."""
        return day.weekday() not in self.weekend and day not in self.holidays

    def next_working_day(self, after: dt.date) -> dt.date:
        """The first working day after `after` (a list of holidays is finite, so one comes)."""
        day = after + dt.timedelta(days=1)
        while not self.is_working_day(day):
            day += dt.timedelta(days=1)
        return day

    def add_working_hours(self, start: dt.datetime, hours: float, tz: ZoneInfo) -> dt.datetime:
        """The moment `hours` of working-day time after `start`: the clock runs through working days
        (midnight to midnight, local time) and stands still on weekends and holidays.

        So 72 hours from Thursday 10:00 with a Friday-Saturday weekend end on Tuesday 10:00. A
        request made on a rest day starts counting at the next working day's midnight."""
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        remaining = dt.timedelta(hours=hours)
        local = start.astimezone(tz)
        day = local.date()
        # time already used of the first day, when it is a working day
        if self.is_working_day(day):
            offset = local - _midnight(day, tz)
        else:
            offset = dt.timedelta(0)
        for _ in range(366 * 20):
            if self.is_working_day(day):
                length = _midnight(day + dt.timedelta(days=1), tz) - _midnight(day, tz)
                available = length - offset
                if remaining <= available:
                    return (_midnight(day, tz) + offset + remaining).astimezone(UTC)
                remaining -= available
            offset = dt.timedelta(0)
            day += dt.timedelta(days=1)
        raise ValueError("no due date within twenty years: check the calendar")


def _midnight(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    """Local midnight at the start of `day` as an aware datetime."""
    return dt.datetime.combine(day, dt.time(0), tzinfo=tz)


def due_at(issued_at: dt.datetime, hours: float, calendar: Calendar, tz: ZoneInfo) -> dt.datetime:
    """When the answer is promised: `hours` of the service's SLA counted over working days, in UTC,
    to the whole second (as receipts carry it)."""
    return calendar.add_working_hours(issued_at, hours, tz).replace(microsecond=0)


def is_overdue(status: Status, due: dt.datetime, now: dt.datetime) -> bool:
    """An open case whose promised date has passed."""
    return status is Status.OPEN and now > due


def missed_promise(status: Status, due: dt.datetime, status_at: dt.datetime | None, as_of: dt.datetime) -> bool:
    """The promise was broken: still open after the due date, or closed after it."""
    if status is Status.OPEN:
        return as_of > due
    return status_at is not None and status_at > due


# -- the status a screen shows -------------------------------------------------------------------

@dataclass(frozen=True)
class CurrentStatus:
    """A case's status as a screen shows it: the centre's own record, unless central decided."""

    status: Status
    at: dt.datetime | None
    source: str  # "centre" or "central"
    reason: str | None = None
    provider: str | None = None


def merge_status(case_status: Status, case_status_at: dt.datetime | None,
                 central: Mapping | None) -> CurrentStatus:
    """The status to show: a back-office decision pulled from central wins over the centre's record.

    Each side writes only its own document (the kiosk its case, central its case_status), so the
    two never overwrite each other; once a back office has acted its decision is the answer."""
    if central:
        try:
            status = Status(central.get("status"))
            at = _parse_time(central.get("changed_at"))
        except (ValueError, TypeError):
            status = None
        if status is not None:
            return CurrentStatus(status, at, "central", central.get("reason") or None,
                                 central.get("provider") or None)
    return CurrentStatus(case_status, case_status_at, "centre")


def _parse_time(value: object) -> dt.datetime | None:
    """An ISO 8601 time with a zone, or None when absent; ValueError when malformed."""
    if value is None:
        return None
    moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("time without a zone")
    return moment.astimezone(UTC)


# -- the monthly report --------------------------------------------------------------------------

@dataclass(frozen=True)
class CaseFacts:
    """What the report needs of one case (no personal data)."""

    day: dt.date            # local date the case was registered
    service: str
    kind: Kind
    status: Status
    due_at: dt.datetime
    status_at: dt.datetime | None
    centre: str = ""


@dataclass
class Figures:
    """Counts for one row of the report, with shares of the requests received."""

    received: int = 0
    completed: int = 0
    rejected: int = 0
    referred: int = 0
    open: int = 0
    overdue: int = 0

    def add(self, facts: CaseFacts, as_of: dt.datetime) -> None:
        """Count one case."""
        self.received += 1
        if facts.status is Status.COMPLETED:
            self.completed += 1
        elif facts.status is Status.REJECTED:
            self.rejected += 1
        elif facts.status is Status.REFERRED:
            self.referred += 1
        else:
            self.open += 1
        if missed_promise(facts.status, facts.due_at, facts.status_at, as_of):
            self.overdue += 1

    def pct(self, name: str) -> int:
        """A count as a whole percentage of received (half rounds up), 0 when nothing was received."""
        count = getattr(self, name)
        return (200 * count + self.received) // (2 * self.received) if self.received else 0

    def as_row(self) -> dict:
        """The counts and percentages as one flat mapping (CSV, templates)."""
        row = {name: getattr(self, name) for name in ("received", "completed", "rejected", "referred", "open",
                                                      "overdue")}
        row.update({f"{name}_pct": self.pct(name) for name in ("completed", "rejected", "referred", "open",
                                                                "overdue")})
        return row


@dataclass
class Report:
    """The month's figures: totals, by service, by kind, by centre, and requests received per day."""

    month: str
    as_of: dt.datetime
    total: Figures = field(default_factory=Figures)
    by_service: dict[str, Figures] = field(default_factory=dict)
    by_kind: dict[str, Figures] = field(default_factory=dict)
    by_centre: dict[str, Figures] = field(default_factory=dict)
    per_day: dict[dt.date, int] = field(default_factory=dict)


def parse_month(value: object) -> tuple[int, int]:
    """(year, month) of 'YYYY-MM'; ValidationFailed otherwise."""
    match = MONTH_RE.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValidationFailed("invalid month", {"month": "a month like 2026-11"})
    return int(match.group(1)), int(match.group(2))


def month_days(month: str) -> list[dt.date]:
    """Every date of a 'YYYY-MM' month."""
    year, number = parse_month(month)
    day = dt.date(year, number, 1)
    out = []
    while day.month == number:
        out.append(day)
        day += dt.timedelta(days=1)
    return out


def monthly_report(cases: Iterable[CaseFacts], month: str, as_of: dt.datetime) -> Report:
    """The figures of the cases registered in `month` (local dates), with statuses as they are now.

    Overdue counts the promises broken: cases still open after their due date at `as_of`, and
    cases closed after it. Percentages are of the requests received."""
    days = month_days(month)
    report = Report(month=month, as_of=as_of, per_day={day: 0 for day in days})
    first, last = days[0], days[-1]
    for facts in cases:
        if not first <= facts.day <= last:
            continue
        report.total.add(facts, as_of)
        report.by_service.setdefault(facts.service, Figures()).add(facts, as_of)
        report.by_kind.setdefault(facts.kind.value, Figures()).add(facts, as_of)
        if facts.centre:
            report.by_centre.setdefault(facts.centre, Figures()).add(facts, as_of)
        report.per_day[facts.day] += 1
    report.by_service = dict(sorted(report.by_service.items()))
    report.by_kind = {kind.value: report.by_kind[kind.value] for kind in Kind if kind.value in report.by_kind}
    report.by_centre = dict(sorted(report.by_centre.items()))
    return report


def facts_of(doc: Mapping, central: Mapping | None = None) -> CaseFacts:
    """The report facts of a stored case document (as the kiosk stores and pushes it) and the
    back-office decision pulled for it, if any; ValueError when the document is malformed."""
    try:
        current = merge_status(Status(doc["status"]), _parse_time(doc.get("status_at")), central)
        return CaseFacts(day=dt.date.fromisoformat(doc["created_day"]), service=str(doc["service"]),
                         kind=Kind(doc["kind"]), status=current.status, due_at=_parse_time(doc["due_at"]),
                         status_at=current.at, centre=str(doc.get("centre", "")))
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"malformed case document: {exc!r}") from None
