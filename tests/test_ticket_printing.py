"""End to end: a ticket taken through the API is printed in the citizen's language on a network
printer (the loopback printer double), and a printer fault never delays or loses a ticket."""
import time

import pytest
import zxingcpp

from kiosk import create_app, services
from tests.hardware.doubles.escpos_decode import decode
from tests.hardware.doubles.printer import PrinterDouble


@pytest.fixture
def printer_double():
    double = PrinterDouble()
    yield double
    double.stop()


@pytest.fixture
def printing_app(app_config, clock, printer_double):
    application = create_app({**app_config, "PRINTER_URL": printer_double.url}, clock=clock)
    with application.app_context():
        services.load_demo_data(application.extensions["kiosk"].centre)
    yield application
    application.extensions["kiosk"].close()


def test_ticket_reaches_the_printer_with_its_qr(printing_app, printer_double):
    client = printing_app.test_client()
    ticket = client.post("/api/v1/tickets", json={"service": "A", "lang": "ckb"}).get_json()["ticket"]
    assert printer_double.wait_for_jobs(1, timeout=20)
    job = decode(printer_double.jobs[0])
    assert job.cuts, "the ticket is cut"
    image = job.raster()
    assert image.width == 576, "TM-T20II prints 576 dots wide"
    payloads = [q.payload for q in job.qr_codes] or [r.text for r in zxingcpp.read_barcodes(image)]
    assert ticket["qr"] in payloads
    printing = printing_app.extensions["kiosk"].centre.printer
    assert printing.printer.wait_idle(10)
    status = printing.status()
    assert status["printed"] == 1 and status["state"] == "online"


def test_silent_printer_delays_no_ticket_and_prints_each_once_after(printing_app, printer_double):
    client = printing_app.test_client()
    printer_double.set_state("silent")
    numbers = []
    for _ in range(6):
        started = time.monotonic()
        r = client.post("/api/v1/tickets", json={"service": "B"})
        assert r.status_code == 201 and time.monotonic() - started < 1.0, "answered without waiting for paper"
        numbers.append(r.get_json()["ticket"]["number"])
    assert numbers == [f"B-{n:03d}" for n in range(1, 7)]
    time.sleep(1.0)
    printer_double.set_state("online")
    assert printer_double.wait_for_jobs(6, timeout=60)
    time.sleep(0.5)
    assert len(printer_double.jobs) == 6, "every job printed exactly once"
