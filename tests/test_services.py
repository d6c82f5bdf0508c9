"""Use cases on a real store: numbering, transfers, caps, audit chain, restarts."""
import threading

import pytest

from kiosk import services
from kiosk.domain.errors import (InvalidTransition, NotFound, ServiceUnavailable, Unauthorized, UnknownService,
                                 ValidationFailed)
from kiosk.services import Centre
from kiosk.store import Store


def restart(centre: Centre) -> Centre:
    """A new Centre on the same data directory, as after a power cut and reboot."""
    centre.store.close()
    return Centre(store=Store(centre.store.data_dir, clock=centre.clock), clock=centre.clock,
                  events=centre.events, config=centre.config)


def test_numbers_per_service_per_day(centre, clock):
    a1 = services.issue_ticket(centre, service="A")
    a2 = services.issue_ticket(centre, service="A")
    b1 = services.issue_ticket(centre, service="B")
    assert [a1["number"], a2["number"], b1["number"]] == ["A-001", "A-002", "B-001"]
    assert a2["ahead"] == 1 and a1["ahead"] == 0
    clock.advance(hours=24)
    assert services.issue_ticket(centre, service="A")["number"] == "A-001", "a new day starts again at 1"


def test_service_day_follows_the_centre_time_zone(centre, clock):
    clock.set("2026-11-22T20:59:00Z")  # 23:59 in Baghdad
    assert services.issue_ticket(centre, service="A")["day"] == "2026-11-22"
    clock.set("2026-11-22T21:01:00Z")  # 00:01 next day in Baghdad
    t = services.issue_ticket(centre, service="A")
    assert t["day"] == "2026-11-23" and t["number"] == "A-001"


def test_numbering_survives_restart(centre):
    services.issue_ticket(centre, service="A")
    centre = restart(centre)
    assert services.issue_ticket(centre, service="A")["number"] == "A-002"
    centre.store.close()


def test_concurrent_issuing_gives_unique_numbers(centre):
    numbers, errors = [], []

    def worker():
        try:
            for _ in range(25):
                numbers.append(services.issue_ticket(centre, service="A")["number"])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(numbers) == [f"A-{n:03d}" for n in range(1, 201)]


def test_bad_requests_change_nothing(centre):
    seq = centre.store.seq
    with pytest.raises(UnknownService):
        services.issue_ticket(centre, service="Z")
    with pytest.raises(ValidationFailed):
        services.issue_ticket(centre, service="A", priority="vip")
    with pytest.raises(ValidationFailed):
        services.issue_ticket(centre, service="A", lang="fr")
    with pytest.raises(NotFound):
        services.act(centre, "nope", "start", by="demo")
    assert centre.store.seq == seq


def test_daily_cap_and_inactive_service(centre):
    services.update_service(centre, "C", by="super", daily_cap=2)
    services.issue_ticket(centre, service="C")
    services.issue_ticket(centre, service="C")
    with pytest.raises(ServiceUnavailable, match="daily_cap"):
        services.issue_ticket(centre, service="C")
    services.update_service(centre, "B", by="super", active=False)
    with pytest.raises(ServiceUnavailable, match="not taking tickets"):
        services.issue_ticket(centre, service="B")
    with pytest.raises(ValidationFailed):
        services.update_service(centre, "B", by="super", daily_cap=0)


def test_full_flow_with_reason_and_stats(centre, clock):
    services.issue_ticket(centre, service="A")
    clock.advance(60)
    services.issue_ticket(centre, service="B", priority="elderly")
    clock.advance(120)
    ticket, reason, rule = services.call_next(centre, counter="1", by="demo")
    assert ticket["number"] == "B-001" and rule == "priority" and reason == "priority (elderly), waited 2 min"
    services.act(centre, ticket["id"], "start", by="demo")
    clock.advance(300)
    done = services.act(centre, ticket["id"], "finish", by="demo")
    assert [e["state"] for e in done["events"]] == ["waiting", "called", "serving", "done"]
    assert services.staff_today(centre, "demo") == {"served": 1, "avg_service_s": 300}
    with pytest.raises(InvalidTransition):
        services.act(centre, ticket["id"], "start", by="demo")
    ticket2, _, rule2 = services.call_next(centre, counter="1", by="demo")
    assert ticket2["number"] == "A-001" and rule2 == "next"
    assert services.call_next(centre, counter="1", by="demo") is None


