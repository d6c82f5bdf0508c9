"""Follow your ticket on your phone, end to end: the printed ticket's QR code, read back from the
printer's ESC/POS bytes by an independent decoder (zbarimg), opens the centre's page over the
address the citizens' Wi-Fi reaches it by (a name resolved to a second loopback address, as a
local DNS name would be); the page shows the ticket and changes by itself when it is called.
A transfer prints a new slip with the old number on it.

The phone is Debian's Chromium with a phone's screen (390x844) and its own host resolver rule.
"""
from __future__ import annotations

import shutil
import subprocess
import time

import pytest
import requests
from PIL import ImageChops

from hardware import render, ticket_document
from kiosk import create_app, services
from kiosk.slips import ticket_slip
from tests.conftest import CHROMIUM, CHROMIUM_ARGS, browser_env
from tests.hardware.doubles.escpos_decode import decode
from tests.hardware.doubles.printer import PrinterDouble
from tests.web.a11y import check_page
from tests.web.conftest import CSP_RECORDER, Watch, _watch_page, screenshot

pytestmark = pytest.mark.browser

LAN_HOST = "127.0.0.2"         # the centre machine's address on the citizens' Wi-Fi, here a loopback one
PUBLIC_NAME = "kiosk.local"    # the name the local DNS gives it (docs/phone.md)
PHONE = {"width": 390, "height": 844}
LANGS = ("ar", "ckb", "en")


@pytest.fixture
def printer_double():
    """A network printer on loopback that keeps every job's bytes."""
    double = PrinterDouble()
    yield double
    double.stop()


@pytest.fixture
def lan(app_config, clock, printer_double):
    """The centre with a printer whose QR codes are images (as a printer without native QR prints
    them), served on the LAN address; PUBLIC_URL names it as the citizens' phones reach it."""
    from kiosk.web.server import ServerThread
    application = create_app({**app_config, "PRINTER_URL": printer_double.url + "&qr=image",
                              "SSE_HEARTBEAT_S": 0.5}, clock=clock)
    centre = application.extensions["kiosk"].centre
    with application.app_context():
        services.load_demo_data(centre)
    server = ServerThread(application, host=LAN_HOST)
    application.config["PUBLIC_URL"] = f"http://{PUBLIC_NAME}:{server.port}"
    yield application, centre, server
    server.stop()
    application.extensions["kiosk"].close()


@pytest.fixture
def phone(browser):
    """A phone: Chromium resolving the centre's name to its LAN address, a phone-sized touch
    screen, failing the test on any CSP violation, console error or page error."""
    watch = Watch()
    chromium = browser.browser_type.launch(
        executable_path=CHROMIUM, env=browser_env(),
        args=CHROMIUM_ARGS + [f"--host-resolver-rules=MAP {PUBLIC_NAME} {LAN_HOST}"])
    context = chromium.new_context(viewport=PHONE, has_touch=True, is_mobile=True, device_scale_factor=2)
    context.expose_binding("reportCspViolation", lambda source, data: watch.csp.append(data))
    context.add_init_script(CSP_RECORDER)
    context.on("page", lambda page: _watch_page(page, watch))
    requested: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    page = context.new_page()
    yield page, watch, requested
    context.close()
    chromium.close()
    assert watch.csp == [], f"CSP violations: {watch.csp}"
    assert watch.page_errors == [], f"page errors: {watch.page_errors}"
    assert watch.unexpected_console() == [], f"console errors: {watch.unexpected_console()}"


