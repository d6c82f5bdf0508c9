"""Printing through the spool and the print worker, seen from the kiosk: the server killed with
SIGKILL right after answering a ticket prints it after its restart; a full print queue refuses
without delaying tickets and says so on the console; PRINT_QUEUE_MAX is checked at start-up."""
from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest
import requests

from kiosk.config import ConfigError, load
from tests.hardware.doubles.escpos_decode import decode
from tests.hardware.doubles.printer import PrinterDouble
from tests.processes import child_env, free_port, start_kiosk
from tests.web.conftest import Staff

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture
def double():
    """A printer double on a free loopback port."""
    with PrinterDouble() as printer:
        yield printer


def children(pid: int) -> set[int]:
    """The direct children of a process, from /proc."""
    found = set()
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        found |= {int(c) for c in (task / "children").read_text().split()}
    return found


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.slow
def test_kiosk_killed_right_after_a_ticket_prints_it_after_restart(data_dir, double, tmp_path):
    """The answer 201 means the print job is spooled: kill -9 of the kiosk at that moment takes its
    worker down with it, and the restarted kiosk prints the ticket, once."""
    env = child_env(KIOSK_DATA_DIR=str(data_dir), KIOSK_TICKET_RATE_PER_MIN="0", KIOSK_PRINTER_URL=double.url)
    subprocess.run([sys.executable, "-m", "flask", "--app", "kiosk", "demo-data"], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=60)
    double.set_state("down")  # the job cannot print before the kill
    port = free_port()
    kiosk = start_kiosk(env, port, tmp_path / "kiosk.log")
    try:
        answer = requests.post(f"http://127.0.0.1:{port}/api/v1/tickets", json={"service": "A", "lang": "ckb"},
                               timeout=10)
        assert answer.status_code == 201
        workers = children(kiosk.pid)
        os.kill(kiosk.pid, signal.SIGKILL)
        kiosk.wait(10)
    finally:
        if kiosk.poll() is None:
            kiosk.kill()
            kiosk.wait(10)
    assert len(workers) == 1, "one print worker per kiosk"
    deadline = time.monotonic() + 15
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in workers), "the print worker outlived the kiosk"
    assert double.jobs == []

    double.set_state("online")
    kiosk = start_kiosk(env, port, tmp_path / "kiosk.log")
    try:
        assert double.wait_for_jobs(1, 30), "the spooled ticket was not printed after the restart"
        time.sleep(0.5)
        assert len(double.jobs) == 1, "printed exactly once"
        assert decode(double.jobs[0]).qr_codes[0].payload == answer.json()["ticket"]["qr"]
    finally:
        kiosk.terminate()
        kiosk.wait(30)


@pytest.fixture
def app_config(app_config, double):
    """A network printer that is down, and room for two waiting print jobs."""
    double.set_state("down")
    return {**app_config, "PRINTER_URL": double.url, "PRINT_QUEUE_MAX": 2}


def test_a_full_print_queue_delays_no_ticket_and_shows_on_the_console(app, client, double):
    """Tickets beyond the bound are issued as fast as the others, not printed, and the console says so."""
    times = []
    for _ in range(4):
        started = time.monotonic()
        assert client.post("/api/v1/tickets", json={"service": "A"}).status_code == 201
        times.append(time.monotonic() - started)
    assert max(times) < 1.0, times
    printing = app.extensions["kiosk"].centre.printer
    status = printing.status()
    assert (status["pending"], status["refused"], status["full"]) == (2, 2, True)
    staff = Staff(client)
    staff.post("/lang", {"lang": "en", "next": "/counter"})
    staff.post("/counter/open", {"counter": "1"})
    page = staff.get("/counter/1").get_data(as_text=True)
    assert "The print queue is full" in page and "2 tickets waiting to print" in page
    double.set_state("online")
    assert printing.printer.wait_idle(20) and double.wait_for_jobs(2, 5)
    assert "The print queue is full" not in staff.get("/counter/1").get_data(as_text=True)


def test_print_queue_max_is_checked_at_start_up(tmp_path):
    """A bound of nothing, or not a number, stops the kiosk with a message naming the setting."""
    assert load(tmp_path, environ={})["PRINT_QUEUE_MAX"] == 5000
    assert load(tmp_path, environ={"KIOSK_PRINT_QUEUE_MAX": "200"})["PRINT_QUEUE_MAX"] == 200
    with pytest.raises(ConfigError, match="PRINT_QUEUE_MAX must be at least 1"):
        load(tmp_path, environ={"KIOSK_PRINT_QUEUE_MAX": "0"})
    with pytest.raises(ConfigError, match="PRINT_QUEUE_MAX must be a whole number"):
        load(tmp_path, environ={"KIOSK_PRINT_QUEUE_MAX": "plenty"})
