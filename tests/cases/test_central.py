"""Receipts across the whole system: central's root key and trust list reach a real kiosk through the
sync agent, a back-office decision made at central comes back and shows on the kiosk's /verify, the
/R page verifies a receipt in headless Chromium and shows its live status, and the operators'
pages (decisions, overdue requests, national report) work and refuse bad input."""
from __future__ import annotations

import base64
import csv
import io
import json
import re

import pytest

from kiosk import cases, keys
from kiosk.domain import trustlist
from tests.cases.support import System, csrf_from

def _verify_on_kiosk(system: System, text: str) -> str:
    """The kiosk's /verify page for a scanned text."""
    client = system.kiosk_app.test_client()
    token = csrf_from(client.get("/verify").get_data(as_text=True))
    return client.post("/verify", data={"code": text, "csrf_token": token}).get_data(as_text=True)


def test_decision_at_central_reaches_the_kiosk(system):
    """Trust list and providers arrive by the pull; the case and receipt go up by the push; a back
    office completes the request at central and the citizen scanning at the centre sees it."""
    assert cases.current_trust_list(system.centre).verify_host.startswith("127.0.0.1:")
    assert [p["id"] for p in cases.providers(system.centre)] == ["nrc-shelter", "vtc-mosul"]
    doc, record = system.serve_and_register()
    assert record["verifies"] == "ok"
    system.sync()
    html = _verify_on_kiosk(system, record["text"])
    assert 'data-outcome="valid"' in html and 'data-status="open"' in html
    system.ops.cli("case-status", "ERB-01", doc["id"], "completed", "--by", "back-office")
    assert 'data-status="open"' in _verify_on_kiosk(system, record["text"])  # not pulled yet
    system.sync()
    html = _verify_on_kiosk(system, record["text"])
    assert 'data-status="completed"' in html
    assert cases.case_view(system.centre, cases.get_case(system.centre, doc["id"]))["source"] == "central"
    assert cases.get_case(system.centre, doc["id"])["status"] == "open"  # the kiosk's own document is untouched
    status = system.central_app.test_client().post("/R/status", json={"qr_text": record["text"], "lang": "en"})
    assert status.get_json() == {"outcome": "valid", "reason": "ok",
                                 "status": {"status": "completed", "overdue": False, "due_at": doc["due_at"],
                                            "changed_at": "2026-11-22T09:00:00.000Z"},
                                 "names": {"centre": "Erbil public service centre", "service": "Civil status documents"}}


def test_case_status_command_refuses_bad_decisions(system):
    """Unknown case, closed case, rejection without reason, unknown provider: refused, nothing sent."""
    doc, _record = system.serve_and_register()
    system.sync()
    runner = system.central_app.test_cli_runner()
    for args, message in (
        (["case-status", "ERB-01", "NOPE", "completed"], "has sent no case"),
        (["case-status", "ERB-01", doc["id"], "rejected"], "reason"),
        (["case-status", "ERB-01", doc["id"], "referred", "--provider", "nobody"], "provider directory"),
        (["case-status", "ERB-01", doc["id"], "finished"], "Invalid value"),
    ):
        result = runner.invoke(args=args)
        assert result.exit_code != 0 and message in result.output, result.output
    system.ops.cli("case-status", "ERB-01", doc["id"], "referred", "--provider", "vtc-mosul")
    again = runner.invoke(args=["case-status", "ERB-01", doc["id"], "completed"])
    assert again.exit_code == 1 and "cannot become" in again.output


def test_trust_list_rollback_is_refused_by_the_kiosk(system, tmp_path):
    """A kiosk never goes back to an older list, even if central's feed offers one."""
    system.ops.cli("trust-publish")
    system.sync()
    assert cases.current_trust_list(system.centre).sequence == 2
    published = (tmp_path / "central-receipts" / "trust-list.cbor").read_bytes()
    assert len(published) > 100
    first = system.centre.store.get("settings", "trust_list")
    assert first["sequence"] == 2
    older = keys.sign_trust_list(keys.load_root_key(tmp_path / "central-receipts" / "root-key.pem"),
                                 trustlist.TrustList(sequence=1, issued_at=system.clock.now(),
                                                     verify_host="v.example.iq"))
    system.centre.store.put("settings", {"id": "trust_list", "sequence": 1,
                                         "signed_base64": base64.b64encode(older).decode()})
    assert cases.current_trust_list(system.centre).sequence == 2


