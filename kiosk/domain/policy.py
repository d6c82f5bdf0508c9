"""Which waiting ticket a counter calls next, and why.

Tickets are walk-ins (priority or normal) or appointments (checked in for a booked slot). An
appointment joins its queue when its slot starts (or when it checks in, if later): before that it
is "early" and waits without going ahead of anybody.

The rule, in order:
1. Ageing: a ticket that has waited `max_wait_s` or longer is overdue; overdue tickets go first,
   oldest arrival first. This is what makes starvation impossible.
2. Appointments: a checked-in appointment whose slot has started goes before walk-ins, but after
   `appointment_ratio` appointment calls in a row a waiting walk-in gets its turn, so walk-ins
   still move on a day full of bookings.
3. Interleaving: priority classes (elderly, disability, pregnancy, ...) are called before normal
   tickets, but after `ratio` priority calls in a row a waiting normal ticket gets its turn.
4. Early appointments are called only when nobody else waits.
5. Ties: earlier arrival first, then lower class rank, then lower ticket number, then id.

The choice depends only on the waiting tickets, the time and the counter's two streaks, so it is
deterministic and can be explained in one sentence.

`choose` is the rule's reference definition: it sorts every waiting ticket. The screens and
call-next use the indexed form instead: the rule only ever looks at the first priority ticket, the
first normal ticket and the first appointment (the oldest ticket overall is one of those), so
`choose_from_heads` takes the same decision from the heads of three ordered queues, and
`call_order` replays it lazily over them. Property tests hold both forms equal.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Iterable, Iterator

from kiosk.clock import UTC, parse_iso

NORMAL = "normal"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
MS = dt.timedelta(milliseconds=1)

# An indexed waiting ticket: its `queue_key` and the ticket itself (keys are unique, so a pair
# never compares tickets).
Entry = tuple[tuple[int, int, int, str], dict]


@dataclass(frozen=True)
class Policy:
    """Tunable parts of the rule."""

    ratio: int = 2            # priority calls before a waiting normal ticket must be called
    max_wait_s: int = 45 * 60  # after this, a ticket is overdue and jumps ahead of every queue
    appointment_ratio: int = 2  # appointment calls before a waiting walk-in must be called


@dataclass(frozen=True)
class Choice:
    """The ticket to call, the counter's new priority and appointment streaks, and the reason in
    structured form."""

    ticket: dict
    streak: int
    rule: str          # "overdue" | "appointment" | "priority" | "turn" | "next" | "early"
    waited_s: int
    appointment_streak: int = 0

    def reason(self) -> str:
        """One English sentence for logs and the API (screens translate `rule` themselves)."""
        minutes = self.waited_s // 60
        if self.rule == "overdue":
            return f"waited {minutes} min, longer than the maximum wait"
        if self.rule == "priority":
            return f"priority ({self.ticket['priority']}), waited {minutes} min"
        if self.rule == "turn":
            return f"normal ticket's turn after priority calls, waited {minutes} min"
        if self.rule == "appointment":
            return f"appointment whose slot has started, waited {minutes} min"
        if self.rule == "early":
            return "appointment before its slot, nobody else waiting"
        return f"next in line, waited {minutes} min"


def is_appointment(ticket: dict) -> bool:
    """True for a ticket issued by an appointment's check-in."""
    return bool(ticket.get("appointment"))


def _arrival(ticket: dict) -> dt.datetime:
    """When the citizen joined the queue: the arrival (kept across transfers); for an appointment,
    the start of its slot if that is later."""
    arrival = parse_iso(ticket.get("arrival_at") or ticket["issued_at"])
    if is_appointment(ticket) and ticket.get("slot_start_at"):
        return max(arrival, parse_iso(ticket["slot_start_at"]))
    return arrival


def order_key(ticket: dict, ranks: dict[str, int]) -> tuple:
    """Arrival, then class rank, then number, then id: a total order on tickets."""
    return (_arrival(ticket), ranks.get(ticket["priority"], 0), ticket.get("seq_in_day", 0), ticket["id"])


def epoch_ms(moment: dt.datetime) -> int:
    """Whole milliseconds since 1970 (exact for our times, which are stored to the millisecond)."""
    return (moment - EPOCH) // MS


def queue_key(ticket: dict, ranks: dict[str, int]) -> tuple[int, int, int, str]:
    """`order_key` with the arrival as epoch milliseconds: numbers, computed once per indexed ticket."""
    return (epoch_ms(_arrival(ticket)), ranks.get(ticket["priority"], 0), ticket.get("seq_in_day", 0), ticket["id"])


