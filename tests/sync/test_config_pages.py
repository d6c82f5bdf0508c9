"""Central's configuration pages on SQLite and PostgreSQL: a change made on a page reaches an
enrolled kiosk through real sync (agent over HTTP, the kiosk applying its inbox) and takes effect
in the running kiosk (a new service on the citizen screen and API, a renamed service, a reset PIN
at the counter sign-in, a holiday that closes the citizen screen); config-load's rules shown
beside the fields in the operator's language with nothing lost; the form token; the audit; how
config-load and the pages coexist; a supervisor's local switch that survives a pull."""
from __future__ import annotations

import base64
import json
import re

import pytest
import requests
from sqlalchemy import select

from kiosk import create_app as create_kiosk, services
from kiosk.clock import FrozenClock
from kiosk.domain import overrides
from kiosk.domain.errors import ServiceUnavailable, Unauthorized
from sync import agent as agent_mod
from sync.central.models import ConfigAudit, ConfigDoc
from tests.web.conftest import csrf_from

OPERATOR = ("ana", "correct horse battery")
AUTH = {"Authorization": "Basic " + base64.b64encode(":".join(OPERATOR).encode()).decode()}
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
ERROR = re.compile(r'data-error-for="(\w+)">([^<]*)<')
BASE = "/centres/ERB-01/config"

SERVICE_A = {"key": "A", "name_ar": "وثائق الأحوال المدنية", "name_ckb": "بەڵگەنامەکانی باری شارستانی",
             "name_en": "Civil status documents", "prefix": "A", "fee_iqd": "0", "active": "1"}
SERVICE_R = {"key": "R", "name_ar": "الإقامة", "name_ckb": "نیشتەجێبوون", "name_en": "Residency",
             "prefix": "R", "target_wait_min": "٢٠", "daily_cap": "", "fee_iqd": "5000", "active": "1",
             "documents_ar": "هوية\nصورة", "documents_ckb": "ناسنامە\nوێنە", "documents_en": "ID card\nPhoto"}
# the rule beside a prefix field that is not 1-3 capital letters
PREFIX_RULE = {"ar": "من حرف إلى ثلاثة أحرف لاتينية كبيرة A-Z.", "ckb": "یەک بۆ سێ پیتی گەورەی لاتینی A-Z.",
               "en": "One to three capital letters A-Z."}


class Pages:
    """An operator at central's configuration pages (the Flask test client of the served app)."""

    def __init__(self, app):
        """Sign in as the test operator."""
        self.client = app.test_client()

    def get(self, path: str, lang: str = "en"):
        """A page in a language."""
        return self.client.get(f"{path}{'&' if '?' in path else '?'}lang={lang}", headers=AUTH)

    def token(self) -> str:
        """The operator's form token (from any page with a form)."""
        return TOKEN.search(self.get(f"{BASE}/services/+new").get_data(as_text=True)).group(1)

    def post(self, path: str, data: dict, lang: str = "en", token: bool = True):
        """Submit a form."""
        body = dict(data)
        if token:
            body["csrf_token"] = self.token()
        return self.client.post(f"{path}?lang={lang}", data=body, headers=AUTH)

    def save(self, table: str, key: str, data: dict):
        """Submit a form that must be accepted."""
        answer = self.post(f"{BASE}/{table}/{key}", data)
        assert answer.status_code == 303, (answer.status_code, ERROR.findall(answer.get_data(as_text=True)))
        return answer


@pytest.fixture
def pages(central_app, ops) -> Pages:
    """Centre ERB-01 and an operator."""
    ops.add_centre()
    ops.cli("add-operator", OPERATOR[0], "--password-stdin", input=OPERATOR[1] + "\n")
    return Pages(central_app)


def _audit(ops) -> list:
    """Central's configuration audit, oldest first."""
    with ops.engine.connect() as conn:
        return conn.execute(select(ConfigAudit).order_by(ConfigAudit.id)).all()


def _doc(ops, table: str, key: str):
    """Central's current document row."""
    with ops.engine.connect() as conn:
        return conn.execute(select(ConfigDoc).where(ConfigDoc.tbl == table, ConfigDoc.key == key)).first()


# -- the pages alone ---------------------------------------------------------------------------------

