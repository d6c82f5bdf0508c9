"""Use cases of the centre: issue, call and serve tickets, staff login, configuration, statistics.

Each function takes the centre's collaborators (`Centre`) and plain values, never a request, so the
web screens, the JSON API and the command line all run the same code.
"""
from __future__ import annotations

import datetime as dt
import logging
import math
import re
import threading
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from kiosk.clock import iso
from kiosk.domain import audit, overrides, policy, rights
from kiosk.domain import cases as cases_domain
from kiosk.domain.errors import (CheckInRefused, CounterNotOpen, Forbidden, NotFound, RateLimited,
                                 ServiceUnavailable, Unauthorized, UnknownService, ValidationFailed)
from kiosk.domain.tickets import TRANSITIONS, State, new_ticket, transition
from kiosk.events import Broker
from kiosk.ids import new_ulid
from kiosk.security import dummy_pin_hash, hash_pin, verify_pin
from kiosk.store import Store, StoreError
from kiosk.store.archive import Archive, History
from kiosk.store.queue import TicketRepository

log = logging.getLogger(__name__)

LANGS = ("ar", "ckb", "en")
NORMAL = policy.NORMAL
COUNTER_STATUSES = ("open", "break", "closed")
CALENDAR_SETTING = cases_domain.CALENDAR_SETTING


@dataclass
class Centre:
    """Everything a use case may need, built once by create_app (or by a test)."""

    store: Store
    clock: object
    events: Broker
    config: dict
    printer: object | None = None     # has print_ticket(ticket_view, service, priority_names); None prints nothing
    tickets: TicketRepository = field(init=False)
    history: History = field(init=False)
    issue_lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self):
        """Index the tickets already stored; read closed days through the archive."""
        self.tickets = TicketRepository(self.store)
        self.history = History(self.store, Archive(self.store.data_dir), self.tz)

    @property
    def tz(self) -> ZoneInfo:
        """The centre's time zone (service day boundaries)."""
        return ZoneInfo(self.config["TIMEZONE"])

    def today(self, now: dt.datetime | None = None) -> str:
        """The service day (local date) of `now`."""
        return (now or self.clock.now()).astimezone(self.tz).date().isoformat()


# -- configuration ---------------------------------------------------------------------------------

def services_list(c: Centre, *, active_only: bool = False) -> list[dict]:
    """Configured services, by code."""
    docs = sorted(c.store.all("services"), key=lambda s: s["code"])
    return [s for s in docs if s.get("active", True)] if active_only else docs


def calendar(c: Centre) -> cases_domain.Calendar:
    """The centre's working calendar from central's `settings/calendar` (Friday-Saturday weekend
    and no holidays when none was sent, or when the one sent cannot be read)."""
    try:
        return cases_domain.Calendar.from_settings(c.store.get("settings", CALENDAR_SETTING))
    except ValueError as exc:
        log.error("ignoring settings/calendar from central: %s", exc)
        return cases_domain.Calendar()


def opening(c: Centre, day: dt.date) -> dt.datetime:
    """When the centre opens on a local day (OPENS_AT), as a UTC time."""
    hour, minute = (int(x) for x in c.config["OPENS_AT"].split(":"))
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=c.tz).astimezone(dt.timezone.utc)


@dataclass(frozen=True)
class Availability:
    """Whether a service takes tickets now; if not, why ("off", "daily_cap") and when it reopens
    (None: not known, it was switched off until someone switches it on)."""

    open: bool
    reason: str | None = None
    reopens_at: dt.datetime | None = None


def availability(c: Centre, svc: dict, now: dt.datetime | None = None) -> Availability:
    """Whether `svc` takes tickets at `now`: not on the centre's weekend or holidays (then it
    reopens on the next working day), switched off (until further notice, or for the days before
    `closed_until`), or at its daily cap (then it reopens on the next working day)."""
    now = now or c.clock.now()
    today = dt.date.fromisoformat(c.today(now))
    closed = centre_closed(c, now)
    if closed is not None:
        return closed
    if not svc.get("active", True):
        return Availability(False, "off")
    closed_until = svc.get("closed_until")
    if closed_until and today < dt.date.fromisoformat(closed_until):
        return Availability(False, "off", opening(c, dt.date.fromisoformat(closed_until)))
    cap = svc.get("daily_cap")
    if cap and _numbering(c, svc, today.isoformat())["last"] >= int(cap):
        return Availability(False, "daily_cap", opening(c, calendar(c).next_working_day(today)))
    return Availability(True)


