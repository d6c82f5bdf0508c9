"""A waiting ticket's place and estimate (`services.ticket_view`: what the kiosk, the API and a
phone following the ticket read) with 5 and with 5,000 tickets waiting for its service, priority
and normal mixed, for the last normal and the last priority ticket.

The place counts the calls the queue rule makes before the ticket (priority tickets where they
will be called) from a few bisections of the queue index, so it should cost the same at both
sizes. Prints medians and their ratio to the 5-waiting median, measured in the same run.

    .venv/bin/python bench/bench_place.py [--repeat 2000]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kiosk import config, services  # noqa: E402
from kiosk.clock import FrozenClock  # noqa: E402
from kiosk.events import Broker  # noqa: E402
from kiosk.store import Store  # noqa: E402

CLASSES = ("normal", "normal", "elderly", "normal", "disability", "normal", "pregnancy")


def centre_with(waiting: int, directory: Path) -> services.Centre:
    """A demo centre with `waiting` tickets waiting for service A (no fsync: the reads are measured)."""
    clock = FrozenClock("2026-11-22T06:00:00Z")
    settings = config.load(directory, {"DATA_DIR": str(directory / "data"), "MAX_WAIT_MIN": 100000})
    centre = services.Centre(store=Store(settings["DATA_DIR"], clock=clock, fsync=False), clock=clock,
                             events=Broker(), config=settings)
    services.load_demo_data(centre)
    services.update_service(centre, "A", by="bench", daily_cap=None)
    for i in range(waiting):
        services.issue_ticket(centre, service="A", priority=CLASSES[i % len(CLASSES)])
        clock.advance(1)
    return centre


def median_us(centre: services.Centre, ticket: dict, repeat: int) -> float:
    """Median microseconds of one ticket_view."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        services.ticket_view(centre, ticket)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


def main(argv: list[str]) -> int:
    """Measure both sizes and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args(argv)
    rows = {}
    for waiting in (5, 5000):
        with tempfile.TemporaryDirectory() as tmp:
            centre = centre_with(waiting, Path(tmp))
            tickets = centre.store.all("tickets")
            last_normal = max((t for t in tickets if t["priority"] == "normal"), key=lambda t: t["seq_in_day"])
            last_priority = max((t for t in tickets if t["priority"] != "normal"), key=lambda t: t["seq_in_day"])
            rows[waiting] = {name: (median_us(centre, t, args.repeat), services.ticket_view(centre, t)["ahead"])
                             for name, t in (("last normal", last_normal), ("last priority", last_priority))}
            centre.store.close()
    print(f"{'ticket':<15} {'waiting':>8} {'ahead':>6} {'median us':>10} {'x 5 waiting':>12}")
    for waiting, measured in rows.items():
        for name, (us, ahead) in measured.items():
            print(f"{name:<15} {waiting:>8} {ahead:>6} {us:>10.1f} {us / rows[5][name][0]:>12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