@pytest.mark.parametrize("lang", ["ar", "ckb", "en"])
def test_a_refused_form_shows_each_rule_beside_its_field_and_keeps_what_was_typed(pages, ops, lang):
    typed = {**SERVICE_R, "prefix": "r1", "name_ckb": "", "fee_iqd": "-5", "documents_en": "ID card"}
    answer = pages.post(f"{BASE}/services/+new", typed, lang=lang)
    html = answer.get_data(as_text=True)
    assert answer.status_code == 422 and 'id="problems"' in html
    errors = dict(ERROR.findall(html))
    assert set(errors) == {"prefix", "name_ckb", "fee_iqd", "documents"}
    assert errors["prefix"] == PREFIX_RULE[lang]
    assert 'value="r1"' in html and SERVICE_R["name_ar"] in html and "هوية\nصورة" in html
    assert _doc(ops, "services", "R") is None and _audit(ops) == []


def test_the_same_rules_as_config_load(pages, ops, tmp_path):
    """What the page refuses, a configuration file is refused for, and the other way round."""
    pages.save("services", "+new", SERVICE_A)
    answer = pages.post(f"{BASE}/counters/+new", {"key": "bad id!", "name_ar": "١", "name_ckb": "١", "name_en": "1",
                                                  "services": ["A", "NOPE"], "active": "1"})
    assert answer.status_code == 422
    assert set(dict(ERROR.findall(answer.get_data(as_text=True)))) == {"key", "services"}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"counters": [{"id": "bad id!", "names": {"ar": "١", "ckb": "١", "en": "1"},
                                              "services": ["A"]}]}), encoding="utf-8")
    result = ops.app.test_cli_runner().invoke(args=["config-load", "ERB-01", str(path)])
    assert result.exit_code != 0 and "counters[0].id" in result.output
    staff = pages.post(f"{BASE}/staff/+new", {"key": "sara", "display_name": "Sara", "role": "attendant", "pin": "12"})
    assert dict(ERROR.findall(staff.get_data(as_text=True))) == {"pin": "4 to 12 digits."}
    assert 'value="12"' not in staff.get_data(as_text=True)  # a PIN is never shown back
    new = pages.post(f"{BASE}/staff/+new", {"key": "sara", "display_name": "Sara", "role": "boss"})
    assert set(dict(ERROR.findall(new.get_data(as_text=True)))) == {"pin", "role"}
    taken = pages.post(f"{BASE}/services/+new", SERVICE_A)
    assert dict(ERROR.findall(taken.get_data(as_text=True))) == {"key": "This code is already used in this centre."}
    holidays = pages.post(f"{BASE}/calendar", {"weekend": ["fri", "sat"], "holidays": "2026-12-25\n25/12/2026"})
    assert holidays.status_code == 422 and "holidays" in dict(ERROR.findall(holidays.get_data(as_text=True)))
    no_day = pages.post(f"{BASE}/calendar", {"weekend": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]})
    assert "weekend" in dict(ERROR.findall(no_day.get_data(as_text=True)))
    assert [row.key for row in _audit(ops)] == ["A"]


def test_a_form_without_the_token_or_from_another_site_is_refused(pages, ops):
    refused = pages.post(f"{BASE}/services/+new", SERVICE_A, lang="ar", token=False)
    assert refused.status_code == 400 and 'lang="ar"' in refused.get_data(as_text=True)
    wrong = pages.post(f"{BASE}/services/+new", {**SERVICE_A, "csrf_token": "0" * 64}, token=False)
    assert wrong.status_code == 400
    cross = pages.client.post(f"{BASE}/calendar", headers={**AUTH, "Origin": "https://evil.example"},
                              data={"csrf_token": pages.token(), "weekend": ["fri"]})
    assert cross.status_code == 403
    assert pages.client.get(f"{BASE}").status_code == 401  # no operator, no page
    assert _doc(ops, "services", "A") is None and _doc(ops, "settings", "calendar") is None and _audit(ops) == []


def test_every_change_is_audited_and_a_pin_never_recorded(pages, ops, server_clock):
    pages.save("services", "+new", SERVICE_A)
    server_clock.advance(60)
    pages.save("services", "A", {**SERVICE_A, "name_en": "Civil documents", "daily_cap": "٤٠"})
    pages.save("staff", "+new", {"key": "sara", "display_name": "Sara", "role": "attendant", "pin": "4711", "active": "1"})
    pages.save("staff", "sara", {"display_name": "Sara", "role": "supervisor", "pin": "9876", "active": "1"})
    pages.save("services", "A", {**SERVICE_A, "name_en": "Civil documents", "daily_cap": "40"})  # no change: no row
    rows = _audit(ops)
    assert [(r.tbl, r.key, r.action, r.actor, r.via) for r in rows] == [
        ("services", "A", "create", "ana", "page"), ("services", "A", "update", "ana", "page"),
        ("staff", "sara", "create", "ana", "page"), ("staff", "sara", "update", "ana", "page")]
    assert rows[1].changes == {"names": [{"ar": SERVICE_A["name_ar"], "ckb": SERVICE_A["name_ckb"], "en": "Civil status documents"},
                                         {"ar": SERVICE_A["name_ar"], "ckb": SERVICE_A["name_ckb"], "en": "Civil documents"}],
                               "daily_cap": [None, 40]}
    assert rows[3].changes == {"pin": [None, "reset"], "role": ["attendant", "supervisor"]}
    assert rows[1].at > rows[0].at and all(r.seq for r in rows)
    text = json.dumps([r.changes for r in rows])
    assert "argon2" not in text and "9876" not in text and "4711" not in text
    assert _doc(ops, "staff", "sara").doc["pin_hash"].startswith("$argon2")
    history = pages.get(f"{BASE}/audit", "ckb").get_data(as_text=True)
    assert history.count("data-audit=") == 4 and "argon2" not in history


