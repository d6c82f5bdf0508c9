"""Ticket repository: tickets in the store plus in-memory indexes derived from them.

The indexes are rebuilt from the store at start-up and kept current by `save` (and `forget`, when a
commit fails), so issuing, calling or showing tickets costs the same with 5 tickets waiting as with
5,000 and with 100 tickets stored as with 100,000: nothing on the hot paths scans or sorts.

- Waiting tickets: per service, three sorted lists of numeric keys (`policy.queue_key`: arrival in
  epoch milliseconds, class rank, number, id), for priority tickets, normal ones and appointments
  (keyed by the start of their slot). The call-next rule reads only their heads; a ticket's place
  is a few bisections.
- Appointments checked in: booking code -> ticket id, so a booking checks in once.
- Tickets with a counter: called/serving and held/no-show tickets by counter, so the display, the
  console and the supervisor never walk the waiting tickets.
- Recent service times per service and per staff member and day (wait estimate, staff figures).

Keys hold the priority classes' ranks, which are configuration: a query states the ranks it
decides with, and the keys are recomputed when they differ from the ones indexed (rare). Checking
at use catches every way configuration arrives (pulled from central, demo data, a restored store)
without those paths having to know about this index.
"""
from __future__ import annotations

import collections
import heapq
import itertools
import threading
from typing import Iterable, Iterator

from sortedcontainers import SortedList

from kiosk.domain import policy
from kiosk.domain.tickets import State, service_seconds
from kiosk.store import Store

TABLE = "tickets"
RECENT = 20  # service times kept per service for the wait estimate
WITH_COUNTER = (State.CALLED.value, State.SERVING.value)
PARKED = (State.HELD.value, State.NO_SHOW.value)
OPEN = frozenset({State.WAITING.value, *WITH_COUNTER, *PARKED})


class _ServiceQueue:
    """One service's waiting tickets as sorted keys: priority, normal and appointment apart."""

    __slots__ = ("priority", "normal", "appointment")

    def __init__(self):
        """Three empty queues."""
        self.priority = SortedList()
        self.normal = SortedList()
        self.appointment = SortedList()

    def __len__(self) -> int:
        """How many tickets wait for the service."""
        return len(self.priority) + len(self.normal) + len(self.appointment)

    def side(self, ticket: dict) -> SortedList:
        """The queue a ticket belongs in."""
        return getattr(self, policy.side(ticket))


