"""The queue report and citizen feedback on the screens and the API: one answer per finished
ticket, refusals in the contract's codes, the answers in the supervisor's report per service and
attendant with low scores listed, the CSV and XLSX files, the charts in three languages, and
feedback given on the phone page in real Chromium reaching the supervisor's report."""
from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook

from kiosk import services
from kiosk.usecases.days import close_days
from tests.web.a11y import check_page
from tests.web.conftest import csrf_from, screenshot

DAY = "2026-11-22"


def served(centre, service="A", counter="1", by="demo") -> dict:
    """A ticket issued, called, started and finished at `counter` by `by`."""
    ticket = services.issue_ticket(centre, service=service)
    services.call_ticket(centre, ticket["id"], counter=counter, by=by)
    services.act(centre, ticket["id"], "start", by=by)
    return services.act(centre, ticket["id"], "finish", by=by)


def token(client, staff="super", pin="9999") -> dict:
    """A bearer header for the API."""
    answer = client.post("/api/v1/auth/token", json={"staff": staff, "pin": pin})
    assert answer.status_code == 200, answer.get_json()
    return {"Authorization": f"Bearer {answer.get_json()['token']}"}


def test_feedback_api_takes_one_answer_per_finished_ticket(client, centre):
    done = served(centre)
    waiting = services.issue_ticket(centre, service="B")
    url = f"/api/v1/tickets/{done['id']}/feedback"
    assert client.post(url, json={"score": 6}).status_code == 422
    assert client.post(url, json={"score": True}).status_code == 400
    assert client.post(url, json={"score": 4, "comment": "x" * 501}).status_code == 422
    assert client.post(url, json={"score": 4, "extra": 1}).status_code == 422
    first = client.post(url, json={"score": 4, "comment": "quick and kind"})
    assert first.status_code == 201 and first.get_json()["feedback"]["score"] == 4
    again = client.post(url, json={"score": 1})
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "already_rated"
    early = client.post(f"/api/v1/tickets/{waiting['id']}/feedback", json={"score": 5})
    assert early.status_code == 409 and early.get_json()["error"]["code"] == "invalid_transition"
    assert client.post("/api/v1/tickets/nope/feedback", json={"score": 5}).status_code == 404
    stored = centre.store.all("feedback")
    assert len(stored) == 1 and stored[0]["score"] == 4 and stored[0]["staff"] == "demo"
    assert set(stored[0]) == {"id", "ticket", "day", "service", "staff", "counter", "score", "comment", "at"}


def test_report_api_counts_feedback_per_service_and_attendant_and_lists_low_scores(client, centre):
    a1, a2, b1 = served(centre, "A"), served(centre, "A"), served(centre, "B", counter="2")
    for ticket, score, comment in ((a1, 5, None), (a2, 1, "waited long"), (b1, 2, None)):
        assert client.post(f"/api/v1/tickets/{ticket['id']}/feedback",
                           json={"score": score, **({"comment": comment} if comment else {})}).status_code == 201
    headers = token(client)
    assert client.get(f"/api/v1/reports/queue?from={DAY}&to={DAY}").status_code == 401
    assert client.get(f"/api/v1/reports/queue?from={DAY}&to={DAY}", headers=token(client, "demo", "0000")).status_code == 403
    assert client.get("/api/v1/reports/queue?from=2026-13-01", headers=headers).status_code == 422
    report = client.get(f"/api/v1/reports/queue?from={DAY}&to={DAY}", headers=headers).get_json()
    assert report["feedback"]["count"] == 3 and report["feedback"]["mean"] == round(8 / 3, 2)
    by_service = {s["code"]: s for s in report["services"]}
    assert by_service["A"]["feedback"] == {"count": 2, "mean": 3.0} and by_service["B"]["served"] == 1
    assert by_service["A"]["issued"] == 2 and set(by_service["A"]["wait_s"]) == {"p50", "p90", "max"}
    assert report["staff"][0]["id"] == "demo" and report["staff"][0]["feedback"]["count"] == 3
    assert sorted((x["score"], x["comment"]) for x in report["feedback"]["low"]) == [(1, "waited long"), (2, "")]
    assert sum(h["issued"] for h in report["hours"]) == 3

    table = list(csv.reader(io.StringIO(client.get(f"/api/v1/reports/queue?from={DAY}&to={DAY}&format=csv",
                                                   headers=headers).get_data(as_text=True).lstrip("\ufeff"))))
    assert table[0][:5] == ["from", "to", "scope", "group", "key"]
    assert [r[3:5] for r in table[1:3]] == [["total", "all"], ["service", "A"]]
    book = load_workbook(io.BytesIO(client.get(f"/api/v1/reports/queue?from={DAY}&to={DAY}&format=xlsx",
                                               headers=headers).data))
    sheet = book["report"]
    header = [c.value for c in sheet[1]]
    total = dict(zip(header, [c.value for c in sheet[2]]))
    assert total["issued"] == 3 and total["served"] == 3 and total["feedback_count"] == 3
    assert [c.value for c in book.worksheets[1][2]][4] in (1, 2)


