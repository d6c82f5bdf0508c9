"""The case domain without an app: transitions, the 72-hour promise over working days, overdue,
the status merge with central's decisions, and the report's figures against an independent count."""
from __future__ import annotations

import collections
import datetime as dt
import random
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.domain import cases as domain
from kiosk.domain.cases import Calendar, CaseFacts, Kind, Status
from kiosk.domain.errors import InvalidTransition, ValidationFailed
from kiosk.domain.receipts import ReceiptStatus

UTC = dt.timezone.utc
BAGHDAD = ZoneInfo("Asia/Baghdad")


def local(text: str) -> dt.datetime:
    """A Baghdad wall-clock time."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=BAGHDAD)


# -- transitions -----------------------------------------------------------------------------------

@pytest.mark.parametrize("new", [Status.COMPLETED, Status.REJECTED, Status.REFERRED])
def test_open_case_closes_each_way(new):
    """An open case can be completed, rejected (with a reason) or referred (with a provider)."""
    domain.check_transition(Status.OPEN, new, reason="missing document", provider="nrc-shelter")


@pytest.mark.parametrize("closed", [Status.COMPLETED, Status.REJECTED, Status.REFERRED])
@pytest.mark.parametrize("new", list(Status))
def test_closed_statuses_are_final(closed, new):
    """Nothing leaves a closed status, not even to itself."""
    with pytest.raises(InvalidTransition):
        domain.check_transition(closed, new, reason="r", provider="p")


def test_rejection_needs_a_reason_and_referral_a_provider():
    """The two required details are named in the error's fields."""
    with pytest.raises(ValidationFailed) as rejected:
        domain.check_transition(Status.OPEN, Status.REJECTED, reason="   ")
    assert set(rejected.value.fields) == {"reason"}
    with pytest.raises(ValidationFailed) as referred:
        domain.check_transition(Status.OPEN, Status.REFERRED)
    assert set(referred.value.fields) == {"provider"}
    with pytest.raises(ValidationFailed):
        domain.check_transition(Status.OPEN, Status.REJECTED, reason="x" * 501)


def test_open_to_open_is_not_a_transition():
    """Re-opening is not a move the table knows."""
    with pytest.raises(InvalidTransition):
        domain.check_transition(Status.OPEN, Status.OPEN)


def test_parsing_refuses_unknown_values():
    """Kinds and statuses come from a closed list."""
    assert domain.parse_kind("referral") is Kind.REFERRAL
    with pytest.raises(ValidationFailed):
        domain.parse_kind("complaint")
    with pytest.raises(ValidationFailed):
        domain.parse_status("done")
    assert Status.REFERRED.receipt_status is ReceiptStatus.REFERRED


# -- the promise ---------------------------------------------------------------------------------

@pytest.mark.parametrize("issued, expected", [
    ("2026-11-19T10:00", "2026-11-24T10:00"),  # Thursday 10:00: the weekend does not count
    ("2026-11-18T20:00", "2026-11-23T20:00"),  # Wednesday evening: Thursday, Sunday, Monday
    ("2026-11-20T11:00", "2026-11-25T00:00"),  # Friday: the clock starts Sunday at midnight
    ("2026-11-22T00:00", "2026-11-25T00:00"),  # Sunday midnight: three whole days
])
def test_72_hours_count_working_days_only(issued, expected):
    """Iraq's weekend (Friday, Saturday) stops the clock."""
    due = domain.due_at(local(issued), 72, Calendar(), BAGHDAD)
    assert due == local(expected).astimezone(UTC)


def test_holidays_stop_the_clock_too():
    """A holiday from settings/calendar is skipped like a weekend day."""
    calendar = Calendar.from_settings({"id": "calendar", "weekend": ["fri", "sat"], "holidays": ["2026-11-23"]})
    due = domain.due_at(local("2026-11-19T10:00"), 72, calendar, BAGHDAD)
    assert due == local("2026-11-25T10:00").astimezone(UTC)


def test_calendar_documents_are_checked():
    """A malformed calendar is refused with the reason (the use cases then fall back)."""
    for bad in ({"weekend": ["friday"]}, {"holidays": ["25/12/2026"]}, {"holidays": "2026-12-25"},
                {"weekend": list(domain.WEEKDAYS)}):
        with pytest.raises(ValueError):
            Calendar.from_settings({"id": "calendar", **bad})
    assert Calendar.from_settings(None) == Calendar()


def test_sla_hours_default_and_bounds():
    """Unset (missing, zero, wrong type) means the 72-hour promise."""
    assert domain.sla_hours({}) == 72
    assert domain.sla_hours({"sla_hours": 0}) == 72
    assert domain.sla_hours({"sla_hours": True}) == 72
    assert domain.sla_hours({"sla_hours": 24}) == 24
    assert domain.sla_hours({"sla_hours": 10**9}) == domain.MAX_SLA_HOURS


def _working_seconds(start: dt.datetime, end: dt.datetime, calendar: Calendar) -> float:
    """Seconds between two times that fall on working days, counted hour by hour (a second,
    independent way of measuring what add_working_hours must add)."""
    total = 0.0
    moment = start.astimezone(BAGHDAD)
    end = end.astimezone(BAGHDAD)
    while moment < end:
        step = min(end, (moment + dt.timedelta(hours=1)).replace(minute=0, second=0, microsecond=0))
        if calendar.is_working_day(moment.date()):
            total += (step - moment).total_seconds()
        moment = step
    return total


