"""The print worker process and its spool, for real: SIGKILL of the worker and of the process that
owns the spool, restarts, the bound on waiting jobs, faults in the status, unreadable jobs. Jobs go
to the loopback printer double and are decoded back from their ESC/POS bytes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import pathlib
import signal
import subprocess
import sys
import time

from hardware import ticket_document
from hardware.spool import Spool
from kiosk.printing import make_printer
from tests.hardware.doubles.escpos_decode import decode
from tests.hardware.samples import SLIPS

ROOT = pathlib.Path(__file__).resolve().parents[2]


def slip_numbered(n: int):
    """A distinct ticket per number, its order readable from the QR payload."""
    return dataclasses.replace(SLIPS["ar"], number=f"A-{n:03d}", number_local=f"A-{n:03d}",
                               qr=f"https://kiosk.example.invalid/t/A-{n:03d}")


def payload(n: int) -> str:
    """The QR payload of slip_numbered(n)."""
    return f"https://kiosk.example.invalid/t/A-{n:03d}"


def printed_payloads(double) -> list[str]:
    """The QR payload of every job the double received, in order."""
    return [decode(job).qr_codes[0].payload for job in double.jobs]


def wait_for(predicate, timeout: float = 10.0) -> bool:
    """Poll until predicate() is true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie waiting for a parent to reap it."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_job_pending_when_the_worker_is_killed_prints_once_after_its_restart(double, kiosk_printer, caplog):
    """SIGKILL of the worker while a job waits for the printer: the kiosk notices, starts a new
    worker, and the job prints exactly once when the printer is back."""
    double.set_state("down")
    printer = kiosk_printer(double.url)
    job_id = printer.print_ticket(slip_numbered(1))
    assert wait_for(lambda: printer.status()["state"] == "offline"), printer.status()
    first = printer.worker_pid
    with caplog.at_level(logging.ERROR, logger="hardware.spooler"):
        os.kill(first, signal.SIGKILL)
        assert wait_for(lambda: printer.status()["worker_restarts"] == 1)
        assert wait_for(lambda: printer.worker_pid not in (None, first))
    assert any("stopped unexpectedly" in r.getMessage() for r in caplog.records)
    assert printer.job_state(job_id) == "pending" and printer.status()["pending"] == 1
    double.set_state("online")
    assert printer.wait_idle(15)
    assert double.wait_for_jobs(1, 5)
    time.sleep(0.3)  # room for a duplicate to show up
    assert printed_payloads(double) == [payload(1)]
    assert printer.job_state(job_id) == "printed"
    status = printer.status()
    assert (status["state"], status["printed"], status["worker"]) == ("online", 1, "running")


def test_a_dead_idle_worker_is_restarted_and_prints_the_next_ticket(double, kiosk_printer):
    """The worker dies with nothing to do; the status shows it, a new one takes the next ticket."""
    printer = kiosk_printer(double.url)
    assert wait_for(lambda: printer.status()["state"] == "online")
    first = printer.worker_pid
    os.kill(first, signal.SIGKILL)
    assert wait_for(lambda: printer.status()["worker_restarts"] == 1)
    assert wait_for(lambda: printer.status()["worker"] == "running" and printer.worker_pid != first)
    job_id = printer.print_ticket(slip_numbered(2))
    assert printer.wait_idle(15) and double.wait_for_jobs(1, 5)
    assert printed_payloads(double) == [payload(2)] and printer.job_state(job_id) == "printed"


def test_jobs_left_at_close_print_when_the_next_printer_starts(double, kiosk_printer, data_dir):
    """The kiosk stops while the printer is down: the jobs stay spooled and print, in order and once
    each, as soon as a printer is made on the same data directory, without a new ticket."""
    double.set_state("down")
    first = kiosk_printer(double.url)
    ids = [first.print_ticket(slip_numbered(n)) for n in (1, 2, 3)]
    assert first.close(timeout=0) == ids
    double.set_state("online")
    second = kiosk_printer(double.url)
    assert double.wait_for_jobs(3, 20)
    assert second.wait_idle(10)
    time.sleep(0.3)
    assert printed_payloads(double) == [payload(n) for n in (1, 2, 3)]
    assert second.status()["pending"] == 0
    assert second.close(timeout=0) == []


