"""Durability: the kiosk server is killed with SIGKILL at random moments while clients take tickets,
also while it compacts a large store; after every restart each ticket that was answered 201 is
there with the same number."""
import datetime as dt
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests

from kiosk.clock import iso
from kiosk.ids import new_ulid
from kiosk.store import Store
from kiosk.store.journal import SNAPSHOT
from tests.processes import child_env, free_port, start_kiosk


class Clients:
    """Four clients taking tickets from a kiosk until it dies, keeping each acknowledged ticket."""

    def __init__(self, port: int, acked: dict[str, str]):
        """Start taking tickets on `port`; acknowledged ones go into `acked` (id -> number)."""
        self.port, self.acked = port, acked
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(4)]
        for t in self.threads:
            t.start()

    def run(self, seed: int) -> None:
        """Take tickets for one service until stopped or the server is gone."""
        session = requests.Session()
        service = "ABC"[seed % 3]
        while not self.stop.is_set():
            try:
                r = session.post(f"http://127.0.0.1:{self.port}/api/v1/tickets", json={"service": service}, timeout=5)
            except requests.RequestException:
                return
            if r.status_code == 201:
                t = r.json()["ticket"]
                with self.lock:
                    self.acked[t["id"]] = t["number"]
            else:
                assert r.status_code < 500, r.text

    def join(self) -> None:
        """Stop and wait for every client."""
        self.stop.set()
        for t in self.threads:
            t.join(timeout=10)


def demo_centre(data_dir: Path, env: dict[str, str]) -> None:
    """Load the demo centre into `data_dir`."""
    subprocess.run([sys.executable, "-m", "flask", "--app", "kiosk", "demo-data"], check=True, timeout=60,
                   env=env, capture_output=True)


def assert_nothing_lost(data_dir: Path, env: dict[str, str], acked: dict[str, str]) -> None:
    """Every acknowledged ticket is stored with its number, numbers are unique, `check` passes."""
    store = Store(data_dir)
    try:
        stored = {t["id"]: t["number"] for t in store.all("tickets")}
        missing = [i for i in acked if i not in stored]
        assert not missing, f"{len(missing)} acknowledged tickets lost"
        assert all(stored[i] == n for i, n in acked.items()), "a ticket changed its number"
        per_day_service = [(t["day"], t["service"], t["seq_in_day"]) for t in store.all("tickets")]
        assert len(per_day_service) == len(set(per_day_service)), "numbers are unique"
    finally:
        store.close()
    check = subprocess.run([sys.executable, "-m", "flask", "--app", "kiosk", "check"], capture_output=True, text=True,
                           env=env, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.slow
def test_sigkill_loses_no_acknowledged_ticket(data_dir, tmp_path):
    env = child_env(KIOSK_DATA_DIR=str(data_dir), KIOSK_TICKET_RATE_PER_MIN="0")
    demo_centre(data_dir, env)
    rng = random.Random(20261122)
    acked: dict[str, str] = {}
    kills = 0
    started = time.monotonic()
    while kills < 20 and time.monotonic() - started < 240:
        port = free_port()
        proc = start_kiosk(env, port, tmp_path / "kiosk.log")  # also proves the store opened cleanly after the last kill
        clients = Clients(port, acked)
        time.sleep(rng.uniform(0.05, 0.6))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        clients.join()
        kills += 1
    assert kills >= 20, "bounded in time, but at least 20 kills"
    assert len(acked) > 100, "the clients did get tickets between kills"
    assert_nothing_lost(data_dir, env, acked)


@pytest.mark.slow
def test_sigkill_during_compaction_loses_no_acknowledged_ticket(data_dir, tmp_path):
    """The serving kiosk compacts a store of 60,000 finished tickets (its housekeeping, at every
    chance) while clients take tickets, and is killed while the snapshot is being written."""
    env = child_env(KIOSK_DATA_DIR=str(data_dir), KIOSK_TICKET_RATE_PER_MIN="0", KIOSK_COMPACT_EVERY="1")
    demo_centre(data_dir, env)
    store = Store(data_dir, fsync=False)
    # today's finished tickets: earlier days' would leave the live store at the kiosk's first day close
    now = dt.datetime.now(dt.timezone.utc)
    at, day = iso(now), now.astimezone(ZoneInfo("Asia/Baghdad")).date().isoformat()
    for batch in range(120):
        with store.transaction():
            store.put("numbering", {"id": f"{day}:A", "day": day, "service": "A", "last": 500 * (batch + 1)})
            store.put_many("tickets", [
                {"id": new_ulid(), "number": f"A-{n:03d}", "service": "A", "priority": "normal", "lang": "ar",
                 "state": "done", "issued_at": at, "arrival_at": at, "day": day, "seq_in_day": n,
                 "counter": "1", "device": store.device_id,
                 "events": [{"state": "waiting", "at": at}, {"state": "called", "at": at, "counter": "1"},
                            {"state": "serving", "at": at, "counter": "1"}, {"state": "done", "at": at}]}
                for n in range(500 * batch + 1, 500 * batch + 501)])
    store.compact()
    store.close()
    tmp = data_dir / "store" / (SNAPSHOT + ".tmp")
    rng = random.Random(20261123)
    acked: dict[str, str] = {}
    mid_snapshot = 0
    for _ in range(3):
        port = free_port()
        proc = start_kiosk(env, port, tmp_path / "kiosk.log", timeout=60)
        clients = Clients(port, acked)
        deadline = time.monotonic() + 60  # housekeeping looks every 10 s
        while not tmp.exists() and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.1))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        mid_snapshot += tmp.exists()
        clients.join()
    assert mid_snapshot >= 2, f"only {mid_snapshot} of 3 kills landed while a snapshot was being written"
    assert len(acked) > 20, "the clients did get tickets while the kiosk compacted"
    assert_nothing_lost(data_dir, env, acked)
