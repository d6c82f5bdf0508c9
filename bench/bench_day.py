"""A busy day in a large centre, on the real server: many live screens, a long queue, printing.

    .venv/bin/python bench/bench_day.py [--part streams|queue|day|all] [--streams 1000] [--tickets 5000]

The kiosk runs as its production server (`flask --app kiosk serve`) in a child process; this
process plays the screens and the people: event streams are raw sockets on one asyncio loop,
requests come from threads over keep-alive connections. Every figure is printed next to a
baseline measured in the same run (the machine is shared and noisy, so ratios are what count):

1. streams: POST /api/v1/tickets latency with no stream open (baseline) and with N open streams
   (display, staff and phone channels), none refused; how long a call takes to reach every open
   display stream.
2. queue: with 5,000 tickets waiting vs an empty store (baseline): ticket POST (printing off),
   ticket POST with the preview printer vs printing off, call-next, the counter's waiting list.
3. day: a compressed busy day: 30 consoles (each on the staff stream, re-fetching its waiting list
   on every change it hears, calling, starting and finishing), 4 hall displays (re-fetching the
   board), 300 phones following their tickets, N tickets issued and served with the preview
   printer on: CPU per ticket (server and print worker), POST and call-next p50/p99, prints done.
"""
from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COUNTERS = 30


# -- the server ------------------------------------------------------------------------------------

def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(data_dir: Path, *, waiting: int = 0, counters: int = 3, staff: int = 1) -> None:
    """A demo centre with `counters` counters serving every service, `staff` attendants
    (att01.. PIN 1234) and `waiting` tickets waiting, written before the server starts."""
    from kiosk import create_app, services
    app = create_app({"DATA_DIR": str(data_dir), "SECRET_KEY": "bench", "PRINTER_URL": "off"})
    centre = app.extensions["kiosk"].centre
    with app.app_context():
        services.load_demo_data(centre)
        with centre.store.transaction():
            for n in range(4, counters + 1):
                centre.store.put("counters", {"id": str(n), "names": {"ar": f"الشباك {n}", "ckb": f"پەنجەرەی {n}",
                                                                      "en": f"Counter {n}"},
                                              "services": ["A", "B", "C"], "active": True})
        for i in range(1, staff + 1):
            services.set_staff(centre, f"att{i:02d}", pin="1234", role="attendant")
        rng = random.Random(7)
        for _ in range(waiting):
            services.issue_ticket(centre, service=rng.choice("ABC"), lang=rng.choice(["ar", "ckb", "en"]),
                                  priority="elderly" if rng.random() < 0.1 else "normal")
    app.extensions["kiosk"].close()


