"""Counter rights without an app: who may use a counter and act on a ticket."""
import pytest

from kiosk.domain import rights
from kiosk.domain.errors import CounterTaken, NotYourTicket

DEMO = {"id": "demo", "role": "attendant"}
AMAL = {"id": "amal", "role": "attendant"}
SUPER = {"id": "super", "role": "supervisor"}
HELD_BY_DEMO = {"status": "open", "staff": "demo"}


def test_a_closed_or_unknown_counter_is_free_for_anyone():
    """Nobody holds a counter that is closed or was never opened."""
    for state in (None, {"status": "closed", "staff": "demo"}):
        assert rights.holder(state) is None
        assert rights.counter_use(AMAL, "1", state) == "free"


def test_a_held_counter_is_its_holders_and_a_supervisors_override():
    """Another attendant is refused with counter_taken; a supervisor overrides."""
    assert rights.counter_use(DEMO, "1", {"status": "break", "staff": "demo"}) == "own"
    with pytest.raises(CounterTaken):
        rights.counter_use(AMAL, "1", HELD_BY_DEMO)
    assert rights.counter_use(SUPER, "1", HELD_BY_DEMO) == "override"


@pytest.mark.parametrize("ticket,state,at", [
    ({"number": "A-001", "counter": None}, None, None),               # waiting: no counter
    ({"number": "A-001", "counter": "1"}, HELD_BY_DEMO, None),        # another's counter
    ({"number": "A-001", "counter": "1"}, {"status": "closed", "staff": None}, None),
])
def test_an_attendant_acts_only_on_tickets_of_their_counter(ticket, state, at):
    """Waiting tickets, tickets of another's counter or of a closed counter are refused."""
    with pytest.raises(NotYourTicket):
        rights.ticket_use(AMAL, ticket, state, at=at)


def test_the_console_must_be_the_tickets_counter():
    """Acting from counter 2's console on counter 1's ticket is refused even for its holder."""
    ticket = {"number": "A-001", "counter": "1"}
    assert rights.ticket_use(DEMO, ticket, HELD_BY_DEMO, at="1") == "own"
    with pytest.raises(NotYourTicket):
        rights.ticket_use(DEMO, ticket, HELD_BY_DEMO, at="2")


def test_a_supervisor_may_act_on_any_ticket_as_an_override():
    """Own counter or none: plain; someone else's counter: override (audited by the caller)."""
    assert rights.ticket_use(SUPER, {"number": "A-1", "counter": None}, None) == "own"
    assert rights.ticket_use(SUPER, {"number": "A-1", "counter": "1"}, HELD_BY_DEMO) == "override"
    assert rights.ticket_use(SUPER, {"number": "A-1", "counter": "1"}, {"status": "open", "staff": "super"}) == "own"
