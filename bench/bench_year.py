"""A year in a centre: build it with `flask --app kiosk simulate`, then measure what a year of
history costs the kiosk now that closed days are in the archive rather than in the live store.

    .venv/bin/python bench/bench_year.py [--days 300] [--per-day 5000] [--posts 400] [--keep DIR]
    .venv/bin/python bench/bench_year.py --days 10 --per-day 500      # a quick run

1. build: `simulate --days N --per-day M` (a child process) into a fresh data directory: its time,
   what it made, the archive's and the journal's size on disk.
2. start-up: `flask --app kiosk serve` until it answers, on the year and on an empty store (the
   demo centre only, the baseline), in turns, three times each: median.
3. memory: resident set size (VmRSS) of each fresh serving process, then after the POSTs.
4. ticket POST: median and p99 of sequential `POST /api/v1/tickets` over one keep-alive
   connection, the year's kiosk and the empty one in turns of 50; then again on fresh servers
   snapshotting every 200 commits (`COMPACT_EVERY=200`, checked every 10 s), so that compactions
   run among the POSTs (counted by the snapshot's modification time), with the maximum too.
5. monthly report: the requests report of the last whole month over archived days, and the same
   report computed from a live store holding that month's cases and receipts as live records
   (loaded from the archive into a fresh store): equal, and the time of each.
6. `flask --app kiosk check` on the year (every archive file's checksum, the audit chain, numbering).

Printing is off in both kiosks (the print worker is measured by bench_print.py). No central
acknowledges anything, so the journal is kept whole on disk, as on a centre that never synced;
start-up reads only the snapshot and the segment after it.
"""
from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kiosk import cases, create_app, services  # noqa: E402
from kiosk.clock import FrozenClock  # noqa: E402
from kiosk.events import Broker  # noqa: E402
from kiosk.store import Store  # noqa: E402


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_for(data_dir: Path, **settings: str) -> dict:
    """The kiosk's environment for a data directory."""
    return {**os.environ, "KIOSK_DATA_DIR": str(data_dir), "KIOSK_SECRET_KEY": "bench", "KIOSK_PRINTER_URL": "off",
            "KIOSK_TICKET_RATE_PER_MIN": "0", "PYTHONPATH": str(ROOT), **settings}


def flask(data_dir: Path, *args: str) -> tuple[float, float, str]:
    """Run a kiosk command; (wall seconds, CPU seconds, output). CPU time is what a busy, shared
    machine changes least."""
    started = time.monotonic()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "kiosk", *args], cwd=ROOT, env=env_for(data_dir),
                          capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"flask {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return time.monotonic() - started, cpu, done.stdout


