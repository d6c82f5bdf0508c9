"""A simulated centre: days of ordinary work driven through the same use cases as the screens, on
a simulated clock, for demonstrations and benchmarks (`flask --app kiosk simulate`).

Each simulated day: counters open at 07:50; citizens arrive from 08:00 to 14:30 (local time) and
take tickets (half for service A, a third for B, the rest for C; one in twelve in a priority
class); attendants call the next ticket, some citizens are not there (a third of those come back
and are called again), the others are served for two to five minutes; a few are transferred to
another service; one served citizen in twenty registers a request (most with a signed receipt);
each morning the back office closes most of the earlier days' open requests; counters close when
the queue is empty; and just after midnight the day is closed (`kiosk.usecases.days`). The number
of counters follows the day's tickets (about a hundred each), so queues stay realistic.

Simulated records are real records of the data directory they are written to: simulate only into
a data directory of its own, never one enrolled with central (refused).
"""
from __future__ import annotations

import datetime as dt
import heapq
import logging
import math
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from kiosk import cases, services
from kiosk.clock import FrozenClock
from kiosk.store.journal import JOURNAL, list_segments
from kiosk.usecases.days import close_days
from sync.protocol import ORIGIN_CENTRAL

log = logging.getLogger(__name__)

UTC = dt.timezone.utc
COUNTERS_OPEN_AT = dt.time(7, 50)
FIRST_ARRIVAL = dt.time(8, 0)
LAST_ARRIVAL = dt.time(14, 30)
COUNTERS_CLOSE_AT = dt.time(18, 0)
DAY_CLOSE_AT = dt.time(0, 5)            # on the next day
TICKETS_PER_COUNTER = 100
SERVICE_WEIGHTS = (("A", 6), ("B", 4), ("C", 2))
PRIORITY_SHARE = 1 / 12
NO_SHOW_SHARE = 0.03
COMES_BACK_SHARE = 1 / 3
TRANSFER_SHARE = 0.02
REQUEST_SHARE = 0.05
RECEIPT_SHARE = 0.9
DECIDED_EACH_MORNING = 0.6
VERIFY_HOST = "verify.example.gov.iq"
PROVIDERS = [
    {"id": "HOUSING-1", "sector": "housing", "contact": "",
     "names": {"ar": "صندوق الإسكان", "ckb": "سندوقی نیشتەجێبوون", "en": "Housing fund"}},
    {"id": "TRAIN-1", "sector": "vocational_training", "contact": "",
     "names": {"ar": "مركز التدريب المهني", "ckb": "ناوەندی ڕاهێنانی پیشەیی", "en": "Vocational training centre"}},
]


class SimulationRefused(ValueError):
    """The data directory is not one a simulation may write to; the message says why."""


@dataclass
class Totals:
    """What a simulation did."""

    days: int = 0
    tickets: int = 0
    served: int = 0
    no_shows: int = 0
    transfers: int = 0
    requests: int = 0
    receipts: int = 0
    decisions: int = 0
    ended_by_day_close: int = 0
    parts: int = 0
    per_day: list[dict] = field(default_factory=list)


def simulate(c: services.Centre, clock: FrozenClock, *, first_day: dt.date, days: int, per_day: int,
             seed: int = 1, close: bool = True, on_day: Callable[[dict], None] | None = None) -> Totals:
    """Simulate `days` service days from `first_day` with about `per_day` tickets each, closing
    each day just after its midnight unless `close` is false. The store may be opened without
    fsync per commit: each simulated day ends with a snapshot and its journal made durable."""
    _refuse_unless_fresh(c)
    rng = random.Random(seed)
    quiet = logging.getLogger("kiosk.cases")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # receipts do not verify here (no trust list): no warning per receipt
    try:
        clock.set(_at(c, first_day, COUNTERS_OPEN_AT) - dt.timedelta(minutes=5))
        staff = _set_up(c, counters=max(3, math.ceil(per_day / TICKETS_PER_COUNTER)))
        totals = Totals()
        durable_after = 0
        for index in range(days):
            day = first_day + dt.timedelta(days=index)
            figures = _Day(c, clock, rng, day, staff, per_day).run()
            if close:
                clock.set(_at(c, day + dt.timedelta(days=1), DAY_CLOSE_AT))
                result = close_days(c)
                figures["ended_by_day_close"] = result["ended"]
                figures["parts"] = len(result["closed"])
            durable_after = _make_durable(c, durable_after)
            totals.days += 1
            for name in ("tickets", "served", "no_shows", "transfers", "requests", "receipts", "decisions",
                         "ended_by_day_close", "parts"):
                setattr(totals, name, getattr(totals, name) + figures.get(name, 0))
            totals.per_day.append(figures)
            if on_day is not None:
                on_day(figures)
        return totals
    finally:
        quiet.setLevel(level)