@settings(max_examples=60, deadline=None)
@given(start=st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2027, 12, 31)),
       hours=st.integers(min_value=1, max_value=240),
       weekend=st.sets(st.integers(min_value=0, max_value=6), max_size=3),
       holidays=st.sets(st.dates(min_value=dt.date(2026, 1, 1), max_value=dt.date(2028, 3, 1)), max_size=20))
def test_due_date_adds_exactly_the_working_hours(start, hours, weekend, holidays):
    """Whatever the calendar, the working time between registration and due date is the SLA, and
    the due date itself never falls inside a rest day."""
    calendar = Calendar(frozenset(weekend), frozenset(holidays))
    issued = start.replace(tzinfo=BAGHDAD, microsecond=0)
    due = calendar.add_working_hours(issued, hours, BAGHDAD)
    assert _working_seconds(issued, due, calendar) == hours * 3600
    just_before = (due - dt.timedelta(seconds=1)).astimezone(BAGHDAD)
    assert calendar.is_working_day(just_before.date())


def test_overdue_and_broken_promises():
    """Overdue: open after the due date. A promise is broken by that or by closing late."""
    due = dt.datetime(2026, 11, 24, 7, tzinfo=UTC)
    later = due + dt.timedelta(seconds=1)
    assert not domain.is_overdue(Status.OPEN, due, due)
    assert domain.is_overdue(Status.OPEN, due, later)
    assert not domain.is_overdue(Status.COMPLETED, due, later)
    assert domain.missed_promise(Status.COMPLETED, due, later, later)
    assert not domain.missed_promise(Status.REJECTED, due, due, later)


def test_central_decision_wins_and_bad_ones_are_ignored():
    """A back office's decision is shown; a malformed one leaves the centre's own record."""
    at = dt.datetime(2026, 11, 22, 9, tzinfo=UTC)
    decided = domain.merge_status(Status.OPEN, at, {"status": "rejected", "changed_at": "2026-11-23T10:00:00Z",
                                                    "reason": "duplicate"})
    assert (decided.status, decided.source, decided.reason) == (Status.REJECTED, "central", "duplicate")
    assert domain.merge_status(Status.OPEN, at, {"status": "lost"}).source == "centre"
    assert domain.merge_status(Status.COMPLETED, at, None).status is Status.COMPLETED


# -- the monthly report ------------------------------------------------------------------------

def _seeded_month(seed: int, count: int) -> list[CaseFacts]:
    """Cases spread over October to December 2026, some open past due, some closed late."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        day = dt.date(2026, 10, 1) + dt.timedelta(days=rng.randrange(92))
        created = dt.datetime.combine(day, dt.time(rng.randrange(8, 15)), tzinfo=UTC)
        due = created + dt.timedelta(hours=rng.choice([24, 72, 96]))
        status = rng.choice(list(Status))
        status_at = None if status is Status.OPEN else created + dt.timedelta(hours=rng.randrange(1, 150))
        out.append(CaseFacts(day=day, service=rng.choice("ABC"), kind=rng.choice(list(Kind)), status=status,
                             due_at=due, status_at=status_at, centre=rng.choice(["ERB-01", "NIN-03"])))
    return out


def test_report_matches_an_independent_count():
    """The report's figures for November equal a count made another way (string months, Counter)."""
    facts = _seeded_month(7, 600)
    as_of = dt.datetime(2026, 12, 10, tzinfo=UTC)
    result = domain.monthly_report(facts, "2026-11", as_of)
    november = [f for f in facts if f.day.isoformat().startswith("2026-11")]
    by_status = collections.Counter(f.status.value for f in november)
    late = sum(1 for f in november
               if (f.status_at or as_of) > f.due_at)
    assert result.total.received == len(november) > 100
    assert (result.total.completed, result.total.rejected, result.total.referred, result.total.open) == (
        by_status["completed"], by_status["rejected"], by_status["referred"], by_status["open"])
    assert result.total.overdue == late
    assert result.total.pct("completed") == int(100 * by_status["completed"] / len(november) + 0.5)
    per_service = collections.Counter((f.service, f.status.value) for f in november)
    for service, figures in result.by_service.items():
        assert figures.completed == per_service[(service, "completed")]
        assert figures.received == sum(n for (s, _), n in per_service.items() if s == service)
    assert sum(f.received for f in result.by_kind.values()) == len(november)
    assert sum(result.per_day.values()) == len(november)
    assert len(result.per_day) == 30
    assert set(result.by_centre) == {"ERB-01", "NIN-03"}


def test_percentages_round_half_up_like_the_citizen_affairs_report():
    """3,784 completed of 4,068 received is 93 %; 284 rejected is 7 % (6.98)."""
    figures = domain.Figures(received=4068, completed=3784, rejected=284)
    assert figures.pct("completed") == 93
    assert figures.pct("rejected") == 7
    assert domain.Figures().pct("completed") == 0
    assert domain.Figures(received=8, completed=1).pct("completed") == 13  # 12.5 rounds up


def test_months_are_checked():
    """A month is YYYY-MM."""
    assert len(domain.month_days("2028-02")) == 29
    for bad in ("2026-13", "26-11", "2026/11", None, "2026-1"):
        with pytest.raises(ValidationFailed):
            domain.parse_month(bad)


def test_facts_of_a_malformed_document_is_a_value_error():
    """A damaged pushed document is left out of a report with a reason, never crashes it."""
    with pytest.raises(ValueError):
        domain.facts_of({"id": "x", "status": "open"})
