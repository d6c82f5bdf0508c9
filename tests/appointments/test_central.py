"""Booking at central on SQLite and PostgreSQL: free slots, booking with a signed QR, every refusal
of the contract, cancelling, the phone number kept only for reminders, the rate limit, and 50
concurrent bookings of a slot of capacity 5 over real HTTP that yield exactly 5."""
from __future__ import annotations

import datetime as dt
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import func, select

from kiosk.domain import appointments as ap
from sync.central import receipts as central_receipts
from sync.central.models import Appointment, AppointmentSlot, ConfigChange, ConfigDoc
from tests.appointments.support import MONDAY_10, book, configure
from tests.sync.support import HttpServer


def slots(client, **query):
    """GET /api/v1/slots with the test's defaults."""
    return client.get("/api/v1/slots", query_string={"centre": "ERB-01", "service": "A", **query})


def feed_doc(app, code: str) -> dict | None:
    """The centre's feed document of a booking, as kiosks pull it."""
    with app.extensions["central"].engine.connect() as conn:
        return conn.execute(select(ConfigDoc.doc).where(ConfigDoc.centre == "ERB-01", ConfigDoc.tbl == "appointments",
                                                        ConfigDoc.key == code)).scalar()


def stored(app, code: str):
    """Central's row of a booking."""
    with app.extensions["central"].engine.connect() as conn:
        return conn.execute(select(Appointment).where(Appointment.code == code)).first()


def test_free_slots_of_a_day(bookable):
    client = bookable.test_client()
    monday = slots(client, date="2026-11-23")
    assert monday.status_code == 200
    found = monday.get_json()["slots"]
    assert len(found) == 20 and all(s["free"] == 5 for s in found)
    assert found[0] == {"start": "2026-11-23T05:00:00.000Z", "end": "2026-11-23T05:15:00.000Z", "free": 5}
    assert found[-1]["start"] == "2026-11-23T10:45:00.000Z"
    # today: 12:00 local, booking closes an hour before a slot: 13:15, 13:30 and 13:45 are left
    today = slots(client, date="2026-11-22").get_json()["slots"]
    assert [s["start"] for s in today] == ["2026-11-22T10:15:00.000Z", "2026-11-22T10:30:00.000Z",
                                           "2026-11-22T10:45:00.000Z"]
    for closed_day in ("2026-11-25", "2026-11-27", "2026-11-30", "2026-11-21"):  # holiday, Friday, too far, past
        assert slots(client, date=closed_day).get_json() == {"slots": []}
    assert slots(client, service="B", date="2026-11-23").get_json()["slots"][0]["start"] == "2026-11-23T06:00:00.000Z"


@pytest.mark.parametrize("query, status, field", [
    ({"service": "C"}, 404, None), ({"centre": "NOPE"}, 404, None), ({"date": "23/11/2026"}, 422, "date"),
    ({"date": ""}, 422, "date"), ({"extra": "1"}, 422, "extra"),
])
def test_slot_queries_that_are_refused(bookable, query, status, field):
    response = slots(bookable.test_client(), **{"date": "2026-11-23", **query})
    assert response.status_code == status
    error = response.get_json()["error"]
    assert error["code"] == ("not_found" if status == 404 else "validation_failed")
    if field:
        assert field in error["fields"]


def test_a_booking_has_a_code_a_signed_qr_and_reaches_the_centre_feed(bookable):
    client = bookable.test_client()
    response = book(client, phone="0750 123 4567")
    assert response.status_code == 201, response.get_json()
    made = response.get_json()["appointment"]
    assert set(made) == {"code", "centre", "service", "start", "end", "qr", "state"}
    assert made["centre"] == "ERB-01" and made["service"] == "A" and made["state"] == "booked"
    assert made["start"] == MONDAY_10 and made["end"] == "2026-11-23T07:15:00.000Z"
    assert ap.normalise_code(made["code"]) == made["code"]
    assert response.headers["Location"] == f"/api/v1/appointments/{made['code']}"
    with bookable.app_context(), bookable.extensions["central"].engine.connect() as conn:
        published = central_receipts.open_published(conn)
    signed = ap.verify(made["qr"], published)
    assert (signed.code, signed.centre, signed.service) == (made["code"], "ERB-01", "A")
    assert ap.receipts.iso(signed.start) == MONDAY_10
    doc = feed_doc(bookable, made["code"])
    assert doc == {"id": made["code"], "code": made["code"], "service": "A", "start_at": MONDAY_10,
                   "end_at": "2026-11-23T07:15:00.000Z", "state": "booked", "lang": "en",
                   "booked_at": "2026-11-22T09:00:00.000Z"}
    # reminders are off by default: the phone number is not kept at all
    assert stored(bookable, made["code"]).phone is None
    free = {s["start"]: s["free"] for s in slots(client, date="2026-11-23").get_json()["slots"]}
    assert free[MONDAY_10] == 4
    again = client.get(f"/api/v1/appointments/{ap.format_code(made['code']).lower()}")
    assert again.status_code == 200 and again.get_json() == {"appointment": made}