def centre_closed(c: Centre, now: dt.datetime | None = None) -> Availability | None:
    """None on a working day; on the weekend or a holiday of central's `settings/calendar`, why
    ("closed_day") and when the next working day opens, for every service at once.

    Only a calendar central has sent closes the citizen screen: a centre without one takes tickets
    every day, as it did before calendars existed (its promised dates still skip the default
    Friday-Saturday weekend)."""
    if not c.store.get("settings", CALENDAR_SETTING):
        return None
    now = now or c.clock.now()
    today = dt.date.fromisoformat(c.today(now))
    cal = calendar(c)
    if cal.is_working_day(today):
        return None
    return Availability(False, "closed_day", opening(c, cal.next_working_day(today)))


def get_service(c: Centre, code: str) -> dict:
    """One service, or UnknownService."""
    doc = c.store.get("services", code) if isinstance(code, str) else None
    if doc is None:
        raise UnknownService(f"unknown service {code!r}", service=code)
    return doc


def counters_list(c: Centre) -> list[dict]:
    """Configured counters with their live status."""
    states = {s["id"]: s for s in c.store.all("counter_state")}
    out = []
    for counter in sorted(c.store.all("counters"), key=lambda x: (len(x["id"]), x["id"])):
        state = states.get(counter["id"], {})
        out.append({**counter, "status": state.get("status", "closed"), "staff": state.get("staff")})
    return out


def get_counter(c: Centre, counter_id: str) -> dict:
    """One counter, or NotFound."""
    doc = c.store.get("counters", counter_id) if isinstance(counter_id, str) else None
    if doc is None:
        raise NotFound(f"unknown counter {counter_id!r}", counter=counter_id)
    return doc


def priority_classes(c: Centre) -> list[dict]:
    """Active priority classes, by rank."""
    return sorted((p for p in c.store.all("priority_classes") if p.get("active", True)), key=lambda p: p["rank"])


def queue_policy(c: Centre) -> policy.Policy:
    """The call-next rule's parameters: central's `settings/queue` if pulled, else local config;
    the appointment ratio from central's `settings/appointments`."""
    settings = c.store.get("settings", "queue") or {}
    booked = c.store.get("settings", "appointments") or {}
    ratio = booked.get("ratio") if isinstance(booked.get("ratio"), int) and booked["ratio"] >= 1 else 2
    return policy.Policy(ratio=int(settings.get("priority_ratio", c.config["PRIORITY_RATIO"])),
                         max_wait_s=int(settings.get("max_wait_min", c.config["MAX_WAIT_MIN"])) * 60,
                         appointment_ratio=ratio)


def _ranks(c: Centre) -> dict[str, int]:
    """Priority class ranks (normal tickets rank after every class)."""
    return policy.class_ranks(c.store.all("priority_classes"))


# -- tickets ---------------------------------------------------------------------------------------

def ticket_view(c: Centre, ticket: dict) -> dict:
    """The API's TICKET: the stored ticket plus its place in the queue, wait estimate and QR text.

    Callers build it after their commit, outside the store's lock: the place is a bisection of the
    waiting index, so it costs the same with 5 or 5,000 waiting and never holds up other writers.
    """
    view = {k: v for k, v in ticket.items() if k not in ("device",)}
    view["qr"] = f"{c.config['PUBLIC_URL'].rstrip('/')}/t/{ticket['id']}"
    if ticket["state"] == State.WAITING.value:
        # priority-aware: the calls the policy makes before this ticket, not the earlier arrivals
        ahead = c.tickets.calls_before(ticket, _ranks(c), queue_policy(c), c.clock.now())
        view["ahead"] = ahead
        view["estimated_wait_s"] = policy.estimate_wait_s(
            ahead + 1, c.tickets.recent_service_s(ticket["service"]), _open_counters_for(c, ticket["service"]))
    else:
        view["ahead"] = 0
        view["estimated_wait_s"] = 0
    return view


def times_called(ticket: dict) -> int:
    """How often a ticket has been called (a recall is a new call: a phone alerts again)."""
    return sum(1 for e in ticket["events"] if e["state"] == State.CALLED.value)


