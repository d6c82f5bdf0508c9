"""Use cases on a real store: register while serving, refused input changes nothing, receipts signed
and verifiable, status changes and central's decisions, the list by due date, the pulled trust list."""
from __future__ import annotations

import base64
import datetime as dt

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from kiosk import cases, keys, services
from kiosk.domain import receipts, trustlist
from kiosk.domain.errors import InvalidTransition, NotFound, ValidationFailed
from tests.cases.conftest import listing, publish
from tests.cases.support import HOST


def register(centre, ticket, **overrides):
    """Register a request for `ticket` with sensible defaults."""
    fields = {"ticket_id": ticket["id"], "kind": "request", "reference": "1990 1234 5678", "by": "demo",
              "documents": ["0"]}
    fields.update(overrides)
    return cases.register_case(centre, **fields)


def test_register_while_serving(serving, trusted, clock):
    """The case carries the service, ticket, fee, documents ticked and the due date; nothing personal in clear."""
    ticket = serving.first
    doc = register(trusted, ticket, contact="0770 123 4567", notes="brought a copy only", lang="ckb")
    assert doc["status"] == "open" and doc["kind"] == "request"
    assert (doc["service"], doc["ticket_number"], doc["lang"]) == ("A", ticket["number"], "ckb")
    assert doc["documents"] == [services.get_service(trusted, "A")["documents"][0]]
    # Sunday 09:00 Baghdad + 72 working hours = Wednesday 09:00
    assert doc["created_at"] == "2026-11-22T06:00:00.000Z" and doc["due_at"] == "2026-11-25T06:00:00.000Z"
    stored = repr(trusted.store.get(cases.CASES, doc["id"]))
    for secret in ("0770 123 4567", "brought a copy", "19901234", "1990 1234 5678"):
        assert secret not in stored
    assert cases.matches_reference(trusted, doc, "١٩٩٠-١٢٣٤-٥٦٧٨")
    assert not cases.matches_reference(trusted, doc, "19901234579")
    opened = cases.case_secrets(trusted, doc)
    assert (opened["contact"], opened["notes"]) == ("0770 123 4567", "brought a copy only")


def test_refused_input_changes_nothing(serving, trusted):
    """Every refusal names its fields and leaves the store exactly as it was."""
    ticket = serving.first
    before = trusted.store.seq
    attempts = [
        ({"reference": "12"}, {"reference"}),
        ({"reference": "1990\x001234"}, {"reference"}),
        ({"documents": ["7"]}, {"documents"}),
        ({"documents": ["0", "0"]}, {"documents"}),
        ({"contact": "x" * 201}, {"contact"}),
        ({"notes": "bell\x07"}, {"notes"}),
        ({"kind": "referral"}, {"provider"}),
        ({"kind": "referral", "provider": "nobody"}, {"provider"}),
        ({"provider": "nrc-shelter"}, {"provider"}),
        ({"lang": "fr"}, {"lang"}),
        ({"reference": "", "notes": "n" * 2001, "documents": ["x"]}, {"reference", "notes", "documents"}),
    ]
    for overrides, fields in attempts:
        with pytest.raises(ValidationFailed) as refused:
            register(trusted, ticket, **overrides)
        assert set(refused.value.fields) == fields, overrides
    with pytest.raises(ValidationFailed):
        register(trusted, ticket, kind="complaint")
    with pytest.raises(NotFound):
        register(trusted, {"id": "01KAR7X3M9Q4ZP2B6V8N5C1DHW"})
    waiting = services.issue_ticket(trusted, service="B")
    with pytest.raises(InvalidTransition):
        register(trusted, waiting)
    assert trusted.store.seq == before + 1  # only the waiting ticket was stored
    assert trusted.store.all(cases.CASES) == []


def test_referral_starts_referred_and_hides_its_details(serving, trusted):
    """A referral names a provider from the directory; details and provider are sealed."""
    doc = register(trusted, serving.first, kind="referral", provider="nrc-shelter", details="family of six")
    assert doc["status"] == "referred"
    stored = repr(trusted.store.get(cases.CASES, doc["id"]))
    assert "nrc-shelter" not in stored and "family of six" not in stored
    opened = cases.case_secrets(trusted, doc)
    assert opened["provider"]["id"] == "nrc-shelter" and opened["details"] == "family of six"


