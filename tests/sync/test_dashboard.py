"""The national dashboard (SQLite and PostgreSQL): its numbers equal an independent count over
records pushed by three centres' devices, a centre that stopped syncing is marked, an audit flag
shows; and the page in Chromium at 1366x768 in ar, ckb and en (screenshots in test-output/screens/)."""
from __future__ import annotations

import base64
import datetime as dt
import json
import math
import random

import pytest
from sqlalchemy import select

from kiosk.domain import audit
from kiosk.ids import new_ulid
from sync import protocol
from sync.central import dashboard
from sync.central.i18n import TIMEZONE
from sync.central.models import AuditFlag
from tests.sync.support import SignedDevice, commit, put

PASSWORD = "correct horse battery"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"ana:{PASSWORD}".encode()).decode()}
LANGS = ("ar", "ckb", "en")
HTML = {"ar": ("ar-IQ", "rtl"), "ckb": ("ckb", "rtl"), "en": ("en", "ltr")}
TARGET_MIN = {"A": 10, "B": 30}


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def ticket(rng: random.Random, day: dt.date, number: int) -> dict:
    """A ticket of `day` issued between 08:00 and 11:00 local, with a random outcome and known times."""
    issued = dt.datetime.combine(day, dt.time(8), TIMEZONE) + dt.timedelta(seconds=rng.randrange(3 * 3600))
    service = rng.choice("AB")
    fate = rng.choice(["done", "done", "done", "waiting", "no_show", "serving"])
    events = [{"state": "waiting", "at": _iso(issued)}]
    wait = rng.randrange(60, 45 * 60)
    if fate != "waiting":
        events.append({"state": "called", "at": _iso(issued + dt.timedelta(seconds=wait)), "counter": "1", "by": "att-1"})
    if fate in ("done", "serving"):
        events.append({"state": "serving", "at": _iso(issued + dt.timedelta(seconds=wait + 20)), "counter": "1",
                       "by": "att-1"})
    if fate == "done":
        events.append({"state": "done", "at": _iso(issued + dt.timedelta(seconds=wait + 400)), "counter": "1",
                       "by": "att-1"})
    if fate == "no_show":
        events.append({"state": "no_show", "at": _iso(issued + dt.timedelta(seconds=wait + 300)), "counter": "1"})
    return {"id": new_ulid(), "number": f"{service}-{number:03d}", "service": service, "priority": "normal",
            "lang": "ar", "state": fate, "issued_at": _iso(issued), "day": day.isoformat(), "seq_in_day": number,
            "counter": "1" if fate == "serving" else None, "device": "k", "events": events,
            "_wait": wait if fate != "waiting" else None}


def nearest_rank(values: list[float], q: float) -> float | None:
    """The nearest-rank percentile, counted here without the report's code."""
    values = sorted(values)
    return values[max(1, math.ceil(q * len(values))) - 1] if values else None