class Server:
    """`flask --app kiosk serve` in a child process, timed until it first answers."""

    def __init__(self, data_dir: Path, **settings: str):
        """Start, wait until it answers, note the time and the memory."""
        self.port = free_port()
        self.snapshot = data_dir / "store" / "snapshot.json"
        started = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "kiosk", "serve", "--port",
                                      str(self.port)], cwd=ROOT, env=env_for(data_dir, **settings),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.conn: http.client.HTTPConnection | None = None
        while True:
            if self.proc.poll() is not None or time.monotonic() - started > 120:
                raise SystemExit("the kiosk did not start")
            try:
                status, _ = self.request("GET", "/api/v1/services")
                if status == 200:
                    break
            except OSError:
                self.conn = None
                time.sleep(0.02)
        self.startup_s = time.monotonic() - started
        self.rss_start_mb = self.rss_mb()

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, float]:
        """One request on the keep-alive connection: (status, seconds)."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        data = json.dumps(body).encode() if body is not None else None
        started = time.perf_counter()
        self.conn.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
        response = self.conn.getresponse()
        response.read()
        return response.status, time.perf_counter() - started

    def rss_mb(self) -> float:
        """Resident memory of the server process, MB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        """SIGTERM, then wait."""
        if self.conn is not None:
            self.conn.close()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def size_mb(path: Path) -> float:
    """Bytes under a folder, MB."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def ms(values: list[float], q: float) -> float:
    """The q-quantile, milliseconds."""
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def build(year: Path, days: int, per_day: int) -> None:
    """Part 1."""
    year.mkdir(mode=0o700)
    seconds, cpu, out = flask(year, "simulate", "--days", str(days), "--per-day", str(per_day), "--quiet")
    print(f"## build: simulate --days {days} --per-day {per_day}")
    print(out.strip().splitlines()[-1])
    journal = size_mb(year / "store" / "journal")
    print(f"simulate took {seconds:.0f} s wall, {cpu:.0f} s CPU ({cpu / days:.2f} s CPU per day; "
          f"load average {os.getloadavg()[0]:.1f}); archive {size_mb(year / 'archive'):.0f} MB "
          f"in {len(list((year / 'archive').glob('*.jsonl.gz')))} files; journal {journal:.0f} MB (kept for central); "
          f"snapshot {(year / 'store' / 'snapshot.json').stat().st_size / 1e6:.2f} MB")


def in_turns(servers: dict, posts: int, snapshots_wanted: int = 0,
             limit_s: float = 300) -> tuple[dict[str, list[float]], dict[str, int]]:
    """POST tickets to each server in turns of 50 until each has `posts` and has written
    `snapshots_wanted` snapshots meanwhile (or `limit_s` passed); the latencies and the snapshots."""
    times: dict[str, list[float]] = {name: [] for name in servers}
    snapshots = {name: 0 for name in servers}
    seen = {name: s.snapshot.stat().st_mtime_ns if s.snapshot.exists() else 0 for name, s in servers.items()}
    turn = 0
    started = time.monotonic()
    while min(len(t) for t in times.values()) < posts or (
            min(snapshots.values()) < snapshots_wanted and time.monotonic() - started < limit_s):
        for name in list(servers) if turn % 2 == 0 else list(reversed(servers)):
            for _ in range(50):
                status, seconds = servers[name].request("POST", "/api/v1/tickets", {"service": "ABC"[turn % 3]})
                assert status == 201, status
                times[name].append(seconds)
            mtime = servers[name].snapshot.stat().st_mtime_ns if servers[name].snapshot.exists() else 0
            snapshots[name] += mtime != seen[name]
            seen[name] = mtime
        turn += 1
    return times, snapshots


def serving(year: Path, empty: Path, posts: int, busy: int) -> None:
    """Parts 2 to 4."""
    startups = {"year": [], "empty": []}
    for _ in range(3):
        for name, path in (("empty", empty), ("year", year)):
            server = Server(path)
            startups[name].append(server.startup_s)
            server.stop()
    servers = {"empty": Server(empty), "year": Server(year)}
    times, _ = in_turns(servers, posts)
    rss_after = {name: s.rss_mb() for name, s in servers.items()}
    print("\n## serving: the year against an empty store (demo centre only)")
    print("| kiosk | start-up s (median of 3) | RSS at start MB | RSS after POSTs MB | POST median ms | POST p99 ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name in ("empty", "year"):
        print(f"| {name} | {statistics.median(startups[name]):.2f} | {servers[name].rss_start_mb:.0f} | "
              f"{rss_after[name]:.0f} | {ms(times[name], 0.5):.2f} | {ms(times[name], 0.99):.2f} |")
    ratio = statistics.median(times["year"]) / statistics.median(times["empty"])
    print(f"\nyear/empty: start-up {statistics.median(startups['year']) / statistics.median(startups['empty']):.2f}x, "
          f"RSS {servers['year'].rss_start_mb / servers['empty'].rss_start_mb:.2f}x, POST median {ratio:.2f}x "
          f"({len(times['year'])} POSTs each)")
    print("aims: start-up under 3 s, RSS under 300 MB, POST median within 1.5x of empty")
    for server in servers.values():
        server.stop()
    if busy:
        servers = {name: Server(path, KIOSK_COMPACT_EVERY="200") for name, path in (("empty", empty), ("year", year))}
        started = time.monotonic()
        times, snapshots = in_turns(servers, busy, snapshots_wanted=3)
        elapsed = time.monotonic() - started
        print(f"\n## ticket POSTs while the store snapshots every 200 commits ({len(times['year'])} each, "
              f"{elapsed:.0f} s in all)")
        print("| kiosk | snapshots during the POSTs | median ms | p99 ms | max ms |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for name in ("empty", "year"):
            print(f"| {name} | {snapshots[name]} | {ms(times[name], 0.5):.2f} | {ms(times[name], 0.99):.2f} | "
                  f"{max(times[name]) * 1000:.1f} |")
        for server in servers.values():
            server.stop()


def report(year: Path, scratch: Path) -> None:
    """Part 5."""
    app = create_app({"DATA_DIR": str(year), "SECRET_KEY": "bench", "PRINTER_URL": "off"})
    try:
        centre = app.extensions["kiosk"].centre
        today = dt.date.fromisoformat(centre.today())
        month = (today.replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")
        as_of = centre.clock.now()
        started = time.perf_counter()
        archived = cases.report(centre, month, now=as_of)
        archived_s = time.perf_counter() - started
        days = [d.isoformat() for d in services_month_days(month)]
        month_cases = list(centre.history.records(cases.CASES, days))
        receipts = [r for r in (cases.receipt_of(centre, doc) for doc in month_cases) if r is not None]
        settings = centre.store.all("settings")
    finally:
        app.extensions["kiosk"].close()
    live_dir = scratch / "live-month"
    live_dir.mkdir(mode=0o700)
    clock = FrozenClock(as_of)
    store = Store(live_dir, clock=clock)
    try:
        config = create_app({"DATA_DIR": str(live_dir), "SECRET_KEY": "bench", "PRINTER_URL": "off"}).config
        with store.transaction():
            for doc in settings:
                store.put("settings", doc)
            for doc in month_cases:
                store.put(cases.CASES, doc)
            for doc in receipts:
                store.put(cases.RECEIPTS, doc)
        live_centre = services.Centre(store=store, clock=clock, events=Broker(), config=config)
        started = time.perf_counter()
        live = cases.report(live_centre, month, now=as_of)
        live_s = time.perf_counter() - started
    finally:
        store.close()
    print(f"\n## monthly report of {month}: {archived.total.received} requests "
          f"({archived.total.completed} completed, {archived.total.rejected} rejected, "
          f"{archived.total.referred} referred, {archived.total.open} open, {archived.total.overdue} overdue)")
    print(f"from archived days {archived_s * 1000:.0f} ms; from a live store holding the same cases "
          f"{live_s * 1000:.0f} ms ({archived_s / live_s:.1f}x); equal: {archived == live}")
    if archived != live:
        raise SystemExit("the report from archived days differs from the live store's")


def services_month_days(month: str) -> list[dt.date]:
    """Every date of a month (the report's own definition)."""
    from kiosk.domain.cases import month_days
    return month_days(month)


def main() -> None:
    """Run every part."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=300)
    parser.add_argument("--per-day", type=int, default=5000)
    parser.add_argument("--posts", type=int, default=400)
    parser.add_argument("--busy", type=int, default=2000,
                        help="POSTs each with compactions running, at least three (0: skip)")
    parser.add_argument("--keep", type=Path, help="build the year here and keep it (reused when it exists)")
    parser.add_argument("--no-check", action="store_true", help="skip `flask check` on the year")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-year-"))
    try:
        year = args.keep or scratch / "year"
        if not year.exists():
            build(year, args.days, args.per_day)
        empty = scratch / "empty"
        empty.mkdir(mode=0o700)
        flask(empty, "demo-data")
        serving(year, empty, args.posts, args.busy)
        report(year, scratch)
        if not args.no_check:
            seconds, cpu, out = flask(year, "check")
            print(f"\n## check on the year: {seconds:.0f} s wall, {cpu:.0f} s CPU")
            print("\n".join(line for line in out.splitlines() if line.startswith(("ok", "FAIL"))))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
