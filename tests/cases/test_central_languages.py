"""Central's receipt pages in three languages with names instead of codes (SQLite and PostgreSQL):
the overdue list, a case's decision form, the monthly report and the /R page's live answer name
the centre and each service in the reader's language, dates are dates in the language's own order
and digits; and in real Chromium at 1366x768 every operator page and /R, in each language, fit the
screen and are saved as screenshots under test-output/screens/."""
from __future__ import annotations

import base64
import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest

from kiosk import services
from kiosk.domain import throttle
from kiosk.i18n import locales
from kiosk.usecases import insight
from tests.cases.support import CENTRE_NAMES, OPERATOR
from tests.web.conftest import screenshot
from tests.web.test_i18n import latin_words

LANGS = ("ar", "ckb", "en")
HTML = {"ar": ("ar-IQ", "rtl"), "ckb": ("ckb", "rtl"), "en": ("en", "ltr")}
SERVICE_NAMES = {s["code"]: s["names"] for s in services.DEMO_SERVICES}
BAGHDAD = ZoneInfo("Asia/Baghdad")


def _html_tag(html: str) -> tuple[str, str]:
    """(lang, dir) of the page's <html> element."""
    found = re.search(r'<html lang="([^"]+)" dir="([^"]+)">', html)
    return found.group(1), found.group(2)


def _h1(html: str) -> str:
    """The page's first heading as text."""
    inner = re.search(r"<h1[^>]*>(.*?)</h1>", html, re.S).group(1)
    return " ".join(re.sub(r"<[^>]+>", " ", inner).split())


def _moment(iso: str) -> dt.datetime:
    """An ISO UTC time."""
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))


@pytest.fixture
def registered(system):
    """Requests for service A (named at central), C (known only at the kiosk) and a referral, synced,
    then six days later (the two open ones are overdue)."""
    made = {"A": system.serve_and_register("A"), "C": system.serve_and_register("C"),
            "referral": system.serve_and_register("B", kind="referral", provider="nrc-shelter")}
    system.sync()
    system.clock.advance(days=6)
    return made


