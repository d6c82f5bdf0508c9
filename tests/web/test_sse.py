"""The event streams, over real HTTP from the kiosk's production server: ping first, kebab-case
events, heartbeats, coalesced queue changes, display events stripped to numbers and counters with
the clips to announce them, a phone following its ticket, the staff stream behind login, and open
streams that hold no worker thread."""
from __future__ import annotations

import asyncio
import io
import json
import socket
import threading
import time
import urllib.request
import wave
from urllib.parse import urlsplit

import pytest
import requests

from kiosk import services
from kiosk.web.server import ServerThread
from kiosk.web.streams import Channel, Client, StreamHub, format_event


@pytest.fixture(autouse=True)
def _close_streams():
    """No socket outlives its test (an unclosed one would fail a later test with a ResourceWarning)."""
    yield
    while Stream.opened:
        Stream.opened.pop().close()


# How long a step may take before the test gives up: generous, because the suite also runs on a
# loaded machine; none of these tests measures speed.
PATIENCE = 30.0


class Stream:
    """One event stream read from a raw socket, message by message."""

    opened: list[Stream] = []  # closed after each test, even one that failed halfway

    def __init__(self, url: str, path: str, cookie: str | None = None, timeout: float = PATIENCE):
        """Open the stream and check its answer's head."""
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
        Stream.opened.append(self)
        headers = f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nAccept: text/event-stream\r\n"
        if cookie:
            headers += f"Cookie: session={cookie}\r\n"
        self.sock.sendall((headers + "\r\n").encode())
        self.buffer = b""
        head = self._until(b"\r\n\r\n")
        self.status = int(head.split(b" ", 2)[1])
        self.headers = head.decode("latin-1").lower()
        self.chunked = "transfer-encoding: chunked" in self.headers

    def _fill(self) -> None:
        """Read more bytes (raises on timeout, EOFError when the server closed)."""
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("the server closed the stream")
        self.buffer += data

    def _until(self, marker: bytes) -> bytes:
        """Bytes up to a marker (consumed with it)."""
        while marker not in self.buffer:
            self._fill()
        head, self.buffer = self.buffer.split(marker, 1)
        return head

    def _payload(self) -> str:
        """The stream's text so far, without chunk framing."""
        if not self.chunked:
            return self.buffer.decode()
        out, rest = b"", self.buffer
        while b"\r\n" in rest:
            size_line, after = rest.split(b"\r\n", 1)
            size = int(size_line, 16)
            if len(after) < size + 2:
                break
            out += after[:size]
            rest = after[size + 2:]
        return out.decode()

    def messages(self, n: int = 1) -> list[str]:
        """The next `n` messages (events or heartbeat comments), raw."""
        while True:
            parts = self._payload().split("\n\n")
            if len(parts) - 1 >= n + getattr(self, "_taken", 0):
                taken = getattr(self, "_taken", 0)
                self._taken = taken + n
                return parts[taken:taken + n]
            self._fill()

    def next_event(self) -> tuple[str, dict]:
        """The next named event, skipping heartbeats and the reconnection delay."""
        while True:
            (message,) = self.messages(1)
            lines = [line for line in message.splitlines() if not line.startswith(("retry", ":"))]
            if not lines:
                continue
            fields = dict(line.split(": ", 1) for line in lines)
            return fields["event"], json.loads(fields["data"])

    def close(self) -> None:
        """Leave."""
        self.sock.close()


@pytest.fixture
def server(app):
    """The app behind the production server."""
    srv = ServerThread(app, workers=4, keep_alive_s=1)
    yield srv
    srv.stop()