def _open_counters_for(c: Centre, service: str) -> int:
    """How many open counters serve a service (counted in place: a large centre's counters are
    not copied for every ticket shown)."""
    open_ids = set(c.store.keys("counter_state", lambda s: s.get("status") == "open"))
    return c.store.count("counters", lambda k: k["id"] in open_ids and service in k.get("services", ()))


def issue_ticket(c: Centre, *, service: str, priority: str = NORMAL, lang: str | None = None,
                 appointment: dict | None = None) -> dict:
    """Store a waiting ticket with the service's next number, then try to print it.

    The ticket is durable before this returns; printing happens after saving, so a paper jam or a
    missing printer never loses a ticket or delays the answer. `appointment` ({"code", "start_at",
    "end_at"}) issues a booking's check-in ticket: a booking is honoured whatever the service's
    availability, and checks in once (CheckInRefused already_checked_in, decided under the lock).
    """
    lang = lang or c.config["DEFAULT_LANGUAGE"]
    if lang not in LANGS:
        raise ValidationFailed("unsupported language", {"lang": "must be one of ar, ckb, en"})
    svc = get_service(c, service)
    if priority != NORMAL and priority not in {p["id"] for p in priority_classes(c)}:
        raise ValidationFailed("unknown priority class", {"priority": "must be normal or one of the configured classes"})
    with c.store.lock, c.issue_lock:
        now = c.clock.now()
        day = c.today(now)
        numbering = _numbering(c, svc, day)
        if appointment is None:
            state = availability(c, svc, now)
            if not state.open:
                raise ServiceUnavailable(f"service {service} is not taking tickets now ({state.reason})",
                                         service=service, why=state.reason,
                                         reopens_at=iso(state.reopens_at) if state.reopens_at else None)
        else:
            earlier = c.tickets.ticket_of_appointment(appointment["code"])
            if earlier is not None:
                raise CheckInRefused("already_checked_in", f"this appointment already checked in as ticket "
                                     f"{earlier['number']}", ticket=earlier["number"])
        ticket = new_ticket(ticket_id=new_ulid(int(now.timestamp() * 1000)), service=svc, n=numbering["last"] + 1,
                            day=day, priority=priority, lang=lang, now=now, device=c.store.device_id)
        if appointment is not None:
            ticket.update(appointment=appointment["code"], slot_start_at=appointment["start_at"],
                          slot_end_at=appointment["end_at"])
        with c.store.transaction():
            c.store.put("numbering", {**numbering, "last": ticket["seq_in_day"]})
            c.tickets.save(ticket)
    view = ticket_view(c, ticket)
    c.events.publish("queue-changed", {"service": svc["code"]})
    _print(c, view, svc)
    return view


def _numbering(c: Centre, svc: dict, day: str) -> dict:
    """The day's number counter of a service (the caller holds the issue lock and saves it)."""
    numbering_id = f"{day}:{svc['code']}"
    return c.store.get("numbering", numbering_id) or {"id": numbering_id, "day": day, "service": svc["code"], "last": 0}


def priority_names(c: Centre, ticket: dict) -> dict | None:
    """The names of a priority ticket's class (None for a normal ticket), for its slip."""
    if ticket["priority"] == NORMAL:
        return None
    found = c.store.get("priority_classes", ticket["priority"])
    return (found or {}).get("names") or {"en": ticket["priority"]}


def _print(c: Centre, view: dict, svc: dict) -> None:
    """Hand a stored ticket to the printer; any failure is logged, never raised."""
    if c.printer is None:
        return
    try:
        c.printer.print_ticket(view, svc, priority_names(c, view))
    except Exception:
        log.exception("could not queue ticket %s for printing", view["number"])


def get_ticket(c: Centre, ticket_id: str) -> dict:
    """One ticket as the API shows it (also one of a closed day), or NotFound."""
    ticket = c.history.get("tickets", ticket_id) if isinstance(ticket_id, str) else None
    if ticket is None:
        raise NotFound(f"no ticket {ticket_id!r}", ticket=ticket_id)
    return ticket_view(c, ticket)


