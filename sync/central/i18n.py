"""Central's languages: operator pages, reports, error pages and the public /R page in Arabic,
Sorani and English through Flask-Babel and the kiosk's catalogues (one set of messages for the
whole system, extracted by `python -m kiosk.i18n.catalogues update`).

Decisions:
- The language of a request is `?lang=` when given, else the operator's remembered choice (a
  cookie, set only on operator pages: the public page sets no cookie), else the browser's
  Accept-Language among ar, ckb and en (`ku` counts as Sorani), else CENTRAL_DEFAULT_LANGUAGE
  (Arabic unless configured).
- Locale facts (Babel locale, direction, digits, date patterns) come from kiosk.i18n.locales, so
  central writes dates and numbers exactly as the kiosks do: Arabic-Indic digits for Arabic and
  Sorani, British day-month order for English, due dates without a time of day.
- Every centre is in Iraq or the Kurdistan Region: central shows times in one zone, TIMEZONE.
"""
from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from babel.dates import format_date as babel_format_date
from babel.dates import get_month_names
from babel.numbers import format_decimal, get_group_symbol
from flask import Flask, current_app, g, request
from flask_babel import Babel, gettext, lazy_gettext, ngettext
from markupsafe import Markup

from kiosk.i18n import catalogues, locales
from kiosk.i18n.locales import LOCALES, locale_info

LANGS = ("ar", "ckb", "en")
COOKIE = "lang"
COOKIE_MAX_AGE_S = 365 * 86400
TIMEZONE = ZoneInfo("Asia/Baghdad")
# Blueprints of the operators' pages: the only ones that remember a language in a cookie.
OPERATOR_BLUEPRINTS = frozenset({"central", "receipts_ops", "central_config", "dashboard", "queue_report"})
# Month and year as a report's title: Sorani joins month and year with the ezafe, as its dates do.
MONTH_PATTERNS = {"ar": "MMMM y", "ckb": "MMMM'ی' y", "en": "MMMM y"}
# Tags browsers send for our languages; `ku` (Kurdish, unspecified) is read as Sorani, the
# Kurdistan Region's written standard.
ACCEPTED = {"ar": "ar", "ckb": "ckb", "ku": "ckb", "en": "en"}

STATUS_TEXTS = {
    "open": lazy_gettext("In progress"),
    "completed": lazy_gettext("Completed"),
    "rejected": lazy_gettext("Rejected"),
    "referred": lazy_gettext("Referred"),
}
KIND_TEXTS = {
    "request": lazy_gettext("Request"),
    "inquiry": lazy_gettext("Inquiry"),
    "referral": lazy_gettext("Referral"),
}
SECTOR_TEXTS = {
    "housing": lazy_gettext("Housing"),
    "vocational_training": lazy_gettext("Vocational training"),
    "education": lazy_gettext("Education"),
    "legal_aid": lazy_gettext("Legal aid"),
    "health": lazy_gettext("Health"),
    "psychosocial": lazy_gettext("Psychosocial support"),
    "livelihoods": lazy_gettext("Livelihoods"),
    "other": lazy_gettext("Other"),
}
DEVICE_STATUS_TEXTS = {"active": lazy_gettext("Active"), "revoked": lazy_gettext("Revoked")}
# What an error page says for each status; the JSON API keeps its own English messages.
ERROR_TEXTS = {
    400: lazy_gettext("The request could not be understood."),
    401: lazy_gettext("Please sign in with an operator account."),
    403: lazy_gettext("You are not allowed to do this."),
    404: lazy_gettext("This page or item does not exist."),
    405: lazy_gettext("This action is not possible here."),
    413: lazy_gettext("The request is too large."),
    415: lazy_gettext("The request has an unsupported format."),
    429: lazy_gettext("Too many requests. Please wait a moment."),
    500: lazy_gettext("Something went wrong. Nothing was changed. Please try again."),
}


