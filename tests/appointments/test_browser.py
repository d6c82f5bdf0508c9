"""The check-in screen in real headless Chromium, in Arabic, Sorani and English: a code typed on the
screen's keypad and a QR text typed by a keyboard-wedge scanner (fast keystrokes and an Enter into
the field that keeps the focus), the too-early answer and the walk-in offer when too late; each
screen checked for accessibility (axe-core, 48 px targets, contrast) and screenshotted; the hall
display and the counter console mark appointment tickets."""
from __future__ import annotations

import datetime as dt

import pytest

from kiosk import services
from tests.appointments.support import SLOT
from tests.web.test_browser import LANGS, accessible, login, settle

pytestmark = pytest.mark.browser


def visit(page, base: str, lang: str) -> None:
    """Language, then "I have an appointment"; the code field has the focus."""
    page.goto(f"{base}/kiosk")
    page.locator(f".language-buttons button[value={lang}]").tap()
    page.wait_for_selector("[data-step=services]")
    page.locator("#appointment-entry").tap()
    page.wait_for_selector("[data-step=appointment]")
    page.wait_for_function("() => document.activeElement && document.activeElement.id === 'code'")


@pytest.mark.parametrize("lang,html_lang,direction", LANGS)
def test_check_in_by_keypad_and_by_scanner(live_server, page, booked, centre, clock, lang, html_lang, direction):
    booked.pull("K7M2Q9XD")
    booked.pull("BEF0RE00", SLOT + dt.timedelta(hours=2))
    qr = booked.qr("SCAN0001")
    base = live_server.url
    visit(page, base, lang)
    assert page.evaluate("() => [document.documentElement.lang, document.documentElement.dir]") == [html_lang, direction]
    assert page.evaluate("() => getComputedStyle(document.querySelector('.keypad')).direction") == "ltr"
    accessible(page, f"appointment-1-check-in-{lang}", touch=True)
    for key in "K7M2Q9XE":
        page.locator(f'.keypad [data-key="{key}"]').tap()
    page.locator('.keypad [data-key="back"]').tap()
    page.locator('.keypad [data-key="D"]').tap()
    assert page.input_value("#code") == "K7M2Q9XD"
    page.locator("#check-in").tap()
    page.wait_for_selector("[data-step=ticket][data-appointment=K7M2Q9XD]")
    accessible(page, f"appointment-2-checked-in-{lang}", touch=True)
    assert page.inner_text("#ticket-number") == "A-001" and page.locator("svg.qr").is_visible()

    visit(page, base, lang)
    page.locator(".kiosk-header").tap()  # a tap elsewhere: the scanner's keystrokes still land in the field
    page.keyboard.type(qr, delay=2)
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-step=ticket][data-appointment=SCAN0001]")
    assert page.inner_text("#ticket-number") == "A-002"

    visit(page, base, lang)
    page.keyboard.type("BEF0RE00")
    page.keyboard.press("Enter")
    page.wait_for_selector('#refusal[data-refusal="too_early"]')
    accessible(page, f"appointment-3-too-early-{lang}", touch=True)
    assert ("10:45" if lang == "en" else "١٠:٤٥") in page.inner_text("#refusal")
    clock.set(SLOT + dt.timedelta(hours=3))
    visit(page, base, lang)  # a fresh page: axe-core leaves style attributes that htmx would carry over
    page.keyboard.type("BEF0RE00")
    page.keyboard.press("Enter")
    page.wait_for_selector('#refusal[data-refusal="too_late"]')
    accessible(page, f"appointment-4-too-late-{lang}", touch=True)
    page.locator("#walk-in").tap()
    page.wait_for_selector("[data-step=service]")
    assert [t["appointment"] for t in centre.store.all("tickets")] == ["K7M2Q9XD", "SCAN0001"]


def test_display_and_console_mark_appointment_tickets(live_server, context, booked, centre, clock):
    booked.pull("K7M2Q9XD")
    walk_in = services.issue_ticket(centre, service="A", lang="en")
    clock.set(SLOT)
    from kiosk.usecases import appointments
    ticket = appointments.check_in(centre, "K7M2Q9XD", lang="en")
    base = live_server.url
    console = context.new_page()
    login(console, base)
    console.click("button[name=counter][value='1']")
    console.wait_for_selector("#call-next")
    row = console.locator(f'#waiting tr[data-ticket="{ticket["number"]}"] .appointment-mark')
    assert row.inner_text() == "Appointment at 09:15"
    assert console.locator(f'#waiting tr[data-ticket="{walk_in["number"]}"] .appointment-mark').count() == 0
    console.click("#call-next")
    console.wait_for_selector(f'.current-ticket[data-ticket="{ticket["number"]}"] .appointment-mark')
    assert "appointment whose time has come" in console.inner_text("#reason")
    settle(console)
    display = context.new_page()
    display.set_viewport_size({"width": 1920, "height": 1080})
    display.goto(f"{base}/display")
    display.wait_for_selector(f'#newest[data-number="{ticket["number"]}"] #newest-appointment')
    assert "Appointment" in display.inner_text("#newest-appointment")
