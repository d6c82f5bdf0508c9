"""Every screen fits the device it runs on, in every language: what matters never needs scrolling.

Element boxes are measured in real Chromium at the sizes a centre uses: the citizen kiosk in
portrait 1080x1920, landscape 1920x1080 and on a 1280x800 tablet; the counter console at 1366x768;
the hall display at 1920x1080 and 1366x768. Each case leaves a viewport-sized screenshot (what a
person in front of the screen sees, not the whole page) in test-output/screens/fit-*.png.
"""
from __future__ import annotations

import pytest

from kiosk import services
from tests.web.conftest import SCREENSHOTS

pytestmark = pytest.mark.browser

LANGS = ["ar", "ckb", "en"]
OUTSIDE = """(selectors) => {
  const out = [];
  const w = window.innerWidth, h = window.innerHeight;
  for (const sel of selectors) {
    const found = document.querySelectorAll(sel);
    if (!found.length) { out.push(sel + ': missing'); continue; }
    found.forEach((el, i) => {
      const r = el.getBoundingClientRect();
      if (r.width === 0 || r.height === 0) out.push(`${sel}[${i}]: not shown`);
      else if (r.top < -0.5 || r.left < -0.5 || r.bottom > h + 0.5 || r.right > w + 0.5)
        out.push(`${sel}[${i}]: ${Math.round(r.left)},${Math.round(r.top)}-${Math.round(r.right)},${Math.round(r.bottom)} outside ${w}x${h}`);
    });
  }
  const doc = document.scrollingElement;
  if (doc.scrollWidth > w + 0.5) out.push(`page scrolls sideways: ${doc.scrollWidth} > ${w}`);
  return out;
}"""
OVERFLOWING = """(selectors) => selectors.flatMap(item => {
  const [sel, axis] = item.split('|');  // 'x': may scroll up and down (a long list), never sideways
  return [...document.querySelectorAll(sel)]
    .filter(el => el.scrollWidth > el.clientWidth + 1 || (axis !== 'x' && el.scrollHeight > el.clientHeight + 1))
    .map(el => `${sel}: content ${el.scrollWidth}x${el.scrollHeight} in ${el.clientWidth}x${el.clientHeight}`);
})"""


@pytest.fixture
def app_config(app_config):
    """With a printer, as in a centre: the ticket screen then also says to take the printed ticket."""
    return {**app_config, "PRINTER_URL": "preview://"}


def fits(page, name: str, selectors: list[str], *, contained: list[str] = ()) -> None:
    """Every element of `selectors` lies inside the viewport, and nothing in `contained` overflows
    (a selector ending in `|x` may scroll up and down, never sideways)."""
    page.wait_for_load_state("load")
    page.wait_for_function("() => document.fonts.status === 'loaded' && !document.querySelector('.htmx-request')")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"fit-{name}.png"))
    problems = page.evaluate(OUTSIDE, selectors) + page.evaluate(OVERFLOWING, list(contained))
    assert problems == [], f"{name}: " + "; ".join(problems)


def many_counters(centre, count: int) -> None:
    """A large centre's counters, each serving every service."""
    with centre.store.lock, centre.store.transaction():
        for n in range(1, count + 1):
            centre.store.put("counters", {"id": str(n), "names": {"ar": f"الشباك {n}", "ckb": f"پەنجەرەی {n}",
                                                                   "en": f"Counter {n}"},
                                          "services": ["A", "B", "C"], "active": True})


@pytest.mark.parametrize("width,height", [(1920, 1080), (1366, 768)])
def test_the_display_shows_every_current_call_without_scrolling(live_server, browser, centre, width, height):
    """14 counters calling or serving at once, people waiting: the newest call, every other current
    call and every service's waiting count are on the screen."""
    many_counters(centre, 14)
    tickets = [services.issue_ticket(centre, service="ABC"[i % 3], lang=LANGS[i % 3]) for i in range(40)]
    for n, ticket in enumerate(tickets[:14], start=1):
        services.call_ticket(centre, ticket["id"], counter=str(n), by="demo")
        if n % 2:
            services.act(centre, ticket["id"], "start", by="demo", counter=str(n))
    context = browser.new_context(viewport={"width": width, "height": height})
    try:
        page = context.new_page()
        page.goto(f"{live_server.url}/display")
        page.wait_for_selector("#newest")
        assert page.locator("#calls li").count() == 13
        fits(page, f"display-{width}x{height}", ["header h1", "#newest", "#calls li", "#waiting-counts li"])
    finally:
        context.close()


