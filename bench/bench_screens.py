"""Screens benchmark: bytes on the wire for the citizen screen, and hall-display latency.

    .venv/bin/python bench/bench_screens.py [--calls 50]

Runs the centre app under its production server (hypercorn) on a loopback port (fresh data directory, demo centre) and
drives Debian's Chromium headless through Playwright.

1. Citizen screen: bytes transferred (as encoded on the wire, from the DevTools protocol) for the
   first load of the idle screen in an empty browser cache, then for each step of taking a ticket
   (language, service, ticket) and the reset. Baseline in the same run: the decoded bytes the page
   used for the same step (cache hits included), so the ratio shows what compression and caching
   save. Budgets: 250 KB first load, 10 KB per step.
2. Display latency: from the moment the call-next API answer reaches the browser to the called
   number appearing in the display's DOM (SSE event -> htmx refresh of the board), median and p95
   over N calls. Baseline in the same run: the API round trip itself. Budget: p95 under 300 ms.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required"]
FIRST_LOAD_BUDGET = 250 * 1024
STEP_BUDGET = 10 * 1024
P95_BUDGET_MS = 300.0


class Traffic:
    """Encoded and decoded bytes of every response, from the DevTools protocol."""

    def __init__(self, page, context):
        """Listen on the page's network events."""
        self.cdp = context.new_cdp_session(page)
        self.encoded: dict[str, int] = {}
        self.decoded: dict[str, int] = {}
        self.urls: dict[str, str] = {}
        self.cdp.on("Network.responseReceived", self._response)
        self.cdp.on("Network.dataReceived", self._data)
        self.cdp.on("Network.loadingFinished", self._finished)
        self.cdp.send("Network.enable")

    def _response(self, event):
        """Remember which URL a request id belongs to."""
        self.urls[event["requestId"]] = event["response"]["url"]

    def _data(self, event):
        """Decoded body bytes."""
        self.decoded[event["requestId"]] = self.decoded.get(event["requestId"], 0) + event["dataLength"]

    def _finished(self, event):
        """Encoded bytes on the wire (headers included)."""
        self.encoded[event["requestId"]] = int(event["encodedDataLength"])

    def take(self) -> tuple[int, int, list[str]]:
        """Bytes since the last call: (encoded, decoded, urls)."""
        encoded, decoded = sum(self.encoded.values()), sum(self.decoded.values())
        urls = sorted({self.urls.get(k, "?").split("?")[0].rsplit("/", 1)[-1] for k in self.encoded})
        self.encoded.clear()
        self.decoded.clear()
        return encoded, decoded, urls


def citizen_bytes(browser, base: str, lang: str) -> list[tuple[str, int, int, list[str]]]:
    """Bytes per step of one citizen's visit, starting from an empty browser cache."""
    context = browser.new_context(viewport={"width": 1080, "height": 1920}, has_touch=True)
    page = context.new_page()
    traffic = Traffic(page, context)
    steps = []

    def settle():
        """Let the page finish loading (fonts included) before counting."""
        page.wait_for_load_state("networkidle")
        page.wait_for_function("() => document.fonts.status === 'loaded'")

    page.goto(f"{base}/kiosk")
    settle()
    steps.append(("first load (idle screen)", *traffic.take()))
    page.locator(f".language-buttons button[value={lang}]").tap()
    page.wait_for_selector("[data-step=services]")
    settle()
    steps.append((f"tap language ({lang})", *traffic.take()))
    page.locator(".tile[data-service=A]").tap()
    page.wait_for_selector("[data-step=service]")
    settle()
    steps.append(("tap service", *traffic.take()))
    page.locator("button[name=priority][value=normal]").tap()
    page.wait_for_selector("[data-step=ticket]")
    settle()
    steps.append(("tap take a ticket", *traffic.take()))
    page.locator("#done").tap()
    page.wait_for_selector("[data-step=language]")
    settle()
    steps.append(("done (reset)", *traffic.take()))
    context.close()
    return steps


