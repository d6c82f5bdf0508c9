"""The queue report over a year of archived days against the same report over a month.

    .venv/bin/python bench/bench_queue_report.py [--days 365] [--per-day 100] [--rounds 3] [--keep DIR]

Builds the days with `flask --app kiosk simulate` (closed days, all in the archive), then times
`insight.queue_report` for the last 30 days (the baseline) and for all the days, in turns, and
prints the medians, the ratio and the ratio per ticket (1.0 means the report costs the same per
ticket whatever the range: it reads each archived day once).
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kiosk import create_app  # noqa: E402
from kiosk.store.archive import Archive  # noqa: E402
from kiosk.usecases import insight  # noqa: E402


def main() -> None:
    """Build, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--per-day", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", help="build into (or reuse) this data directory")
    args = parser.parse_args()
    data_dir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-report-"))
    try:
        if not (data_dir / "archive").exists():
            data_dir.mkdir(mode=0o700, exist_ok=True)
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "flask", "--app", "kiosk", "simulate", "--days", str(args.days),
                            "--per-day", str(args.per_day), "--quiet"], check=True, cwd=ROOT,
                           env={**os.environ, "KIOSK_DATA_DIR": str(data_dir)})
            print(f"built {args.days} days x ~{args.per_day} tickets in {time.perf_counter() - started:.1f} s")
        days = sorted({p.day for p in Archive(data_dir).parts()})
        first, last = dt.date.fromisoformat(days[0]), dt.date.fromisoformat(days[-1])
        month_first = last - dt.timedelta(days=29)
        app = create_app({"DATA_DIR": str(data_dir), "SECRET_KEY": "bench", "PRINTER_URL": "off"})
        centre = app.extensions["kiosk"].centre
        timings: dict[str, list[float]] = {"month": [], "year": []}
        sizes = {}
        try:
            for _ in range(args.rounds):
                for name, start in (("month", month_first), ("year", first)):
                    began = time.perf_counter()
                    report = insight.queue_report(centre, start, last)
                    timings[name].append(time.perf_counter() - began)
                    sizes[name] = report["totals"]["issued"]
        finally:
            app.extensions["kiosk"].close()
        month, year = statistics.median(timings["month"]), statistics.median(timings["year"])
        print(f"month: {sizes['month']} tickets, median {month * 1000:.0f} ms")
        print(f"year ({len(days)} days): {sizes['year']} tickets, median {year * 1000:.0f} ms")
        print(f"year / month: {year / month:.1f}x time for {sizes['year'] / sizes['month']:.1f}x tickets "
              f"(per ticket: {(year / sizes['year']) / (month / sizes['month']):.2f})")
    finally:
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
