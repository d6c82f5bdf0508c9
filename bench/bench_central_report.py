"""Central's queue report for one centre's month, with a year of every centre's records around it.

    .venv/bin/python bench/bench_central_report.py [--centres 20] [--days 365] [--per-day 300] [--rounds 3]
                                                    [--database-url URL]

Builds central's database (SQLite by default, or the PostgreSQL URL given) twice: once holding
only one centre's last 30 days (the baseline), once holding `--days` days of `--centres` centres
(a year of a country), with tickets as kiosks push them (served, not present and transferred ones,
feedback on some). Then times, in turns: the centre's month report on the small database (the
baseline), the same report on the large one, and the national report of that month. A ratio
near 1.0 for the same report means it reads its own days' records only (the indexed service day),
not the history around them; the national report should cost about `--centres` times the
centre's.
"""
from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sync.central import db, queue_report  # noqa: E402
from sync.central.ingest import write_records  # noqa: E402
from sync.central.models import Centre  # noqa: E402

UTC = dt.timezone.utc
LAST = dt.date(2026, 11, 30)


def _iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def tickets(rng: random.Random, centre: str, day: dt.date, count: int, serial: list[int]):
    """A day of a centre's tickets and feedback, as central stores them."""
    for n in range(count):
        serial[0] += 1
        ticket_id = f"{centre}-{serial[0]:012d}"
        issued = dt.datetime.combine(day, dt.time(5, 0), UTC) + dt.timedelta(seconds=rng.randrange(9 * 3600))
        called = issued + dt.timedelta(seconds=rng.randrange(60, 3600))
        counter = str(rng.randrange(1, 9))
        events = [{"state": "waiting", "at": _iso(issued)},
                  {"state": "called", "at": _iso(called), "counter": counter, "by": f"att{counter}"}]
        roll = rng.random()
        if roll < 0.06:
            events.append({"state": "no_show", "at": _iso(called + dt.timedelta(minutes=3)), "counter": counter})
            state = "no_show"
        elif roll < 0.1:
            events.append({"state": "transferred", "at": _iso(called + dt.timedelta(minutes=2)), "counter": counter})
            state = "transferred"
        else:
            start = called + dt.timedelta(seconds=45)
            events += [{"state": "serving", "at": _iso(start), "counter": counter, "by": f"att{counter}"},
                       {"state": "done", "at": _iso(start + dt.timedelta(seconds=rng.randrange(60, 900))),
                        "counter": counter, "by": f"att{counter}"}]
            state = "done"
        service = "ABC"[n % 3]
        doc = {"id": ticket_id, "number": f"{service}-{n + 1:03d}", "service": service, "priority": "normal",
               "lang": "ar", "state": state, "issued_at": _iso(issued), "day": day.isoformat(), "events": events}
        yield "tickets", doc
        if state == "done" and rng.random() < 0.2:
            yield "feedback", {"id": ticket_id, "ticket": ticket_id, "day": day.isoformat(), "service": service,
                               "staff": f"att{counter}", "counter": counter, "score": rng.randrange(1, 6),
                               "at": events[-1]["at"]}


def build(url: str, centres: int, days: int, per_day: int) -> None:
    """Fill central's records: `days` days up to LAST of `centres` centres."""
    engine = db.make_engine(url)
    db.upgrade(engine)
    rng = random.Random(7)
    now = dt.datetime(2026, 12, 1, tzinfo=UTC)
    serial = [0]
    for c in range(centres):
        centre = f"C{c:03d}"
        with engine.begin() as conn:
            conn.execute(Centre.__table__.insert().values(code=centre, name=f"Centre {c}", created_at=now))
        rows = []
        for d in range(days):
            day = LAST - dt.timedelta(days=days - 1 - d)
            for table, doc in tickets(rng, centre, day, per_day, serial):
                rows.append({"centre": centre, "tbl": table, "key": doc["id"], "device_id": "D" * 26, "seq": 1,
                             "hlc": "0", "doc": doc, "deleted": False, "received_at": now, "updated_at": now,
                             "day": doc["day"]})
            if len(rows) > 20000:
                with engine.begin() as conn:
                    write_records(conn, rows)
                rows = []
        with engine.begin() as conn:
            write_records(conn, rows)
    engine.dispose()


def main() -> None:
    """Build, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--centres", type=int, default=20)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--per-day", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", help="a PostgreSQL URL (its records table is filled)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-central-report-"))
    small_url = f"sqlite:///{workdir / 'month.sqlite3'}"
    large_url = args.database_url or f"sqlite:///{workdir / 'year.sqlite3'}"
    began = time.perf_counter()
    build(small_url, 1, 30, args.per_day)
    build(large_url, args.centres, args.days, args.per_day)
    print(f"built {args.centres} centres x {args.days} days x {args.per_day} tickets in "
          f"{time.perf_counter() - began:.0f} s")
    first = LAST - dt.timedelta(days=29)
    engines = {"small": db.make_engine(small_url), "large": db.make_engine(large_url)}
    timings: dict[str, list[float]] = {"baseline": [], "same month, a year around it": [], "national month": []}
    issued = {}
    for round_ in range(args.rounds + 1):  # the first round warms caches and is not counted
        for name, engine, centre in (("baseline", engines["small"], "C000"),
                                     ("same month, a year around it", engines["large"], "C000"),
                                     ("national month", engines["large"], None)):
            with engine.connect() as conn:
                started = time.perf_counter()
                report = queue_report.report(conn, first, LAST, centre)
                if round_:
                    timings[name].append(time.perf_counter() - started)
            issued[name] = report["totals"]["issued"]
    base = statistics.median(timings["baseline"])
    for name, values in timings.items():
        median = statistics.median(values)
        print(f"{name:32s} {issued[name]:>9,} tickets  median {median * 1000:8.0f} ms  x{median / base:6.2f}")
    for engine in engines.values():
        engine.dispose()


if __name__ == "__main__":
    main()
