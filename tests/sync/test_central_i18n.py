"""Central in three languages (SQLite and PostgreSQL): every operator page and error page in Arabic,
Sorani and English with the right `<html lang dir>`, a translated heading and no English left on
the Arabic and Sorani pages; the language chosen by ?lang=, the operator's cookie, Accept-Language
or the setting; dates and numbers written per locale; centres named in each language."""
from __future__ import annotations

import base64
import datetime as dt
import re

import pytest

from kiosk.domain import throttle
from sync.central import i18n
from tests.sync.support import commit, put, ticket_doc
from tests.web.test_i18n import latin_words

PASSWORD = "correct horse battery"
NAMES = {"ar": "مركز أربيل للخدمات العامة", "ckb": "ناوەندی خزمەتگوزارییە گشتییەکانی هەولێر"}
HTML = {"ar": ("ar-IQ", "rtl"), "ckb": ("ckb", "rtl"), "en": ("en", "ltr")}
HEADINGS = {
    "/": {"ar": "المراكز والأجهزة", "ckb": "ناوەند و ئامێرەکان", "en": "Centres and devices"},
    "/centres/ERB-01": {"ar": NAMES["ar"] + " ERB-01", "ckb": NAMES["ckb"] + " ERB-01",
                        "en": "Erbil public service centre ERB-01"},
    "/operators/locks": {"ar": "تسجيلات الدخول المقفلة بعد كلمات مرور خاطئة",
                         "ckb": "چوونەژوورەوەی قفڵکراو دوای وشەی نهێنیی هەڵە",
                         "en": "Sign-ins locked after wrong passwords"},
    "/receipts/overdue": {"ar": "الطلبات المتأخرة", "ckb": "داواکارییە دواکەوتووەکان", "en": "Overdue requests"},
}


def _auth(name: str = "ana", password: str = PASSWORD) -> dict:
    """Basic authentication header."""
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


def _h1(html: str) -> str:
    """The page's first heading as text."""
    inner = re.search(r"<h1[^>]*>(.*?)</h1>", html, re.S).group(1)
    return " ".join(re.sub(r"<[^>]+>", " ", inner).split())


def _html_tag(html: str) -> tuple[str, str]:
    """(lang, dir) of the page's <html> element."""
    found = re.search(r'<html lang="([^"]+)" dir="([^"]+)">', html)
    return found.group(1), found.group(2)


@pytest.fixture
def operator(central_app, ops, device):
    """Centre ERB-01 named in three languages with an enrolled device that pushed a ticket and a
    change central refused, an operator account, and one address locked after wrong passwords."""
    ops.cli("centre-names", "ERB-01", "--ar", NAMES["ar"], "--ckb", NAMES["ckb"])
    ops.cli("add-operator", "ana", "--password-stdin", input=PASSWORD + "\n")
    refused = put("services", {"id": "A", "code": "A"})  # central owns services: quarantined
    device.push([commit(1, put("tickets", ticket_doc())), commit(2, refused)], head_seq=7)
    client = central_app.test_client()
    for n in range(throttle.ADDRESS.free):
        client.get("/", headers=_auth(f"guess{n}", "wrong password!"), environ_base={"REMOTE_ADDR": "10.9.0.1"})
    return client


