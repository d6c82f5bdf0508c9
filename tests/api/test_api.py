"""The JSON API over real HTTP (waitress on a loopback port), exactly as in docs/api.md."""
import concurrent.futures

import pytest
import requests


@pytest.fixture
def api(live_server):
    """A requests session bound to the live server's /api/v1."""
    session = requests.Session()
    base = live_server.url + "/api/v1"

    def call(method, path, **kwargs):
        kwargs.setdefault("timeout", 10)
        return session.request(method, base + path, **kwargs)
    yield call
    session.close()


@pytest.fixture
def auth(api):
    token = api("POST", "/auth/token", json={"staff": "demo", "pin": "0000"}).json()["token"]
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def super_auth(api):
    """The demo supervisor's token (supervisors may act on tickets of any counter)."""
    token = api("POST", "/auth/token", json={"staff": "super", "pin": "9999"}).json()["token"]
    return {"Authorization": f"Bearer {token}"}


def test_services_and_openapi(api):
    body = api("GET", "/services").json()
    assert [s["code"] for s in body["services"]] == ["A", "B", "C"]
    assert set(body["services"][0]["names"]) == {"ar", "ckb", "en"}
    spec = api("GET", "/openapi.json").json()
    assert spec["openapi"].startswith("3.") and "/tickets/{id}/{action}" in spec["paths"]


def test_services_say_whether_and_when_they_take_tickets(api, centre):
    """A service at its limit is not available, with the reason and when it reopens: the next
    working day (Monday, after the test clock's Sunday) at 08:00 Baghdad, 05:00 UTC."""
    from kiosk import services
    services.update_service(centre, "A", by="test", daily_cap=1)
    services.issue_ticket(centre, service="A")
    services.update_service(centre, "C", by="test", active=False)
    listed = {s["code"]: s for s in api("GET", "/services").json()["services"]}
    assert (listed["A"]["available"], listed["A"]["unavailable_reason"], listed["A"]["reopens_at"]) == \
        (False, "daily_cap", "2026-11-23T05:00:00.000Z")
    assert (listed["B"]["available"], listed["B"]["unavailable_reason"], listed["B"]["reopens_at"]) == (True, None, None)
    assert (listed["C"]["available"], listed["C"]["unavailable_reason"], listed["C"]["reopens_at"]) == (False, "off", None)


def test_ticket_lifecycle(api, auth):
    r = api("POST", "/tickets", json={"service": "A", "lang": "ckb"})
    assert r.status_code == 201 and r.headers["Location"].endswith(r.json()["ticket"]["id"])
    ticket = r.json()["ticket"]
    for key in ("id", "number", "service", "priority", "lang", "state", "issued_at", "ahead", "estimated_wait_s", "events"):
        assert key in ticket
    assert ticket["number"] == "A-001" and ticket["state"] == "waiting" and ticket["issued_at"].endswith("Z")
    assert api("GET", f"/tickets/{ticket['id']}").json()["ticket"]["number"] == "A-001"
    r = api("POST", "/counters/2/call-next", headers=auth)
    assert r.status_code == 200 and r.json()["ticket"]["counter"] == "2" and r.json()["reason"]
    display = api("GET", "/display").json()
    assert display["now_serving"][0]["number"] == "A-001" and display["now_serving"][0]["counter"] == "2"
    for action, state in (("recall", "called"), ("start", "serving"), ("finish", "done")):
        r = api("POST", f"/tickets/{ticket['id']}/{action}", headers=auth)
        assert r.status_code == 200 and r.json()["ticket"]["state"] == state
    assert api("POST", "/counters/2/call-next", headers=auth).status_code == 204


def test_hold_requeue_cancel_transfer_and_specific_call(api, auth, super_auth):
    t1 = api("POST", "/tickets", json={"service": "A"}).json()["ticket"]
    t2 = api("POST", "/tickets", json={"service": "A", "priority": "pregnancy"}).json()["ticket"]
    r = api("POST", f"/tickets/{t1['id']}/call", json={"counter": "3"}, headers=auth)
    assert r.json()["ticket"]["state"] == "called"
    assert api("POST", f"/tickets/{t1['id']}/hold", headers=auth).json()["ticket"]["state"] == "held"
    assert api("POST", f"/tickets/{t1['id']}/requeue", headers=auth).json()["ticket"]["state"] == "waiting"
    # waiting tickets belong to no counter: only a supervisor transfers or cancels them
    assert api("POST", f"/tickets/{t2['id']}/transfer", json={"service": "C"}, headers=auth).status_code == 403
    r = api("POST", f"/tickets/{t2['id']}/transfer", json={"service": "C"}, headers=super_auth)
    assert r.json()["ticket"]["number"] == "C-001" and r.json()["ticket"]["priority"] == "pregnancy"
    assert api("POST", f"/tickets/{t1['id']}/cancel", headers=auth).json()["error"]["code"] == "not_your_ticket"
    assert api("POST", f"/tickets/{t1['id']}/cancel", headers=super_auth).json()["ticket"]["state"] == "cancelled"
    r = api("POST", f"/tickets/{t1['id']}/no-show", headers=super_auth)
    assert r.status_code == 409 and r.json()["error"]["code"] == "invalid_transition"


