"""Network printing against the loopback double: bytes, every status, faults, retries, bursts."""

from __future__ import annotations

import dataclasses
import logging
import time

import pytest

from hardware import PrinterState, PrinterUnavailable, get_profile, ticket_document
from hardware.job import PrintJob
from hardware.transports import NetworkTransport
from tests.hardware.doubles.escpos_decode import decode
from tests.hardware.doubles.printer import PrinterDouble
from tests.hardware.samples import SLIPS


def ticket_job(lang: str = "ckb") -> PrintJob:
    """A ticket job for the TM-T20II profile."""
    return PrintJob(ticket_document(SLIPS[lang]), get_profile("TM-T20II"))


def transport_for(double: PrinterDouble, timeout: float = 0.5) -> NetworkTransport:
    """A network transport aimed at the double."""
    return NetworkTransport(double.host, double.port, timeout=timeout)


def slip_numbered(n: int):
    """A distinct ticket per number, its order readable from the QR payload."""
    return dataclasses.replace(SLIPS["ar"], number=f"A-{n:03d}", number_local=f"A-{n:03d}",
                               qr=f"https://kiosk.example.invalid/t/A-{n:03d}")


def test_job_arrives_byte_exact(double):
    """The double receives exactly the encoded bytes, after a status check on the same connection."""
    job = ticket_job()
    seen = transport_for(double).send(job)
    assert seen.state is PrinterState.ONLINE
    assert double.wait_for_jobs(1, 5)
    assert double.jobs == [job.data]
    assert double.queries == [1, 4]
    decoded = decode(double.jobs[0])
    assert decoded.kinds[0] == "init" and decoded.kinds[-1] == "cut"
    assert decoded.qr_codes[0].payload == SLIPS["ckb"].qr


@pytest.mark.parametrize("name,state,detail", [
    ("online", PrinterState.ONLINE, "ready"),
    ("paper_low", PrinterState.PAPER_LOW, "paper low"),
    ("paper_out", PrinterState.PAPER_OUT, "paper out"),
    ("offline", PrinterState.OFFLINE, "cover open"),
    ("error", PrinterState.ERROR, "error"),
])
def test_status_cases(double, name, state, detail):
    """Every state of the double is reported as the matching printer state."""
    double.set_state(name)
    seen = transport_for(double).status()
    assert seen.state is state and detail in seen.detail


def test_silent_printer_times_out_quickly(double):
    """A printer that accepts the connection but never answers costs the timeout, not 60 s."""
    double.set_state("silent")
    started = time.monotonic()
    seen = transport_for(double, timeout=0.3).status()
    elapsed = time.monotonic() - started
    assert seen.state is PrinterState.OFFLINE and "did not answer" in seen.detail
    assert elapsed < 5, f"status check took {elapsed:.1f} s"


def test_refused_connection_is_offline(double):
    """Nothing listening: connection refused, reported as offline."""
    double.set_state("down")
    seen = transport_for(double).status()
    assert seen.state is PrinterState.OFFLINE and "refused" in seen.detail


@pytest.mark.parametrize("name", ["paper_out", "offline", "error", "silent", "down"])
def test_send_refuses_to_print_on_a_printer_that_cannot(double, name):
    """No job bytes are sent to a printer that is out of paper, offline, failing or unreachable."""
    double.set_state(name)
    with pytest.raises(PrinterUnavailable) as info:
        transport_for(double, timeout=0.3).send(ticket_job())
    assert not info.value.status.state.can_print
    double.set_state("online")
    time.sleep(0.1)
    assert double.jobs == []


def test_paper_low_still_prints(double):
    """Paper low is a warning: the ticket prints."""
    double.set_state("paper_low")
    seen = transport_for(double).send(ticket_job())
    assert seen.state is PrinterState.PAPER_LOW
    assert double.wait_for_jobs(1, 5)


def test_status_queries_can_be_turned_off_for_printers_that_never_answer(double, kiosk_printer):
    """status=off sends without asking first (for one-way serial-to-network bridges)."""
    double.set_state("silent")
    transport = NetworkTransport(double.host, double.port, timeout=0.3, check_status=False)
    assert transport.status().state is PrinterState.UNKNOWN
    double.set_state("online")
    job = ticket_job("en")
    transport.send(job)
    assert double.wait_for_jobs(1, 5)
    assert double.jobs == [job.data] and double.queries == []


@pytest.mark.parametrize("fault", ["silent", "down", "paper_out", "offline"])
def test_fault_keeps_the_job_queued_then_prints_it_exactly_once(double, kiosk_printer, fault):
    """Timeouts, refusals, paper out and cover open leave the ticket queued; it prints once later."""
    double.set_state(fault)
    printer = kiosk_printer(double.url)
    job_id = printer.print_ticket(SLIPS["ar"])
    deadline = time.monotonic() + 10
    while printer.status()["state"] in ("unknown", "online") and time.monotonic() < deadline:
        time.sleep(0.02)
    status = printer.status()
    assert status["state"] in ("offline", "paper_out")
    assert status["pending"] == 1 and status["printed"] == 0
    assert status["last_error"]
    assert printer.job_state(job_id) == "pending"
    assert double.jobs == []

    double.set_state("online")
    assert printer.wait_idle(10)
    assert double.wait_for_jobs(1, 5)
    time.sleep(0.3)  # room for a duplicate to show up, if the queue were to send twice
    assert len(double.jobs) == 1
    assert decode(double.jobs[0]).qr_codes[0].payload == SLIPS["ar"].qr
    status = printer.status()
    assert (status["state"], status["pending"], status["printed"]) == ("online", 0, 1)
    assert printer.job_state(job_id) == "printed"