@pytest.mark.parametrize("lang", LANGS)
def test_receipt_pages_name_centres_and_services(system, registered, lang):
    """Overdue list, case page and report: the centre's and services' names in the page's language
    with their codes beside them, a service central cannot name by its code alone, due dates as
    dates; nothing left in English on Arabic and Sorani pages."""
    operator = system.operator()
    doc_a, doc_c = registered["A"][0], registered["C"][0]
    due = locales.format_date(_moment(doc_a["due_at"]), lang, BAGHDAD)
    service_a = (f'<td data-service="A"><bdi>{SERVICE_NAMES["A"][lang]}</bdi> '
                 f'<bdi dir="ltr" class="code">A</bdi></td>')
    service_c = '<td data-service="C"><bdi dir="ltr" class="code">C</bdi></td>'
    centre = f'<bdi>{CENTRE_NAMES[lang]}</bdi> <bdi dir="ltr" class="code">ERB-01</bdi>'

    overdue = operator.get(f"/receipts/overdue?lang={lang}").get_data(as_text=True)
    assert _html_tag(overdue) == HTML[lang]
    assert _h1(overdue) == {"ar": "الطلبات المتأخرة", "ckb": "داواکارییە دواکەوتووەکان", "en": "Overdue requests"}[lang]
    assert centre in overdue and service_a in overdue and service_c in overdue
    assert overdue.count('data-case="') == 2  # the referral is not open
    assert f"<td>{due}</td>" in overdue and not re.search(r"\b(AM|PM)\b", overdue)
    assert {"ar": "طلبان متأخران", "ckb": "٢ داواکاریی دواکەوتوو", "en": "2 overdue requests"}[lang] in overdue

    case = operator.get(f"/receipts/cases/ERB-01/{doc_a['id']}?lang={lang}").get_data(as_text=True)
    assert _html_tag(case) == HTML[lang]
    assert f'<td data-field="service"><bdi>{SERVICE_NAMES["A"][lang]}</bdi>' in case
    assert f'<td data-field="centre">{centre}</td>' in case and due in case
    assert {"ar": "مأوى (السكن)", "ckb": "پەناگە (نیشتەجێبوون)", "en": "Shelter programme (Housing)"}[lang] in case

    report = operator.get(f"/receipts/report?month=2026-11&lang={lang}").get_data(as_text=True)
    assert _html_tag(report) == HTML[lang]
    assert _h1(report).startswith({"ar": "الطلبات في تشرين الثاني ٢٠٢٦", "ckb": "داواکارییەکان لە تشرینی دووەمی ٢٠٢٦",
                                   "en": "Requests in November 2026"}[lang])
    assert f'<tr data-key="ERB-01"><th scope="row">{centre}</th>' in report
    assert f'<tr data-key="A"><th scope="row"><bdi>{SERVICE_NAMES["A"][lang]}</bdi>' in report
    assert '<tr data-key="C"><th scope="row"><bdi dir="ltr" class="code">C</bdi></th>' in report
    received = {"ar": "٣", "ckb": "٣", "en": "3"}[lang]
    assert f'data-figure="received" data-value="3">{received}</td>' in report
    if lang != "en":
        for path, html in (("overdue", overdue), ("case", case), ("report", report)):
            assert latin_words(html) == [], (path, latin_words(html))

    token = re.search(r'name="csrf_token" value="([^"]+)"', case).group(1)
    refused = operator.post(f"/receipts/cases/ERB-01/{doc_c['id']}?lang={lang}",
                            data={"status": "rejected", "reason": " ", "csrf_token": token})
    assert refused.status_code == 422
    assert {"ar": "الرفض يحتاج إلى سبب (٥٠٠ حرف كحد أقصى).", "ckb": "ڕەتکردنەوە پێویستی بە هۆکارە (زۆرترین ٥٠٠ پیت).",
            "en": "A rejection needs a reason (at most 500 characters)."}[lang] in refused.get_data(as_text=True)
    url = f"/receipts/cases/ERB-01/{doc_c['id']}?lang={lang}"
    assert operator.post(url, data={"status": "completed", "csrf_token": token}).status_code == 303
    closed = operator.post(url, data={"status": "rejected", "reason": "late", "csrf_token": token})
    assert closed.status_code == 422
    assert {"ar": "هذا الطلب مغلق؛ لا يمكن تغيير حالته.", "ckb": "ئەم داواکارییە داخراوە؛ دۆخەکەی ناگۆڕدرێت.",
            "en": "This request is already closed; its status cannot change."}[lang] in closed.get_data(as_text=True)


@pytest.mark.parametrize("lang", LANGS)
def test_live_status_names_the_centre_and_service(system, registered, lang):
    """/R/status answers the names in the asked language; none for a service central cannot name,
    and never a referral's service (its receipt says GEN: which help was sought is confidential)."""
    client = system.central_app.test_client()
    answers = {key: client.post("/R/status", json={"qr_text": record["text"], "lang": lang}).get_json()
               for key, (_doc, record) in registered.items()}
    assert answers["A"]["names"] == {"centre": CENTRE_NAMES[lang], "service": SERVICE_NAMES["A"][lang]}
    assert answers["C"]["names"] == {"centre": CENTRE_NAMES[lang], "service": None}
    assert answers["referral"]["names"] == {"centre": CENTRE_NAMES[lang], "service": None}
    assert answers["referral"]["status"]["status"] == "referred"
    by_browser = client.post("/R/status", json={"qr_text": registered["A"][1]["text"]},
                             headers={"Accept-Language": lang}).get_json()
    assert by_browser["names"]["centre"] == CENTRE_NAMES[lang]


def test_central_names_the_referral_service_as_the_kiosk_does():
    """Central's code for a referral's receipt service is the kiosk's."""
    from kiosk.cases import REFERRAL_RECEIPT_SERVICE
    from sync.central.receipts import REFERRAL_SERVICE
    assert REFERRAL_SERVICE == REFERRAL_RECEIPT_SERVICE


def _fits(page) -> dict:
    """Whether the page fits the window's width, and the smallest header link's height."""
    return page.evaluate("""() => ({
        overflow: document.documentElement.scrollWidth - window.innerWidth,
        smallestLink: Math.min(...[...document.querySelectorAll('header a')].map(a => a.getBoundingClientRect().height)),
        dir: document.documentElement.dir, lang: document.documentElement.lang})""")


