"""Which waiting ticket a counter calls next, and why.

The rule, in order:
1. Ageing: a ticket that has waited `max_wait_s` or longer is overdue; overdue tickets go first,
   oldest arrival first. This is what makes starvation impossible.
2. Interleaving: priority classes (elderly, disability, pregnancy, ...) are called before normal
   tickets, but after `ratio` priority calls in a row a waiting normal ticket gets its turn.
3. Ties: earlier arrival first, then lower class rank, then lower ticket number, then id.

The choice depends only on the waiting tickets, the time and the counter's streak, so it is
deterministic and can be explained in one sentence.

`choose` is the rule's reference definition: it sorts every waiting ticket. The screens and
call-next use the indexed form instead: the rule only ever looks at the first priority ticket and
the first normal ticket (the oldest ticket overall is one of those two), so `choose_from_heads`
takes the same decision from the heads of two ordered queues, and `call_order` replays it lazily
over them. Property tests hold both forms equal.
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
    max_wait_s: int = 45 * 60  # after this, a ticket is overdue and jumps ahead of both queues


@dataclass(frozen=True)
class Choice:
    """The ticket to call, the counter's new priority streak, and the reason in structured form."""

    ticket: dict
    streak: int
    rule: str          # "overdue" | "priority" | "turn" | "next"
    waited_s: int

    def reason(self) -> str:
        """One English sentence for logs and the API (screens translate `rule` themselves)."""
        minutes = self.waited_s // 60
        if self.rule == "overdue":
            return f"waited {minutes} min, longer than the maximum wait"
        if self.rule == "priority":
            return f"priority ({self.ticket['priority']}), waited {minutes} min"
        if self.rule == "turn":
            return f"normal ticket's turn after priority calls, waited {minutes} min"
        return f"next in line, waited {minutes} min"


def _arrival(ticket: dict) -> dt.datetime:
    """When the citizen first joined the queue (kept across transfers)."""
    return parse_iso(ticket.get("arrival_at") or ticket["issued_at"])


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
           ranks: dict[str, int] | None = None) -> Choice | None:
    """Pick the next ticket among `waiting` (all eligible for this counter), or None if empty."""
    if not waiting:
        return None
    ranks = ranks or {}
    ordered = sorted(waiting, key=lambda t: order_key(t, ranks))
    limit = dt.timedelta(seconds=policy.max_wait_s)

    def waited(t):
        return max(0, int((now - _arrival(t)).total_seconds()))

    first = ordered[0]
    if now - _arrival(first) >= limit:
        return Choice(first, 0 if first["priority"] == NORMAL else streak, "overdue", waited(first))
    priority = [t for t in ordered if t["priority"] != NORMAL]
    normal = [t for t in ordered if t["priority"] == NORMAL]
    if priority and (not normal or streak < policy.ratio):
        pick = priority[0]
        return Choice(pick, streak + 1, "priority", waited(pick))
    pick = normal[0]
    return Choice(pick, 0, "turn" if priority else "next", waited(pick))


def _waited_s(now: dt.datetime, arrival_ms: int) -> int:
    """Whole seconds since an arrival given in epoch milliseconds (0 for a clock that is behind)."""
    return max(0, (now - EPOCH - arrival_ms * MS) // dt.timedelta(seconds=1))


def choose_from_heads(first_priority: Entry | None, first_normal: Entry | None, *, now: dt.datetime,
                      streak: int, policy: Policy) -> Choice | None:
    """`choose`'s decision from the first priority and the first normal waiting ticket alone."""
    if first_priority is None and first_normal is None:
        return None
    # The oldest ticket overall heads one of the two queues.
    first = min(h for h in (first_priority, first_normal) if h is not None)
    if now - EPOCH - first[0][0] * MS >= dt.timedelta(seconds=policy.max_wait_s):
        ticket = first[1]
        return Choice(ticket, 0 if ticket["priority"] == NORMAL else streak, "overdue", _waited_s(now, first[0][0]))
    if first_priority is not None and (first_normal is None or streak < policy.ratio):
        return Choice(first_priority[1], streak + 1, "priority", _waited_s(now, first_priority[0][0]))
    return Choice(first_normal[1], 0, "turn" if first_priority is not None else "next",
                  _waited_s(now, first_normal[0][0]))


def call_order(priority: Iterable[Entry], normal: Iterable[Entry], *, now: dt.datetime, streak: int,
               policy: Policy) -> Iterator[Choice]:
    """The choices `choose` would make one after another if nothing changed, lazily.

    `priority` and `normal` yield the waiting priority and normal tickets in `queue_key` order;
    each step reads one more entry, so the first k choices cost k steps whatever the queue's length.
    """
    streams = {True: iter(priority), False: iter(normal)}
    heads = {is_priority: next(stream, None) for is_priority, stream in streams.items()}
    while True:
        choice = choose_from_heads(heads[True], heads[False], now=now, streak=streak, policy=policy)
        if choice is None:
            return
        yield choice
        taken = choice.ticket["priority"] != NORMAL
        heads[taken] = next(streams[taken], None)
        streak = choice.streak


def place(ticket: dict, waiting: list[dict], *, now: dt.datetime, policy: Policy, streak: int = 0,
          ranks: dict[str, int] | None = None) -> int:
    """How many calls `choose` makes before `ticket` when it calls the waiting tickets one after
    another (the reference for `calls_before`: it replays the whole queue)."""
    pool = list(waiting)
    calls = 0
    while pool:
        choice = choose(pool, now=now, streak=streak, policy=policy, ranks=ranks)
        if choice.ticket["id"] == ticket["id"]:
            return calls
        calls += 1
        streak = choice.streak
        pool = [t for t in pool if t["id"] != choice.ticket["id"]]
    raise ValueError("the ticket is not waiting")


def calls_before(*, is_priority: bool, index: int, priority_waiting: int, normal_waiting: int,
                 overdue_priority: int, overdue_normal: int, ratio: int, streak: int = 0) -> int:
    """How many calls come before a waiting ticket that is not overdue, if nothing changes: its
    place in `call_order`, counted instead of replayed (the same cost with 5 or 5,000 waiting).

    `index` counts the tickets before it in its own queue (priority or normal); the other numbers
    count both queues and their overdue heads. Overdue tickets go first (their arrival order);
    an overdue normal ticket restarts the priority streak. Then priority tickets are called
    `ratio` at a time before each normal ticket, so a normal ticket also waits for priority
    tickets that arrived after it, and a priority ticket for fewer people than arrived before it.
    An overdue ticket itself waits only for the earlier arrivals (the caller counts those)."""
    streak = 0 if overdue_normal else streak
    own_overdue = overdue_priority if is_priority else overdue_normal
    i = index - own_overdue
    priority_left, normal_left = priority_waiting - overdue_priority, normal_waiting - overdue_normal
    first_block = max(0, ratio - streak)  # priority calls before the next normal ticket's turn
    if is_priority:
        turns = 0 if i < first_block else 1 + (i - first_block) // ratio
        interleaved = i + min(normal_left, turns)
    else:
        interleaved = i + min(priority_left, first_block + i * ratio)
    return overdue_priority + overdue_normal + interleaved


def estimate_wait_s(ahead: int, recent_service_s: list[float], counters_open: int,
                    default_service_s: float = 300.0) -> int:
    """Expected wait: people ahead times the recent mean service time, shared by the open counters."""
    mean = sum(recent_service_s) / len(recent_service_s) if recent_service_s else default_service_s
    return int(round(ahead * mean / max(1, counters_open)))
