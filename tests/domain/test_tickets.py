"""The ticket state machine: every move in the table works, every move outside it is refused."""
import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.domain.errors import InvalidTransition
from kiosk.domain.tickets import (ACTIONS, TRANSITIONS, State, allowed_actions, format_number, new_ticket,
                                  service_seconds, transition)

NOW = dt.datetime(2026, 11, 22, 8, 0, tzinfo=dt.timezone.utc)
SERVICE = {"code": "A", "prefix": "A"}


def ticket_in(state: State) -> dict:
    """A ticket put directly into `state` (the table is what is under test)."""
    t = new_ticket(ticket_id="01J0000000000000000000000A", service=SERVICE, n=7, day="2026-11-22",
                   priority="normal", lang="ar", now=NOW, device="dev")
    t["state"] = state.value
    t["counter"] = "1" if state in (State.CALLED, State.SERVING) else None
    return t


def test_number_format():
    assert format_number("A", 7) == "A-007"
    assert format_number("B", 1234) == "B-1234"


def test_new_ticket_is_waiting_with_one_event():
    t = ticket_in(State.WAITING)
    assert t["number"] == "A-007" and t["state"] == "waiting"
    assert t["events"] == [{"state": "waiting", "at": "2026-11-22T08:00:00.000Z"}]
    assert t["arrival_at"] == t["issued_at"]


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("state", list(State))
def test_every_pair_follows_the_table(state, action):
    sources, target = TRANSITIONS[action]
    ticket = ticket_in(state)
    if state in sources:
        out = transition(ticket, action, now=NOW, by="demo", counter="2")
        assert out["state"] == target.value
        assert out["events"][-1]["state"] == target.value and out["events"][-1]["by"] == "demo"
        assert len(out["events"]) == len(ticket["events"]) + 1
        assert ticket["state"] == state.value, "the input ticket is not modified"
    else:
        with pytest.raises(InvalidTransition) as err:
            transition(ticket, action, now=NOW, by="demo", counter="2")
        assert err.value.details["allowed"] == allowed_actions(state)


@given(st.lists(st.sampled_from(ACTIONS), max_size=30))
def test_random_action_sequences_never_leave_the_table(actions):
    ticket = ticket_in(State.WAITING)
    for action in actions:
        sources, target = TRANSITIONS[action]
        before = ticket["state"]
        try:
            ticket = transition(ticket, action, now=NOW, by="x", counter="1")
        except InvalidTransition:
            assert State(before) not in sources
            continue
        assert State(before) in sources and ticket["state"] == target.value
    assert [e["state"] for e in ticket["events"]][0] == "waiting"


def test_terminal_states_allow_nothing():
    for state in (State.DONE, State.TRANSFERRED, State.CANCELLED):
        assert allowed_actions(state) == []


def test_unknown_action_is_refused():
    with pytest.raises(InvalidTransition):
        transition(ticket_in(State.WAITING), "teleport", now=NOW)


def test_service_seconds_from_events():
    t = ticket_in(State.WAITING)
    t = transition(t, "call", now=NOW, counter="1")
    t = transition(t, "start", now=NOW + dt.timedelta(seconds=30))
    assert service_seconds(t) is None
    t = transition(t, "finish", now=NOW + dt.timedelta(seconds=330))
    assert service_seconds(t) == 300.0
