"""Confidential plaintext never reaches the disk or the logs: a referral, notes, a contact and a
rejection reason carrying unique canary strings go through the real screens, the store is compacted,
receipts are printed to preview files, and then every file under the data directory and every log
record is searched for the canaries."""
from __future__ import annotations

import json
import logging
import uuid

import pytest

from kiosk import cases, keys, services
from tests.cases.conftest import listing, publish
from tests.cases.support import PROVIDERS, Staff, data_files


@pytest.fixture
def app_config(app_config):
    """Print to preview files (PNG and PDF in the data directory), so printed output is searched too."""
    return {**app_config, "PRINTER_URL": ""}


def _spellings(secret: str) -> list[bytes]:
    """The ways a string can appear in a file: UTF-8, JSON with escapes, UTF-16."""
    return [secret.encode("utf-8"), json.dumps(secret).strip('"').encode("ascii"),
            secret.encode("utf-16-le")]


def test_confidential_fields_never_reach_disk_or_logs(app, centre, client, root_key, caplog):
    """Every file under DATA (journal, snapshot after compaction, keys, sync, prints) and every log
    record is free of the canaries; the staff page still shows them (opened from the vault)."""
    caplog.set_level(logging.DEBUG)
    canary = f"CANARY-{uuid.uuid4().hex}"
    canary_ar = f"عصفور-{uuid.uuid4().hex[:12]}"
    keys.pin_root_keys(cases.data_dir(centre), root_key.public_pem())
    publish(centre.store, root_key, listing(centre))
    centre.store.put("settings", PROVIDERS)
    services.set_counter_status(centre, "1", "open", by="demo")
    staff = Staff(client)

    referral = services.issue_ticket(centre, service="C", lang="ar")
    services.call_ticket(centre, referral["id"], counter="1", by="demo")
    response = staff.post("/cases", {"ticket": referral["id"], "kind": "referral", "reference": "NAT 1990 1234",
                                     "provider": "nrc-shelter", "details": f"{canary} {canary_ar} family of six",
                                     "notes": f"notes {canary}", "contact": f"{canary}@example.org"})
    assert response.status_code == 303, response.get_data(as_text=True)
    case_page = staff.get(response.headers["Location"]).get_data(as_text=True)
    assert canary in case_page and canary_ar in case_page  # staff can read it, from the vault

    services.act(centre, referral["id"], "start", by="demo")
    services.act(centre, referral["id"], "finish", by="demo")
    other = services.issue_ticket(centre, service="A", lang="ckb")
    services.call_ticket(centre, other["id"], counter="1", by="demo")
    response = staff.post("/cases", {"ticket": other["id"], "kind": "request", "reference": "NAT19901235"})
    case_id = response.headers["Location"].rsplit("/", 1)[1]
    refused = staff.post(f"/cases/{case_id}/status", {"status": "rejected", "reason": "", "details": canary})
    assert refused.status_code == 422
    assert staff.post(f"/cases/{case_id}/status", {"status": "rejected",
                                                   "reason": f"{canary_ar} wrong person"}).status_code == 303
    receipt = centre.store.get(cases.RECEIPTS, cases.get_case(centre, case_id)["receipt_id"])
    assert client.post("/verify", data={"code": receipt["text"], "csrf_token": staff.token}).status_code == 200

    centre.store.compact()
    app.extensions["kiosk"].close()  # lets the print queue write its preview files

    files = data_files(cases.data_dir(centre))
    names = {path.name for path in files}
    assert any(name.endswith(".png") for name in names), "the receipts were not printed to preview files"
    assert any("snapshot" in str(path) for path in files), sorted(names)
    assert any("journal" in str(path) for path in files), sorted(names)
    for path in files:
        data = path.read_bytes()
        for secret in (canary, canary_ar, "NAT19901234", "NAT 1990 1234", "family of six", "wrong person"):
            for spelling in _spellings(secret):
                assert spelling not in data, f"{secret!r} found in {path}"
    for record in caplog.records:
        text = record.getMessage() + (record.exc_text or "") + repr(record.args)
        for secret in (canary, canary_ar, "NAT19901234"):
            assert secret not in text, f"{secret!r} logged by {record.name}: {text[:200]}"