def _change(c: Centre, ticket_id: str, action: str, *, by: str, counter: str | None = None,
            reason: str | None = None) -> dict:
    """Apply one transition durably, audit it and announce it."""
    with c.store.lock:
        ticket = c.tickets.get(ticket_id) if isinstance(ticket_id, str) else None
        if ticket is None:
            raise NotFound(f"no ticket {ticket_id!r}", ticket=ticket_id)
        if counter is None and action in ("call",):
            raise ValidationFailed("a counter is needed", {"counter": "required"})
        updated = transition(ticket, action, now=c.clock.now(), by=by, counter=counter, reason=reason)
        with c.store.transaction():
            c.tickets.save(updated, ticket)
            _audit(c, by, action, ticket["id"], {"number": ticket["number"], "counter": updated.get("counter")})
    _announce(c, action, updated)
    return updated


def end_ticket(c: Centre, ticket_id: str, *, by: str, reason: str) -> dict:
    """Cancel a ticket that can no longer be served (its service day is over), saying why."""
    return _change(c, ticket_id, "cancel", by=by, reason=reason)


def _announce(c: Centre, action: str, ticket: dict) -> None:
    """Tell screens what changed (the display re-fetches its own state on these)."""
    # the ticket's id lets a phone following it hear of its own change at once (kiosk/web/sse.py)
    c.events.publish("queue-changed", {"service": ticket["service"], "ticket": ticket["id"]})
    if action in ("call", "recall"):
        c.events.publish("ticket-called", {"number": ticket["number"], "counter": ticket["counter"],
                                           "lang": ticket["lang"], "service": ticket["service"],
                                           "ticket": ticket["id"]})


def _counter_services(c: Centre, counter_id: str) -> list[str]:
    """Services a counter serves."""
    return list(get_counter(c, counter_id).get("services", []))


def call_next(c: Centre, *, counter: str, by: str) -> tuple[dict, str, str] | None:
    """Call the next ticket for a counter by the queue policy; (ticket, reason, rule) or None if empty."""
    services = _counter_services(c, counter)
    rule, ranks = queue_policy(c), _ranks(c)
    # Under the lock only the choice from the queue heads (O(services x log n)) and the commit.
    with c.store.lock:
        state = c.store.get("counter_state", counter) or {"id": counter, "status": "open", "streak": 0}
        choices, _ = c.tickets.call_order(services, ranks=ranks, now=c.clock.now(),
                                          streak=int(state.get("streak", 0)), rule=rule, limit=1,
                                          appointment_streak=int(state.get("appointment_streak", 0)))
        if not choices:
            return None
        choice = choices[0]
        with c.store.transaction():
            ticket = _change(c, choice.ticket["id"], "call", by=by, counter=counter, reason=choice.rule)
            c.store.put("counter_state", {**state, "streak": choice.streak,
                                          "appointment_streak": choice.appointment_streak})
    return ticket_view(c, ticket), choice.reason(), choice.rule


def call_ticket(c: Centre, ticket_id: str, *, counter: str, by: str) -> dict:
    """Call a specific waiting ticket out of turn (allowed, and audited as such)."""
    get_counter(c, counter)
    ticket = _change(c, ticket_id, "call", by=by, counter=counter, reason="chosen")
    return ticket_view(c, ticket)


def act(c: Centre, ticket_id: str, action: str, *, by: str, counter: str | None = None) -> dict:
    """recall, start, finish, no_show, hold, requeue, reactivate or cancel a ticket."""
    if action not in TRANSITIONS or action in ("call", "transfer"):
        raise NotFound(f"unknown action {action!r}")
    return ticket_view(c, _change(c, ticket_id, action, by=by, counter=counter))


def transfer(c: Centre, ticket_id: str, *, service: str, by: str) -> dict:
    """Close a ticket as transferred and open a waiting one for another service, keeping its arrival."""
    target = get_service(c, service)
    with c.store.lock, c.issue_lock:
        ticket = c.tickets.get(ticket_id) if isinstance(ticket_id, str) else None
        if ticket is None:
            raise NotFound(f"no ticket {ticket_id!r}", ticket=ticket_id)
        if target["code"] == ticket["service"]:
            raise ValidationFailed("transfer to the same service", {"service": "must differ from the ticket's service"})
        now = c.clock.now()
        day = c.today(now)
        numbering = _numbering(c, target, day)
        new = new_ticket(ticket_id=new_ulid(int(now.timestamp() * 1000)), service=target, n=numbering["last"] + 1,
                         day=day, priority=ticket["priority"],
                         lang=ticket["lang"], now=now, device=c.store.device_id,
                         arrival_at=ticket.get("arrival_at") or ticket["issued_at"], origin=ticket)
        closed = transition(ticket, "transfer", now=now, by=by, reason=target["code"])
        closed["transferred_to"] = new["id"]
        with c.store.transaction():
            c.store.put("numbering", {**numbering, "last": new["seq_in_day"]})
            c.tickets.save(closed, ticket)
            c.tickets.save(new)
            _audit(c, by, "transfer", ticket["id"], {"number": ticket["number"], "to": new["number"]})
    _announce(c, "transfer", closed)
    c.events.publish("queue-changed", {"service": new["service"]})
    view = ticket_view(c, new)
    # the citizen holds a slip with the old number: a new slip says "your new number B-006 (was A-001)"
    _print(c, view, target)
    return view


