"""Exactly once through any network fault: a real kiosk issues and serves tickets while the agent
runs again and again through a proxy that drops, delays, duplicates and fails requests; central
restarted in the middle of a batch loses nothing."""
from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from kiosk import create_app as create_kiosk_app
from kiosk.clock import SystemClock
from kiosk import services
from kiosk.domain.tickets import allowed_actions
from sync import agent as agent_mod
from tests.processes import child_env, free_port
from sync.central.models import DeviceCursor, Record, TicketEventRow
from sync.inbox import apply_inbox
from tests.sync.support import FaultProxy, ticket_doc

ROOT = Path(__file__).resolve().parents[2]


def _central_records(engine, table: str) -> dict[str, dict]:
    """Live documents of a table at central, by key."""
    with engine.connect() as conn:
        rows = conn.execute(select(Record.key, Record.doc).where(Record.tbl == table, Record.deleted.is_(False))).all()
    return {r.key: r.doc for r in rows}


def _point_agent_at(kiosk_dir: Path, url: str) -> None:
    """Make the enrolled kiosk talk to `url` (the proxy) instead of central itself."""
    path = kiosk_dir / "sync" / "credential.json"
    credential = json.loads(path.read_text())
    credential["central_url"] = url
    path.write_text(json.dumps(credential))


@pytest.mark.slow
def test_records_reach_central_exactly_once_through_network_faults(enrolled, store, kiosk_dir, kiosk_clock, ops,
                                                                    central_server, make_agent, tmp_path):
    app = create_kiosk_app({"DATA_DIR": str(kiosk_dir), "SECRET_KEY": "k", "CENTRE": "ERB-01",
                            "TICKET_RATE_PER_MIN": 0}, store=store, clock=kiosk_clock)
    centre = app.extensions["kiosk"].centre
    services.load_demo_data(centre)
    proxy = FaultProxy(central_server.port, seed=20261122, rate=0.45, max_faults=70)
    _point_agent_at(kiosk_dir, proxy.url)
    rng = random.Random(5)
    done = threading.Event()
    errors: list[BaseException] = []
    rounds = [0]  # agent rounds finished (the kiosk thread paces itself on it)

    def kiosk_work():
        """Citizens take tickets, attendants serve them; pulled configuration is applied."""
        try:
            for step in range(160):
                kiosk_clock.advance(seconds=rng.uniform(1, 20))
                roll = rng.random()
                if roll < 0.45:
                    services.issue_ticket(centre, service=rng.choice("ABC"), lang=rng.choice(["ar", "ckb", "en"]))
                elif roll < 0.7:
                    services.call_next(centre, counter=rng.choice("123"), by="demo")
                else:
                    open_tickets = [t for t in store.all("tickets")
                                    if set(allowed_actions(t["state"])) & {"start", "finish", "no_show"}]
                    if open_tickets:
                        ticket = rng.choice(open_tickets)
                        action = rng.choice([a for a in allowed_actions(ticket["state"])
                                             if a in ("start", "finish", "no_show")])
                        services.act(centre, ticket["id"], action, by="demo", counter=ticket.get("counter"))
                if step % 10 == 0:
                    apply_inbox(store, kiosk_dir)
                    # keep pace with the agent whatever the machine's load: at least one round
                    # overlaps every ten steps
                    seen, deadline = rounds[0], time.monotonic() + 30
                    while rounds[0] == seen and time.monotonic() < deadline:
                        time.sleep(0.005)
                time.sleep(0.003)
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)
        finally:
            done.set()

    # central changes a fee while the kiosk is busy: the change must arrive through the same faults
    config = {"services": [{**s, "fee_iqd": 2500} if s["id"] == "C" else s for s in store.all("services")]}
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
    ops.cli("config-load", "ERB-01", str(config_path))

    worker = threading.Thread(target=kiosk_work)
    worker.start()
    agent = make_agent(batch_commits=15, retries=1)
    failures = runs = 0
    try:
        while not done.is_set():
            runs += 1
            try:
                agent.run()
            except agent_mod.SyncFailed:
                failures += 1
            rounds[0] += 1
        worker.join()
        assert not errors, errors
        for _ in range(300):  # bounded: the proxy stops harming requests after max_faults
            runs += 1
            try:
                agent.run()
            except agent_mod.SyncFailed:
                failures += 1
                continue
            if agent_mod.status(kiosk_dir)["pending"] == 0 and not os.listdir(kiosk_dir / "sync" / "inbox"):
                if apply_inbox(store, kiosk_dir) == 0:
                    break
            apply_inbox(store, kiosk_dir)
        else:
            pytest.fail("the agent never caught up")
    finally:
        proxy.stop()
        app.extensions["kiosk"].close()  # its printer queue too; closing the store twice is harmless

    harmed = {k: v for k, v in proxy.stats.items() if k != "pass"}
    assert set(harmed) == set(FaultProxy.FAULTS), proxy.stats
    assert failures > 0 and runs > failures
    kiosk_tickets = {t["id"]: t for t in store.all("tickets")}
    assert len(kiosk_tickets) > 40
    assert _central_records(ops.engine, "tickets") == kiosk_tickets
    assert _central_records(ops.engine, "audit") == {a["id"]: a for a in store.all("audit")}
    with ops.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Record)).scalar_one() == \
            len(kiosk_tickets) + len(store.all("audit"))
        assert conn.execute(select(func.count()).select_from(TicketEventRow)).scalar_one() == \
            sum(len(t["events"]) for t in kiosk_tickets.values())
        assert conn.execute(select(DeviceCursor.last_seq)).scalar_one() == store.seq
    assert {t["state"] for t in kiosk_tickets.values()} >= {"waiting", "done"}
    assert store.get("services", "C")["fee_iqd"] == 2500


