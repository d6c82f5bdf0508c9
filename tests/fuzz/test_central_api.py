"""Schemathesis over central's OpenAPI document (/api/v1/openapi.json) with every built-in check,
on SQLite and PostgreSQL: unsigned requests to every operation (the signature checks come before
everything else and must refuse any header as documented), and push and pull signed by an enrolled
device, so generated bodies and queries reach the parsing, the database and the answers."""
from __future__ import annotations

import os
import json
from urllib.parse import urlencode

import pytest
import schemathesis
from hypothesis import HealthCheck, assume, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation

from sync import protocol
from sync.central.openapi import SPEC
from tests.appointments.support import configure

# As at the kiosk: 409 (a sequence gap, a diverged history, a centre mismatch) and 422 (a well-formed
# receipt text that is no receipt) refuse values, not their form.
CONFIG = SchemathesisConfig.from_dict({"checks": {"positive_data_acceptance": {
    "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "422", "429"]}}})
schema = schemathesis.openapi.from_dict(SPEC, config=CONFIG)
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))  # per operation and database (deeper: bench/README.md)
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))
SIGNED = {f"{protocol.API_PREFIX}/push", f"{protocol.API_PREFIX}/pull"}


@pytest.fixture
def published(central_app, ops, tmp_path):
    """Central with a root key and a published trust list naming its booking key (else the receipt
    and booking endpoints say 503), and a centre that takes appointments."""
    central_app.config["CENTRAL_RECEIPTS_DIR"] = str(tmp_path / "central-receipts")
    ops.add_centre("ERB-01")
    configure(ops, tmp_path)
    ops.cli("trust-root-create")
    ops.cli("booking-key-create")
    ops.cli("trust-publish", "--verify-host", "v.example.iq")
    return central_app


def test_the_served_document_is_the_fuzzed_one(central_app):
    """What integrators download is what this file fuzzes."""
    assert central_app.test_client().get("/api/v1/openapi.json").get_json() == SPEC


@schema.parametrize()
@FUZZ
def test_unsigned(case, published):
    """Anyone on the internet: every operation, generated headers included."""
    case.operation.schema.app = published  # probes of the checks go to this test's app
    case.call_and_validate(app=published)


@schema.parametrize()
@FUZZ
def test_signed_by_an_enrolled_device(case, central_app, device):
    """Push and pull signed with the device's key over exactly the bytes and query sent."""
    if case.operation.path not in SIGNED:
        return
    # the signature headers are replaced by valid ones, so a case made invalid only there is moot
    assume(not case.meta.is_negative_at(ParameterLocation.HEADER))
    case.operation.schema.app = central_app
    path = case.formatted_path
    body = b""
    if case.method.upper() == "GET":
        query = urlencode(case.query or {}, doseq=True)
        path += f"?{query}" if query else ""
    else:
        if isinstance(case.body, dict) and not case.meta.is_negative_at(ParameterLocation.BODY):
            case.body["device_id"] = device.device_id  # else every batch stops at "not your journal"
        try:
            body = json.dumps(case.body).encode("utf-8")
        except (TypeError, ValueError):
            assume(False)
    headers = device.headers(case.method.upper(), path, body, gzip=False)
    response = device.send(case.method.upper(), path, body, headers)
    case.validate_response(response, headers=headers, transport_kwargs={"app": central_app})