def _wait_for(condition, timeout: float = PATIENCE) -> None:
    """Poll until `condition()` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_ping_first_then_coalesced_queue_changes(server, app):
    """The stream opens with a ping and a reconnection delay; a burst of changes arrives as one."""
    stream = Stream(server.url, "/events/display")
    assert stream.status == 200 and "text/event-stream" in stream.headers and "no-store" in stream.headers
    (first,) = stream.messages(1)
    assert first.startswith("retry: 1000\nevent: ping\n")
    _wait_for(lambda: server.hub.clients == 1)
    for _ in range(50):
        app.extensions["kiosk"].events.publish("queue-changed", {"service": "A"})
    assert stream.next_event() == ("queue-changed", {})
    app.extensions["kiosk"].events.publish("ticket-called", {"number": "A-001", "counter": "1", "lang": "en"})
    name, _ = stream.next_event()
    assert name == "ticket-called"  # the 49 other changes were folded into the first
    stream.close()
    _wait_for(lambda: server.hub.clients == 0)


def test_heartbeat_when_quiet(server):
    """A comment line keeps the connection alive and reveals closed clients."""
    stream = Stream(server.url, "/events/display")
    stream.messages(1)
    assert stream.messages(1) == [": heartbeat"]
    stream.close()


def test_display_events_carry_no_personal_data_and_the_clips(server, centre):
    """ticket-called on the display: number, counter and the static URLs of the announcement."""
    ticket = services.issue_ticket(centre, service="A", lang="en")
    stream = Stream(server.url, "/events/display")
    stream.messages(1)
    _wait_for(lambda: server.hub.clients == 1)
    services.call_ticket(centre, ticket["id"], counter="2", by="demo")
    name, data = stream.next_event()
    assert name == "ticket-called"  # at once: calls are never held back by coalescing
    assert set(data) == {"number", "counter", "clips"}
    assert data["number"] == "A-001" and data["counter"] == "2"
    assert data["clips"][0].startswith("/static/sounds/chime.wav?v=")
    assert [c.split("?")[0].rsplit("/", 1)[1] for c in data["clips"][1:]] == [
        "ticket.wav", "letter_A.wav", "n1.wav", "counter.wav", "n2.wav"]
    for url in data["clips"]:
        clip = requests.get(server.url + url, timeout=PATIENCE)
        assert clip.status_code == 200 and clip.headers["Content-Type"] in ("audio/wav", "audio/x-wav")
    assert stream.next_event() == ("queue-changed", {})
    stream.close()


def test_a_sorani_call_is_spoken(server, centre):
    """A Sorani ticket's call carries Sorani speech: the clips load from the server and, played
    back to back, last seconds and are mostly sound, not silence."""
    ticket = services.issue_ticket(centre, service="B", lang="ckb")
    stream = Stream(server.url, "/events/display")
    stream.messages(1)
    _wait_for(lambda: server.hub.clients == 1)
    services.call_ticket(centre, ticket["id"], counter="1", by="demo")
    name, data = stream.next_event()
    stream.close()
    assert name == "ticket-called" and "chime" in data["clips"][0]
    words = data["clips"][1:]
    assert words and all("/sounds/ckb/" in url for url in words)
    samples, seconds = bytearray(), 0.0
    for url in words:
        with urllib.request.urlopen(server.url + url, timeout=PATIENCE) as response:
            with wave.open(io.BytesIO(response.read())) as clip:
                samples += clip.readframes(clip.getnframes())
                seconds += clip.getnframes() / clip.getframerate()
    window = len(samples) * 20 // int(seconds * 1000)  # 20 ms of 8-bit unsigned PCM
    levels = [(sum((b - 128) ** 2 for b in samples[i:i + window]) / window) ** 0.5
              for i in range(0, len(samples) - window, window)]
    voiced = sum(level > 4 for level in levels) / len(levels)  # silence stays at 0-1
    assert seconds > 2.0 and voiced > 0.5 and max(levels) > 16, (seconds, voiced, max(levels))


def test_a_phone_follows_its_ticket(server, centre):
    """The ticket stream says where the ticket stands, and again each time that changes."""
    first = services.issue_ticket(centre, service="A", lang="en")
    mine = services.issue_ticket(centre, service="A", lang="ar")
    stream = Stream(server.url, f"/events/ticket/{mine['id']}")
    stream.messages(1)
    name, data = stream.next_event()
    assert name == "ticket-changed"
    assert data == {"number": "A-002", "state": "waiting", "counter": None, "ahead": 1,
                    "estimated_wait_s": data["estimated_wait_s"], "calls": 0}
    services.call_ticket(centre, first["id"], counter="1", by="demo")
    assert stream.next_event()[1]["ahead"] == 0
    services.call_ticket(centre, mine["id"], counter="3", by="demo")
    name, data = stream.next_event()
    assert (data["state"], data["counter"], data["calls"]) == ("called", "3", 1)
    services.act(centre, mine["id"], "recall", by="demo", counter="3")
    assert stream.next_event()[1]["calls"] == 2  # called again: the phone alerts again
    stream.close()
    assert requests.get(f"{server.url}/events/ticket/01HZZZZZZZZZZZZZZZZZZZZZZZ", timeout=PATIENCE).status_code == 404


def test_stream_ends_after_its_lifetime(app, centre):
    """Streams end after SSE_MAX_AGE_S, so browsers reconnect and sessions are checked again."""
    app.config["SSE_MAX_AGE_S"] = 0.3
    srv = ServerThread(app, workers=2)
    try:
        stream = Stream(srv.url, "/events/display")
        assert stream.chunked
        while not stream.buffer.endswith(b"0\r\n\r\n"):  # the response's last chunk
            stream._fill()
        stream.close()
    finally:
        srv.stop()


def test_staff_stream_needs_a_login(server, attendant, client):
    """Anonymous clients are refused; a logged-in attendant gets the stream."""
    anonymous = Stream(server.url, "/events/staff")
    assert anonymous.status in (303, 401)
    anonymous.close()
    cookie = attendant.client.get_cookie("session").value
    stream = Stream(server.url, "/events/staff", cookie=cookie)
    assert stream.status == 200
    assert "event: ping" in stream.messages(1)[0]
    stream.close()


def test_open_streams_hold_no_worker_thread(server, app):
    """With many more open streams than worker threads, tickets are still issued."""
    streams = [Stream(server.url, "/events/display") for _ in range(40)]  # the server has 4 threads
    for stream in streams:
        stream.messages(1)
    _wait_for(lambda: server.hub.clients == 40)
    for _ in range(5):
        response = requests.post(f"{server.url}/api/v1/tickets", json={"service": "A", "lang": "en"}, timeout=PATIENCE)
        assert response.status_code == 201, response.text
    for stream in streams:
        assert stream.next_event()[0] == "queue-changed"
        stream.close()


def test_idle_connections_are_closed(server):
    """A connection that never sends a request is closed (keep-alive timeout), so none pile up."""
    parts = urlsplit(server.url)
    idle = socket.create_connection((parts.hostname, parts.port), timeout=PATIENCE)
    assert idle.recv(1) == b""  # closed by the server, not by our timeout
    idle.close()


def test_without_the_kiosk_server_the_screens_poll(client):
    """Under a plain WSGI server there is no stream hub: a clear 503, and the pages poll."""
    response = client.get("/events/display")
    assert response.status_code == 503 and "flask --app kiosk serve" in response.get_data(as_text=True)


def test_a_client_that_falls_behind_is_dropped():
    """The hub's bounded queue: a stalled client is let go instead of slowing the others."""
    async def scenario():
        hub = StreamHub({"display": Channel(lambda n, d: (n, d), coalesce=frozenset())}, queue_size=4)
        channel = hub.channels["display"]
        slow, fine = Client(""), Client("")
        channel.clients.update({slow, fine})
        for i in range(5):
            hub._dispatch("ticket-called", {"n": i})
            await asyncio.sleep(0)  # the fan-out runs as a task on the loop
            fine.pending.clear()  # this one keeps up
        return slow, fine, channel, hub

    slow, fine, channel, hub = run_on_own_loop(scenario())
    assert slow.closed and slow not in channel.clients and hub.dropped == 1
    assert not fine.closed and fine in channel.clients


