"""Serial over a pseudo-terminal, device files (plain file, stalled FIFO), and USB without a device."""

from __future__ import annotations

import fcntl
import os
import threading
import time

import pytest

from hardware import PrinterState, PrinterUnavailable, get_profile, ticket_document
from hardware.job import PrintJob
from hardware.transports import FileTransport, SerialTransport, UsbTransport
from tests.hardware.doubles.escpos_decode import decode
from tests.hardware.doubles.serial_printer import PtyPrinter
from tests.hardware.samples import SLIPS


@pytest.fixture
def pty_printer():
    """A serial printer double on a pty."""
    printer = PtyPrinter()
    yield printer
    printer.close()


def small_job() -> PrintJob:
    """A 58 mm ticket (what a serial printer usually is)."""
    return PrintJob(ticket_document(SLIPS["ckb"]), get_profile("POS-5890"))


def test_serial_status_then_job_over_a_pty(pty_printer):
    """The status query and its reply cross the line, then the job arrives byte for byte."""
    transport = SerialTransport(pty_printer.path, baudrate=115200, timeout=1)
    assert transport.status().state is PrinterState.ONLINE
    job = small_job()
    seen = transport.send(job)
    assert seen.state is PrinterState.ONLINE
    assert pty_printer.wait_for_bytes(len(job.data))
    assert bytes(pty_printer.received) == job.data
    assert pty_printer.queries == [1, 4, 1, 4]
    assert [r.kind for r in decode(job.data).events][0] == "init"


@pytest.mark.parametrize("state,expected", [
    ("paper_out", PrinterState.PAPER_OUT),
    ("paper_low", PrinterState.PAPER_LOW),
    ("offline", PrinterState.OFFLINE),
])
def test_serial_status_cases(pty_printer, state, expected):
    """Status replies over serial decode like over the network."""
    pty_printer.state = state
    assert SerialTransport(pty_printer.path, timeout=1).status().state is expected


def test_serial_printer_that_does_not_answer_is_offline_and_gets_no_job(pty_printer):
    """No reply within the timeout: offline, and the job stays with the queue."""
    pty_printer.state = "silent"
    transport = SerialTransport(pty_printer.path, timeout=0.2)
    assert transport.status().state is PrinterState.OFFLINE
    with pytest.raises(PrinterUnavailable, match="no status reply"):
        transport.send(small_job())
    assert pty_printer.received == bytearray()


def test_serial_device_missing_is_offline():
    """An unplugged USB-serial adapter: the device path is gone."""
    transport = SerialTransport("/dev/ttyUSB-kiosk-missing", timeout=0.2)
    seen = transport.status()
    assert seen.state is PrinterState.OFFLINE and "cannot open serial device" in seen.detail
    with pytest.raises(PrinterUnavailable):
        transport.send(small_job())


def test_file_transport_appends_jobs_to_the_device_file(tmp_path):
    """Like /dev/usb/lp0: each job is written whole; a plain file collects them in order."""
    path = tmp_path / "lp0"
    path.write_bytes(b"")
    transport = FileTransport(str(path), timeout=1)
    first, second = small_job(), PrintJob(ticket_document(SLIPS["en"]), get_profile("POS-5890"))
    assert transport.send(first).state is PrinterState.UNKNOWN
    transport.send(second)
    assert path.read_bytes() == first.data + second.data
    seen = transport.status()
    assert seen.state is PrinterState.UNKNOWN and "does not report printer status" in seen.detail


def test_file_transport_device_missing_is_offline(tmp_path):
    """The printer is unplugged: /dev/usb/lp0 does not exist; nothing is created in its place."""
    path = tmp_path / "lp0"
    transport = FileTransport(str(path), timeout=0.2)
    assert transport.status().state is PrinterState.OFFLINE
    with pytest.raises(PrinterUnavailable, match="not present"):
        transport.send(small_job())
    assert not path.exists()


def test_file_transport_gives_up_on_a_stalled_device(tmp_path):
    """A device that stops taking data (a FIFO nobody drains) costs the timeout, then retries."""
    fifo = tmp_path / "stalled"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        fcntl.fcntl(reader, 1031, 4096)  # F_SETPIPE_SZ: a small buffer fills at once
        transport = FileTransport(str(fifo), timeout=0.2)
        job = small_job()
        with pytest.raises(PrinterUnavailable, match="stopped taking data"):
            transport.send(job)
    finally:
        os.close(reader)


def test_file_transport_writes_through_a_slow_reader(tmp_path):
    """A device that takes data in small pieces still receives the whole job."""
    fifo = tmp_path / "slow"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    fcntl.fcntl(reader, 1031, 4096)
    received = bytearray()
    done = threading.Event()

    def drain():
        """Read 1 KB at a time until told to stop (an empty read means no writer yet or any more)."""
        while not done.is_set():
            try:
                chunk = os.read(reader, 1024)
            except BlockingIOError:
                chunk = b""
            if chunk:
                received.extend(chunk)
            else:
                time.sleep(0.01)

    thread = threading.Thread(target=drain)
    thread.start()
    try:
        job = small_job()
        FileTransport(str(fifo), timeout=2).send(job)
        deadline = time.monotonic() + 5
        while len(received) < len(job.data) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert bytes(received) == job.data
    finally:
        done.set()
        thread.join(5)
        os.close(reader)


def test_usb_printer_not_plugged_in_is_offline():
    """Without the device the USB transport reports offline with the ids, and keeps the job."""
    transport = UsbTransport(0x04B8, 0x0E15, timeout=0.5)
    seen = transport.status()
    assert seen.state is PrinterState.OFFLINE and "04b8:0e15" in seen.detail
    with pytest.raises(PrinterUnavailable, match="04b8:0e15"):
        transport.send(small_job())
    transport.close()
