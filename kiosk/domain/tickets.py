"""Tickets: states, the transition table, numbering and the event history.

A ticket is a plain dict (it is stored and synced as JSON). Every change goes through `transition`,
which checks the table, appends an event (time, actor, counter) and returns a new dict: the event
history is the source of wait and service-time statistics and of what central receives.
"""
from __future__ import annotations

import datetime as dt
from enum import Enum

from kiosk.clock import iso, parse_iso
from kiosk.domain.errors import InvalidTransition


class State(str, Enum):
    """Where a ticket is in its life."""

    WAITING = "waiting"
    CALLED = "called"
    SERVING = "serving"
    DONE = "done"
    NO_SHOW = "no_show"
    HELD = "held"
    TRANSFERRED = "transferred"
    CANCELLED = "cancelled"


W, C, S, D, N, H, T, X = (State.WAITING, State.CALLED, State.SERVING, State.DONE, State.NO_SHOW,
                          State.HELD, State.TRANSFERRED, State.CANCELLED)

# action -> (states it may start from, state it leads to)
TRANSITIONS: dict[str, tuple[frozenset[State], State]] = {
    "call": (frozenset({W}), C),
    "recall": (frozenset({C}), C),
    "start": (frozenset({C}), S),
    "finish": (frozenset({S}), D),
    "no_show": (frozenset({C}), N),
    "hold": (frozenset({C, S}), H),
    "requeue": (frozenset({C, H}), W),
    "reactivate": (frozenset({N}), W),
    "cancel": (frozenset({W, C, H, N}), X),
    "transfer": (frozenset({W, C, S, H}), T),
}
ACTIONS = tuple(TRANSITIONS)
OPEN_STATES = frozenset({W, C, S, H, N})  # states a ticket can still leave
WITH_COUNTER = frozenset({C, S})


def allowed_actions(state: State | str) -> list[str]:
    """Actions the table allows from `state` (for buttons and error messages)."""
    state = State(state)
    return [a for a, (sources, _) in TRANSITIONS.items() if state in sources]


def format_number(prefix: str, n: int) -> str:
    """The printed ticket number: prefix letter, dash, at least three digits (A-007)."""
    return f"{prefix}-{n:03d}"


def new_ticket(*, ticket_id: str, service: dict, n: int, day: str, priority: str, lang: str,
               now: dt.datetime, device: str, arrival_at: str | None = None,
               origin: dict | None = None) -> dict:
    """A fresh waiting ticket; `arrival_at` carries a transferred ticket's original arrival time."""
    at = iso(now)
    ticket = {
        "id": ticket_id,
        "number": format_number(service["prefix"], n),
        "service": service["code"],
        "priority": priority,
        "lang": lang,
        "state": State.WAITING.value,
        "issued_at": at,
        "arrival_at": arrival_at or at,
        "day": day,
        "seq_in_day": n,
        "counter": None,
        "device": device,
        "events": [{"state": State.WAITING.value, "at": at}],
    }
    if origin:
        ticket["transferred_from"] = origin["id"]
        ticket["events"][0]["from"] = origin["number"]
    return ticket


def transition(ticket: dict, action: str, *, now: dt.datetime, by: str | None = None,
               counter: str | None = None, reason: str | None = None) -> dict:
    """Apply `action` to a copy of `ticket`, or raise InvalidTransition naming what is allowed."""
    if action not in TRANSITIONS:
        raise InvalidTransition(f"unknown action {action!r}", allowed=allowed_actions(ticket["state"]))
    sources, target = TRANSITIONS[action]
    current = State(ticket["state"])
    if current not in sources:
        allowed = allowed_actions(current)
        raise InvalidTransition(
            f"cannot {action.replace('_', '-')} ticket {ticket['number']}: it is {current.value}"
            + (f" (allowed: {', '.join(a.replace('_', '-') for a in allowed)})" if allowed else ""),
            state=current.value, allowed=allowed)
    out = dict(ticket)
    out["state"] = target.value
    if target in WITH_COUNTER:
        out["counter"] = counter or ticket.get("counter")
    elif target in (W, N, H):
        out["counter"] = None if target == W else ticket.get("counter")
    event = {"state": target.value, "at": iso(now), "action": action}
    if out.get("counter") and target in WITH_COUNTER | {N, D}:
        event["counter"] = out["counter"]
    if by:
        event["by"] = by
    if reason:
        event["reason"] = reason
    out["events"] = list(ticket["events"]) + [event]
    return out


def last_event_at(ticket: dict, state: str) -> str | None:
    """When the ticket last entered `state` (ISO), or None."""
    for event in reversed(ticket["events"]):
        if event["state"] == state:
            return event["at"]
    return None


def service_seconds(ticket: dict) -> float | None:
    """How long a finished ticket was being served (start to finish), from its events."""
    started = finished = None
    for event in ticket["events"]:
        if event["state"] == State.SERVING.value:
            started = event["at"]
        elif event["state"] == State.DONE.value:
            finished = event["at"]
    if not started or not finished:
        return None
    return max(0.0, (parse_iso(finished) - parse_iso(started)).total_seconds())
