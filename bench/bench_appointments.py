"""Appointments: what they cost the queue and what booking costs central.

1. A ticket's place (`services.ticket_view`) and the console's first 50 in call order
   (`services.waiting_list`) with 50 and 5,000 tickets waiting for a service, a fifth of them
   checked-in appointments whose slot has started: the place is still a few bisections of the
   index and the call order still reads only what it shows, so both should cost the same at both
   sizes. Medians and their ratio to the 50-waiting median, measured in the same run.
2. Booking at central over HTTP (waitress, 16 threads) on SQLite and, when reachable, PostgreSQL:
   50 bookings one after another, then 50 at once from 50 clients for a slot of capacity 50 (every
   booking succeeds) and for a slot of capacity 5 (45 refused as full). Wall time per booking and
   its ratio to the serial run of the same database.

    .venv/bin/python bench/bench_appointments.py [--repeat 1000] [--pg postgresql+psycopg://postgres@127.0.0.1:5432]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import secrets
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from kiosk import config, services  # noqa: E402
from kiosk.clock import FrozenClock, iso  # noqa: E402
from kiosk.events import Broker  # noqa: E402
from kiosk.store import Store  # noqa: E402

SLOT = dt.datetime(2026, 11, 22, 6, 0, tzinfo=dt.timezone.utc)
CLASSES = ("normal", "normal", "elderly", "normal", "disability")


# -- 1. the queue ----------------------------------------------------------------------------------

def centre_with(waiting: int, directory: Path) -> services.Centre:
    """A demo centre with `waiting` tickets for service A, every fifth an appointment checked in."""
    clock = FrozenClock(SLOT - dt.timedelta(hours=3))
    settings = config.load(directory, {"DATA_DIR": str(directory / "data"), "MAX_WAIT_MIN": 100000})
    centre = services.Centre(store=Store(settings["DATA_DIR"], clock=clock, fsync=False), clock=clock,
                             events=Broker(), config=settings)
    services.load_demo_data(centre)
    for i in range(waiting):
        if i % 5 == 4:
            slot = SLOT + dt.timedelta(minutes=(i // 5) % 60)
            booking = {"code": f"{i:08d}", "start_at": iso(slot), "end_at": iso(slot + dt.timedelta(minutes=15))}
            services.issue_ticket(centre, service="A", appointment=booking)
        else:
            services.issue_ticket(centre, service="A", priority=CLASSES[i % len(CLASSES)])
        clock.advance(1)
    clock.set(SLOT + dt.timedelta(hours=1))  # every slot has started
    return centre


def median_us(work, repeat: int) -> float:
    """Median microseconds of one call of `work`."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        work()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


def queue_table(repeat: int) -> None:
    """Part 1."""
    rows = {}
    for waiting in (50, 5000):
        with tempfile.TemporaryDirectory() as tmp:
            centre = centre_with(waiting, Path(tmp))
            tickets = centre.store.all("tickets")
            last_walk_in = max((t for t in tickets if not t.get("appointment")), key=lambda t: t["seq_in_day"])
            last_appointment = max((t for t in tickets if t.get("appointment")), key=lambda t: t["seq_in_day"])
            rows[waiting] = {
                "place, last walk-in": median_us(lambda: services.ticket_view(centre, last_walk_in), repeat),
                "place, last appointment": median_us(lambda: services.ticket_view(centre, last_appointment), repeat),
                "console's first 50": median_us(lambda: services.waiting_list(centre, "1"), max(1, repeat // 10)),
            }
            centre.store.close()
    print(f"{'measure':<26} {'waiting':>8} {'median us':>10} {'x 50 waiting':>13}")
    for waiting, measured in rows.items():
        for name, us in measured.items():
            print(f"{name:<26} {waiting:>8} {us:>10.1f} {us / rows[50][name]:>13.2f}")


# -- 2. booking at central -------------------------------------------------------------------------

HOURS = {day: ["08:00-12:00"] for day in ("sun", "mon", "tue", "wed", "thu")}


def central_on(url: str, directory: Path):
    """Central on `url`, ERB-01 bookable (capacity 50 for A, 5 for B), served over loopback."""
    from sync.central import create_app
    from tests.conftest import WsgiServer
    clock = FrozenClock("2026-11-22T09:00:00Z")
    app = create_app({"CENTRAL_DATABASE_URL": url, "CENTRAL_RECEIPTS_DIR": str(directory / "receipts"),
                      "CENTRAL_BOOKING_RATE_PER_MIN": 0}, clock=clock)
    runner = app.test_cli_runner()
    setup = {"settings": [{"id": "appointments", "days_ahead": 7, "services": {
        "A": {"slot_min": 15, "capacity": 50, "hours": HOURS}, "B": {"slot_min": 15, "capacity": 5, "hours": HOURS}}}]}
    (directory / "config.json").write_text(json.dumps(setup), encoding="utf-8")
    for args in (["add-centre", "ERB-01", "Erbil"], ["config-load", "ERB-01", str(directory / "config.json")],
                 ["trust-root-create"], ["booking-key-create"], ["trust-publish", "--verify-host", "v.example.iq"]):
        result = runner.invoke(args=args)
        assert result.exit_code == 0, result.output
    return app, WsgiServer(app, threads=16)


def book(url: str, service: str, start: str) -> int:
    """One booking over HTTP; its status."""
    with requests.post(f"{url}/api/v1/appointments", timeout=60,
                       json={"centre": "ERB-01", "service": service, "start": start, "lang": "ar"}) as answer:
        return answer.status_code


def booking_rows(name: str, url: str) -> None:
    """Part 2 on one database."""
    with tempfile.TemporaryDirectory() as tmp:
        app, server = central_on(url, Path(tmp))
        try:
            t = time.perf_counter()
            serial = [book(server.url, "A", "2026-11-23T05:00:00Z") for _ in range(50)]
            serial_ms = (time.perf_counter() - t) * 1000 / 50
            results = {}
            for label, service, start in (("50 at once, capacity 50", "A", "2026-11-23T05:15:00Z"),
                                          ("50 at once, capacity 5", "B", "2026-11-23T05:15:00Z")):
                with ThreadPoolExecutor(max_workers=50) as pool:
                    t = time.perf_counter()
                    statuses = list(pool.map(lambda _: book(server.url, service, start), range(50)))
                    results[label] = ((time.perf_counter() - t) * 1000 / 50, statuses.count(201))
        finally:
            server.stop()
            app.extensions["central"].engine.dispose()
    print(f"{name:<11} {'50 one after another':<26} {serial.count(201):>7} {serial_ms:>13.1f} {1:>10.2f}")
    for label, (ms, booked) in results.items():
        print(f"{name:<11} {label:<26} {booked:>7} {ms:>13.1f} {ms / serial_ms:>10.2f}")


def main(argv: list[str]) -> int:
    """Measure and print both tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=1000)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432")
    args = parser.parse_args(argv)
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # 50 clients at once queue on purpose
    queue_table(args.repeat)
    print()
    print(f"{'database':<11} {'bookings':<26} {'booked':>7} {'ms / booking':>13} {'x serial':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        booking_rows("SQLite", f"sqlite:///{Path(tmp) / 'central.sqlite3'}")
    name = f"bench_appointments_{secrets.token_hex(4)}"
    admin = create_engine(f"{args.pg}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - PostgreSQL is optional here
        print(f"PostgreSQL not measured ({exc.__class__.__name__})")
        admin.dispose()
        return 0
    try:
        booking_rows("PostgreSQL", f"{args.pg}/{name}")
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
