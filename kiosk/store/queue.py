"""Ticket repository: tickets in the store plus in-memory indexes derived from them.

The indexes (open tickets per service and per counter, recent service times) are rebuilt from the
store at start-up and kept current by `save`, so issuing or calling a ticket costs the same with
100 tickets stored as with 100,000: nothing on the hot path scans the history.
"""
from __future__ import annotations

import collections
import threading

from kiosk.domain.tickets import State, service_seconds
from kiosk.store import Store

TABLE = "tickets"
RECENT = 20  # service times kept per service for the wait estimate


class TicketRepository:
    """Reads and writes tickets; answers queue questions from indexes, not scans."""

    def __init__(self, store: Store):
        """Index every open ticket and today's service times."""
        self.store = store
        self._lock = threading.RLock()
        self.waiting: dict[str, dict[str, dict]] = collections.defaultdict(dict)   # service -> id -> ticket
        self.open: dict[str, dict] = {}                                             # id -> open ticket
        self.recent: dict[str, collections.deque] = collections.defaultdict(lambda: collections.deque(maxlen=RECENT))
        self.done_by: dict[tuple[str, str], list[float]] = collections.defaultdict(list)  # (day, staff) -> service s
        with store.lock:
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

    def _index(self, previous: dict | None, ticket: dict) -> None:
        """Move a ticket between indexes after a change."""
        with self._lock:
            tid = ticket["id"]
            if previous is not None:
                self.waiting[previous["service"]].pop(tid, None)
            self.open.pop(tid, None)
            state = State(ticket["state"])
            if state == State.WAITING:
                self.waiting[ticket["service"]][tid] = ticket
            if state in (State.WAITING, State.CALLED, State.SERVING, State.HELD, State.NO_SHOW):
                self.open[tid] = ticket
            if state == State.DONE and (previous is None or previous["state"] != State.DONE.value):
                seconds = service_seconds(ticket)
                if seconds is not None:
                    self.recent[ticket["service"]].append(seconds)
                    by = next((e.get("by") for e in reversed(ticket["events"]) if e["state"] == "done"), None)
                    if by:
                        self.done_by[(ticket["day"], by)].append(seconds)

    def forget(self, ticket: dict) -> None:
        """Undo `_index` for a ticket whose commit failed (memory must match the disk)."""
        with self._lock:
            self.waiting[ticket["service"]].pop(ticket["id"], None)
            self.open.pop(ticket["id"], None)

    def waiting_for(self, services: list[str] | set[str]) -> list[dict]:
        """Waiting tickets of the given services."""
        with self._lock:
            return [t for s in services for t in self.waiting.get(s, {}).values()]

    def open_tickets(self) -> list[dict]:
        """Every ticket not yet done, transferred or cancelled."""
        with self._lock:
            return list(self.open.values())

    def at_counter(self, counter: str) -> list[dict]:
        """Tickets called to or being served at a counter."""
        with self._lock:
            return [t for t in self.open.values()
                    if t.get("counter") == counter and t["state"] in ("called", "serving")]

    def recent_service_s(self, service: str) -> list[float]:
        """The last few service times of a service (for the wait estimate)."""
        with self._lock:
            return list(self.recent.get(service, ()))

    def staff_day(self, day: str, staff: str) -> list[float]:
        """Service times of the tickets a staff member finished on a day."""
        with self._lock:
            return list(self.done_by.get((day, staff), ()))

    def day_tickets(self, day: str) -> list[dict]:
        """Every ticket of a service day (supervisor views; a scan, kept off the hot paths)."""
        return self.store.find(TABLE, lambda t: t.get("day") == day)