def test_print_ticket_never_waits_for_the_printer(double, kiosk_printer):
    """With a silent printer (each attempt costs a 2 s timeout) submitting is still immediate."""
    double.set_state("silent")
    printer = kiosk_printer(double.url.replace("timeout=0.5", "timeout=2"))
    started = time.monotonic()
    ids = [printer.print_ticket(slip_numbered(n)) for n in range(5)]
    elapsed = time.monotonic() - started
    assert len(set(ids)) == 5
    assert elapsed < 1.0, f"five submits took {elapsed:.2f} s: print_ticket waited for the printer"


def test_burst_while_silent_prints_every_ticket_once_in_order(double, kiosk_printer):
    """30 tickets issued while the printer hangs; after it recovers each prints once, in order."""
    double.set_state("silent")
    printer = kiosk_printer(double.url)
    ids = [printer.print_ticket(slip_numbered(n)) for n in range(1, 31)]
    assert len(set(ids)) == 30
    # At least one attempt times out against the silent printer; the worker process starts first.
    deadline = time.monotonic() + 10
    while printer.status()["state"] in ("unknown", "online") and time.monotonic() < deadline:
        time.sleep(0.02)
    status = printer.status()
    assert status["pending"] == 30 and status["printed"] == 0 and status["state"] == "offline"
    assert double.jobs == []

    double.set_state("online")
    assert printer.wait_idle(30)
    assert double.wait_for_jobs(30, 10)
    time.sleep(0.3)
    payloads = [decode(job).qr_codes[0].payload for job in double.jobs]
    assert payloads == [f"https://kiosk.example.invalid/t/A-{n:03d}" for n in range(1, 31)]
    assert printer.status()["printed"] == 30
    assert all(printer.job_state(i) == "printed" for i in ids)


def test_reprint_by_job_id_and_by_slip(double, kiosk_printer):
    """The attendant console reprints a recent ticket by its job id, or any slip directly."""
    printer = kiosk_printer(double.url)
    first = printer.print_ticket(slip_numbered(7))
    again = printer.reprint(first)
    other = printer.reprint(slip_numbered(8))
    assert len({first, again, other}) == 3
    assert printer.wait_idle(10) and double.wait_for_jobs(3, 5)
    payloads = [decode(job).qr_codes[0].payload for job in double.jobs]
    assert payloads == [f"https://kiosk.example.invalid/t/A-{n:03d}" for n in (7, 7, 8)]
    with pytest.raises(KeyError, match="no recent print job"):
        printer.reprint("not-a-job")


def test_close_reports_unprinted_jobs(double, kiosk_printer, caplog):
    """Closing while the printer is down returns and logs the jobs left, never drops them silently."""
    double.set_state("down")
    printer = kiosk_printer(double.url)
    job_id = printer.print_ticket(SLIPS["en"])
    with caplog.at_level(logging.WARNING, logger="hardware.queue"):
        left = printer.close(timeout=0.3)
    assert left == [job_id]
    assert any(job_id in r.getMessage() and "unprinted" in r.getMessage() for r in caplog.records)
    with pytest.raises(RuntimeError, match="closed"):
        printer.print_ticket(SLIPS["en"])


def test_close_drains_the_queue_when_the_printer_works(double, kiosk_printer):
    """Jobs queued just before shutdown still print within the close timeout."""
    printer = kiosk_printer(double.url)
    for n in range(3):
        printer.print_ticket(slip_numbered(n))
    assert printer.close(timeout=10) == []
    assert len(double.jobs) == 3


def test_status_dict_for_the_screens(double, kiosk_printer):
    """Keys the attendant and supervisor screens read, with an ISO UTC time and a safe URL."""
    printer = kiosk_printer(double.url)
    printer.print_ticket(SLIPS["ckb"])
    assert printer.wait_idle(10)
    status = printer.status()
    assert {"state", "detail", "pending", "printed", "last_error", "checked_at", "url"} <= set(status)
    assert status["state"] == "online" and status["detail"] == "ready"
    assert status["checked_at"].endswith("Z") and status["checked_at"].startswith("2026-11-22T06:00:00")
    assert status["url"] == double.url and status["last_error"] is None


def test_idle_printer_status_is_polled(double, kiosk_printer):
    """Without jobs, the worker still notices a printer running out of paper."""
    printer = kiosk_printer(double.url)
    deadline = time.monotonic() + 5
    while printer.status()["state"] != "online" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert printer.status()["state"] == "online"
    double.set_state("paper_out")
    deadline = time.monotonic() + 5
    while printer.status()["state"] != "paper_out" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert printer.status()["state"] == "paper_out"
    assert printer.status()["pending"] == 0


def test_any_document_prints_through_the_same_queue(double, kiosk_printer):
    """Receipts and other printouts are Documents: same queue, same bytes path, own QR payload."""
    from hardware import Document, Line, QrCode

    printer = kiosk_printer(double.url)
    receipt = Document((Line("وصل استلام الطلب", "ar", "large", bold=True, align="center"),
                        QrCode("HTTPS://V.EXAMPLE.GOV.IQ/R#" + "A" * 40, level="M", module_dots=5)),
                       title="receipt R-1")
    job_id = printer.print_document(receipt)
    assert printer.wait_idle(10) and double.wait_for_jobs(1, 5)
    (qr,) = decode(double.jobs[0]).qr_codes
    assert qr.payload.endswith("A" * 40) and qr.module_size == 5
    assert printer.job_state(job_id) == "printed"
    with pytest.raises(TypeError, match="Document"):
        printer.print_document(SLIPS["ar"])