def _refuse_unless_fresh(c: services.Centre) -> None:
    """Simulated records must never reach central, nor mix with a centre's real ones."""
    data_dir = Path(c.store.data_dir)
    if (data_dir / "sync" / "credential.json").exists():
        raise SimulationRefused(f"{data_dir} is enrolled with central: simulated records must never reach "
                                "the ministry; simulate into a data directory of its own")
    if c.store.count("tickets") or c.history.archive.parts():
        raise SimulationRefused(f"{data_dir} already holds tickets: simulate into an empty data directory")


def _at(c: services.Centre, day: dt.date, time: dt.time) -> dt.datetime:
    """A local time of a day, in UTC."""
    return dt.datetime.combine(day, time, c.tz).astimezone(UTC)


def _set_up(c: services.Centre, *, counters: int) -> dict[str, str]:
    """The demo centre with `counters` counters, one attendant each, and the settings central would
    send for receipts and referrals; returns counter -> attendant."""
    services.load_demo_data(c)
    with c.store.transaction(origin=ORIGIN_CENTRAL):
        for n in range(1, counters + 1):
            if c.store.get("counters", str(n)) is None:
                c.store.put("counters", {"id": str(n), "names": {"ar": f"الشباك {n}", "ckb": f"پەنجەرەی {n}",
                                                                 "en": f"Counter {n}"},
                                         "services": ["A", "B", "C"], "active": True})
        c.store.put("settings", {"id": cases.RECEIPTS_SETTING, "verify_host": VERIFY_HOST})
        c.store.put("settings", {"id": cases.PROVIDERS_SETTING, "providers": PROVIDERS})
    staff = {}
    for n in range(1, counters + 1):
        staff[str(n)] = f"att{n:03d}"
        services.set_staff(c, staff[str(n)], pin="4821", role="attendant", by="simulation")
    return staff


def _make_durable(c: services.Centre, after_first: int) -> int:
    """Snapshot the store and fsync the journal segments written since `after_first` (the journal
    is central's outbox, so it must be on disk too); the newest segment's first commit."""
    c.store.compact()
    newest = after_first
    for first, path in list_segments(c.store.directory / JOURNAL):
        if first >= after_first:
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
            newest = first
    return newest