def take_a_ticket(page, base: str, lang: str) -> None:
    """The citizen's three taps, up to the ticket screen."""
    page.goto(f"{base}/kiosk")
    page.locator(f".language-buttons button[value={lang}]").tap()
    page.wait_for_selector("[data-step=services]")
    page.locator(".tile[data-service=A]").tap()
    page.wait_for_selector("[data-step=service]")
    page.locator("button[name=priority][value=elderly]").tap()
    page.wait_for_selector("[data-step=ticket]")


@pytest.mark.parametrize("width,height", [(1080, 1920), (1920, 1080), (1280, 800)])
@pytest.mark.parametrize("lang", LANGS)
def test_the_citizen_screens_fit(live_server, browser, centre, lang, width, height):
    """Services to choose, the service's documents and buttons, and the ticket with its countdown,
    "More time" and "Done" are all on the screen, on portrait, landscape and tablet screens."""
    for i in range(5):
        services.issue_ticket(centre, service="A")
    context = browser.new_context(viewport={"width": width, "height": height}, has_touch=True)
    try:
        page = context.new_page()
        page.goto(f"{live_server.url}/kiosk")
        fits(page, f"kiosk-language-{width}x{height}", [".language-buttons button"])
        page.locator(f".language-buttons button[value={lang}]").tap()
        page.wait_for_selector("[data-step=services]")
        fits(page, f"kiosk-services-{lang}-{width}x{height}", [".tile", "#kiosk-footer"])
        page.locator(".tile[data-service=A]").tap()
        page.wait_for_selector("[data-step=service]")
        fits(page, f"kiosk-service-{lang}-{width}x{height}",
             ["button[name=priority]", ".documents", "#kiosk-footer"])
        page.locator("button[name=priority][value=elderly]").tap()
        page.wait_for_selector("[data-step=ticket]")
        page.evaluate("() => { document.getElementById('idle').hidden = false; }")  # as when the countdown runs
        fits(page, f"kiosk-ticket-{lang}-{width}x{height}",
             ["#ticket-number", "#ticket-ahead", "svg.qr", "#done", "#idle-more", "#kiosk-footer"])
    finally:
        context.close()


@pytest.mark.parametrize("lang", LANGS)
def test_the_counter_console_fits_1366x768(live_server, browser, centre, lang):
    """With a ticket called and 60 waiting, every action for the current ticket is visible without
    scrolling, and the waiting list stays inside its card."""
    for i in range(60):
        services.issue_ticket(centre, service="ABC"[i % 3], priority="elderly" if i % 7 == 0 else "normal")
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    try:
        page = context.new_page()
        base = live_server.url
        page.goto(f"{base}/staff/login")
        page.fill("#staff", "demo")
        page.fill("#pin", "0000")
        page.click("button[type=submit].primary")
        page.wait_for_load_state("load")
        page.click(f".staff-header button[value={lang}]")
        page.wait_for_load_state("load")
        page.goto(f"{base}/counter")
        page.click("button[name=counter][value='1']")
        page.click("#call-next")
        page.wait_for_selector(".current-ticket")
        actions = ".current-ticket button"
        fits(page, f"counter-called-{lang}-1366x768", [".current-number", actions], contained=[".card:not(#waiting)", ".waiting-scroll|x"])
        page.click(".current-ticket button[data-action=start]")
        page.wait_for_selector(".current-ticket button[data-action=finish]")
        fits(page, f"counter-serving-{lang}-1366x768", [".current-number", actions], contained=[".card:not(#waiting)", ".waiting-scroll|x"])
    finally:
        context.close()