def run_on_own_loop(coro):
    """Run a coroutine in a thread of its own: Playwright may own this thread's event loop."""
    result = []
    worker = threading.Thread(target=lambda: result.append(asyncio.run(coro)))
    worker.start()
    worker.join(10)
    return result[0]


def test_a_hall_of_streams_lets_other_work_through_between_chunks():
    """A message for 1,000 clients is handed out a chunk at a time: work that became ready meanwhile
    (a request's answer) runs after one chunk, not after the whole hall."""
    async def scenario():
        hub = StreamHub({"display": Channel(lambda n, d: (n, d), coalesce=frozenset())}, chunk=50)
        channel = hub.channels["display"]
        clients = [Client("") for _ in range(1000)]
        channel.clients.update(clients)
        hub._dispatch("ticket-called", {"number": "A-001"})
        served_at = []
        asyncio.get_running_loop().call_soon(lambda: served_at.append(sum(bool(c.pending) for c in clients)))
        for _ in range(100):
            await asyncio.sleep(0)
        return served_at, clients

    served_at, clients = run_on_own_loop(scenario())
    assert served_at and served_at[0] <= 50
    assert all(len(c.pending) == 1 for c in clients)


def test_keyed_messages_reach_only_their_key():
    """A followed ticket's state goes to the phones following it, and to no other."""
    async def scenario():
        def per_key(keys):
            return {k: ("ticket-changed", {"ticket": k}) for k in keys}
        hub = StreamHub({"ticket": Channel(lambda n, d: (n, d), per_key=per_key)})
        channel = hub.channels["ticket"]
        phones = {key: [Client(key) for _ in range(3)] for key in ("t1", "t2")}
        for key, clients in phones.items():
            for client in clients:
                channel.clients.add(client)
                channel.by_key.setdefault(key, set()).add(client)
        await hub._flush(channel, {"queue-changed"})
        first = {key: [list(c.pending) for c in clients] for key, clients in phones.items()}
        await hub._flush(channel, {"queue-changed"})  # nothing changed: nothing sent again
        again = {key: [len(c.pending) for c in clients] for key, clients in phones.items()}
        hub._forget(channel, phones["t1"][0])
        return first, again, channel

    first, again, channel = run_on_own_loop(scenario())
    for key in ("t1", "t2"):
        assert all(msgs == [f'event: ticket-changed\ndata: {{"ticket":"{key}"}}\n\n'.encode()] for msgs in first[key])
        assert again[key] == [1, 1, 1]
    assert len(channel.by_key["t1"]) == 2 and len(channel.clients) == 5


def test_event_names_are_kebab_case():
    """Names like queueChanged or queue_changed are refused."""
    assert format_event("queue-changed", {"a": 1}) == 'event: queue-changed\ndata: {"a":1}\n\n'
    for bad in ("queueChanged", "queue_changed", "Queue", "", "a--b"):
        with pytest.raises(ValueError):
            format_event(bad, {})
