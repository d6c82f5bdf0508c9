"""The kiosk's printer adapter: preview files, make_printer, the print-test command, start-up checks."""

from __future__ import annotations

import re
import threading
import time

import pytest
from flask import Flask
from PIL import Image, ImageChops, features

from hardware import ShapingUnavailable, check_shaping, get_profile, render, ticket_document
from kiosk.printing import KioskPrinter, make_printer, print_test_command
from tests.hardware.doubles.escpos_decode import decode
from tests.hardware.samples import SLIPS


def test_preview_is_the_default_and_writes_png_and_pdf(kiosk_printer, data_dir):
    """No printer URL: the ticket is saved as a PNG (exact raster) and a 72 mm wide PDF."""
    printer = kiosk_printer(None)
    assert printer.url == "preview://" and printer.kind == "preview"
    job_id = printer.print_ticket(SLIPS["ckb"])
    assert printer.wait_idle(10)
    prints = data_dir / "prints"
    pngs, pdfs = sorted(prints.glob("*.png")), sorted(prints.glob("*.pdf"))
    assert [p.name for p in pngs] == [f"20261122T060000Z-{job_id}.png"]
    assert [p.stem for p in pdfs] == [pngs[0].stem]
    expected = render(ticket_document(SLIPS["ckb"]), 576).image
    with Image.open(pngs[0]) as png:
        saved = png.convert("1")
    assert saved.size == expected.size and ImageChops.logical_xor(saved, expected).getbbox() is None
    pdf = pdfs[0].read_bytes()
    assert pdf.startswith(b"%PDF")
    width_pt = float(re.search(rb"/MediaBox \[ ?0 0 ([0-9.]+)", pdf).group(1))
    assert abs(width_pt / 72 * 25.4 - 72.06) < 0.5  # 576 dots at 203 dpi
    assert not list(prints.glob(".*.tmp"))
    status = printer.status()
    assert (status["state"], status["printed"], status["pending"]) == ("online", 1, 0)


def test_preview_keeps_only_the_newest_files(kiosk_printer, data_dir, clock):
    """preview://?keep=N prunes the oldest previews so a busy centre's disk does not fill."""
    printer = kiosk_printer("preview://?keep=2")
    ids = []
    for _ in range(4):
        ids.append(printer.print_ticket(SLIPS["en"]))
        assert printer.wait_idle(10)
        clock.advance(60)
    names = sorted(p.name for p in (data_dir / "prints").iterdir())
    assert len(names) == 4
    assert all(ids[2] in n or ids[3] in n for n in names)


def test_unwritable_preview_directory_keeps_the_job_until_it_is_fixed(kiosk_printer, data_dir):
    """A preview that cannot be written is an error; the job waits and is saved once writable."""
    blocker = data_dir / "prints"
    blocker.write_text("not a directory")
    printer = kiosk_printer(None)
    job_id = printer.print_ticket(SLIPS["ar"])
    assert not printer.wait_idle(0.5)
    deadline = time.monotonic() + 10  # the worker is a process of its own: it starts, then tries
    while printer.status()["state"] != "error" and time.monotonic() < deadline:
        time.sleep(0.02)
    status = printer.status()
    assert status["state"] == "error" and "cannot write preview" in status["last_error"]
    assert printer.job_state(job_id) == "pending"
    blocker.unlink()
    assert printer.wait_idle(10)
    assert printer.job_state(job_id) == "printed"
    assert len(list(blocker.glob("*.png"))) == 1


def test_make_printer_validates_the_url_and_touches_nothing(data_dir):
    """A bad URL is a ValueError naming the problem; a good one starts no thread until used."""
    with pytest.raises(ValueError, match="unknown scheme"):
        make_printer("ipp://printer", data_dir)
    before = threading.active_count()
    printer = make_printer("escpos+tcp://127.0.0.1:9?timeout=0.1", data_dir)
    assert isinstance(printer, KioskPrinter)
    assert threading.active_count() == before
    assert printer.close() == []


def test_print_ticket_needs_a_ticket_slip(kiosk_printer):
    """The app must hand over a TicketSlip (already translated), not its own ticket dict."""
    printer = kiosk_printer(None)
    with pytest.raises(TypeError, match="TicketSlip"):
        printer.print_ticket({"number": "A-001"})


