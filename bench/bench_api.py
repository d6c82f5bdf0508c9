"""API benchmark: POST /api/v1/tickets over real HTTP, empty store vs 100k tickets stored.

The kiosk runs as its production server (`flask --app kiosk serve`, hypercorn) in a child process.
The baseline, measured in the same run, is a bare WSGI app under the same server (hypercorn with
a2wsgi's thread pool) answering a fixed JSON body
over the same kind of connection: the ratio is the cost of the kiosk's own work (validation, a
durable commit, the queue estimate).

    .venv/bin/python bench/bench_api.py [--n 400]
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kiosk import create_app, services  # noqa: E402
from kiosk.clock import FrozenClock, iso  # noqa: E402
from kiosk.ids import new_ulid  # noqa: E402

BARE_APP = """
import asyncio, sys
from a2wsgi import WSGIMiddleware
from hypercorn.asyncio import serve
from hypercorn.config import Config
def app(environ, start_response):
    environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    body = b'{"ticket": {"number": "A-001"}}'
    start_response("201 Created", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
config = Config()
config.bind = [f"127.0.0.1:{sys.argv[1]}"]
config.accesslog = None
asyncio.run(serve(WSGIMiddleware(app, workers=16), config, mode="asgi"))
"""


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str) -> None:
    """Block until the server answers."""
    for _ in range(400):
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


def fill(data_dir: Path, count: int) -> None:
    """A demo centre with `count` finished tickets of past days, then a snapshot."""
    app = create_app({"DATA_DIR": str(data_dir)}, clock=FrozenClock("2026-06-01T06:00:00Z"))
    with app.app_context():
        centre = app.extensions["kiosk"].centre
        services.load_demo_data(centre)
        store = centre.store
        store.storage.fsync = False
        start = dt.datetime(2026, 6, 1, 6, tzinfo=dt.timezone.utc)
        per_day = 500
        for base in range(0, count, per_day):
            day_start = start + dt.timedelta(days=base // per_day)
            with store.transaction():
                for i in range(per_day):
                    at = iso(day_start + dt.timedelta(seconds=30 * i))
                    store.put("tickets", {
                        "id": new_ulid(), "number": f"A-{i + 1:03d}", "service": "A", "priority": "normal",
                        "lang": "ar", "state": "done", "issued_at": at, "arrival_at": at,
                        "day": day_start.date().isoformat(), "seq_in_day": i + 1, "counter": "1",
                        "device": store.device_id,
                        "events": [{"state": "waiting", "at": at}, {"state": "called", "at": at, "counter": "1"},
                                   {"state": "serving", "at": at, "counter": "1"}, {"state": "done", "at": at}]})
        store.compact()
        app.extensions["kiosk"].close()


def timed_posts(url: str, n: int, body: dict) -> list[float]:
    """n sequential POSTs on one keep-alive connection; seconds each."""
    out = []
    with requests.Session() as s:
        for _ in range(20):
            s.post(url, json=body, timeout=10)  # warm-up
        for _ in range(n):
            t = time.perf_counter()
            r = s.post(url, json=body, timeout=10)
            out.append(time.perf_counter() - t)
            assert r.status_code == 201, r.text
    return out


def run_kiosk(data_dir: Path, n: int) -> list[float]:
    """Serve a data directory and time ticket requests against it."""
    port = free_port()
    env = {**os.environ, "KIOSK_DATA_DIR": str(data_dir), "KIOSK_TICKET_RATE_PER_MIN": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "kiosk", "serve", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_up(f"http://127.0.0.1:{port}/api/v1/services")
        return timed_posts(f"http://127.0.0.1:{port}/api/v1/tickets", n, {"service": "B"})
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def run_bare(n: int) -> list[float]:
    """The same requests against a WSGI app that does nothing."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", BARE_APP, str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_up(f"http://127.0.0.1:{port}/")
        return timed_posts(f"http://127.0.0.1:{port}/", n, {"service": "B"})
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def main() -> None:
    """Empty store, 100k store, bare baseline; print medians, p95 and ratios."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        empty, full = Path(tmp) / "empty", Path(tmp) / "full"
        fill(empty, 0)
        fill(full, args.records)
        rows = {"bare app, same server": run_bare(args.n), "kiosk, empty store": run_kiosk(empty, args.n),
                f"kiosk, {args.records} tickets": run_kiosk(full, args.n)}
    base = statistics.median(rows["bare app, same server"])
    print(f"{'server':<28} {'median ms':>10} {'p95 ms':>8} {'x bare':>7}")
    for name, xs in rows.items():
        xs = sorted(xs)
        med = statistics.median(xs)
        print(f"{name:<28} {med * 1000:>10.2f} {xs[int(len(xs) * 0.95)] * 1000:>8.2f} {med / base:>7.2f}")
    meds = [statistics.median(xs) for xs in rows.values()]
    print(f"flatness {args.records} tickets / empty: {meds[2] / meds[1]:.2f}x (aim <= 1.5x); "
          f"FQM's published median on this kind of machine is ~64 ms per ticket: {0.064 / meds[2]:.0f}x faster")


if __name__ == "__main__":
    main()
