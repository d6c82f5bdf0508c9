"""The screens in real headless Chromium (Debian's), against the app served by waitress.

Every test's browser context fails the test on any CSP violation, console error or page error
(tests/web/conftest.py). Screenshots of every screen in every language land in
test-output/screens/ for reviewers.
"""
from __future__ import annotations

import time

import pytest
import requests
from playwright.sync_api import Error as PlaywrightError

from kiosk import services
from tests.conftest import browser_env
from tests.web.a11y import check_page
from tests.web.conftest import screenshot

pytestmark = pytest.mark.browser

LANGS = [("ar", "ar-IQ", "rtl"), ("ckb", "ckb", "rtl"), ("en", "en", "ltr")]


def settle(page):
    """Wait until htmx has nothing in flight and fonts are loaded (before checks and screenshots)."""
    page.wait_for_load_state("load")
    page.wait_for_function("() => document.fonts.status === 'loaded' && !document.querySelector('.htmx-request')")


def accessible(page, name: str, *, touch: bool) -> None:
    """Screenshot, then axe-core plus our target-size and contrast checks: no problem allowed."""
    settle(page)
    screenshot(page, name)
    problems = check_page(page, touch=touch)
    assert problems == [], f"{name}: " + "\n".join(problems)


def login(page, base: str, staff: str = "demo", pin: str = "0000", lang: str = "en") -> None:
    """Log in through the form, then switch the staff screens' language."""
    page.goto(f"{base}/staff/login")
    page.fill("#staff", staff)
    page.fill("#pin", pin)
    page.click("button[type=submit].primary")
    page.wait_for_load_state("load")
    page.click(f".staff-header button[value={lang}]")
    page.wait_for_load_state("load")


@pytest.mark.parametrize("lang,html_lang,direction", LANGS)
def test_citizen_takes_a_ticket_by_touch(live_server, page, centre, lang, html_lang, direction):
    """Language, service, ticket: three taps, no keyboard; every step accessible and screenshotted."""
    base = live_server.url
    page.goto(f"{base}/kiosk")
    if lang == "ar":
        accessible(page, "kiosk-1-language", touch=True)
    taps = 0
    page.locator(f".language-buttons button[value={lang}]").tap()
    taps += 1
    page.wait_for_selector("[data-step=services]")
    assert page.evaluate("() => [document.documentElement.lang, document.documentElement.dir]") == [html_lang, direction]
    accessible(page, f"kiosk-2-services-{lang}", touch=True)
    page.locator(".tile[data-service=A]").tap()
    taps += 1
    page.wait_for_selector("[data-step=service]")
    accessible(page, f"kiosk-3-service-{lang}", touch=True)
    page.locator("button[name=priority][value=elderly]").tap()
    taps += 1
    page.wait_for_selector("[data-step=ticket]")
    accessible(page, f"kiosk-4-ticket-{lang}", touch=True)
    assert taps == 3
    ticket = centre.store.all("tickets")[0]
    assert ticket["lang"] == lang and ticket["priority"] == "elderly"
    assert page.inner_text("#ticket-number") == ticket["number"]
    assert page.locator("svg.qr").is_visible()


def test_attendant_call_reaches_the_display_within_a_second(live_server, context, centre):
    """A call from the console appears on the hall display without reload, through SSE."""
    base = live_server.url
    services.issue_ticket(centre, service="A", lang="en")
    services.issue_ticket(centre, service="B", priority="disability", lang="ar")
    display = context.new_page()
    display.goto(f"{base}/display")
    display.wait_for_function("() => window.htmx && document.querySelector('#display-root')")
    display.wait_for_timeout(300)  # the stream's ping has arrived
    display.evaluate("() => { window.sameDocument = true; }")  # gone if the page reloads
    console = context.new_page()
    login(console, base)
    console.click("button[name=counter][value='1']")
    console.wait_for_selector("#call-next")
    console.click("#call-next")
    console.wait_for_selector("#console .alert-ok")
    called_at = time.monotonic()
    display.wait_for_selector('#newest[data-number="B-001"][data-counter="1"]', timeout=1000)
    assert time.monotonic() - called_at < 1.0
    assert "priority" in console.inner_text("#console .alert-ok")
    assert display.evaluate("() => window.sameDocument === true")
    display.wait_for_function("() => window.kioskAnnouncer.log.length === 1")
    assert display.evaluate("() => window.kioskAnnouncer.log[0].number") == "B-001"


