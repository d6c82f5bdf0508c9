"""Sync benchmarks: push throughput against a bare upsert, the cost of a no-op sync as history
grows, and central's ingest rate with many agents pushing at once.

    .venv/bin/python bench/bench_sync.py [--changes 100000] [--agents 20] [--per-agent 5000] [--no-pg]

Central runs as in production (gunicorn, in a child process) on SQLite and on PostgreSQL (a
database created for the run and dropped after it, on SYNC_BENCH_PG, default
postgresql+psycopg://postgres@127.0.0.1:5432). The kiosk journal is written through the real
store: tickets going waiting -> called -> serving -> done, each step with its audit entry, as the
use cases commit them. Ratios are measured in the same run: push rate over loopback HTTP divided by
a bare batched upsert of the very rows central writes (records and ticket events), in the same
database and batch sizes, without HTTP, JSON, gzip, signatures or validation.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import secrets
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

from sqlalchemy import create_engine, text  # noqa: E402

from kiosk.clock import SystemClock, iso  # noqa: E402
from kiosk.ids import new_ulid  # noqa: E402
from kiosk.store import Store, feed  # noqa: E402
from sync import agent as agent_mod  # noqa: E402
from sync import protocol  # noqa: E402
from sync.central import db  # noqa: E402
from sync.central.ingest import write_events, write_records  # noqa: E402

PG_SERVER = os.environ.get("SYNC_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
STEPS = ("called", "serving", "done")


# -- the kiosk side --------------------------------------------------------------------------------

def fill_store(data_dir: Path, changes: int) -> int:
    """Write tickets through their whole life until `changes` pushed changes exist; return the commit count."""
    store = Store(data_dir, fsync=False)
    clock = SystemClock()
    written = 0
    audit_n = 0
    try:
        while written < changes:
            now = iso(clock.now())
            ticket = {"id": new_ulid(), "number": f"A-{written % 999:03d}", "service": "A", "priority": "normal",
                      "lang": "ar", "state": "waiting", "issued_at": now, "arrival_at": now, "day": now[:10],
                      "seq_in_day": written, "counter": None, "device": store.device_id,
                      "events": [{"state": "waiting", "at": now}]}
            with store.transaction():
                store.put("tickets", ticket)
                store.put("numbering", {"id": f"{now[:10]}:A", "last": written})
            written += 1
            for state in STEPS:
                if written >= changes:
                    break
                ticket = {**ticket, "state": state, "counter": "1",
                          "events": ticket["events"] + [{"state": state, "at": now, "counter": "1", "by": "demo"}]}
                audit_n += 1
                entry = {"id": new_ulid(), "n": audit_n, "prev": "0" * 64, "at": now, "actor": "demo",
                         "action": state, "target": ticket["id"], "detail": {}, "hash": f"{audit_n:064x}"}
                with store.transaction():
                    store.put("tickets", ticket)
                    store.put("audit", entry)
                    store.put("settings", {"id": "audit_head", "n": audit_n, "hash": entry["hash"]})
                written += 2
        return store.seq
    finally:
        store.close()
        os.sync()  # written without per-commit fsync for speed: flush now, not in the timed push


def enrol(data_dir: Path, url: str, code: str) -> None:
    """Enrol a kiosk data directory at central."""
    agent_mod.enroll(data_dir, url, code, centre="BENCH")


# -- central ---------------------------------------------------------------------------------------

def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CentralProcess:
    """gunicorn serving sync.central on a database URL."""

    def __init__(self, url: str, workers: int, log: Path):
        """Start and wait until it answers."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "CENTRAL_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
        with open(log, "ab") as fh:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{self.port}",
                 "--timeout", "120", "sync.central:create_app()"],
                cwd=ROOT, env=env, stdout=fh, stderr=fh)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"central did not start; see {log}")

    def stop(self) -> None:
        """Stop gunicorn."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def flask_cli(url: str, *args: str) -> str:
    """Run an operator command against the database."""
    env = {**os.environ, "CENTRAL_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "flask", "--app", "sync.central", *args], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True)
    return out.stdout


class Database:
    """A central database for one measurement (SQLite file or a fresh PostgreSQL database)."""

    def __init__(self, kind: str, workdir: Path, name: str):
        """Create and migrate it."""
        self.kind = kind
        if kind == "sqlite":
            self.url = f"sqlite:///{workdir / (name + '.sqlite3')}"
        else:
            self.name = f"kiosk_sync_bench_{secrets.token_hex(4)}_{name}"
            admin = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{self.name}"'))
            admin.dispose()
            self.url = f"{PG_SERVER}/{self.name}"
        engine = db.make_engine(self.url)
        db.upgrade(engine)
        engine.dispose()

    def drop(self) -> None:
        """Remove the PostgreSQL database (SQLite files go with the work directory)."""
        if self.kind == "postgresql":
            admin = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
            admin.dispose()


# -- measurements ----------------------------------------------------------------------------------

def bare_rows(store_dir: Path, batch_commits: int, batch_bytes: int) -> list[tuple[list[dict], list[dict]]]:
    """The record and event rows central writes, batch by batch, exactly as ingest builds them."""
    import datetime as dt
    now = dt.datetime.now(dt.timezone.utc)
    batches = []
    after, position = 0, None
    while True:
        commits, position = feed.read(store_dir, after, position=position, max_commits=batch_commits,
                                      max_bytes=batch_bytes)
        if not commits:
            return batches
        latest, events = {}, {}
        for c in commits:
            for ch in c["c"]:
                if ch["t"] not in protocol.PUSH_TABLES:
                    continue
                latest[(ch["t"], ch["k"])] = (ch, c["s"], c["h"])
                if ch["t"] == "tickets":
                    for idx, ev in enumerate(ch["d"]["events"]):
                        events.setdefault((ch["k"], idx), {
                            "ticket_id": ch["k"], "idx": idx, "centre": "BENCH", "device_id": "D" * 26,
                            "state": ev["state"], "at": ev["at"], "counter": ev.get("counter"), "by": ev.get("by"),
                            "event": ev, "received_at": now})
        records = [{"centre": "BENCH", "tbl": t, "key": k, "device_id": "D" * 26, "seq": s, "hlc": h,
                    "doc": ch["d"], "deleted": False, "received_at": now, "updated_at": now}
                   for (t, k), (ch, s, h) in latest.items()]
        batches.append((records, list(events.values())))
        after = commits[-1]["s"]


def pushed_changes(store_dir: Path) -> int:
    """How many kiosk-authoritative changes the journal holds."""
    total, after, position = 0, 0, None
    while True:
        commits, position = feed.read(store_dir, after, position=position, max_commits=5000, max_bytes=10_000_000)
        if not commits:
            return total
        total += sum(1 for c in commits for ch in c["c"] if ch["t"] in protocol.PUSH_TABLES)
        after = commits[-1]["s"]


def bench_bare(url: str, batches) -> float:
    """Seconds to upsert the rows directly, one transaction per batch."""
    engine = db.make_engine(url)
    start = time.perf_counter()
    for records, events in batches:
        with engine.begin() as conn:
            write_records(conn, records)
            write_events(conn, events)
    elapsed = time.perf_counter() - start
    engine.dispose()
    return elapsed


def bench_push(kind: str, workdir: Path, kiosk: Path, changes: int, batch_commits: int, batch_bytes: int) -> dict:
    """Push the whole journal over HTTP, then upsert the same rows bare; rates and ratio."""
    pushed = Database(kind, workdir, "push")
    bare = Database(kind, workdir, "bare")
    bare_again = Database(kind, workdir, "bare2")
    central = CentralProcess(pushed.url, workers=2, log=workdir / f"central-{kind}.log")
    data = workdir / f"kiosk-{kind}"
    try:
        shutil.copytree(kiosk, data)
        flask_cli(pushed.url, "add-centre", "BENCH", "Benchmark centre")
        enrol(data, central.url, flask_cli(pushed.url, "enroll", "BENCH", "kiosk-1").split()[0])
        agent = agent_mod.Agent(data, centre="BENCH", batch_commits=batch_commits, batch_bytes=batch_bytes)
        batches = bare_rows(data / "store", batch_commits, batch_bytes)
        # the machine is shared: the baseline runs before and after the push, and the faster of
        # the two counts (which can only make the ratio look worse)
        bare_s = bench_bare(bare.url, batches)
        start = time.perf_counter()
        outcome = agent.run()
        push_s = time.perf_counter() - start
        bare_s = min(bare_s, bench_bare(bare_again.url, batches))
        noop = []
        for _ in range(15):
            t = time.perf_counter()
            agent.run()
            noop.append(time.perf_counter() - t)
        push_only = []
        for _ in range(50):
            agent.state = agent_mod.read_state(data)
            t = time.perf_counter()
            agent.push()
            push_only.append(time.perf_counter() - t)
        return {"kind": kind, "changes": changes, "commits": outcome.pushed_commits, "push_s": push_s,
                "bare_s": bare_s, "push_rate": changes / push_s, "bare_rate": changes / bare_s,
                "ratio": bare_s / push_s, "noop_ms": statistics.median(noop) * 1000,
                "noop_push_ms": statistics.median(push_only) * 1000}
    finally:
        central.stop()
        for database in (pushed, bare, bare_again):
            database.drop()


def bench_noop_growth(workdir: Path, sizes: list[int]) -> list[dict]:
    """No-op round (stat + state read + one pull request) as the history grows, on SQLite central."""
    database = Database("sqlite", workdir, "noop")
    central = CentralProcess(database.url, workers=1, log=workdir / "central-noop.log")
    data = workdir / "kiosk-noop"
    out = []
    try:
        flask_cli(database.url, "add-centre", "BENCH", "Benchmark centre")
        data.mkdir()
        Store(data, fsync=False).close()
        enrol(data, central.url, flask_cli(database.url, "enroll", "BENCH", "kiosk-1").split()[0])
        agent = agent_mod.Agent(data, centre="BENCH")
        have = 0
        for size in sizes:
            fill_store(data, size - have)
            have = size
            agent.run()
            times, push_times = [], []
            for _ in range(15):
                t = time.perf_counter()
                agent.run()
                times.append(time.perf_counter() - t)
            for _ in range(50):
                agent.state = agent_mod.read_state(data)
                t = time.perf_counter()
                agent.push()
                push_times.append(time.perf_counter() - t)
            out.append({"changes": size, "noop_ms": statistics.median(times) * 1000,
                        "push_ms": statistics.median(push_times) * 1000})
        return out
    finally:
        central.stop()
        database.drop()


def _one_agent(args) -> tuple[int, float, float]:
    """Child process: push one kiosk's journal; (changes, start, end) in wall-clock seconds."""
    data, changes = args
    agent = agent_mod.Agent(Path(data), centre="BENCH")
    start = time.time()
    agent.run()
    return changes, start, time.time()


