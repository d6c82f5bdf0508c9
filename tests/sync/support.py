"""Helpers for the sync tests: journal-shaped commits, a device that signs requests to central
through Flask's test client, a loopback HTTP server for the real agent, and a loopback proxy that
injects network faults."""
from __future__ import annotations

import random
import socket
import threading
import time
from collections import Counter
from urllib.parse import urlencode

from kiosk.ids import new_ulid
from sync import protocol
from tests.conftest import WsgiServer

AT = "2026-11-22T09:00:00.000Z"


def hlc(n: int, counter: int = 0) -> str:
    """An HLC in the store's format (ms.counter), for n ms after a fixed moment."""
    return f"{1795856400000 + n:013d}.{counter:06d}"


def ticket_doc(ticket_id: str | None = None, *, states: tuple[str, ...] = ("waiting",), number: int = 1) -> dict:
    """A ticket document whose history went through `states`."""
    events = [{"state": s, "at": AT} | ({"counter": "1", "by": "demo"} if s != "waiting" else {})
              for s in states]
    return {"id": ticket_id or new_ulid(), "number": f"A-{number:03d}", "service": "A", "priority": "normal",
            "lang": "ar", "state": states[-1], "issued_at": AT, "day": "2026-11-22", "seq_in_day": number,
            "counter": "1" if states[-1] in ("called", "serving") else None, "device": "test",
            "events": events}


def put(table: str, doc: dict) -> dict:
    """A journal put change."""
    return {"t": table, "o": "put", "k": doc["id"], "d": doc}


def commit(s: int, *changes: dict, h: str | None = None, origin: str | None = None) -> dict:
    """A journal commit as the feed returns it."""
    out = {"s": s, "at": AT, "h": h or hlc(s), "c": list(changes)}
    if origin:
        out["o"] = origin
    return out


def wire(commits: list[dict]) -> list[dict]:
    """Commits as the agent sends them (origin dropped)."""
    return [{k: v for k, v in c.items() if k != "o"} for c in commits]


class SignedDevice:
    """An enrolled device talking to central through the Flask test client."""

    def __init__(self, client, clock, *, device_id: str | None = None, key=None):
        """A device with a fresh key (enrol it with `enrol`)."""
        self.client = client
        self.clock = clock
        self.device_id = device_id or new_ulid()
        self.key = key or protocol.new_private_key()

    def enrol(self, code: str, centre: str | None = None):
        """Redeem an enrolment code for this device's key."""
        body = {"v": 1, "code": code, "device_id": self.device_id,
                "public_key": protocol.public_key_text(self.key), "centre": centre}
        return self.client.post(f"{protocol.API_PREFIX}/enroll", json=body)

    def headers(self, method: str, path: str, body: bytes, *, key=None, device_id: str | None = None,
                now_s: int | None = None, gzip: bool = True) -> dict:
        """Signature headers for a request (optionally signed with another key or clock)."""
        now = self.clock.now()
        headers = protocol.sign_headers(
            key or self.key, device_id=device_id or self.device_id, method=method, path=path, body=body,
            content_type="application/json" if body else "",
            content_encoding="gzip" if body and gzip else "",
            now_s=int(now.timestamp()) if now_s is None else now_s, device_time=protocol.utc_iso(now))
        if body:
            headers["Content-Type"] = "application/json"
            if gzip:
                headers["Content-Encoding"] = "gzip"
        return headers

    def push_body(self, commits: list[dict], *, from_seq: int | None = None, to_seq: int | None = None,
                  head_seq: int | None = None, device_id: str | None = None) -> bytes:
        """A gzip push body for `commits`."""
        commits = wire(commits)
        first = commits[0]["s"] if commits else (from_seq or 1)
        last = commits[-1]["s"] if commits else first - 1
        payload = {"v": 1, "device_id": device_id or self.device_id,
                   "from_seq": first if from_seq is None else from_seq,
                   "to_seq": last if to_seq is None else to_seq,
                   "head_seq": last if head_seq is None else head_seq,
                   "device_time": protocol.utc_iso(self.clock.now()), "commits": commits}
        return protocol.gzip_json(payload)

    def send(self, method: str, path: str, body: bytes = b"", headers: dict | None = None):
        """Send raw bytes with the given headers."""
        return self.client.open(path, method=method, data=body, headers=headers or {})

    def push(self, commits: list[dict], **kwargs):
        """Sign and send a push."""
        path = f"{protocol.API_PREFIX}/push"
        body = self.push_body(commits, **kwargs)
        return self.send("POST", path, body, self.headers("POST", path, body))

    def pull(self, since: int = 0, limit: int = 500):
        """Sign and send a pull."""
        path = f"{protocol.API_PREFIX}/pull?" + urlencode({"since": since, "limit": limit})
        return self.send("GET", path, b"", self.headers("GET", path, b""))


