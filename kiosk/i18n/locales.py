"""Facts about the centre's three languages that every part shares: the Babel locale of each,
its direction, its name and its digits.

The screens, the printed tickets and receipts, and central all read them here; nothing in this
module needs a request, an app or the store.
"""
from __future__ import annotations

import functools

from babel import Locale
from markupsafe import Markup

# `ar` is Babel's `ar_IQ`: plain `ar` gives Egyptian month names.
LOCALES = {"ar": "ar_IQ", "ckb": "ckb", "en": "en"}
LANGUAGE_NAMES = {"ar": "العربية", "ckb": "کوردی", "en": "English"}
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


@functools.lru_cache(maxsize=None)
def locale_info(lang: str) -> dict:
    """`lang` attribute value, direction, numbering and name of one of our languages."""
    loc = Locale.parse(LOCALES[lang])
    return {"code": lang, "html_lang": str(loc).replace("_", "-"), "dir": loc.text_direction,
            "native_digits": loc.default_numbering_system == "arab", "name": LANGUAGE_NAMES[lang]}


def arabic_indic(value):
    """`value` as text with Arabic-Indic digits; Markup stays Markup."""
    if isinstance(value, Markup):
        return Markup(str(value).translate(ARABIC_INDIC))
    return str(value).translate(ARABIC_INDIC)


def digits(value, lang: str):
    """Digits in the numbering system of `lang` (Arabic-Indic for ar_IQ and ckb); Babel never converts them."""
    return arabic_indic(value) if locale_info(lang)["native_digits"] else value
