"""The printed receipt of a registered request: a short summary in the citizen's language and the
signed QR code that anyone can check, at a kiosk, on a phone or on the command line.

The kiosk hands over a ReceiptSlip whose text is already translated; this module only decides the
order, sizes and alignment. A receipt carries no name, ID number, contact or referral detail: the
QR payload is readable by anyone, and so is the paper.
"""

from __future__ import annotations

import dataclasses

from hardware.layout import RTL_LANGS, TICKET_LANGS, Block, Direction, Document, Line, QrCode, Rule, Spacer

# 5 printer dots per module decoded in every trial of the print-and-scan simulation at level M
# (4 was the floor); the renderer shrinks towards 4 on narrow paper, never below.
RECEIPT_QR_MODULE_DOTS = 5
RECEIPT_QR_LEVEL = "M"


@dataclasses.dataclass(frozen=True)
class ReceiptSlip:
    """A receipt's already-localised text, as the kiosk app hands it to the printer.

    `facts` are (label, value) pairs printed one per line; `documents` lists the documents
    received; numbers and codes the citizen may have to read out stay in Latin digits in
    `ticket` and `receipt_id`."""

    lang: str
    centre: str
    title: str
    service: str
    ticket: str
    receipt_id: str
    facts: tuple[tuple[str, str], ...]
    fee_text: str
    qr: str
    documents_title: str = ""
    documents: tuple[str, ...] = ()
    warning: str = ""
    footer: str = ""

    def __post_init__(self):
        """Refuse a slip that would print a broken or unverifiable receipt."""
        if self.lang not in TICKET_LANGS:
            raise ValueError(f"receipt language {self.lang!r} is not one of {', '.join(TICKET_LANGS)}")
        object.__setattr__(self, "facts", tuple(tuple(pair) for pair in self.facts))
        object.__setattr__(self, "documents", tuple(self.documents))
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name == "facts":
                if any(len(pair) != 2 or not all(isinstance(x, str) for x in pair) for pair in value):
                    raise TypeError("receipt facts must be (label, value) pairs of str")
            elif field.name == "documents":
                if not all(isinstance(x, str) for x in value):
                    raise TypeError("receipt documents must be str")
            elif not isinstance(value, str):
                raise TypeError(f"receipt field {field.name} must be str, not {type(value).__name__}")
        for name in ("centre", "title", "service", "ticket", "receipt_id", "fee_text", "qr"):
            if not getattr(self, name).strip():
                raise ValueError(f"receipt field {name} is empty")
        if not self.qr.startswith("HTTPS://"):
            raise ValueError("a receipt QR holds the signed verification URL (HTTPS://HOST/R#...)")

    @property
    def direction(self) -> Direction:
        """Paragraph direction of the receipt's language."""
        return "rtl" if self.lang in RTL_LANGS else "ltr"


def receipt_document(slip: ReceiptSlip) -> Document:
    """Lay out a receipt: centre, title, service, ticket and receipt number, dates, documents
    received, the official fee (bold: the anti-extortion point), a warning, the QR and the footer."""
    lang = slip.lang
    blocks: list[Block] = [
        Line(slip.centre, lang, "normal", bold=True, align="center"),
        Line(slip.title, lang, "large", bold=True, align="center"),
        Rule(),
        Line(slip.service, lang, "large", bold=True, align="center"),
        # ticket and receipt numbers read left to right on every screen and paper of the kiosk
        Line(slip.ticket, "en", "large", bold=True, align="center"),
        Line(slip.receipt_id, "en", "small", align="center"),
        Spacer(8),
    ]
    for label, value in slip.facts:
        blocks.append(Line(f"{label}: {value}", lang))
    if slip.documents:
        blocks.append(Spacer(6))
        if slip.documents_title.strip():
            blocks.append(Line(slip.documents_title, lang, bold=True))
        blocks += [Line(f"• {name}", lang) for name in slip.documents]
    blocks += [Spacer(6), Line(slip.fee_text, lang, bold=True)]
    if slip.warning.strip():
        blocks.append(Line(slip.warning, lang, "small"))
    blocks.append(QrCode(slip.qr, level=RECEIPT_QR_LEVEL, module_dots=RECEIPT_QR_MODULE_DOTS))
    if slip.footer.strip():
        blocks.append(Line(slip.footer, lang, "small", align="center"))
    # the title names no person: print spoolers and preview file names show it
    return Document(tuple(blocks), title=f"receipt {slip.ticket}")