# -- screens' read models --------------------------------------------------------------------------

def authorize(c: Centre, staff: dict, *, action: str, counter: str | None = None,
              ticket_id: str | None = None, take: bool = False) -> None:
    """Least privilege at the counter (kiosk.domain.rights) before `action` by `staff` at `counter`
    and/or on a ticket. The counter must exist; with `take` (a call through the API) a free counter
    is opened for the caller first, and the counter must then be open. A supervisor acting at a
    counter someone else holds is recorded in the audit chain as an override. Callers hold the
    store's lock around this and the action, so nobody takes the counter in between."""
    uses = []
    if counter is not None:
        get_counter(c, counter)
        use = rights.counter_use(staff, counter, c.store.get("counter_state", counter))
        if use == "free" and take:
            set_counter_status(c, counter, "open", by=staff["id"])
            use = "own"
        uses.append(use)
        if take and (c.store.get("counter_state", counter) or {}).get("status") != "open":
            raise CounterNotOpen(f"counter {counter} is on a break or closed; open it before calling tickets",
                                 counter=counter)
    ticket = None
    if ticket_id is not None:
        ticket = c.tickets.get(ticket_id) if isinstance(ticket_id, str) else None
        if ticket is None:
            raise NotFound(f"no ticket {ticket_id!r}", ticket=ticket_id)
        its = c.store.get("counter_state", ticket["counter"]) if ticket.get("counter") else None
        uses.append(rights.ticket_use(staff, ticket, its, at=counter))
    if "override" in uses:
        detail = {"action": action, "counter": counter}
        if ticket is not None:
            detail.update(ticket=ticket["number"], ticket_counter=ticket.get("counter"))
        with c.store.transaction():
            _audit(c, staff["id"], "supervisor_override", ticket["id"] if ticket else counter, detail)


def display_state(c: Centre, *, recent: int = 8) -> dict:
    """What the hall display shows: called/serving numbers by counter, newest first, and waiting counts."""
    showing = []
    for ticket in c.tickets.with_counters():
        called_at = next((e["at"] for e in reversed(ticket["events"]) if e["state"] == "called"), ticket["issued_at"])
        showing.append({"number": ticket["number"], "counter": ticket["counter"], "called_at": called_at,
                        "service": ticket["service"], "state": ticket["state"],
                        "was": ticket["events"][0].get("from"), "appointment": bool(ticket.get("appointment"))})
    showing.sort(key=lambda x: x["called_at"], reverse=True)
    waiting = {s["code"]: c.tickets.count_waiting(s["code"]) for s in services_list(c)}
    # a citizen holding a slip with the old number must find it: old -> new while the new one waits
    moved = sorted(({"was": t["events"][0].get("from"), "number": t["number"], "service": t["service"],
                     "at": t["issued_at"]} for t in c.tickets.moved_waiting()), key=lambda x: x["at"], reverse=True)
    return {"now_serving": showing[:recent], "waiting": waiting, "moved": moved[:recent]}


@dataclass(frozen=True)
class WaitingPage:
    """The first tickets a counter would call, in call order, and how many wait in all."""

    tickets: list[dict]
    total: int

    @property
    def more(self) -> int:
        """How many wait beyond this page."""
        return self.total - len(self.tickets)


def waiting_list(c: Centre, counter: str, limit: int = 50) -> WaitingPage:
    """The first `limit` waiting tickets of a counter in the order the policy would call them if
    nothing changed (the streak replayed as calls go), and the total: one lazy pass over the index."""
    services = _counter_services(c, counter)
    state = c.store.get("counter_state", counter) or {"streak": 0}
    choices, total = c.tickets.call_order(services, ranks=_ranks(c), now=c.clock.now(),
                                          streak=int(state.get("streak", 0)), rule=queue_policy(c), limit=limit,
                                          appointment_streak=int(state.get("appointment_streak", 0)))
    return WaitingPage([{**ch.ticket, "waited_s": ch.waited_s, "rule": ch.rule} for ch in choices], total)


