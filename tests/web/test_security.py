"""Security of the screens: headers on every answer, no inline script or style, CSRF on every state
change (the JSON API is exempt and keeps working), roles and staff session expiry."""
from __future__ import annotations

import re

import pytest

from kiosk.web.screens import CSP
from tests.web.conftest import Staff, csrf_from

PAGES = ["/", "/kiosk", "/display", "/staff/login", "/kiosk/nothing-here"]


def test_csp_is_strict():
    """The policy allows our own scripts and styles only, and no framing."""
    directives = dict(part.strip().split(" ", 1) for part in CSP.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in CSP


@pytest.mark.parametrize("path", PAGES + ["/api/v1/services", "/static/css/screens.css", "/events/nothing"])
def test_security_headers_on_every_answer(client, path):
    """Pages, errors, the API and static files all carry the same headers."""
    with client.get(path) as response:
        headers = response.headers
    assert headers["Content-Security-Policy"] == CSP
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert "camera=()" in headers["Permissions-Policy"]
    assert headers["X-Frame-Options"] == "DENY"


def _all_screens(app, client, centre) -> dict[str, str]:
    """The HTML of every screen, for markup checks."""
    from kiosk import services
    services.issue_ticket(centre, service="A", priority="elderly", lang="en")
    pages = {path: client.get(path).get_data(as_text=True) for path in PAGES}
    token = csrf_from(pages["/kiosk"])
    client.post("/kiosk/lang", data={"lang": "ar", "csrf_token": token})
    pages["/kiosk/services"] = client.get("/kiosk/services").get_data(as_text=True)
    pages["/kiosk/services/A"] = client.get("/kiosk/services/A").get_data(as_text=True)
    pages["ticket"] = client.post("/kiosk/tickets", data={"service": "A", "csrf_token": token}).get_data(as_text=True)
    staff = Staff(app.test_client(), "super", "9999")
    pages["/counter"] = staff.get("/counter").get_data(as_text=True)
    staff.post("/counter/open", {"counter": "1"}, htmx=False)
    staff.post("/counter/1/call-next")
    for path in ("/counter/1", "/admin"):
        pages[path] = staff.get(path).get_data(as_text=True)
    return pages


def test_no_inline_script_or_style_anywhere(app, client, centre):
    """Every screen's markup works under script-src/style-src 'self': no inline code at all."""
    for path, html in _all_screens(app, client, centre).items():
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), f"inline script on {path}"
        assert "<style" not in html, f"style element on {path}"
        assert not re.search(r"\sstyle=", html), f"style attribute on {path}"
        assert not re.search(r"\son[a-z]+=", html), f"event handler attribute on {path}"
        assert not re.search(r"\shx-on", html), f"hx-on needs eval on {path}"
        assert '"allowEval":false' in html.replace("&#34;", '"'), f"htmx not hardened on {path}"