@pytest.mark.parametrize("fields, field", [
    ({"start": "2026-11-23T07:05:00.000Z"}, "start"),        # not a slot's start
    ({"start": "2026-11-22T10:00:00.000Z"}, "start"),        # today 13:00 closed at 12:00
    ({"start": "2026-12-03T07:00:00.000Z"}, "start"),        # beyond the bookable days
    ({"start": "2026-11-23 10:00"}, "start"),                # no zone
    ({"service": "C"}, "service"),
    ({"centre": "NOPE"}, "centre"),
    ({"lang": "fr"}, "lang"),
    ({"phone": "12"}, "phone"),
    ({"phone": "+964 750 abc 4567"}, "phone"),
    ({"colour": "blue"}, "colour"),
    ({"centre": 7}, "centre"),
])
def test_bookings_that_are_refused_name_the_field(bookable, fields, field):
    response = book(bookable.test_client(), **fields)
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["error"]["code"] == "validation_failed"
    assert field in response.get_json()["error"]["fields"]
    with bookable.extensions["central"].engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Appointment)).scalar() == 0


def test_malformed_bodies(bookable):
    client = bookable.test_client()
    assert client.post("/api/v1/appointments", data="{", content_type="application/json").status_code == 400
    assert client.post("/api/v1/appointments", json=[1]).status_code == 400
    assert client.post("/api/v1/appointments", data="centre=ERB-01").status_code == 415
    big = client.post("/api/v1/appointments", data=json.dumps({"centre": "x" * 5000}), content_type="application/json")
    assert big.status_code == 413 and big.get_json()["error"]["code"] == "payload_too_large"
    assert client.get("/api/v1/nothing-here").get_json()["error"]["code"] == "not_found"


def test_a_full_slot_is_refused(bookable):
    client = bookable.test_client()
    assert book(client, service="B", start="2026-11-23T06:00:00.000Z").status_code == 201
    full = book(client, service="B", start="2026-11-23T06:00:00.000Z")
    assert full.status_code == 409 and full.get_json()["error"]["code"] == "slot_full"
    assert slots(client, service="B", date="2026-11-23").get_json()["slots"][0]["free"] == 0


def test_cancelling_frees_the_place_and_the_kiosks_pull_it(bookable, server_clock):
    client = bookable.test_client()
    made = book(client, service="B", start="2026-11-23T06:00:00.000Z").get_json()["appointment"]
    cancelled = client.delete(f"/api/v1/appointments/{made['code']}")
    assert cancelled.status_code == 200
    assert cancelled.get_json()["appointment"] == {**made, "state": "cancelled"}
    assert feed_doc(bookable, made["code"])["state"] == "cancelled"
    assert client.delete(f"/api/v1/appointments/{made['code']}").get_json()["appointment"]["state"] == "cancelled"
    assert book(client, service="B", start="2026-11-23T06:00:00.000Z").status_code == 201  # the place is free again
    with bookable.extensions["central"].engine.connect() as conn:
        changes = conn.execute(select(ConfigChange.doc).where(ConfigChange.tbl == "appointments",
                                                              ConfigChange.key == made["code"])
                               .order_by(ConfigChange.seq)).scalars().all()
        assert [c["state"] for c in changes] == ["booked", "cancelled"]
        assert conn.execute(select(AppointmentSlot.booked)).scalar() == 1
    missing = client.delete("/api/v1/appointments/ZZZZZZZZ")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"
    assert client.delete("/api/v1/appointments/not-a-code").status_code == 404
    late = book(client).get_json()["appointment"]
    server_clock.set(MONDAY_10)
    refused = client.delete(f"/api/v1/appointments/{late['code']}")
    assert refused.status_code == 409 and refused.get_json()["error"]["code"] == "too_late"


def test_the_phone_number_is_kept_only_when_reminders_are_on(bookable):
    bookable.config["CENTRAL_SMS_NOTIFIER"] = "http"
    client = bookable.test_client()
    made = book(client, phone="+964 ٧٥٠ 123-4567").get_json()["appointment"]
    assert stored(bookable, made["code"]).phone == "+9647501234567"
    assert "phone" not in feed_doc(bookable, made["code"])
    assert "phone" not in client.get(f"/api/v1/appointments/{made['code']}").get_json()["appointment"]
    client.delete(f"/api/v1/appointments/{made['code']}")
    assert stored(bookable, made["code"]).phone is None


