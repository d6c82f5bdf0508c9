"""CUPS for real: a private cupsd, a raw queue to the loopback double, pycups, IPP status."""

from __future__ import annotations

import itertools
import time

import pytest

from hardware import PrinterState, PrinterUnavailable, get_profile, ticket_document
from hardware.job import PrintJob
from hardware.transports import CupsTransport
from tests.processes import free_port
from tests.hardware.doubles.escpos_decode import decode
from tests.hardware.samples import SLIPS

_names = itertools.count(1)


@pytest.fixture
def queue(private_cupsd, double):
    """A fresh raw queue on the private cupsd, sending to this test's printer double."""
    name = f"kiosk-{next(_names)}"
    private_cupsd.add_raw_queue(name, double.port)
    yield name
    private_cupsd.run("lpadmin", "-x", name)


def cups_url(private_cupsd, queue: str) -> str:
    """The printer URL of a queue on the private cupsd."""
    return f"cups://{private_cupsd.server}/{queue}?profile=TM-T20II"


def wait_for(predicate, timeout: float = 20.0, step: float = 0.05) -> bool:
    """Poll until predicate() is true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def test_bytes_arrive_unchanged_through_a_raw_queue(private_cupsd, queue, double):
    """pycups hands the job to cupsd, whose socket backend delivers exactly the same bytes."""
    job = PrintJob(ticket_document(SLIPS["ckb"]), get_profile("TM-T20II"))
    transport = CupsTransport(queue, host=private_cupsd.host, port=private_cupsd.port)
    assert transport.status().state is PrinterState.ONLINE
    transport.send(job)
    assert double.wait_for_jobs(1, 20), private_cupsd.error_log()
    assert double.jobs == [job.data]
    assert double.queries == []  # nothing but the job: CUPS adds no bytes to a raw job
    assert decode(double.jobs[0]).qr_codes[0].payload == SLIPS["ckb"].qr


def test_kiosk_printer_through_cups(private_cupsd, queue, double, kiosk_printer):
    """The kiosk's printer URL cups://HOST:PORT/QUEUE prints a ticket byte-exact."""
    printer = kiosk_printer(cups_url(private_cupsd, queue))
    job_id = printer.print_ticket(SLIPS["ar"])
    assert printer.wait_idle(20)
    assert double.wait_for_jobs(1, 20), private_cupsd.error_log()
    expected = PrintJob(ticket_document(SLIPS["ar"]), get_profile("TM-T20II")).data
    assert double.jobs == [expected]
    assert printer.job_state(job_id) == "printed"
    assert printer.status()["kind"] == "cups"


def test_printer_down_cups_keeps_the_job_and_delivers_it_once(private_cupsd, queue, double, kiosk_printer):
    """Printer unreachable: IPP says so, CUPS holds the job, and delivers it once when it is back."""
    double.set_state("down")
    printer = kiosk_printer(cups_url(private_cupsd, queue))
    printer.print_ticket(SLIPS["en"])
    assert wait_for(lambda: printer.status()["state"] == "offline"), printer.status()
    status = printer.status()
    assert "unreachable" in status["detail"]
    assert status["pending"] == 1  # held by CUPS, counted for the screens
    double.set_state("online")
    assert double.wait_for_jobs(1, 30), private_cupsd.error_log()
    assert wait_for(lambda: printer.status()["state"] == "online" and printer.status()["pending"] == 0)
    time.sleep(0.5)
    assert len(double.jobs) == 1


def test_stopped_and_rejecting_queues(private_cupsd, queue, double):
    """A disabled queue is offline; a rejecting queue refuses the job (kept for retry)."""
    transport = CupsTransport(queue, host=private_cupsd.host, port=private_cupsd.port)
    private_cupsd.run("cupsdisable", queue)
    seen = transport.status()
    assert seen.state is PrinterState.OFFLINE and ("paused" in seen.detail or "cupsenable" in seen.detail)
    private_cupsd.run("cupsenable", queue)
    assert transport.status().state is PrinterState.ONLINE
    private_cupsd.run("cupsreject", queue)
    with pytest.raises(PrinterUnavailable, match="rejects jobs"):
        transport.send(PrintJob(ticket_document(SLIPS["en"]), get_profile("TM-T20II")))
    private_cupsd.run("cupsaccept", queue)
    transport.send(PrintJob(ticket_document(SLIPS["en"]), get_profile("TM-T20II")))
    assert double.wait_for_jobs(1, 20)


def test_unknown_queue_is_reported(private_cupsd):
    """A typo in the queue name is an error the supervisor can read."""
    seen = CupsTransport("no-such-queue", host=private_cupsd.host, port=private_cupsd.port).status()
    assert seen.state is PrinterState.ERROR and "no queue named 'no-such-queue'" in seen.detail


def test_unreachable_cups_server_is_offline_and_keeps_the_job():
    """cupsd not running: offline, and the job stays in the kiosk's queue."""
    transport = CupsTransport("kiosk", host="127.0.0.1", port=free_port())
    seen = transport.status()
    assert seen.state is PrinterState.OFFLINE and "cannot reach" in seen.detail
    with pytest.raises(PrinterUnavailable):
        transport.send(PrintJob(ticket_document(SLIPS["en"]), get_profile("TM-T20II")))