def test_the_process_that_owns_the_spool_killed_right_after_a_ticket(double, data_dir):
    """kill -9 of the kiosk process just after print_ticket returned: its worker does not live on,
    and the ticket prints once when the next process opens the spool."""
    double.set_state("down")
    script = (
        "import sys\n"
        "from kiosk.printing import make_printer\n"
        "from tests.hardware.samples import SLIPS\n"
        f"printer = make_printer({double.url!r}, {str(data_dir)!r})\n"
        "job = printer.print_ticket(SLIPS['ckb'])\n"
        "print(job, printer.worker_pid, flush=True)\n"
        "sys.stdin.read()\n"
    )
    owner = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        _, worker_pid = owner.stdout.readline().split()
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait(10)
    finally:
        owner.stdin.close()
        owner.stdout.close()
        if owner.poll() is None:
            owner.kill()
            owner.wait(10)
    assert wait_for(lambda: not alive(int(worker_pid)), 15), "the print worker outlived its kiosk"
    assert double.jobs == []
    double.set_state("online")
    printer = make_printer(double.url, data_dir, retry_initial_s=0.05, retry_max_s=0.2)
    try:
        assert double.wait_for_jobs(1, 20)
        assert printer.wait_idle(10)
        time.sleep(0.3)
        assert [decode(job).qr_codes[0].payload for job in double.jobs] == [SLIPS["ckb"].qr]
    finally:
        assert printer.close(timeout=0) == []


def test_the_bound_refuses_the_overflow_at_once(double, kiosk_printer, caplog):
    """With max_pending jobs waiting, more are refused without waiting, logged and shown; the ones
    taken still print, and once there is room again new jobs are taken."""
    double.set_state("silent")  # each attempt costs the transport timeout
    printer = kiosk_printer(double.url, max_pending=3)
    with caplog.at_level(logging.WARNING, logger="hardware.spooler"):
        started = time.monotonic()
        ids = [printer.print_ticket(slip_numbered(n)) for n in range(1, 6)]
        elapsed = time.monotonic() - started
    assert elapsed < 1.0, f"five submits took {elapsed:.2f} s"
    assert [printer.job_state(i) for i in ids] == ["pending"] * 3 + ["refused"] * 2
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 2 and all(r.levelno == logging.WARNING for r in refusals)
    status = printer.status()
    assert (status["pending"], status["refused"], status["limit"], status["full"]) == (3, 2, 3, True)
    assert "print queue full" in status["last_error"]
    double.set_state("online")
    assert printer.wait_idle(20)
    assert not printer.status()["full"]
    later = printer.print_ticket(slip_numbered(6))
    assert printer.wait_idle(10) and double.wait_for_jobs(4, 5)
    assert printed_payloads(double) == [payload(n) for n in (1, 2, 3, 6)]
    assert printer.job_state(later) == "printed" and printer.status()["last_error"] is None


def test_status_shows_the_fault_the_worker_sees(double, kiosk_printer):
    """A printer error seen by the worker process reaches status() with its detail; the job waits."""
    double.set_state("error")
    printer = kiosk_printer(double.url)
    job_id = printer.print_ticket(slip_numbered(9))
    assert wait_for(lambda: printer.status()["state"] == "error"), printer.status()
    status = printer.status()
    assert "power-cycle" in status["detail"] and status["pending"] == 1 and status["checked_at"].endswith("Z")
    assert printer.job_state(job_id) == "pending" and double.jobs == []
    double.set_state("online")
    assert printer.wait_idle(10) and printed_payloads(double) == [payload(9)]


def test_an_unreadable_spooled_job_fails_alone(double, kiosk_printer, data_dir):
    """A job that cannot be read back fails in its turn; the jobs around it print in order."""
    spool = Spool(data_dir / "print-spool")
    spool.open_writer()
    spool.append(1, "good1", ticket_document(slip_numbered(1)), dt.datetime(2026, 11, 22, 6, tzinfo=dt.timezone.utc))
    spool.close_writer()
    (_, segment), = spool.segments()
    with open(segment, "ab") as fh:
        fh.write(b'{"seq":2,"job":"bad2","format":1,"document":{"title":"t","blocks":[{"type":"x"}]}}\n')
        fh.write(b"not json at all\n")
    printer = kiosk_printer(double.url)
    good = printer.print_ticket(slip_numbered(4))
    assert printer.wait_idle(15)
    assert double.wait_for_jobs(2, 5)
    assert printed_payloads(double) == [payload(1), payload(4)]
    status = printer.status()
    assert status["failed"] == 1 and "cannot be read" in status["last_error"]
    assert printer.job_state(good) == "printed"