def staff_today(c: Centre, staff_id: str) -> dict:
    """A staff member's served count and average service time today."""
    times = c.tickets.staff_day(c.today(), staff_id)
    return {"served": len(times), "avg_service_s": int(sum(times) / len(times)) if times else None}


def overview(c: Centre) -> dict:
    """Supervisor's live figures: per service and per counter, longest wait, counters open."""
    now = c.clock.now()
    day = c.today(now)
    per_service = []
    longest = 0
    for svc in services_list(c):
        # The longest wait is the oldest queue head's: counts and heads come from the index.
        oldest = c.tickets.oldest_arrival_ms(svc["code"], now)
        wait = int((now - policy.EPOCH - dt.timedelta(milliseconds=oldest)).total_seconds()) if oldest is not None else 0
        longest = max(longest, wait)
        numbering = c.store.get("numbering", f"{day}:{svc['code']}") or {"last": 0}
        per_service.append({**svc, "availability": availability(c, svc, now),
                            "waiting": c.tickets.count_waiting(svc["code"]), "longest_wait_s": wait,
                            "issued_today": numbering["last"],
                            "recent_service_s": c.tickets.recent_service_s(svc["code"])})
    counters = counters_list(c)
    for counter in counters:
        counter["current"] = [t["number"] for t in c.tickets.at_counter(counter["id"])]
    return {"services": per_service, "counters": counters, "longest_wait_s": longest,
            "counters_open": sum(1 for k in counters if k["status"] == "open"), "day": day}


def set_counter_status(c: Centre, counter: str, status: str, *, by: str) -> dict:
    """Open a counter, put it on a break or close it (the wait estimate counts open counters)."""
    get_counter(c, counter)
    if status not in COUNTER_STATUSES:
        raise ValidationFailed("unknown counter status", {"status": "must be open, break or closed"})
    with c.store.lock, c.store.transaction():
        state = c.store.get("counter_state", counter) or {"id": counter, "streak": 0}
        state.update({"status": status, "staff": by if status != "closed" else None, "since": iso(c.clock.now())})
        c.store.put("counter_state", state)
        _audit(c, by, f"counter_{status}", counter, {})
    c.events.publish("queue-changed", {"counter": counter})
    return state


def update_service(c: Centre, code: str, *, by: str, active: bool | None = None,
                   daily_cap: int | None | str = "keep", until_next_day: bool = False) -> dict:
    """Switch a service on, or off (until switched on again, or with `until_next_day` only until
    the next working day opens), or set its daily cap (None removes it).

    The switch is the centre's own: central's next pull keeps it until central changes that same
    field itself (kiosk.domain.overrides, docs/sync.md)."""
    with c.store.lock, c.store.transaction():
        svc = get_service(c, code)
        before = dict(svc)
        if active is not None:
            svc["active"] = bool(active) or until_next_day
            svc["closed_until"] = None
            if until_next_day and not active:
                today = dt.date.fromisoformat(c.today())
                svc["closed_until"] = calendar(c).next_working_day(today).isoformat()
        if daily_cap != "keep":
            if daily_cap is not None and (not isinstance(daily_cap, int) or daily_cap < 1 or daily_cap > 100000):
                raise ValidationFailed("invalid daily cap", {"daily_cap": "must be a whole number from 1 to 100000, or empty"})
            svc["daily_cap"] = daily_cap
        c.store.put("services", svc)
        note = overrides.note(c.store.get(overrides.TABLE, code), before, svc)
        if note is None:
            c.store.delete(overrides.TABLE, code)
        else:
            c.store.put(overrides.TABLE, note)
        _audit(c, by, "service_update", code, {"active": svc.get("active"), "daily_cap": svc.get("daily_cap"),
                                               "closed_until": svc.get("closed_until")})
    c.events.publish("queue-changed", {"service": code})
    return svc


# -- staff -----------------------------------------------------------------------------------------

_PIN = re.compile(r"[0-9]{4,12}")


