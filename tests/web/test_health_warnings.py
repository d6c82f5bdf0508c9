"""The supervisor screen's health warnings in Chromium (1366x768, ar/ckb/en): a nearly full disk
and a day without sync, shown in the page's language and direction, within the CSP."""
from __future__ import annotations

import datetime as dt

import pytest

from kiosk import create_app, services
from tests.web.a11y import check_page
from tests.web.conftest import screenshot
from tests.web.test_browser import LANGS, login, settle

pytestmark = pytest.mark.browser


@pytest.fixture
def app(app_config, clock):
    """The demo centre with a disk below the warning threshold and an enrolled kiosk whose last
    sync was 30 hours ago."""
    now = clock.now()

    def sync_status(data_dir):
        """What the sync agent would report."""
        return {"enrolled": True, "enrolled_at": (now - dt.timedelta(days=5)).isoformat(),
                "last_success_at": (now - dt.timedelta(hours=30)).isoformat(), "last_attempt_at": now.isoformat(),
                "last_error": "central unreachable", "pending": 420, "clock_offset_s": 1.5}

    application = create_app({**app_config, "DISK_WARN_PERCENT": 100, "DISK_FAIL_MB": 0}, clock=clock,
                             sync_status=sync_status)
    with application.app_context():
        services.load_demo_data(application.extensions["kiosk"].centre)
    yield application
    application.extensions["kiosk"].close()


@pytest.mark.parametrize("lang,html_lang,direction", LANGS)
def test_supervisor_sees_health_warnings(live_server, browser, watch, lang, html_lang, direction):
    """Both warnings at the top of the supervisor view, translated, right-to-left for ar/ckb."""
    from tests.web.conftest import CSP_RECORDER, _watch_page
    ctx = browser.new_context(viewport={"width": 1366, "height": 768})
    ctx.expose_binding("reportCspViolation", lambda source, data: watch.csp.append(data))
    ctx.add_init_script(CSP_RECORDER)
    ctx.on("page", lambda p: _watch_page(p, watch))
    try:
        page = ctx.new_page()
        login(page, live_server.url, "super", "9999", lang=lang)
        page.goto(f"{live_server.url}/admin")
        settle(page)
        assert page.evaluate("() => [document.documentElement.lang, document.documentElement.dir]") == [html_lang, direction]
        box = page.locator("#health-warnings")
        assert box.is_visible() and box.get_attribute("role") == "alert"
        texts = [box.locator(f"[data-warning={name}]").inner_text() for name in ("disk_low", "sync_failing")]
        assert all(texts)
        if lang != "en":
            assert not any("disk" in t or "ministry" in t for t in texts)  # translated, not English
        top = box.bounding_box()
        assert top["y"] < 400  # above the figures, seen without scrolling
        screenshot(page, f"admin-health-warnings-{lang}")
        assert check_page(page, touch=False) == []
    finally:
        ctx.close()
    assert watch.csp == [] and watch.page_errors == [] and watch.unexpected_console() == []