LATENCY_JS = """async (token) => {
  const t0 = performance.now();
  const response = await fetch('/api/v1/counters/1/call-next', {method: 'POST', headers: {Authorization: 'Bearer ' + token}});
  const answered = performance.now();
  const number = (await response.json()).ticket.number;
  return await new Promise((resolve) => {
    const shown = () => { const el = document.getElementById('newest'); return el && el.dataset.number === number; };
    if (shown()) { resolve([performance.now() - answered, answered - t0]); return; }
    const observer = new MutationObserver(() => {
      if (shown()) { observer.disconnect(); resolve([performance.now() - answered, answered - t0]); }
    });
    observer.observe(document.getElementById('board'), {childList: true, subtree: true, attributes: true});
  });
}"""


def display_latency(browser, base: str, token: str, calls: int) -> tuple[list[float], list[float]]:
    """(DOM latency after the API answer, API round trip) in ms for each call."""
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    page = context.new_page()
    page.goto(f"{base}/display")
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(500)
    latencies, round_trips = [], []
    for _ in range(calls):
        latency, round_trip = page.evaluate(LATENCY_JS, token)
        latencies.append(latency)
        round_trips.append(round_trip)
        page.wait_for_timeout(50)
    context.close()
    return latencies, round_trips


def p95(values: list[float]) -> float:
    """95th percentile."""
    return statistics.quantiles(values, n=20)[-1]


def main(argv: list[str]) -> int:
    """Run both measurements and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args(argv)

    import requests
    from playwright.sync_api import sync_playwright

    from kiosk import create_app, services
    from kiosk.web.server import ServerThread

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"DATA_DIR": tmp, "SECRET_KEY": "bench", "TICKET_RATE_PER_MIN": 0, "PRINTER_URL": "off",
                          "SSE_HEARTBEAT_S": 1})
        centre = app.extensions["kiosk"].centre
        with app.app_context():
            services.load_demo_data(centre)
            for i in range(args.calls):
                services.issue_ticket(centre, service="ABC"[i % 3], lang="en")
        server = ServerThread(app)
        try:
            token = requests.post(f"{server.url}/api/v1/auth/token", json={"staff": "demo", "pin": "0000"},
                                  timeout=10).json()["token"]
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                try:
                    visits = {lang: citizen_bytes(browser, server.url, lang) for lang in ("ar", "ckb", "en")}
                    latencies, round_trips = display_latency(browser, server.url, token, args.calls)
                finally:
                    browser.close()
        finally:
            server.stop()
            app.extensions["kiosk"].close()

    print("Citizen screen: bytes on the wire per step; baseline = decoded bytes the page used (cache hits included)")
    print(f"{'lang':<5} {'step':<28} {'wire B':>8} {'decoded B':>10} {'wire/decoded':>12} {'of budget':>9}  files")
    for lang, steps in visits.items():
        for i, (name, encoded, decoded, urls) in enumerate(steps):
            budget = FIRST_LOAD_BUDGET if i == 0 else STEP_BUDGET
            ratio = encoded / decoded if decoded else 0.0
            print(f"{lang:<5} {name:<28} {encoded:>8} {decoded:>10} {ratio:>12.2f} {encoded / budget:>9.2f}  {', '.join(urls)}")
    print()
    lat_med, lat_p95 = statistics.median(latencies), p95(latencies)
    rt_med, rt_p95 = statistics.median(round_trips), p95(round_trips)
    print(f"Display latency over {len(latencies)} calls (ms): API answer -> number in the display's DOM")
    print(f"  display update  median {lat_med:7.1f}  p95 {lat_p95:7.1f}  (budget p95 {P95_BUDGET_MS:.0f}: {lat_p95 / P95_BUDGET_MS:.2f} of it)")
    print(f"  API round trip  median {rt_med:7.1f}  p95 {rt_p95:7.1f}  (baseline)")
    print(f"  ratio display/API: median {lat_med / rt_med:.2f}x  p95 {lat_p95 / rt_p95:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
