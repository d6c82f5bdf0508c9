"""Receipts in the demo centre: `demo-data` gives a signing key and a demo trust list, so a receipt
signs and verifies offline at once and says DEMO; failures are shown as errors, a receipt whose
key is not enrolled says so; `export-key` gives central what it enrols; `verify` reads the trust
list the kiosk accepts now, not a stale file."""
from __future__ import annotations

import base64
import datetime as dt
import json

from kiosk import cases, create_app, keys, services
from kiosk.domain import trustlist
from tests.cases.support import Staff
from tests.test_cli import flask


def _register(app, centre) -> tuple[dict, dict]:
    """A request registered for a ticket being served, and its signed receipt."""
    ticket = services.issue_ticket(centre, service="A", lang="ckb")
    services.set_counter_status(centre, "1", "open", by="demo")
    services.call_ticket(centre, ticket["id"], counter="1", by="demo")
    with app.app_context():
        doc = cases.register_case(centre, ticket_id=ticket["id"], kind="request", reference="AB123456", by="demo")
        return doc, cases.issue_receipt(centre, doc["id"], by="demo")


def test_demo_data_sets_up_demo_receipts(data_dir):
    """`demo-data` (the README's demo, no central) sets up demo receipts, once, owner-only."""
    loaded = flask(data_dir, "demo-data")
    assert loaded.returncode == 0 and "DEMO receipts: signing key" in loaded.stdout, loaded.stderr
    assert "enrolled in demo trust list 1" in loaded.stdout
    again = flask(data_dir, "demo-data")
    assert "enrolled in demo trust list 1" in again.stdout, "running it again changes nothing"
    assert flask(data_dir, "check").returncode == 0, "every demo key file is owner-only"


def demo_centre(data_dir, clock):
    """The demo centre with demo receipts set up at the test clock's time (as `demo-data` does)."""
    app = create_app({"DATA_DIR": str(data_dir), "PRINTER_URL": "off"}, clock=clock)
    centre = app.extensions["kiosk"].centre
    services.load_demo_data(centre)
    assert keys.install_demo_trust(data_dir, "DEMO", clock.now())["created"]
    return app, centre


def test_demo_receipts_sign_and_verify_offline(data_dir, clock):
    """A receipt signs, verifies here, names the demo host and carries the DEMO warning on paper
    and screen; `verify` on the command line says VALID."""
    app, centre = demo_centre(data_dir, clock)
    try:
        doc, record = _register(app, centre)
        assert record["verifies"] == "ok" and record["text"].startswith("HTTPS://DEMO.INVALID/R#")
        with app.app_context():
            slip = cases.receipt_slip(centre, doc, record)
        assert slip.warning == "پسوولەی تاقیکردنەوە: تەنها بۆ تاقیکردنەوەی سیستەمەکە، بۆ داواکارییەکی ڕاستەقینە دروست نییە."
        page = Staff(app.test_client()).get(f"/cases/{doc['id']}").get_data(as_text=True)
        assert 'id="demo-receipt"' in page and 'id="receipt-unverified"' not in page
    finally:
        app.extensions["kiosk"].close()
    verified = flask(data_dir, "verify", record["text"], "--at", (clock.now() + dt.timedelta(hours=1)).isoformat())
    assert verified.returncode == 0 and verified.stdout.startswith("VALID"), verified.stdout + verified.stderr


def test_demo_data_leaves_a_real_trust_root_alone(data_dir, tmp_path):
    """A kiosk that pinned the ministry's root gets no demo trust list."""
    root = keys.create_root_key(tmp_path / "ministry" / "root.pem")
    keys.pin_root_keys(data_dir, root.public_pem())
    loaded = flask(data_dir, "demo-data")
    assert "demo receipts not set up: a trust root other than the demo's is pinned" in loaded.stdout
    assert keys.load_pinned_root_keys(data_dir)[0].public_numbers() == root.public_key.public_numbers()
    assert not (data_dir / keys.TRUST_LIST_PATH).exists()


def test_export_key_gives_central_the_enrolment(data_dir):
    """JSON for central's trust-enrol (centre, kid, PEM), or the PEM alone; the same key signs."""
    exported = flask(data_dir, "export-key", env={"KIOSK_CENTRE": "ERB-01"})
    assert exported.returncode == 0, exported.stderr
    enrolment = json.loads(exported.stdout)
    key = keys.load_centre_key(data_dir)
    assert enrolment == {"centre": "ERB-01", "kid": key.kid.hex(), "public_key_pem": key.public_pem()}
    assert flask(data_dir, "export-key", "--pem").stdout == key.public_pem()


def test_verify_reads_the_trust_list_pulled_last(data_dir, clock):
    """A newer trust list that arrived by sync (here revoking the receipt) is what `verify` uses,
    even before any screen has opened it."""
    app, centre = demo_centre(data_dir, clock)
    try:
        _doc, record = _register(app, centre)
        root = keys.load_root_key(data_dir / keys.DEMO_ROOT_PATH)
        accepted = trustlist.open_trust_list((data_dir / keys.TRUST_LIST_PATH).read_bytes(), [root.public_key])
        newer = trustlist.TrustList(sequence=accepted.sequence + 1, issued_at=clock.now(),
                                    verify_host=accepted.verify_host, keys=accepted.keys,
                                    revoked_receipt_ids=frozenset({record["id"]}))
        signed = keys.sign_trust_list(root, newer)
        centre.store.put("settings", {"id": "trust_list", "sequence": newer.sequence,
                                      "signed_base64": base64.b64encode(signed).decode("ascii")})
    finally:
        app.extensions["kiosk"].close()
    verified = flask(data_dir, "verify", record["text"], "--at", (clock.now() + dt.timedelta(hours=1)).isoformat())
    assert verified.returncode == 4 and verified.stdout.startswith("REVOKED"), verified.stdout + verified.stderr
    assert "sequence 2" in verified.stdout


def test_receipt_failures_are_errors_on_the_case_page(app, centre, client):
    """Without a trust list the receipt cannot be signed: the case page says so in the error style;
    signed with a key central has not enrolled, the page says it does not verify and why."""
    staff = Staff(client)
    staff.language("en")
    ticket = services.issue_ticket(centre, service="A", lang="en")
    services.set_counter_status(centre, "1", "open", by="demo")
    services.call_ticket(centre, ticket["id"], counter="1", by="demo")
    done = staff.post("/cases", {"ticket": ticket["id"], "kind": "request", "reference": "AB123456"},
                      follow_redirects=True).get_data(as_text=True)
    assert '<p class="alert alert-error" role="alert">The receipt could not be signed yet.' in done
    centre.store.put("settings", {"id": "receipts", "verify_host": "v.example.gov.iq"})
    case_id = centre.store.all("requests")[0]["id"]
    again = staff.post(f"/cases/{case_id}/receipt", {"lang": "en"}, follow_redirects=True).get_data(as_text=True)
    assert '<p class="alert alert-error" role="alert">The receipt is signed, but its key is not in the trust list' in again
    assert 'id="receipt-unverified" data-reason="no_trust_list"' in again
