"""Least privilege at the counter: who may act at which counter and on which ticket.

- A counter is held by the staff member who opened it, until it is closed. An attendant acts only
  at the counter they hold, and only on tickets called there; a counter held by another attendant
  refuses them (`counter_taken`), a ticket of another counter too (`not_your_ticket`).
- A free (closed) counter may be taken: on the screens by opening it, through the API by the first
  call there (integrations need no separate step).
- A supervisor may act anywhere; acting at a counter another person holds is an override, which
  the caller records in the audit chain.

Plain functions over the counter's live state ({"status", "staff"}) and the ticket document.
"""
from __future__ import annotations

from kiosk.domain.errors import CounterTaken, NotYourTicket

SUPERVISOR = "supervisor"


def holder(state: dict | None) -> str | None:
    """Who holds a counter now (None when it is closed or was never opened)."""
    if not state or state.get("status", "closed") == "closed":
        return None
    return state.get("staff")


def counter_use(staff: dict, counter: str, state: dict | None) -> str:
    """How `staff` would use `counter`: "own", "free" (nobody holds it) or "override" (a supervisor
    at another's counter); CounterTaken for an attendant at another's counter."""
    held_by = holder(state)
    if held_by is None:
        return "free"
    if held_by == staff["id"]:
        return "own"
    if staff.get("role") == SUPERVISOR:
        return "override"
    raise CounterTaken(f"counter {counter} is held by another attendant; choose a free counter",
                       counter=counter)


def ticket_use(staff: dict, ticket: dict, state_of_its_counter: dict | None, *, at: str | None = None) -> str:
    """How `staff` would act on `ticket` ("own" or "override"), optionally from the console (or
    with the counter) `at`; NotYourTicket for an attendant when the ticket is not at a counter they
    hold, or is at another counter than `at`."""
    counter = ticket.get("counter")
    held_by = holder(state_of_its_counter) if counter else None
    if staff.get("role") == SUPERVISOR:
        return "own" if held_by in (None, staff["id"]) and (at is None or at == counter) else "override"
    if counter is None or held_by != staff["id"]:
        where = f"at counter {counter}" if counter else "not at any counter"
        raise NotYourTicket(f"ticket {ticket.get('number')} is {where}; only the attendant of its counter "
                            "or a supervisor may act on it", counter=counter)
    if at is not None and at != counter:
        raise NotYourTicket(f"ticket {ticket.get('number')} is at counter {counter}, not at counter {at}",
                            counter=counter)
    return "own"
