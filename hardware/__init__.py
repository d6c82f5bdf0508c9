"""Printing for the centre kiosk: layout, rendering, ESC/POS encoding, transports, a durable spool
and the print worker process.

The kiosk app builds a TicketSlip (already translated), and `kiosk.printing` turns it into a
Document and spools it (hardware.spooler); the print worker process (hardware.worker) renders it
with Pillow + raqm to a 1-bit image at the printer's width, encodes it with python-escpos and sends
it through the transport named by the printer URL. python-escpos is imported only when a job is
encoded or a profile looked up: its import writes a cache file.
"""

from hardware.encoding import encode
from hardware.errors import (
    EncodeError,
    LayoutError,
    PrinterUnavailable,
    PrintingError,
    ShapingUnavailable,
)
from hardware.job import PrintJob
from hardware.layout import (
    MIN_QR_MODULE_DOTS,
    RTL_LANGS,
    Document,
    Line,
    QrCode,
    Rule,
    Spacer,
    TicketSlip,
    ticket_document,
)
from hardware.profiles import Profile, get_profile
from hardware.queue import PrintQueue, QueueStatus
from hardware.rendering import Rendered, check_shaping, render
from hardware.spooler import Spooler, SpoolerStatus
from hardware.status import PrinterState, PrinterStatus
from hardware.urls import PrinterConfig, parse_printer_url, redact

__all__ = [
    "Document", "EncodeError", "LayoutError", "Line", "MIN_QR_MODULE_DOTS", "PrintJob", "PrintQueue",
    "PrinterConfig", "PrinterState", "PrinterStatus", "PrinterUnavailable", "PrintingError", "Profile",
    "QrCode", "QueueStatus", "RTL_LANGS", "Rendered", "Rule", "ShapingUnavailable", "Spacer", "Spooler",
    "SpoolerStatus", "TicketSlip",
    "check_shaping", "encode", "get_profile", "parse_printer_url", "redact", "render", "ticket_document",
]
