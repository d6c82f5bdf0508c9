"""Backup of a serving kiosk: how long `flask --app kiosk backup` takes on a store with a long
history, and what it costs the tickets issued meanwhile.

    .venv/bin/python bench/bench_backup.py [--days 300] [--per-day 5000] [--keep DIR] [--rounds 3]
    .venv/bin/python bench/bench_backup.py --days 30 --per-day 1000          # a quick run

1. build: `simulate --days N --per-day M` into a fresh data directory (bench_year.py's builder;
   `--keep DIR` builds it there once and reuses it).
2. `flask --app kiosk serve` on it (printing off, no rate limit).
3. In turns, `--rounds` times: POST tickets one after another over one keep-alive connection for
   as long as a backup takes with no backup running (the baseline), then the same while
   `flask --app kiosk backup DEST` runs in another process; median, p99 and maximum of each, and
   the backup's wall and CPU time and size. Ratios are against the baseline of the same round.
"""
from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_year import ROOT, Server, build, env_for, ms, size_mb  # noqa: E402


def posts_while(server: Server, busy) -> list[float]:
    """POST tickets until `busy()` is false; their latencies, seconds."""
    out = []
    n = 0
    while busy():
        status, seconds = server.request("POST", "/api/v1/tickets", {"service": "ABC"[n % 3]})
        if status != 201:
            raise SystemExit(f"ticket refused: {status}")
        out.append(seconds)
        n += 1
    return out


def backup_round(server: Server, data: Path, dest: Path) -> tuple[list[float], float, float, str]:
    """POSTs during one backup: (latencies, wall s, CPU s, output)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "kiosk", "backup", str(dest), "--keep", "1"],
                            cwd=ROOT, env=env_for(data), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    latencies = posts_while(server, lambda: proc.poll() is None)
    out, err = proc.communicate()
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"backup failed:\n{out}\n{err}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return latencies, wall, cpu, out.strip()


def main() -> None:
    """Build (or reuse) the store, then measure in turns."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=300)
    parser.add_argument("--per-day", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", type=Path, default=None, help="build the store here once and reuse it")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-backup-"))
    try:
        data = args.keep or scratch / "year"
        if not (data / "store").exists():
            build(data, args.days, args.per_day)
        dest = scratch / "dest"
        dest.mkdir()
        print(f"## data directory: store {size_mb(data / 'store'):.1f} MB (journal "
              f"{size_mb(data / 'store' / 'journal'):.1f} MB), archive {size_mb(data / 'archive'):.1f} MB in "
              f"{len(list((data / 'archive').glob('*.jsonl.gz')))} files")
        server = Server(data, KIOSK_COMPACT_EVERY="1000000")
        try:
            posts_while(server, iter([True] * 50 + [False]).__next__)  # warm up
            rows = []
            for round_no in range(1, args.rounds + 1):
                during, wall, cpu, out = backup_round(server, data, dest)
                until = time.monotonic() + wall
                baseline = posts_while(server, lambda: time.monotonic() < until)
                rows.append((baseline, during, wall, cpu))
                print(f"round {round_no}: {out.splitlines()[0]}")
                print(f"  backup {wall:.2f} s wall, {cpu:.2f} s CPU; POSTs baseline n={len(baseline)} median "
                      f"{ms(baseline, 0.5):.2f} ms p99 {ms(baseline, 0.99):.2f} ms max {max(baseline) * 1000:.1f} ms; "
                      f"during backup n={len(during)} median {ms(during, 0.5):.2f} ms p99 {ms(during, 0.99):.2f} ms "
                      f"max {max(during) * 1000:.1f} ms")
        finally:
            server.stop()
        base_med = statistics.median(ms(b, 0.5) for b, _, _, _ in rows)
        dur_med = statistics.median(ms(d, 0.5) for _, d, _, _ in rows)
        base_p99 = statistics.median(ms(b, 0.99) for b, _, _, _ in rows)
        dur_p99 = statistics.median(ms(d, 0.99) for _, d, _, _ in rows)
        wall = statistics.median(w for _, _, w, _ in rows)
        size = size_mb(next(dest.iterdir()))
        print("## summary (medians of the rounds)")
        print(f"backup: {wall:.2f} s for {size:.1f} MB ({size / wall:.1f} MB/s)")
        print(f"ticket POST during a backup / without: median {dur_med / base_med:.2f}x ({dur_med:.2f} vs "
              f"{base_med:.2f} ms), p99 {dur_p99 / base_p99:.2f}x ({dur_p99:.2f} vs {base_p99:.2f} ms)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