def test_transfer_and_no_show_in_the_browser(live_server, context, centre):
    """Call, transfer to another service, call the new ticket from the list, mark it not present,
    bring it back: the console and the waiting list follow each step live."""
    base = live_server.url
    services.issue_ticket(centre, service="A", lang="en")
    console = context.new_page()
    login(console, base)
    console.click("button[name=counter][value='2']")
    console.click("#call-next")
    console.wait_for_selector(".current-ticket[data-ticket='A-001']")
    console.select_option("select[name=service]", "C")
    console.click("button[data-action=transfer]")
    console.wait_for_selector("#waiting tr[data-ticket='C-001']")
    assert "A-001" in console.inner_text("#console .alert-ok") and "C-001" in console.inner_text("#console .alert-ok")
    console.click("#waiting tr[data-ticket='C-001'] button[data-action=call]")
    console.wait_for_selector(".current-ticket[data-ticket='C-001']")
    console.click("button[data-action=no-show]")
    console.wait_for_selector("#parked")
    assert centre.store.all("tickets")[-1]["state"] == "no_show"
    console.click("#parked button[data-action=reactivate]")
    console.wait_for_selector("#waiting tr[data-ticket='C-001']")
    # a ticket issued elsewhere shows up in the waiting list without any click
    services.issue_ticket(centre, service="B", lang="en")
    console.wait_for_selector("#waiting tr[data-ticket='B-001']", timeout=2000)


def test_idle_reset_clears_everything(app, live_server, context, centre):
    """After the idle time the language screen is back, and nothing of the citizen remains: not in
    the page, not in browser storage, not in the session cookie."""
    app.config["IDLE_RESET_S"] = 3
    base = live_server.url
    page = context.new_page()
    page.goto(f"{base}/kiosk")
    page.locator(".language-buttons button[value=en]").tap()
    page.locator(".tile[data-service=C]").tap()
    page.locator("button[name=priority][value=normal]").tap()
    page.wait_for_selector("[data-step=ticket]")
    number = page.inner_text("#ticket-number")
    page.wait_for_selector("#idle:not([hidden])")
    assert "Back to the start in:" in page.inner_text("#idle-text")
    page.wait_for_selector("[data-step=language]", timeout=6000)
    assert number not in page.content()
    assert page.evaluate("() => [localStorage.length, sessionStorage.length]") == [0, 0]
    cookie = next((c for c in context.cookies() if c["name"] == app.config["SESSION_COOKIE_NAME"]), None)
    if cookie is not None:
        session = app.session_interface.get_signing_serializer(app).loads(cookie["value"])
        assert set(session) <= {"csrf"}
    assert page.evaluate("() => document.documentElement.lang") == "ar-IQ"  # back to the centre's default


def test_more_time_keeps_the_citizen_on_the_screen(app, live_server, page):
    """Touching "more time" restarts the countdown."""
    app.config["IDLE_RESET_S"] = 3
    page.goto(f"{live_server.url}/kiosk")
    page.locator(".language-buttons button[value=ckb]").tap()
    page.wait_for_selector("#idle:not([hidden])")
    for _ in range(3):
        page.wait_for_timeout(1500)
        page.locator("#idle-more").tap()
    assert page.locator("[data-step=services]").count() == 1