def test_no_show_reactivate_and_call_specific(centre):
    t1 = services.issue_ticket(centre, service="A")
    t2 = services.issue_ticket(centre, service="A")
    called = services.call_ticket(centre, t2["id"], counter="2", by="demo")
    assert called["state"] == "called" and called["counter"] == "2"
    assert called["events"][-1]["reason"] == "chosen"
    services.act(centre, t2["id"], "no_show", by="demo")
    again = services.act(centre, t2["id"], "reactivate", by="demo")
    assert again["state"] == "waiting" and again["ahead"] == 1, "keeps its arrival: t1 is still ahead"
    assert services.get_ticket(centre, t1["id"])["ahead"] == 0


def test_transfer_keeps_arrival_time(centre, clock):
    t = services.issue_ticket(centre, service="A")
    clock.advance(600)
    services.issue_ticket(centre, service="B")
    clock.advance(60)
    services.call_ticket(centre, t["id"], counter="1", by="demo")
    new = services.transfer(centre, t["id"], service="B", by="demo")
    assert new["number"] == "B-002" and new["arrival_at"] == t["issued_at"]
    assert new["ahead"] == 0, "arrived before B-001, so it is first in B's queue"
    old = services.get_ticket(centre, t["id"])
    assert old["state"] == "transferred" and old["transferred_to"] == new["id"]
    with pytest.raises(ValidationFailed):
        services.transfer(centre, new["id"], service="B", by="demo")


def test_audit_chain_records_staff_actions_and_detects_tampering(centre):
    t = services.issue_ticket(centre, service="A")
    services.call_next(centre, counter="1", by="demo")
    services.act(centre, t["id"], "start", by="demo")
    ok, message = services.verify_audit(centre)
    assert ok, message
    actions = [e["action"] for e in sorted(centre.store.all("audit"), key=lambda e: e["n"])]
    assert actions[-2:] == ["call", "start"]
    entry = next(e for e in centre.store.all("audit") if e["action"] == "call")
    entry["actor"] = "someone-else"
    centre.store.put("audit", entry)
    ok, message = services.verify_audit(centre)
    assert not ok and "altered" in message


def test_authentication(centre):
    assert services.authenticate(centre, "demo", "0000")["role"] == "attendant"
    for name, pin in (("demo", "1111"), ("nobody", "0000"), ("demo", None)):
        with pytest.raises(Unauthorized):
            services.authenticate(centre, name, pin)
    assert centre.store.get("staff", "demo")["pin_hash"].startswith("$argon2id$")


def test_demo_data_is_idempotent(centre):
    seq = centre.store.seq
    assert services.load_demo_data(centre) == {"services": 0, "counters": 0, "priority_classes": 0, "staff": 0}
    assert centre.store.seq == seq


def test_check_reports_problems(centre):
    services.issue_ticket(centre, service="A")
    assert all(ok for ok, _ in services.check(centre))
    numbering = centre.store.all("numbering")[0]
    centre.store.put("numbering", {**numbering, "last": 0})
    assert not all(ok for ok, _ in services.check(centre))


def test_ticket_is_on_disk_before_issue_returns(centre, monkeypatch):
    """Acknowledged means durable: the journal line is written and fsynced inside issue_ticket."""
    import os

    from kiosk.store import feed
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    ticket = services.issue_ticket(centre, service="A")
    assert synced, "fsync happened before the ticket was handed back"
    commits, _ = feed.read(centre.store.directory, centre.store.seq - 1)
    assert any(ch["k"] == ticket["id"] for ch in commits[-1]["c"])
