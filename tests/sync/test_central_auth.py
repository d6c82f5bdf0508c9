"""Enrolment and the signed-request rules of the sync API, on SQLite and on PostgreSQL."""
from __future__ import annotations

from sqlalchemy import func, select

from sync import protocol
from sync.central.models import Device, Nonce, Record
from tests.sync.support import SignedDevice, commit, put, ticket_doc

PUSH = f"{protocol.API_PREFIX}/push"
PULL = f"{protocol.API_PREFIX}/pull"


def _error(response) -> str:
    """The error code of a JSON error response (checking the shape on the way)."""
    body = response.get_json()
    assert set(body) == {"error"} and isinstance(body["error"]["message"], str), body
    return body["error"]["code"]


def _records(ops) -> int:
    """How many records central holds."""
    with ops.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(Record)).scalar_one()


# -- enrolment -------------------------------------------------------------------------------------

def test_enrolment_binds_the_device_key_and_the_code_works_once(central_app, ops, server_clock):
    ops.add_centre()
    code = ops.code(label="kiosk-1")
    dev = SignedDevice(central_app.test_client(), server_clock)
    response = dev.enrol(code, "ERB-01")
    assert response.status_code == 201
    body = response.get_json()
    assert body["centre"] == "ERB-01" and body["label"] == "kiosk-1" and body["device_id"] == dev.device_id
    assert body["key_id"] == protocol.key_id(protocol.public_key_text(dev.key))
    with ops.engine.connect() as conn:
        row = conn.execute(select(Device).where(Device.device_id == dev.device_id)).one()
    assert row.status == "active" and row.public_key == protocol.public_key_text(dev.key)
    other = SignedDevice(central_app.test_client(), server_clock)
    again = other.enrol(code, "ERB-01")
    assert again.status_code == 403 and _error(again) == "invalid_enrolment_code"


def test_expired_and_unknown_codes_are_refused_alike(central_app, ops, server_clock):
    ops.add_centre()
    code = ops.code()
    server_clock.advance(hours=25)
    dev = SignedDevice(central_app.test_client(), server_clock)
    expired = dev.enrol(code, "ERB-01")
    unknown = dev.enrol("AAAAA-BBBBB-CCCCC-DDDDD", "ERB-01")
    assert expired.status_code == unknown.status_code == 403
    assert expired.get_json() == unknown.get_json()


def test_a_code_for_another_centre_is_refused_and_stays_usable(central_app, ops, server_clock):
    ops.add_centre("ERB-01")
    ops.add_centre("SUL-01", "Sulaymaniyah centre")
    code = ops.code("SUL-01")
    dev = SignedDevice(central_app.test_client(), server_clock)
    wrong = dev.enrol(code, "ERB-01")
    assert wrong.status_code == 409 and _error(wrong) == "centre_mismatch"
    assert dev.enrol(code, "SUL-01").status_code == 201


def test_a_new_machine_under_the_same_label_replaces_the_old_one(central_app, ops, server_clock):
    ops.add_centre()
    old = SignedDevice(central_app.test_client(), server_clock)
    assert old.enrol(ops.code(label="kiosk-1"), "ERB-01").status_code == 201
    new = SignedDevice(central_app.test_client(), server_clock)
    assert new.enrol(ops.code(label="kiosk-1"), "ERB-01").status_code == 201
    refused = old.pull()
    assert refused.status_code == 403 and _error(refused) == "device_revoked"
    assert new.pull().status_code == 200


def test_enrolment_requests_are_validated(central_app, ops, server_clock):
    ops.add_centre()
    client = central_app.test_client()
    code = ops.code()
    good = {"v": 1, "code": code, "device_id": "01JD0000000000000000000000",
            "public_key": protocol.public_key_text(protocol.new_private_key()), "centre": "ERB-01"}
    for bad in ({**good, "public_key": "!" * 43}, {**good, "device_id": "not-a-ulid"},
                {**good, "extra": 1}, {**good, "v": 2}, {k: v for k, v in good.items() if k != "code"}):
        response = client.post(f"{protocol.API_PREFIX}/enroll", json=bad)
        assert response.status_code == 422, bad
        assert _error(response) == "validation_failed" and response.get_json()["error"]["fields"]
    assert client.post(f"{protocol.API_PREFIX}/enroll", data=b"{", content_type="application/json").status_code == 400
    assert client.post(f"{protocol.API_PREFIX}/enroll", json=good).status_code == 201


# -- signed requests -------------------------------------------------------------------------------

def test_a_signed_push_is_accepted(device, ops):
    response = device.push([commit(1, put("tickets", ticket_doc()))])
    assert response.status_code == 200
    assert response.get_json()["acked_seq"] == 1
    assert response.headers["Sync-Server-Time"].endswith("Z")
    assert _records(ops) == 1