def test_supervisor_view_follows_the_queue_live(live_server, context, centre):
    """New tickets change the supervisor's figures without a reload."""
    page = context.new_page()
    login(page, live_server.url, "super", "9999")
    page.wait_for_selector("#total-waiting")
    assert page.inner_text("#total-waiting") == "0"
    page.evaluate("() => { window.sameDocument = true; }")  # gone if the page reloads
    services.issue_ticket(centre, service="B", lang="ar")
    services.issue_ticket(centre, service="C", lang="ar")
    page.wait_for_function("() => document.getElementById('total-waiting').textContent === '2'", timeout=2000)
    assert page.evaluate("() => window.sameDocument === true")


def test_expired_staff_session_goes_to_the_login_page(app, live_server, context, clock, watch):
    """After STAFF_IDLE_MIN without activity the next click lands on the login page (HX-Redirect),
    which says the session expired, also when the console's live stream reconnected and was
    refused first."""
    watch.allow_console("401")
    watch.allow_console(r"^\[object Event\]$")  # htmx logs the refused stream as an SSE error event
    base = live_server.url
    console = context.new_page()
    login(console, base)
    console.click("button[name=counter][value='1']")
    console.wait_for_selector("#call-next")
    clock.advance(minutes=app.config["STAFF_IDLE_MIN"] + 1)
    try:
        # the console may already be on its way to the login page: its live stream, refused now,
        # takes it there by itself; otherwise the click does
        console.evaluate("() => document.getElementById('call-next')?.click()")
    except PlaywrightError:
        pass  # the page navigated away during the call
    console.wait_for_url(f"{base}/staff/login?**")
    assert "expired=1" in console.url
    assert console.locator(".login .alert-error").count() == 1


def test_citizen_screen_cannot_reach_staff_routes(live_server, page, watch):
    """From the kiosk page, staff pages send to the login page and actions are refused."""
    watch.allow_console("401")
    base = live_server.url
    page.goto(f"{base}/kiosk")
    status = page.evaluate("""async () => {
        const token = JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRF-Token'];
        const r = await fetch('/counter/1/call-next', {method: 'POST', headers: {'X-CSRF-Token': token, 'HX-Request': 'true'}});
        return [r.status, r.headers.get('HX-Redirect')];
    }""")
    assert status[0] == 401 and status[1].startswith("/staff/login")
    page.goto(f"{base}/admin")
    assert page.url.startswith(f"{base}/staff/login")


