"""Languages: every message translated into Arabic and Sorani (this is the test that fails when
someone adds a `_()` string without translating it), the Arabic plural rule, compiled catalogues,
locales, digits, and no English left on the Arabic and Sorani screens."""
from __future__ import annotations

import html as htmllib
import re
from html.parser import HTMLParser

import pytest
from flask_babel import force_locale, ngettext

from kiosk import services
from kiosk.i18n import catalogues
from kiosk.web.screens import ERROR_TEXTS, digits, error_text, locale_info
from tests.web.conftest import Staff, csrf_from


@pytest.mark.parametrize("lang", ["ar", "ckb"])
def test_every_message_is_translated(lang):
    """Extracts kiosk/ and templates/ afresh: any msgid without a translation fails here.
    Fix with `python -m kiosk.i18n.catalogues update`, then translate (docs/translations.md)."""
    missing = catalogues.missing(lang)
    assert missing == [], f"{len(missing)} message(s) have no {lang} translation: {missing}"


@pytest.mark.parametrize("lang", ["ar", "ckb", "en"])
def test_compiled_catalogues_match_their_sources(lang):
    """The .mo the app loads is exactly what the .po compiles to (start-up keeps them in step)."""
    assert catalogues.mo_path(lang).read_bytes() == catalogues.compile_bytes(lang)


