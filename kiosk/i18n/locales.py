"""Facts about the centre's three languages that every part shares: the Babel locale of each,
its direction, its name and its digits.

The screens, the printed tickets and receipts, and central all read them here; nothing in this
module needs a request, an app or the store.
"""
from __future__ import annotations

import datetime as dt
import functools

from babel import Locale
from babel.dates import format_date as babel_format_date
from babel.numbers import format_decimal
from markupsafe import Markup

# `ar` is Babel's `ar_IQ`: plain `ar` gives Egyptian month names. English is British English's
# formats: day before month, as dates are read in Iraq (12/4 is the 12th of April), 24-hour times.
LOCALES = {"ar": "ar_IQ", "ckb": "ckb", "en": "en_GB"}
HTML_LANGS = {"ar": "ar-IQ", "ckb": "ckb", "en": "en"}
# Dates with the month in words, in the language's own order and punctuation. CLDR's medium and
# full Sorani patterns put the year first and use a Latin comma, so each language has its own.
DATE_PATTERNS = {
    "ar": {"date": "d MMMM y", "day": "EEEE، d MMMM y"},
    "ckb": {"date": "d'ی' MMMM'ی' y", "day": "EEEE، d'ی' MMMM'ی' y"},
    "en": {"date": "d MMMM y", "day": "EEEE d MMMM y"},
}
TIME_PATTERN = "HH:mm"
LIST_COMMA = {"ar": "، ", "ckb": "، ", "en": ", "}
LANGUAGE_NAMES = {"ar": "العربية", "ckb": "کوردی", "en": "English"}
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


@functools.lru_cache(maxsize=None)
def locale_info(lang: str) -> dict:
    """`lang` attribute value, direction, numbering and name of one of our languages."""
    loc = Locale.parse(LOCALES[lang])
    return {"code": lang, "html_lang": HTML_LANGS[lang], "dir": loc.text_direction,
            "native_digits": loc.default_numbering_system == "arab", "name": LANGUAGE_NAMES[lang]}


def arabic_indic(value):
    """`value` as text with Arabic-Indic digits; Markup stays Markup."""
    if isinstance(value, Markup):
        return Markup(str(value).translate(ARABIC_INDIC))
    return str(value).translate(ARABIC_INDIC)


def digits(value, lang: str):
    """Digits in the numbering system of `lang` (Arabic-Indic for ar_IQ and ckb); Babel never converts them."""
    return arabic_indic(value) if locale_info(lang)["native_digits"] else value


def _local(moment: dt.datetime | dt.date, tz) -> dt.datetime | dt.date:
    """A UTC time in the centre's time zone (a date stays a date)."""
    if isinstance(moment, dt.datetime):
        return moment.astimezone(tz) if tz is not None else moment
    return moment


def format_date(moment: dt.datetime | dt.date, lang: str, tz=None, *, weekday: bool = False) -> str:
    """A date with the month in words ("4 December 2026", "٤ كانون الأول ٢٠٢٦"), with the weekday
    when asked; the centre's local date of a time, in the language's digits; never a time."""
    local = _local(moment, tz)
    pattern = DATE_PATTERNS[lang]["day" if weekday else "date"]
    day = local.date() if isinstance(local, dt.datetime) else local
    return digits(babel_format_date(day, pattern, locale=LOCALES[lang]), lang)


def format_datetime(moment: dt.datetime, lang: str, tz=None, *, weekday: bool = False) -> str:
    """A date and a 24-hour time, joined with the language's comma ("4 December 2026, 09:05")."""
    local = _local(moment, tz)
    return format_date(local, lang, weekday=weekday) + LIST_COMMA[lang] + digits(local.strftime("%H:%M"), lang)


def format_number(value: int, lang: str) -> str:
    """A whole number with the language's grouping ("12,345", "١٢٬٣٤٥")."""
    return digits(format_decimal(value, locale=LOCALES[lang], numbering_system="default"), lang)


def isolate(text: str) -> str:
    """Left-to-right text (a web address, a code) kept in one piece and in place inside a
    right-to-left sentence: Unicode's left-to-right isolate around it."""
    return "\u2066" + text + "\u2069"