def test_operator_pages(system):
    """Overdue requests per centre, the back-office form (token, validation), the national report."""
    doc, record = system.serve_and_register()
    other, _ = system.serve_and_register(kind="inquiry")
    system.sync()
    operator = system.operator()
    assert system.central_app.test_client().get("/receipts/overdue").status_code == 401
    assert 'id="none"' in operator.get("/receipts/overdue").get_data(as_text=True)
    system.clock.advance(days=6)
    page = operator.get("/receipts/overdue").get_data(as_text=True)
    assert page.count('data-case="') == 2 and 'data-centre="ERB-01"' in page
    form = operator.get(f"/receipts/cases/ERB-01/{doc['id']}")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.get_data(as_text=True)).group(1)
    url = f"/receipts/cases/ERB-01/{doc['id']}"
    assert operator.post(url, data={"status": "completed"}).status_code == 400
    assert operator.post(url, data={"status": "completed", "csrf_token": token},
                         headers={"Origin": "http://evil.example"}).status_code == 403
    refused = operator.post(url, data={"status": "rejected", "reason": "", "csrf_token": token})
    assert refused.status_code == 422 and 'id="error"' in refused.get_data(as_text=True)
    saved = operator.post(url, data={"status": "rejected", "reason": "duplicate request", "csrf_token": token})
    assert saved.status_code == 303
    page = operator.get(saved.headers["Location"]).get_data(as_text=True)
    assert 'id="saved"' in page and 'data-status="rejected"' in page
    assert operator.get("/receipts/cases/ERB-01/NOPE").status_code == 404
    assert operator.get("/receipts/overdue").get_data(as_text=True).count('data-case="') == 1
    report = operator.get("/receipts/report?month=2026-11&lang=en").get_data(as_text=True)
    assert re.search(r'data-figure="received" data-value="([0-9]+)"', report).group(1) == "2"
    assert re.search(r'data-figure="rejected" data-value="([0-9]+)" data-pct="([0-9]+)"', report).groups() == ("1", "50")
    assert '<td class="num" data-figure="rejected" data-value="1" data-pct="50">1 (50%)</td>' in report
    assert re.search(r'data-figure="overdue" data-value="([0-9]+)"', report).group(1) == "2"
    rows = list(csv.DictReader(io.StringIO(operator.get("/receipts/report.csv?month=2026-11&centre=ERB-01")
                                           .get_data(as_text=True).lstrip("\ufeff"))))
    assert next(r for r in rows if r["group"] == "total")["received"] == "2"
    assert operator.get("/receipts/report?month=2026-13").status_code == 400
    assert operator.get("/receipts/report?month=2026-11&centre=NOPE").status_code == 404
    system.sync()
    assert cases.case_view(system.centre, cases.get_case(system.centre, doc["id"]))["status"] == "rejected"
    assert cases.case_view(system.centre, cases.get_case(system.centre, other["id"]))["overdue"]


def test_status_endpoint_refuses_bad_input(system):
    """Not JSON, wrong shape, too large: clear errors; a forged text gets a verdict and no status."""
    client = system.central_app.test_client()
    assert client.post("/R/status", data=b"\xff", content_type="application/json").status_code == 400
    assert client.post("/R/status", json={"receipt_id": "01KAR7X3M9Q4ZP2B6V8N5C1DHW"}).status_code == 422
    assert client.post("/R/status", json={"qr_text": "x" * 5000}).status_code == 413
    assert client.post("/R/status", json={"qr_text": "HTTPS://EVIL/R#AAAA", "lang": "fr"}).status_code == 422
    assert client.post("/R/status", json={"qr_text": "HTTPS://EVIL/R#AAAA", "names": True}).status_code == 422
    answer = client.post("/R/status", json={"qr_text": "HTTPS://EVIL/R#AAAA"}).get_json()
    assert answer == {"outcome": "invalid", "reason": "wrong_host", "status": None, "names": None}
    assert client.get("/R/status").status_code == 405
    keys_json = client.get("/R/trust-list").get_json()
    assert keys_json["sequence"] == 1 and keys_json["root_keys"][0]["crv"] == "P-256"
    assert client.get("/.well-known/receipt-keys").mimetype == "application/cbor"