class Server:
    """`flask --app kiosk serve` in a child process."""

    def __init__(self, data_dir: Path, *, printer: str = "off"):
        """Start and wait until it answers."""
        self.port = free_port()
        env = {**os.environ, "KIOSK_DATA_DIR": str(data_dir), "KIOSK_SECRET_KEY": "bench",
               "KIOSK_PRINTER_URL": printer, "KIOSK_TICKET_RATE_PER_MIN": "0", "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "kiosk", "serve", "--port",
                                      str(self.port)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/api/v1/services")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("the kiosk did not start")

    def cpu_s(self) -> float:
        """CPU seconds used so far by the server and its child processes (the print worker)."""
        tick = os.sysconf("SC_CLK_TCK")
        total = 0.0
        pids = [self.proc.pid]
        while pids:
            pid = pids.pop()
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / tick
                for task in Path(f"/proc/{pid}/task").iterdir():
                    children = (task / "children").read_text().split()
                    pids.extend(int(c) for c in children)
            except (OSError, IndexError, ValueError):
                continue
        return total

    def stop(self) -> None:
        """SIGTERM, then wait."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- HTTP from threads -----------------------------------------------------------------------------

class Http:
    """One keep-alive connection with the session cookie and bearer token it was given."""

    def __init__(self, port: int):
        """Connect lazily."""
        self.port = port
        self.conn: http.client.HTTPConnection | None = None
        self.cookie = ""
        self.token = ""
        self.csrf = ""

    def request(self, method: str, path: str, body: dict | str | None = None,
                headers: dict | None = None) -> tuple[int, str, float]:
        """Status, body text and seconds taken (one reconnect on a closed connection)."""
        hdrs = dict(headers or {})
        data = None
        if isinstance(body, dict):
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        elif isinstance(body, str):
            data = body.encode()
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        if self.cookie:
            hdrs["Cookie"] = self.cookie
        if self.token:
            hdrs.setdefault("Authorization", f"Bearer {self.token}")
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            started = time.perf_counter()
            try:
                self.conn.request(method, path, body=data, headers=hdrs)
                response = self.conn.getresponse()
                text = response.read().decode("utf-8", "replace")
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
                continue
            elapsed = time.perf_counter() - started
            cookie = response.getheader("Set-Cookie")
            if cookie:
                self.cookie = cookie.split(";", 1)[0]
            return response.status, text, elapsed
        raise AssertionError("unreachable")

    def login(self, staff: str, pin: str) -> None:
        """A console's session (form login with CSRF) and an API token."""
        _, page, _ = self.request("GET", "/staff/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        status, _, _ = self.request("POST", "/staff/login", f"staff={staff}&pin={pin}&csrf_token={token}")
        assert status in (302, 303), status
        status, text, _ = self.request("POST", "/api/v1/auth/token", {"staff": staff, "pin": pin})
        assert status == 200, text
        self.token = json.loads(text)["token"]


def pct(values: list[float], q: float) -> float:
    """The q-quantile in milliseconds."""
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def post_tickets(port: int, n: int, clients: int = 4) -> tuple[list[float], int]:
    """POST n tickets from `clients` threads; latencies and how many were refused."""
    times: list[float] = []
    refused = [0]
    lock = threading.Lock()

    def work(count: int, seed: int):
        """One client's share."""
        rng = random.Random(seed)
        http_ = Http(port)
        for _ in range(count):
            status, _, elapsed = http_.request("POST", "/api/v1/tickets",
                                               {"service": rng.choice("ABC"), "lang": "en"})
            with lock:
                times.append(elapsed)
                refused[0] += status != 201

    threads = [threading.Thread(target=work, args=(n // clients, i)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return times, refused[0]


# -- streams on one loop ---------------------------------------------------------------------------

class Streams:
    """Many event streams on one asyncio loop in a thread, counting what each receives."""

    def __init__(self, port: int):
        """Start the loop."""
        self.port = port
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.open = 0
        self.failed = 0
        self.tasks: list = []
        self.seen: dict[str, dict[int, float]] = {}   # number called -> stream index -> arrival
        self.handlers: dict[int, object] = {}

    def add(self, path: str, cookie: str = "", on_event=None) -> int:
        """Open one stream; `on_event(name, data)` runs in the loop thread for each event."""
        index = len(self.tasks)
        if on_event:
            self.handlers[index] = on_event
        future = asyncio.run_coroutine_threadsafe(self._stream(index, path, cookie), self.loop)
        self.tasks.append(future)
        return index

    async def _stream(self, index: int, path: str, cookie: str) -> None:
        """Read one stream forever, reconnecting when it ends."""
        while True:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port, limit=1 << 20)
                request = f"GET {path} HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n"
                if cookie:
                    request += f"Cookie: {cookie}\r\n"
                writer.write((request + "\r\n").encode())
                head = await reader.readuntil(b"\r\n\r\n")
                if b" 200 " not in head.split(b"\r\n", 1)[0]:
                    self.failed += 1
                    writer.close()
                    return
                self.open += 1
                try:
                    buffer = b""
                    while True:
                        size = int((await reader.readuntil(b"\r\n")).strip(), 16)
                        if size == 0:
                            break
                        buffer += (await reader.readexactly(size + 2))[:-2]
                        while b"\n\n" in buffer:
                            message, buffer = buffer.split(b"\n\n", 1)
                            self._message(index, message.decode())
                finally:
                    self.open -= 1
                    writer.close()
            except (OSError, asyncio.IncompleteReadError, ValueError):
                self.failed += 1
                await asyncio.sleep(0.5)

    def _message(self, index: int, message: str) -> None:
        """Note the arrival of calls; hand events to the stream's handler."""
        fields = dict(line.split(": ", 1) for line in message.splitlines() if ": " in line and not line.startswith(":"))
        name = fields.get("event")
        if not name:
            return
        data = json.loads(fields.get("data") or "{}")
        if name == "ticket-called":
            self.seen.setdefault(data["number"], {})[index] = time.perf_counter()
        handler = self.handlers.get(index)
        if handler:
            handler(name, data)

    def wait_open(self, n: int, timeout: float = 120) -> None:
        """Until n streams are open."""
        deadline = time.monotonic() + timeout
        while self.open < n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {self.open} of {n} streams opened ({self.failed} failed)")
            time.sleep(0.05)

    def close(self) -> None:
        """Close every stream, then stop the loop."""
        async def cancel_all():
            """Cancel the readers and let them close their sockets."""
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel_all(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)


# -- parts -----------------------------------------------------------------------------------------

def part_streams(n_streams: int, posts: int) -> None:
    """POST latency with no streams vs n open streams; a call's reach to every display."""
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        prepare(data, staff=1)
        server = Server(data)
        try:
            base, refused0 = post_tickets(server.port, posts)
            phone_tickets = []
            http_ = Http(server.port)
            for _ in range(min(300, n_streams // 3)):
                _, text, _ = http_.request("POST", "/api/v1/tickets", {"service": "A", "lang": "ar"})
                phone_tickets.append(json.loads(text)["ticket"]["id"])
            staff = Http(server.port)
            staff.login("att01", "1234")
            streams = Streams(server.port)
            displays = []
            for i in range(n_streams):
                if i < len(phone_tickets):
                    streams.add(f"/events/ticket/{phone_tickets[i]}")
                elif i < len(phone_tickets) + 30:
                    streams.add("/events/staff", staff.cookie)
                else:
                    displays.append(streams.add("/events/display"))
            streams.wait_open(n_streams)
            loaded, refused1 = post_tickets(server.port, posts)
            reach = []
            for _ in range(20):
                sent = time.perf_counter()
                status, text, _ = staff.request("POST", "/api/v1/counters/1/call-next")
                assert status == 200, text
                number = json.loads(text)["ticket"]["number"]
                deadline = time.monotonic() + 10
                while len(streams.seen.get(number, {}).keys() & set(displays)) < len(displays):
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.005)
                arrivals = [streams.seen.get(number, {}).get(d) for d in displays]
                reach.append(max((a or float("inf")) - sent for a in arrivals))
                staff.request("POST", f"/api/v1/tickets/{json.loads(text)['ticket']['id']}/start")
            streams.close()
        finally:
            server.stop()
    b50, l50 = pct(base, .5), pct(loaded, .5)
    print(f"\n1. {n_streams} open streams ({len(displays)} displays, 30 staff, {len(phone_tickets)} phones), "
          f"{posts} ticket POSTs from 4 clients each")
    print(f"   {'':28} {'p50 ms':>8} {'p99 ms':>8} {'refused':>8} {'p50 ratio':>10}")
    print(f"   {'no stream open (baseline)':28} {b50:8.1f} {pct(base, .99):8.1f} {refused0:8d} {1.0:10.2f}")
    print(f"   {f'{n_streams} streams open':28} {l50:8.1f} {pct(loaded, .99):8.1f} {refused1:8d} {l50 / b50:10.2f}")
    print(f"   a call reaching every display stream, from the call-next request: median "
          f"{statistics.median(reach) * 1000:.0f} ms, slowest {max(reach) * 1000:.0f} ms (20 calls)")


def part_queue(waiting: int, posts: int) -> None:
    """Ticket POST, call-next and the console's waiting list: empty store vs `waiting` waiting."""
    rows = {}
    for label, n_waiting, printer in (("empty store, printing off (baseline)", 0, "off"),
                                      (f"{waiting} waiting, printing off", waiting, "off"),
                                      (f"{waiting} waiting, preview printer", waiting, "preview://")):
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "data"
            prepare(data, waiting=n_waiting, staff=1)
            server = Server(data, printer=printer)
            try:
                post, _ = post_tickets(server.port, posts, clients=1)
                staff = Http(server.port)
                staff.login("att01", "1234")
                calls, consoles = [], []
                for _ in range(50):
                    status, text, elapsed = staff.request("POST", "/api/v1/counters/1/call-next")
                    assert status == 200, text
                    calls.append(elapsed)
                    staff.request("POST", f"/api/v1/tickets/{json.loads(text)['ticket']['id']}/start")
                    staff.request("POST", f"/api/v1/tickets/{json.loads(text)['ticket']['id']}/finish")
                    status, _, elapsed = staff.request("GET", "/counter/1/waiting", headers={"HX-Request": "true"})
                    assert status == 200
                    consoles.append(elapsed)
            finally:
                server.stop()
        rows[label] = (post, calls, consoles)
    base = rows["empty store, printing off (baseline)"]
    off = rows[f"{waiting} waiting, printing off"]
    print(f"\n2. a long queue: {posts} ticket POSTs (one client), 50 call-next and console refreshes")
    print(f"   {'':38} {'POST p50':>9} {'ratio':>6} {'call p50':>9} {'call p99':>9} {'console p50':>12}")
    for label, (post, calls, consoles) in rows.items():
        ref = base if "preview" not in label else off
        print(f"   {label:38} {pct(post, .5):9.1f} {pct(post, .5) / pct(ref[0], .5):6.2f} {pct(calls, .5):9.1f} "
              f"{pct(calls, .99):9.1f} {pct(consoles, .5):12.1f}")
    print("   (POST ratio: against the empty store; for the preview printer, against printing off, same queue)")


def worker_printed(data: Path) -> int:
    """How many jobs the print worker reports printed (its status file in the spool)."""
    try:
        return int(json.loads((data / "print-spool" / "status.json").read_text(encoding="utf-8"))["printed"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def part_day(tickets: int, phones: int, displays: int) -> None:
    """The compressed busy day."""
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        prepare(data, counters=COUNTERS, staff=COUNTERS)
        server = Server(data, printer="preview://")
        streams = Streams(server.port)
        posts, calls = [], []
        lock = threading.Lock()
        issued = threading.Semaphore(0)
        served = [0]
        done = threading.Event()
        refetches = [0]
        try:
            consoles = []
            for i in range(COUNTERS):
                h = Http(server.port)
                h.login(f"att{i + 1:02d}", "1234")
                consoles.append(h)
            wake = [threading.Event() for _ in range(COUNTERS)]

            def staff_event(i):
                """A console re-fetches its waiting list when its stream says so."""
                def handler(name, _data):
                    if name in ("queue-changed", "ping"):
                        wake[i].set()
                return handler

            for i, h in enumerate(consoles):
                streams.add("/events/staff", h.cookie, staff_event(i))
            board_wake = threading.Event()
            for _ in range(displays):
                streams.add("/events/display", "", lambda name, _d: board_wake.set() if name == "queue-changed" else None)
            streams.wait_open(COUNTERS + displays)
            cpu0, t0 = server.cpu_s(), time.perf_counter()

            def citizen():
                """Citizens take tickets; some follow theirs on a phone."""
                rng = random.Random(1)
                h = Http(server.port)
                for n in range(tickets):
                    status, text, elapsed = h.request("POST", "/api/v1/tickets", {
                        "service": rng.choice("ABC"), "lang": rng.choice(["ar", "ckb", "en"])})
                    with lock:
                        posts.append(elapsed)
                    if status == 201:
                        issued.release()
                        if n % max(1, tickets // phones) == 0 and streams.open < COUNTERS + displays + phones:
                            streams.add(f"/events/ticket/{json.loads(text)['ticket']['id']}")

            def console(i):
                """Call, start, finish; re-fetch the waiting list on each change heard."""
                h = consoles[i]
                while not done.is_set():
                    if not issued.acquire(timeout=0.2):
                        continue
                    status, text, elapsed = h.request("POST", f"/api/v1/counters/{i + 1}/call-next")
                    if status != 200:
                        issued.release()
                        time.sleep(0.05)
                        continue
                    with lock:
                        calls.append(elapsed)
                    ticket_id = json.loads(text)["ticket"]["id"]
                    h.request("POST", f"/api/v1/tickets/{ticket_id}/start")
                    if wake[i].is_set():
                        wake[i].clear()
                        h.request("GET", f"/counter/{i + 1}/waiting", headers={"HX-Request": "true"})
                        with lock:
                            refetches[0] += 1
                    h.request("POST", f"/api/v1/tickets/{ticket_id}/finish")
                    with lock:
                        served[0] += 1
                        if served[0] >= tickets:
                            done.set()

            def board():
                """The displays re-fetch the board on each change they hear."""
                h = Http(server.port)
                while not done.is_set():
                    if board_wake.wait(0.2):
                        board_wake.clear()
                        for _ in range(displays):
                            h.request("GET", "/display", headers={"HX-Request": "true"})

            workers = [threading.Thread(target=citizen)] + [threading.Thread(target=console, args=(i,))
                                                           for i in range(COUNTERS)] + [threading.Thread(target=board)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            elapsed_s = time.perf_counter() - t0
            # the print worker's own count: the preview printer keeps only the newest 1,000 files
            deadline = time.monotonic() + 600
            printed = 0
            while time.monotonic() < deadline:
                printed = worker_printed(data)
                if printed >= tickets:
                    break
                time.sleep(1)
            drain_s = time.perf_counter() - t0 - elapsed_s
            cpu = server.cpu_s() - cpu0  # after the drain: the print worker's rendering included
            phones_open = streams.open - COUNTERS - displays
            streams.close()
        finally:
            server.stop()
    print(f"\n3. a compressed busy day: {tickets} tickets issued and served by {COUNTERS} consoles, "
          f"{displays} displays, {phones_open} phones following, preview printer on")
    print(f"   wall time {elapsed_s:.0f} s ({tickets / elapsed_s:.1f} tickets/s); server CPU "
          f"{cpu:.1f} s = {1000 * cpu / tickets:.1f} ms per ticket (issue, call, start, finish, print)")
    print(f"   ticket POST p50 {pct(posts, .5):.1f} ms p99 {pct(posts, .99):.1f} ms; call-next p50 "
          f"{pct(calls, .5):.1f} ms p99 {pct(calls, .99):.1f} ms; ratio p99/p50 POST "
          f"{pct(posts, .99) / pct(posts, .5):.1f}")
    print(f"   console waiting-list re-fetches {refetches[0]}; prints done {printed} of {tickets} "
          f"({drain_s:.0f} s after the last ticket was served)")


def main() -> int:
    """Run the parts asked for."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=["streams", "queue", "day", "all"], default="all")
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--waiting", type=int, default=5000)
    parser.add_argument("--tickets", type=int, default=5000)
    parser.add_argument("--posts", type=int, default=400)
    args = parser.parse_args()
    print(f"bench_day: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    if args.part in ("streams", "all"):
        part_streams(args.streams, args.posts)
    if args.part in ("queue", "all"):
        part_queue(args.waiting, args.posts // 2)
    if args.part in ("day", "all"):
        part_day(args.tickets, phones=300, displays=4)
    return 0


if __name__ == "__main__":
    sys.exit(main())