BAD_TICKET_REQUESTS = [
    ({"json": {"service": "Z"}}, 422, "unknown_service"),
    ({"data": b"{not json", "headers": {"Content-Type": "application/json"}}, 400, "bad_request"),
    ({"data": "\u00ff".encode("latin-1")}, 400, "bad_request"),
    ({"json": ["A"]}, 400, "bad_request"),
    ({"json": {"service": 7}}, 400, "bad_request"),
    ({"json": {"service": "A", "priority": True}}, 400, "bad_request"),
    ({"json": {"service": "A", "colour": "red"}}, 422, "validation_failed"),
    ({"json": {}}, 422, "validation_failed"),
    ({"json": {"service": "A", "priority": "vip"}}, 422, "validation_failed"),
    ({"json": {"service": "A", "lang": "fr"}}, 422, "validation_failed"),
    ({"data": b'{"service": "' + b"A" * 70000 + b'"}'}, 413, "payload_too_large"),
]


@pytest.mark.parametrize("kwargs,status,code", BAD_TICKET_REQUESTS)
def test_bad_ticket_requests_get_documented_errors_and_change_nothing(api, centre, kwargs, status, code):
    seq = centre.store.seq
    r = api("POST", "/tickets", **kwargs)
    assert r.status_code == status
    body = r.json()
    assert body["error"]["code"] == code and body["error"]["message"]
    if code == "validation_failed":
        assert body["error"]["fields"]
    assert centre.store.seq == seq, "nothing stored changed"


def test_staff_endpoints_refuse_missing_bad_and_expired_tokens(api, auth, centre, clock, app):
    t = api("POST", "/tickets", json={"service": "A"}).json()["ticket"]
    seq = centre.store.seq
    for headers in ({}, {"Authorization": "Bearer nonsense"}, {"Authorization": "Basic abc"},
                    {"Authorization": auth["Authorization"][:-2] + "xx"}):
        r = api("POST", "/counters/1/call-next", headers=headers)
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    clock.advance(seconds=app.config["TOKEN_TTL_MIN"] * 60 + 5)
    r = api("POST", f"/tickets/{t['id']}/call", json={"counter": "1"}, headers=auth)
    assert r.status_code == 401
    assert centre.store.seq == seq
    r = api("POST", "/auth/token", json={"staff": "demo", "pin": "1234"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"


def test_changed_pin_revokes_tokens(api, auth, centre):
    from kiosk import services
    services.set_staff(centre, "demo", pin="4321", role="attendant")
    assert api("POST", "/counters/1/call-next", headers=auth).status_code == 401


def test_bad_staff_requests(api, auth, super_auth, centre):
    t = api("POST", "/tickets", json={"service": "A"}).json()["ticket"]
    seq = centre.store.seq
    r = api("POST", f"/tickets/{t['id']}/finish", headers=super_auth)
    assert (r.status_code, r.json()["error"]["code"]) == (409, "invalid_transition")
    r = api("POST", f"/tickets/{t['id']}/transfer", json={"service": "Q"}, headers=super_auth)
    assert (r.status_code, r.json()["error"]["code"]) == (422, "unknown_service")
    cases = [
        ("POST", f"/tickets/{t['id']}/finish", {}, 403, "not_your_ticket"),
        ("POST", f"/tickets/{t['id']}/explode", {}, 404, "not_found"),
        ("POST", "/tickets/01NOPE/start", {}, 404, "not_found"),
        ("POST", f"/tickets/{t['id']}/call", {"json": {}}, 422, "validation_failed"),
        ("POST", f"/tickets/{t['id']}/call", {"json": {"counter": "99"}}, 404, "not_found"),
        ("POST", f"/tickets/{t['id']}/call", {"json": {"counter": 1}}, 400, "bad_request"),
        ("POST", f"/tickets/{t['id']}/transfer", {"json": {"service": "Q"}}, 403, "not_your_ticket"),
        ("POST", "/counters/99/call-next", {}, 404, "not_found"),
        ("POST", "/counters/1/call-next", {"json": {"x": 1}}, 422, "validation_failed"),
        ("GET", "/counters/1/call-next", {}, 405, "method_not_allowed"),
        ("POST", "/auth/token", {"json": {"staff": "demo"}}, 422, "validation_failed"),
    ]
    for method, path, kwargs, status, code in cases:
        r = api(method, path, headers=auth, **kwargs)
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), path
    assert centre.store.seq == seq


def test_rate_limit(live_server, app):
    app.config["TICKET_RATE_PER_MIN"] = 5
    codes = [requests.post(live_server.url + "/api/v1/tickets", json={"service": "C"}, timeout=5).status_code
             for _ in range(7)]
    assert codes[:5] == [201] * 5 and codes[5:] == [429, 429]


@pytest.mark.slow
def test_concurrent_clients_get_unique_numbers(live_server, centre):
    """8 concurrent clients issue 2,000 tickets: unique numbers per service, no 5xx."""
    url = live_server.url + "/api/v1/tickets"

    def client(k):
        out = []
        with requests.Session() as s:
            for i in range(250):
                r = s.post(url, json={"service": "ABC"[(k + i) % 3]}, timeout=30)
                out.append((r.status_code, r.json()["ticket"]["number"] if r.status_code == 201 else r.text))
        return out
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = [x for chunk in pool.map(client, range(8)) for x in chunk]
    assert all(code == 201 for code, _ in results), [r for r in results if r[0] != 201][:3]
    numbers = [n for _, n in results]
    assert len(numbers) == 2000 and len(set(numbers)) == 2000
    for prefix in "ABC":
        mine = sorted(int(n.split("-")[1]) for n in numbers if n.startswith(prefix))
        assert mine == list(range(1, len(mine) + 1)), "no gaps, no repeats"
    assert centre.store.count("tickets") == 2000
