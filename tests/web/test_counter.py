"""The attendant console through the test client: open a counter, call next with the reason,
call a specific ticket, serve, transfer, no-show, hold, breaks, the printer and reprint."""
from __future__ import annotations

import html
import re

import pytest

from kiosk import services


def notice(response) -> str:
    """The console's status line after an action."""
    match = re.search(r'class="alert alert-ok" role="status">(.*?)</p>', response.get_data(as_text=True), re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", match.group(1))) if match else ""


def error(response) -> str:
    """The console's error line after an action."""
    match = re.search(r'class="alert alert-error" role="alert">(.*?)</p>', response.get_data(as_text=True), re.S)
    return html.unescape(match.group(1)) if match else ""


@pytest.fixture
def desk(attendant):
    """The attendant at counter 1, in English."""
    attendant.post("/lang", {"lang": "en", "next": "/counter"})
    assert attendant.post("/counter/open", {"counter": "1"}).headers["HX-Redirect"] == "/counter/1"
    return attendant


def test_choose_counter_then_console(attendant):
    """The first visit lists the counters; after choosing, /counter goes straight to the console."""
    page = attendant.get("/counter").get_data(as_text=True)
    assert page.count('name="counter"') == 3
    attendant.post("/counter/open", {"counter": "2"})
    assert attendant.get("/counter").headers["Location"] == "/counter/2"


def test_call_next_shows_the_reason(desk, centre, clock):
    """"priority (Over 65), waited 12 minutes": the rule and the wait, in the attendant's language."""
    services.issue_ticket(centre, service="A")
    services.issue_ticket(centre, service="A", priority="elderly")
    clock.advance(minutes=12)
    response = desk.post("/counter/1/call-next")
    assert notice(response) == "Called A-002: priority (Over 65), waited 12 minutes"
    assert "Why this ticket: priority (Over 65), waited 12 minutes" in response.get_data(as_text=True)
    assert "<html" not in response.get_data(as_text=True)  # the console block only


def test_reason_in_arabic(desk, centre, clock):
    """The same reason rendered in Arabic, with Arabic-Indic digits."""
    desk.post("/lang", {"lang": "ar", "next": "/counter/1"})
    services.issue_ticket(centre, service="A")
    clock.advance(minutes=12)
    assert notice(desk.post("/counter/1/call-next")) == "نُودي على A-001: التالية في الدور، انتظرت ١٢ دقيقة"


def test_nothing_waiting(desk):
    """An empty queue is said plainly."""
    assert notice(desk.post("/counter/1/call-next")) == "Nobody is waiting for this counter's services."


def test_serve_a_ticket_to_the_end(desk, centre, clock):
    """Call, recall, start, finish: the day's served count and average time follow."""
    services.issue_ticket(centre, service="C")
    desk.post("/counter/1/call-next")
    ticket = centre.store.all("tickets")[0]
    assert notice(desk.post(f"/counter/1/tickets/{ticket['id']}/recall")) == "Called C-001 again."
    assert notice(desk.post(f"/counter/1/tickets/{ticket['id']}/start")) == "Serving C-001."
    clock.advance(minutes=4)
    done = desk.post(f"/counter/1/tickets/{ticket['id']}/finish")
    assert notice(done) == "C-001 is finished."
    stats = desk.get("/counter/1/stats", htmx=True).get_data(as_text=True)
    assert 'id="served-count">1<' in stats and "4 minutes" in stats
    assert centre.store.get("tickets", ticket["id"])["state"] == "done"


def test_call_a_specific_ticket(desk, centre):
    """Any waiting ticket can be called from the list; the reason says it was chosen."""
    services.issue_ticket(centre, service="A")
    second = services.issue_ticket(centre, service="B")
    waiting = desk.get("/counter/1/waiting", htmx=True).get_data(as_text=True)
    assert "A-001" in waiting and "B-001" in waiting
    response = desk.post(f"/counter/1/tickets/{second['id']}/call")
    assert notice(response).startswith("Called B-001: chosen from the waiting list")
    assert centre.store.get("tickets", second["id"])["counter"] == "1"


def test_long_queue_shows_the_first_page_and_how_many_more(desk, centre, clock):
    """With 500 waiting the console lists the first 50 in call order and says how many more wait."""
    for n in range(500):
        services.issue_ticket(centre, service="ABC"[n % 3], priority="elderly" if n % 7 == 0 else "normal")
        clock.advance(seconds=1)
    expected = [t["number"] for t in services.waiting_list(centre, "1", limit=50).tickets]
    for page in (desk.get("/counter/1").get_data(as_text=True),
                 desk.get("/counter/1/waiting", htmx=True).get_data(as_text=True)):
        assert re.findall(r'<tr data-ticket="([^"]+)"', page) == expected
        assert re.search(r'id="waiting-total">500<', page)
        assert "450 more tickets are waiting after these." in page
    assert expected[:4] == ["A-001", "B-003", "B-001", "C-005"], "two priority calls (every seventh), a normal one, ..."
    desk.post("/lang", {"lang": "ar", "next": "/counter/1"})
    page = desk.get("/counter/1/waiting", htmx=True).get_data(as_text=True)
    assert "٤٥٠ تذكرةً أخرى بالانتظار بعد هذه." in page and re.search(r'id="waiting-total">٥٠٠<', page)


def test_short_queue_has_no_more_line(desk, centre):
    """Everyone fits on the page: no "more" line."""
    services.issue_ticket(centre, service="A")
    page = desk.get("/counter/1/waiting", htmx=True).get_data(as_text=True)
    assert 'id="waiting-more"' not in page and re.search(r'id="waiting-total">1<', page)


def test_transfer_keeps_the_arrival(desk, centre, clock):
    """A transferred citizen gets a number in the other service and keeps their place by arrival."""
    first = services.issue_ticket(centre, service="A")
    clock.advance(minutes=5)
    services.issue_ticket(centre, service="B")
    desk.post("/counter/1/call-next")
    response = desk.post(f"/counter/1/tickets/{first['id']}/transfer", {"service": "B"})
    assert notice(response) == "A-001 transferred to Compensation claims as B-002."
    new = next(t for t in centre.store.all("tickets") if t["number"] == "B-002")
    assert new["arrival_at"] == first["issued_at"] and new["state"] == "waiting"
    waiting = desk.get("/counter/1/waiting", htmx=True).get_data(as_text=True)
    assert waiting.index("B-002") < waiting.index("B-001")


def test_no_show_then_back_in_the_queue(desk, centre):
    """A citizen who does not come is parked; when they turn up they go back in the queue."""
    ticket = services.issue_ticket(centre, service="A")
    desk.post("/counter/1/call-next")
    gone = desk.post(f"/counter/1/tickets/{ticket['id']}/no-show")
    assert notice(gone) == "A-001 did not come: marked as not present."
    assert 'id="parked"' in gone.get_data(as_text=True)
    back = desk.post(f"/counter/1/tickets/{ticket['id']}/reactivate")
    assert notice(back) == "A-001 is back in the queue."
    assert centre.store.get("tickets", ticket["id"])["state"] == "waiting"


def test_hold_and_requeue(desk, centre):
    """A ticket put on hold can be sent back to the queue."""
    ticket = services.issue_ticket(centre, service="A")
    desk.post("/counter/1/call-next")
    assert notice(desk.post(f"/counter/1/tickets/{ticket['id']}/hold")) == "A-001 is on hold."
    assert notice(desk.post(f"/counter/1/tickets/{ticket['id']}/requeue")) == "A-001 is back in the queue."


def test_refused_action_is_explained(desk, centre):
    """Finishing a ticket that was not started: an error line (htmx) or a 409 page (no JavaScript)."""
    ticket = services.issue_ticket(centre, service="A")
    desk.post("/counter/1/call-next")
    response = desk.post(f"/counter/1/tickets/{ticket['id']}/finish")
    assert response.status_code == 200
    assert error(response) == "This is not possible for the ticket in its current state."
    assert desk.post(f"/counter/1/tickets/{ticket['id']}/finish", htmx=False).status_code == 409
    assert desk.post(f"/counter/1/tickets/{ticket['id']}/dance").status_code == 200
    assert centre.store.get("tickets", ticket["id"])["state"] == "called"


def test_break_stops_calls(desk, centre):
    """On a break the counter calls nobody; back from the break it does."""
    services.issue_ticket(centre, service="A")
    on_break = desk.post("/counter/1/status", {"status": "break"})
    assert notice(on_break) == "You are on a break. The counter takes no calls."
    assert 'id="call-next" disabled' in on_break.get_data(as_text=True)
    assert error(desk.post("/counter/1/call-next")) == "Open the counter before calling tickets."
    desk.post("/counter/1/status", {"status": "open"})
    assert notice(desk.post("/counter/1/call-next")).startswith("Called A-001")
    assert error(desk.post("/counter/1/status", {"status": "lunch"})) == "Some values are not valid."


def test_logout_closes_the_counter(desk, centre):
    """The wait estimate counts open counters, so leaving closes the counter."""
    desk.post("/staff/logout")
    assert next(k for k in services.counters_list(centre) if k["id"] == "1")["status"] == "closed"
    assert desk.get("/counter").status_code == 303


def test_without_printer_the_console_says_preview(desk):
    """No printer configured: the console says tickets are shown on screen; no reprint button."""
    page = desk.get("/counter/1").get_data(as_text=True)
    assert 'data-state="none"' in page and "No printer configured" in page
    assert 'data-action="reprint"' not in page


class RecordingPrinter:
    """A printer at the hardware edge: records jobs, reports a fixed status."""

    def __init__(self, state="online", can_reprint=True):
        """Start empty."""
        self.state = state
        self.printed: list[tuple[str, str]] = []
        if can_reprint:
            self.reprint = self._reprint

    def print_ticket(self, ticket, service, priority_names=None):
        """Accept a job."""
        self.printed.append(("print", ticket["number"]))
        return f"job-{len(self.printed)}"

    def _reprint(self, ticket, service, priority_names=None):
        """Accept a reprint."""
        self.printed.append(("reprint", ticket["number"]))
        return f"job-{len(self.printed)}"

    def status(self):
        """The configured status."""
        return {"state": self.state, "pending": 2, "last_error": None, "checked_at": "2026-11-22T06:00:00.000Z"}


@pytest.fixture
def printer_app(app_config, clock):
    """The app with a recording printer."""
    from kiosk import create_app
    printer = RecordingPrinter(state="paper_low")
    application = create_app(app_config, clock=clock, printer=printer)
    with application.app_context():
        services.load_demo_data(application.extensions["kiosk"].centre)
    yield application, printer
    application.extensions["kiosk"].close()


def test_reprint_and_printer_status(printer_app):
    """With a printer that can reprint, the console shows its status and reprints on request."""
    from tests.web.conftest import Staff
    application, printer = printer_app
    centre = application.extensions["kiosk"].centre
    staff = Staff(application.test_client())
    staff.post("/lang", {"lang": "en", "next": "/counter"})
    staff.post("/counter/open", {"counter": "1"})
    services.issue_ticket(centre, service="A")
    page = staff.post("/counter/1/call-next").get_data(as_text=True)
    assert 'data-state="paper_low"' in page and "Paper is running low." in page
    assert "2 tickets waiting to print" in page
    ticket = centre.store.all("tickets")[0]
    response = staff.post(f"/counter/1/tickets/{ticket['id']}/reprint")
    assert notice(response) == "Ticket A-001 sent to the printer again."
    assert printer.printed == [("print", "A-001"), ("reprint", "A-001")]


def test_no_reprint_button_without_reprint(printer_app):
    """A printer object without `reprint` gets no button, and a forged request is refused."""
    from tests.web.conftest import Staff
    application, printer = printer_app
    del printer.reprint
    centre = application.extensions["kiosk"].centre
    staff = Staff(application.test_client())
    staff.post("/lang", {"lang": "en", "next": "/counter"})
    staff.post("/counter/open", {"counter": "1"})
    services.issue_ticket(centre, service="A")
    page = staff.post("/counter/1/call-next").get_data(as_text=True)
    assert 'data-action="reprint"' not in page
    ticket = centre.store.all("tickets")[0]
    assert error(staff.post(f"/counter/1/tickets/{ticket['id']}/reprint")) == "This printer cannot reprint."
