"""Compaction benchmark: how long a durable ticket-sized put waits while compact() runs on a large store.

A writer thread puts tickets one after another (each fsynced) while the main thread compacts a
store of --records documents, --rounds times; the same writer runs first with no compaction (the
baseline) and, for comparison, once while a compaction holds the store lock throughout, as the
store did before snapshots were written outside the lock. Prints median, p99 and max put latency
of each, as ratios to the baseline measured in the same run. The writer puts back to back (the
harshest case: it keeps the disk busy with fsyncs) or, with --interval-ms, one put every so often.

    .venv/bin/python bench/bench_compaction.py [--records 300000] [--rounds 3] [--interval-ms 0]
"""
from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_store import fill, ticket  # noqa: E402
from kiosk.store import Store  # noqa: E402


class Collections:
    """Full (generation 2) garbage collections, as (start, seconds): they stop every thread, with or
    without compaction, so the table shows them beside the latencies they explain."""

    def __init__(self):
        """Listen to the collector."""
        self.full: list[tuple[float, float]] = []
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict) -> None:
        """Time each full collection."""
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.full.append((self._started, time.perf_counter() - self._started))

    def between(self, start: float, end: float) -> list[float]:
        """Durations of the full collections that ran in [start, end]."""
        return [s for t, s in self.full if start <= t <= end]


class Writer:
    """A thread putting ticket-sized documents, back to back or one every `interval` seconds,
    recording (start, seconds) of each."""

    def __init__(self, store: Store, interval: float = 0.0):
        """Write into `store` until stopped."""
        self.store = store
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, name="bench-writer")

    def run(self) -> None:
        """Put, time, repeat."""
        i = 0
        while not self.stop.is_set():
            doc = ticket(i)
            started = time.perf_counter()
            self.store.put("tickets", doc)
            self.samples.append((started, time.perf_counter() - started))
            i += 1
            if self.interval:
                self.stop.wait(self.interval)

    def __enter__(self):
        """Start writing."""
        self.thread.start()
        time.sleep(0.2)  # warm up before anything is measured
        return self

    def __exit__(self, *exc):
        """Stop writing."""
        self.stop.set()
        self.thread.join()

    def between(self, start: float, end: float) -> list[float]:
        """Latencies of the puts that were running at some moment in [start, end]."""
        return [s for t, s in self.samples if t <= end and t + s >= start]


def summary(latencies: list[float], collections: list[float]) -> dict:
    """Median, p99 and max in seconds, how many puts waited more than 50 ms, and the longest full
    garbage collection in the same time."""
    ordered = sorted(latencies)
    return {"n": len(ordered), "median": statistics.median(ordered),
            "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], "max": ordered[-1],
            "over_50ms": sum(1 for s in ordered if s > 0.05), "gc": max(collections, default=0.0)}


def main() -> None:
    """Fill, then measure the baseline, compaction as it is, and compaction under the lock."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=300_000, help="documents in the store")
    parser.add_argument("--rounds", type=int, default=3, help="compactions measured")
    parser.add_argument("--baseline-s", type=float, default=5.0, help="seconds of writes without compaction")
    parser.add_argument("--interval-ms", type=float, default=0.0, help="pause between puts (0: back to back)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        data_dir = Path(tmp) / "data"
        t = time.perf_counter()
        fill(data_dir, args.records)
        print(f"filled {args.records:,} tickets in {time.perf_counter() - t:.1f} s")
        collections = Collections()
        store = Store(data_dir)
        try:
            with Writer(store, args.interval_ms / 1000) as writer:
                start = time.perf_counter()
                time.sleep(args.baseline_s)
                end = time.perf_counter()
            base = summary(writer.between(start, end), collections.between(start, end))
            windows, results = [], []
            with Writer(store, args.interval_ms / 1000) as writer:
                for _ in range(args.rounds):
                    start = time.perf_counter()
                    results.append(store.compact())
                    windows.append((start, time.perf_counter()))
                    time.sleep(0.5)
            # read after the writer stopped: the put running when a window closed has finished
            compaction = summary([s for start, end in windows for s in writer.between(start, end)],
                                 [s for start, end in windows for s in collections.between(start, end)])
            took = [end - start for start, end in windows]
            with Writer(store, args.interval_ms / 1000) as writer:
                start = time.perf_counter()
                with store.lock:
                    store.compact()
                end = time.perf_counter()
            locked = summary(writer.between(start, end), collections.between(start, end))
        finally:
            store.close()
    print(f"writer: {'back to back' if not args.interval_ms else f'a put every {args.interval_ms:g} ms'}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"compaction: {statistics.median(took):.2f} s median over {args.rounds} rounds, snapshot "
          f"{results[-1]['snapshot_bytes'] / 1e6:.0f} MB; longest time writers were held out by the "
          f"store lock: {max(r['paused_s'] for r in results) * 1000:.2f} ms")
    print(f"{'writes':<28} {'puts':>6} {'median ms':>10} {'p99 ms':>8} {'max ms':>8} {'> 50 ms':>8} "
          f"{'p99 x':>7} {'max x':>7} {'full gc ms':>10}")
    for name, r in (("no compaction (baseline)", base), ("during compaction", compaction),
                    ("compaction holding the lock", locked)):
        print(f"{name:<28} {r['n']:>6} {r['median'] * 1000:>10.2f} {r['p99'] * 1000:>8.2f} {r['max'] * 1000:>8.2f} "
              f"{r['over_50ms']:>8} {r['p99'] / base['p99']:>7.2f} {r['max'] / base['max']:>7.2f} {r['gc'] * 1000:>10.1f}")


if __name__ == "__main__":
    main()