@pytest.mark.parametrize("lang", ["ar", "ckb", "en"])
def test_operator_pages_in_each_language(operator, lang):
    """lang and dir, a translated heading, local digits; no English words on ar and ckb pages
    (codes, device labels and the quarantine's technical reason are isolated as left-to-right)."""
    for path, headings in HEADINGS.items():
        response = operator.get(f"{path}?lang={lang}", headers=_auth())
        html = response.get_data(as_text=True)
        assert response.status_code == 200, path
        assert _html_tag(html) == HTML[lang], path
        assert _h1(html) == headings[lang], path
        assert 'aria-current="true">' + {"ar": "العربية", "ckb": "کوردی", "en": "English"}[lang] in html
        if lang != "en":
            assert latin_words(html) == [], (path, latin_words(html))
    devices = operator.get(f"/?lang={lang}", headers=_auth()).get_data(as_text=True)
    lag = {"ar": "٥", "ckb": "٥", "en": "5"}[lang]  # 7 recorded, 2 acknowledged
    assert f'<td class="num">{lag}</td>' in devices
    offset = {"ar": "+٠٫٠ ث", "ckb": "+٠٫٠ چرکە", "en": "+0.0 s"}[lang]
    assert offset in devices
    assert {"ar": "الآن", "ckb": "ئێستا", "en": "just now"}[lang] in devices
    centre = operator.get(f"/centres/ERB-01?lang={lang}", headers=_auth()).get_data(as_text=True)
    assert "services is maintained by central" in centre  # the technical reason, marked as English
    assert {"ar": "٢٢ تشرين الثاني ٢٠٢٦، ١٢:٠٠", "ckb": "٢٢ی تشرینی دووەمی ٢٠٢٦، ١٢:٠٠",
            "en": "22 November 2026, 12:00"}[lang] in centre  # 09:00 UTC is noon in Baghdad
    locks = operator.get(f"/operators/locks?lang={lang}", headers=_auth()).get_data(as_text=True)
    assert 'data-lock="address:10.9.0.1"' in locks
    assert {"ar": "عنوان شبكة", "ckb": "ناونیشانی تۆڕ", "en": "address"}[lang] in locks


def test_language_choice_cookie_accept_language_and_setting(central_app, operator):
    """?lang= wins and is remembered for operators (SameSite=Lax, HttpOnly); else the cookie, else
    Accept-Language among the three (`ku` is Sorani), else the configured default (Arabic)."""
    chosen = operator.get("/?lang=ckb", headers=_auth())
    cookie = chosen.headers["Set-Cookie"]
    assert cookie.startswith("lang=ckb;") and "SameSite=Lax" in cookie and "HttpOnly" in cookie
    assert _html_tag(operator.get("/", headers={**_auth(), "Accept-Language": "en"}).get_data(as_text=True)) \
        == HTML["ckb"]  # the remembered choice beats the browser's
    fresh = central_app.test_client()
    for header, lang in (("en-GB,en;q=0.9", "en"), ("ckb-IQ", "ckb"), ("ku", "ckb"), ("ar-IQ,en;q=0.5", "ar"),
                         ("fr-FR,de;q=0.5", "ar"), ("", "ar")):
        page = fresh.get("/", headers={**_auth(), "Accept-Language": header})
        assert _html_tag(page.get_data(as_text=True)) == HTML[lang], header
        assert "Set-Cookie" not in page.headers and "Accept-Language" in page.headers["Vary"]
    central_app.config["CENTRAL_DEFAULT_LANGUAGE"] = "en"
    assert _html_tag(fresh.get("/", headers=_auth()).get_data(as_text=True)) == HTML["en"]
    public = fresh.get("/R?lang=ckb")
    assert _html_tag(public.get_data(as_text=True)) == HTML["ckb"] and "Set-Cookie" not in public.headers


def test_a_wrong_default_language_stops_start_up(central_app):
    """CENTRAL_DEFAULT_LANGUAGE must be one of the three."""
    from sync.central import create_app
    with pytest.raises(ValueError, match="CENTRAL_DEFAULT_LANGUAGE"):
        create_app({"CENTRAL_DATABASE_URL": central_app.config["CENTRAL_DATABASE_URL"],
                    "CENTRAL_DEFAULT_LANGUAGE": "fr"}, engine=central_app.extensions["central"].engine)


