"""Regression tests for what the security audit of the centre app found: each failed on the code
as audited (open redirects through `next`, 500s on a wrong method and on deeply nested JSON)."""
from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.web.auth import safe_next
from tests.web.conftest import Staff, csrf_from

HOST = "kiosk.local"
SNEAKY_NEXT = ["/\t/evil.example", "/\n/evil.example", "/\r\n/evil.example", "/ /evil.example",
               "/\\evil.example", "//evil.example", "///evil.example", "/\x00/evil.example",
               "https://evil.example/", "/\u3000/evil.example", "\t//evil.example"]


def browser_reads(target: str) -> str:
    """Where a browser goes for a Location value: it strips tabs, newlines and surrounding control
    characters and spaces, and reads backslashes as slashes (WHATWG URL parsing)."""
    cleaned = target.strip("".join(map(chr, range(0x21)))).replace("\t", "").replace("\n", "").replace("\r", "")
    return urljoin(f"http://{HOST}/", cleaned.replace("\\", "/"))


@given(st.text(alphabet=st.sampled_from("/\\\t\n\r :.?#@%ae\x00\x0b\u3000\u200e"), max_size=12))
def test_an_accepted_next_never_leaves_the_host(target):
    """Whatever `safe_next` accepts stays on this host as a browser reads it."""
    if safe_next(target):
        assert urlsplit(browser_reads(target)).netloc == HOST


@pytest.mark.parametrize("target", SNEAKY_NEXT)
def test_login_next_cannot_leave_the_host(client, target):
    """After login a `next` that a browser would read as another host sends to the role's home."""
    token = csrf_from(client.get("/staff/login").get_data(as_text=True))
    response = client.post("/staff/login", data={"staff": "demo", "pin": "0000", "next": target, "csrf_token": token})
    assert response.status_code == 303
    assert response.headers["Location"] == "/counter"


@pytest.mark.parametrize("target", SNEAKY_NEXT + ["/\r\nSet-Cookie: x=1"])
def test_language_switch_next_cannot_leave_the_host_or_break_the_answer(client, target):
    """The staff language switch: the same rule, and CR/LF in `next` is refused instead of a 500."""
    token = csrf_from(client.get("/staff/login").get_data(as_text=True))
    response = client.post("/lang", data={"lang": "en", "next": target, "csrf_token": token})
    assert response.status_code == 303
    assert response.headers["Location"] == "/"


def test_a_local_next_still_works(client):
    """A normal path with a query comes back after login."""
    token = csrf_from(client.get("/staff/login").get_data(as_text=True))
    response = client.post("/staff/login", data={"staff": "demo", "pin": "0000", "next": "/counter/1?x=1",
                                                 "csrf_token": token})
    assert response.headers["Location"] == "/counter/1?x=1"


@pytest.mark.parametrize("method,path", [("PUT", "/kiosk"), ("DELETE", "/staff/login"), ("PATCH", "/display"),
                                         ("PUT", "/counter/1/call-next"), ("DELETE", "/lang")])
def test_a_wrong_method_on_a_page_is_a_405_page(attendant, method, path):
    """A wrong method is answered 405 with the Allow header and the error page, never a 500."""
    response = attendant.client.open(path, method=method, headers={"X-CSRF-Token": attendant.token})
    assert response.status_code == 405
    assert response.headers["Allow"]
    assert 'data-error-code="method_not_allowed"' in response.get_data(as_text=True)


def test_every_page_route_answers_a_wrong_method_with_405(app, attendant):
    """The same for every HTML route of the app (the audit found 32 of them answering 500)."""
    checked = 0
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(("/api/", "/static")) or "PUT" in rule.methods:
            continue
        path = rule.rule
        for name in rule.arguments:
            path = path.replace(f"<{name}>", "1").replace(f"<path:{name}>", "1")
        response = attendant.client.open(path, method="PUT", headers={"X-CSRF-Token": attendant.token})
        assert response.status_code in (404, 405), (path, response.status_code)
        checked += 1
    assert checked >= 20


DEEP = [b"[" * 1500 + b"]" * 1500, b'{"a":' * 1500 + b"1" + b"}" * 1500]


@pytest.mark.parametrize("path", ["/api/v1/tickets", "/api/v1/auth/token"])
@pytest.mark.parametrize("body", DEEP, ids=["array", "object"])
def test_deeply_nested_json_is_a_400(client, path, body):
    """A few KB of nested brackets is a malformed request (400), not a crash."""
    response = client.post(path, data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "bad_request"


def test_staff_login_still_refuses_wrong_pins(client):
    """The login page's refusal is untouched by the `next` rule."""
    staff = Staff(client)
    assert staff.get("/counter").status_code == 200