def class_ranks(classes: Iterable[dict]) -> dict[str, int]:
    """Priority class id -> rank; normal tickets rank after every class."""
    ranks = {p["id"]: int(p["rank"]) for p in classes}
    ranks[NORMAL] = max(ranks.values(), default=0) + 1
    return ranks


def choose(waiting: list[dict], *, now: dt.datetime, streak: int, policy: Policy,
           ranks: dict[str, int] | None = None, appointment_streak: int = 0) -> Choice | None:
    """Pick the next ticket among `waiting` (all eligible for this counter), or None if empty."""
    if not waiting:
        return None
    ranks = ranks or {}
    ordered = sorted(waiting, key=lambda t: order_key(t, ranks))
    limit = dt.timedelta(seconds=policy.max_wait_s)

    def waited(t):
        return max(0, int((now - _arrival(t)).total_seconds()))

    early = [t for t in ordered if is_appointment(t) and _arrival(t) > now]
    present = [t for t in ordered if t not in early]
    due = [t for t in present if is_appointment(t)]
    walk_ins = [t for t in present if not is_appointment(t)]
    if present and now - _arrival(present[0]) >= limit:
        first = present[0]
        if is_appointment(first):
            return Choice(first, streak, "overdue", waited(first), appointment_streak + 1)
        return Choice(first, 0 if first["priority"] == NORMAL else streak, "overdue", waited(first))
    if due and (not walk_ins or appointment_streak < policy.appointment_ratio):
        return Choice(due[0], streak, "appointment", waited(due[0]), appointment_streak + 1)
    if not walk_ins:
        return Choice(early[0], streak, "early", 0, appointment_streak)
    priority = [t for t in walk_ins if t["priority"] != NORMAL]
    normal = [t for t in walk_ins if t["priority"] == NORMAL]
    if priority and (not normal or streak < policy.ratio):
        pick = priority[0]
        return Choice(pick, streak + 1, "priority", waited(pick))
    pick = normal[0]
    return Choice(pick, 0, "turn" if priority else "next", waited(pick))


