"""A receipt printed for real: through the network printer double, decoded from the job's ESC/POS
bytes (native QR payload, or the QR drawn in the raster and read back with zxing-cpp), verified."""
from __future__ import annotations

import pytest
import zxingcpp

from hardware.receipt import RECEIPT_QR_MODULE_DOTS, ReceiptSlip, receipt_document
from hardware.rendering import qr_modules
from kiosk import cases, create_app, keys, services
from kiosk.domain import receipts
from tests.cases.conftest import listing, publish
from tests.cases.support import PROVIDERS
from tests.hardware.doubles.escpos_decode import decode
from tests.hardware.doubles.printer import PrinterDouble


@pytest.fixture
def double():
    """A printer double on a free loopback port."""
    with PrinterDouble() as printer:
        yield printer


def _centre_with_printer(app_config, clock, printer_url, root_key):
    """The test app with a real printer URL, its root pinned and its key on a trust list."""
    app = create_app({**app_config, "PRINTER_URL": printer_url}, clock=clock)
    centre = app.extensions["kiosk"].centre
    services.load_demo_data(centre)
    keys.pin_root_keys(cases.data_dir(centre), root_key.public_pem())
    publish(centre.store, root_key, listing(centre))
    centre.store.put("settings", PROVIDERS)
    return app, centre


def _register_and_print(app, centre, lang="ar", kind="request", **extra):
    """Serve a ticket, register a request, sign and print its receipt; the stored receipt."""
    with app.app_context():
        ticket = services.issue_ticket(centre, service="A", lang=lang)
        services.set_counter_status(centre, "1", "open", by="demo")
        services.call_ticket(centre, ticket["id"], counter="1", by="demo")
        doc = cases.register_case(centre, ticket_id=ticket["id"], kind=kind, reference="19901234567",
                                  documents=["0", "1"], by="demo", **extra)
        record = cases.issue_receipt(centre, doc["id"], by="demo")
        assert cases.print_receipt(centre, doc["id"]) is not None
    return doc, record


@pytest.mark.parametrize("lang", ["ar", "ckb", "en"])
def test_receipt_from_the_printer_verifies(app_config, clock, double, root_key, lang):
    """The ticket job and the receipt job reach the printer; the receipt's native QR verifies."""
    app, centre = _centre_with_printer(app_config, clock, double.url, root_key)
    try:
        doc, record = _register_and_print(app, centre, lang)
        assert double.wait_for_jobs(2, timeout=20), "the ticket and the receipt were not printed"
        job = decode(double.jobs[1])
        assert len(job.qr_codes) == 1 and job.cuts
        qr = job.qr_codes[0]
        assert qr.module_size == RECEIPT_QR_MODULE_DOTS and qr.ec == "M"
        verdict = receipts.verify(qr.payload, cases.current_trust_list(centre), clock.now())
        assert verdict.is_valid and verdict.receipt.receipt_id == doc["receipt_id"]
        assert qr.payload == record["text"]
    finally:
        app.extensions["kiosk"].close()


def test_receipt_drawn_in_the_raster_reads_back(app_config, clock, double, root_key):
    """With the QR drawn into the image (printers without native QR), zxing-cpp reads it from the
    decoded raster, and the 4-module quiet zone and >= 4 dots per module are there."""
    app, centre = _centre_with_printer(app_config, clock, double.url + "&qr=image", root_key)
    try:
        doc, record = _register_and_print(app, centre, "ckb", kind="referral", provider="nrc-shelter",
                                          details="confidential details")
        assert double.wait_for_jobs(2, timeout=20)
        job = decode(double.jobs[1])
        assert job.qr_codes == []
        raster = job.raster().convert("L")
        found = [r for r in zxingcpp.read_barcodes(raster) if r.format == zxingcpp.BarcodeFormat.QRCode]
        assert [r.text for r in found] == [record["text"]]
        box = found[0].position
        modules = qr_modules(record["text"], "M")
        assert modules <= 17 + 4 * 10  # version 10 or lower at level M
        assert box.top_right.x - box.top_left.x >= 4 * (modules - 1)  # >= 4 printer dots per module
        quiet = raster.crop((box.top_left.x - 4 * 4, box.top_left.y, box.top_left.x - 1, box.bottom_left.y))
        assert quiet.getextrema() == (255, 255)  # a white quiet zone of 4 modules before the code
        verdict = receipts.verify(found[0].text, cases.current_trust_list(centre), clock.now())
        assert verdict.receipt.service == cases.REFERRAL_RECEIPT_SERVICE
    finally:
        app.extensions["kiosk"].close()


def test_receipt_slip_is_refused_when_incomplete():
    """A slip missing its QR or with a foreign QR text would print an unverifiable receipt."""
    fields = dict(lang="ar", centre="c", title="t", service="s", ticket="A-001", receipt_id="01KAR7X3M9Q4ZP2B6V8N5C1DHW",
                  facts=(("a", "b"),), fee_text="f", qr="HTTPS://V.X/R#AA")
    assert receipt_document(ReceiptSlip(**fields)).qr_codes[0].module_dots == RECEIPT_QR_MODULE_DOTS
    for bad in ({"qr": ""}, {"qr": "http://evil/"}, {"lang": "fr"}, {"facts": (("a",),)}, {"ticket": " "}):
        with pytest.raises((ValueError, TypeError)):
            ReceiptSlip(**{**fields, **bad})


def test_printer_off_keeps_the_receipt(serving, trusted):
    """With printing off the receipt is still signed and stored (shown on screen instead)."""
    doc = cases.register_case(trusted, ticket_id=serving.first["id"], kind="inquiry", reference="A1234567", by="demo")
    cases.issue_receipt(trusted, doc["id"], by="demo")
    assert cases.print_receipt(trusted, doc["id"]) is None
    assert trusted.store.get(cases.RECEIPTS, doc["receipt_id"])["case"] == doc["id"]
