"""Screens that tell the truth, in real Chromium at the centre's device sizes and in each language:
a service at its limit is shown as unavailable (why, and when it reopens) and cannot be taken; a
refusal is never shown as a connection problem; a priority ticket carries its class; the hall
display points a transferred ticket's old number to its new one; stopping a service asks first.
Screenshots of each land in test-output/screens/."""
from __future__ import annotations

import pytest

from kiosk import services
from tests.web.conftest import screenshot
from tests.web.test_browser import accessible, login, settle

pytestmark = pytest.mark.browser

CITIZEN = {"width": 1080, "height": 1920}
COUNTER = {"width": 1366, "height": 768}
DISPLAY = {"width": 1920, "height": 1080}
LANGS = ("ar", "ckb", "en")
REOPENS = {"ar": "الاثنين، ٢٣ تشرين الثاني ٢٠٢٦، ٠٨:٠٠", "ckb": "دووشەممە، ٢٣ی تشرینی دووەمی ٢٠٢٦، ٠٨:٠٠",
           "en": "Monday 23 November 2026, 08:00"}


@pytest.mark.parametrize("lang", LANGS)
def test_capped_service_is_shown_unavailable(live_server, context, centre, lang):
    """At its daily limit a service's tile says so and when tickets start again (the frozen clock's
    Sunday, so Monday's opening); it is not a link; the other services still work."""
    services.update_service(centre, "A", by="test", daily_cap=1)
    services.issue_ticket(centre, service="A", lang=lang)
    page = context.new_page()
    page.set_viewport_size(CITIZEN)
    page.goto(f"{live_server.url}/kiosk")
    page.locator(f".language-buttons button[value={lang}]").tap()
    page.wait_for_selector("[data-step=services]")
    tile = page.locator(".tile[data-service=A]")
    assert tile.get_attribute("data-unavailable") == "daily_cap"
    assert tile.evaluate("el => el.tagName") == "DIV", "not a link: nothing to tap"
    assert REOPENS[lang] in tile.inner_text()
    accessible(page, f"kiosk-2-services-unavailable-{lang}", touch=True)
    page.locator(".tile[data-service=B]").tap()
    page.wait_for_selector("[data-step=service]")


def test_refusal_is_not_a_connection_problem(live_server, context, centre):
    """The limit is reached while the citizen reads the service page: the tap is answered with the
    reason on the page, and the connection-problem banner stays hidden."""
    services.update_service(centre, "C", by="test", daily_cap=1)
    page = context.new_page()
    page.set_viewport_size(CITIZEN)
    page.goto(f"{live_server.url}/kiosk")
    page.locator(".language-buttons button[value=en]").tap()
    page.locator(".tile[data-service=C]").tap()
    page.wait_for_selector("[data-step=service]")
    services.issue_ticket(centre, service="C", lang="ar")  # someone else takes the last ticket
    page.locator("button[name=priority][value=normal]").tap()
    page.wait_for_selector("#unavailable[data-unavailable=daily_cap]")
    settle(page)
    assert "Today's tickets for this service have all been given out." in page.inner_text("#unavailable")
    assert page.locator("#connection-error").is_hidden() and page.locator("#response-error").is_hidden()
    screenshot(page, "kiosk-3-service-refused-en")


@pytest.mark.parametrize("lang", LANGS)
def test_priority_ticket_carries_its_class(live_server, context, centre, lang):
    """The ticket screen names the priority class; the QR's text tells the citizen to follow it."""
    page = context.new_page()
    page.set_viewport_size(CITIZEN)
    page.goto(f"{live_server.url}/kiosk")
    page.locator(f".language-buttons button[value={lang}]").tap()
    page.locator(".tile[data-service=B]").tap()
    page.locator("button[name=priority][value=disability]").tap()
    page.wait_for_selector("[data-step=ticket]")
    names = {"ar": "ذوو الإعاقة", "ckb": "خاوەن پێداویستی تایبەت", "en": "Disability"}
    assert names[lang] in page.inner_text("#priority-mark")
    accessible(page, f"kiosk-4-ticket-priority-{lang}", touch=True)


@pytest.mark.parametrize("lang", LANGS)
def test_display_points_old_numbers_to_new_ones(live_server, context, centre, lang):
    """After a transfer the hall display shows A-001 -> B-001 until the new number is called, and
    then the call with the old number beside it."""
    first = services.issue_ticket(centre, service="A", lang=lang)
    services.call_ticket(centre, first["id"], counter="1", by="demo")
    moved = services.transfer(centre, first["id"], service="B", by="demo")
    display = context.new_page()
    display.set_viewport_size(DISPLAY)
    display.goto(f"{live_server.url}/display")
    display.wait_for_selector('#moved li[data-was="A-001"][data-number="B-001"]')
    assert display.inner_text("#moved li").replace("\u2066", "").replace("\u2069", "").split() == ["A-001", "➜", "B-001"]
    accessible(display, f"display-moved-{lang}", touch=False)
    services.call_ticket(centre, moved["id"], counter="2", by="demo")
    display.wait_for_selector('#newest[data-number="B-001"] .was[data-was="A-001"]', timeout=3000)
    assert display.locator("#moved").count() == 0


@pytest.mark.parametrize("lang", LANGS)
def test_stop_taking_tickets_asks_first(live_server, context, centre, lang):
    """The supervisor's "Stop taking tickets" asks for confirmation and for how long; cancelling
    changes nothing; "closed until the next working day" shows on the supervisor screen."""
    page = context.new_page()
    page.set_viewport_size(COUNTER)
    login(page, live_server.url, "super", "9999", lang=lang)
    page.goto(f"{live_server.url}/admin")
    page.click("#settings tr[data-service=C] button[data-action=off]")
    page.wait_for_selector("#confirm-stop")
    accessible(page, f"admin-confirm-stop-{lang}", touch=False)
    page.click("#settings a[data-action=cancel]")
    page.wait_for_selector("#settings tr[data-service=C] button[data-action=off]")
    assert services.get_service(centre, "C")["active"] is True and not services.get_service(centre, "C").get("closed_until")
    page.click("#settings tr[data-service=C] button[data-action=off]")
    page.click("#settings button[data-action=off-today]")
    page.wait_for_selector("#settings tr[data-service=C] button[data-action=on]")
    assert services.availability(centre, services.get_service(centre, "C")).reason == "off"
    page.reload()
    assert REOPENS[lang] in page.inner_text('#overview tr[data-service=C] td[data-availability="off"]')
    settle(page)
    screenshot(page, f"admin-closed-for-today-{lang}")
