"""Status decoding: ESC/POS DLE EOT replies, IPP printer attributes and printer-port lines."""

from __future__ import annotations

import pytest

from hardware import PrinterState
from hardware.status import read_status
from hardware.transports import ipp_status, lp_status
from tests.hardware.doubles.printer import REPLIES


@pytest.mark.parametrize("name,state,detail", [
    ("online", PrinterState.ONLINE, "ready"),
    ("paper_low", PrinterState.PAPER_LOW, "paper low"),
    ("paper_out", PrinterState.PAPER_OUT, "paper out"),
    ("offline", PrinterState.OFFLINE, "cover open"),
    ("error", PrinterState.ERROR, "unrecoverable"),
])
def test_dle_eot_replies(name, state, detail):
    """Each printer state of the double decodes to the state the screens show."""
    asked = []

    def ask(n):
        """Answer like the double in that state."""
        asked.append(n)
        return bytes((REPLIES[name][n],))

    seen = read_status(ask)
    assert seen.state is state
    assert detail in seen.detail
    assert asked[0] == 1


def test_garbage_status_reply_is_an_error_not_online():
    """A byte without the fixed status bits (wrong device on the port) is reported, not trusted."""
    seen = read_status(lambda n: b"\xff")
    assert seen.state is PrinterState.ERROR and "not an ESC/POS status byte" in seen.detail


def test_empty_status_reply_is_an_error():
    """python-escpos reads an empty reply as 'paper adequate'; here it is an error."""
    seen = read_status(lambda n: b"")
    assert seen.state is PrinterState.ERROR


@pytest.mark.parametrize("attrs,state,detail", [
    ({"printer-state": 3, "printer-state-reasons": ["none"]}, PrinterState.ONLINE, "ready"),
    ({"printer-state": 4, "printer-state-reasons": ["none"]}, PrinterState.ONLINE, "printing"),
    ({"printer-state": 4, "printer-state-reasons": ["none"],
      "printer-state-message": "The printer may not exist or is unavailable at this time."},
     PrinterState.OFFLINE, "may not exist"),
    ({"printer-state": 4, "printer-state-reasons": ["cups-waiting-for-job-completed"],
      "printer-state-message": "Waiting for printer to finish."}, PrinterState.ONLINE, "printing"),
    ({"printer-state": 4, "printer-state-reasons": ["connecting-to-device"]}, PrinterState.OFFLINE, "unreachable"),
    ({"printer-state": 3, "printer-state-reasons": ["offline-report"]}, PrinterState.OFFLINE, "unreachable"),
    ({"printer-state": 5, "printer-state-reasons": ["paused"]}, PrinterState.OFFLINE, "paused"),
    ({"printer-state": 5, "printer-state-reasons": ["none"]}, PrinterState.OFFLINE, "cupsenable"),
    ({"printer-state": 3, "printer-state-reasons": ["media-empty-error"]}, PrinterState.PAPER_OUT, "paper out"),
    ({"printer-state": 3, "printer-state-reasons": ["media-needed-warning"]}, PrinterState.PAPER_OUT, "paper out"),
    ({"printer-state": 3, "printer-state-reasons": ["media-low-report"]}, PrinterState.PAPER_LOW, "paper low"),
    ({"printer-state": 3, "printer-state-reasons": ["cover-open-error"]}, PrinterState.OFFLINE, "cover open"),
    ({"printer-state": 3, "printer-state-reasons": ["marker-supply-empty-error"]}, PrinterState.ERROR,
     "marker-supply-empty-error"),
    ({"printer-state": 3, "printer-state-reasons": ["none"], "printer-is-accepting-jobs": False},
     PrinterState.ERROR, "cupsaccept"),
])
def test_ipp_attributes(attrs, state, detail):
    """IPP printer-state and printer-state-reasons, as CUPS reports them, map to screen states."""
    seen = ipp_status(attrs)
    assert seen.state is state
    assert detail in seen.detail


@pytest.mark.parametrize("value,state", [
    (0x18, PrinterState.ONLINE),
    (0x38, PrinterState.PAPER_OUT),
    (0x08, PrinterState.OFFLINE),
    (0x10, PrinterState.ERROR),
])
def test_printer_port_status_lines(value, state):
    """LPGETSTATUS bits of /dev/usb/lp0: paper out, selected, no error."""
    assert lp_status(value).state is state


def test_states_that_allow_sending():
    """Paper low still prints; unknown is tried; the rest wait."""
    assert {s for s in PrinterState if s.can_print} == {PrinterState.ONLINE, PrinterState.PAPER_LOW,
                                                        PrinterState.UNKNOWN}
