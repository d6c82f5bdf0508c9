"""The public booking pages at central on SQLite and PostgreSQL, in Arabic, Sorani and English: a
booking from the centre list to the code and QR, cancelling, looking a code up, a time taken in
the meantime, the form token and the origin check, and no English on the Arabic and Sorani pages."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from kiosk.domain import appointments as ap
from sync.central.models import Appointment
from tests.sync.test_central_i18n import HTML, _h1, _html_tag
from tests.web.test_i18n import latin_words

NAMES = {"ar": "مركز أربيل للخدمات العامة", "ckb": "ناوەندی خزمەتگوزارییە گشتییەکانی هەولێر"}
WORDS = {
    "start": {"ar": "احجز موعدًا في مركز للخدمات العامة", "ckb": "لە ناوەندێکی خزمەتگوزارییە گشتییەکان کاتی چاوپێکەوتن بگرە",
              "en": "Book an appointment at a public service centre"},
    "booked": {"ar": "تم حجز موعدك.", "ckb": "چاوپێکەوتنەکەت گیرا.", "en": "Your appointment is booked."},
    "cancelled": {"ar": "تم إلغاء موعدك.", "ckb": "چاوپێکەوتنەکەت هەڵوەشێنرایەوە.", "en": "Your appointment is cancelled."},
    "taken": {"ar": "عذرًا، حُجز هذا الوقت للتو.", "ckb": "ببورە، ئەم کاتە ئێستا گیرا.", "en": "Sorry, this time was just taken."},
    "unknown": {"ar": "لا يوجد حجز بهذا الرمز.", "ckb": "هیچ کات گرتنێک بەم کۆدە نییە.", "en": "No booking has this code."},
    "service": {"ar": "وثائق الأحوال المدنية", "ckb": "بەڵگەنامەکانی باری شارستانی", "en": "Civil status documents"},
    "time": {"ar": "١٣:١٥", "ckb": "١٣:١٥", "en": "13:15"},
}
TOKEN = re.compile(r'name="token" value="([^"]+)"')


@pytest.fixture
def site(bookable, ops):
    """The booking site with ERB-01 named in three languages."""
    ops.cli("centre-names", "ERB-01", "--ar", NAMES["ar"], "--ckb", NAMES["ckb"])
    return bookable.test_client()


def token_of(html: str) -> str:
    """The form token of a page."""
    return TOKEN.search(html).group(1)


def no_english(html: str, lang: str) -> None:
    """No Latin words a reader sees on an Arabic or Sorani page (codes are isolated left-to-right)."""
    if lang != "en":
        assert latin_words(html) == [], latin_words(html)


@pytest.mark.parametrize("lang", ["ar", "ckb", "en"])
def test_book_from_the_centre_list_to_the_code_and_qr_then_cancel(site, bookable, lang):
    start = site.get(f"/book?lang={lang}")
    html = start.get_data(as_text=True)
    assert start.status_code == 200 and _html_tag(html) == HTML[lang] and _h1(html) == WORDS["start"][lang]
    assert 'data-centre="ERB-01"' in html and "booking_form=" in start.headers["Set-Cookie"]
    assert "SameSite=Strict" in start.headers["Set-Cookie"] and "HttpOnly" in start.headers["Set-Cookie"]
    no_english(html, lang)
    services = site.get(f"/book/ERB-01?lang={lang}").get_data(as_text=True)
    assert WORDS["service"][lang] in services and 'data-service="B"' in services
    no_english(services, lang)
    slots = site.get(f"/book/ERB-01/A?lang={lang}").get_data(as_text=True)
    no_english(slots, lang)
    # today (Sunday) from 13:15 local; the holiday (Wednesday) and the weekend are not offered
    assert 'data-date="2026-11-22"' in slots and 'data-date="2026-11-25"' not in slots
    assert 'data-date="2026-11-27"' not in slots
    assert WORDS["time"][lang] in slots and 'data-start="2026-11-22T10:15:00.000Z"' in slots
    monday = site.get(f"/book/ERB-01/A?lang={lang}&date=2026-11-23").get_data(as_text=True)
    assert monday.count('name="start"') == 20 and 'id="phone"' not in monday  # reminders are off
    answer = site.post(f"/book/ERB-01/A?lang={lang}", data={"token": token_of(monday),
                                                            "start": "2026-11-23T07:00:00.000Z"})
    assert answer.status_code == 303
    shown = site.get(answer.headers["Location"])
    page = shown.get_data(as_text=True)
    assert WORDS["booked"][lang] in page and '<svg class="qr"' in page and NAMES.get(lang, "Erbil") in page
    no_english(page, lang)
    with bookable.extensions["central"].engine.connect() as conn:
        row = conn.execute(select(Appointment)).first()
    assert row.lang == lang and ap.format_code(row.code) in page and 'data-state="booked"' in page
    cancelled = site.post(f"/appointment/{row.code}/cancel?lang={lang}", data={"token": token_of(page)})
    text = cancelled.get_data(as_text=True)
    assert cancelled.status_code == 200 and WORDS["cancelled"][lang] in text and 'data-state="cancelled"' in text
    assert 'id="cancel"' not in text
    no_english(text, lang)


@pytest.mark.parametrize("lang", ["ar", "en"])
def test_a_time_taken_in_the_meantime_and_an_unknown_code(site, lang):
    page = site.get(f"/book/ERB-01/B?lang={lang}&date=2026-11-23").get_data(as_text=True)
    token = token_of(page)
    first = site.post(f"/book/ERB-01/B?lang={lang}", data={"token": token, "start": "2026-11-23T06:00:00.000Z"})
    assert first.status_code == 303
    again = site.post(f"/book/ERB-01/B?lang={lang}", data={"token": token, "start": "2026-11-23T06:00:00.000Z"})
    html = again.get_data(as_text=True)
    assert again.status_code == 409 and WORDS["taken"][lang] in html and 'data-error="slot_full"' in html
    found = site.post(f"/book/find?lang={lang}", data={"token": token, "code": "zzzz-zzzz"})
    assert found.status_code == 303 and found.headers["Location"].startswith("/appointment/ZZZZZZZZ")
    missing = site.get(found.headers["Location"])
    assert missing.status_code == 404 and WORDS["unknown"][lang] in missing.get_data(as_text=True)
    assert site.post(f"/book/find?lang={lang}", data={"token": token, "code": "?"}).status_code == 404


def test_a_phone_number_is_asked_only_when_reminders_are_on(site, bookable):
    bookable.config["CENTRAL_SMS_NOTIFIER"] = "http"
    page = site.get("/book/ERB-01/A?lang=en&date=2026-11-23").get_data(as_text=True)
    assert 'id="phone"' in page
    bad = site.post("/book/ERB-01/A?lang=en", data={"token": token_of(page), "start": "2026-11-23T07:00:00.000Z",
                                                    "phone": "12"})
    assert bad.status_code == 422 and 'data-error="bad_phone"' in bad.get_data(as_text=True)
    assert 'value="12"' in bad.get_data(as_text=True) and 'checked' in bad.get_data(as_text=True)
    good = site.post("/book/ERB-01/A?lang=en", data={"token": token_of(page), "start": "2026-11-23T07:00:00.000Z",
                                                     "phone": "0750 123 4567"})
    assert good.status_code == 303
    with bookable.extensions["central"].engine.connect() as conn:
        assert conn.execute(select(Appointment.phone)).scalar() == "07501234567"


def test_forms_need_the_token_and_the_same_origin(site, bookable):
    page = site.get("/book/ERB-01/A?date=2026-11-23").get_data(as_text=True)
    form = {"token": token_of(page), "start": "2026-11-23T07:00:00.000Z"}
    assert site.post("/book/ERB-01/A", data={**form, "token": "forged"}).status_code == 400
    assert bookable.test_client().post("/book/ERB-01/A", data=form).status_code == 400  # no cookie
    assert site.post("/book/ERB-01/A", data=form, headers={"Origin": "https://evil.example"}).status_code == 403
    assert site.post("/book/ERB-01/A", data=form).status_code == 303


def test_unknown_centres_services_and_days(site):
    assert site.get("/book/NOPE").status_code == 404
    assert site.get("/book/ERB-01/C").status_code == 404
    assert site.get("/book/ERB-01/A?date=tomorrow").status_code == 404
    holiday = site.get("/book/ERB-01/A?date=2026-11-25&lang=en").get_data(as_text=True)
    assert "No free times on this day." in holiday and 'name="start"' not in holiday


@pytest.mark.parametrize("lang", ["ar", "ckb", "en"])
def test_the_page_a_phone_camera_opens(site, lang):
    html = site.get(f"/A?lang={lang}").get_data(as_text=True)
    assert _html_tag(html) == HTML[lang]
    no_english(html, lang)
