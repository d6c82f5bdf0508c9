"""Least privilege at the counter: an attendant acts only at the counter they hold and on tickets
called there; a supervisor may act anywhere, recorded as an override; counters that do not exist
are refused; the public ticket view carries no staff ids."""
from __future__ import annotations

import pytest

from kiosk import services
from tests.web.conftest import Staff


@pytest.fixture
def second(app, centre):
    """Another attendant, logged in on a browser of their own."""
    services.set_staff(centre, "amal", pin="2468", role="attendant")
    return Staff(app.test_client(), "amal", "2468")


def _bearer(client, staff: str, pin: str) -> dict:
    """An API token's header."""
    token = client.post("/api/v1/auth/token", json={"staff": staff, "pin": pin}).get_json()["token"]
    return {"Authorization": f"Bearer {token}"}


def _called_at(centre, staff: Staff, counter: str) -> dict:
    """Open `counter` on `staff`'s console and call a fresh ticket there."""
    services.issue_ticket(centre, service="A")
    assert staff.post("/counter/open", {"counter": counter}).status_code == 204
    staff.post(f"/counter/{counter}/call-next")
    return centre.tickets.at_counter(counter)[0]


def test_an_attendant_cannot_finish_a_ticket_of_another_counter(centre, attendant, supervisor):
    """The audit's finding: /counter/1/.../finish finished the supervisor's ticket at counter 2."""
    ticket = _called_at(centre, supervisor, "2")
    supervisor.post(f"/counter/2/tickets/{ticket['id']}/start")
    attendant.post("/counter/open", {"counter": "1"})
    seq = centre.store.seq
    attendant.post("/lang", {"lang": "en", "next": "/"})
    refused = attendant.post(f"/counter/1/tickets/{ticket['id']}/finish", htmx=False)
    assert refused.status_code == 403
    assert "This ticket was called at another counter." in refused.get_data(as_text=True)
    assert attendant.post(f"/counter/2/tickets/{ticket['id']}/finish", htmx=False).status_code == 409
    assert centre.tickets.get(ticket["id"])["state"] == "serving" and centre.store.seq == seq


def test_an_attendant_cannot_close_or_take_a_counter_someone_holds(centre, attendant, second):
    """Closing counter 2 of another attendant, or opening it for oneself, is refused (409)."""
    second.post("/counter/open", {"counter": "2"})
    attendant.post("/lang", {"lang": "en", "next": "/"})
    closing = attendant.post("/counter/2/status", {"status": "closed"}, htmx=False)
    assert closing.status_code == 409
    assert "Another attendant holds this counter." in closing.get_data(as_text=True)
    taking = attendant.post("/counter/open", {"counter": "2"}, htmx=False)
    assert taking.status_code == 409
    assert attendant.post("/counter/2/call-next", htmx=False).status_code == 409
    state = centre.store.get("counter_state", "2")
    assert (state["status"], state["staff"]) == ("open", "amal")


def test_the_api_takes_a_free_counter_at_the_first_call_and_refuses_a_held_one(app, centre):
    """Integrations keep working without a separate step; another attendant gets 409 counter_taken."""
    client = app.test_client()
    services.set_staff(centre, "amal", pin="2468", role="attendant")
    demo, amal = _bearer(client, "demo", "0000"), _bearer(client, "amal", "2468")
    services.issue_ticket(centre, service="A")
    assert client.post("/api/v1/counters/1/call-next", headers=demo).status_code == 200
    state = centre.store.get("counter_state", "1")
    assert (state["status"], state["staff"]) == ("open", "demo")
    taken = client.post("/api/v1/counters/1/call-next", headers=amal)
    assert taken.status_code == 409 and taken.get_json()["error"]["code"] == "counter_taken"
    assert client.post("/api/v1/counters/2/call-next", headers=amal).status_code == 204  # takes counter 2