def test_display_reconnects_after_the_stream_ends(app, live_server, context, centre, watch):
    """Streams end (here after 1 s); the display reconnects and still shows the next call at once."""
    watch.allow_console(r"^\[object Event\]$")  # htmx logs each end of stream as an SSE error event
    app.config["SSE_MAX_AGE_S"] = 1
    services.issue_ticket(centre, service="C", lang="en")
    display = context.new_page()
    display.goto(f"{live_server.url}/display")
    display.wait_for_timeout(2500)  # at least one stream has ended and been replaced
    token = requests.post(f"{live_server.url}/api/v1/auth/token", json={"staff": "demo", "pin": "0000"}, timeout=5).json()["token"]
    requests.post(f"{live_server.url}/api/v1/counters/3/call-next", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    display.wait_for_selector('#newest[data-number="C-001"]', timeout=2500)


def test_spoken_calls_never_overlap(live_server, context, centre):
    """Two calls in quick succession are announced one after the other (a queue, never together)."""
    first = services.issue_ticket(centre, service="A", lang="en")
    second = services.issue_ticket(centre, service="B", lang="ckb")
    display = context.new_page()
    display.goto(f"{live_server.url}/display")
    display.wait_for_timeout(300)
    services.call_ticket(centre, first["id"], counter="1", by="demo")
    services.call_ticket(centre, second["id"], counter="2", by="demo")
    display.wait_for_function("() => window.kioskAnnouncer.log.length === 2 && window.kioskAnnouncer.log[1].endedAt",
                              timeout=20000)
    log = display.evaluate("() => window.kioskAnnouncer.log")
    assert [entry["number"] for entry in log] == ["A-001", "B-001"]
    assert log[0]["clips"] == 6 and log[1]["clips"] == 6  # chime, ticket, A/B, one, counter, one/two
    assert log[1]["startedAt"] >= log[0]["endedAt"]
    assert all(entry["problem"] is None for entry in log), log


@pytest.mark.parametrize("lang", ["ar", "ckb", "en"])
def test_staff_and_display_screens_are_accessible(live_server, context, centre, clock, watch, lang):
    """Login, counter choice, console with a call and a waiting list, supervisor view, hall display
    and an error page, in each language: axe, contrast (Arabic script included), screenshots."""
    watch.allow_console("404")  # the error page is reached on purpose
    base = live_server.url
    for service, priority in (("A", "normal"), ("B", "elderly"), ("C", "normal"), ("A", "pregnancy")):
        services.issue_ticket(centre, service=service, priority=priority, lang=lang)
    clock.advance(minutes=9)
    page = context.new_page()
    page.goto(f"{base}/staff/login")
    page.click(f".staff-header button[value={lang}]")
    page.wait_for_load_state("load")
    accessible(page, f"staff-login-{lang}", touch=False)
    page.fill("#staff", "super")
    page.fill("#pin", "9999")
    page.click("button[type=submit].primary")
    page.wait_for_url(f"{base}/admin")
    page.goto(f"{base}/counter")
    accessible(page, f"counter-choose-{lang}", touch=False)
    page.click("button[name=counter][value='1']")
    page.click("#call-next")
    page.wait_for_selector(".current-ticket")
    accessible(page, f"counter-console-{lang}", touch=False)
    page.goto(f"{base}/admin")
    accessible(page, f"admin-{lang}", touch=False)
    display = context.new_page()
    display.set_viewport_size({"width": 1920, "height": 1080})  # a landscape screen in the hall
    display.goto(f"{base}/display")
    display.wait_for_selector("#newest")
    accessible(display, f"display-{lang}", touch=False)
    kiosk = context.new_page()
    kiosk.goto(f"{base}/kiosk")
    kiosk.locator(f".language-buttons button[value={lang}]").tap()
    kiosk.wait_for_selector("[data-step=services]")
    kiosk.goto(f"{base}/kiosk/services/none")
    accessible(kiosk, f"kiosk-error-{lang}", touch=True)


def test_kiosk_launcher_opens_the_screen_in_chromium(live_server, tmp_path):
    """The launcher's flags start Chromium on the citizen screen (headless here, with a dump of the DOM)."""
    import subprocess
    from kiosk.launch import command_line
    argv = command_line("kiosk", f"{live_server.url}/kiosk", browser="/usr/bin/chromium",
                        user_data_dir=str(tmp_path / "profile"))
    extra = ["--headless=new", "--no-sandbox", "--disable-gpu", "--dump-dom", "--virtual-time-budget=3000"]
    result = subprocess.run(argv[:-1] + extra + argv[-1:], capture_output=True, text=True, timeout=60,
                            env=browser_env())
    assert result.returncode == 0, result.stderr[-2000:]
    assert 'class="language-buttons"' in result.stdout and 'value="ckb"' in result.stdout


def test_accessibility_checks_catch_what_they_look_for(browser):
    """The checks are not blind: a tiny button, pale Arabic and Sorani text and an image without
    text are all reported (axe alone misses the first two)."""
    ctx = browser.new_context()
    try:
        page = ctx.new_page()
        page.set_content('<!doctype html><html lang="en"><head><title>t</title></head><body><main>'
                         '<h1>Check</h1><button style="width:20px;height:20px">x</button>'
                         '<p lang="ar" style="color:#bbb">يرجى الانتظار حتى يظهر رقمك</p>'
                         '<p lang="ckb" style="color:#bbb">تکایە چاوەڕێ بکە</p>'
                         '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" width="40" height="40">'
                         '</main></body></html>')
        problems = check_page(page, touch=True)
    finally:
        ctx.close()
    assert any(p.startswith("target button") for p in problems)
    assert sum(p.startswith("contrast p") for p in problems) == 2
    assert any(p.startswith("axe image-alt") for p in problems)