def test_config_load_keeps_what_the_pages_made_and_replaces_what_it_names(pages, ops, tmp_path):
    """Pages and config-load side by side (docs/sync.md): a file that lacks a page's document
    leaves it; a file that names it replaces it and keeps it from then on."""
    path = tmp_path / "centre.json"
    path.write_text(json.dumps({"services": [{"code": "B", "prefix": "B", "names": {"ar": "ب", "ckb": "ب", "en": "B"}}]}),
                    encoding="utf-8")
    ops.cli("config-load", "ERB-01", str(path), "--by", "rashid")
    pages.save("services", "+new", SERVICE_A)
    pages.save("services", "B", {"name_ar": "ب", "name_ckb": "ب", "name_en": "Bee", "prefix": "B", "fee_iqd": "0", "active": "1"})
    ops.cli("config-load", "ERB-01", str(path), "--by", "rashid")
    assert _doc(ops, "services", "A").doc["names"]["en"] == SERVICE_A["name_en"] and not _doc(ops, "services", "A").deleted
    assert _doc(ops, "services", "B").doc["names"]["en"] == "B" and _doc(ops, "services", "B").source == "config"
    path.write_text(json.dumps({"services": []}), encoding="utf-8")
    ops.cli("config-load", "ERB-01", str(path))
    assert _doc(ops, "services", "B").deleted and not _doc(ops, "services", "A").deleted
    assert [(r.key, r.action, r.via, r.actor) for r in _audit(ops)][-2:] == [
        ("B", "update", "config-load", "config-load:rashid"), ("B", "delete", "config-load", _audit(ops)[-1].actor)]


# -- through real sync ---------------------------------------------------------------------------------

@pytest.fixture
def world(pages, central_server, ops, tmp_path, server_clock):
    """Central served over HTTP with ERB-01 configured from its pages; a running kiosk of ERB-01
    enrolled and synced once."""
    pages.save("services", "+new", SERVICE_A)
    pages.save("counters", "+new", {"key": "1", "name_ar": "١", "name_ckb": "١", "name_en": "1", "services": ["A"], "active": "1"})
    pages.save("staff", "+new", {"key": "sara", "display_name": "Sara", "role": "attendant", "pin": "4711", "active": "1"})
    kiosk_clock = FrozenClock(server_clock.now())  # Sunday 2026-11-22, 12:00 in Baghdad
    kiosk_dir = tmp_path / "kiosk"
    app = create_kiosk({"DATA_DIR": str(kiosk_dir), "SECRET_KEY": "test", "PRINTER_URL": "off", "CENTRE": "ERB-01",
                        "TICKET_RATE_PER_MIN": 0}, clock=kiosk_clock)
    centre = app.extensions["kiosk"].centre  # opens the store, which owns the data directory
    agent_mod.enroll(kiosk_dir, central_server.url, ops.code(), centre="ERB-01", clock=kiosk_clock)

    def sync():
        """One cron round of the agent, then the running kiosk applies what was pulled."""
        with requests.Session() as session:
            agent_mod.Agent(kiosk_dir, centre="ERB-01", clock=kiosk_clock, retry_delay_s=0.01, timeout=(2, 5),
                            retries=0, session=session).run()
        return app.extensions["kiosk"].apply_inbox()

    sync()
    yield {"app": app, "centre": centre, "sync": sync, "clock": kiosk_clock}
    app.extensions["kiosk"].close()


def _citizen(client, lang: str = "en") -> str:
    """The citizen screen's services page in a language."""
    token = csrf_from(client.get("/kiosk").get_data(as_text=True))
    client.post("/kiosk/lang", data={"lang": lang, "csrf_token": token})
    return client.get("/kiosk/services").get_data(as_text=True)