def test_feedback_survives_day_close_and_the_report_reads_it_from_the_archive(client, centre, clock):
    done = served(centre)
    assert client.post(f"/api/v1/tickets/{done['id']}/feedback", json={"score": 3}).status_code == 201
    clock.advance(days=1)
    result = close_days(centre)
    assert result["closed"][0].counts.get("feedback") == 1 and centre.store.all("feedback") == []
    headers = token(client)
    report = client.get(f"/api/v1/reports/queue?from={DAY}&to={DAY}", headers=headers).get_json()
    assert report["feedback"] == {"count": 1, "mean": 3.0, "low": []}
    again = client.post(f"/api/v1/tickets/{done['id']}/feedback", json={"score": 1})
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "already_rated"


@pytest.mark.parametrize("lang,direction", [("ar", "rtl"), ("ckb", "rtl"), ("en", "ltr")])
def test_supervisor_report_page_in_each_language(supervisor, centre, lang, direction):
    served(centre)
    supervisor.post("/lang", {"lang": lang}, htmx=False)
    html = supervisor.get(f"/admin/report?from={DAY}&to={DAY}").get_data(as_text=True)
    assert f'dir="{direction}"' in html and 'class="chart heatmap"' in html and 'class="chart histogram"' in html
    assert 'data-weekday="6" data-hour="9" data-issued="1"' in html, "22 Nov 2026 is a Sunday, 09:00 in Baghdad"
    assert supervisor.get(f"/admin/report?from={DAY}&to=2026-11-01").status_code == 422
    assert supervisor.get(f"/admin/report/xlsx?from={DAY}&to={DAY}").data[:2] == b"PK"


def test_attendant_cannot_open_the_report(attendant):
    assert attendant.get("/admin/report").status_code == 403


def test_phone_feedback_form_and_counter_tablet(client, centre, clock):
    done = served(centre)
    page = client.get(f"/t/{done['id']}")
    assert f"/t/{done['id']}/feedback" in page.get_data(as_text=True), "the follow page links to the question"
    form = client.get(f"/t/{done['id']}/feedback?lang=en").get_data(as_text=True)
    assert form.count('name="score"') == 5
    refused = client.post(f"/t/{done['id']}/feedback", data={"score": "5"})
    assert refused.status_code in (400, 403) and centre.store.all("feedback") == [], "no CSRF token, no answer"
    sent = client.post(f"/t/{done['id']}/feedback?lang=en", data={"score": "2", "comment": "cold hall",
                                                                  "csrf_token": csrf_from(form)})
    assert sent.status_code == 200 and 'data-state="thanks"' in sent.get_data(as_text=True)
    assert centre.store.get("feedback", done["id"])["comment"] == "cold hall"

    clock.advance(seconds=60)
    second = served(centre, counter="1")
    tablet = client.get("/feedback/1?lang=ar").get_data(as_text=True)
    assert 'data-state="ask"' in tablet and second["number"] in tablet and 'dir="rtl"' in tablet
    answer = client.post("/feedback/1?lang=ar", data={"score": "5", "ticket": second["id"],
                                                      "csrf_token": csrf_from(tablet)})
    assert answer.status_code == 303 and centre.store.get("feedback", second["id"])["score"] == 5
    assert 'data-state="idle"' in client.get("/feedback/1").get_data(as_text=True)


def test_feedback_on_the_phone_in_chromium_reaches_the_supervisors_report(live_server, centre, page):
    done = served(centre)
    base = live_server.url
    page.goto(f"{base}/t/{done['id']}?lang=ckb")
    page.click("#feedback")
    page.wait_for_selector("#feedback-form")
    assert page.evaluate("() => document.documentElement.dir") == "rtl"
    screenshot(page, "feedback-phone-ckb")
    assert check_page(page, touch=True) == [], "the faces are big enough, labelled and legible"
    page.fill("#comment", "زۆر باش")
    page.click("button.face[data-score='4']")
    page.wait_for_selector("#feedback[data-state=thanks]")
    page.goto(f"{base}/t/{done['id']}?lang=ckb")
    assert page.locator("#feedback-given").is_visible() and page.locator("#feedback").count() == 0, \
        "once answered, the phone page thanks instead of asking again"

    page.goto(f"{base}/staff/login")
    page.fill("#staff", "super")
    page.fill("#pin", "9999")
    page.click("button[type=submit].primary")
    page.wait_for_load_state("load")
    for lang in ("ar", "ckb", "en"):
        page.goto(f"{base}/admin/report?from={DAY}&to={DAY}")
        page.click(f".staff-header button[value={lang}]")
        page.wait_for_load_state("load")
        assert page.locator("[data-figure=feedback]").inner_text().startswith("4" if lang == "en" else "٤")
        box = page.locator(".chart.heatmap").bounding_box()
        assert box and box["width"] > 300 and box["height"] > 80, "the SVG is drawn"
        screenshot(page, f"queue-report-{lang}")
        assert check_page(page, touch=False) == [], lang
    page.emulate_media(media="print")
    assert page.locator(".staff-header").is_hidden(), "the print stylesheet hides the controls"
    screenshot(page, "queue-report-print-en")
