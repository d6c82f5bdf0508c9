"""Helpers for the sync tests: journal-shaped commits, a device that signs requests to central
through Flask's test client, and a loopback HTTP server for the real agent."""
from __future__ import annotations

import threading
from urllib.parse import urlencode

from kiosk.ids import new_ulid
from sync import protocol

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


class HttpServer:
    """A WSGI app served over loopback HTTP from a background thread (werkzeug, threaded)."""

    def __init__(self, app, port: int = 0):
        """Bind at once, so the URL is known, and serve."""
        from werkzeug.serving import make_server
        self.server = make_server("127.0.0.1", port, app, threaded=True)
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="central-test", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