def test_public_requests_are_rate_limited_per_address(bookable, server_clock):
    bookable.config["CENTRAL_BOOKING_RATE_PER_MIN"] = 2
    client = bookable.test_client()
    assert book(client).status_code == 201
    assert book(client).status_code == 201
    limited = book(client)
    assert limited.status_code == 429 and limited.get_json()["error"]["code"] == "rate_limited"
    other = bookable.test_client()
    other.environ_base["REMOTE_ADDR"] = "10.0.0.9"
    assert book(other).status_code == 201
    for _ in range(2):
        client.get("/api/v1/appointments/ZZZZZZZZ")
    assert client.get("/api/v1/appointments/ZZZZZZZZ").status_code == 429  # guessing codes is limited too
    server_clock.advance(minutes=1)
    assert book(client).status_code == 201


def test_no_booking_until_the_booking_key_is_published(central_app, ops, tmp_path):
    central_app.config["CENTRAL_RECEIPTS_DIR"] = str(tmp_path / "central-receipts")
    ops.add_centre("ERB-01")
    configure(ops, tmp_path)
    client = central_app.test_client()
    assert book(client).get_json()["error"]["code"] == "not_configured"
    ops.cli("trust-root-create")
    ops.cli("trust-publish", "--verify-host", "v.example.iq")
    ops.cli("booking-key-create")
    refused = book(client)
    assert refused.status_code == 503 and refused.get_json()["error"]["code"] == "not_configured"
    ops.cli("trust-publish")
    assert book(client).status_code == 201
    assert book(client).get_json()["appointment"]["qr"].startswith("HTTPS://V.EXAMPLE.IQ/A#")


def test_the_booking_key_name_is_reserved(central_app, ops, tmp_path):
    central_app.config["CENTRAL_RECEIPTS_DIR"] = str(tmp_path / "central-receipts")
    result = central_app.test_cli_runner().invoke(args=["add-centre", ap.BOOKING_SIGNER, "Fake"])
    assert result.exit_code != 0 and "booking key" in result.output
    ops.add_centre("ERB-01")
    pem = tmp_path / "key.pem"
    from kiosk import keys
    pem.write_text(keys.create_root_key(tmp_path / "other.pem").public_pem(), encoding="ascii")
    result = central_app.test_cli_runner().invoke(args=["trust-enrol", ap.BOOKING_SIGNER, str(pem)])
    assert result.exit_code != 0 and "booking key" in result.output
    ops.cli("booking-key-create")
    again = central_app.test_cli_runner().invoke(args=["booking-key-create"])
    assert again.exit_code != 0 and "never replaced" in again.output


def test_malformed_appointment_settings_are_refused_by_config_load(central_app, ops, tmp_path):
    ops.add_centre("ERB-01")
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"settings": [{"id": "appointments", "services": {"A": {"hours": {"sun": ["9-5"]}}}}]}),
                    encoding="utf-8")
    result = central_app.test_cli_runner().invoke(args=["config-load", "ERB-01", str(path)])
    assert result.exit_code != 0 and "is not a range" in result.output


def test_fifty_concurrent_bookings_of_a_slot_of_five_yield_exactly_five(bookable):
    """Over real HTTP (16 server threads, 50 clients at once), on both databases."""
    bookable.config["CENTRAL_BOOKING_RATE_PER_MIN"] = 0
    server = HttpServer(bookable, threads=16)
    try:
        def one(n: int) -> int:
            with requests.post(f"{server.url}/api/v1/appointments", timeout=60, headers={"Connection": "close"},
                               json={"centre": "ERB-01", "service": "A", "start": MONDAY_10, "lang": "ar"}) as answer:
                return answer.status_code
        with ThreadPoolExecutor(max_workers=50) as pool:
            statuses = list(pool.map(one, range(50)))
    finally:
        server.stop()
    assert statuses.count(201) == 5 and statuses.count(409) == 45, statuses
    with bookable.extensions["central"].engine.connect() as conn:
        start = dt.datetime(2026, 11, 23, 7, tzinfo=dt.timezone.utc)
        assert conn.execute(select(func.count()).select_from(Appointment).where(
            Appointment.start_at == start, Appointment.state == "booked")).scalar() == 5
        assert conn.execute(select(AppointmentSlot.booked).where(AppointmentSlot.start_at == start)).scalar() == 5
        assert conn.execute(select(func.count()).select_from(ConfigDoc).where(ConfigDoc.tbl == "appointments")).scalar() == 5