class HttpServer(WsgiServer):
    """Central served over loopback HTTP by waitress in a background thread, with its port."""


class FaultProxy:
    """A loopback TCP proxy between the agent and central that misbehaves on purpose.

    Each request (one per connection: the proxy forces `Connection: close`) draws its fate from a
    seeded generator: passed through, delayed, cut off halfway to central, answered by central but
    the answer dropped or cut short, sent to central twice at once, or answered 503 without
    reaching central, or 502 after central applied it. At most `max_faults` requests are harmed.
    """

    FAULTS = ("delay", "drop_request", "drop_response", "truncate_response", "duplicate", "error_503",
              "error_after")

    def __init__(self, upstream_port: int, *, seed: int, rate: float = 0.4, max_faults: int = 60,
                 max_delay_s: float = 0.15):
        """Listen on a free loopback port and forward to `upstream_port`."""
        self.upstream = ("127.0.0.1", upstream_port)
        self.rng = random.Random(seed)
        self.order = self.rng.sample(self.FAULTS, len(self.FAULTS))
        self.rate = rate
        self.max_faults = max_faults
        self.max_delay_s = max_delay_s
        self.stats: Counter = Counter()
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.running = True
        self.threads: list[threading.Thread] = []
        self.thread = threading.Thread(target=self._accept, name="fault-proxy", daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        """Accept connections until stopped."""
        while self.running:
            try:
                conn, _ = self.listener.accept()
            except (socket.timeout, OSError):
                continue
            worker = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            worker.start()
            self.threads.append(worker)

    def _fate(self) -> tuple[str, float, int]:
        """This request's fault (or "pass"), a delay and a coin, drawn under the lock."""
        with self.lock:
            harmed = sum(v for k, v in self.stats.items() if k != "pass")
            fault = "pass"
            if harmed < self.max_faults and self.rng.random() < self.rate:
                fault = self.order[harmed % len(self.order)]  # every kind comes round in turn
            self.stats[fault] += 1
            return fault, self.rng.uniform(0, self.max_delay_s), self.rng.randrange(2)

    def _handle(self, client: socket.socket) -> None:
        """Serve one request with its fault."""
        try:
            client.settimeout(10)
            request = _read_request(client)
            if request is None:
                return
            fault, delay, coin = self._fate()
            if fault == "delay":
                time.sleep(delay)
            if fault == "error_503":
                client.sendall(_error_response(503))
            elif fault == "drop_request":
                upstream = socket.create_connection(self.upstream, timeout=10)
                upstream.sendall(request[: max(1, len(request) // 2)])
                upstream.close()
            elif fault == "duplicate":
                answers: list[bytes] = [b"", b""]
                pair = [threading.Thread(target=lambda i=i: answers.__setitem__(i, self._forward(request)))
                        for i in range(2)]
                for t in pair:
                    t.start()
                for t in pair:
                    t.join()
                client.sendall(answers[coin])
            else:
                answer = self._forward(request)
                if fault == "drop_response":
                    pass
                elif fault == "truncate_response":
                    client.sendall(answer[: len(answer) // 2])
                elif fault == "error_after":
                    client.sendall(_error_response(502))
                else:
                    client.sendall(answer)
        except OSError:
            pass
        finally:
            client.close()

    def _forward(self, request: bytes) -> bytes:
        """Send the request to central and return its whole answer."""
        with socket.create_connection(self.upstream, timeout=30) as upstream:
            upstream.sendall(request)
            chunks = []
            while True:
                data = upstream.recv(65536)
                if not data:
                    return b"".join(chunks)
                chunks.append(data)

    def stop(self) -> None:
        """Stop accepting and wait for the requests in flight."""
        self.running = False
        self.thread.join(timeout=5)
        self.listener.close()
        for worker in self.threads:
            worker.join(timeout=10)


def _read_request(conn: socket.socket) -> bytes | None:
    """One HTTP/1.1 request (headers + Content-Length body), rewritten to `Connection: close`."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"connection:")]
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        body += chunk
    return b"\r\n".join(lines + [b"Connection: close"]) + b"\r\n\r\n" + body


def _error_response(status: int) -> bytes:
    """A bare gateway error with the sync API's JSON error shape."""
    body = b'{"error":{"code":"gateway","message":"injected fault"}}'
    return (f"HTTP/1.1 {status} Injected\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body