def authenticate(c: Centre, staff_id: str, pin: str) -> dict:
    """The staff document for a correct name and PIN; Unauthorized otherwise (same message either way)."""
    doc = c.store.get("staff", staff_id) if isinstance(staff_id, str) and staff_id else None
    # An unknown name is checked against a dummy hash of the same cost, so that the time of the
    # refusal does not say whether the name exists.
    if doc is not None:
        target = doc["pin_hash"]
    else:
        target = dummy_pin_hash(next((d["pin_hash"] for d in c.store.all("staff") if d.get("pin_hash")), None))
    pin_ok = verify_pin(target, pin if isinstance(pin, str) else "")
    if not (pin_ok and doc is not None and doc.get("active", True)):
        raise Unauthorized("wrong name or PIN")
    with c.store.transaction():
        _audit(c, doc["id"], "login", doc["id"], {})
    return doc


def login(c: Centre, logins, staff_id: str, pin: str, *, address: str) -> dict:
    """`authenticate` behind the login throttle (kiosk.domain.throttle): while the name or the
    address is locked nothing is checked and RateLimited says how long to wait."""
    staff_id = staff_id if isinstance(staff_id, str) else ""
    wait = logins.wait_s(staff_id, address)
    if wait > 0:
        raise RateLimited("too many wrong PINs for this name or from this address; try again later",
                          retry_after_s=math.ceil(wait))
    try:
        staff = authenticate(c, staff_id, pin)
    except Unauthorized:
        logins.failed(staff_id, address)
        log.info("wrong PIN or unknown name from %s", address)
        raise
    logins.succeeded(staff_id)
    return staff


def audit_staff_action(c: Centre, *, by: str, action: str, target: str, detail: dict | None = None) -> None:
    """Record an account action (sign out everywhere, unlock) in the audit chain."""
    with c.store.lock, c.store.transaction():
        _audit(c, by, action, target, detail or {})


def require_role(staff: dict, *roles: str) -> None:
    """Forbidden unless the staff member has one of `roles`."""
    if staff.get("role") not in roles:
        raise Forbidden(f"this needs the role {' or '.join(roles)}")


def set_staff(c: Centre, staff_id: str, *, pin: str, role: str, display_name: str | None = None,
              by: str = "system") -> dict:
    """Create or update a staff member with an argon2-hashed PIN."""
    if not _PIN.fullmatch(pin or ""):
        raise ValidationFailed("invalid PIN", {"pin": "4 to 12 digits 0-9"})
    if role not in ("attendant", "supervisor"):
        raise ValidationFailed("invalid role", {"role": "attendant or supervisor"})
    doc = {"id": staff_id, "display_name": display_name or staff_id, "role": role,
           "pin_hash": hash_pin(pin), "active": True}
    with c.store.transaction():
        c.store.put("staff", doc)
        _audit(c, by, "staff_set", staff_id, {"role": role})
    return doc


# -- audit -----------------------------------------------------------------------------------------

def _audit(c: Centre, actor: str, action: str, target: str, detail: dict) -> dict:
    """Append one entry to the hash chain (inside the caller's transaction)."""
    head = c.store.get("settings", "audit_head") or {"id": "audit_head", "n": 0, "hash": audit.GENESIS}
    now = c.clock.now()
    entry = audit.make_entry(entry_id=new_ulid(int(now.timestamp() * 1000)), n=head["n"] + 1, prev=head["hash"],
                             at=iso(now), actor=actor, action=action, target=target, detail=detail)
    c.store.put("audit", entry)
    c.store.put("settings", {"id": "audit_head", "n": entry["n"], "hash": entry["hash"]})
    return entry


def verify_audit(c: Centre) -> tuple[bool, str]:
    """Check the audit chain, live and archived entries as one chain."""
    return audit.verify_ordered(c.history.audit_chain())


# -- demo ------------------------------------------------------------------------------------------

