"""Errors raised by the printing package."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hardware.status import PrinterStatus


class PrintingError(Exception):
    """Base class of every printing error."""


class ShapingUnavailable(PrintingError, RuntimeError):
    """Pillow cannot shape Arabic script (no raqm), so tickets would print unreadable."""


class LayoutError(PrintingError, ValueError):
    """A document cannot be laid out at the printer's width (for example a QR that does not fit)."""


class EncodeError(PrintingError, ValueError):
    """A rendered document cannot be encoded for the configured printer profile."""


class PrinterUnavailable(PrintingError):
    """The printer cannot take a job now; the job stays queued and is retried."""

    def __init__(self, status: "PrinterStatus"):
        """Carry the status that made the printer unavailable."""
        super().__init__(status.detail)
        self.status = status
