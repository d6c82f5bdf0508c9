"""Printer status: the states the screens show, and decoding of ESC/POS `DLE EOT` replies."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from typing import Callable


class PrinterState(str, enum.Enum):
    """What the attendant and supervisor screens show about a printer."""

    ONLINE = "online"
    OFFLINE = "offline"
    PAPER_LOW = "paper_low"
    PAPER_OUT = "paper_out"
    ERROR = "error"
    UNKNOWN = "unknown"

    @property
    def can_print(self) -> bool:
        """Whether a job may be sent (paper low still prints; unknown is tried)."""
        return self in (PrinterState.ONLINE, PrinterState.PAPER_LOW, PrinterState.UNKNOWN)


@dataclasses.dataclass(frozen=True)
class PrinterStatus:
    """A state with a short English detail for logs, and when it was observed (UTC)."""

    state: PrinterState
    detail: str
    checked_at: dt.datetime | None = None

    def at(self, moment: dt.datetime) -> "PrinterStatus":
        """The same status stamped with the time it was observed."""
        return dataclasses.replace(self, checked_at=moment)


def status(state: PrinterState, detail: str) -> PrinterStatus:
    """Shorthand for an unstamped status."""
    return PrinterStatus(state, detail)


# Real-time status requests (Epson ESC/POS): DLE EOT n.
DLE_EOT = b"\x10\x04"
PRINTER_STATUS, OFFLINE_CAUSE, ERROR_CAUSE, PAPER_SENSOR = 1, 2, 3, 4
# Every reply byte has bit 1 and bit 4 set and bits 0 and 7 clear.
_FIXED_MASK, _FIXED_BITS = 0x93, 0x12


def query_bytes(n: int) -> bytes:
    """The request for real-time status `n` (1..4)."""
    return DLE_EOT + bytes((n,))


def _check(n: int, reply: bytes) -> int:
    """The reply byte, or ValueError when it is not a valid status reply."""
    if len(reply) < 1:
        raise ValueError(f"no reply byte to DLE EOT {n}")
    value = reply[-1]
    if value & _FIXED_MASK != _FIXED_BITS:
        raise ValueError(f"reply 0x{value:02x} to DLE EOT {n} is not an ESC/POS status byte")
    return value


def read_status(ask: Callable[[int], bytes]) -> PrinterStatus:
    """Ask a printer for its state with DLE EOT 1 (then 2/3 when offline, else 4 for paper).

    `ask(n)` sends DLE EOT n and returns the reply; it raises on timeout or lost connection.
    """
    try:
        printer = _check(PRINTER_STATUS, ask(PRINTER_STATUS))
        if printer & 0x08:
            cause = _check(OFFLINE_CAUSE, ask(OFFLINE_CAUSE))
            if cause & 0x20:
                return status(PrinterState.PAPER_OUT, "paper out: printing stopped at the paper end")
            if cause & 0x40:
                error = _check(ERROR_CAUSE, ask(ERROR_CAUSE))
                if error & 0x08:
                    return status(PrinterState.ERROR, "auto-cutter error")
                if error & 0x20:
                    return status(PrinterState.ERROR, "unrecoverable printer error: power-cycle the printer")
                if error & 0x40:
                    return status(PrinterState.ERROR, "printer error (head too hot?); it recovers by itself")
                return status(PrinterState.ERROR, "printer reports an error")
            if cause & 0x04:
                return status(PrinterState.OFFLINE, "cover open")
            if cause & 0x08:
                return status(PrinterState.OFFLINE, "paper is being fed with the FEED button")
            return status(PrinterState.OFFLINE, "printer is offline")
        paper = _check(PAPER_SENSOR, ask(PAPER_SENSOR))
    except ValueError as exc:
        return status(PrinterState.ERROR, str(exc))
    if paper & 0x60:
        return status(PrinterState.PAPER_OUT, "paper out")
    if paper & 0x0C:
        return status(PrinterState.PAPER_LOW, "paper low: change the roll soon")
    return status(PrinterState.ONLINE, "ready")