@pytest.mark.parametrize("lang", ["ar", "ckb", "en"])
def test_error_pages_in_each_language(central_app, operator, lang):
    """401, 404, 400 with what was wrong, 404 of an unknown centre, 429 with the wait: in the
    reader's language; the sync API answers JSON in English whatever the language."""
    pages = {
        401: central_app.test_client().get(f"/?lang={lang}"),
        404: operator.get(f"/no-such-page?lang={lang}", headers=_auth()),
        400: operator.get(f"/receipts/report?month=2026-13&lang={lang}", headers=_auth()),
        429: central_app.test_client().get(f"/?lang={lang}", headers=_auth("guess0", "wrong password!"),
                                           environ_base={"REMOTE_ADDR": "10.9.0.1"}),
    }
    unknown = operator.get(f"/receipts/report?month=2026-11&centre=NOPE&lang={lang}", headers=_auth())
    expected = {
        401: {"ar": "للمشغّلين فقط", "ckb": "تەنها بۆ کارگێڕان", "en": "Operators only"},
        404: {"ar": "هذه الصفحة أو هذا العنصر غير موجود.", "ckb": "ئەم پەڕەیە یان ئەم بابەتە بوونی نییە.",
              "en": "This page or item does not exist."},
        400: {"ar": "تعذّر فهم الطلب.", "ckb": "داواکارییەکە تێنەگەیشترا.", "en": "The request could not be understood."},
        429: {"ar": "طلبات كثيرة جدًا. يرجى الانتظار قليلًا.", "ckb": "داواکاریی زۆر. تکایە کەمێک چاوەڕێ بکە.",
              "en": "Too many requests. Please wait a moment."},
    }
    for status, response in pages.items():
        html = response.get_data(as_text=True)
        assert response.status_code == status
        assert _html_tag(html) == HTML[lang] and _h1(html) == expected[status][lang], status
        if lang != "en":
            assert latin_words(html) == [], (status, latin_words(html))
    assert {"ar": "اختر شهراً بالشكل ٢٠٢٦-١١.", "ckb": "مانگێک هەڵبژێرە بە شێوەی ٢٠٢٦-١١.",
            "en": "Choose a month like 2026-11."}[lang] in pages[400].get_data(as_text=True)
    assert int(pages[429].headers["Retry-After"]) > 0
    assert unknown.status_code == 404 and "NOPE" in unknown.get_data(as_text=True)
    api = central_app.test_client().get(f"/api/sync/v1/nope?lang={lang}", headers={"Accept-Language": lang})
    assert api.status_code == 404 and api.mimetype == "application/json"
    assert api.get_json()["error"]["code"] == "not_found" and api.get_json()["error"]["message"].isascii()


def test_centre_names_command(ops, central_app):
    """add-centre takes names per language, centre-names changes and prints them; bad input refused."""
    runner = central_app.test_cli_runner()
    ops.cli("add-centre", "SUL-02", "Sulaymaniyah centre", "--ckb", "ناوەندی سلێمانی")
    shown = ops.cli("centre-names", "SUL-02")
    assert "SUL-02\tSulaymaniyah centre" in shown and "ckb\tناوەندی سلێمانی" in shown
    assert "ar\t(the name above)" in shown
    ops.cli("centre-names", "SUL-02", "--ar", "مركز السليمانية", "--name", "Sulaimani centre")
    shown = ops.cli("centre-names", "SUL-02")
    assert "SUL-02\tSulaimani centre" in shown and "ar\tمركز السليمانية" in shown and "ckb\tناوەندی سلێمانی" in shown
    for args, message in ((["centre-names", "NOPE", "--ar", "x"], "no centre"),
                          (["centre-names", "SUL-02", "--ar", " "], "1 to 200"),
                          (["add-centre", "KRK-01", "Kirkuk", "--en", "x" * 201], "1 to 200")):
        result = runner.invoke(args=args)
        assert result.exit_code != 0 and message in result.output, (args, result.output)
    with central_app.test_request_context("/?lang=en"):
        from sync.central.names import directory
        with central_app.extensions["central"].engine.connect() as conn:
            names = directory(conn)
        assert names.centre("SUL-02", "ar") == "مركز السليمانية"
        assert names.centre("SUL-02", "en") == "Sulaimani centre"  # no English name: the one name
        assert names.centre("NOPE", "en") is None