def test_an_unsigned_request_is_refused(device, ops):
    body = device.push_body([commit(1, put("tickets", ticket_doc()))])
    response = device.send("POST", PUSH, body, {"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert response.status_code == 401 and _error(response) == "unauthorized"
    assert "not signed" in response.get_json()["error"]["message"]
    assert device.send("GET", PULL).status_code == 401
    assert _records(ops) == 0


def test_a_bad_signature_is_refused(device, ops):
    body = device.push_body([commit(1, put("tickets", ticket_doc()))])
    headers = device.headers("POST", PUSH, body)
    headers[protocol.H_SIGNATURE] = protocol.b64url(b"\x00" * 64)
    response = device.send("POST", PUSH, body, headers)
    assert response.status_code == 401 and _error(response) == "unauthorized"
    assert _records(ops) == 0


def test_a_replayed_request_is_refused_and_changes_nothing(device, ops):
    body = device.push_body([commit(1, put("tickets", ticket_doc()))])
    headers = device.headers("POST", PUSH, body)
    assert device.send("POST", PUSH, body, headers).status_code == 200
    replay = device.send("POST", PUSH, body, headers)
    assert replay.status_code == 401 and _error(replay) == "replayed_request"
    with ops.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Nonce)).scalar_one() == 1
    assert _records(ops) == 1


def test_a_stale_timestamp_is_refused_with_the_server_time(device, server_clock):
    body = device.push_body([commit(1, put("tickets", ticket_doc()))])
    now_s = int(server_clock.now().timestamp())
    late = device.send("POST", PUSH, body, device.headers("POST", PUSH, body, now_s=now_s - 301))
    early = device.send("POST", PUSH, body, device.headers("POST", PUSH, body, now_s=now_s + 301))
    for response in (late, early):
        assert response.status_code == 401 and _error(response) == "stale_timestamp"
        assert response.get_json()["error"]["server_time"] == protocol.utc_iso(server_clock.now())
    assert device.send("POST", PUSH, body, device.headers("POST", PUSH, body, now_s=now_s - 299)).status_code == 200


def test_a_swapped_body_is_refused(device, ops):
    signed = device.push_body([commit(1, put("tickets", ticket_doc()))])
    other = device.push_body([commit(1, put("tickets", ticket_doc()), put("audit", {"id": "x"}))])
    headers = device.headers("POST", PUSH, signed)
    swapped = device.send("POST", PUSH, other, headers)
    assert swapped.status_code == 401 and "Content-Digest" in swapped.get_json()["error"]["message"]
    headers[protocol.H_DIGEST] = protocol.content_digest(other)  # digest fixed up, signature now wrong
    assert device.send("POST", PUSH, other, headers).status_code == 401
    assert _records(ops) == 0


def test_a_signed_path_and_query_cannot_be_changed(device):
    path = f"{PULL}?since=5&limit=500"
    headers = device.headers("GET", path, b"")
    response = device.send("GET", f"{PULL}?since=0&limit=500", b"", headers)
    assert response.status_code == 401


def test_a_revoked_device_is_refused(device, ops):
    assert device.pull().status_code == 200
    assert device.device_id in ops.cli("revoke", device.device_id)
    response = device.push([commit(1, put("tickets", ticket_doc()))])
    assert response.status_code == 403 and _error(response) == "device_revoked"
    assert device.pull().status_code == 403


def test_another_devices_credential_does_not_work(central_app, device, ops, server_clock):
    intruder = SignedDevice(central_app.test_client(), server_clock)
    assert intruder.enrol(ops.code(label="kiosk-2"), "ERB-01").status_code == 201
    body = intruder.push_body([commit(1, put("tickets", ticket_doc()))], device_id=device.device_id)
    # signing with its own key while claiming the other device's id
    claimed = intruder.send("POST", PUSH, body, intruder.headers("POST", PUSH, body, device_id=device.device_id))
    assert claimed.status_code == 401 and _error(claimed) == "unauthorized"
    # authenticating as itself but pushing into the other device's journal
    own = intruder.send("POST", PUSH, body, intruder.headers("POST", PUSH, body))
    assert own.status_code == 403 and _error(own) == "forbidden"
    unknown = SignedDevice(central_app.test_client(), server_clock)
    assert unknown.pull().status_code == 401
    assert _records(ops) == 0


def test_nonces_are_pruned_only_once_no_timestamp_could_still_be_accepted(device, ops, server_clock):
    from sync.central.auth import prune_nonces
    assert device.pull().status_code == 200
    server_clock.advance(seconds=protocol.MAX_SKEW_S)
    assert device.pull().status_code == 200
    with ops.engine.begin() as conn:
        prune_nonces(conn, now=server_clock.now(), max_skew_s=protocol.MAX_SKEW_S)
        assert conn.execute(select(func.count()).select_from(Nonce)).scalar_one() == 2
    server_clock.advance(seconds=protocol.MAX_SKEW_S + 1)
    with ops.engine.begin() as conn:
        prune_nonces(conn, now=server_clock.now(), max_skew_s=protocol.MAX_SKEW_S)
        assert conn.execute(select(func.count()).select_from(Nonce)).scalar_one() == 1
