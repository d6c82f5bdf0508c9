"""Durability: the kiosk server is killed with SIGKILL at random moments while clients take tickets;
after every restart each ticket that was answered 201 is there with the same number."""
import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests

from kiosk.store import Store
from tests.processes import child_env, free_port, start_kiosk


@pytest.mark.slow
def test_sigkill_loses_no_acknowledged_ticket(data_dir, tmp_path):
    env = child_env(KIOSK_DATA_DIR=str(data_dir), KIOSK_TICKET_RATE_PER_MIN="0")
    subprocess.run([sys.executable, "-m", "flask", "--app", "kiosk", "demo-data"], check=True, timeout=60,
                   env=env, capture_output=True)
    rng = random.Random(20261122)
    acked: dict[str, str] = {}
    lock = threading.Lock()
    kills = 0
    started = time.monotonic()
    while kills < 20 and time.monotonic() - started < 240:
        port = free_port()
        proc = start_kiosk(env, port, tmp_path / "kiosk.log")  # also proves the store opened cleanly after the last kill
        stop = threading.Event()

        def client(seed):
            session = requests.Session()
            service = "ABC"[seed % 3]
            while not stop.is_set():
                try:
                    r = session.post(f"http://127.0.0.1:{port}/api/v1/tickets", json={"service": service}, timeout=5)
                except requests.RequestException:
                    return
                if r.status_code == 201:
                    t = r.json()["ticket"]
                    with lock:
                        acked[t["id"]] = t["number"]
                else:
                    assert r.status_code < 500, r.text
        threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.05, 0.6))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        stop.set()
        for t in threads:
            t.join(timeout=10)
        kills += 1
    assert kills >= 20, "bounded in time, but at least 20 kills"
    assert len(acked) > 100, "the clients did get tickets between kills"
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