def test_receipt_is_signed_stored_and_verifies(serving, trusted, clock):
    """The receipt carries the case's facts, verifies offline, and a referral's names no service."""
    doc = register(trusted, serving.first)
    record = cases.issue_receipt(trusted, doc["id"], by="demo")
    assert record["verifies"] == "ok" and record["text"].startswith(f"HTTPS://{HOST}/R#")
    assert cases.issue_receipt(trusted, doc["id"], by="demo") == record  # one receipt per case
    verdict = receipts.verify(record["text"], cases.current_trust_list(trusted), clock.now())
    assert verdict.is_valid
    receipt = verdict.receipt
    assert (receipt.receipt_id, receipt.centre, receipt.service, receipt.ticket, receipt.fee_iqd) == (
        doc["receipt_id"], "DEMO", "A", doc["ticket_number"], 0)
    assert receipts.iso(receipt.due_at) == doc["due_at"]
    assert receipt.citizen_ref.hex() == doc["citizen_ref"]
    referral = register(trusted, serving(), kind="referral", provider="vtc-mosul")
    referral_receipt = cases.issue_receipt(trusted, referral["id"], by="demo")
    decoded = receipts.verify(referral_receipt["text"], cases.current_trust_list(trusted), clock.now()).receipt
    assert decoded.service == cases.REFERRAL_RECEIPT_SERVICE and decoded.status.label == "referred"


def test_receipt_waits_for_a_verify_host(centre):
    """Without a trust list (or settings/receipts) the case is kept and the receipt refused clearly."""
    ticket = services.issue_ticket(centre, service="A")
    services.set_counter_status(centre, "1", "open", by="demo")
    doc = register(centre, services.call_ticket(centre, ticket["id"], counter="1", by="demo"))
    with pytest.raises(cases.ReceiptUnavailable):
        cases.issue_receipt(centre, doc["id"], by="demo")
    assert centre.store.get(cases.CASES, doc["id"]) is not None
    centre.store.put("settings", {"id": "receipts", "verify_host": "v.example.gov.iq"})
    record = cases.issue_receipt(centre, doc["id"], by="demo")
    assert record["verifies"] == "no_trust_list" and record["text"].startswith("HTTPS://V.EXAMPLE.GOV.IQ/R#")


def test_status_changes_and_central_decisions(serving, trusted):
    """The centre closes open cases; a decision pulled from central wins and closes it too."""
    first = register(trusted, serving.first)
    with pytest.raises(ValidationFailed):
        cases.change_status(trusted, first["id"], "rejected", by="demo")
    with pytest.raises(ValidationFailed):
        cases.change_status(trusted, first["id"], "referred", by="demo", provider="nobody")
    assert trusted.store.get(cases.CASES, first["id"])["status"] == "open"
    done = cases.change_status(trusted, first["id"], "rejected", by="demo", reason="the photo is missing")
    assert [e["status"] for e in done["events"]] == ["open", "rejected"]
    assert "photo" not in repr(done) and cases.case_secrets(trusted, done)["reason"] == "the photo is missing"
    with pytest.raises(InvalidTransition):
        cases.change_status(trusted, first["id"], "completed", by="demo")
    second = register(trusted, serving())
    trusted.store.put("settings", {"id": "case_status:" + second["id"], "case": second["id"], "status": "completed",
                                   "changed_at": "2026-11-23T08:00:00.000Z", "by": "back-office"})
    view = cases.case_view(trusted, trusted.store.get(cases.CASES, second["id"]))
    assert (view["status"], view["source"]) == ("completed", "central")
    with pytest.raises(InvalidTransition):
        cases.change_status(trusted, second["id"], "rejected", by="demo", reason="late")


def test_list_by_due_date_with_overdue(serving, trusted, clock):
    """Open cases sorted by due date; overdue once the promise has passed; closed ones on request."""
    slow = register(trusted, serving.first)
    trusted.store.put("services", {**services.get_service(trusted, "B"), "sla_hours": 24})
    clock.advance(hours=1)
    fast = register(trusted, serving("B"))
    closed = register(trusted, serving())
    cases.change_status(trusted, closed["id"], "completed", by="demo")
    listed = cases.list_cases(trusted)
    assert [v["id"] for v in listed] == [fast["id"], slow["id"]]
    assert not any(v["overdue"] for v in listed)
    clock.advance(hours=30)
    overdue = {v["id"]: v["overdue"] for v in cases.list_cases(trusted)}
    assert overdue == {fast["id"]: True, slow["id"]: False}
    assert [v["id"] for v in cases.list_cases(trusted, include_closed=True)][-1] == closed["id"]


