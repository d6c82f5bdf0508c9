"""Requests and receipts across day close: an open case stays live with its receipt, a closed one
moves to the archive, and the monthly report, the case page and receipt verification read the
same either way."""
import datetime as dt

import pytest

from kiosk import cases
from kiosk.domain.errors import InvalidTransition
from kiosk.usecases.days import close_days

DAY = "2026-11-22"


def live(centre, table: str) -> set[str]:
    return set(centre.store.keys(table))


def test_case_stays_live_while_open_then_reports_and_verifies_from_the_archive(trusted, serving, clock):
    month = DAY[:7]
    open_case = cases.register_case(trusted, ticket_id=serving.first["id"], kind="request", reference="NIN12345",
                                    by="demo")
    closed_case = cases.register_case(trusted, ticket_id=serving()["id"], kind="inquiry", reference="NIN67890",
                                      by="demo")
    serving()  # the second ticket is finished too
    receipt = cases.issue_receipt(trusted, open_case["id"], by="demo")
    cases.issue_receipt(trusted, closed_case["id"], by="demo")
    cases.change_status(trusted, closed_case["id"], "completed", by="demo")
    as_of = clock.now() + dt.timedelta(days=5)
    before = cases.report(trusted, month, now=as_of)
    clock.advance(days=1)

    close_days(trusted)
    assert live(trusted, "requests") == {open_case["id"]}, "open cases stay live"
    assert live(trusted, "receipts") == {receipt["id"]}, "with their receipts"
    assert cases.report(trusted, month, now=as_of) == before
    assert cases.get_case(trusted, closed_case["id"])["status"] == "completed"
    with pytest.raises(InvalidTransition):
        cases.change_status(trusted, closed_case["id"], "rejected", by="demo", reason="late")

    cases.change_status(trusted, open_case["id"], "completed", by="demo")
    clock.advance(days=1)
    close_days(trusted)
    assert live(trusted, "requests") == set() and live(trusted, "receipts") == set()
    after = cases.report(trusted, month, now=as_of)
    assert after.total.received == 2 and after.total.completed == 2
    verified = cases.verify_scanned(trusted, receipt["text"])
    assert verified["outcome"] == "valid" and verified["case"]["id"] == open_case["id"]
    assert verified["case"]["status"] == "completed" and verified["case"]["has_receipt"]
    assert cases.issue_receipt(trusted, open_case["id"], by="demo") == receipt, "the archived receipt"
