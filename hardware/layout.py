"""What gets printed: documents made of lines and QR codes, and the queue ticket layout.

Everything here is plain data. Text arrives already localised (the kiosk translates with its
gettext catalogues); this module only decides sizes, weights, alignment and order.
"""

from __future__ import annotations

import dataclasses
from typing import Literal, Union

RTL_LANGS = frozenset({"ar", "ckb"})
TICKET_LANGS = ("ar", "ckb", "en")
SIZES = ("small", "normal", "large", "huge")
ALIGNS = ("start", "center", "end")
QR_LEVELS = ("L", "M", "Q", "H")
# Below 4 printer dots per module phone cameras and scanners misread thermal-printed QR codes.
MIN_QR_MODULE_DOTS = 4

Align = Literal["start", "center", "end"]
Direction = Literal["ltr", "rtl"]


@dataclasses.dataclass(frozen=True)
class Line:
    """One paragraph of text in one language; wrapped at word boundaries when too long."""

    text: str
    lang: str = "en"
    size: str = "normal"
    bold: bool = False
    align: Align = "start"
    direction: Direction | None = None

    def __post_init__(self):
        """Refuse values the renderer cannot honour."""
        if not isinstance(self.text, str):
            raise TypeError(f"line text must be str, not {type(self.text).__name__}")
        if self.size not in SIZES:
            raise ValueError(f"line size {self.size!r} is not one of {', '.join(SIZES)}")
        if self.align not in ALIGNS:
            raise ValueError(f"line align {self.align!r} is not one of {', '.join(ALIGNS)}")
        if self.direction not in (None, "ltr", "rtl"):
            raise ValueError(f"line direction {self.direction!r} is not 'ltr', 'rtl' or None")

    @property
    def text_direction(self) -> Direction:
        """The paragraph direction: explicit, else right-to-left for Arabic and Sorani."""
        if self.direction is not None:
            return self.direction
        return "rtl" if self.lang in RTL_LANGS else "ltr"


@dataclasses.dataclass(frozen=True)
class Spacer:
    """Blank paper of a given height in dots (at 576-dot width; scaled for narrower paper)."""

    dots: int = 16

    def __post_init__(self):
        """Refuse negative or absurd heights."""
        if not 0 <= self.dots <= 1000:
            raise ValueError(f"spacer height {self.dots} dots is outside 0..1000")


@dataclasses.dataclass(frozen=True)
class Rule:
    """A thin horizontal line across the printable width."""

    thickness: int = 2


@dataclasses.dataclass(frozen=True)
class QrCode:
    """A QR code, centred, with a 4-module quiet zone, at `module_dots` printer dots per module.

    The renderer may shrink the modules to fit narrow paper, never below MIN_QR_MODULE_DOTS.
    """

    payload: str
    level: str = "M"
    module_dots: int = 6

    def __post_init__(self):
        """Refuse payloads and sizes that cannot print."""
        if not isinstance(self.payload, str) or not self.payload:
            raise ValueError("QR payload must be a non-empty string")
        if self.level not in QR_LEVELS:
            raise ValueError(f"QR level {self.level!r} is not one of {', '.join(QR_LEVELS)}")
        if not MIN_QR_MODULE_DOTS <= self.module_dots <= 16:
            raise ValueError(
                f"QR module size {self.module_dots} dots is outside {MIN_QR_MODULE_DOTS}..16"
            )


Block = Union[Line, Spacer, Rule, QrCode]


@dataclasses.dataclass(frozen=True)
class Document:
    """A printable document: blocks from top to bottom (tickets, receipts, test pages)."""

    blocks: tuple[Block, ...]
    title: str = "document"

    def __post_init__(self):
        """Accept any sequence of blocks, store a tuple, refuse anything else."""
        blocks = tuple(self.blocks)
        for block in blocks:
            if not isinstance(block, (Line, Spacer, Rule, QrCode)):
                raise TypeError(f"not a document block: {type(block).__name__}")
        if not blocks:
            raise ValueError("a document needs at least one block")
        object.__setattr__(self, "blocks", blocks)

    @property
    def qr_codes(self) -> tuple[QrCode, ...]:
        """The QR codes of the document, top to bottom."""
        return tuple(b for b in self.blocks if isinstance(b, QrCode))


@dataclasses.dataclass(frozen=True)
class TicketSlip:
    """A queue ticket's already-localised text, as the kiosk app hands it to the printer."""

    lang: str
    centre: str
    number: str
    number_local: str
    service: str
    issued_at_text: str
    ahead_text: str
    fee_text: str
    qr: str
    wait_text: str = ""
    counter_text: str = ""
    footer: str = ""
    priority_text: str = ""   # the priority class of a priority ticket
    transfer_text: str = ""   # a transferred ticket's new number and the old one

    def __post_init__(self):
        """Refuse a slip that would print a broken ticket."""
        if self.lang not in TICKET_LANGS:
            raise ValueError(f"ticket language {self.lang!r} is not one of {', '.join(TICKET_LANGS)}")
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, str):
                raise TypeError(f"ticket field {field.name} must be str, not {type(value).__name__}")
        for name in ("centre", "number", "number_local", "service", "qr"):
            if not getattr(self, name).strip():
                raise ValueError(f"ticket field {name} is empty")

    @property
    def direction(self) -> Direction:
        """Paragraph direction of the ticket's language."""
        return "rtl" if self.lang in RTL_LANGS else "ltr"


def ticket_document(slip: TicketSlip) -> Document:
    """Lay out a queue ticket: centre, big number, service, time, place in line, fee, QR."""
    lang = slip.lang
    blocks: list[Block] = [
        Line(slip.centre, lang, "normal", bold=True, align="center"),
        Rule(),
        # The big number is always in Latin digits: it is what the hall display and the
        # attendants call out, whatever the citizen's language.
        Line(slip.number, "en", "huge", bold=True, align="center"),
    ]
    if slip.number_local != slip.number:
        # Numbers read left to right on every screen of the kiosk (bdi dir=ltr), so on paper too.
        blocks.append(Line(slip.number_local, lang, "large", align="center", direction="ltr"))
    blocks.append(Line(slip.service, lang, "large", bold=True, align="center"))
    for mark in (slip.priority_text, slip.transfer_text):
        if mark.strip():
            blocks.append(Line(mark, lang, bold=True, align="center"))
    blocks += [
        Spacer(8),
        Line(slip.issued_at_text, lang),
        Line(slip.ahead_text, lang),
    ]
    for optional in (slip.wait_text, slip.counter_text):
        if optional.strip():
            blocks.append(Line(optional, lang))
    blocks += [
        Line(slip.fee_text, lang, bold=True),
        QrCode(slip.qr, level="M", module_dots=6),
    ]
    if slip.footer.strip():
        blocks.append(Line(slip.footer, lang, "small", align="center"))
    return Document(tuple(blocks), title=f"ticket {slip.number}")
