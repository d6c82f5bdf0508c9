"""Sample tickets in each language, for `flask --app kiosk print-test`, benchmarks and tests.

The texts are what a centre's ticket really says; they exercise every Sorani-only letter
(ە ۆ ێ ڵ ڕ) and Arabic-Indic digits.
"""

from __future__ import annotations

from hardware.layout import Document, Line, QrCode, Rule, TicketSlip

_ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")

_TEXTS = {
    "ar": {
        "centre": "مركز خدمات المواطنين",
        "service": "وثائق الأحوال المدنية",
        "issued": "وقت الإصدار: {time}",
        "ahead": "{n} أشخاص قبلك",
        "wait": "الانتظار المتوقع: {minutes} دقيقة تقريباً",
        "counter": "الشباك: {counter}",
        "fee": "هذه الخدمة مجانية",
        "footer": "احتفظ بهذه التذكرة حتى يُنادى رقمك",
    },
    "ckb": {
        "centre": "بەڕێوەبەرایەتی خزمەتگوزارییەکانی هاووڵاتیان",
        "service": "بەڵگەنامەکانی باری شارستانی",
        "issued": "کاتی دەرچوون: {time}",
        "ahead": "{n} کەس لە پێش تۆن",
        "wait": "چاوەڕوانی: نزیکەی {minutes} خولەک",
        "counter": "پەنجەرەی {counter}",
        "fee": "ئەم خزمەتگوزارییە بێبەرامبەرە",
        "footer": "ئەم بلیتە هەڵبگرە تا ژمارەکەت بانگ دەکرێت",
    },
    "en": {
        "centre": "Citizen Services Centre",
        "service": "Civil status documents",
        "issued": "Issued at {time}",
        "ahead": "{n} people ahead of you",
        "wait": "Estimated wait: about {minutes} min",
        "counter": "Counter {counter}",
        "fee": "This service is free",
        "footer": "Keep this ticket until your number is called",
    },
}


def local_digits(text: str, lang: str) -> str:
    """Write Latin digits in the language's own digits (Arabic-Indic for ar and ckb)."""
    return text.translate(_ARABIC_INDIC) if lang in ("ar", "ckb") else text


def sample_slip(lang: str = "ckb", *, number: str = "A-007", time: str = "09:41", ahead: int = 3,
                minutes: int = 15, counter: str = "2", qr: str | None = None) -> TicketSlip:
    """A realistic ticket slip in one language."""
    if lang not in _TEXTS:
        raise ValueError(f"no sample texts for language {lang!r}; use ar, ckb or en")
    t = _TEXTS[lang]

    def local(text: str) -> str:
        """Digits in the ticket's language."""
        return local_digits(text, lang)

    return TicketSlip(
        lang=lang,
        centre=t["centre"],
        number=number,
        number_local=local(number),
        service=t["service"],
        issued_at_text=local(t["issued"].format(time=time)),
        ahead_text=local(t["ahead"].format(n=ahead)),
        wait_text=local(t["wait"].format(minutes=minutes)),
        counter_text=local(t["counter"].format(counter=counter)),
        fee_text=t["fee"],
        qr=qr or f"https://kiosk.example.invalid/t/{number}?at=20261122T0941",
        footer=t["footer"],
    )


def trilingual_document(number: str = "A-042", qr: str | None = None) -> Document:
    """A ticket-sized document with every line in all three languages (benchmarks, test pages)."""
    slips = [sample_slip(lang, number=number) for lang in ("ar", "ckb", "en")]
    blocks: list = [Line(s.centre, s.lang, bold=True, align="center") for s in slips]
    blocks += [Rule(), Line(number, "en", "huge", bold=True, align="center")]
    for field in ("service", "ahead_text", "fee_text"):
        blocks += [Line(getattr(s, field), s.lang, bold=field == "service") for s in slips]
    blocks.append(QrCode(qr or slips[0].qr))
    blocks += [Line(s.footer, s.lang, "small", align="center") for s in slips]
    return Document(tuple(blocks), title=f"ticket {number}")
