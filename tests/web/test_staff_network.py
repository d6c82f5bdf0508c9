"""STAFF_NETWORKS: staff pages, the staff API and staff streams answer 403 outside the staff
networks (citizens' Wi-Fi), while the citizen screens, the display and the public API work from
anywhere."""
from __future__ import annotations

import pytest

from kiosk import create_app, services
from kiosk.config import ConfigError, load
from tests.web.conftest import Staff

HALL = {"REMOTE_ADDR": "203.0.113.5"}          # a phone on the centre's public Wi-Fi
STAFF_PAGES = ["/staff/login", "/counter", "/counter/1", "/admin", "/cases", "/cases/report"]


def test_staff_pages_api_and_streams_are_refused_outside(app, client, attendant):
    """A PIN, a cookie or a token is useless from the hall."""
    token = client.post("/api/v1/auth/token", json={"staff": "demo", "pin": "0000"}).get_json()["token"]
    for path in STAFF_PAGES:
        response = attendant.client.get(path, environ_base=HALL)
        assert response.status_code == 403, path
        assert 'data-error-code="outside_staff_network"' in response.get_data(as_text=True)
    stream = attendant.client.get("/events/staff", headers={"Accept": "text/event-stream"}, environ_base=HALL)
    assert stream.status_code == 403
    login = client.post("/staff/login", data={"staff": "demo", "pin": "0000"}, environ_base=HALL)
    assert login.status_code in (400, 403)  # the CSRF check may answer first; never a login
    for method, path, kwargs in (("POST", "/api/v1/auth/token", {"json": {"staff": "demo", "pin": "0000"}}),
                                 ("POST", "/api/v1/counters/1/call-next",
                                  {"headers": {"Authorization": f"Bearer {token}"}})):
        response = client.open(path, method=method, environ_base=HALL, **kwargs)
        assert response.status_code == 403
        assert response.get_json()["error"]["code"] == "outside_staff_network"


def test_citizen_screens_and_the_public_api_work_from_anywhere(client):
    """The hall's phones follow their tickets; the display and the kiosk work too."""
    for path in ("/kiosk", "/display", "/api/v1/services", "/api/v1/display", "/verify"):
        assert client.get(path, environ_base=HALL).status_code == 200, path
    created = client.post("/api/v1/tickets", json={"service": "A"}, environ_base=HALL)
    assert created.status_code == 201
    ticket = created.get_json()["ticket"]
    assert client.get(f"/api/v1/tickets/{ticket['id']}", environ_base=HALL).status_code == 200


def test_a_centre_lists_its_staff_lan_only(app_config, clock):
    """With the staff LAN listed, citizens' Wi-Fi (another private range) and loopback are out."""
    app = create_app({**app_config, "STAFF_NETWORKS": ["192.168.10.0/24"]}, clock=clock)
    with app.app_context():
        services.load_demo_data(app.extensions["kiosk"].centre)
    client = app.test_client()
    for address, status in (("192.168.10.7", 200), ("::ffff:192.168.10.7", 200), ("192.168.20.5", 403),
                            ("127.0.0.1", 403)):
        assert client.get("/staff/login", environ_base={"REMOTE_ADDR": address}).status_code == status, address


def test_the_setting_is_checked_at_start_up(tmp_path):
    """A typo stops the kiosk with the setting named; the environment takes a comma list."""
    with pytest.raises(ConfigError, match="STAFF_NETWORKS: 'banana'"):
        load(tmp_path, {"STAFF_NETWORKS": ["10.0.0.0/8", "banana"]}, environ={})
    config = load(tmp_path, None, environ={"KIOSK_STAFF_NETWORKS": "192.168.10.0/24, fd00::/8"})
    assert [str(n) for n in config["STAFF_NETWORKS"]] == ["192.168.10.0/24", "fd00::/8"]
    default = load(tmp_path, None, environ={})
    assert any(str(n) == "192.168.0.0/16" for n in default["STAFF_NETWORKS"])


def test_staff_work_as_before_on_the_staff_lan(app):
    """A login from the staff LAN (not loopback) reaches the console."""
    staff = Staff(app.test_client())
    assert staff.client.get("/counter", environ_base={"REMOTE_ADDR": "10.20.30.40"}).status_code == 200