def test_a_job_that_cannot_be_rendered_is_dropped_and_does_not_block_the_queue(kiosk_printer, data_dir):
    """A ticket whose QR cannot fit the paper fails alone; the next ticket still prints."""
    import dataclasses

    printer = kiosk_printer("preview://?profile=ZJ-5870")
    bad = dataclasses.replace(SLIPS["en"], qr="x" * 900)
    bad_id = printer.print_ticket(bad)
    good_id = printer.print_ticket(SLIPS["en"])
    assert printer.wait_idle(10)
    assert printer.job_state(bad_id) == "failed" and printer.job_state(good_id) == "printed"
    status = printer.status()
    assert status["failed"] == 1 and status["printed"] == 1 and "dropped" in status["last_error"]


def command_app(data_dir, printer_url: str = "") -> Flask:
    """A Flask app with the settings the print-test command reads."""
    app = Flask("print-test-app")
    app.config.update(DATA_DIR=str(data_dir), PRINTER_URL=printer_url)
    app.cli.add_command(print_test_command)
    return app


def test_print_test_command_with_the_default_preview(data_dir):
    """`flask print-test --lang ar` saves a sample Arabic ticket and reports the status."""
    result = command_app(data_dir).test_cli_runner().invoke(args=["print-test", "--lang", "ar"])
    assert result.exit_code == 0, result.output
    assert "status: online" in result.output and "sample ticket sent" in result.output
    assert len(list((data_dir / "prints").glob("*.png"))) == 1


def test_print_test_command_on_a_network_printer(data_dir, double):
    """--printer sends the sample ticket to the given printer; the bytes decode to a ticket."""
    result = command_app(data_dir).test_cli_runner().invoke(
        args=["print-test", "--printer", double.url, "--lang", "ckb"])
    assert result.exit_code == 0, result.output
    assert double.wait_for_jobs(1, 5)
    job = decode(double.jobs[0])
    assert job.kinds[0] == "init" and job.kinds[-1] == "cut" and len(job.qr_codes) == 1


def test_print_test_command_reports_a_printer_that_is_down(data_dir, double):
    """A printer that refuses connections: exit status 1 and the reason."""
    double.set_state("down")
    app = command_app(data_dir, printer_url=double.url)
    result = app.test_cli_runner().invoke(args=["print-test", "--wait", "0.5"])
    assert result.exit_code == 1
    assert "status: offline" in result.output and "NOT printed" in result.output and "refused" in result.output


def test_print_test_command_rejects_a_bad_url(data_dir):
    """A typo in --printer is a usage error that names the bad option."""
    result = command_app(data_dir).test_cli_runner().invoke(
        args=["print-test", "--printer", "escpos+tcp://127.0.0.1?timout=1"])
    assert result.exit_code == 2
    assert "unknown option 'timout'" in result.output


def test_print_test_command_when_printing_is_switched_off(data_dir):
    """PRINTER_URL=off (no printing at all) is explained instead of failing as a bad URL."""
    result = command_app(data_dir, printer_url="off").test_cli_runner().invoke(args=["print-test"])
    assert result.exit_code == 1 and "switched off" in result.output


def test_start_up_refuses_without_raqm(monkeypatch):
    """Without Pillow's raqm (no libfribidi0) start-up fails with a message saying what to install."""
    real_check = features.check
    monkeypatch.setattr(features, "check", lambda name: False if name == "raqm" else real_check(name))
    with pytest.raises(ShapingUnavailable, match="libfribidi0"):
        check_shaping()


def test_print_test_refuses_without_raqm(data_dir, monkeypatch):
    """The print-test command stops with the same clear message instead of printing garbage."""
    real_check = features.check
    monkeypatch.setattr(features, "check", lambda name: False if name == "raqm" else real_check(name))
    result = command_app(data_dir).test_cli_runner().invoke(args=["print-test"])
    assert result.exit_code == 1
    assert "libfribidi0" in result.output
    assert not (data_dir / "prints").exists()


def test_profile_of_the_preview_sets_its_paper_width(kiosk_printer, data_dir):
    """preview://?profile=POS-5890 previews a 58 mm ticket (384 dots)."""
    printer = kiosk_printer("preview://?profile=POS-5890")
    printer.print_ticket(SLIPS["ar"])
    assert printer.wait_idle(10)
    (png,) = (data_dir / "prints").glob("*.png")
    with Image.open(png) as image:
        assert image.width == get_profile("POS-5890").width == 384
