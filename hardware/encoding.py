"""Encode a rendered document as one ESC/POS job, in memory, with python-escpos' Dummy printer.

The whole job is built before anything is sent, so every transport, every retry and the CUPS
spool see exactly the same bytes and a job is never half-built on the wire.
"""

from __future__ import annotations

import logging
import math

from hardware.errors import EncodeError
from hardware.profiles import Profile
from hardware.rendering import QUIET_ZONE_MODULES, QrSegment, Rendered, TextSegment

log = logging.getLogger(__name__)

_QR_LEVELS = {"L": 0, "M": 1, "Q": 2, "H": 3}


def new_dummy(profile: Profile):
    """A python-escpos Dummy printer carrying the profile (with its width) without touching shared data."""
    from escpos.printer import Dummy

    printer = Dummy(profile=profile.name)
    printer.profile.profile_data = profile.escpos_profile_data()
    return printer


def encode(rendered: Rendered, profile: Profile) -> bytes:
    """Initialise, print the raster (native QR where the profile can), feed and cut."""
    from escpos.exceptions import ImageWidthError

    if rendered.width > profile.width:
        raise EncodeError(
            f"the document was rendered {rendered.width} dots wide but profile {profile.name} "
            f"prints at most {profile.width} dots"
        )
    printer = new_dummy(profile)
    printer.hw("INIT")
    try:
        if profile.native_qr:
            for segment in rendered.segments:
                if isinstance(segment, TextSegment):
                    printer.image(segment.image, impl=profile.impl)
                else:
                    _native_qr(printer, segment)
        else:
            printer.image(rendered.image, impl=profile.impl)
    except ImageWidthError as exc:
        raise EncodeError(f"image too wide for profile {profile.name}: {exc}") from exc
    if profile.cut:
        printer.cut()
    return printer.output


def _native_qr(printer, segment: QrSegment) -> None:
    """Print a QR with `GS ( k`, centred, with the same module size and quiet zone as the image."""
    # Blank lines at the default 1/6-inch spacing (>= 30 dots) make the 4-module quiet zone.
    quiet_lines = math.ceil(QUIET_ZONE_MODULES * segment.module_dots / 30)
    # python-escpos refuses center=True for native QR; ESC a 1 centres 2-D codes on Epson printers.
    printer.set(align="center")
    printer.ln(quiet_lines)
    printer.qr(segment.payload, native=True, size=segment.module_dots, ec=_QR_LEVELS[segment.level])
    printer.ln(quiet_lines)
    printer.set(align="left")