DEMO_SERVICES = [
    {"code": "A", "prefix": "A", "pictogram": "documents", "fee_iqd": 0, "sla_hours": 72,
     "names": {"ar": "وثائق الأحوال المدنية", "ckb": "بەڵگەنامەکانی باری شارستانی", "en": "Civil status documents"},
     "documents": [{"ar": "هوية الأحوال المدنية أو البطاقة الوطنية", "ckb": "ناسنامەی باری شارستانی یان کارتی نیشتمانی",
                    "en": "Civil ID or national card"},
                   {"ar": "صورة شخصية حديثة", "ckb": "وێنەیەکی تازەی کەسی", "en": "A recent photograph"}]},
    {"code": "B", "prefix": "B", "pictogram": "compensation", "fee_iqd": 0, "sla_hours": 72,
     "names": {"ar": "طلبات التعويض", "ckb": "داواکاری قەرەبووکردنەوە", "en": "Compensation claims"},
     "documents": [{"ar": "البطاقة الوطنية", "ckb": "کارتی نیشتمانی", "en": "National card"},
                   {"ar": "مستندات الضرر أو الفقدان", "ckb": "بەڵگەنامەکانی زیان یان لەدەستدان", "en": "Proof of damage or loss"}]},
    {"code": "C", "prefix": "C", "pictogram": "inquiry", "fee_iqd": 0, "sla_hours": 72,
     "names": {"ar": "الاستفسارات", "ckb": "پرسیارەکان", "en": "Inquiries"},
     "documents": []},
]
DEMO_PRIORITY = [
    {"id": "elderly", "rank": 1, "names": {"ar": "كبار السن (٦٥+)", "ckb": "بەساڵاچووان (٦٥+)", "en": "Over 65"}},
    {"id": "disability", "rank": 2, "names": {"ar": "ذوو الإعاقة", "ckb": "خاوەن پێداویستی تایبەت", "en": "Disability"}},
    {"id": "pregnancy", "rank": 3, "names": {"ar": "الحوامل", "ckb": "ئافرەتی دووگیان", "en": "Pregnancy"}},
]
DEMO_STAFF = [("demo", "0000", "attendant", "Demo attendant"), ("super", "9999", "supervisor", "Demo supervisor")]


def load_demo_data(c: Centre) -> dict:
    """Load the demo centre; running it again changes nothing that is already there."""
    created = {"services": 0, "counters": 0, "priority_classes": 0, "staff": 0}
    with c.store.lock, c.store.transaction():
        for svc in DEMO_SERVICES:
            if c.store.get("services", svc["code"]) is None:
                c.store.put("services", {"id": svc["code"], "active": True, "daily_cap": None, **svc})
                created["services"] += 1
        for n in ("1", "2", "3"):
            if c.store.get("counters", n) is None:
                c.store.put("counters", {"id": n, "names": {"ar": f"الشباك {n}", "ckb": f"پەنجەرەی {n}", "en": f"Counter {n}"},
                                         "services": ["A", "B", "C"], "active": True})
                created["counters"] += 1
        for pc in DEMO_PRIORITY:
            if c.store.get("priority_classes", pc["id"]) is None:
                c.store.put("priority_classes", {**pc, "active": True})
                created["priority_classes"] += 1
        for staff_id, pin, role, name in DEMO_STAFF:
            if c.store.get("staff", staff_id) is None:
                set_staff(c, staff_id, pin=pin, role=role, display_name=name, by="demo-data")
                created["staff"] += 1
    return created


def check(c: Centre) -> list[tuple[bool, str]]:
    """Integrity checks for `flask check`: audit chain, numbering, ticket references, over live and
    archived days alike (one day in memory at a time). An archive file that cannot be read fails
    the checks that need it, with its name, and the others still run."""
    try:
        results = [verify_audit(c)]
    except StoreError as exc:
        results = [(False, f"audit chain not checked: {exc}")]
    try:
        return results + _check_tickets(c)
    except StoreError as exc:
        return results + [(False, f"tickets not checked: {exc}")]


def _check_tickets(c: Centre) -> list[tuple[bool, str]]:
    """No number given twice in a day, day counters at or above their tickets, known services."""
    known = {s["code"] for s in c.store.all("services")}
    count = dupes = orphans = 0
    behind = []
    for day, tickets in c.history.each_day("tickets"):
        seen: set = set()
        highest: dict[str, int] = {}
        for t in tickets:
            count += 1
            key = (t["service"], t["seq_in_day"])
            dupes += key in seen
            seen.add(key)
            highest[t["service"]] = max(highest.get(t["service"], 0), t["seq_in_day"])
            orphans += t["service"] not in known
        last = {n["service"]: n["last"] for n in c.history.records("numbering", [day])}
        behind += [(day, service) for service, top in highest.items() if last.get(service, 0) < top]
    return [(dupes == 0, f"{count} tickets, {dupes} duplicate numbers"),
            (not behind, f"{len(behind)} day counters behind their tickets"),
            (orphans == 0, f"{orphans} tickets of unknown services")]