@pytest.mark.browser
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_operator_pages_and_r_in_chromium_in_three_languages(system, registered, browser):
    """Every operator page and /R at 1366x768 in ar, ckb and en: right direction, nothing wider than
    the screen, 48 px header links, no CSP violation or console error; /R shows the centre's and
    service's names from central and the dates in the language's order and digits. Screenshots go
    to test-output/screens/central-*.png."""
    doc_a, record_a = registered["A"]
    fragment = record_a["text"].split("/R#", 1)[1]
    pages = {"centres": "/", "centre": "/centres/ERB-01", "locks": "/operators/locks",
             "overdue": "/receipts/overdue", "case": f"/receipts/cases/ERB-01/{doc_a['id']}",
             "report": "/receipts/report?month=2026-11", "queue": "/queue-report?from=2026-11-01&to=2026-11-30",
             "queue-centre": "/queue-report?from=2026-11-01&to=2026-11-30&centre=ERB-01",
             "missing": "/no-such-page"}
    centre = system.centre
    services.set_counter_status(centre, "1", "open", by="demo")
    for n, service in enumerate("AABC"):  # visits of several services for the queue report's charts
        ticket = services.issue_ticket(centre, service=service, lang="ar")
        system.clock.advance(minutes=4 + 7 * n)
        services.call_ticket(centre, ticket["id"], counter="1", by="demo")
        services.act(centre, ticket["id"], "start", by="demo")
        system.clock.advance(minutes=3 + n)
        services.act(centre, ticket["id"], "finish", by="demo")
        insight.give_feedback(centre, ticket["id"], score=1 + n, comment="بطيء جداً" if n == 0 else None)
    system.sync()
    guesser = system.central_app.test_client()
    for n in range(throttle.ADDRESS.free):  # one address locked, so the locks page lists something
        guesser.get("/", headers={"Authorization": "Basic " + base64.b64encode(f"guess{n}:wrong".encode()).decode()},
                    environ_base={"REMOTE_ADDR": "10.9.0.1"})
    context = browser.new_context(viewport={"width": 1366, "height": 768},
                                  http_credentials={"username": OPERATOR[0], "password": OPERATOR[1]})
    context.clock.set_fixed_time(system.clock.now())  # the /R page verifies with the browser's clock
    problems: list = []
    context.add_init_script("document.addEventListener('securitypolicyviolation', "
                            "(e) => console.error('CSP ' + e.violatedDirective + ' ' + e.blockedURI));")
    try:
        page = context.new_page()
        page.on("console", lambda message: message.type == "error" and "/no-such-page" not in message.location["url"]
                and problems.append(message.text))
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on("response", lambda response: response.status >= 400 and response.status != 401
                and "/no-such-page" not in response.url and problems.append(f"{response.status} {response.url}"))
        for lang in LANGS:
            for name, path in pages.items():
                page.goto(f"{system.server.url}{path}{'&' if '?' in path else '?'}lang={lang}")
                page.evaluate("document.fonts.ready")
                facts = _fits(page)
                assert (facts["lang"], facts["dir"]) == HTML[lang], (name, lang)
                assert facts["overflow"] <= 0, (name, lang, facts)
                assert facts["smallestLink"] >= 48, (name, lang, facts)
                screenshot(page, f"central-{name}-{lang}")
            page.goto(f"{system.server.url}/R?lang={lang}#{fragment}")
            page.wait_for_selector('#live-status[data-status="open"]', timeout=15000)
            page.wait_for_selector('[data-field="service"][data-named="yes"]', timeout=15000)
            assert page.text_content('[data-field="centre"]') == CENTRE_NAMES[lang]
            assert page.text_content('[data-field="service"]') == SERVICE_NAMES["A"][lang]
            assert page.text_content('[data-field="due_at"]') == locales.format_date(
                _moment(doc_a["due_at"]), lang, BAGHDAD)
            assert page.text_content('[data-field="issued_at"]') == locales.format_datetime(
                _moment(record_a["issued_at"]), lang, BAGHDAD)
            facts = _fits(page)
            assert (facts["lang"], facts["dir"]) == HTML[lang] and facts["overflow"] <= 0, (lang, facts)
            screenshot(page, f"central-r-{lang}")
    finally:
        context.close()
    assert problems == []