def test_start_up_recompiles_a_stale_catalogue(tmp_path, monkeypatch):
    """A .po edited without compiling is compiled when the app starts: no manual step."""
    import shutil
    copy = tmp_path / "i18n"
    shutil.copytree(catalogues.I18N_DIR, copy, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    monkeypatch.setattr(catalogues, "I18N_DIR", copy)
    catalogues.mo_path("ckb").write_bytes(b"stale")
    assert catalogues.ensure_compiled() == ["ckb"]
    assert catalogues.mo_path("ckb").read_bytes() == catalogues.compile_bytes("ckb")
    assert catalogues.ensure_compiled() == []


def test_arabic_plural_header_is_the_cldr_rule():
    """Babel 2.18 writes a header that swaps 'many' and 'other'; ours has the correct rule."""
    catalog = catalogues.read("ar")
    assert catalog.num_plurals == 6
    assert "n%100>=11 ? 4 : 5" in catalog.plural_expr
    po_text = catalogues.po_path("ar").read_text(encoding="utf-8")
    assert catalogues.AR_PLURAL in po_text
    broken = po_text.replace(catalogues.AR_PLURAL, "nplurals=6; plural=(n==0 ? 0 : n==1 ? 1 : n==2 ? 2 : "
                             "n%100>=3 && n%100<=10 ? 3 : n%100>=0 && n%100<=2 ? 4 : 5);")
    assert catalogues.AR_PLURAL in catalogues.fix_plural_header("ar", broken)


@pytest.mark.parametrize("n,expected", [
    (0, "لا أحد قبلك"),
    (1, "شخص واحد قبلك"),
    (2, "شخصان قبلك"),
    (3, "٣ أشخاص قبلك"),
    (11, "١١ شخصًا قبلك"),
    (100, "١٠٠ شخص قبلك"),
    (101, "١٠١ شخص قبلك"),
])
def test_arabic_plural_forms(app, n, expected):
    """zero, one, two, few (3-10), many (11-99), other (100+, 101...) each get their own sentence."""
    with app.test_request_context(), force_locale("ar_IQ"):
        text = ngettext("%(num)d person ahead of you", "%(num)d people ahead of you", n)
        assert digits(text) == expected


@pytest.mark.parametrize("n,expected", [(1, "١ کەس لە پێشتەوەیە"), (5, "٥ کەس لە پێشتەوەن")])
def test_sorani_plural_forms(app, n, expected):
    """Sorani has one and other."""
    with app.test_request_context(), force_locale("ckb"):
        assert digits(ngettext("%(num)d person ahead of you", "%(num)d people ahead of you", n)) == expected


def test_locales():
    """ar means the Iraqi Arabic locale; ar and ckb are right-to-left with Arabic-Indic digits."""
    assert locale_info("ar")["html_lang"] == "ar-IQ" and locale_info("ar")["dir"] == "rtl"
    assert locale_info("ckb")["html_lang"] == "ckb" and locale_info("ckb")["native_digits"]
    assert locale_info("en")["dir"] == "ltr" and not locale_info("en")["native_digits"]


def test_digits_filter(app):
    """Babel never converts digits; the filter does, and keeps markup safe."""
    from markupsafe import Markup
    with app.test_request_context():
        assert digits("A-007", "ar") == "A-٠٠٧"
        assert digits("A-007", "ckb") == "A-٠٠٧"
        assert digits("A-007", "en") == "A-007"
        assert isinstance(digits(Markup("<b>12</b>"), "ar"), Markup)
        assert digits(Markup("<b>12</b>"), "ar") == Markup("<b>١٢</b>")


def test_error_messages_are_translated_by_code(app):
    """Every error code a citizen can meet has a message in each language."""
    for code in ERROR_TEXTS:
        for locale in ("ar_IQ", "ckb"):
            with app.test_request_context(), force_locale(locale):
                text = error_text(code)
                assert text and not re.search(r"[A-Za-z]{3}", text), (code, locale, text)


class VisibleText(HTMLParser):
    """Collects the text a reader sees, skipping what is meant to be Latin: left-to-right
    isolates (ticket numbers, codes, names), parts marked lang="en", scripts and hidden parts."""

    SKIP = {"script", "style", "title", "svg"}

    def __init__(self):
        """Empty."""
        super().__init__()
        self.stack: list[bool] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        """Track whether we are inside something to skip."""
        attrs = dict(attrs)
        skip = (tag in self.SKIP or tag == "bdi" or attrs.get("lang", "").startswith("en")
                or attrs.get("dir") == "ltr" or "hidden" in attrs or "visually-hidden" in (attrs.get("class") or ""))
        if tag in ("input", "img", "meta", "link", "br", "hr"):
            return
        self.stack.append(skip or (bool(self.stack) and self.stack[-1]))

    def handle_endtag(self, tag):
        """Leave an element."""
        if tag not in ("input", "img", "meta", "link", "br", "hr") and self.stack:
            self.stack.pop()

    def handle_data(self, data):
        """Keep visible text."""
        if not (self.stack and self.stack[-1]):
            self.text.append(data)


def latin_words(page: str) -> list[str]:
    """Latin words a reader of the page would see."""
    parser = VisibleText()
    parser.feed(page)
    return re.findall(r"[A-Za-z]{2,}", htmllib.unescape(" ".join(parser.text)))


@pytest.mark.parametrize("lang", ["ar", "ckb"])
def test_no_english_on_arabic_and_sorani_screens(app, client, centre, lang):
    """Every screen in Arabic and Sorani: no Latin words outside numbers and isolated codes."""
    services.issue_ticket(centre, service="A", priority="elderly", lang="en")
    pages = {}
    token = csrf_from(client.get("/kiosk").get_data(as_text=True))
    client.post("/kiosk/lang", data={"lang": lang, "csrf_token": token})
    token = csrf_from(client.get("/kiosk/services").get_data(as_text=True))
    pages["services"] = client.get("/kiosk/services").get_data(as_text=True)
    pages["service"] = client.get("/kiosk/services/A").get_data(as_text=True)
    pages["ticket"] = client.post("/kiosk/tickets", data={"service": "A", "csrf_token": token}).get_data(as_text=True)
    pages["error"] = client.get("/kiosk/services/ZZ").get_data(as_text=True)
    staff = Staff(app.test_client(), "super", "9999")
    staff.post("/lang", {"lang": lang, "next": "/"})
    pages["login"] = app.test_client().get("/staff/login").get_data(as_text=True) if lang == "ar" else ""
    pages["choose"] = staff.get("/counter").get_data(as_text=True)
    staff.post("/counter/open", {"counter": "1"})
    staff.post("/counter/1/call-next")
    pages["console"] = staff.get("/counter/1").get_data(as_text=True)
    pages["admin"] = staff.get("/admin").get_data(as_text=True)
    pages["home"] = staff.get("/").get_data(as_text=True)
    mine = services.issue_ticket(centre, service="B", priority="disability", lang=lang)
    pages["phone"] = app.test_client().get(f"/t/{mine['id']}").get_data(as_text=True)
    services.call_ticket(centre, mine["id"], counter="2", by="demo")
    pages["phone-called"] = app.test_client().get(f"/t/{mine['id']}").get_data(as_text=True)
    services.update_service(centre, "C", by="super", daily_cap=1)
    services.issue_ticket(centre, service="C", lang=lang)
    pages["services-unavailable"] = client.get("/kiosk/services").get_data(as_text=True)
    for name, page in pages.items():
        assert latin_words(page) == [], f"English on the {lang} {name} screen"


def test_display_labels_in_every_language(client, centre):
    """The hall display is read by everybody: its labels come in all configured languages."""
    page = client.get("/display").get_data(as_text=True)
    for text in ("يُخدم الآن", "ئێستا خزمەت دەکرێت", "Now serving"):
        assert text in page


def test_the_english_check_sees_english():
    """The check above is not blind: English text on an Arabic page is found; numbers, isolated
    codes and parts marked as English are not."""
    page = ('<html lang="ar-IQ" dir="rtl"><body><h1>مرحبا</h1><p>Please wait</p>'
            '<bdi dir="ltr">A-001</bdi><span lang="en" dir="ltr">printer offline</span>'
            '<p hidden>Hidden</p><script src="/x.js"></script></body></html>')
    assert latin_words(page) == ["Please", "wait"]