class TicketRepository:
    """Reads and writes tickets; answers queue questions from indexes, not scans."""

    def __init__(self, store: Store):
        """Index every open ticket and today's service times."""
        self.store = store
        self._lock = threading.RLock()
        self.ranks: dict[str, int] = {}
        self.open: dict[str, dict] = {}                                     # id -> open ticket
        self._tickets: dict[str, dict] = {}                                 # id -> waiting ticket
        self._keys: dict[str, tuple[str, tuple]] = {}                       # id -> (service, key)
        self._queues: dict[str, _ServiceQueue] = collections.defaultdict(_ServiceQueue)
        self._counter_of: dict[str, tuple[dict, str]] = {}                  # id -> (index, counter)
        self._with_counter: dict[str, dict[str, dict]] = collections.defaultdict(dict)  # counter -> id -> ticket
        self._parked: dict[str, dict[str, dict]] = collections.defaultdict(dict)        # counter -> id -> ticket
        self._moved: dict[str, dict] = {}                                   # id -> transferred-in ticket, waiting
        self.checked_in: dict[str, str] = {}                                # booking code -> ticket id
        self.recent: dict[str, collections.deque] = collections.defaultdict(lambda: collections.deque(maxlen=RECENT))
        self.done_by: dict[tuple[str, str], list[float]] = collections.defaultdict(list)  # (day, staff) -> service s
        with store.lock:
            self.ranks = policy.class_ranks(store.storage.tables.get("priority_classes", {}).values())
            tickets = sorted(store.storage.tables.get(TABLE, {}).values(), key=lambda t: t["issued_at"])
            for ticket in tickets:
                self._index(None, ticket)

    def get(self, ticket_id: str) -> dict | None:
        """A copy of a ticket."""
        return self.store.get(TABLE, ticket_id)

    def save(self, ticket: dict, previous: dict | None = None) -> None:
        """Store a ticket (inside the caller's transaction, if any) and update the indexes."""
        self.store.put(TABLE, ticket)
        self._index(previous, ticket)
        # Memory must match the disk: if the surrounding commit fails, the store rolls back and
        # the index follows it, whoever opened the transaction.
        self.store.on_rollback(lambda: self.forget(ticket))

    def forget(self, ticket: dict) -> None:
        """After a failed commit: index the ticket as the store now has it (or not at all)."""
        stored = self.store.get(TABLE, ticket["id"])
        with self._lock:
            self._unplace(ticket["id"])
            if stored is not None:
                self._place(stored)

    # -- maintenance ---------------------------------------------------------------------------

    def _index(self, previous: dict | None, ticket: dict) -> None:
        """Move a ticket between indexes after a change, and count a newly finished one's service time."""
        with self._lock:
            self._unplace(ticket["id"])
            self._place(ticket)
            if ticket["state"] == State.DONE.value and (previous is None or previous["state"] != State.DONE.value):
                seconds = service_seconds(ticket)
                if seconds is not None:
                    self.recent[ticket["service"]].append(seconds)
                    by = next((e.get("by") for e in reversed(ticket["events"]) if e["state"] == "done"), None)
                    if by:
                        self.done_by[(ticket["day"], by)].append(seconds)

    def _place(self, ticket: dict) -> None:
        """Add a ticket to the indexes its state belongs in (the caller holds the lock)."""
        tid, state = ticket["id"], ticket["state"]
        if ticket.get("appointment"):
            self.checked_in[ticket["appointment"]] = tid
        if state not in OPEN:
            return
        self.open[tid] = ticket
        if state == State.WAITING.value:
            if ticket.get("transferred_from"):
                self._moved[tid] = ticket
            key = policy.queue_key(ticket, self.ranks)
            self._tickets[tid] = ticket
            self._keys[tid] = (ticket["service"], key)
            self._queues[ticket["service"]].side(ticket).add(key)
        elif ticket.get("counter"):
            index = self._with_counter if state in WITH_COUNTER else self._parked
            index[ticket["counter"]][tid] = ticket
            self._counter_of[tid] = (index, ticket["counter"])

    def _unplace(self, tid: str) -> None:
        """Remove a ticket from every index, wherever it was (the caller holds the lock)."""
        known = self.open.get(tid) or self._tickets.get(tid)
        if known is not None and self.checked_in.get(known.get("appointment")) == tid:
            del self.checked_in[known["appointment"]]
        self.open.pop(tid, None)
        self._moved.pop(tid, None)
        placed = self._keys.pop(tid, None)
        if placed is not None:
            service, key = placed
            self._queues[service].side(self._tickets.pop(tid)).remove(key)
        at = self._counter_of.pop(tid, None)
        if at is not None:
            index, counter = at
            index[counter].pop(tid, None)

    def _use_ranks(self, ranks: dict[str, int]) -> None:
        """Recompute every waiting ticket's key if the class ranks changed (the caller holds the lock)."""
        if ranks == self.ranks:
            return
        self.ranks = dict(ranks)
        self._keys.clear()
        self._queues.clear()
        for tid, ticket in self._tickets.items():
            key = policy.queue_key(ticket, self.ranks)
            self._keys[tid] = (ticket["service"], key)
            self._queues[ticket["service"]].side(ticket).add(key)

    # -- waiting tickets -----------------------------------------------------------------------

    def count_waiting(self, service: str) -> int:
        """How many tickets wait for a service."""
        with self._lock:
            queue = self._queues.get(service)
            return len(queue) if queue is not None else 0

    def oldest_arrival_ms(self, service: str, now) -> int | None:
        """Arrival (epoch ms) of the ticket that has waited longest for a service, None if nobody waits
        (an appointment waits from the start of its slot)."""
        with self._lock:
            queue = self._queues.get(service)
            if queue is None:
                return None
            heads = [side[0][0] for side in (queue.priority, queue.normal) if side]
            if queue.appointment and queue.appointment[0][0] <= policy.epoch_ms(now):
                heads.append(queue.appointment[0][0])
            return min(heads, default=None)

    def ticket_of_appointment(self, code: str) -> dict | None:
        """The ticket a booking checked in with, if it did (any state)."""
        with self._lock:
            tid = self.checked_in.get(code)
        return self.get(tid) if tid is not None else None

    def calls_before(self, ticket: dict, ranks: dict[str, int], rule: policy.Policy, now) -> int:
        """How many calls of its service come before a waiting ticket by the call-next rule
        (`policy.calls_before`, from bisections; the service's counters may have any streaks, so
        it counts as if they had just called a normal walk-in)."""
        with self._lock:
            self._use_ranks(ranks)
            queue = self._queues.get(ticket["service"])
            if queue is None:
                return 0
            key = policy.queue_key(ticket, self.ranks)
            sides = {"priority": queue.priority, "normal": queue.normal, "appointment": queue.appointment}
            # keys of tickets that have waited max_wait_s or longer sort before this one
            cutoff = (policy.epoch_ms(now) - rule.max_wait_s * 1000 + 1,)
            if key < cutoff:  # overdue: only earlier arrivals go first
                return sum(keys.bisect_left(key) for keys in sides.values())
            overdue = {name: keys.bisect_left(cutoff) for name, keys in sides.items()}
            last_walk_in = max((sides[n][overdue[n] - 1] for n in ("priority", "normal") if overdue[n]), default=None)
            after = overdue["appointment"] - (queue.appointment.bisect_right(last_walk_in) if last_walk_in else 0)
            mine = policy.side(ticket)
            return policy.calls_before(
                is_priority=mine == "priority", is_appointment=mine == "appointment",
                index=sides[mine].bisect_left(key), priority_waiting=len(queue.priority),
                normal_waiting=len(queue.normal), overdue_priority=overdue["priority"],
                overdue_normal=overdue["normal"], ratio=rule.ratio,
                appointments_due=queue.appointment.bisect_left((policy.epoch_ms(now) + 1,)),
                overdue_appointments=overdue["appointment"], appointments_after_overdue_walk_ins=after,
                appointment_ratio=rule.appointment_ratio)

    def call_order(self, services: Iterable[str], *, ranks: dict[str, int], now, streak: int,
                   rule: policy.Policy, limit: int, appointment_streak: int = 0) -> tuple[list[policy.Choice], int]:
        """The first `limit` choices the policy would make for these services, and how many wait in all."""
        with self._lock:
            self._use_ranks(ranks)
            queues = [self._queues[s] for s in dict.fromkeys(services) if s in self._queues]
            order = policy.call_order(self._entries(q.priority for q in queues),
                                      self._entries(q.normal for q in queues), now=now, streak=streak, policy=rule,
                                      appointments=self._entries(q.appointment for q in queues),
                                      appointment_streak=appointment_streak)
            return list(itertools.islice(order, limit)), sum(len(q) for q in queues)

    def _entries(self, sides: Iterable[SortedList]) -> Iterator[policy.Entry]:
        """(key, ticket) in key order over several services' queues, merged lazily."""
        streams = [side for side in sides if side]
        keys = streams[0] if len(streams) == 1 else heapq.merge(*streams)
        return ((key, self._tickets[key[3]]) for key in keys)

    def waiting_for(self, services: Iterable[str], ranks: dict[str, int]) -> list[dict]:
        """Waiting tickets of the given services in arrival order (a copy of the index, for checks)."""
        with self._lock:
            self._use_ranks(ranks)
            keys = sorted(key for s in services if s in self._queues
                          for side in (self._queues[s].priority, self._queues[s].normal, self._queues[s].appointment)
                          for key in side)
            return [self._tickets[key[3]] for key in keys]

    # -- tickets with a counter ----------------------------------------------------------------

    def open_tickets(self) -> list[dict]:
        """Every ticket not yet done, transferred or cancelled."""
        with self._lock:
            return list(self.open.values())

    def at_counter(self, counter: str) -> list[dict]:
        """Tickets called to or being served at a counter."""
        with self._lock:
            return list(self._with_counter.get(counter, {}).values())

    def with_counters(self) -> list[dict]:
        """Every called or serving ticket, at any counter (the hall display)."""
        with self._lock:
            return [t for tickets in self._with_counter.values() for t in tickets.values()]

    def moved_waiting(self) -> list[dict]:
        """Waiting tickets that came from a transfer (the hall display shows old -> new number)."""
        with self._lock:
            return list(self._moved.values())

    def parked_at(self, counter: str) -> list[dict]:
        """Tickets a counter put on hold or marked not present."""
        with self._lock:
            return list(self._parked.get(counter, {}).values())

    # -- statistics ----------------------------------------------------------------------------

    def recent_service_s(self, service: str) -> list[float]:
        """The last few service times of a service (for the wait estimate)."""
        with self._lock:
            return list(self.recent.get(service, ()))

    def staff_day(self, day: str, staff: str) -> list[float]:
        """Service times of the tickets a staff member finished on a day."""
        with self._lock:
            return list(self.done_by.get((day, staff), ()))

    def forget_days_before(self, day: str) -> None:
        """Drop the staff figures of closed days (they are only ever asked for today)."""
        with self._lock:
            for key in [k for k in self.done_by if k[0] < day]:
                del self.done_by[key]

    def day_tickets(self, day: str) -> list[dict]:
        """Every ticket of a service day (supervisor views; a scan, kept off the hot paths)."""
        return self.store.find(TABLE, lambda t: t.get("day") == day)