def _watch(page, problems: list) -> None:
    """Collect console errors, page errors and CSP violations of a page."""
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_r_page_verifies_in_chromium_and_shows_live_status(system, browser):
    """The QR's URL opened in a real browser: WebCrypto verifies the fragment, the page shows the
    contents in the chosen language, then the live status; an altered code is caught."""
    doc, record = system.serve_and_register()
    system.sync()
    system.ops.cli("case-status", "ERB-01", doc["id"], "rejected", "--reason", "missing photo")
    fragment = record["text"].split("/R#", 1)[1]
    context = browser.new_context()
    # the page verifies with the browser's clock: it must read the time the system under test reads
    context.clock.set_fixed_time(system.clock.now())
    problems: list = []
    context.add_init_script("document.addEventListener('securitypolicyviolation', "
                            "(e) => console.error('CSP ' + e.violatedDirective));")
    try:
        page = context.new_page()
        _watch(page, problems)
        page.goto(f"{system.server.url}/R?lang=en#{fragment}")
        page.wait_for_selector('#live-status[data-status="rejected"]', timeout=15000)
        assert page.get_attribute("#outcome", "data-outcome") == "valid"
        assert page.text_content("#outcome") == "Valid"
        assert page.text_content('[data-field="receipt_id"]') == doc["receipt_id"]
        assert page.text_content('[data-field="ticket"]') == doc["ticket_number"]
        assert "Rejected" in page.text_content("#live-status")
        assert page.get_attribute('a[data-lang="ckb"]', "href").endswith("#" + fragment)
        page.click('a[data-lang="ckb"]')
        page.wait_for_selector('#live-status[data-status="rejected"]', timeout=15000)
        assert page.get_attribute("html", "dir") == "rtl" and page.text_content("#outcome") == "دروستە"
        due = page.text_content('[data-field="due_at"]')  # Sorani month names, no time of day
        assert re.fullmatch(r"[٠-٩]+ی [^\sM0-9]+( [^\sM0-9]+)?ی [٠-٩]{4}", due), due
        altered = fragment[:-6] + ("A" if fragment[-6] != "A" else "B") + fragment[-5:]
        page.goto(f"{system.server.url}/R?lang=en#{altered}")
        page.wait_for_selector('#outcome[data-outcome="invalid"]', timeout=15000)
        page.reload()
        page.wait_for_selector('#outcome[data-outcome="invalid"]', timeout=15000)
        assert page.get_attribute("#reason", "data-reason") in ("bad_signature", "malformed")
        assert page.is_hidden("#live")
    finally:
        context.close()
    assert problems == []


def test_trust_commands_refuse_bad_input(system, tmp_path):
    """Every trust command names what is wrong and leaves the published list as it was."""
    runner = system.central_app.test_cli_runner()
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key", encoding="ascii")
    public = tmp_path / "public.pem"
    public.write_text(keys.load_or_create_centre_key(system.kiosk_dir).public_pem(), encoding="ascii")
    other = tmp_path / "other.json"
    other.write_text(json.dumps(keys.load_or_create_centre_key(system.kiosk_dir).enrolment("NIN-03")), encoding="utf-8")
    for args, message in (
        (["trust-enrol", "ERB-01", str(garbage)], "no PEM public key"),
        (["trust-enrol", "ERB-01", str(garbage.with_name("missing.pem"))], "No such file"),
        (["trust-enrol", "NOPE", str(public)], "no centre 'NOPE'"),
        (["trust-enrol", "ERB-01", str(other)], "not 'ERB-01'"),
        (["trust-enrol", "ERB-01", str(tmp_path / "enrolment.json"), "--not-before", "yesterday"], "ISO 8601"),
        (["trust-revoke"], "either --key"),
        (["trust-revoke", "--key", "xyz"], "16 hex digits"),
        (["trust-revoke", "--receipt", "not-a-ulid"], "ULID"),
        (["trust-publish", "--verify-host", "bad host/"], "not a host name"),
        (["trust-root-create"], "already exists"),
    ):
        result = runner.invoke(args=args)
        assert result.exit_code != 0 and message in result.output, (args, result.output)
    assert system.central_app.test_client().get("/R/trust-list").get_json()["sequence"] == 1


def test_command_line_verifier_reads_what_the_kiosk_accepted(system):
    """`flask --app kiosk verify` checks a receipt against the list the kiosk wrote to DATA/sync."""
    _doc, record = system.serve_and_register()
    runner = system.kiosk_app.test_cli_runner()
    ok = runner.invoke(args=["verify", record["text"]])
    assert ok.exit_code == 0 and "VALID (ok)" in ok.output
    bad = runner.invoke(args=["verify", record["text"][:-4] + "AAAA"])
    assert bad.exit_code == 1
