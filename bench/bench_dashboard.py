"""The national dashboard over a long history against the same dashboard over two weeks.

    .venv/bin/python bench/bench_dashboard.py [--centres 50] [--per-day 60] [--days 120] [--rounds 5]
                                              [--database-url URL]

Builds two central databases (SQLite files by default; --database-url takes an empty PostgreSQL
database and builds both in turn) with the same centres and the same tickets per day: one with
14 days of history (the baseline), one with --days. Each ticket has its record and four events, each
centre a request per ticket in 20 (one in 20 of them open), checkpoints and audit entries. Then it
times `dashboard.national` on both, in turns, and prints the medians, their ratio (1.0: the page
costs the same whatever the history behind today) and the number of SQL statements per page
(the same for 5 centres or 50: one query per measure, not per centre).
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import event, insert, text  # noqa: E402

from kiosk.ids import new_ulid  # noqa: E402
from sync.central import dashboard, db  # noqa: E402
from sync.central.i18n import TIMEZONE  # noqa: E402
from sync.central.models import (Base, Centre, Device, DeviceCursor, Record, TicketEventRow)  # noqa: E402

NOW = dt.datetime(2026, 11, 22, 9, 0, tzinfo=dt.timezone.utc)


def _iso(moment: dt.datetime) -> str:
    """The kiosks' time format."""
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def build(url: str, *, centres: int, per_day: int, days: int, seed: int = 7) -> object:
    """A migrated database at `url` holding `days` days of `per_day` tickets for each centre."""
    engine = db.make_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            conn.execute(text(f"DROP TABLE IF EXISTS {names}, alembic_version CASCADE"))
    db.upgrade(engine)
    rng = random.Random(seed)
    today = NOW.astimezone(TIMEZONE).date()
    with engine.begin() as conn:
        for c in range(centres):
            code = f"C{c:03d}"
            conn.execute(insert(Centre), [{"code": code, "name": code, "created_at": NOW}])
            device = new_ulid()
            conn.execute(insert(Device), [{"device_id": device, "centre": code, "label": "k", "public_key": "x",
                                           "key_id": "x", "status": "active", "enrolled_at": NOW,
                                           "last_push_at": NOW - dt.timedelta(hours=rng.choice((0, 0, 0, 9))),
                                           "head_seq": 10}])
            conn.execute(insert(DeviceCursor), [{"device_id": device, "last_seq": 8, "last_hlc": "", "updated_at": NOW}])
            records, events = [], []
            for back in range(days):
                day = today - dt.timedelta(days=back)
                for n in range(per_day):
                    issued = dt.datetime.combine(day, dt.time(8), TIMEZONE) + dt.timedelta(seconds=rng.randrange(8 * 3600))
                    if issued > NOW:
                        continue
                    tid = new_ulid()
                    evs = [("waiting", issued), ("called", issued + dt.timedelta(seconds=rng.randrange(60, 2400))),
                           ("serving", issued + dt.timedelta(seconds=2500)), ("done", issued + dt.timedelta(seconds=2900))]
                    doc = {"id": tid, "number": f"A-{n:03d}", "service": "A", "state": "done", "issued_at": _iso(issued),
                           "day": day.isoformat(), "events": [{"state": s, "at": _iso(t), "counter": "1", "by": "a"}
                                                             for s, t in evs]}
                    records.append({"centre": code, "tbl": "tickets", "key": tid, "device_id": device, "seq": 1,
                                    "hlc": "1", "doc": doc, "deleted": False, "received_at": NOW, "updated_at": NOW,
                                    "day": doc["day"]})  # as ingest fills it
                    events.extend({"ticket_id": tid, "idx": i, "centre": code, "device_id": device, "state": s,
                                   "at": _iso(t), "counter": "1", "by": "a", "event": {}, "received_at": NOW}
                                  for i, (s, t) in enumerate(evs))
                    if n % 20 == 0:
                        status = "open" if rng.random() < 0.05 else "completed"
                        records.append({"centre": code, "tbl": "requests", "key": "R" + tid, "device_id": device,
                                        "seq": 1, "hlc": "1", "deleted": False, "received_at": NOW, "updated_at": NOW,
                                        "day": None,
                                        "doc": {"id": "R" + tid, "status": status, "service": "A",
                                                "due_at": _iso(issued + dt.timedelta(hours=72))}})
                if len(events) > 40_000:
                    conn.execute(insert(Record), records)
                    conn.execute(insert(TicketEventRow), events)
                    records, events = [], []
            if records:
                conn.execute(insert(Record), records)
                conn.execute(insert(TicketEventRow), events)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
    return engine


def measure(engine, rounds: int) -> tuple[list[float], int, list[dict]]:
    """Times of `national` and the statements one call sends."""
    statements = []
    listener = lambda *args: statements.append(1)  # noqa: E731
    times, rows = [], []
    for _ in range(rounds):
        statements.clear()
        event.listen(engine, "before_cursor_execute", listener)
        started = time.perf_counter()
        with engine.connect() as conn:
            rows = dashboard.national(conn, NOW, stale_hours=6, target_wait_min=20)
        times.append(time.perf_counter() - started)
        event.remove(engine, "before_cursor_execute", listener)
    return times, len(statements), rows


def main() -> None:
    """Build, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--centres", type=int, default=50)
    parser.add_argument("--per-day", type=int, default=60)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database-url", help="an empty PostgreSQL database (default: SQLite files)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    results = {}
    for name, days, centres in (("baseline", 14, args.centres), ("history", args.days, args.centres),
                                ("few centres", args.days, max(1, args.centres // 10))):
        url = args.database_url or f"sqlite:///{work / (name.replace(' ', '-') + '.sqlite3')}"
        started = time.perf_counter()
        engine = build(url, centres=centres, per_day=args.per_day, days=days)
        built = time.perf_counter() - started
        measure(engine, 1)  # warm the caches
        times, statements, rows = measure(engine, args.rounds)
        results[name] = (statistics.median(times), statements)
        tickets = centres * args.per_day * days
        print(f"{name:12s} {centres:3d} centres x {days:4d} days x {args.per_day} tickets (~{tickets:,} tickets, "
              f"~{4 * tickets:,} events; built in {built:.0f} s): median {statistics.median(times) * 1000:.1f} ms, "
              f"{statements} statements, issued today {sum(r['issued'] for r in rows)}")
        engine.dispose()
        if not args.database_url:
            for path in work.glob("*"):
                os.unlink(path)
    base, long_ = results["baseline"], results["history"]
    print(f"history/baseline time ratio: {long_[0] / base[0]:.2f} (1.0 = independent of the history)")
    print(f"statements per page: {base[1]} ({args.centres} centres), {results['few centres'][1]} "
          f"({max(1, args.centres // 10)} centres)")
    os.rmdir(work)


if __name__ == "__main__":
    main()
