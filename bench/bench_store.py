"""Store benchmark: durable insert/update cost with 0, 20k and 100k records stored, and open time.

Prints each median as a ratio to a bare 200-byte append+fsync measured in the same run (the
machine is shared and noisy, so only ratios within one run mean anything).

    .venv/bin/python bench/bench_store.py [--n 300]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kiosk.ids import new_ulid  # noqa: E402
from kiosk.store import Store  # noqa: E402


def ticket(i: int) -> dict:
    """A ticket-sized document (~400 bytes of JSON)."""
    return {"id": new_ulid(), "number": f"A-{i % 1000:03d}", "service": "A", "priority": "normal", "lang": "ar",
            "state": "waiting", "issued_at": "2026-11-22T08:00:00.000Z", "arrival_at": "2026-11-22T08:00:00.000Z",
            "day": "2026-11-22", "seq_in_day": i, "counter": None, "device": "01JBENCH00000000000000000",
            "events": [{"state": "waiting", "at": "2026-11-22T08:00:00.000Z"}]}


def bare_fsync(directory: Path, n: int) -> list[float]:
    """Append 200 bytes and fsync, n times: the floor for any durable write."""
    path = directory / "bare.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    out = []
    try:
        for _ in range(n):
            t = time.perf_counter()
            os.write(fd, b"x" * 199 + b"\n")
            os.fsync(fd)
            out.append(time.perf_counter() - t)
    finally:
        os.close(fd)
    return out


def fill(data_dir: Path, count: int) -> None:
    """Put `count` tickets into a store quickly (no fsync), then snapshot it."""
    store = Store(data_dir, fsync=False)
    batch = 2000
    for start in range(0, count, batch):
        with store.transaction():
            for i in range(start, min(count, start + batch)):
                store.put("tickets", ticket(i))
    store.compact()
    store.close()


def measure(data_dir: Path, n: int) -> dict:
    """Median insert and update (durable) on a store, and the time to open it."""
    t = time.perf_counter()
    store = Store(data_dir)
    opened = time.perf_counter() - t
    inserts, updates, ids = [], [], []
    for i in range(n):
        doc = ticket(i)
        t = time.perf_counter()
        store.put("tickets", doc)
        inserts.append(time.perf_counter() - t)
        ids.append(doc["id"])
    for doc_id in ids:
        doc = store.get("tickets", doc_id)
        doc["state"] = "called"
        t = time.perf_counter()
        store.put("tickets", doc)
        updates.append(time.perf_counter() - t)
    store.close()
    return {"open_s": opened, "insert": statistics.median(inserts), "update": statistics.median(updates)}


def main() -> None:
    """Run every size and print the table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=300, help="timed writes per size")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        tmp = Path(tmp)
        results = {}
        for size in (0, 20_000, 100_000):
            data_dir = tmp / f"s{size}"
            if size:
                fill(data_dir, size)
            results[size] = measure(data_dir, args.n)
        base = statistics.median(bare_fsync(tmp, args.n * 2))
    print(f"bare 200-byte append+fsync median: {base * 1000:.3f} ms")
    print(f"{'records':>8} {'insert ms':>10} {'x fsync':>8} {'update ms':>10} {'x fsync':>8} {'open s':>7}")
    for size, r in results.items():
        print(f"{size:>8} {r['insert'] * 1000:>10.3f} {r['insert'] / base:>8.2f} {r['update'] * 1000:>10.3f} "
              f"{r['update'] / base:>8.2f} {r['open_s']:>7.3f}")
    flat_i = results[100_000]["insert"] / results[0]["insert"]
    flat_u = results[100_000]["update"] / results[0]["update"]
    print(f"flatness 100k/empty: insert {flat_i:.2f}x, update {flat_u:.2f}x (aim <= 1.5x)")


if __name__ == "__main__":
    main()
