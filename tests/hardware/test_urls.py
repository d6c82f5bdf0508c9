"""Printer URLs: every documented form parses; every bad part is named; secrets never leak."""

from __future__ import annotations

import pytest

from hardware import parse_printer_url, redact
from hardware.transports import (
    CupsTransport,
    FileTransport,
    NetworkTransport,
    PreviewTransport,
    SerialTransport,
    UsbTransport,
)


@pytest.mark.parametrize("url,transport,target,width", [
    (None, PreviewTransport, "", 576),
    ("", PreviewTransport, "", 576),
    ("preview://?profile=ZJ-5870", PreviewTransport, "", 384),
    ("escpos+tcp://10.0.0.5:9100?profile=TM-T20II&timeout=3", NetworkTransport, "10.0.0.5:9100", 576),
    ("escpos+tcp://printer-1?profile=TM-T88V", NetworkTransport, "printer-1:9100", 512),
    ("escpos+tcp://[fd00::5]:9101", NetworkTransport, "[fd00::5]:9101", 576),
    ("escpos+usb://04b8:0e15?profile=TM-T20II&in_ep=0x82&out_ep=0x01", UsbTransport, "04b8:0e15", 576),
    ("escpos+serial:///dev/ttyUSB0?baudrate=19200&profile=POS-5890", SerialTransport, "/dev/ttyUSB0", 384),
    ("escpos+file:///dev/usb/lp0", FileTransport, "/dev/usb/lp0", 576),
    ("cups://kiosk-1", CupsTransport, "kiosk-1", 576),
    ("cups://127.0.0.1:8631/kiosk-1?profile=ZJ-5870", CupsTransport, "kiosk-1", 384),
])
def test_documented_forms_parse(url, transport, target, width, tmp_path):
    """Each URL form of docs/printing.md gives the right transport, target and paper width."""
    config = parse_printer_url(url)
    assert config.target == target
    assert config.profile.width == width
    assert isinstance(config.open(tmp_path), transport)


def test_options_reach_the_transport(tmp_path):
    """Timeouts, endpoints, baud rate and status switches are passed through."""
    tcp = parse_printer_url("escpos+tcp://10.0.0.5?timeout=0.7&status=off").open(tmp_path)
    assert (tcp.host, tcp.port, tcp.timeout, tcp.check_status) == ("10.0.0.5", 9100, 0.7, False)
    usb = parse_printer_url("escpos+usb://0416:5011?in_ep=0x81&out_ep=3").open(tmp_path)
    assert (usb.vendor_id, usb.product_id, usb.in_ep, usb.out_ep) == (0x0416, 0x5011, 0x81, 3)
    serial = parse_printer_url("escpos+serial:///dev/ttyS0?baudrate=115200&rtscts=on").open(tmp_path)
    assert (serial.device, serial.baudrate, serial.rtscts, serial.xonxoff) == ("/dev/ttyS0", 115200, True, False)
    cups = parse_printer_url("cups://print-server:8631/front-desk").open(tmp_path)
    assert (cups.host, cups.port, cups.queue) == ("print-server", 8631, "front-desk")
    preview = parse_printer_url("preview://?keep=7").open(tmp_path)
    assert preview.keep == 7 and preview.directory == tmp_path / "prints"


@pytest.mark.parametrize("url,message", [
    ("lpt://printer", "unknown scheme lpt://"),
    ("10.0.0.5:9100", "unknown scheme"),
    ("escpos+tcp://", "missing printer host"),
    ("escpos+tcp://h:99999", "must be a number in 1..65535"),
    ("escpos+tcp://h:0", "port 0"),
    ("escpos+tcp://h/path", "unexpected path"),
    ("escpos+tcp://h?timout=3", "unknown option 'timout'"),
    ("escpos+tcp://h?timeout=abc", "timeout='abc' is not a number"),
    ("escpos+tcp://h?timeout=0", "outside"),
    ("escpos+tcp://h?status=maybe", "must be on or off"),
    ("escpos+tcp://h?profile=TM-T2OII", "did you mean TM-T20II"),
    ("escpos+tcp://h?profile=default", "add width=384, 512 or 576"),
    ("escpos+tcp://h?profile=TM-T88V&width=576", "wider than profile"),
    ("escpos+tcp://h?qr=maybe", "must be 'native' or 'image'"),
    ("escpos+tcp://h?profile=POS-5890&impl=graphics", "does not support impl=graphics"),
    ("escpos+tcp://h?timeout=1&timeout=2", "given twice"),
    ("escpos+usb://4b8:e15", "VENDOR:PRODUCT in hex"),
    ("escpos+usb://04b8:0e15?in_ep=0x01", "in_ep=0x01 is outside"),
    ("escpos+serial://dev/ttyUSB0", "three slashes"),
    ("escpos+serial:///dev/ttyUSB0?baudrate=1234", "baudrate=1234 is not one of"),
    ("escpos+file://", "absolute path"),
    ("cups://", "CUPS queue name ''"),
    ("cups://bad%20queue", "CUPS queue name"),
    ("preview://somewhere", "takes no host or path"),
    ("escpos+tcp://h#x", "fragment"),
])
def test_invalid_urls_name_the_bad_part(url, message):
    """ValueError with the URL and the exact problem."""
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("?", r"\?")):
        parse_printer_url(url)


def test_credentials_are_refused_and_never_echoed():
    """A password in a printer URL is rejected, and the error message does not contain it."""
    with pytest.raises(ValueError) as info:
        parse_printer_url("cups://admin:hunter2@print-server/kiosk")
    assert "hunter2" not in str(info.value)
    assert "credentials" in str(info.value)
    assert redact("cups://admin:hunter2@print-server/kiosk") == "cups://admin:***@print-server/kiosk"
    assert redact("escpos+tcp://10.0.0.5:9100") == "escpos+tcp://10.0.0.5:9100"