class Seeded:
    """Three centres' records pushed through the sync API, and the counts expected for each."""

    def __init__(self, central_app, ops, server_clock, tmp_path):
        self.app, self.ops, self.clock = central_app, ops, server_clock
        self.expected: dict[str, dict] = {}
        self.devices: dict[str, SignedDevice] = {}
        self.commits: dict[str, list[dict]] = {}
        rng = random.Random(13)
        today = server_clock.now().astimezone(TIMEZONE).date()
        self.today = today
        for code in ("BGD-01", "ERB-01", "SUL-01"):
            ops.add_centre(code, f"Centre {code}")
            services = [{"id": s, "code": s, "prefix": s, "names": {"ar": f"خدمة {s}", "ckb": f"خزمەتی {s}", "en": f"Service {s}"},
                         "target_wait_min": TARGET_MIN[s]} for s in "AB"]
            path = tmp_path / f"{code}.json"
            path.write_text(json.dumps({"services": services}), encoding="utf-8")
            ops.cli("config-load", code, str(path))
            device = SignedDevice(central_app.test_client(), server_clock)
            assert device.enrol(ops.code(code), code).status_code == 201
            self.devices[code] = device
            docs, trend = [], [0] * dashboard.TREND_DAYS
            for back in range(0, 20):  # today and 19 earlier days (only 14 are in the trend)
                day = today - dt.timedelta(days=back)
                count = rng.randrange(3, 12)
                for n in range(1, count + 1):
                    docs.append(ticket(rng, day, n))
                if back < dashboard.TREND_DAYS:
                    trend[dashboard.TREND_DAYS - 1 - back] = count
            todays = [d for d in docs if d["day"] == today.isoformat()]
            feedback = [{"id": d["id"], "ticket": d["id"], "day": d["day"], "service": d["service"], "staff": "att-1",
                         "counter": "1", "score": rng.randrange(1, 6), "at": d["events"][-1]["at"]}
                        for d in todays if d["state"] == "done" and rng.random() < 0.7]
            old_feedback = [{"id": d["id"], "ticket": d["id"], "day": d["day"], "service": d["service"],
                             "score": 1, "at": d["events"][-1]["at"]} for d in docs[-3:] if d["state"] == "done"]
            waits = [d["_wait"] for d in todays if d["_wait"] is not None]
            within = sum(1 for d in todays if d["_wait"] is not None and d["_wait"] <= TARGET_MIN[d["service"]] * 60)
            self.expected[code] = {
                "issued": len(todays), "served": sum(d["state"] == "done" for d in todays),
                "waiting": sum(d["state"] == "waiting" for d in todays),
                "wait_p50_s": nearest_rank(waits, 0.5), "wait_p90_s": nearest_rank(waits, 0.9),
                "within_target": round(within / len(waits), 4) if waits else None,
                "feedback_count": len(feedback),
                "feedback_mean": round(sum(f["score"] for f in feedback) / len(feedback), 2) if feedback else None,
                "trend": trend}
            for d in docs:
                d.pop("_wait")
            changes = [put("tickets", d) for d in docs] + [put("feedback", f) for f in feedback + old_feedback]
            self.commits[code] = changes

    def push(self, code: str, *, head_extra: int = 0, extra: list[dict] = ()) -> None:
        """Push the centre's records in one commit (head_extra: commits the device says it has beyond)."""
        device = self.devices[code]
        response = device.push([commit(1, *self.commits[code], *extra)], head_seq=1 + head_extra)
        assert response.status_code == 200, response.get_json()


@pytest.fixture
def seeded(central_app, ops, server_clock, tmp_path):
    """SUL-01 last synced 8 hours ago; ERB-01 has a backlog, an overdue request and an audit flag."""
    data = Seeded(central_app, ops, server_clock, tmp_path)
    data.push("SUL-01")
    server_clock.advance(hours=8)
    entry = audit.make_entry(entry_id="E1", n=1, prev=audit.GENESIS, at="2026-11-22T08:00:00.000Z", actor="s",
                             action="unlock", target="t")
    overdue = {"id": "C1", "kind": "request", "service": "A", "status": "open", "created_at": "2026-11-10T08:00:00Z",
               "due_at": "2026-11-13T08:00:00Z", "ticket_number": "A-001"}
    data.push("ERB-01", head_extra=7, extra=[put("audit", entry), put("requests", overdue)])
    altered = {**entry, "actor": "other"}
    device = data.devices["ERB-01"]
    assert device.push([commit(2, put("audit", altered))], head_seq=8).status_code == 200
    data.push("BGD-01")
    ops.cli("add-operator", "ana", "--password-stdin", input=PASSWORD + "\n")
    return data


