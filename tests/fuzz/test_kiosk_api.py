"""Schemathesis over the kiosk's OpenAPI document (the one /api/v1/openapi.json serves), as an
anonymous client, an attendant and a supervisor, with every built-in check: no 5xx, every status,
header and body as documented, malformed input refused, well-formed input not refused for its form.

The document is loaded from kiosk.web.openapi at collection (the same dict the app serves; a test
below checks that) because Schemathesis' fixture-based loading does not run under pytest 9."""
from __future__ import annotations

import os
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from kiosk import services
from kiosk.usecases import insight
from kiosk.web.openapi import SPEC

# Well-formed values the centre does not know (a service code or priority class not configured
# here, a transfer to the same service) are 422 by the API contract: the document cannot list
# every centre's codes, so 422 counts as a refusal of valid *form* for positive data too.
CONFIG = SchemathesisConfig.from_dict({"checks": {"positive_data_acceptance": {
    "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "422", "429"]}}})
schema = schemathesis.openapi.from_dict(SPEC, config=CONFIG)
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))  # per operation and role (deeper: bench/README.md)
LAN = {"REMOTE_ADDR": "192.168.10.20"}  # a counter's PC on the staff network
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))


@pytest.fixture
def fuzz_app(app, centre):
    """The test app with tickets waiting, called at counter 1 (by the attendant) and at counter 2
    (by the supervisor), and two finished at counter 3, one of them rated (so the queue report has
    every kind of row and feedback meets both answers), so aimed cases meet every kind of refusal
    and success."""
    services.set_counter_status(centre, "3", "open", by="super")
    for n in range(2):
        done = services.issue_ticket(centre, service="C")
        services.call_ticket(centre, done["id"], counter="3", by="super")
        services.act(centre, done["id"], "start", by="super")
        services.act(centre, done["id"], "finish", by="super")
    insight.give_feedback(centre, done["id"], score=1, comment="too slow")
    for _ in range(6):
        services.issue_ticket(centre, service="A")
    services.set_counter_status(centre, "1", "open", by="demo")
    services.set_counter_status(centre, "2", "open", by="super")
    services.call_next(centre, counter="1", by="demo")
    services.call_next(centre, counter="2", by="super")
    return app


@pytest.fixture
def attendant_token(fuzz_app) -> dict:
    """The demo attendant's bearer header."""
    return _bearer(fuzz_app, "demo", "0000")


@pytest.fixture
def supervisor_token(fuzz_app) -> dict:
    """The demo supervisor's bearer header."""
    return _bearer(fuzz_app, "super", "9999")


def _aim(case, centre) -> None:
    """Point about half of the generated cases at real tickets and counters (chosen from the
    generated values, so runs stay reproducible): random ids alone would only ever meet 404."""
    tickets = sorted(t["id"] for t in centre.store.all("tickets"))
    path = case.path_parameters or {}
    if "id" in path and isinstance(path["id"], str) and len(path["id"]) % 2 == 0 and tickets:
        path["id"] = tickets[len(path["id"]) % len(tickets)]
    if "counter" in path and isinstance(path["counter"], str) and len(path["counter"]) % 2 == 0:
        path["counter"] = "123"[len(path["counter"]) % 3]
    if isinstance(case.body, dict) and isinstance(case.body.get("counter"), str) and len(case.body["counter"]) % 2 == 0:
        case.body["counter"] = "123"[len(case.body["counter"]) % 3]


def _check(case, app, headers: dict | None = None) -> None:
    """Send the case to `app` from the staff LAN and run every check on the answer."""
    # checks that send probes of their own (the same request without the token ...) use the
    # operation's schema transport: point it at this test's app
    case.operation.schema.app = app
    case.call_and_validate(app=app, environ_base=LAN, headers=headers)


def _bearer(app, name: str, pin: str) -> dict:
    """A staff member's bearer token header."""
    token = app.test_client().post("/api/v1/auth/token", json={"staff": name, "pin": pin}).get_json()["token"]
    return {"Authorization": f"Bearer {token}"}


def test_the_served_document_is_the_fuzzed_one(client):
    """What integrators download is what this file fuzzes."""
    assert client.get("/api/v1/openapi.json").get_json() == SPEC


@schema.parametrize()
@FUZZ
def test_anonymous(case, fuzz_app, centre):
    """Citizen terminals and other systems without a token."""
    _aim(case, centre)
    _check(case, fuzz_app)


@schema.parametrize()
@FUZZ
def test_attendant(case, fuzz_app, centre, attendant_token):
    """An attendant's token."""
    _aim(case, centre)
    _check(case, fuzz_app, attendant_token)


@schema.parametrize()
@FUZZ
def test_supervisor(case, fuzz_app, centre, supervisor_token):
    """A supervisor's token."""
    _aim(case, centre)
    _check(case, fuzz_app, supervisor_token)
