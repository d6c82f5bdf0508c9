"""The supervisor view and the hall display through the test client."""
from __future__ import annotations

import re
import sys
import types

import pytest

from kiosk import services


@pytest.fixture
def boss(supervisor):
    """The supervisor, in English."""
    supervisor.post("/lang", {"lang": "en", "next": "/admin"})
    return supervisor


def test_live_figures(boss, centre, clock):
    """Waiting per service, longest wait, counters open, what each counter serves."""
    services.issue_ticket(centre, service="A")
    services.issue_ticket(centre, service="B")
    clock.advance(minutes=7)
    services.set_counter_status(centre, "2", "open", by="demo")
    services.call_next(centre, counter="2", by="demo")
    page = boss.get("/admin", htmx=True).get_data(as_text=True)
    assert "<html" not in page
    assert 'id="total-waiting">1<' in page
    assert 'id="longest-wait">7 minutes<' in page
    assert 'id="counters-open">1 / 3<' in page
    row = re.search(r'<tr data-counter="2">.*?</tr>', page, re.S).group(0)
    assert "A-001" in row and "demo" in row


def test_switch_a_service_off_and_on(boss, centre):
    """Off: the kiosk stops offering it; on again: it is back."""
    response = boss.post("/admin/services/C", {"active": "0"})
    assert "Inquiries saved." in response.get_data(as_text=True)
    assert services.get_service(centre, "C")["active"] is False
    assert 'data-action="on"' in response.get_data(as_text=True)
    boss.post("/admin/services/C", {"active": "1"})
    assert services.get_service(centre, "C")["active"] is True


def test_daily_cap(boss, centre):
    """Set, refuse nonsense, accept Arabic-Indic digits, clear."""
    boss.post("/admin/services/A", {"daily_cap": "50"})
    assert services.get_service(centre, "A")["daily_cap"] == 50
    bad = boss.post("/admin/services/A", {"daily_cap": "lots"})
    assert "The daily limit must be a whole number" in bad.get_data(as_text=True)
    assert services.get_service(centre, "A")["daily_cap"] == 50
    assert "Some values are not valid." in boss.post("/admin/services/A", {"daily_cap": "0"}).get_data(as_text=True)
    boss.post("/admin/services/A", {"daily_cap": "١٢٠"})
    assert services.get_service(centre, "A")["daily_cap"] == 120
    boss.post("/admin/services/A", {"daily_cap": ""})
    assert services.get_service(centre, "A")["daily_cap"] is None
    assert boss.post("/admin/services/ZZ", {"active": "0"}).status_code == 200


def test_printer_placeholder(boss):
    """No printer configured: the supervisor sees the preview note."""
    assert 'id="printer-status" data-state="none"' in boss.get("/admin").get_data(as_text=True)


def test_sync_status_when_the_agent_is_installed(boss, monkeypatch):
    """The agent's status is shown with translated labels; without an agent, a plain note."""
    agent = types.ModuleType("sync.agent")
    agent.status = lambda data_dir: {"enrolled": True, "last_success_at": "2026-11-22T05:30:00.000Z",
                                     "last_attempt_at": None, "last_error": "central unreachable",
                                     "pending": 17, "clock_offset_s": -2.5}
    monkeypatch.setitem(sys.modules, "sync.agent", agent)
    page = boss.get("/admin").get_data(as_text=True)
    section = re.search(r'<section class="card" id="sync-status">.*?</section>', page, re.S).group(0)
    assert "Last successful sync" in section
    assert re.search(r"11/22/26, 8:30\sAM", section)  # 05:30 UTC in Baghdad (CLDR puts a narrow space before AM)
    assert "17" in section and "central unreachable" in section and "Yes" in section
    monkeypatch.setitem(sys.modules, "sync.agent", types.ModuleType("sync.agent"))
    assert "Sync is not set up on this machine." in boss.get("/admin").get_data(as_text=True)


def test_display_shows_calls_newest_first(client, centre, clock):
    """Newest call highlighted, the others listed, waiting counts per service; numbers only."""
    for service in ("A", "B", "C", "A"):
        services.issue_ticket(centre, service=service, lang="en")
    services.set_counter_status(centre, "1", "open", by="demo")
    first = services.call_next(centre, counter="1", by="demo")[0]
    clock.advance(seconds=30)
    second = services.call_next(centre, counter="2", by="demo")[0]
    page = client.get("/display").get_data(as_text=True)
    assert f'id="newest" data-number="{second["number"]}" data-counter="2"' in page
    assert f'data-number="{first["number"]}" data-counter="1"' in page.split('id="calls"')[1]
    counts = re.findall(r'<li data-service="(\w)">.*?<span class="count"><bdi dir="ltr">(\d+)</bdi>', page, re.S)
    assert dict(counts) == {"A": "1", "B": "0", "C": "1"}
    assert "Demo" not in page and "demo" not in page  # no staff, no citizen data


def test_display_block_for_live_refresh(client):
    """htmx re-fetches only the board."""
    fragment = client.get("/display", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in fragment and 'class="display-grid"' in fragment
