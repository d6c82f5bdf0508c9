"""SMS reminders on SQLite and PostgreSQL against a local double of an HTTP gateway: one message
per booking in its language when it is due, the number erased once used (or no longer needed), a
refused message tried again by the next run, the gateway's field names and form encoding, a
notifier of one's own, and nothing kept or sent while reminders are off (the default)."""
from __future__ import annotations

import json
import threading
import urllib.parse

import pytest
from sqlalchemy import select

from kiosk.domain import appointments as ap
from sync.central.models import Appointment
from tests.appointments.support import MONDAY_10, book
from tests.conftest import WsgiServer

TUESDAY_10 = "2026-11-24T07:00:00.000Z"
SENT: list[tuple[str, str]] = []


class Gateway:
    """A local double of an SMS gateway: records every request and answers with `status`."""

    def __init__(self):
        """No messages yet; accepting."""
        self.requests: list[dict] = []
        self.status = "200 OK"
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        """Record the request, answer."""
        length = int(environ.get("CONTENT_LENGTH") or 0)
        with self.lock:
            self.requests.append({"path": environ["PATH_INFO"], "type": environ.get("CONTENT_TYPE", ""),
                                  "authorization": environ.get("HTTP_AUTHORIZATION"),
                                  "body": environ["wsgi.input"].read(length).decode("utf-8")})
        start_response(self.status, [("Content-Type", "application/json")])
        return [b'{"accepted": true}']


@pytest.fixture
def gateway():
    """The gateway double served on a loopback port."""
    double = Gateway()
    server = WsgiServer(double, threads=2)
    double.url = f"{server.url}/sms/send"
    yield double
    server.stop()


@pytest.fixture
def reminding(bookable, gateway):
    """Central with reminders through the gateway double."""
    bookable.config.update(CENTRAL_SMS_NOTIFIER="http", CENTRAL_SMS_URL=gateway.url,
                           CENTRAL_SMS_AUTHORIZATION="Bearer test-token", CENTRAL_SMS_EXTRA='{"sender": "MoI"}')
    return bookable


def rows(app) -> dict[str, object]:
    """Central's bookings by code."""
    with app.extensions["central"].engine.connect() as conn:
        return {row.code: row for row in conn.execute(select(Appointment))}


def remind(app, *, ok: bool = True) -> str:
    """Run `flask --app sync.central appointments-remind`."""
    result = app.test_cli_runner().invoke(args=["appointments-remind"])
    assert (result.exit_code == 0) == ok, result.output
    return result.output


def test_due_reminders_go_out_in_the_booking_language_and_the_number_is_erased(reminding, gateway):
    client = reminding.test_client()
    english = book(client, phone="+964 750 111 2222").get_json()["appointment"]
    arabic = book(client, lang="ar", phone="07502223333").get_json()["appointment"]
    later = book(client, start=TUESDAY_10, phone="07503334444").get_json()["appointment"]
    cancelled = book(client, lang="ckb", phone="07504445555").get_json()["appointment"]
    client.delete(f"/api/v1/appointments/{cancelled['code']}")
    output = remind(reminding)
    assert "2 reminder(s) sent, 0 failed" in output
    sent = {json.loads(r["body"])["to"]: json.loads(r["body"]) for r in gateway.requests}
    assert set(sent) == {"+9647501112222", "07502223333"}
    assert all(r["authorization"] == "Bearer test-token" and r["type"] == "application/json" for r in gateway.requests)
    assert sent["+9647501112222"]["sender"] == "MoI"
    text = sent["+9647501112222"]["text"]
    assert text.startswith("Reminder: your appointment at Erbil public service centre is on Monday 23 November 2026")
    assert "at 10:00" in text and ap.format_code(english["code"]) in text
    arabic_text = sent["07502223333"]["text"]
    assert arabic_text.startswith("تذكير: موعدك في") and "١٠:٠٠" in arabic_text
    assert ap.format_code(arabic["code"]) in arabic_text
    stored = rows(reminding)
    assert stored[english["code"]].phone is None and stored[english["code"]].reminded_at is not None
    assert stored[later["code"]].phone == "07503334444" and stored[later["code"]].reminded_at is None
    assert stored[cancelled["code"]].phone is None
    assert "0 reminder(s) sent" in remind(reminding) and len(gateway.requests) == 2  # once only