def zbar(image, path) -> str:
    """What zbarimg (ZBar, a decoder independent of the code that drew the QR) reads in `image`."""
    assert shutil.which("zbarimg"), "zbarimg is needed: Debian's zbar-tools (./run test installs it)"
    image.convert("L").save(path)
    result = subprocess.run(["zbarimg", "--quiet", "--raw", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"zbarimg read no code: {result.stderr}"
    return result.stdout.strip()


def printed_qr(printer_double, count: int, tmp_path) -> tuple[str, object]:
    """The URL in the QR code of printed job number `count` (1-based), and the job's raster."""
    assert printer_double.wait_for_jobs(count, timeout=30)
    job = decode(printer_double.jobs[count - 1])
    assert job.cuts and not job.qr_codes, "the QR is part of the raster image"
    raster = job.raster()
    return zbar(raster, tmp_path / f"job-{count}.png"), raster


def settled(page) -> None:
    """Fonts loaded and no htmx request in flight (before reading or photographing the page)."""
    page.wait_for_function("() => document.fonts.status === 'loaded' && !document.querySelector('.htmx-request')")


def wait_until(page, script: str, seconds: float) -> None:
    """Poll the page until `script` is true, failing after `seconds` (a behaviour deadline)."""
    deadline = time.monotonic() + seconds
    while not page.evaluate(script):
        assert time.monotonic() < deadline, f"not true within {seconds} s: {script}"
        page.wait_for_timeout(50)


def test_printed_qr_opens_the_live_ticket_page_on_a_phone(lan, printer_double, phone, tmp_path):
    """Take a ticket at the kiosk; its printed QR holds PUBLIC_URL/t/<id>, which the centre answers
    over the LAN address; on the phone the page shows the ticket and, when an attendant calls it,
    "go to counter 2" within two seconds, by itself; it loads nothing from elsewhere and weighs
    under 150 KB."""
    application, centre, server = lan
    page, watch, requested = phone
    ahead = services.issue_ticket(centre, service="A", lang="en")
    taken = requests.post(f"{server.url}/api/v1/tickets", json={"service": "A", "lang": "en", "priority": "elderly"},
                          timeout=10).json()["ticket"]
    url, _raster = printed_qr(printer_double, 2, tmp_path)
    assert url == f"http://{PUBLIC_NAME}:{server.port}/t/{taken['id']}"
    answer = requests.get(f"{server.url}/t/{taken['id']}", headers={"Host": f"{PUBLIC_NAME}:{server.port}"}, timeout=10)
    assert answer.status_code == 200 and taken["number"] in answer.text
    assert "Set-Cookie" not in answer.headers, "following a ticket starts no session"

    page.goto(url)
    page.wait_for_function("() => window.htmx && document.querySelector('#follow [data-state=waiting]')")
    settled(page)
    assert page.inner_text("#ticket-number") == "A-002"
    assert "Over 65" in page.inner_text("#priority-mark")
    assert "You are next" in page.inner_text("#ticket-ahead"), "a priority ticket goes before the normal one"
    assert ahead["number"] not in page.content(), "nothing about anybody else"
    page.wait_for_timeout(300)  # the stream is open
    screenshot(page, "phone-waiting-en")
    page.evaluate("() => { window.sameDocument = true; }")

    services.call_ticket(centre, taken["id"], counter="2", by="demo")
    wait_until(page, "() => !!document.querySelector('#follow [data-state=called]')", 2.0)
    assert "Go to counter 2 now" in page.inner_text("#called")
    assert page.evaluate("() => window.sameDocument === true"), "changed in place, not by a reload"
    assert page.evaluate("() => window.kioskFollow.alerts") == 1
    settled(page)
    screenshot(page, "phone-called-en")

    origin = f"http://{PUBLIC_NAME}:{server.port}/"
    assert [u for u in requested if not u.startswith(origin)] == [], "nothing from outside"
    sizes = page.evaluate("""() => performance.getEntriesByType('navigation').concat(
        performance.getEntriesByType('resource')).map(e => [e.name, e.encodedBodySize])""")
    assert sum(size for _, size in sizes) < 150 * 1024, f"the page and what it loads weigh too much: {sizes}"


def test_transfer_prints_a_new_slip_and_the_phone_follows(lan, printer_double, phone, tmp_path):
    """A transfer prints a slip with "your new number B-001 (was A-001)" whose QR follows the new
    ticket; the old ticket's page points to it; the hall display shows old -> new."""
    application, centre, server = lan
    page, _watch, _requested = phone
    old = services.issue_ticket(centre, service="A", lang="en")
    services.call_ticket(centre, old["id"], counter="1", by="demo")
    new = services.transfer(centre, old["id"], service="B", by="demo")
    url, raster = printed_qr(printer_double, 2, tmp_path)
    assert url == new["qr"] and new["number"] == "B-001"
    with application.app_context():
        expected = ticket_slip(new, services.get_service(centre, "B"), centre_names=application.config["CENTRE_NAMES"],
                               tz=centre.tz)
    assert expected.transfer_text == "Your new number \u2066B-001\u2069 (was \u2066A-001\u2069)"
    assert ImageChops.logical_xor(raster, render(ticket_document(expected), 576).image).getbbox() is None, \
        "the printed slip is the transfer slip, line for line"
    board = requests.get(f"{server.url}/display", timeout=10).text
    assert 'data-was="A-001" data-number="B-001"' in board

    page.goto(f"http://{PUBLIC_NAME}:{server.port}/t/{old['id']}")
    page.wait_for_selector("#moved-to")
    settled(page)
    assert "Your new number is B-001" in page.inner_text("#follow")
    screenshot(page, "phone-moved-en")
    page.click("#moved-to")
    page.wait_for_selector("#follow [data-state=waiting]")
    assert page.inner_text("#ticket-number") == "B-001" and "(was A-001)" in page.inner_text("#was")


@pytest.mark.parametrize("lang", LANGS)
def test_phone_page_in_each_language(lan, phone, lang):
    """The page is in the ticket's language (RTL for Arabic and Sorani, native digits), switches
    language by a plain link, and fits the phone's width; screenshots of each state."""
    application, centre, server = lan
    page, _watch, _requested = phone
    waiting = services.issue_ticket(centre, service="B", lang=lang, priority="disability")
    called = services.issue_ticket(centre, service="C", lang=lang)
    services.call_ticket(centre, called["id"], counter="3", by="demo")
    base = f"http://{PUBLIC_NAME}:{server.port}"
    for ticket, state in ((waiting, "waiting"), (called, "called")):
        page.goto(f"{base}/t/{ticket['id']}")
        page.wait_for_selector(f"#follow [data-state={state}]")
        settled(page)
        html_lang, direction = page.evaluate("() => [document.documentElement.lang, document.documentElement.dir]")
        assert (html_lang, direction) == ({"ar": "ar-IQ", "ckb": "ckb", "en": "en"}[lang],
                                          "ltr" if lang == "en" else "rtl")
        assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"], "no sideways scrolling"
        screenshot(page, f"phone-{state}-{lang}")
        problems = check_page(page, touch=True)
        assert problems == [], f"phone-{state}-{lang}: " + "\n".join(problems)
    other = next(code for code in LANGS if code != lang)
    page.click(f".phone-langs a[href$='lang={other}']")
    page.wait_for_selector("#follow [data-state=called]")
    assert page.evaluate("() => document.documentElement.lang") == {"ar": "ar-IQ", "ckb": "ckb", "en": "en"}[other]


def test_phone_page_without_javascript_refreshes_itself(lan, browser):
    """With scripting off the page still shows the ticket, refreshes itself and offers a link."""
    application, centre, server = lan
    ticket = services.issue_ticket(centre, service="A", lang="en")
    context = browser.new_context(java_script_enabled=False, viewport=PHONE)
    try:
        page = context.new_page()
        page.goto(f"{server.url}/t/{ticket['id']}")
        assert page.inner_text("#ticket-number") == "A-001"
        assert page.locator('meta[http-equiv="refresh"]').get_attribute("content") == "30"
        assert page.locator("noscript a.button").get_attribute("href") == f"/t/{ticket['id']}?lang=en"
    finally:
        context.close()