def test_the_api_refuses_calls_at_a_counter_on_a_break(app, centre, attendant):
    """The audit called next on a counter that was not open: now 409 counter_not_open."""
    attendant.post("/counter/open", {"counter": "1"})
    attendant.post("/counter/1/status", {"status": "break"})
    services.issue_ticket(centre, service="A")
    client = app.test_client()
    refused = client.post("/api/v1/counters/1/call-next", headers=_bearer(client, "demo", "0000"))
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "counter_not_open"
    assert not centre.tickets.at_counter("1")


def test_a_failed_first_call_takes_no_counter(app, centre):
    """The counter taken by a call that is then refused is given back (nothing changes)."""
    client = app.test_client()
    ticket = services.issue_ticket(centre, service="A")
    services.call_ticket(centre, ticket["id"], counter="3", by="super")
    demo = _bearer(client, "demo", "0000")
    seq = centre.store.seq
    r = client.post(f"/api/v1/tickets/{ticket['id']}/call", json={"counter": "2"}, headers=demo)
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "invalid_transition"
    assert centre.store.seq == seq and centre.store.get("counter_state", "2") is None


def test_a_counter_that_does_not_exist_is_refused(app, centre, attendant):
    """The audit recalled to counter 999 and the hall display showed it."""
    client = app.test_client()
    demo = _bearer(client, "demo", "0000")
    services.issue_ticket(centre, service="A")
    ticket = client.post("/api/v1/counters/1/call-next", headers=demo).get_json()["ticket"]
    r = client.post(f"/api/v1/tickets/{ticket['id']}/recall", json={"counter": "999"}, headers=demo)
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "not_found"
    moved = client.post(f"/api/v1/tickets/{ticket['id']}/recall", json={"counter": "2"}, headers=demo)
    assert moved.status_code == 403 and moved.get_json()["error"]["code"] == "not_your_ticket"
    assert {x["counter"] for x in client.get("/api/v1/display").get_json()["now_serving"]} == {"1"}
    assert attendant.post("/counter/open", {"counter": "999"}, htmx=False).status_code == 404
    assert client.post("/api/v1/counters/999/call-next", headers=demo).status_code == 404


def test_a_supervisor_acts_anywhere_and_the_override_is_audited(app, centre, attendant, supervisor):
    """Supervisors can finish for an absent attendant; the audit chain says they overrode."""
    ticket = _called_at(centre, attendant, "1")
    client = app.test_client()
    r = client.post(f"/api/v1/tickets/{ticket['id']}/no-show", headers=_bearer(client, "super", "9999"))
    assert r.status_code == 200 and r.get_json()["ticket"]["state"] == "no_show"
    supervisor.post("/counter/open", {"counter": "2"})
    assert supervisor.post(f"/counter/2/tickets/{ticket['id']}/reactivate").status_code == 200
    assert centre.tickets.get(ticket["id"])["state"] == "waiting"
    overrides = [e for e in centre.store.all("audit") if e["action"] == "supervisor_override"]
    assert [(e["actor"], e["detail"]["action"], e["detail"]["ticket_counter"]) for e in overrides] == [
        ("super", "no_show", "1"), ("super", "reactivate", "1")]


def test_the_public_ticket_view_shows_no_staff_ids(app, centre, attendant):
    """Whoever holds a ticket id sees its history, but not who served it."""
    ticket = _called_at(centre, attendant, "1")
    client = app.test_client()
    public = client.get(f"/api/v1/tickets/{ticket['id']}").get_json()["ticket"]
    assert public["state"] == "called" and public["counter"] == "1"
    assert all("by" not in e for e in public["events"]) and "demo" not in str(public)
    staff_view = client.post(f"/api/v1/tickets/{ticket['id']}/recall", headers=_bearer(client, "demo", "0000"))
    assert staff_view.get_json()["ticket"]["events"][-1]["by"] == "demo"


def test_logout_frees_the_counters_held(centre, attendant, second):
    """Leaving frees the counter for a colleague (and the wait estimate counts it closed)."""
    attendant.post("/counter/open", {"counter": "1"})
    assert second.post("/counter/open", {"counter": "1"}, htmx=False).status_code == 409
    attendant.post("/staff/logout", htmx=False)
    assert second.post("/counter/open", {"counter": "1"}).status_code == 204
