"""The screens: register from the counter console, refusals in the staff member's language that change
nothing, the list by due date with overdue highlighted, status changes, /verify, the monthly report."""
from __future__ import annotations

import csv
import io
import re

import pytest

from kiosk import cases, services
from tests.cases.conftest import listing, publish
from tests.cases.support import Staff
from tests.web.test_i18n import latin_words


def _form(ticket_id: str, **overrides) -> dict:
    """The registration form as a browser sends it."""
    form = {"ticket": ticket_id, "kind": "request", "reference": "19901234567", "documents": ["0", "1"],
            "lang": "ar", "contact": "", "notes": "", "provider": "", "details": ""}
    form.update(overrides)
    return form


def _register(staff, ticket_id: str, **overrides) -> str:
    """Register through the form; the new case's id."""
    response = staff.post("/cases", _form(ticket_id, **overrides))
    assert response.status_code == 303, response.get_data(as_text=True)
    return response.headers["Location"].rsplit("/", 1)[1]


def test_counter_console_and_supervisor_view_link_to_the_requests(attendant, supervisor, serving):
    """One link on each screen; from the counter, the ticket being served can be registered."""
    attendant.post("/counter/open", {"counter": "1"})
    console = attendant.get("/counter/1").get_data(as_text=True)
    assert 'href="/cases?counter=1"' in console
    page = attendant.get("/cases?counter=1").get_data(as_text=True)
    assert f'/cases/new?ticket={serving.first["id"]}' in page
    assert 'href="/cases"' in supervisor.get("/admin").get_data(as_text=True)


def test_register_sign_and_show(attendant, serving, trusted):
    """The form registers, signs and shows the case with its receipt's QR on screen."""
    form_page = attendant.get(f"/cases/new?ticket={serving.first['id']}").get_data(as_text=True)
    assert "وثائق الأحوال المدنية" in form_page  # the service, in the staff member's language
    case_id = _register(attendant, serving.first["id"])
    page = attendant.get(f"/cases/{case_id}").get_data(as_text=True)
    assert 'data-status="open"' in page and '<svg class="qr"' in page
    assert "19901234567" not in page  # the reference is never shown again
    doc = cases.get_case(trusted, case_id)
    assert trusted.store.get(cases.RECEIPTS, doc["receipt_id"])["verifies"] == "ok"
    assert len(doc["documents"]) == 2


def test_refusals_are_explained_in_arabic_and_change_nothing(attendant, serving, trusted):
    """Bad input comes back as the form with each field's problem in the staff member's language."""
    before = trusted.store.seq
    response = attendant.post("/cases", _form(serving.first["id"], reference="12", documents=["9"],
                                              provider="nrc-shelter"))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert set(re.findall(r'data-field="(\w+)"', html)) == {"reference", "documents", "provider"}
    assert "لم يُحفظ أي شيء" in html
    assert 'value="12"' not in html
    attendant.language("ckb")
    html = attendant.post("/cases", _form(serving.first["id"], kind="nonsense")).get_data(as_text=True)
    assert 'data-field="kind"' in html and "هیچ شتێک پاشەکەوت نەکرا" in html
    assert attendant.post("/cases", _form("no-such-ticket")).status_code == 404
    waiting = services.issue_ticket(trusted, service="B")
    refused = attendant.post("/cases", _form(waiting["id"]))
    assert refused.status_code == 409 and 'data-error-code="invalid_transition"' in refused.get_data(as_text=True)
    assert attendant.client.post("/cases", data=_form(serving.first["id"])).status_code == 400  # no CSRF token
    assert trusted.store.seq == before + 1 and trusted.store.all(cases.CASES) == []


def test_staff_only(client, trusted):
    """Without a login the case screens send to the login page; /verify is open to every terminal."""
    for path in ("/cases", "/cases/new?ticket=x", "/cases/report"):
        response = client.get(path)
        assert response.status_code == 303 and response.headers["Location"].startswith("/staff/login")
    assert client.get("/verify").status_code == 200


def test_report_is_for_supervisors(attendant):
    """Attendants serve; the monthly report is the supervisor's."""
    assert attendant.get("/cases/report").status_code == 403