def test_page_changes_reach_the_running_kiosk_through_sync(world, pages):
    centre, client = world["centre"], world["app"].test_client()
    assert [s["code"] for s in services.services_list(centre)] == ["A"]
    pages.save("services", "+new", SERVICE_R)
    pages.save("services", "A", {**SERVICE_A, "name_ar": "البطاقة الوطنية"})
    pages.save("staff", "sara", {"display_name": "Sara", "role": "attendant", "pin": "2468", "active": "1"})
    assert world["sync"]() >= 3
    listed = {s["code"]: s for s in client.get("/api/v1/services").get_json()["services"]}
    assert set(listed) == {"A", "R"} and listed["R"]["available"]
    assert listed["R"]["documents"] == [{"ar": "هوية", "ckb": "ناسنامە", "en": "ID card"},
                                        {"ar": "صورة", "ckb": "وێنە", "en": "Photo"}]
    assert centre.store.get("services", "R")["target_wait_min"] == 20
    screen = _citizen(client, "ar")
    assert 'data-service="R"' in screen and "البطاقة الوطنية" in screen and "الإقامة" in screen
    ticket = services.issue_ticket(centre, service="R", lang="en")
    assert ticket["number"].startswith("R")
    with pytest.raises(Unauthorized):
        services.authenticate(centre, "sara", "4711")
    page = client.get("/staff/login").get_data(as_text=True)
    signed_in = client.post("/staff/login", data={"staff": "sara", "pin": "2468", "csrf_token": csrf_from(page)})
    assert signed_in.status_code in (302, 303) and "/staff/login" not in signed_in.headers["Location"]


def test_a_holiday_closes_the_citizen_screen_and_names_the_next_working_day(world, pages):
    centre, client = world["centre"], world["app"].test_client()
    # Sunday 22 and Monday 23 November 2026 are holidays; Friday and Saturday the weekend
    pages.post(f"{BASE}/calendar", {"weekend": ["fri", "sat"], "holidays": "٢٠٢٦-١١-٢٢\n2026-11-23"})
    world["sync"]()
    screen = _citizen(client, "en")
    assert 'id="centre-closed"' in screen and "The centre is closed today." in screen
    assert "Tuesday" in screen and "24" in screen and 'data-step="services"' in screen
    listed = client.get("/api/v1/services").get_json()["services"]
    assert listed[0]["unavailable_reason"] == "closed_day" and listed[0]["reopens_at"] == "2026-11-24T05:00:00.000Z"
    with pytest.raises(ServiceUnavailable):
        services.issue_ticket(centre, service="A")
    world["clock"].set("2026-11-24T06:00:00Z")
    assert 'id="centre-closed"' not in _citizen(client, "ckb")
    assert services.issue_ticket(centre, service="A")["number"].startswith("A")


def test_a_local_switch_survives_a_pull_until_central_changes_that_field(world, pages):
    centre = world["centre"]
    services.update_service(centre, "A", by="sup", active=False)
    pages.save("services", "A", {**SERVICE_A, "name_en": "Civil records"})  # central renames it
    world["sync"]()
    svc = centre.store.get("services", "A")
    assert svc["names"]["en"] == "Civil records" and svc["active"] is False
    assert not services.availability(centre, svc).open
    world["sync"]()  # a round with nothing new changes nothing
    assert centre.store.get("services", "A")["active"] is False
    # central switches it off itself, later on again: its own decisions now count
    pages.save("services", "A", {**SERVICE_A, "name_en": "Civil records", "active": ""})
    world["sync"]()
    assert centre.store.get(overrides.TABLE, "A") is None and centre.store.get("services", "A")["active"] is False
    pages.save("services", "A", {**SERVICE_A, "name_en": "Civil records"})
    world["sync"]()
    assert centre.store.get("services", "A")["active"] is True


def test_switching_back_to_centrals_value_drops_the_local_note(world):
    centre = world["centre"]
    services.update_service(centre, "A", by="sup", daily_cap=5)
    assert centre.store.get(overrides.TABLE, "A")["fields"] == {"daily_cap": {"central": None, "local": 5}}
    services.update_service(centre, "A", by="sup", daily_cap=None)
    assert centre.store.get(overrides.TABLE, "A") is None


def test_without_a_calendar_from_central_every_day_takes_tickets(world):
    world["clock"].set("2026-11-27T06:00:00Z")  # a Friday
    assert services.centre_closed(world["centre"]) is None
    assert services.issue_ticket(world["centre"], service="A")["number"].startswith("A")
