"""The event streams: ping first, kebab-case events, heartbeats, bounded queues, display events
stripped to numbers and counters with the clips to announce them, staff stream behind login."""
from __future__ import annotations

import json

import pytest

from kiosk import services
from kiosk.web.sse import format_event


class Stream:
    """Reads an event stream answer chunk by chunk."""

    def __init__(self, response):
        """Wrap a streaming test response."""
        assert response.status_code == 200
        assert response.mimetype == "text/event-stream"
        assert response.headers["Cache-Control"] == "no-store"
        self.response = response
        self.chunks = iter(response.response)

    def next(self) -> str:
        """The next chunk (one event or heartbeat)."""
        chunk = next(self.chunks)
        return chunk.decode() if isinstance(chunk, bytes) else chunk

    def next_event(self) -> tuple[str, dict]:
        """The next named event, skipping heartbeats."""
        while True:
            chunk = self.next()
            if chunk.startswith(":"):
                continue
            lines = dict(line.split(": ", 1) for line in chunk.strip().splitlines() if not line.startswith("retry"))
            return lines["event"], json.loads(lines["data"])

    def close(self):
        """Stop reading (the server unsubscribes)."""
        self.response.close()


def test_ping_first_then_events(client, app):
    """The stream opens with a ping (and a reconnection delay), then forwards queue changes."""
    stream = Stream(client.get("/events/display", buffered=False))
    first = stream.next()
    assert first.startswith("retry: 1000\nevent: ping\n")
    events = app.extensions["kiosk"].events
    assert events.subscribers == 1
    events.publish("queue-changed", {"service": "A"})
    assert stream.next_event() == ("queue-changed", {})
    stream.close()
    assert events.subscribers == 0


def test_heartbeat_when_quiet(client):
    """A comment line keeps the connection alive and reveals closed clients."""
    stream = Stream(client.get("/events/display", buffered=False))
    stream.next()
    assert stream.next() == ": heartbeat\n\n"
    stream.close()


def test_display_events_carry_no_personal_data_and_the_clips(client, centre, app):
    """ticket-called on the display: number, counter and the static URLs of the announcement."""
    ticket = services.issue_ticket(centre, service="A", lang="en")
    stream = Stream(client.get("/events/display", buffered=False))
    stream.next()
    services.call_ticket(centre, ticket["id"], counter="2", by="demo")
    name, data = stream.next_event()
    assert name == "queue-changed"
    name, data = stream.next_event()
    assert name == "ticket-called"
    assert set(data) == {"number", "counter", "clips"}
    assert data["number"] == "A-001" and data["counter"] == "2"
    assert data["clips"][0].startswith("/static/sounds/chime.wav?v=")
    assert [c.split("?")[0].rsplit("/", 1)[1] for c in data["clips"][1:]] == [
        "ticket.wav", "letter_A.wav", "n1.wav", "counter.wav", "n2.wav"]
    for url in data["clips"]:
        with client.get(url) as clip:
            assert clip.status_code == 200 and clip.mimetype in ("audio/wav", "audio/x-wav")
    stream.close()


def test_sorani_call_plays_the_chime_only(client, centre):
    """No Sorani voice yet: the chime, and the number on screen."""
    ticket = services.issue_ticket(centre, service="B", lang="ckb")
    stream = Stream(client.get("/events/display", buffered=False))
    stream.next()
    services.call_ticket(centre, ticket["id"], counter="1", by="demo")
    stream.next_event()
    name, data = stream.next_event()
    assert name == "ticket-called" and len(data["clips"]) == 1 and "chime" in data["clips"][0]
    stream.close()


def test_a_client_that_falls_behind_is_dropped(client, app):
    """The broker's bounded queue: a stalled client's stream ends instead of slowing publishers."""
    stream = Stream(client.get("/events/display", buffered=False))
    stream.next()
    events = app.extensions["kiosk"].events
    for _ in range(events.maxsize + 5):
        events.publish("queue-changed", {})
    assert events.subscribers == 0
    received = 0
    with pytest.raises(StopIteration):
        while True:
            stream.next_event()
            received += 1
    assert received < events.maxsize + 5


def test_stream_ends_after_its_lifetime(app, client):
    """Streams end after SSE_MAX_AGE_S, so browsers reconnect and sessions are checked again."""
    app.config["SSE_MAX_AGE_S"] = 0.3
    stream = Stream(client.get("/events/display", buffered=False))
    stream.next()
    with pytest.raises(StopIteration):
        while True:
            stream.next()


def test_staff_stream_needs_a_login(client, attendant):
    """Anonymous clients are refused; a logged-in attendant gets queue changes and calls."""
    assert client.application.test_client().get("/events/staff").status_code == 303
    stream = Stream(attendant.client.get("/events/staff", buffered=False))
    assert "event: ping" in stream.next()
    stream.close()


def test_event_names_are_kebab_case():
    """Names like queueChanged or queue_changed are refused."""
    assert format_event("queue-changed", {"a": 1}) == 'event: queue-changed\ndata: {"a":1}\n\n'
    for bad in ("queueChanged", "queue_changed", "Queue", "", "a--b"):
        with pytest.raises(ValueError):
            format_event(bad, {})