def test_status_changes_on_the_case_page(attendant, serving, trusted):
    """Reject without a reason is refused and explained; completing works once, then the case is final."""
    case_id = _register(attendant, serving.first["id"])
    refused = attendant.post(f"/cases/{case_id}/status", {"status": "rejected", "reason": " "})
    assert refused.status_code == 422 and 'data-field="reason"' in refused.get_data(as_text=True)
    assert attendant.post(f"/cases/{case_id}/status", {"status": "bogus"}).status_code == 422
    assert attendant.post(f"/cases/{case_id}/status", {"status": "completed"}).status_code == 303
    again = attendant.post(f"/cases/{case_id}/status", {"status": "rejected", "reason": "x"})
    assert again.status_code == 409
    assert cases.get_case(trusted, case_id)["status"] == "completed"
    assert attendant.post("/cases/nothing/status", {"status": "completed"}).status_code == 404
    page = attendant.get(f"/cases/{case_id}").get_data(as_text=True)
    assert 'data-status="completed"' in page and 'id="change-status"' not in page


def test_reference_check_and_reprint(attendant, serving, trusted):
    """At collection the attendant checks the ID card; the receipt can be printed again in another language."""
    case_id = _register(attendant, serving.first["id"])
    ok = attendant.post(f"/cases/{case_id}/check", {"reference": "1990-1234-567"}, follow_redirects=True)
    assert "يطابق" in ok.get_data(as_text=True)
    wrong = attendant.post(f"/cases/{case_id}/check", {"reference": "19901234568"}, follow_redirects=True)
    assert "لا يطابق" in wrong.get_data(as_text=True)
    assert attendant.post(f"/cases/{case_id}/receipt", {"lang": "xx"}).status_code == 422
    assert attendant.post(f"/cases/{case_id}/receipt", {"lang": "en"}).status_code == 303


def test_list_by_due_date_highlights_overdue(app, attendant, serving, trusted, clock):
    """Both screens list open requests soonest-due first; overdue rows are marked and say so in words."""
    slow = _register(attendant, serving.first["id"])
    trusted.store.put("services", {**services.get_service(trusted, "B"), "sla_hours": 24})
    clock.advance(minutes=5)
    fast = _register(attendant, serving("B")["id"])
    clock.advance(hours=30)
    attendant = Staff(app.test_client())  # the earlier sessions timed out meanwhile
    supervisor = Staff(app.test_client(), "super", "9999")
    for staff in (attendant, supervisor):
        html = staff.get("/cases").get_data(as_text=True)
        rows = re.findall(r'<tr data-case="(\w+)" data-overdue="(yes|no)"( class="alert-error")?', html)
        assert [(case_id, overdue) for case_id, overdue, _ in rows] == [(fast, "yes"), (slow, "no")]
        assert rows[0][2] == ' class="alert-error"' and rows[1][2] == ""
        assert "متأخر" in html
    fragment = attendant.get("/cases", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert fragment.lstrip().startswith("<h2>") and "<html" not in fragment


@pytest.mark.parametrize("lang, valid_text", [("ar", "صالح"), ("ckb", "دروستە"), ("en", "Valid")])
def test_verify_page(client, serving, trusted, lang, valid_text):
    """A scanner types the code and Enter: the verdict, the contents and the current status, in the
    terminal's language; a damaged code or a scanner on an Arabic layout is explained."""
    doc = cases.register_case(trusted, ticket_id=serving.first["id"], kind="request", reference="A12345",
                              by="demo")
    text = cases.issue_receipt(trusted, doc["id"], by="demo")["text"]
    page = client.get("/verify").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    client.post("/lang", data={"lang": lang, "next": "/verify", "csrf_token": token})
    answer = client.post("/verify", data={"code": text + "\n", "csrf_token": token})
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200 and 'data-outcome="valid"' in html and valid_text in html
    assert 'id="current-status"' in html and 'data-status="open"' in html
    cases.change_status(trusted, doc["id"], "completed", by="demo")
    html = client.post("/verify", data={"code": text, "csrf_token": token}).get_data(as_text=True)
    assert 'data-status="completed"' in html
    damaged = client.post("/verify", data={"code": text[:-3], "csrf_token": token})
    assert damaged.status_code == 422 and 'data-outcome="invalid"' in damaged.get_data(as_text=True)
    layout = client.post("/verify", data={"code": "ضصثقفغعهخحج", "csrf_token": token})
    assert 'data-outcome="layout"' in layout.get_data(as_text=True)
    empty = client.post("/verify", data={"code": "", "csrf_token": token})
    assert empty.status_code == 422 and 'data-field="code"' in empty.get_data(as_text=True)


def test_verify_page_expired_and_revoked(client, serving, trusted, root_key, clock):
    """Revoked (from the pulled trust list) and expired receipts still show what they say."""
    doc = cases.register_case(trusted, ticket_id=serving.first["id"], kind="request", reference="A12345", by="demo")
    text = cases.issue_receipt(trusted, doc["id"], by="demo")["text"]
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/verify").get_data(as_text=True)).group(1)
    publish(trusted.store, root_key, listing(trusted, sequence=2, revoked_receipt_ids=frozenset({doc["receipt_id"]})))
    html = client.post("/verify", data={"code": text, "csrf_token": token}).get_data(as_text=True)
    assert 'data-outcome="revoked"' in html and 'data-reason="receipt_revoked"' in html and 'id="contents"' in html
    publish(trusted.store, root_key, listing(trusted, sequence=3))
    clock.advance(days=500)
    html = client.post("/verify", data={"code": text, "csrf_token": token}).get_data(as_text=True)
    assert 'data-outcome="expired"' in html


def test_monthly_report_page_and_csv(supervisor, attendant, serving, trusted):
    """Figures, server-rendered SVG (no script), a CSV whose numbers match; a bad month is explained."""
    first = _register(attendant, serving.first["id"])
    _register(attendant, serving("B")["id"])
    cases.change_status(trusted, first, "completed", by="demo")
    response = supervisor.get("/cases/report?month=2026-11")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert re.search(r'data-figure="received">([^<]+)<', html).group(1) == "٢"
    assert re.search(r'data-figure="completed">([^<]+)<', html).group(1) == "١"
    assert html.count('<svg class="chart"') == 3 and 'data-series="completed"' in html
    assert "<script" not in html.split("</head>", 1)[1]
    data = supervisor.get("/cases/report.csv?month=2026-11")
    assert data.mimetype == "text/csv" and "attachment" in data.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(data.get_data(as_text=True).lstrip("\ufeff"))))
    total = next(r for r in rows if r["group"] == "total")
    assert (total["received"], total["completed"], total["completed_pct"]) == ("2", "1", "50")
    assert {r["key"] for r in rows if r["group"] == "service"} == {"A", "B"}
    bad = supervisor.get("/cases/report?month=2026-13")
    assert bad.status_code == 422 and 'data-field="month"' in bad.get_data(as_text=True)
    assert supervisor.get("/cases/report.csv?month=nope").status_code == 422
    assert 'data-figure="received">٠<' in supervisor.get("/cases/report?month=2026-10").get_data(as_text=True)


