"""Check-in at the kiosk, offline: a pulled booking by its typed code, a booking QR verified
against the accepted trust list (even one made after the last sync), every refusal of the
contract, the ticket marked as an appointment and called first at its slot, the day's list with
no-shows, the check-in screen in three languages (test client) and the index after a restart."""
from __future__ import annotations

import datetime as dt

import pytest

from kiosk import keys, services
from kiosk.clock import iso
from kiosk.store import Store
from kiosk.usecases import appointments as usecase
from tests.appointments.support import SLOT
from tests.store.test_queue import check_index
from tests.web.conftest import Staff, csrf_from

def check_in(client, code: str, **extra):
    """POST /api/v1/appointments/check-in."""
    return client.post("/api/v1/appointments/check-in", json={"code": code, **extra})


def test_a_typed_code_checks_in_once(booked, client, centre):
    booked.pull("K7M2Q9XD")
    response = check_in(client, "k7m2-q9xd", lang="en")
    assert response.status_code == 201, response.get_json()
    ticket = response.get_json()["ticket"]
    assert ticket["appointment"] == "K7M2Q9XD" and ticket["slot_start_at"] == iso(SLOT)
    assert ticket["number"] == "A-001" and ticket["state"] == "waiting" and ticket["lang"] == "en"
    assert response.headers["Location"] == f"/api/v1/tickets/{ticket['id']}"
    again = check_in(client, "K7M2Q9XD")
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "already_checked_in"
    assert "A-001" in again.get_json()["error"]["message"]


def test_a_scanned_qr_checks_in_even_a_booking_made_after_the_last_sync(booked, client):
    response = check_in(client, booked.qr("AB12CD34") + "\r\n")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["ticket"]["appointment"] == "AB12CD34"
    assert check_in(client, "AB12CD34").status_code == 404  # typed: only pulled bookings are known by code
    assert check_in(client, booked.qr("AB12CD34").lower()).get_json()["error"]["code"] == "already_checked_in"


def test_cancelled_bookings_refuse_check_in(booked, client):
    booked.pull("CANCE11D", state="cancelled")
    for text in ("CANCE11D", booked.qr("CANCE11D")):
        refused = check_in(client, text)
        assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "cancelled"


@pytest.mark.parametrize("minutes, code", [(-31, "too_early"), (16, "too_late")])
def test_too_early_and_too_late(booked, client, clock, minutes, code):
    booked.pull("T1ME0FF5")
    clock.set(SLOT + dt.timedelta(minutes=minutes))
    refused = check_in(client, "T1ME0FF5")
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == code
    clock.set(SLOT + dt.timedelta(minutes=-30 if code == "too_early" else 15))
    assert check_in(client, "T1ME0FF5").status_code == 201


def test_what_is_not_a_booking_here_is_not_found(booked, client, tmp_path):
    forger = keys.create_key_file(tmp_path / "forger.pem")
    for text in ("ZZZZZZZZ", "hello", booked.qr("AB12CD34", key=forger), booked.qr("AB12CD34", centre="ERB-02"),
                 booked.qr("AB12CD34")[:-3], "ٍسشيبلا"):
        refused = check_in(client, text)
        assert refused.status_code == 404, (text, refused.get_json())
        assert refused.get_json()["error"]["code"] in ("not_found", "scanner_layout")


def test_the_check_in_body_is_checked(booked, client):
    assert client.post("/api/v1/appointments/check-in", json={}).status_code == 422
    assert client.post("/api/v1/appointments/check-in", json={"code": 7}).status_code == 400
    assert client.post("/api/v1/appointments/check-in", json={"code": "x", "colour": "red"}).status_code == 422
    assert check_in(client, "K7M2Q9XD", lang="fr").status_code == 422


def test_a_booking_is_honoured_when_the_service_is_off(booked, client, centre):
    booked.pull("K7M2Q9XD")
    services.update_service(centre, "A", by="super", active=False)
    assert client.post("/api/v1/tickets", json={"service": "A"}).status_code == 409
    assert check_in(client, "K7M2Q9XD").status_code == 201


def test_checked_in_at_the_slot_it_is_called_first(booked, centre, clock):
    booked.pull("F1RST000")
    walk_in = services.issue_ticket(centre, service="A")
    clock.set(SLOT - dt.timedelta(minutes=10))
    ticket = usecase.check_in(centre, "F1RST000")
    # before its slot it waits behind everybody: the walk-in goes first if called now
    assert ticket["ahead"] == 1
    services.set_counter_status(centre, "1", "open", by="demo")
    clock.set(SLOT + dt.timedelta(seconds=1))
    assert services.get_ticket(centre, ticket["id"])["ahead"] == 0
    assert services.get_ticket(centre, walk_in["id"])["ahead"] == 1
    page = services.waiting_list(centre, "1")
    assert [(t["number"], t["rule"]) for t in page.tickets] == [(ticket["number"], "appointment"),
                                                                (walk_in["number"], "next")]
    check_index(centre)
    called, reason, rule = services.call_next(centre, counter="1", by="demo")
    assert called["id"] == ticket["id"] and rule == "appointment"
    assert reason == "appointment whose slot has started, waited 0 min"
    assert services.display_state(centre)["now_serving"][0]["appointment"] is True


def test_the_day_list_shows_checked_in_no_shows_and_cancellations(booked, centre, clock):
    booked.pull("AAAA0001")
    booked.pull("AAAA0002")
    booked.pull("AAAA0003", state="cancelled")
    booked.pull("AAAA0004", SLOT + dt.timedelta(days=1))
    usecase.check_in(centre, "AAAA0001")
    states = {b["id"]: b["state_now"] for b in usecase.day_bookings(centre)}
    assert states == {"AAAA0001": "checked_in", "AAAA0002": "booked", "AAAA0003": "cancelled"}
    clock.set(SLOT + dt.timedelta(minutes=16))
    listed = usecase.day_bookings(centre)
    assert {b["id"]: b["state_now"] for b in listed}["AAAA0002"] == "no_show"
    assert [b["ticket"] for b in listed] == ["A-001", None, None]