def bench_concurrent(workdir: Path, agents: int, per_agent: int, template: Path) -> dict:
    """N agents pushing at once to gunicorn + PostgreSQL."""
    database = Database("postgresql", workdir, "many")
    workers = 4
    central = CentralProcess(database.url, workers=workers, log=workdir / "central-many.log")
    try:
        flask_cli(database.url, "add-centre", "BENCH", "Benchmark centre")
        dirs = []
        for i in range(agents):
            data = workdir / f"kiosk-many-{i}"
            shutil.copytree(template, data)
            (data / "device.json").write_text(json.dumps({"device_id": new_ulid(), "created_at": "x"}))
            enrol(data, central.url, flask_cli(database.url, "enroll", "BENCH", f"kiosk-{i}").split()[0])
            dirs.append(str(data))
        changes = pushed_changes(template / "store")
        with multiprocessing.get_context("fork").Pool(agents) as pool:
            results = pool.map(_one_agent, [(d, changes) for d in dirs])
        start = min(r[1] for r in results)
        end = max(r[2] for r in results)
        total = sum(r[0] for r in results)
        return {"agents": agents, "workers": workers, "total": total, "seconds": end - start,
                "rate": total / (end - start)}
    finally:
        central.stop()
        database.drop()


def main() -> None:
    """Run the benchmarks and print their tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=100_000)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--per-agent", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=protocol.DEFAULT_BATCH_COMMITS)
    parser.add_argument("--no-pg", action="store_true", help="skip PostgreSQL (not a complete run)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    try:
        kiosk = workdir / "kiosk"
        kiosk.mkdir()
        t = time.perf_counter()
        commits = fill_store(kiosk, args.changes)
        changes = pushed_changes(kiosk / "store")
        print(f"journal: {changes} pushed changes in {commits} commits "
              f"({time.perf_counter() - t:.1f} s to write through the store)")
        print(f"\npush {changes} changes over loopback HTTP (batches of {args.batch} commits, 1 MB) "
              "vs a bare batched upsert of the same rows")
        print("| central | push s | records/s | bare s | bare records/s | push / bare | no-op round ms | no-op push ms |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for kind in ("sqlite",) + (() if args.no_pg else ("postgresql",)):
            r = bench_push(kind, workdir, kiosk, changes, args.batch, protocol.DEFAULT_BATCH_BYTES)
            print(f"| {kind} | {r['push_s']:.1f} | {r['push_rate']:,.0f} | {r['bare_s']:.1f} | {r['bare_rate']:,.0f} "
                  f"| {r['ratio']:.2f} | {r['noop_ms']:.1f} | {r['noop_push_ms']:.2f} |")
        print("\nno-op sync as history grows (SQLite central; a round = push check + one pull request)")
        print("| changes stored | no-op round ms | push check ms |")
        print("| ---: | ---: | ---: |")
        rows = bench_noop_growth(workdir, [1_000, 10_000, args.changes])
        for r in rows:
            print(f"| {r['changes']:,} | {r['noop_ms']:.1f} | {r['push_ms']:.3f} |")
        print(f"flatness {rows[-1]['changes']:,}/{rows[0]['changes']:,}: round {rows[-1]['noop_ms'] / rows[0]['noop_ms']:.2f}x, "
              f"push check {rows[-1]['push_ms'] / rows[0]['push_ms']:.2f}x")
        if not args.no_pg:
            template = workdir / "kiosk-template"
            template.mkdir()
            fill_store(template, args.per_agent)
            r = bench_concurrent(workdir, args.agents, args.per_agent, template)
            national = 500 * 25_000
            print(f"\n{r['agents']} agents pushing at once to gunicorn ({r['workers']} workers) + PostgreSQL")
            print(f"{r['total']:,} changes in {r['seconds']:.1f} s = {r['rate']:,.0f} records/s sustained")
            print(f"national load 500 centres x 25k changes/day = {national:,}/day = {national / 86400:,.0f}/s average, "
                  f"{national / (8 * 3600):,.0f}/s if all in 8 opening hours: "
                  f"{r['rate'] / (national / (8 * 3600)):.1f}x headroom; a whole day's national backlog "
                  f"in {national / r['rate'] / 3600:.1f} h")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