def test_dashboard_numbers_equal_an_independent_count(seeded, central_app, server_clock):
    with central_app.extensions["central"].engine.connect() as conn:
        rows = {r["code"]: r for r in dashboard.national(conn, server_clock.now(), stale_hours=6, target_wait_min=20)}
        assert conn.execute(select(AuditFlag.centre, AuditFlag.kind)).all() == [("ERB-01", "altered")]
    assert sorted(rows) == ["BGD-01", "ERB-01", "SUL-01"]
    for code, expected in seeded.expected.items():
        got = {k: rows[code][k] for k in expected}
        assert got == expected, code
    assert [rows[c]["stale"] for c in ("BGD-01", "ERB-01", "SUL-01")] == [False, False, True]
    assert [rows[c]["backlog"] for c in ("BGD-01", "ERB-01", "SUL-01")] == [0, 6, 0], "head 8, acknowledged 2"
    assert [rows[c]["overdue"] for c in ("BGD-01", "ERB-01", "SUL-01")] == [0, 1, 0]
    assert [rows[c]["audit_state"] for c in ("BGD-01", "ERB-01", "SUL-01")] == ["none", "flag", "none"]


def test_the_page_marks_a_stale_centre_and_a_flag(seeded, central_app):
    client = central_app.test_client()
    assert client.get("/dashboard/").status_code == 401
    for lang in LANGS:
        html = client.get(f"/dashboard/?lang={lang}", headers=AUTH).get_data(as_text=True)
        assert f'lang="{HTML[lang][0]}" dir="{HTML[lang][1]}"' in html
        stale = html.split('data-centre="SUL-01"', 1)[1].split("</tr>", 1)[0]
        assert 'data-stale="yes"' in stale and "stale-badge" in stale and "<svg" in stale
        fresh = html.split('data-centre="BGD-01"', 1)[1].split("</tr>", 1)[0]
        assert 'data-stale="no"' in fresh and "stale-badge" not in fresh
        flagged = html.split('data-centre="ERB-01"', 1)[1].split("</tr>", 1)[0]
        assert 'data-audit="flag"' in flagged and "/dashboard/audit/ERB-01" in flagged
        audit_page = client.get(f"/dashboard/audit/ERB-01?lang={lang}", headers=AUTH).get_data(as_text=True)
        assert 'data-kind="altered"' in audit_page
    assert client.get("/dashboard/audit/NOPE", headers=AUTH).status_code == 404


@pytest.mark.parametrize("backend", ["sqlite"])  # the page is the same on both databases: screenshots once
def test_the_dashboard_in_chromium_in_three_languages(seeded, central_app, browser, backend):
    """1366x768, right direction, nothing wider than the screen, no CSP violation."""
    from tests.sync.support import HttpServer
    from tests.web.conftest import screenshot
    server = HttpServer(central_app)
    context = browser.new_context(viewport={"width": 1366, "height": 768},
                                  http_credentials={"username": "ana", "password": PASSWORD})
    problems: list = []
    context.add_init_script("document.addEventListener('securitypolicyviolation', "
                            "(e) => console.error('CSP ' + e.violatedDirective + ' ' + e.blockedURI));")
    try:
        page = context.new_page()
        page.on("console", lambda m: m.type == "error" and problems.append(m.text))
        page.on("pageerror", lambda e: problems.append(str(e)))
        for lang in LANGS:
            for name, path in (("dashboard-audit", "/dashboard/audit/ERB-01"), ("dashboard", "/dashboard/")):
                page.goto(f"{server.url}{path}?lang={lang}")
                page.evaluate("document.fonts.ready")
                facts = page.evaluate("""() => ({lang: document.documentElement.lang, dir: document.documentElement.dir,
                    overflow: document.documentElement.scrollWidth - window.innerWidth})""")
                assert (facts["lang"], facts["dir"]) == HTML[lang] and facts["overflow"] <= 0, (name, lang, facts)
                screenshot(page, f"central-{name}-{lang}")
            assert page.locator('tr[data-centre="SUL-01"] .stale-badge').is_visible()
    finally:
        context.close()
        server.stop()
    assert problems == []

