"""Login throttling per account and per address (kiosk.domain.throttle): wrong PINs lock a name
for longer and longer whatever address they come from, unknown names are refused exactly like known
ones (same rule, same time), and the supervisor sees and lifts locks."""
from __future__ import annotations

import statistics
import time

import pytest

from kiosk import services
from kiosk.domain import throttle
from kiosk.domain.errors import Unauthorized
from tests.web.conftest import csrf_from

RULE = throttle.ACCOUNT


def _login(client, staff: str, pin: str, address: str):
    """The screens' login form from a given client address."""
    page = client.get("/staff/login", environ_base={"REMOTE_ADDR": address})
    token = csrf_from(page.get_data(as_text=True))
    return client.post("/staff/login", data={"staff": staff, "pin": pin, "csrf_token": token},
                       environ_base={"REMOTE_ADDR": address})


def _token(client, staff: str, pin: str, address: str):
    """The API login from a given client address."""
    return client.post("/api/v1/auth/token", json={"staff": staff, "pin": pin}, environ_base={"REMOTE_ADDR": address})


# -- the rule ---------------------------------------------------------------------------------------

def test_a_few_mistakes_are_free_then_each_failure_doubles_the_lock():
    """5 failures in the window are free; the 5th locks for a minute; later failures 2, 4, 8 ... 60."""
    state, now = None, 1000.0
    for _ in range(RULE.free - 1):
        state = throttle.after_failure(state, RULE, now)
        assert throttle.wait_s(state, now) == 0
        now += 10
    waits = []
    for _ in range(9):
        state = throttle.after_failure(state, RULE, now)
        waits.append(throttle.wait_s(state, now))
        now += throttle.wait_s(state, now)
    assert waits == [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]


def test_failures_spread_over_more_than_the_window_stay_free():
    """Someone who mistypes now and then is never locked."""
    state, now = None, 0.0
    for _ in range(20):
        state = throttle.after_failure(state, RULE, now)
        assert throttle.wait_s(state, now) == 0
        now += RULE.window_s / (RULE.free - 1) + 1


def test_the_escalation_is_forgotten_only_after_a_long_quiet():
    """An hour's lock must not hand out a fresh allowance: only `forget_s` of quiet does."""
    state, now = None, 0.0
    for _ in range(RULE.free + 3):
        state = throttle.after_failure(state, RULE, now)
        now += throttle.wait_s(state, now) + 1
    now += RULE.window_s * 2
    assert throttle.wait_s(throttle.after_failure(state, RULE, now), now) > 0
    now += RULE.forget_s + 1
    assert throttle.wait_s(throttle.after_failure(state, RULE, now), now) == 0


# -- the kiosk ----------------------------------------------------------------------------------------

def test_ten_wrong_pins_from_many_addresses_keep_the_right_pin_out_for_the_back_off(app, client, clock):
    """The audit's finding: the limit was per address only. Now the account itself backs off."""
    codes = []
    for n in range(10):
        address = f"10.0.{n}.{n + 1}"
        response = (_login if n % 2 else _token)(client, "demo", f"{1000 + n}", address)
        codes.append(response.status_code)
    assert codes[:RULE.free] == [401] * RULE.free and set(codes[RULE.free:]) == {429}
    right = _login(client, "demo", "0000", "10.9.9.9")
    assert right.status_code == 429
    wait = int(right.headers["Retry-After"])
    assert 0 < wait <= RULE.base_s
    assert "Try again in" in right.get_data(as_text=True) or "حاول" in right.get_data(as_text=True)
    api = _token(client, "demo", "0000", "10.9.9.8")
    assert api.status_code == 429 and api.get_json()["error"]["code"] == "rate_limited"
    assert int(api.headers["Retry-After"]) == wait
    clock.advance(seconds=wait)
    assert _token(client, "demo", "0000", "10.9.9.8").status_code == 200


def test_seventy_wrong_pins_from_one_address_meet_a_429(client):
    """From one address, guessing one account stops after the allowance (the audit got 70 through)."""
    codes = [_token(client, "demo", f"{1000 + n}", "192.168.1.50").status_code for n in range(70)]
    assert codes.count(401) == RULE.free and codes.count(429) == 70 - RULE.free


