"""Fixtures for the requests-and-receipts tests: a centre with a pinned root, a published trust list
and a provider directory; staff logged in through the real form; central on SQLite and
PostgreSQL served over loopback with a real sync agent; headless Debian Chromium."""
from __future__ import annotations

import base64
import datetime as dt
import json

import pytest

from kiosk import cases, create_app, keys, services
from kiosk.domain import trustlist
from sync import agent as agent_mod
from tests.cases.support import CENTRE_NAMES, HOST, OPERATOR, PROVIDERS, Staff, System
from tests.sync.support import HttpServer
# central on both databases, as the sync tests run it (same fixtures, imported, not copied)
from tests.sync.conftest import (backend, central_app, central_url_db, ops, pg_url,  # noqa: F401
                                 server_clock, sqlite_template)



@pytest.fixture
def root_key(tmp_path) -> keys.SigningKey:
    """Central's root key (outside the kiosk's data directory)."""
    return keys.create_root_key(tmp_path / "central-receipts" / "root-key.pem")


def publish(centre_store, root: keys.SigningKey, trust: trustlist.TrustList) -> None:
    """Put a signed trust list in the kiosk's store as the pull would (settings/trust_list)."""
    signed = keys.sign_trust_list(root, trust)
    centre_store.put("settings", {"id": "trust_list", "sequence": trust.sequence,
                                  "signed_base64": base64.b64encode(signed).decode("ascii")})


def listing(centre: services.Centre, *, sequence: int = 1, **overrides) -> trustlist.TrustList:
    """A trust list enrolling the centre's own key around the test clock's time."""
    key = keys.load_or_create_centre_key(cases.data_dir(centre))
    now = centre.clock.now()
    fields = {"sequence": sequence, "issued_at": now, "verify_host": HOST,
              "keys": (trustlist.TrustedKey.from_public_key(centre.config["CENTRE"], key.public_key,
                                                            now - dt.timedelta(days=30), now + dt.timedelta(days=400)),)}
    fields.update(overrides)
    return trustlist.TrustList(**fields)


@pytest.fixture
def trusted(app, centre, root_key):
    """The centre with its root pinned, its key on a published trust list and a provider directory."""
    keys.pin_root_keys(cases.data_dir(centre), root_key.public_pem())
    publish(centre.store, root_key, listing(centre))
    centre.store.put("settings", PROVIDERS)
    return centre


@pytest.fixture
def attendant(client, trusted):
    """The demo attendant, logged in (in the test's default language, Arabic)."""
    return Staff(client)


@pytest.fixture
def supervisor(app, trusted):
    """The demo supervisor, logged in on a client of its own."""
    return Staff(app.test_client(), "super", "9999")


@pytest.fixture
def serving(trusted):
    """A ticket being served at counter 1, and a function to get another one."""
    def next_ticket(service: str = "A", lang: str = "en") -> dict:
        """Issue a ticket and call it to counter 1 (finishing whatever was there)."""
        for ticket in trusted.tickets.at_counter("1"):
            if ticket["state"] == "called":
                services.act(trusted, ticket["id"], "start", by="demo")
            services.act(trusted, ticket["id"], "finish", by="demo")
        issued = services.issue_ticket(trusted, service=service, lang=lang)
        services.set_counter_status(trusted, "1", "open", by="demo")
        return services.call_ticket(trusted, issued["id"], counter="1", by="demo")
    next_ticket.first = next_ticket()
    return next_ticket


@pytest.fixture
def system(central_app, ops, tmp_path, server_clock):
    """Central with a root key, a published trust list and a provider directory; one kiosk enrolled
    for sync and its receipt key enrolled in the trust list, both on the same clock. Central names
    the centre in Arabic and Sorani (English: its one name) and configures services A and B as the
    demo has them; service C exists only at the kiosk, so central knows no name for it."""
    server = HttpServer(central_app)
    central_app.config["CENTRAL_RECEIPTS_DIR"] = str(tmp_path / "central-receipts")
    ops.add_centre("ERB-01")
    ops.cli("centre-names", "ERB-01", "--ar", CENTRE_NAMES["ar"], "--ckb", CENTRE_NAMES["ckb"])
    ops.cli("add-operator", OPERATOR[0], "--password-stdin", input=OPERATOR[1] + "\n")
    config = tmp_path / "erb-01.json"
    central_services = [{"id": s["code"], "active": True, "daily_cap": None, **s}
                        for s in services.DEMO_SERVICES if s["code"] in ("A", "B")]
    config.write_text(json.dumps({"settings": [PROVIDERS], "services": central_services}), encoding="utf-8")
    ops.cli("config-load", "ERB-01", str(config))
    root_public = ops.cli("trust-root-create")
    kiosk_dir = tmp_path / "kiosk"
    app = create_app({"DATA_DIR": str(kiosk_dir), "SECRET_KEY": "test", "PRINTER_URL": "off", "CENTRE": "ERB-01",
                      "TICKET_RATE_PER_MIN": 0}, clock=server_clock)
    centre = app.extensions["kiosk"].centre
    services.load_demo_data(centre)
    keys.pin_root_keys(kiosk_dir, root_public)
    agent_mod.enroll(kiosk_dir, server.url, ops.code("ERB-01"), centre="ERB-01", clock=server_clock)
    enrolment = tmp_path / "enrolment.json"
    enrolment.write_text(json.dumps(keys.load_or_create_centre_key(kiosk_dir).enrolment("ERB-01")), encoding="utf-8")
    ops.cli("trust-enrol", "ERB-01", str(enrolment))
    ops.cli("trust-publish", "--verify-host", f"127.0.0.1:{server.port}")
    built = System(central_app, server, ops, app, centre, kiosk_dir, server_clock)
    built.sync()
    yield built
    app.extensions["kiosk"].close()
    server.stop()