def test_pulled_trust_list_is_opened_under_the_pinned_root(trusted, root_key, clock):
    """A newer list replaces the stored one; a rolled-back or forged one is refused and the last good
    one stays in use (and on disk, where the command-line verifier reads it)."""
    first = cases.current_trust_list(trusted)
    assert first.sequence == 1 and cases.trust_list_path(trusted).read_bytes()
    publish(trusted.store, root_key, listing(trusted, sequence=5))
    assert cases.current_trust_list(trusted).sequence == 5
    publish(trusted.store, root_key, listing(trusted, sequence=4))
    assert cases.current_trust_list(trusted).sequence == 5
    forger = keys.SigningKey.from_private_key(ec.generate_private_key(ec.SECP256R1()))
    publish(trusted.store, forger, listing(trusted, sequence=9))
    assert cases.current_trust_list(trusted).sequence == 5
    trusted.store.put("settings", {"id": "trust_list", "sequence": 10, "signed_base64": "not base64!"})
    assert cases.current_trust_list(trusted).sequence == 5
    opened = trustlist.open_trust_list(cases.trust_list_path(trusted).read_bytes(),
                                       keys.load_pinned_root_keys(cases.data_dir(trusted)))
    assert opened.sequence == 5


def test_verify_scanned_outcomes(serving, trusted, root_key, clock):
    """valid with the current status, invalid, revoked, expired, scanner on the wrong layout, no list."""
    doc = register(trusted, serving.first)
    text = cases.issue_receipt(trusted, doc["id"], by="demo")["text"]
    valid = cases.verify_scanned(trusted, text + "\r\n")
    assert valid["outcome"] == "valid" and valid["case"]["id"] == doc["id"] and valid["case"]["status"] == "open"
    tampered = text[:-5] + ("A" if text[-5] != "A" else "B") + text[-4:]
    assert cases.verify_scanned(trusted, tampered)["outcome"] == "invalid"
    assert cases.verify_scanned(trusted, "ضصثقف")["outcome"] == "layout"
    with pytest.raises(ValidationFailed):
        cases.verify_scanned(trusted, "   ")
    publish(trusted.store, root_key, listing(trusted, sequence=2, revoked_receipt_ids=frozenset({doc["receipt_id"]})))
    revoked = cases.verify_scanned(trusted, text)
    assert (revoked["outcome"], revoked["reason"]) == ("revoked", "receipt_revoked")
    publish(trusted.store, root_key, listing(trusted, sequence=3))
    clock.advance(days=400)
    assert cases.verify_scanned(trusted, text)["outcome"] == "expired"
    keys.pinned_roots_path(cases.data_dir(trusted)).unlink()
    trusted.store.put("settings", {"id": "trust_list", "sequence": 4, "signed_base64":
                                   base64.b64encode(b"x").decode()})
    assert cases.verify_scanned(trusted, text)["outcome"] == "cannot_verify"


def test_receipt_from_another_centre_has_no_local_status(trusted, root_key, clock):
    """A genuine receipt of centre B verified at centre A shows its contents but no local case."""
    other = ec.generate_private_key(ec.SECP256R1())
    now = clock.now()
    listed = listing(trusted, keys=(*listing(trusted).keys, trustlist.TrustedKey.from_public_key(
        "ERB-01", other.public_key(), now - dt.timedelta(days=1), now + dt.timedelta(days=10))), sequence=2)
    publish(trusted.store, root_key, listed)
    receipt = receipts.Receipt("01KAR7X3M9Q4ZP2B6V8N5C1DHW", "ERB-01", "PS-BIRTH", "B-042", now,
                               now + dt.timedelta(hours=72), 5000, receipts.ReceiptStatus.OPEN, b"\x01" * 8,
                               now + dt.timedelta(days=5))
    result = cases.verify_scanned(trusted, receipts.issue(receipt, other, HOST))
    assert result["outcome"] == "valid" and result["case"] is None
    assert result["verdict"]["receipt"]["fee_iqd"] == 5000