def test_state_change_without_token_is_refused(client):
    """No token, a wrong token or another origin: 400 and nothing changes."""
    assert client.post("/kiosk/lang", data={"lang": "en"}).status_code == 400
    page = client.get("/kiosk").get_data(as_text=True)
    token = csrf_from(page)
    refused = client.post("/kiosk/lang", data={"lang": "en", "csrf_token": token[:-2] + "xx"})
    assert refused.status_code == 400
    assert 'data-error-code="csrf_failed"' in refused.get_data(as_text=True)
    foreign = client.post("/kiosk/lang", data={"lang": "en", "csrf_token": token},
                          headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 400
    with client.session_transaction() as session:
        assert "lang" not in session


def test_token_accepted_as_field_or_header(client):
    """Plain forms send the field, htmx sends the header."""
    token = csrf_from(client.get("/kiosk").get_data(as_text=True))
    assert client.post("/kiosk/lang", data={"lang": "en", "csrf_token": token}).status_code == 303
    token = csrf_from(client.get("/kiosk").get_data(as_text=True))  # a new visit, a new token
    response = client.post("/kiosk/lang", data={"lang": "ckb"},
                           headers={"X-CSRF-Token": token, "HX-Request": "true"})
    assert response.status_code == 204
    assert response.headers["HX-Redirect"] == "/kiosk/services"


def test_json_api_needs_no_csrf_token(client):
    """The API authenticates with bearer tokens and stays usable by other systems."""
    assert client.post("/api/v1/tickets", json={"service": "A"}).status_code == 201
    token = client.post("/api/v1/auth/token", json={"staff": "demo", "pin": "0000"}).get_json()["token"]
    called = client.post("/api/v1/counters/1/call-next", headers={"Authorization": f"Bearer {token}"})
    assert called.status_code == 200


def test_token_lasts_the_whole_shift_and_changes_at_login(client, clock):
    """A console left open for hours keeps working; a token from before login is useless after."""
    before = csrf_from(client.get("/staff/login").get_data(as_text=True))
    staff = Staff(client)
    assert staff.token != before
    assert client.post("/kiosk/lang", data={"lang": "en", "csrf_token": before}).status_code == 400
    for _ in range(10):  # ten hours of work, with activity every 15 minutes
        for _ in range(4):
            clock.advance(minutes=15)
            assert staff.post("/counter/open", {"counter": "2"}).status_code == 204
    assert staff.post("/counter/2/status", {"status": "break"}).status_code == 200


def test_citizen_and_display_never_reach_staff_routes(client):
    """Without a staff login every staff route sends to the login page (htmx: HX-Redirect)."""
    for path in ("/counter", "/counter/1", "/admin", "/counter/1/waiting"):
        response = client.get(path)
        assert response.status_code == 303 and response.headers["Location"].startswith("/staff/login")
    token = csrf_from(client.get("/kiosk").get_data(as_text=True))
    htmx = client.post("/counter/1/call-next", headers={"X-CSRF-Token": token, "HX-Request": "true"})
    assert htmx.status_code == 401
    assert htmx.headers["HX-Redirect"].startswith("/staff/login")
    stream = client.get("/events/staff", headers={"Accept": "text/event-stream"})
    assert stream.status_code == 401


def test_roles(app, attendant, supervisor):
    """Attendants serve at counters; only supervisors reach the supervisor view."""
    assert attendant.get("/admin").status_code == 403
    assert attendant.get("/counter").status_code == 200
    assert supervisor.get("/admin").status_code == 200
    assert supervisor.get("/counter").status_code == 200


def test_wrong_pin_and_safe_next(client):
    """A wrong PIN is refused without saying which part was wrong; `next` must be a local path."""
    page = client.get("/staff/login?next=//evil.example/x").get_data(as_text=True)
    token = csrf_from(page)
    wrong = client.post("/staff/login", data={"staff": "demo", "pin": "1234", "csrf_token": token})
    assert wrong.status_code == 401
    assert "الاسم أو الرمز السري غير صحيح." in wrong.get_data(as_text=True)  # default language: Arabic
    ok = client.post("/staff/login", data={"staff": "demo", "pin": "٠٠٠٠", "next": "//evil.example/x",
                                           "csrf_token": token})
    assert ok.status_code == 303
    assert ok.headers["Location"] == "/counter"


def test_staff_session_expires_after_idle_time_and_htmx_follows(app, attendant, clock):
    """Live refreshes are not activity; after STAFF_IDLE_MIN without a click the next htmx request
    is answered with HX-Redirect to the login page (never a swapped-in login form)."""
    idle = app.config["STAFF_IDLE_MIN"]
    attendant.post("/counter/open", {"counter": "1"})
    clock.advance(minutes=idle - 1)
    assert attendant.get("/counter/1/waiting", htmx=True).status_code == 200
    clock.advance(minutes=2)
    expired = attendant.get("/counter/1/waiting", htmx=True)
    assert expired.status_code == 401
    assert expired.headers["HX-Redirect"].startswith("/staff/login")
    assert "expired=1" in expired.headers["HX-Redirect"]
    with attendant.client.session_transaction() as session:
        assert "staff" not in session


def test_an_expired_session_says_so_whichever_request_of_the_screen_comes_first(app, attendant, clock):
    """The console's live stream may reconnect after the idle time before the attendant clicks: it
    is refused (and ends the session), and the click then still lands on "your session expired"."""
    attendant.post("/counter/open", {"counter": "1"})
    clock.advance(minutes=app.config["STAFF_IDLE_MIN"] + 1)
    stream = attendant.client.get("/events/staff", headers={"Accept": "text/event-stream"})
    assert stream.status_code == 401
    click = attendant.post("/counter/1/call-next")
    assert click.status_code == 401 and "expired=1" in click.headers["HX-Redirect"]
    refresh = attendant.get("/counter/1/waiting", htmx=True)
    assert "expired=1" in refresh.headers["HX-Redirect"], "every request of the screen says it, until a login"
    page = attendant.client.get("/staff/login?expired=1")
    assert page.status_code == 200
    attendant.client.post("/staff/login", data={"staff": "demo", "pin": "0000",
                                                "csrf_token": csrf_from(page.get_data(as_text=True))})
    with attendant.client.session_transaction() as session:
        assert "staff_expired" not in session and "sid" in session


def test_activity_keeps_the_session(app, attendant, clock):
    """A click within the idle time extends the session."""
    idle = app.config["STAFF_IDLE_MIN"]
    attendant.post("/counter/open", {"counter": "1"})
    for _ in range(3):
        clock.advance(minutes=idle - 1)
        assert attendant.post("/counter/1/status", {"status": "open"}).status_code == 200


def test_changed_pin_ends_the_session(attendant, centre):
    """Changing a PIN (e.g. after it leaked) logs that person out everywhere."""
    from kiosk import services
    services.set_staff(centre, "demo", pin="4321", role="attendant")
    assert attendant.get("/counter").status_code == 303