def test_a_refused_message_is_tried_again_by_the_next_run(reminding, gateway, server_clock):
    made = book(reminding.test_client(), phone="07501112222").get_json()["appointment"]
    gateway.status = "503 Service Unavailable"
    assert "1 failed" in remind(reminding, ok=False)
    assert rows(reminding)[made["code"]].phone == "07501112222"
    gateway.status = "200 OK"
    assert "1 reminder(s) sent" in remind(reminding)
    server_clock.set(MONDAY_10)
    assert rows(reminding)[made["code"]].phone is None


def test_numbers_of_past_slots_are_erased_unsent(reminding, gateway, server_clock):
    made = book(reminding.test_client(), start="2026-11-22T10:45:00.000Z", phone="07501112222").get_json()
    gateway.status = "500 Internal Server Error"
    remind(reminding, ok=False)
    server_clock.set("2026-11-22T10:45:00Z")
    assert "1 phone number(s) no longer needed erased" in remind(reminding)
    assert rows(reminding)[made["appointment"]["code"]].phone is None


def test_a_form_posting_gateway_with_its_own_field_names(reminding, gateway):
    reminding.config.update(CENTRAL_SMS_FORMAT="form", CENTRAL_SMS_TO_FIELD="msisdn", CENTRAL_SMS_TEXT_FIELD="message",
                            CENTRAL_SMS_EXTRA="{}")
    book(reminding.test_client(), lang="ckb", phone="07501112222")
    remind(reminding)
    [request] = gateway.requests
    assert request["type"] == "application/x-www-form-urlencoded"
    fields = urllib.parse.parse_qs(request["body"])
    assert fields["msisdn"] == ["07501112222"] and fields["message"][0].startswith("بیرخستنەوە:")


def recorder(config):
    """A notifier of one's own (CENTRAL_SMS_NOTIFIER=package.module:factory)."""
    class Recorder:
        def send(self, phone, text):
            SENT.append((phone, text))
    return Recorder()


def test_a_notifier_of_ones_own(bookable):
    SENT.clear()
    bookable.config["CENTRAL_SMS_NOTIFIER"] = "tests.appointments.test_reminders:recorder"
    book(bookable.test_client(), phone="07501112222")
    remind(bookable)
    assert [phone for phone, _ in SENT] == ["07501112222"]


def test_reminders_are_off_by_default(bookable, gateway):
    assert bookable.config["CENTRAL_SMS_NOTIFIER"] == "off"
    made = book(bookable.test_client(), phone="07501112222").get_json()["appointment"]
    assert rows(bookable)[made["code"]].phone is None
    assert "reminders are off" in remind(bookable)
    assert gateway.requests == []


@pytest.mark.parametrize("setting, value", [("CENTRAL_SMS_URL", "ftp://gateway"), ("CENTRAL_SMS_EXTRA", "[1]"),
                                            ("CENTRAL_SMS_NOTIFIER", "nonsense")])
def test_a_misconfigured_notifier_is_reported(reminding, setting, value):
    reminding.config[setting] = value
    assert "misconfigured" in remind(reminding, ok=False)


def test_past_bookings_leave_the_feed_a_month_after_their_slot(bookable, server_clock):
    from sync.central.models import ConfigChange, ConfigDoc
    made = book(bookable.test_client()).get_json()["appointment"]
    server_clock.set("2026-12-23T07:14:00Z")  # 30 days after the slot ended, less a minute
    assert "removed" not in remind(bookable)
    server_clock.set("2026-12-23T07:16:00Z")
    assert "1 past booking(s) removed from the centres' feeds" in remind(bookable)
    with bookable.extensions["central"].engine.connect() as conn:
        assert conn.execute(select(ConfigDoc.deleted).where(ConfigDoc.key == made["code"])).scalar() is True
        ops = conn.execute(select(ConfigChange.op).where(ConfigChange.key == made["code"])
                           .order_by(ConfigChange.seq)).scalars().all()
    assert ops == ["put", "del"]
    assert rows(bookable)[made["code"]].state == "booked"  # central keeps its own row
    assert "removed" not in remind(bookable)
