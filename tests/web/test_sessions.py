"""Staff sessions live on the server: logout, "sign out everywhere", a PIN change and idle time end
them for every copy of the cookie or token; the cookie is SameSite=Strict, HttpOnly, and Secure
whenever the request came over HTTPS (directly or through a trusted proxy)."""
from __future__ import annotations

from kiosk import services
from tests.web.conftest import Staff, csrf_from


def _copy_cookie(source, target) -> None:
    """Give `target` the session cookie `source` holds (what a thief copies from a browser)."""
    cookie = source.get_cookie("session")
    assert cookie is not None
    target.set_cookie("session", cookie.value)


def test_a_copied_cookie_is_refused_after_logout(app, attendant):
    """The audit's finding: a cookie copied before logout opened staff pages after it."""
    thief = app.test_client()
    _copy_cookie(attendant.client, thief)
    assert thief.get("/counter").status_code == 200  # a copy works while the session lives...
    attendant.post("/staff/logout", htmx=False)
    for client in (thief, attendant.client):
        response = client.get("/counter")
        assert response.status_code == 303 and response.headers["Location"].startswith("/staff/login")
    # ...and the thief's copy stays dead even if the attendant logs in again
    Staff(attendant.client)
    assert thief.get("/counter").status_code == 303


def test_the_cookie_holds_no_staff_identity(app, attendant):
    """Only a random session id travels; the staff id, role and times are on the server."""
    serializer = app.session_interface.get_signing_serializer(app)
    data = serializer.loads(attendant.client.get_cookie("session").value)
    assert set(data) <= {"sid", "csrf", "lang", "counter"}
    assert "demo" not in str(data)


def test_a_session_kept_in_the_cookie_is_not_trusted(app, client):
    """A cookie in the old format (staff id and times in the signed cookie) opens nothing."""
    token = csrf_from(client.get("/staff/login").get_data(as_text=True))
    with client.session_transaction() as session:
        session.update({"staff": "super", "staff_role": "supervisor", "staff_seen_at": 1e12, "csrf": token})
    assert client.get("/admin").status_code == 303
    with client.session_transaction() as session:
        assert "staff" not in session


def test_supervisor_signs_someone_out_everywhere(app, centre, attendant, supervisor):
    """Every browser and API token of that person stops working; the audit log records who did it."""
    api = app.test_client()
    token = api.post("/api/v1/auth/token", json={"staff": "demo", "pin": "0000"}).get_json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    second = Staff(app.test_client())
    assert api.post("/api/v1/counters/1/call-next", headers=bearer).status_code == 204
    page = supervisor.get("/admin").get_data(as_text=True)
    assert 'data-staff="demo"' in page and "/admin/staff/demo/sign-out" in page
    assert attendant.post("/admin/staff/demo/sign-out").status_code == 403  # attendants cannot
    response = supervisor.post("/admin/staff/demo/sign-out")
    assert response.status_code == 200
    assert "demo is signed out everywhere." in response.get_data(as_text=True) or "demo" in response.get_data(as_text=True)
    for client in (attendant.client, second.client):
        assert client.get("/counter").status_code == 303
    assert api.post("/api/v1/counters/1/call-next", headers=bearer).status_code == 401
    assert supervisor.get("/admin").status_code == 200  # the supervisor's own session is untouched
    last = max(centre.store.all("audit"), key=lambda e: e["n"])
    assert (last["actor"], last["action"], last["target"]) == ("super", "sign_out_everywhere", "demo")
    assert last["detail"] == {"sessions": 3}


def test_signing_oneself_out_everywhere_ends_this_session_too(supervisor):
    """A supervisor who fears their PIN leaked ends their own sessions, this one included."""
    response = supervisor.post("/admin/staff/super/sign-out")
    assert response.headers["HX-Redirect"] == "/staff/login"
    assert supervisor.get("/admin").status_code == 303


def test_a_changed_pin_ends_sessions_and_tokens(app, centre, attendant):
    """A PIN changed here (or pulled from central) ends the person's sessions."""
    api = app.test_client()
    token = api.post("/api/v1/auth/token", json={"staff": "demo", "pin": "0000"}).get_json()["token"]
    services.set_staff(centre, "demo", pin="4321", role="attendant")
    assert attendant.get("/counter").status_code == 303
    assert api.post("/api/v1/counters/1/call-next", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_screen_sessions_end_after_sixteen_hours_whatever_the_activity(app, attendant, clock):
    """Activity keeps a session alive through a shift, but not for ever."""
    for _ in range(16 * 4):
        clock.advance(minutes=15)
        attendant.post("/counter/open", {"counter": "1"})
    clock.advance(minutes=15)
    assert attendant.get("/counter").status_code == 303


def test_session_cookie_flags_over_http(client):
    """SameSite=Strict and HttpOnly always; not Secure over plain HTTP (a LAN without TLS works)."""
    header = client.get("/staff/login").headers["Set-Cookie"]
    assert "SameSite=Strict" in header and "HttpOnly" in header
    assert "Secure" not in header


def test_session_cookie_is_secure_over_https(client):
    """A request that arrived over HTTPS gets a Secure cookie."""
    header = client.get("/staff/login", base_url="https://kiosk.local").headers["Set-Cookie"]
    assert "Secure" in header and "SameSite=Strict" in header


def test_forwarded_https_counts_only_behind_a_trusted_proxy(app_config, clock):
    """X-Forwarded-Proto makes the cookie Secure only when TRUSTED_PROXIES says a proxy is there;
    without one nobody can claim HTTPS or another address."""
    from kiosk import create_app
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "192.168.77.9"}
    direct = create_app(app_config, clock=clock).test_client()
    assert "Secure" not in direct.get("/staff/login", headers=forwarded).headers["Set-Cookie"]
    proxied_app = create_app({**app_config, "TRUSTED_PROXIES": 1}, clock=clock)
    proxied = proxied_app.test_client()
    assert "Secure" in proxied.get("/staff/login", headers=forwarded).headers["Set-Cookie"]
    with proxied_app.app_context():
        services.load_demo_data(proxied_app.extensions["kiosk"].centre)
    token = csrf_from(proxied.get("/staff/login", headers=forwarded).get_data(as_text=True))
    proxied.post("/staff/login", data={"staff": "demo", "pin": "0000", "csrf_token": token}, headers=forwarded)
    assert [r.address for r in proxied_app.extensions["kiosk"].sessions.active()] == ["192.168.77.9"]