def test_markup_is_csp_clean(attendant, supervisor, client, serving, trusted):
    """No inline script, style attribute or event handler on any of the new screens."""
    case_id = _register(attendant, serving.first["id"])
    pages = [attendant.get(p).get_data(as_text=True) for p in
             ("/cases?counter=1", f"/cases/new?ticket={serving()['id']}", f"/cases/{case_id}", "/verify")]
    pages.append(supervisor.get("/cases/report").get_data(as_text=True))
    for html in pages:
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
        assert not re.search(r"\sstyle=", html) and not re.search(r"\son[a-z]+=", html)


@pytest.mark.parametrize("lang", ["ar", "ckb"])
def test_no_english_on_arabic_and_sorani_case_screens(app, attendant, supervisor, serving, trusted, lang):
    """Every new screen in Arabic and Sorani: no Latin words outside codes, numbers and names."""
    trusted.store.put("services", {**services.get_service(trusted, "A"), "fee_iqd": 25000})
    attendant.language(lang)
    supervisor.language(lang)
    case_id = _register(attendant, serving.first["id"], kind="referral", provider="nrc-shelter",
                        details="details", notes="notes")
    text = trusted.store.get(cases.RECEIPTS, cases.get_case(trusted, case_id)["receipt_id"])["text"]
    refused = attendant.post("/cases", _form(serving()["id"], reference="1")).get_data(as_text=True)
    pages = {
        "list": attendant.get("/cases?counter=1&show=all").get_data(as_text=True),
        "form": attendant.get(f"/cases/new?ticket={serving()['id']}").get_data(as_text=True),
        "refused": refused,
        "case": attendant.get(f"/cases/{case_id}").get_data(as_text=True),
        "verify": attendant.post("/verify", {"code": text}).get_data(as_text=True),
        "invalid": attendant.post("/verify", {"code": text[:-2]}).get_data(as_text=True),
        "report": supervisor.get("/cases/report").get_data(as_text=True),
    }
    for name, page in pages.items():
        assert latin_words(page) == [], f"English on the {lang} {name} screen"