def _central_cli(url: str, *args: str) -> str:
    """`flask --app sync.central ARGS` in a process of its own; its output."""
    env = child_env(CENTRAL_DATABASE_URL=url)
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "sync.central", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _start_central(url: str, port: int, log_path: Path) -> subprocess.Popen:
    """Central in its own process (gunicorn, as in production), ready to serve."""
    env = child_env(CENTRAL_DATABASE_URL=url)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}",
                                 "--graceful-timeout", "1", "sync.central:create_app()"],
                                cwd=ROOT, env=env, stdout=log, stderr=log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"central did not start: {log_path.read_text(errors='replace')[-2000:]}")


@pytest.mark.slow
def test_central_killed_mid_batch_loses_nothing(central_url_db, ops, store, kiosk_dir, kiosk_clock, tmp_path):
    port = free_port()
    log_path = tmp_path / "central.log"
    proc = _start_central(central_url_db, port, log_path)
    try:
        ops.add_centre()
        # central in its own process reads the machine's clock: the operator makes the code with
        # central's own command in a process of its own too, so both ends read the same clock
        code = _central_cli(central_url_db, "enroll", "ERB-01", "kiosk-1").splitlines()[0].strip()
        agent_mod.enroll(kiosk_dir, f"http://127.0.0.1:{port}", code, centre="ERB-01", clock=SystemClock())
        # enough batches that the kill, made as soon as central took the first, lands mid-push
        docs = [ticket_doc(number=i) for i in range(6000)]
        for doc in docs:
            store.put("tickets", doc)
        # central in its own process reads the real clock, so the agent signs with it too
        agent = agent_mod.Agent(kiosk_dir, centre="ERB-01", clock=SystemClock(), batch_commits=100,
                                retries=0, timeout=(2, 10))
        outcome: dict = {}

        def push():
            try:
                outcome["result"] = agent.run()
            except agent_mod.SyncFailed as exc:
                outcome["error"] = exc

        pusher = threading.Thread(target=push)
        pusher.start()
        with ops.engine.connect() as conn:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # kill once central has taken some batches, not all
                taken = conn.execute(select(DeviceCursor.last_seq)).scalar_one()
                conn.rollback()  # on SQLite every transaction holds the write lock: never sleep in one
                if taken > 0:
                    break
                time.sleep(0.01)
        _kill(proc)
        pusher.join(timeout=30)
        assert "error" in outcome, "central was killed after the push had finished"
        acked_before = agent_mod.read_state(kiosk_dir)["acked_seq"]
        assert acked_before < store.seq  # 0 when the kill took the answer to the first batch
        proc = _start_central(central_url_db, port, log_path)
        assert agent.run().acked_seq == store.seq
        assert _central_records(ops.engine, "tickets") == {d["id"]: d for d in docs}
        with ops.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(TicketEventRow)).scalar_one() == len(docs)
    finally:
        _kill(proc)


def _kill(proc: subprocess.Popen) -> None:
    """SIGKILL gunicorn's workers (one of them is mid-request), then its master."""
    for child in _children(proc.pid):
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.kill()
    proc.wait(timeout=10)


def _children(pid: int) -> list[int]:
    """Process ids of a process's children (gunicorn's workers)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(p) for p in fh.read().split()]
    except OSError:
        return []