def test_the_index_remembers_check_ins_after_a_restart(booked, centre):
    booked.pull("RE5TART0")
    usecase.check_in(centre, "RE5TART0")
    centre.store.close()
    again = services.Centre(store=Store(centre.store.data_dir, clock=centre.clock), clock=centre.clock,
                            events=centre.events, config=centre.config)
    try:
        assert again.tickets.ticket_of_appointment("RE5TART0")["number"] == "A-001"
        check_index(again)
    finally:
        again.store.close()


# -- the screens (test client) ---------------------------------------------------------------------

def start_visit(client, lang: str) -> str:
    """Choose a language at the touchscreen; the check-in page's CSRF token."""
    page = client.get("/kiosk")
    client.post("/kiosk/lang", data={"lang": lang, "csrf_token": csrf_from(page.get_data(as_text=True))})
    services_page = client.get("/kiosk/services").get_data(as_text=True)
    assert 'id="appointment-entry"' in services_page
    return csrf_from(client.get("/kiosk/appointment").get_data(as_text=True))


WORDS = {
    "en": {"title": "Check in for your appointment", "checked": "You are checked in",
           "early": "Please come back from", "cancelled": "This appointment was cancelled."},
    "ar": {"title": "تسجيل الحضور لموعدك", "checked": "تم تسجيل حضورك", "early": "يرجى العودة من الساعة",
           "cancelled": "تم إلغاء هذا الموعد."},
    "ckb": {"title": "ئامادەبوون بۆ چاوپێکەوتنەکەت تۆمار بکە", "checked": "ئامادەبوونت تۆمار کرا",
            "early": "تکایە لە کاتژمێر", "cancelled": "ئەم چاوپێکەوتنە هەڵوەشێنرایەوە."},
}


@pytest.mark.parametrize("lang", ["ar", "ckb", "en"])
def test_the_check_in_screen_answers_in_the_citizens_language(booked, client, clock, lang):
    booked.pull("AAAA0001")
    booked.pull("AAAA0002", SLOT + dt.timedelta(hours=3))
    booked.pull("AAAA0003", state="cancelled")
    token = start_visit(client, lang)
    form = client.get("/kiosk/appointment").get_data(as_text=True)
    assert WORDS[lang]["title"] in form and 'autofocus' in form and 'data-key="back"' in form
    early = client.post("/kiosk/appointment", data={"code": "AAAA0002", "csrf_token": token},
                        headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'data-refusal="too_early"' in early and WORDS[lang]["early"] in early
    assert ("11:45" if lang == "en" else "١١:٤٥") in early
    cancelled = client.post("/kiosk/appointment", data={"code": "AAAA0003", "csrf_token": token})
    assert cancelled.status_code == 409 and WORDS[lang]["cancelled"] in cancelled.get_data(as_text=True)
    done = client.post("/kiosk/appointment", data={"code": "aaaa-0001", "csrf_token": token},
                       headers={"HX-Request": "true"}).get_data(as_text=True)
    assert WORDS[lang]["checked"] in done and 'id="appointment-mark"' in done and "A-001" in done
    late = client.post("/kiosk/appointment", data={"code": "AAAA0001", "csrf_token": token},
                       headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'data-refusal="already_checked_in"' in late and "A-001" in late
    clock.set(SLOT + dt.timedelta(hours=4))
    too_late = client.post("/kiosk/appointment", data={"code": "AAAA0002", "csrf_token": token},
                           headers={"HX-Request": "true"}).get_data(as_text=True)
    assert 'data-refusal="too_late"' in too_late and 'id="walk-in"' in too_late


def test_the_check_in_screen_needs_a_language_and_a_form_token(booked, client):
    assert client.get("/kiosk/appointment").status_code in (303, 204)
    start_visit(client, "en")
    assert client.post("/kiosk/appointment", data={"code": "AAAA0001"}).status_code == 400


def test_staff_see_the_day_s_appointments(booked, app, centre):
    booked.pull("AAAA0001")
    booked.pull("AAAA0002", state="cancelled")
    usecase.check_in(centre, "AAAA0001")
    assert app.test_client().get("/appointments").status_code in (302, 303)
    staff = Staff(app.test_client())
    page = staff.get("/appointments").get_data(as_text=True)
    assert 'data-code="AAAA0001" data-state="checked_in"' in page and "A-001" in page
    assert 'data-code="AAAA0002" data-state="cancelled"' in page and "AAAA-0002" in page


@pytest.mark.parametrize("lang, slot, called", [("en", "Appointment at 09:15", "You will be called from 09:15"),
                                                ("ar", "موعد الساعة ٠٩:١٥", "سيتم نداؤك ابتداءً من الساعة ٠٩:١٥")])
def test_the_printed_ticket_says_when_the_appointment_is(booked, app, centre, lang, slot, called):
    from zoneinfo import ZoneInfo

    from kiosk.slips import ticket_slip
    booked.pull("PR1NT000")
    ticket = usecase.check_in(centre, "PR1NT000", lang=lang)
    with app.app_context():
        printed = ticket_slip(ticket, services.get_service(centre, "A"), centre_names=app.config["CENTRE_NAMES"],
                              tz=ZoneInfo("Asia/Baghdad"))
    assert printed.priority_text == slot and printed.ahead_text.startswith(called) and printed.wait_text == ""
