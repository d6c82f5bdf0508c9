"""Fixtures for the screens' tests: short SSE timings, staff logins on the test client, and real
headless Chromium (Debian's /usr/bin/chromium, one browser per session, one context per test)
that records CSP violations, console errors and page errors and fails the test on any of them."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-output" / "screens"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')

# Reports every CSP violation to the test through a binding that survives navigations.
CSP_RECORDER = """
document.addEventListener('securitypolicyviolation', (e) => {
  window.reportCspViolation({directive: e.violatedDirective, blocked: e.blockedURI,
                             sample: e.sample, source: e.sourceFile, page: location.pathname});
});
"""


@pytest.fixture
def app_config(app_config):
    """Short heartbeats and stream lifetimes, so streams notice closed browsers quickly."""
    return {**app_config, "SSE_HEARTBEAT_S": 0.5, "SSE_MAX_AGE_S": 120}


def csrf_from(html: str) -> str:
    """The CSRF token of a rendered form."""
    match = CSRF_FIELD.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)


class Staff:
    """A test client logged in through the real login form."""

    def __init__(self, client, staff: str = "demo", pin: str = "0000"):
        """Log in; remember the session's CSRF token."""
        self.client = client
        page = client.get("/staff/login")
        response = client.post("/staff/login", data={"staff": staff, "pin": pin, "csrf_token": csrf_from(page.get_data(as_text=True))})
        assert response.status_code == 303, response.get_data(as_text=True)
        with client.session_transaction() as session:
            self.token = session["csrf"]

    def post(self, path: str, data: dict | None = None, htmx: bool = True):
        """A state-changing request as the console's htmx sends it."""
        headers = {"X-CSRF-Token": self.token}
        if htmx:
            headers["HX-Request"] = "true"
        return self.client.post(path, data=data or {}, headers=headers)

    def get(self, path: str, htmx: bool = False):
        """A page (or an htmx fragment)."""
        return self.client.get(path, headers={"HX-Request": "true"} if htmx else {})


@pytest.fixture
def attendant(client):
    """The demo attendant, logged in."""
    return Staff(client)


@pytest.fixture
def supervisor(app):
    """The demo supervisor, logged in on a client of its own."""
    return Staff(app.test_client(), "super", "9999")


# -- browser ---------------------------------------------------------------------------------------

class Watch:
    """What went wrong in the browser during one test."""

    def __init__(self):
        """Nothing yet."""
        self.csp: list[dict] = []
        self.console: list[str] = []
        self.page_errors: list[str] = []
        self.allowed_console: list[str] = []
        self.failed: list[str] = []

    def allow_console(self, pattern: str) -> None:
        """Expect console errors matching `pattern` (e.g. a 401 the test provokes on purpose)."""
        self.allowed_console.append(pattern)

    def unexpected_console(self) -> list[str]:
        """Console errors nobody expected."""
        return [m for m in self.console if not any(re.search(p, m) for p in self.allowed_console)]


@pytest.fixture
def watch():
    """Collected CSP violations and errors of the test's browser context."""
    return Watch()


@pytest.fixture
def context(browser, watch):
    """A fresh browser context (touch screen, kiosk portrait size) that reports CSP violations."""
    ctx = browser.new_context(viewport={"width": 1080, "height": 1920}, has_touch=True)
    ctx.expose_binding("reportCspViolation", lambda source, data: watch.csp.append(data))
    ctx.add_init_script(CSP_RECORDER)
    ctx.on("page", lambda page: _watch_page(page, watch))
    yield ctx
    ctx.close()
    assert watch.csp == [], f"CSP violations: {watch.csp}"
    assert watch.page_errors == [], f"page errors: {watch.page_errors}"
    assert watch.unexpected_console() == [], f"console errors: {watch.unexpected_console()}; failed requests: {watch.failed}"


def _is_error(message) -> bool:
    """A console error, or a warning that reports one (Chromium logs a bad header, such as an
    unknown Permissions-Policy feature, as a warning starting "Error with")."""
    return message.type == "error" or (message.type == "warning" and message.text.startswith("Error with"))


def _watch_page(page, watch: Watch) -> None:
    """Record a page's console errors and uncaught exceptions."""
    page.on("console", lambda message: _is_error(message) and watch.console.append(message.text))
    page.on("pageerror", lambda error: watch.page_errors.append(str(error)))
    page.on("response", lambda response: response.status >= 400 and watch.failed.append(
        f"{response.status} {response.request.method} {response.url}"))


@pytest.fixture
def page(context):
    """A page in the test's context."""
    return context.new_page()


def screenshot(page, name: str) -> Path:
    """Save a screenshot for reviewers under test-output/screens/ (not committed)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