def test_an_unknown_name_is_locked_exactly_like_a_known_one(client):
    """The same codes in the same order: a lock never says whether a name exists."""
    known = [_token(client, "demo", "1111", "10.1.0.1").status_code for _ in range(RULE.free + 2)]
    unknown = [_token(client, "nobody", "1111", "10.1.0.2").status_code for _ in range(RULE.free + 2)]
    assert known == unknown == [401] * RULE.free + [429, 429]


def test_one_address_trying_many_names_is_slowed_down(client):
    """Guessing across names is limited per address; another address is unaffected."""
    rule = throttle.ADDRESS
    codes = [_token(client, f"name{n}", "1111", "172.16.0.9").status_code for n in range(rule.free + 1)]
    assert codes[:rule.free] == [401] * rule.free and codes[rule.free] == 429
    assert _token(client, "demo", "0000", "172.16.0.9").status_code == 429
    assert _token(client, "demo", "0000", "172.16.0.10").status_code == 200


def test_a_right_pin_clears_the_account_but_not_the_address(app, client):
    """Logging in oneself does not reset what an address has guessed at other names."""
    for n in range(RULE.free - 1):
        _token(client, "demo", "1111", "10.2.0.1")
    assert _token(client, "demo", "0000", "10.2.0.1").status_code == 200
    for n in range(RULE.free - 1):
        assert _token(client, "demo", "1111", "10.2.0.2").status_code == 401
    logins = app.extensions["kiosk"].logins
    assert logins.wait_s("demo", "10.3.0.1") == 0


def test_the_supervisor_sees_locks_and_lifts_them(app, centre, client, supervisor):
    """Locked staff names, unknown names and addresses show on the supervisor view with an unlock."""
    for _ in range(RULE.free):
        _token(client, "demo", "1111", "10.4.0.1")
        _token(client, "ghost", "1111", "10.4.0.2")
    page = supervisor.get("/admin").get_data(as_text=True)
    row = page[page.index('data-staff="demo"'):]
    row = row[:row.index("</tr>")]
    assert 'data-action="unlock"' in row
    assert 'data-lock="account:ghost"' in page
    response = supervisor.post("/admin/locks", {"kind": "account", "key": "demo"})
    assert response.status_code == 200
    after = response.get_data(as_text=True)
    assert 'data-lock="account:ghost"' in after and 'data-action="unlock"' in after
    row = after[after.index('data-staff="demo"'):]
    assert 'data-action="unlock"' not in row[:row.index("</tr>")]
    assert _token(client, "demo", "0000", "10.4.0.3").status_code == 200
    unlocks = [e for e in centre.store.all("audit") if e["action"] == "login_unlock"]
    assert [(e["actor"], e["target"], e["detail"]) for e in unlocks] == [("super", "demo", {"kind": "account"})]
    assert supervisor.post("/admin/locks", {"kind": "account", "key": "demo"}).status_code == 200


def test_attendants_cannot_unlock(attendant):
    """Unlocking is the supervisor's."""
    assert attendant.post("/admin/locks", {"kind": "account", "key": "demo"}).status_code == 403


def _refusal_s(centre, staff_id: str) -> float:
    """How long one refusal of a wrong PIN takes (the use case, without throttling)."""
    start = time.perf_counter()
    with pytest.raises(Unauthorized):
        services.authenticate(centre, staff_id, "1234")
    return time.perf_counter() - start


def test_unknown_names_take_as_long_to_refuse_as_known_ones(centre):
    """The audit measured ~300-570 ms for a known name against ~3-12 ms for an unknown one."""
    _refusal_s(centre, "nobody")  # the dummy hash is made once
    known, unknown = [], []
    for _ in range(5):
        known.append(_refusal_s(centre, "demo"))
        unknown.append(_refusal_s(centre, "nobody"))
        unknown.append(_refusal_s(centre, ""))
    ratio = statistics.median(unknown) / statistics.median(known)
    assert 0.5 < ratio < 2, (known, unknown)