def _waited_s(now: dt.datetime, arrival_ms: int) -> int:
    """Whole seconds since an arrival given in epoch milliseconds (0 for a clock that is behind)."""
    return max(0, (now - EPOCH - arrival_ms * MS) // dt.timedelta(seconds=1))


def _is_due(head: Entry, now: dt.datetime) -> bool:
    """True when an indexed ticket's time in the queue has come (an appointment's slot started)."""
    return head[0][0] <= epoch_ms(now)


def choose_from_heads(first_priority: Entry | None, first_normal: Entry | None, *, now: dt.datetime,
                      streak: int, policy: Policy, first_appointment: Entry | None = None,
                      appointment_streak: int = 0) -> Choice | None:
    """`choose`'s decision from the first priority, normal and appointment ticket alone."""
    due = first_appointment if first_appointment is not None and _is_due(first_appointment, now) else None
    heads = [h for h in (first_priority, first_normal, due) if h is not None]
    if not heads:
        if first_appointment is None:
            return None
        return Choice(first_appointment[1], streak, "early", 0, appointment_streak)
    # The oldest ticket overall heads one of the queues.
    first = min(heads)
    if now - EPOCH - first[0][0] * MS >= dt.timedelta(seconds=policy.max_wait_s):
        ticket = first[1]
        if first is due:
            return Choice(ticket, streak, "overdue", _waited_s(now, first[0][0]), appointment_streak + 1)
        return Choice(ticket, 0 if ticket["priority"] == NORMAL else streak, "overdue", _waited_s(now, first[0][0]))
    walk_in = first_priority is not None or first_normal is not None
    if due is not None and (not walk_in or appointment_streak < policy.appointment_ratio):
        return Choice(due[1], streak, "appointment", _waited_s(now, due[0][0]), appointment_streak + 1)
    if first_priority is not None and (first_normal is None or streak < policy.ratio):
        return Choice(first_priority[1], streak + 1, "priority", _waited_s(now, first_priority[0][0]))
    return Choice(first_normal[1], 0, "turn" if first_priority is not None else "next",
                  _waited_s(now, first_normal[0][0]))


def side(ticket: dict) -> str:
    """The queue a waiting ticket is indexed in: "appointment", "priority" or "normal"."""
    if is_appointment(ticket):
        return "appointment"
    return "normal" if ticket["priority"] == NORMAL else "priority"


def call_order(priority: Iterable[Entry], normal: Iterable[Entry], *, now: dt.datetime, streak: int,
               policy: Policy, appointments: Iterable[Entry] = (), appointment_streak: int = 0) -> Iterator[Choice]:
    """The choices `choose` would make one after another if nothing changed, lazily.

    `priority`, `normal` and `appointments` yield the waiting tickets of each queue in `queue_key`
    order; each step reads one more entry, so the first k choices cost k steps whatever the
    queue's length.
    """
    streams = {"priority": iter(priority), "normal": iter(normal), "appointment": iter(appointments)}
    heads = {name: next(stream, None) for name, stream in streams.items()}
    while True:
        choice = choose_from_heads(heads["priority"], heads["normal"], now=now, streak=streak, policy=policy,
                                   first_appointment=heads["appointment"], appointment_streak=appointment_streak)
        if choice is None:
            return
        yield choice
        taken = side(choice.ticket)
        heads[taken] = next(streams[taken], None)
        streak, appointment_streak = choice.streak, choice.appointment_streak


def place(ticket: dict, waiting: list[dict], *, now: dt.datetime, policy: Policy, streak: int = 0,
          ranks: dict[str, int] | None = None, appointment_streak: int = 0) -> int:
    """How many calls `choose` makes before `ticket` when it calls the waiting tickets one after
    another (the reference for `calls_before`: it replays the whole queue)."""
    pool = list(waiting)
    calls = 0
    while pool:
        choice = choose(pool, now=now, streak=streak, policy=policy, ranks=ranks, appointment_streak=appointment_streak)
        if choice.ticket["id"] == ticket["id"]:
            return calls
        calls += 1
        streak, appointment_streak = choice.streak, choice.appointment_streak
        pool = [t for t in pool if t["id"] != choice.ticket["id"]]
    raise ValueError("the ticket is not waiting")


def calls_before(*, is_priority: bool, index: int, priority_waiting: int, normal_waiting: int,
                 overdue_priority: int, overdue_normal: int, ratio: int, streak: int = 0,
                 is_appointment: bool = False, appointments_due: int = 0, overdue_appointments: int = 0,
                 appointments_after_overdue_walk_ins: int = 0, appointment_ratio: int = 1,
                 appointment_streak: int = 0) -> int:
    """How many calls come before a waiting ticket that is not overdue, if nothing changes: its
    place in `call_order`, counted instead of replayed (the same cost with 5 or 5,000 waiting).

    `index` counts the tickets before it in its own queue (priority, normal or appointment); the
    other numbers count the queues and their overdue heads (`appointments_due`: appointments whose
    slot has started; `appointments_after_overdue_walk_ins`: overdue appointments that arrived
    after the last overdue walk-in). Overdue tickets go first (their arrival order); an overdue
    normal ticket restarts the priority streak, an overdue walk-in the appointment streak. Then
    appointments are called `appointment_ratio` at a time before each walk-in, and among walk-ins
    priority tickets `ratio` at a time before each normal ticket, so a normal ticket also waits for
    priority tickets that arrived after it, and a priority ticket for fewer people than arrived
    before it. An early appointment waits for everybody else. An overdue ticket itself waits only
    for the earlier arrivals (the caller counts those)."""
    if is_appointment and index >= appointments_due:
        return priority_waiting + normal_waiting + index
    walk_ins_overdue = overdue_priority + overdue_normal
    overdue = walk_ins_overdue + overdue_appointments
    walk_ins_left = priority_waiting + normal_waiting - walk_ins_overdue
    appointments_left = appointments_due - overdue_appointments
    streak_left = appointments_after_overdue_walk_ins + (0 if walk_ins_overdue else appointment_streak)
    first_appointments = max(0, appointment_ratio - streak_left)  # appointment calls before the next walk-in
    if is_appointment:
        i = index - overdue_appointments
        turns = 0 if i < first_appointments else 1 + (i - first_appointments) // appointment_ratio
        return overdue + i + min(walk_ins_left, turns)
    streak = 0 if overdue_normal else streak
    own_overdue = overdue_priority if is_priority else overdue_normal
    i = index - own_overdue
    priority_left, normal_left = priority_waiting - overdue_priority, normal_waiting - overdue_normal
    first_block = max(0, ratio - streak)  # priority calls before the next normal ticket's turn
    if is_priority:
        turns = 0 if i < first_block else 1 + (i - first_block) // ratio
        walk_ins_before = i + min(normal_left, turns)
    else:
        walk_ins_before = i + min(priority_left, first_block + i * ratio)
    return overdue + walk_ins_before + min(appointments_left, first_appointments + walk_ins_before * appointment_ratio)


def estimate_wait_s(ahead: int, recent_service_s: list[float], counters_open: int,
                    default_service_s: float = 300.0) -> int:
    """Expected wait: people ahead times the recent mean service time, shared by the open counters."""
    mean = sum(recent_service_s) / len(recent_service_s) if recent_service_s else default_service_s
    return int(round(ahead * mean / max(1, counters_open)))