@pytest.mark.parametrize("lang,expected", [
    ("ar", {"month": "تشرين الثاني ٢٠٢٦", "day": "٤ كانون الأول ٢٠٢٦", "when": "٤ كانون الأول ٢٠٢٦، ٠٠:٣٠",
            "number": "١٢٬٣٤٥", "percent": "٥٠٪", "seconds": "-١٫٥ ث"}),
    ("ckb", {"month": "تشرینی دووەمی ٢٠٢٦", "day": "٤ی کانونی یەکەمی ٢٠٢٦", "when": "٤ی کانونی یەکەمی ٢٠٢٦، ٠٠:٣٠",
             "number": "١٢٬٣٤٥", "percent": "٥٠٪", "seconds": "-١٫٥ چرکە"}),
    ("en", {"month": "November 2026", "day": "4 December 2026", "when": "4 December 2026, 00:30",
            "number": "12,345", "percent": "50%", "seconds": "-1.5 s"}),
])
def test_dates_and_numbers_per_locale(central_app, lang, expected):
    """Day before month, Arabic-Indic digits for ar and ckb, 24-hour times in Baghdad, due dates
    without a time of day."""
    moment = dt.datetime(2026, 12, 3, 21, 30, tzinfo=dt.timezone.utc)  # 4 December, 00:30 in Baghdad
    with central_app.test_request_context(f"/?lang={lang}"):
        assert i18n.month_label("2026-11") == expected["month"]
        assert i18n.day("2026-12-03T21:30:00Z") == expected["day"]
        assert i18n.when(moment) == expected["when"]
        assert i18n.number(12345) == expected["number"]
        assert i18n.percent(50) == expected["percent"]
        assert i18n.seconds(-1.5) == expected["seconds"]
        assert i18n.day(None) == i18n.when("not a time") == "–"


@pytest.mark.parametrize("seconds,expected", [
    (30, "الآن"), (60, "قبل دقيقة واحدة"), (120, "قبل دقيقتين"), (180, "قبل ٣ دقائق"), (660, "قبل ١١ دقيقة"),
    (2 * 3600, "قبل ساعتين"), (5 * 86400, "قبل ٥ أيام"), (11 * 86400, "قبل ١١ يومًا"), (101 * 86400, "قبل ١٠١ يوم"),
    (-5, "في المستقبل"),
])
def test_arabic_ages_use_every_plural_form(central_app, seconds, expected):
    """One, two, few (3-10), many (11-99) and other (100+) each read right."""
    now = dt.datetime(2026, 11, 22, 9, tzinfo=dt.timezone.utc)
    with central_app.test_request_context("/?lang=ar"):
        assert i18n.ago(now, now - dt.timedelta(seconds=seconds)) == expected
        assert i18n.ago(now, None) == "لم يحدث قط"


def test_the_r_page_gets_the_date_pattern_of_its_language(central_app):
    """The /R page's script writes dates from the same patterns the server uses."""
    facts = {lang: i18n.date_script_facts(lang) for lang in i18n.LANGS}
    assert facts["ar"]["pattern"] == facts["en"]["pattern"] == "{d} {M} {y}"
    assert facts["ckb"]["pattern"] == "{d}ی {M}ی {y}"
    assert facts["ar"]["months"].split("|")[10] == "تشرين الثاني" and facts["en"]["months"].split("|")[0] == "January"
    assert facts["ar"]["group"] == "٬" and facts["en"]["group"] == "," and facts["ckb"]["native_digits"] == "yes"
    html = central_app.test_client().get("/R?lang=ckb").get_data(as_text=True)
    assert 'data-date-pattern="{d}ی {M}ی {y}"' in html and 'data-timezone="Asia/Baghdad"' in html


@pytest.mark.parametrize("lang", ["ar", "ckb", "en"])
def test_the_r_page_in_each_language(central_app, lang):
    """/R without a receipt: lang and dir, the heading in the language, no English on ar and ckb
    (the texts its script shows sit translated in a hidden part of the page)."""
    html = central_app.test_client().get(f"/R?lang={lang}").get_data(as_text=True)
    assert _html_tag(html) == HTML[lang]
    assert _h1(html) == {"ar": "جارٍ التحقق من الوصل…", "ckb": "پسوولەکە دەپشکنرێت…", "en": "Checking the receipt…"}[lang]
    assert {"ar": "%(fee)s دينار عراقي", "ckb": "%(fee)s دیناری عێراقی", "en": "%(fee)s IQD"}[lang] in html
    if lang != "en":
        assert latin_words(html) == [], latin_words(html)
