"""Regression tests for what the security audit of central found: malformed input that answered
500 instead of a 4xx, and a gzip body with trailing data that was accepted."""
from __future__ import annotations

import gzip

import pytest

from sync import protocol
from tests.sync.support import commit, put, ticket_doc

PUSH = f"{protocol.API_PREFIX}/push"
PULL = f"{protocol.API_PREFIX}/pull"


def _code(response) -> str:
    """The error code of a JSON error (checking the shape)."""
    body = response.get_json()
    assert set(body) == {"error"} and isinstance(body["error"]["message"], str), body
    return body["error"]["code"]


@pytest.mark.parametrize("timestamp", ["²³⁴", "١٧٩٥٨٥٦٤٠٠", "12345678901234567890", "-1", "1e9"])
def test_a_timestamp_of_other_digits_is_a_401(device, timestamp):
    """The timestamp header is checked as ASCII digits before anything else (superscripts were a 500)."""
    body = device.push_body([commit(1, put("tickets", ticket_doc()))])
    headers = device.headers("POST", PUSH, body)
    headers[protocol.H_TIMESTAMP] = timestamp
    response = device.send("POST", PUSH, body, headers)
    assert response.status_code == 401 and _code(response) == "unauthorized"


@pytest.mark.parametrize("query", ["since=" + "9" * 400, "since=" + "9" * 19, "limit=5&head_seq=" + "1" * 30])
def test_a_signed_pull_with_a_huge_number_is_a_422(device, query):
    """Cursor values beyond 64 bits are refused with the fields named (they overflowed the database)."""
    path = f"{PULL}?{query}"
    response = device.send("GET", path, b"", device.headers("GET", path, b""))
    assert response.status_code == 422 and _code(response) == "validation_failed"


def test_a_push_with_a_huge_sequence_is_a_422(device):
    """The same for sequence numbers inside a push."""
    body = device.push_body([commit(2 ** 70, put("tickets", ticket_doc()))])
    response = device.send("POST", PUSH, body, device.headers("POST", PUSH, body))
    assert response.status_code == 422 and _code(response) == "validation_failed"


@pytest.mark.parametrize("extra", [b"garbage", gzip.compress(b"{}"), b"\x00"])
def test_a_gzip_body_with_trailing_data_is_refused(device, extra):
    """Bytes after the gzip stream (even a second member) are refused, as the protocol says."""
    body = device.push_body([commit(1, put("tickets", ticket_doc()))]) + extra
    response = device.send("POST", PUSH, body, device.headers("POST", PUSH, body))
    assert response.status_code == 400 and _code(response) == "bad_request"
    assert "after its end" in response.get_json()["error"]["message"]


def test_inflate_refuses_trailing_data():
    """The protocol helper itself, without central."""
    with pytest.raises(protocol.ProtocolError):
        protocol.inflate(gzip.compress(b"{}") + gzip.compress(b"{}"))
    assert protocol.inflate(gzip.compress(b"{}")) == b"{}"


@pytest.mark.parametrize("body", [b"[" * 2000 + b"]" * 2000, b"[" * 2040])
def test_a_deeply_nested_status_request_is_a_400(central_app, body):
    """The public receipt status endpoint refuses deep nesting (under its size limit) as malformed JSON."""
    response = central_app.test_client().post("/R/status", data=body, content_type="application/json")
    assert response.status_code == 400 and _code(response) == "bad_request"