class _Day:
    """One simulated service day: a queue of timed events run in order on the clock."""

    def __init__(self, c: services.Centre, clock: FrozenClock, rng: random.Random, day: dt.date,
                 staff: dict[str, str], per_day: int):
        """Plan the day's arrivals."""
        self.c, self.clock, self.rng, self.day, self.staff = c, clock, rng, day, staff
        self.events: list = []
        self.order = 0
        self.idle: set[str] = set()
        self.figures = {"day": day.isoformat(), "tickets": 0, "served": 0, "no_shows": 0, "transfers": 0,
                        "requests": 0, "receipts": 0, "decisions": 0}
        start, end = _at(c, day, FIRST_ARRIVAL), _at(c, day, LAST_ARRIVAL)
        span = (end - start).total_seconds()
        for _ in range(per_day):
            self.schedule(start + dt.timedelta(seconds=rng.uniform(0, span)), self.arrive)
        self.closing = _at(c, day, COUNTERS_CLOSE_AT)

    def schedule(self, when: dt.datetime, action, *args) -> None:
        """Run `action(*args)` at `when`."""
        self.order += 1
        heapq.heappush(self.events, (when, self.order, action, args))

    def run(self) -> dict:
        """Decide earlier requests, open the counters, run every event, close the counters."""
        c = self.c
        self.clock.set(_at(c, self.day, COUNTERS_OPEN_AT))
        self.decide_requests()
        for counter, attendant in self.staff.items():
            services.set_counter_status(c, counter, "open", by=attendant)
            self.idle.add(counter)
        while self.events:
            when, _, action, args = heapq.heappop(self.events)
            self.clock.set(when)
            action(*args)
        self.clock.set(max(self.clock.now(), self.closing))
        for counter, attendant in self.staff.items():
            services.set_counter_status(c, counter, "closed", by=attendant)
        return self.figures

    def decide_requests(self) -> None:
        """The back office closes most requests of earlier days that are still open."""
        today = self.day.isoformat()
        for doc in self.c.store.all(cases.CASES):
            if doc["status"] != "open" or doc["created_day"] >= today or self.rng.random() > DECIDED_EACH_MORNING:
                continue
            if self.rng.random() < 0.85:
                cases.change_status(self.c, doc["id"], "completed", by=doc["by"])
            else:
                cases.change_status(self.c, doc["id"], "rejected", by=doc["by"], reason="Documents incomplete")
            self.figures["decisions"] += 1

    def wake(self) -> None:
        """An idle counter, if any, looks at the queue again (one new ticket needs one counter)."""
        if self.idle:
            counter = min(self.idle, key=lambda k: (len(k), k))
            self.idle.discard(counter)
            self.schedule(self.clock.now(), self.call, counter)

    def arrive(self) -> None:
        """A citizen takes a ticket."""
        rng = self.rng
        service = rng.choices([s for s, _ in SERVICE_WEIGHTS], [w for _, w in SERVICE_WEIGHTS])[0]
        priority = rng.choice(("elderly", "disability", "pregnancy")) if rng.random() < PRIORITY_SHARE else "normal"
        services.issue_ticket(self.c, service=service, priority=priority, lang=rng.choice(services.LANGS))
        self.figures["tickets"] += 1
        self.wake()

    def call(self, counter: str) -> None:
        """A counter calls its next ticket, or waits for the next arrival (none after closing
        time: day close ends what is left)."""
        if self.clock.now() >= self.closing:
            return
        called = services.call_next(self.c, counter=counter, by=self.staff[counter])
        if called is None:
            self.idle.add(counter)
            return
        ticket = called[0]
        now = self.clock.now()
        if self.rng.random() < NO_SHOW_SHARE:
            self.schedule(now + dt.timedelta(seconds=60), self.no_show, counter, ticket["id"])
        else:
            self.schedule(now + dt.timedelta(seconds=self.rng.uniform(15, 45)), self.start, counter, ticket)

    def no_show(self, counter: str, ticket_id: str) -> None:
        """Nobody came: mark it, and perhaps the citizen comes back later."""
        services.act(self.c, ticket_id, "no_show", by=self.staff[counter], counter=counter)
        self.figures["no_shows"] += 1
        if self.rng.random() < COMES_BACK_SHARE:
            self.schedule(self.clock.now() + dt.timedelta(seconds=self.rng.uniform(300, 900)), self.come_back,
                          counter, ticket_id)
        self.schedule(self.clock.now(), self.call, counter)

    def come_back(self, counter: str, ticket_id: str) -> None:
        """A citizen marked not present comes back; the counter that called them queues them again."""
        services.act(self.c, ticket_id, "reactivate", by=self.staff[counter])
        self.wake()

    def start(self, counter: str, ticket: dict) -> None:
        """The citizen reaches the counter."""
        services.act(self.c, ticket["id"], "start", by=self.staff[counter], counter=counter)
        self.schedule(self.clock.now() + dt.timedelta(seconds=self.rng.uniform(120, 300)), self.finish,
                      counter, ticket)

    def finish(self, counter: str, ticket: dict) -> None:
        """Served: sometimes sent on to another service, sometimes with a request and its receipt."""
        c, rng, by = self.c, self.rng, self.staff[counter]
        if rng.random() < TRANSFER_SHARE:
            target = rng.choice([s for s, _ in SERVICE_WEIGHTS if s != ticket["service"]])
            services.transfer(c, ticket["id"], service=target, by=by)
            self.figures["transfers"] += 1
            self.wake()
        else:
            if rng.random() < REQUEST_SHARE:
                self.register(ticket, by)
            services.act(c, ticket["id"], "finish", by=by, counter=counter)
            self.figures["served"] += 1
        self.schedule(self.clock.now() + dt.timedelta(seconds=rng.uniform(5, 20)), self.call, counter)

    def register(self, ticket: dict, by: str) -> None:
        """The citizen being served submits a request (an inquiry or a referral now and then)."""
        rng = self.rng
        kind = rng.choices(("request", "inquiry", "referral"), (15, 4, 1))[0]
        referral = kind == "referral"
        has_documents = bool(services.get_service(self.c, ticket["service"]).get("documents"))
        doc = cases.register_case(
            self.c, ticket_id=ticket["id"], kind=kind, reference=f"{rng.randrange(10**9):09d}", by=by,
            documents=[0] if has_documents and not referral else None,
            contact=f"0750{rng.randrange(10**7):07d}" if rng.random() < 0.3 else None,
            provider=rng.choice(PROVIDERS)["id"] if referral else None,
            details="Needs help with the application" if referral else None)
        self.figures["requests"] += 1
        if rng.random() < RECEIPT_SHARE:
            cases.issue_receipt(self.c, doc["id"], by=by)
            self.figures["receipts"] += 1
