"""The citizen touchscreen through the test client: language, service, ticket; fragments for htmx;
documents per service; the on-screen QR; refusals shown in the citizen's language; reset."""
from __future__ import annotations

import re

import pytest
import zxingcpp
from PIL import Image, ImageDraw

from kiosk import services
from kiosk.domain.errors import ServiceUnavailable
from kiosk.web.kiosk import qr_svg
from tests.web.conftest import csrf_from


def choose(client, lang: str) -> str:
    """Tap a language on the idle screen; returns the new visit's CSRF token."""
    token = csrf_from(client.get("/kiosk").get_data(as_text=True))
    response = client.post("/kiosk/lang", data={"lang": lang, "csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"] == "/kiosk/services"
    return csrf_from(client.get("/kiosk/services").get_data(as_text=True))


@pytest.mark.parametrize("lang,html_lang,direction", [("ar", "ar-IQ", "rtl"), ("ckb", "ckb", "rtl"), ("en", "en", "ltr")])
def test_three_taps_to_a_ticket(client, centre, lang, html_lang, direction):
    """Language, service, "take a ticket": the ticket is stored in the citizen's language."""
    token = choose(client, lang)
    services_page = client.get("/kiosk/services").get_data(as_text=True)
    assert f'<html lang="{html_lang}" dir="{direction}"' in services_page
    assert services_page.count('class="tile"') == 3
    detail = client.get("/kiosk/services/B").get_data(as_text=True)
    for document in services.get_service(centre, "B")["documents"]:
        assert document[lang] in detail
    response = client.post("/kiosk/tickets", data={"service": "B", "priority": "normal", "csrf_token": token})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    stored = centre.store.all("tickets")
    assert len(stored) == 1 and stored[0]["lang"] == lang and stored[0]["service"] == "B"
    assert f'<bdi dir="ltr">{stored[0]["number"]}</bdi>' in html
    assert "<svg class=\"qr\"" in html


def test_priority_button_issues_a_priority_ticket(client, centre):
    """The pictogram buttons take the ticket in one tap with the priority class."""
    token = choose(client, "en")
    page = client.get("/kiosk/services/A").get_data(as_text=True)
    for label in ("I am over 65", "I have a disability", "I am pregnant"):
        assert label in page
    client.post("/kiosk/tickets", data={"service": "A", "priority": "pregnancy", "csrf_token": token})
    assert centre.store.all("tickets")[0]["priority"] == "pregnancy"


def test_htmx_gets_the_block_and_plain_requests_the_page(client):
    """`Vary: HX-Request`; fragments for htmx; full pages for boosted and history-restore requests."""
    choose(client, "en")
    fragment = client.get("/kiosk/services/A", headers={"HX-Request": "true"})
    assert "<html" not in fragment.get_data(as_text=True)
    assert 'data-step="service"' in fragment.get_data(as_text=True)
    assert "HX-Request" in fragment.headers["Vary"]
    for headers in ({}, {"HX-Request": "true", "HX-Boosted": "true"},
                    {"HX-Request": "true", "HX-History-Restore-Request": "true"}):
        full = client.get("/kiosk/services/A", headers=headers)
        assert full.get_data(as_text=True).startswith("<!doctype html>")
        assert "HX-Request" in full.headers["Vary"]


def test_language_switch_is_a_full_page_load_for_htmx(client):
    """htmx would keep <html lang dir> of the old language: the answer is HX-Redirect."""
    token = csrf_from(client.get("/kiosk").get_data(as_text=True))
    response = client.post("/kiosk/lang", data={"lang": "en"}, headers={"HX-Request": "true", "X-CSRF-Token": token})
    assert response.status_code == 204 and response.headers["HX-Redirect"] == "/kiosk/services"


def test_without_a_language_the_citizen_starts_at_the_beginning(client):
    """Service screens need a chosen language (e.g. after the idle reset)."""
    response = client.get("/kiosk/services")
    assert response.status_code == 303 and response.headers["Location"] == "/kiosk"


def test_the_qr_on_screen_decodes_to_the_ticket(client, centre):
    """The SVG QR (our compact path) scans back to the ticket's QR text."""
    token = choose(client, "ar")
    html = client.post("/kiosk/tickets", data={"service": "A", "csrf_token": token}).get_data(as_text=True)
    ticket = centre.store.all("tickets")[0]
    svg = re.search(r'<svg class="qr".*?</svg>', html, re.S).group(0)
    assert _decode_svg_qr(svg) == services.get_ticket(centre, ticket["id"])["qr"]


def _decode_svg_qr(svg: str) -> str:
    """Rasterise our QR path (runs of dark modules) and decode it with zxing-cpp."""
    size = int(re.search(r'viewBox="0 0 (\d+) \d+"', svg).group(1))
    scale = 8
    image = Image.new("L", (size * scale, size * scale), 255)
    draw = ImageDraw.Draw(image)
    for x, y, width in re.findall(r"M(\d+) (\d+)h(\d+)", svg):
        x, y, width = int(x), int(y), int(width)
        draw.rectangle([x * scale, y * scale, (x + width) * scale - 1, (y + 1) * scale - 1], fill=0)
    results = zxingcpp.read_barcodes(image)
    assert results, "the QR did not decode"
    return results[0].text


def test_qr_svg_is_compact():
    """A ticket's QR stays small enough for the 10 KB per-step budget."""
    svg = qr_svg("http://kiosk.local/t/01JF2A7Q0W5V9ZKX3N8M4T6R2B")
    assert len(svg) < 3500
    assert "style=" not in svg


def test_daily_cap_reached_is_explained_in_the_citizens_language(client, centre):
    """A service at its limit stays on the screen as unavailable, with the reason and when it
    takes tickets again (the next working day's opening), in the citizen's language; a tap that
    races the limit is answered with the same explanation, never as a connection problem."""
    services.update_service(centre, "A", by="test", daily_cap=1)
    services.issue_ticket(centre, service="A")
    token = choose(client, "ckb")
    tiles = client.get("/kiosk/services").get_data(as_text=True)
    assert 'data-service="A" data-unavailable="daily_cap"' in tiles
    assert "هەموو بلیتەکانی ئەمڕۆی ئەم خزمەتگوزارییە دابەش کران" in tiles
    # the frozen clock is Sunday 22 November 2026 (Baghdad); Monday is a working day, opening 08:00
    assert "دووبارە بلیت دەدرێت لە دووشەممە، ٢٣ی تشرینی دووەمی ٢٠٢٦، ٠٨:٠٠" in tiles
    response = client.post("/kiosk/tickets", data={"service": "A", "csrf_token": token})
    assert response.status_code == 409
    assert 'id="unavailable" data-unavailable="daily_cap"' in response.get_data(as_text=True)
    fragment = client.post("/kiosk/tickets", data={"service": "A", "csrf_token": token}, headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "هەموو بلیتەکانی ئەمڕۆی" in fragment.get_data(as_text=True)
    assert centre.store.count("tickets") == 1


def test_service_switched_off_is_shown_unavailable(client, centre):
    """A service switched off stays visible but cannot be taken; switched off for the day, it
    says when it opens again and takes tickets by itself from then on."""
    services.update_service(centre, "C", by="test", active=False)
    token = choose(client, "en")
    tiles = client.get("/kiosk/services").get_data(as_text=True)
    assert 'data-service="C" data-unavailable="off"' in tiles and "not taking tickets at the moment" in tiles
    assert 'href="/kiosk/services/C"' not in tiles
    detail = client.get("/kiosk/services/C").get_data(as_text=True)
    assert "not taking tickets at the moment" in detail and 'name="priority"' not in detail
    assert client.post("/kiosk/tickets", data={"service": "C", "csrf_token": token}).status_code == 409
    services.update_service(centre, "C", by="test", active=False, until_next_day=True)
    tiles = client.get("/kiosk/services").get_data(as_text=True)
    assert "closed for the rest of today" in tiles and "Tickets again from Monday 23 November 2026, 08:00" in tiles


def test_service_closed_for_the_day_reopens_by_itself(client, centre, clock):
    """Closed until the next working day: the next morning it issues tickets again, unasked."""
    services.update_service(centre, "B", by="test", active=False, until_next_day=True)
    with pytest.raises(ServiceUnavailable):
        services.issue_ticket(centre, service="B")
    clock.advance(hours=24)
    assert services.issue_ticket(centre, service="B")["number"] == "B-001"


def test_unknown_service_and_priority(client):
    """A made-up service is a 404 page in the citizen's language; a made-up priority is refused."""
    token = choose(client, "ar")
    missing = client.get("/kiosk/services/ZZ")
    assert missing.status_code == 404 and "هذه الصفحة أو هذا العنصر غير موجود." in missing.get_data(as_text=True)
    assert client.post("/kiosk/tickets", data={"service": "ZZ", "csrf_token": token}).status_code == 404
    bad = client.post("/kiosk/tickets", data={"service": "A", "priority": "vip", "csrf_token": token})
    assert bad.status_code == 422


def test_rate_limit_per_terminal(app, client, centre):
    """A stuck button cannot empty the day's numbers."""
    app.config["TICKET_RATE_PER_MIN"] = 2
    token = choose(client, "en")
    codes = [client.post("/kiosk/tickets", data={"service": "C", "csrf_token": token}).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    assert centre.store.count("tickets") == 2


def test_reset_forgets_the_visit(client):
    """Done / idle reset: the session is emptied and the language screen comes back."""
    token = choose(client, "en")
    client.post("/kiosk/tickets", data={"service": "A", "csrf_token": token})
    response = client.post("/kiosk/reset", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"] == "/kiosk"
    with client.session_transaction() as session:
        assert dict(session) == {}


def test_pages_are_not_stored_by_the_browser(client):
    """No citizen page may come back from a cache."""
    choose(client, "en")
    assert client.get("/kiosk/services").headers["Cache-Control"] == "no-store"


def test_idle_countdown_is_configured(app, client):
    """The countdown reads its time from IDLE_RESET_S and its text from the catalogue."""
    app.config["IDLE_RESET_S"] = 45
    choose(client, "en")
    page = client.get("/kiosk/services").get_data(as_text=True)
    assert 'data-idle-s="45"' in page and "Back to the start in: {s}" in page
