"""Insight into the queue: the queue report over any range of service days (live and archived,
through `History`), and the citizen's anonymous feedback on a finished visit."""
from __future__ import annotations

import datetime as dt

from kiosk import services
from kiosk.clock import iso
from kiosk.domain import queue_report as domain
from kiosk.domain.errors import AlreadyRated, InvalidTransition, NotFound, ValidationFailed

FEEDBACK = "feedback"


def targets_s(c: services.Centre) -> dict[str, float]:
    """Each service's target wait in seconds (its own, else the centre's default)."""
    default = int(c.config["TARGET_WAIT_MIN"])
    return {s["code"]: 60.0 * int(s.get("target_wait_min") or default) for s in services.services_list(c)}


def queue_report(c: services.Centre, first: dt.date, last: dt.date) -> dict:
    """The queue report of days `first`..`last`, whether their days are closed or not."""
    days = domain.days_between(first, last)
    return domain.queue_report(c.history.records("tickets", days), c.history.records(FEEDBACK, days),
                               first=first, last=last, targets_s=targets_s(c), tz=c.tz)


def give_feedback(c: services.Centre, ticket_id: str, *, score: object, comment: object = None) -> dict:
    """Store the one anonymous answer of a finished visit (NotFound, InvalidTransition unless the
    ticket is done, AlreadyRated, ValidationFailed)."""
    problems = domain.check_feedback(score, comment)
    if problems:
        raise ValidationFailed("invalid feedback", problems)
    with c.store.lock:
        ticket = c.history.get("tickets", ticket_id) if isinstance(ticket_id, str) else None
        if ticket is None:
            raise NotFound(f"no ticket {ticket_id!r}", ticket=ticket_id)
        if ticket["state"] != "done":
            raise InvalidTransition(f"ticket {ticket['number']} is {ticket['state']}: only a finished visit is rated",
                                    state=ticket["state"], allowed=[])
        if c.history.get(FEEDBACK, ticket["id"], days=[ticket["day"]]) is not None:
            raise AlreadyRated(f"ticket {ticket['number']} is already rated")
        doc = domain.new_feedback(ticket, score=score, comment=comment, at=iso(c.clock.now()))
        with c.store.transaction():
            c.store.put(FEEDBACK, doc)
    c.events.publish("feedback-given", {"ticket": ticket["id"], "counter": doc["counter"]})
    return doc


def rated(c: services.Centre, ticket: dict) -> bool:
    """Whether a ticket's visit has been rated."""
    return c.history.get(FEEDBACK, ticket["id"], days=[ticket["day"]]) is not None


def awaiting_feedback(c: services.Centre, counter: str) -> dict | None:
    """The visit last finished at a counter today, when it is not rated yet (the counter tablet
    asks its citizen)."""
    services.get_counter(c, counter)
    today = c.today()
    done = [t for t in c.store.find("tickets", lambda d: d["state"] == "done" and d["day"] == today)
            if domain.served_by(t)[1] == counter]
    if not done:
        return None
    last = max(done, key=lambda t: (t["events"][-1]["at"], t["issued_at"], t["id"]))
    return None if rated(c, last) else last
