"""The configuration pages in real Chromium at 1366x768 in Arabic, Sorani and English: the right
direction, nothing wider than the screen, 48 px controls, no CSP violation or console error, a
refused form with its rules beside the fields, a service added through the form. Screenshots go to
test-output/screens/central-config-*.png."""
from __future__ import annotations

import pytest

from tests.sync.test_config_pages import BASE, OPERATOR, SERVICE_A, SERVICE_R, pages  # noqa: F401
from tests.web.conftest import screenshot

HTML = {"ar": ("ar-IQ", "rtl"), "ckb": ("ckb", "rtl"), "en": ("en", "ltr")}
LANGS = ("ar", "ckb", "en")


def _facts(page) -> dict:
    """Direction, overflow and the smallest control's height."""
    return page.evaluate("""() => ({
        overflow: document.documentElement.scrollWidth - window.innerWidth,
        smallest: Math.min(...[...document.querySelectorAll('main a.button, main button, header a, input[type=text], input[type=password]')]
                               .map(e => e.getBoundingClientRect().height)),
        dir: document.documentElement.dir, lang: document.documentElement.lang})""")


@pytest.mark.browser
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_configuration_pages_in_chromium_in_three_languages(pages, central_server, browser):
    pages.save("services", "+new", SERVICE_A)
    pages.save("services", "+new", SERVICE_R)
    pages.save("counters", "+new", {"key": "1", "name_ar": "الشباك ١", "name_ckb": "پەنجەرەی ١", "name_en": "Counter 1",
                                    "services": ["A", "R"], "active": "1"})
    pages.save("staff", "+new", {"key": "sara", "display_name": "Sara Ahmed", "role": "attendant", "pin": "4711", "active": "1"})
    pages.save("priority_classes", "+new", {"key": "elderly", "name_ar": "كبار السن", "name_ckb": "بەساڵاچووان",
                                            "name_en": "Elderly", "rank": "1", "active": "1"})
    pages.post(f"{BASE}/calendar", {"weekend": ["fri", "sat"], "holidays": "2026-12-25\n2027-01-01"})
    context = browser.new_context(viewport={"width": 1366, "height": 768},
                                  http_credentials={"username": OPERATOR[0], "password": OPERATOR[1]})
    problems: list = []
    context.add_init_script("document.addEventListener('securitypolicyviolation', "
                            "(e) => console.error('CSP ' + e.violatedDirective + ' ' + e.blockedURI));")
    views = {"index": BASE, "service": f"{BASE}/services/R", "counter": f"{BASE}/counters/1",
             "staff": f"{BASE}/staff/sara", "calendar": f"{BASE}/calendar", "audit": f"{BASE}/audit"}
    try:
        page = context.new_page()
        page.on("console", lambda message: message.type == "error" and "status of 422" not in message.text
                and problems.append(message.text))  # the refused form is answered 422 on purpose
        page.on("pageerror", lambda error: problems.append(str(error)))
        for number, lang in enumerate(LANGS, 1):
            for name, path in views.items():
                page.goto(f"{central_server.url}{path}?lang={lang}")
                page.evaluate("document.fonts.ready")
                facts = _facts(page)
                assert (facts["lang"], facts["dir"]) == HTML[lang], (name, lang)
                assert facts["overflow"] <= 0 and facts["smallest"] >= 48, (name, lang, facts)
                screenshot(page, f"central-config-{name}-{lang}")
            # a refused new service: every rule beside its field, what was typed still there
            page.goto(f"{central_server.url}{BASE}/services/+new?lang={lang}")
            page.fill("#f-key", f"T{number}")
            page.fill("#f-name_ar", "تجربة")
            page.fill("#f-prefix", "t9")
            page.fill("#f-fee_iqd", "-1")
            page.click("#save")
            page.wait_for_selector("#problems")
            assert page.input_value("#f-name_ar") == "تجربة" and page.input_value("#f-prefix") == "t9"
            assert sorted(page.eval_on_selector_all("[data-error-for]", "els => els.map(e => e.dataset.errorFor)")) == [
                "fee_iqd", "name_ckb", "name_en", "prefix"]
            assert page.get_attribute("#f-prefix", "aria-invalid") == "true"
            screenshot(page, f"central-config-refused-{lang}")
            page.fill("#f-name_ckb", "تاقیکردنەوە")
            page.fill("#f-name_en", "Trial")
            page.fill("#f-prefix", "T")
            page.fill("#f-fee_iqd", "0")
            page.click("#save")
            page.wait_for_selector("#saved")
            assert page.locator(f'[data-row="services/T{number}"]').count() == 1
    finally:
        context.close()
    assert problems == []
