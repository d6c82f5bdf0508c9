"""Operator sign-in at central: per-name and per-address back-off shared through the database, the
same refusal (and time) for unknown names, and unlocking from the pages or the command line."""
from __future__ import annotations

import base64
import re
import statistics
import time

from kiosk.domain import throttle

RULE = throttle.ACCOUNT
PASSWORD = "correct horse battery"


def _auth(name: str = "ana", password: str = PASSWORD) -> dict:
    """Basic authentication header."""
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


def _get(client, name: str, password: str, address: str, path: str = "/"):
    """A page request from a given client address."""
    return client.get(path, headers=_auth(name, password), environ_base={"REMOTE_ADDR": address})


def test_ten_wrong_passwords_from_many_addresses_lock_the_name(central_app, ops, server_clock):
    """The audit got 60 wrong passwords through in 19 s: now the name backs off after 5."""
    ops.cli("add-operator", "ana", "--password-stdin", input=PASSWORD + "\n")
    client = central_app.test_client()
    codes = [_get(client, "ana", f"wrong password {n}", f"10.0.0.{n}").status_code for n in range(10)]
    assert codes == [401] * RULE.free + [429] * (10 - RULE.free)
    right = _get(client, "ana", PASSWORD, "10.0.1.1")
    assert right.status_code == 429 and "WWW-Authenticate" not in right.headers
    wait = int(right.headers["Retry-After"])
    assert 0 < wait <= RULE.base_s
    server_clock.advance(seconds=wait)
    assert _get(client, "ana", PASSWORD, "10.0.1.1").status_code == 200


def test_an_unknown_name_is_refused_and_locked_like_a_known_one(central_app, ops):
    """Same codes, same order, whether or not the operator exists."""
    ops.cli("add-operator", "ana", "--password-stdin", input=PASSWORD + "\n")
    client = central_app.test_client()
    known = [_get(client, "ana", "wrong password!", "10.1.0.1").status_code for _ in range(RULE.free + 1)]
    unknown = [_get(client, "bob", "wrong password!", "10.1.0.2").status_code for _ in range(RULE.free + 1)]
    assert known == unknown == [401] * RULE.free + [429]


def test_unknown_names_take_as_long_to_refuse_as_known_ones(central_app, ops):
    """The audit measured the same leak as at the kiosk: known names were slow, unknown ones fast."""
    ops.cli("add-operator", "ana", "--password-stdin", input=PASSWORD + "\n")
    client = central_app.test_client()
    _get(client, "nobody", "x", "10.2.9.9")  # the dummy hash is made once
    known, unknown = [], []
    for n in range(4):
        for name, times in (("ana", known), (f"nobody{n}", unknown)):
            start = time.perf_counter()
            assert _get(client, name, "wrong password!", f"10.2.{n}.{len(times)}").status_code == 401
            times.append(time.perf_counter() - start)
    ratio = statistics.median(unknown) / statistics.median(known)
    assert 0.5 < ratio < 2, (known, unknown)


def test_one_address_guessing_names_is_slowed_down(central_app, ops):
    """Names tried from one address count together; another address is not affected."""
    ops.cli("add-operator", "ana", "--password-stdin", input=PASSWORD + "\n")
    client = central_app.test_client()
    free = throttle.ADDRESS.free
    codes = [_get(client, f"name{n}", "wrong password!", "172.16.5.5").status_code for n in range(free + 1)]
    assert codes == [401] * free + [429]
    assert _get(client, "ana", PASSWORD, "172.16.5.5").status_code == 429
    assert _get(client, "ana", PASSWORD, "172.16.5.6").status_code == 200


def test_another_operator_sees_and_lifts_the_lock(central_app, ops):
    """The locked-sign-ins page lists names and addresses; unlocking needs the form token."""
    for name in ("ana", "omar"):
        ops.cli("add-operator", name, "--password-stdin", input=PASSWORD + "\n")
    client = central_app.test_client()
    for n in range(RULE.free):
        _get(client, "ana", "wrong password!", f"10.3.0.{n}")
    page = _get(client, "omar", PASSWORD, "10.3.1.1", "/operators/locks").get_data(as_text=True)
    assert 'data-lock="account:ana"' in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    forged = client.post("/operators/locks", data={"kind": "account", "key": "ana"}, headers=_auth("omar"),
                         environ_base={"REMOTE_ADDR": "10.3.1.1"})
    assert forged.status_code == 400
    done = client.post("/operators/locks", data={"kind": "account", "key": "ana", "csrf_token": token},
                       headers=_auth("omar"), environ_base={"REMOTE_ADDR": "10.3.1.1"})
    assert done.status_code == 303
    assert _get(client, "ana", PASSWORD, "10.3.0.9").status_code == 200


def test_the_command_line_lists_and_unlocks(central_app, ops):
    """From the server, when no operator can sign in."""
    ops.cli("add-operator", "ana", "--password-stdin", input=PASSWORD + "\n")
    client = central_app.test_client()
    for n in range(RULE.free):
        _get(client, "ana", "wrong password!", f"10.4.0.{n}")
    assert "account  ana" in ops.cli("locked")
    assert "ana may sign in again" in ops.cli("unlock", "ana")
    assert "nothing is locked" in ops.cli("locked")
    assert _get(client, "ana", PASSWORD, "10.4.1.1").status_code == 200