def _choose() -> str:
    """The request's language by the rules in the module's docstring."""
    chosen = request.args.get("lang")
    if chosen in LANGS:
        return chosen
    remembered = request.cookies.get(COOKIE)
    if remembered in LANGS:
        return remembered
    # the browser's languages in its order of preference, each by its primary subtag ("ar-IQ" is
    # Arabic): the first of ours wins, even when a less preferred one matches exactly
    for tag, _quality in request.accept_languages:
        primary = tag.lower().replace("_", "-").split("-", 1)[0]
        if primary in ACCEPTED:
            return ACCEPTED[primary]
    return current_app.config["CENTRAL_DEFAULT_LANGUAGE"]


def current_lang() -> str:
    """The language of this request (chosen once per request)."""
    if "central_lang" not in g:
        g.central_lang = _choose()
    return g.central_lang


def select_locale() -> str:
    """Flask-Babel's locale selector."""
    return LOCALES[current_lang()]


def remember_choice(response):
    """On operator pages, keep a `?lang=` choice for the next visits (the public page never sets one)."""
    chosen = request.args.get("lang")
    if chosen in LANGS and request.blueprint in OPERATOR_BLUEPRINTS:
        response.set_cookie(COOKIE, chosen, max_age=COOKIE_MAX_AGE_S, samesite="Lax", httponly=True,
                            secure=request.is_secure)
    if response.mimetype == "text/html":  # a page's language depends on both
        response.vary.update(("Cookie", "Accept-Language"))
    return response


# -- formatting ------------------------------------------------------------------------------------

def digits(value, lang: str | None = None):
    """Digits in the numbering of `lang` (the page's language by default), as text; Markup stays Markup."""
    return locales.digits(value if isinstance(value, str) else str(value), lang or current_lang())


def number(value) -> str:
    """A whole number with the page language's grouping and digits."""
    return locales.format_number(int(value or 0), current_lang())


def percent(value) -> str:
    """A whole percentage ("50%", "٥٠٪")."""
    lang = current_lang()
    return digits(int(value or 0), lang) + ("٪" if locale_info(lang)["native_digits"] else "%")


def seconds(value) -> str:
    """A signed number of seconds with one decimal (a clock offset: "+1.5 s", "+١٫٥ ث")."""
    text = format_decimal(float(value), format="+#,##0.0;-#,##0.0", locale=LOCALES[current_lang()],
                          numbering_system="default")
    return digits(gettext("%(offset)s s", offset=text))


def _moment(value) -> dt.datetime | None:
    """An aware datetime from a datetime or an ISO text (None when absent or unreadable)."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    try:
        moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def minutes(seconds) -> str:
    """A duration as whole minutes in words ("12 minutes"), rounded up."""
    n = max(0, math.ceil((seconds or 0) / 60))
    return digits(ngettext("%(num)d minute", "%(num)d minutes", n))


def when(value) -> str:
    """A time as the local date and 24-hour time in Iraq, in the page's language."""
    moment = _moment(value) if value else None
    if moment is None:
        return "–"
    return locales.format_datetime(moment, current_lang(), TIMEZONE)


def day(value) -> str:
    """A time as its local date only (a due date has no time of day)."""
    moment = _moment(value) if value else None
    if moment is None:
        return "–"
    return locales.format_date(moment, current_lang(), TIMEZONE)


def month_label(month: str, lang: str | None = None) -> str:
    """A report month ("2026-11") as "November 2026", "تشرين الثاني ٢٠٢٦", "تشرینی دووەمی ٢٠٢٦"."""
    lang = lang or current_lang()
    year, number_ = (int(part) for part in month.split("-"))
    return digits(babel_format_date(dt.date(year, number_, 1), MONTH_PATTERNS[lang], locale=LOCALES[lang]), lang)


