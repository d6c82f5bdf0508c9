"""Day close and sync (SQLite and PostgreSQL): moving a closed day's records into the kiosk's
archive never deletes them at central, and archive files are pruned only once central has
acknowledged them."""
from __future__ import annotations

import pytest

from kiosk import create_app as create_kiosk_app
from kiosk.usecases.days import close_days
from tests.sync.support import ticket_doc
from tests.sync.test_agent import central_cursor, central_tickets

FINISHED = ("waiting", "called", "serving", "done")


@pytest.fixture
def centre(kiosk_dir, kiosk_clock, store):
    """The kiosk's use cases on the test store, keeping archived days for one day only."""
    app = create_kiosk_app({"DATA_DIR": str(kiosk_dir), "SECRET_KEY": "k", "CENTRE": "ERB-01",
                            "PRINTER_URL": "off", "ARCHIVE_RETENTION_DAYS": 1}, store=store, clock=kiosk_clock)
    yield app.extensions["kiosk"].centre
    app.extensions["kiosk"].close()


def test_archived_records_stay_at_central_and_prune_waits_for_its_acknowledgement(enrolled, store, centre,
                                                                                  make_agent, ops, kiosk_clock):
    done = [ticket_doc(states=FINISHED, number=n) for n in range(1, 6)]  # day 2026-11-22
    for doc in done:
        store.put("tickets", doc)
    kiosk_clock.advance(days=1)
    result = close_days(centre)
    assert [p.counts for p in result["closed"]] == [{"tickets": 5}]
    assert store.count("tickets") == 0
    kiosk_clock.advance(days=2)
    assert close_days(centre)["pruned"] == [], "central has not acknowledged those records yet"

    outcome = make_agent().run()
    assert outcome.acked_seq == store.seq and central_cursor(ops) == store.seq
    assert central_tickets(ops) == {d["id"]: d for d in done}, "moving to the archive deleted nothing"
    pruned = close_days(centre)["pruned"]
    assert [p.day for p in pruned] == ["2026-11-22"] and centre.history.archive.parts() == []
