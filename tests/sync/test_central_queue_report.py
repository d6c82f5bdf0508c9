"""The queue report at central (SQLite and PostgreSQL) equals the centre's own after a real sync:
simulated closed days (transfers and no-shows included) and the citizens' feedback given after the
days were archived; the national report adds a row per centre; the files open."""
from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json

import openpyxl
import pytest

from kiosk import create_app as create_kiosk_app
from kiosk import services
from kiosk.usecases import insight
from kiosk.usecases.simulation import simulate
from sync import agent as agent_mod
from sync.central import queue_report

FIRST, LAST = dt.date(2026, 11, 2), dt.date(2026, 11, 6)
OPERATOR = ("ana", "correct horse battery")


@pytest.fixture
def centre(kiosk_dir, kiosk_clock, store):
    """The kiosk's use cases on the test store."""
    app = create_kiosk_app({"DATA_DIR": str(kiosk_dir), "SECRET_KEY": "k", "CENTRE": "ERB-01",
                            "PRINTER_URL": "off"}, store=store, clock=kiosk_clock)
    yield app.extensions["kiosk"].centre
    app.extensions["kiosk"].close()


@pytest.fixture
def synced(centre, kiosk_dir, kiosk_clock, server_clock, ops, central_server, make_agent, tmp_path):
    """Five simulated, closed days at the kiosk, feedback on some of their finished visits (given
    after the day close, so read from the archive), central configured with the same services,
    and everything pushed through a real sync."""
    simulate(centre, kiosk_clock, first_day=FIRST, days=5, per_day=40, seed=5)
    done = [t for t in centre.history.records("tickets", insight_days()) if t["state"] == "done"]
    for n, ticket in enumerate(done[::7]):
        insight.give_feedback(centre, ticket["id"], score=1 + n % 5, comment="slow" if n % 5 == 0 else None)
    server_clock.set(kiosk_clock.now())
    ops.add_centre()
    ops.cli("add-operator", OPERATOR[0], "--password-stdin", input=OPERATOR[1] + "\n")
    config = tmp_path / "erb-01.json"
    config.write_text(json.dumps({"services": [{**s, "id": s["code"]} for s in services.services_list(centre)]}),
                      encoding="utf-8")
    ops.cli("config-load", "ERB-01", str(config))
    agent_mod.enroll(kiosk_dir, central_server.url, ops.code(), centre="ERB-01", clock=kiosk_clock)
    outcome = make_agent().run()
    assert outcome.acked_seq == centre.store.seq
    return centre


def insight_days() -> list[str]:
    return [(FIRST + dt.timedelta(days=n)).isoformat() for n in range((LAST - FIRST).days + 1)]


def auth() -> dict:
    return {"Authorization": "Basic " + base64.b64encode(":".join(OPERATOR).encode()).decode()}


def test_central_report_of_a_centre_equals_the_centres_own(synced, ops):
    own = insight.queue_report(synced, FIRST, LAST)
    assert own["totals"]["transferred"] > 0 and own["totals"]["no_show"] > 0 and own["feedback"]["count"] > 5
    assert own["feedback"]["low"], "some scores are low"
    assert not synced.store.count("tickets"), "the days are archived at the kiosk"
    with ops.engine.connect() as conn:
        at_central = queue_report.report(conn, FIRST, LAST, "ERB-01")
    assert at_central == own


def test_national_report_has_a_row_per_centre_and_names_attendants_by_centre(synced, ops, central_app):
    own = insight.queue_report(synced, FIRST, LAST)
    with ops.engine.connect() as conn:
        national = queue_report.report(conn, FIRST, LAST)
    assert national["services"] == own["services"] and national["totals"] == own["totals"]
    assert national["centres"] == [{"code": "ERB-01", **{k: own["totals"][k] for k in (
        "issued", "served", "no_show", "transferred", "cancelled", "within_target")},
        "wait_s": own["totals"]["wait_s"], "service_s": national["centres"][0]["service_s"],
        "feedback": {k: own["feedback"][k] for k in ("count", "mean")}}]
    assert [s["id"] for s in national["staff"]] == [f"ERB-01/{s['id']}" for s in own["staff"]]
    assert {x["centre"] for x in national["feedback"]["low"]} == {"ERB-01"}

    client = central_app.test_client()
    args = f"from={FIRST}&to={LAST}"
    assert client.get(f"/queue-report?{args}").status_code == 401, "operators only"
    page = client.get(f"/queue-report?{args}&lang=en", headers=auth())
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-figure="issued">' + str(own["totals"]["issued"]) in html and "By centre" in html
    as_json = client.get(f"/queue-report.json?{args}&centre=ERB-01", headers=auth()).get_json()
    assert as_json == own
    rows = list(csv.reader(io.StringIO(client.get(f"/queue-report.csv?{args}", headers=auth())
                                       .get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[1][2:5] == ["national", "total", "all"] and int(rows[1][5]) == own["totals"]["issued"]
    assert ["centre", "ERB-01"] == rows[2][3:5]
    book = openpyxl.load_workbook(io.BytesIO(client.get(f"/queue-report.xlsx?{args}&centre=ERB-01",
                                                        headers=auth()).data))
    sheet = book["report"]
    assert sheet.cell(2, 6).value == own["totals"]["issued"]
    assert book.worksheets[1].max_row == 1 + len(own["feedback"]["low"])


def test_bad_ranges_are_explained_and_unknown_centres_are_404(synced, central_app):
    client = central_app.test_client()
    bad = client.get("/queue-report?from=2026-13-01&lang=en", headers=auth())
    assert bad.status_code == 422 and "Choose a first day like 2026-11-01." in bad.get_data(as_text=True)
    too_long = client.get("/queue-report.json?from=2026-01-01&to=2026-11-30", headers=auth())
    assert too_long.status_code == 422 and too_long.get_json()["error"]["fields"]["to"]
    one_centre = client.get("/queue-report.json?from=2026-01-01&to=2026-11-30&centre=ERB-01", headers=auth())
    assert one_centre.status_code == 200, "a centre's report may cover a year"
    assert client.get("/queue-report?centre=NOPE", headers=auth()).status_code == 404


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
def test_records_received_before_the_day_column_get_their_day(central_url_db):
    """The migration that adds sync_records.day fills it from the documents already there."""
    from sqlalchemy import text

    from sync.central import db

    engine = db.make_engine(central_url_db)
    try:
        config = db.alembic_config()
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            from alembic import command
            from alembic.script import ScriptDirectory
            command.downgrade(config, ScriptDirectory.from_config(config).get_revision("0008").down_revision)
            now = dt.datetime(2026, 11, 22, tzinfo=dt.timezone.utc)
            for key, doc in (("t1", {"id": "t1", "day": "2026-11-20"}), ("s1", {"id": "s1"}), ("x", [1])):
                conn.execute(text("INSERT INTO sync_records (centre, tbl, key, device_id, seq, hlc, doc, deleted, "
                                  "received_at, updated_at) VALUES ('C', 'tickets', :k, 'd', 1, 'h', :doc, false, "
                                  ":now, :now)"), {"k": key, "doc": json.dumps(doc), "now": now})
        assert db.upgrade(engine) == db.head_revision()
        with engine.connect() as conn:
            days = dict(conn.execute(text("SELECT key, day FROM sync_records WHERE centre = 'C'")).all())
        assert days == {"t1": "2026-11-20", "s1": None, "x": None}
    finally:
        engine.dispose()