def ago(now: dt.datetime, moment: dt.datetime | None) -> str:
    """How long ago a time was, in words of the page's language ("3 minutes ago")."""
    if moment is None:
        return gettext("never")
    elapsed = int((now - moment).total_seconds())
    if elapsed < 0:
        return gettext("in the future")
    if elapsed < 60:
        return gettext("just now")
    if elapsed < 3600:
        n = elapsed // 60
        return digits(ngettext("%(num)d minute ago", "%(num)d minutes ago", n))
    if elapsed < 86400:
        n = elapsed // 3600
        return digits(ngettext("%(num)d hour ago", "%(num)d hours ago", n))
    n = elapsed // 86400
    return digits(ngettext("%(num)d day ago", "%(num)d days ago", n))


def date_script_facts(lang: str) -> dict:
    """What the /R page's script needs to write dates and fees as the server does: the date
    pattern with {d} {M} {y} in place of the day, month and year, the month names, the comma
    between a date and a time, the digit-group separator and the time zone."""
    months = get_month_names("wide", locale=LOCALES[lang])
    sample = babel_format_date(dt.date(2001, 11, 22), locales.DATE_PATTERNS[lang]["date"], locale=LOCALES[lang])
    pattern = sample.replace(months[11], "{M}").replace("2001", "{y}").replace("22", "{d}")
    return {"pattern": pattern, "months": "|".join(months[m] for m in range(1, 13)),
            "comma": locales.LIST_COMMA[lang], "group": get_group_symbol(LOCALES[lang], numbering_system="default"),
            "timezone": TIMEZONE.key, "native_digits": "yes" if locale_info(lang)["native_digits"] else "no"}


def pick(names: dict | None, lang: str | None = None, fallback: str | None = None) -> str | None:
    """A configured name in the page's language, else `fallback` (a centre's one name), else the
    English name, else any."""
    names = names if isinstance(names, dict) else {}
    lang = lang or current_lang()
    return (names.get(lang) or fallback or names.get("en")
            or next((v for v in names.values() if isinstance(v, str) and v), None))


# -- page helpers ----------------------------------------------------------------------------------

def lang_url(code: str) -> str:
    """This page's address in another language (its other query arguments kept)."""
    args = [(k, v) for k, v in request.args.items(multi=True) if k != "lang"] + [("lang", code)]
    return f"{request.script_root}{request.path}?{urlencode(args)}"


def code(value) -> Markup:
    """A code or other left-to-right token (centre code, device label, address) isolated inside
    right-to-left text."""
    return Markup('<bdi dir="ltr" class="code">%s</bdi>') % value


def named(name: str | None, value: str) -> Markup:
    """A name with its code beside it, or the code alone when central knows no name."""
    if not name or name == value:
        return code(value)
    return Markup('<bdi>%s</bdi> %s') % (name, code(value))


def _template_context() -> dict:
    """Values every central template gets."""
    lang = current_lang()
    info = locale_info(lang)
    return {"lang": lang, "html_lang": info["html_lang"], "dir": info["dir"],
            "languages": [locale_info(x) for x in LANGS], "lang_url": lang_url, "list_comma": locales.LIST_COMMA[lang],
            "status_texts": STATUS_TEXTS, "kind_texts": KIND_TEXTS, "sector_texts": SECTOR_TEXTS,
            "device_status_texts": DEVICE_STATUS_TEXTS}


def register(app: Flask) -> None:
    """Install Flask-Babel with central's language choice, the filters and the context."""
    default = app.config["CENTRAL_DEFAULT_LANGUAGE"]
    if default not in LANGS:
        raise ValueError(f"CENTRAL_DEFAULT_LANGUAGE must be one of {', '.join(LANGS)}, got {default!r}")
    catalogues.ensure_compiled()
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(Path(catalogues.I18N_DIR))
    app.config["BABEL_DEFAULT_LOCALE"] = LOCALES[default]
    app.config["BABEL_DEFAULT_TIMEZONE"] = TIMEZONE.key
    Babel(app, locale_selector=select_locale)
    app.after_request(remember_choice)
    app.context_processor(_template_context)
    app.jinja_env.filters.update(digits=digits, number=number, percent=percent, seconds=seconds, when=when,
                                 day=day, month_label=month_label, code=code, minutes=minutes)
    app.jinja_env.globals.update(named=named, pick=pick)
