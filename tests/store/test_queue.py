"""The ticket repository's indexes: waiting tickets by service in policy order, tickets by counter.

Every test checks the index against a scan of the store with the reference policy functions, after
issuing, calling, serving, holding, requeueing, reactivating, transferring, failed commits,
restarts and changes of the priority classes' ranks.
"""
from __future__ import annotations

import os
import threading

import pytest

from kiosk import services
from kiosk.domain import policy
from kiosk.services import Centre
from kiosk.store import Store, StoreFailed
from sync import protocol
from sync.agent import INBOX_DIR, sync_dir

SERVICES = ("A", "B", "C")


def ids(tickets) -> list[str]:
    """Ticket ids, in the given order."""
    return [t["id"] for t in tickets]


def check_index(centre: Centre) -> None:
    """The index says what a scan of the store says, with the reference policy functions."""
    repo, ranks = centre.tickets, services._ranks(centre)
    stored = centre.store.all("tickets")
    for svc in SERVICES:
        waiting = sorted((t for t in stored if t["service"] == svc and t["state"] == "waiting"),
                         key=lambda t: policy.order_key(t, ranks))
        assert ids(repo.waiting_for([svc], ranks)) == ids(waiting)
        assert repo.count_waiting(svc) == len(waiting)
        for ticket in waiting:
            now, rule = centre.clock.now(), services.queue_policy(centre)
            assert repo.calls_before(ticket, ranks, rule, now) == policy.place(ticket, waiting, now=now, policy=rule,
                                                                                ranks=ranks)
        now = centre.clock.now()
        oldest = min((policy.epoch_ms(policy.order_key(t, ranks)[0]) for t in waiting
                      if policy.order_key(t, ranks)[0] <= now or not t.get("appointment")), default=None)
        assert repo.oldest_arrival_ms(svc, now) == oldest
    for counter in ("1", "2", "3"):
        assert sorted(ids(repo.at_counter(counter))) == sorted(
            ids(t for t in stored if t["state"] in ("called", "serving") and t["counter"] == counter))
        assert sorted(ids(repo.parked_at(counter))) == sorted(
            ids(t for t in stored if t["state"] in ("held", "no_show") and t["counter"] == counter))
    assert sorted(ids(repo.with_counters())) == sorted(ids(t for t in stored if t["state"] in ("called", "serving")))
    assert sorted(ids(repo.open_tickets())) == sorted(
        ids(t for t in stored if t["state"] in ("waiting", "called", "serving", "held", "no_show")))


def reference_order(centre: Centre, counter: str) -> list[str]:
    """The counter's waiting tickets in call order, by calling the reference `choose` again and again."""
    services_ = services.get_counter(centre, counter)["services"]
    ranks = services._ranks(centre)
    pool = [t for t in centre.store.all("tickets") if t["state"] == "waiting" and t["service"] in services_]
    state = centre.store.get("counter_state", counter) or {"streak": 0}
    streak, a_streak, out = int(state.get("streak", 0)), int(state.get("appointment_streak", 0)), []
    while pool:
        choice = policy.choose(pool, now=centre.clock.now(), streak=streak, policy=services.queue_policy(centre),
                               ranks=ranks, appointment_streak=a_streak)
        out.append(choice.ticket["id"])
        pool = [t for t in pool if t["id"] != choice.ticket["id"]]
        streak, a_streak = choice.streak, choice.appointment_streak
    return out


def restart(centre: Centre) -> Centre:
    """A new Centre on the same data directory, as after a power cut and reboot."""
    centre.store.close()
    return Centre(store=Store(centre.store.data_dir, clock=centre.clock), clock=centre.clock,
                  events=centre.events, config=centre.config)


def fill(centre: Centre, clock, n: int = 24) -> list[dict]:
    """A mixed queue over the three services: priority classes, and arrivals in the same millisecond."""
    classes = ["normal", "elderly", "normal", "pregnancy", "disability", "normal"]
    out = []
    for i in range(n):
        out.append(services.issue_ticket(centre, service=SERVICES[i % 3], priority=classes[i % len(classes)]))
        if i % 4 == 3:
            clock.advance(seconds=7)  # the others share an arrival time: rank, number and id decide
    return out


def fail_next_fsync(monkeypatch) -> None:
    """The next journal fsync fails (the store cuts the line back and stays usable)."""
    real_fsync, calls = os.fsync, []

    def fsync(fd):
        """Fail the first call, then fsync for real."""
        calls.append(fd)
        if len(calls) == 1:
            raise OSError(5, "I/O error")
        real_fsync(fd)
    monkeypatch.setattr(os, "fsync", fsync)


def test_index_follows_every_move(centre, clock):
    """Issue, call, serve, hold, requeue, no-show, reactivate, cancel, transfer, finish."""
    tickets = fill(centre, clock)
    check_index(centre)
    called = [services.call_next(centre, counter=k, by="demo")[0] for k in ("1", "2", "3", "1")]
    check_index(centre)
    services.act(centre, called[0]["id"], "start", by="demo")
    services.act(centre, called[1]["id"], "hold", by="demo")
    services.act(centre, called[2]["id"], "no_show", by="demo")
    services.act(centre, called[3]["id"], "requeue", by="demo")
    check_index(centre)
    services.act(centre, called[1]["id"], "requeue", by="demo")
    services.act(centre, called[2]["id"], "reactivate", by="demo")
    services.act(centre, tickets[-1]["id"], "cancel", by="demo")
    check_index(centre)
    services.transfer(centre, called[0]["id"], service="C" if called[0]["service"] != "C" else "A", by="demo")
    clock.advance(seconds=30)
    nxt = services.call_next(centre, counter="2", by="demo")[0]
    services.act(centre, nxt["id"], "start", by="demo")
    clock.advance(seconds=90)
    services.act(centre, nxt["id"], "finish", by="demo")
    check_index(centre)
    assert centre.tickets.recent_service_s(nxt["service"]) == [90.0]


def test_transfer_moves_the_ticket_to_the_other_queue_with_its_arrival(centre, clock):
    """The new ticket is indexed in its new service at its first arrival, ahead of later arrivals."""
    a = services.issue_ticket(centre, service="A")
    clock.advance(minutes=5)
    b = services.issue_ticket(centre, service="B")
    services.call_ticket(centre, a["id"], counter="1", by="demo")
    assert centre.tickets.count_waiting("A") == 0 and ids(centre.tickets.at_counter("1")) == [a["id"]]
    new = services.transfer(centre, a["id"], service="B", by="demo")
    assert new["ahead"] == 0 and services.get_ticket(centre, b["id"])["ahead"] == 1
    assert centre.tickets.at_counter("1") == [] and centre.tickets.count_waiting("B") == 2
    check_index(centre)
    # a waiting ticket can be transferred too: it leaves A's queue for C's
    c = services.issue_ticket(centre, service="A")
    services.transfer(centre, c["id"], service="C", by="demo")
    assert centre.tickets.count_waiting("A") == 0 and centre.tickets.count_waiting("C") == 1
    check_index(centre)


def test_back_to_waiting_keeps_the_place(centre, clock):
    """Held, requeued or reactivated tickets wait again at their first arrival, not at the end."""
    first = services.issue_ticket(centre, service="A")
    clock.advance(minutes=1)
    others = [services.issue_ticket(centre, service="A") for _ in range(3)]
    for action in ("hold", "no_show"):
        services.call_ticket(centre, first["id"], counter="1", by="demo")
        services.act(centre, first["id"], action, by="demo")
        assert centre.tickets.count_waiting("A") == 3 and ids(centre.tickets.parked_at("1")) == [first["id"]]
        back = services.act(centre, first["id"], "requeue" if action == "hold" else "reactivate", by="demo")
        assert back["ahead"] == 0 and centre.tickets.parked_at("1") == []
        check_index(centre)
    services.call_ticket(centre, first["id"], counter="1", by="demo")
    assert services.act(centre, first["id"], "requeue", by="demo")["ahead"] == 0
    assert [services.get_ticket(centre, t["id"])["ahead"] for t in others] == [1, 2, 3]


def test_failed_commits_leave_the_index_as_the_store(centre, clock, monkeypatch):
    """A commit that does not reach the disk is rolled back, and the index with it (through forget)."""
    waiting = services.issue_ticket(centre, service="A")
    fail_next_fsync(monkeypatch)
    with pytest.raises(StoreFailed):
        services.call_next(centre, counter="1", by="demo")
    assert centre.store.get("tickets", waiting["id"])["state"] == "waiting"
    assert centre.tickets.at_counter("1") == [] and centre.tickets.count_waiting("A") == 1
    check_index(centre)

    fail_next_fsync(monkeypatch)
    with pytest.raises(StoreFailed):
        services.issue_ticket(centre, service="A")
    assert centre.tickets.count_waiting("A") == 1
    check_index(centre)

    services.call_ticket(centre, waiting["id"], counter="1", by="demo")
    fail_next_fsync(monkeypatch)
    with pytest.raises(StoreFailed):
        services.transfer(centre, waiting["id"], service="B", by="demo")
    assert ids(centre.tickets.at_counter("1")) == [waiting["id"]] and centre.tickets.count_waiting("B") == 0
    check_index(centre)
    monkeypatch.undo()
    assert services.transfer(centre, waiting["id"], service="B", by="demo")["ahead"] == 0
    check_index(centre)


def test_forget_puts_back_what_the_store_holds(centre):
    """forget drops a ticket the store does not hold and re-indexes one it does, as it is stored."""
    ticket = services.issue_ticket(centre, service="A")
    stored = centre.store.get("tickets", ticket["id"])
    ghost = {**stored, "id": "01GHOST", "seq_in_day": 99}
    centre.tickets._index(None, ghost)  # as if saved in a commit that then failed
    assert centre.tickets.count_waiting("A") == 2
    centre.tickets.forget(ghost)
    moved = {**stored, "service": "B", "state": "called", "counter": "2"}
    centre.tickets._index(stored, moved)
    assert centre.tickets.count_waiting("A") == 0
    centre.tickets.forget(moved)
    assert centre.tickets.count_waiting("A") == 1 and centre.tickets.at_counter("2") == []
    check_index(centre)


def test_restart_rebuilds_the_same_index(centre, clock):
    """After a reboot the index built from the store gives the same queue, counters and call order."""
    fill(centre, clock, 18)
    services.set_counter_status(centre, "2", "open", by="demo")
    first = services.call_next(centre, counter="1", by="demo")[0]
    second = services.call_next(centre, counter="2", by="demo")[0]
    services.act(centre, second["id"], "hold", by="demo")
    services.transfer(centre, first["id"], service="C", by="demo")
    before = {k: ids(services.waiting_list(centre, k, limit=100).tickets) for k in ("1", "2")}
    assert before["1"] == reference_order(centre, "1")
    centre = restart(centre)
    check_index(centre)
    assert {k: ids(services.waiting_list(centre, k, limit=100).tickets) for k in ("1", "2")} == before
    assert ids(centre.tickets.parked_at("2")) == [second["id"]]
    centre.store.close()


def test_waiting_list_is_the_policy_call_order_and_counts_everyone(centre, clock):
    """The page is the start of what calling next again and again would give; the total counts all."""
    centre.store.put("counters", {**centre.store.get("counters", "2"), "services": ["B", "C"]})
    centre.store.put("counter_state", {"id": "1", "status": "open", "streak": 1})
    fill(centre, clock, 40)
    clock.advance(minutes=20)
    for counter in ("1", "2"):
        expected = reference_order(centre, counter)
        page = services.waiting_list(centre, counter, limit=7)
        assert ids(page.tickets) == expected[:7] and page.total == len(expected) and page.more == len(expected) - 7
        assert ids(services.waiting_list(centre, counter, limit=1000).tickets) == expected


def test_call_next_takes_the_first_of_the_call_order(centre, clock):
    """Draining a counter's queue with call-next calls exactly the reference order (ageing included)."""
    centre.store.put("settings", {"id": "queue", "priority_ratio": 2, "max_wait_min": 3})
    fill(centre, clock, 30)
    clock.advance(seconds=150)  # the first arrivals are overdue now, the later ones not yet
    expected = reference_order(centre, "1")
    called = []
    while (result := services.call_next(centre, counter="1", by="demo")) is not None:
        called.append(result[0]["id"])
    assert called == expected and set(expected) == {t["id"] for t in centre.store.all("tickets")}
    assert {t["events"][-1]["reason"] for t in centre.store.all("tickets")} == {"overdue", "priority", "turn", "next"}


def test_rank_changes_reorder_the_index(app, centre, data_dir):
    """Class ranks decide between tickets that arrived in the same millisecond; when central sends
    new ranks (applied from the sync inbox), the index follows."""
    elderly = services.issue_ticket(centre, service="A", priority="elderly")
    pregnant = services.issue_ticket(centre, service="A", priority="pregnancy")
    assert (elderly["ahead"], pregnant["ahead"]) == (0, 1)
    changed = {**centre.store.get("priority_classes", "elderly"), "rank": 7}
    inbox = sync_dir(data_dir) / INBOX_DIR
    inbox.mkdir(parents=True)
    pulled = protocol.InboxFile(v=1, since=0, next_since=1, pulled_at="2026-11-22T06:00:00.000Z",
                                changes=[protocol.PulledChange(seq=1, t="priority_classes", o="put",
                                                               k="elderly", d=changed)])
    (inbox / "000000000001.json").write_text(pulled.model_dump_json(), encoding="utf-8")
    assert app.extensions["kiosk"].apply_inbox() == 1
    assert services.get_ticket(centre, elderly["id"])["ahead"] == 1
    assert services.get_ticket(centre, pregnant["id"])["ahead"] == 0
    assert ids(services.waiting_list(centre, "1").tickets) == [pregnant["id"], elderly["id"]]
    check_index(centre)


def test_screens_never_scan_the_waiting_tickets(centre, clock, monkeypatch):
    """Call-next, a ticket's place, the waiting list, the display and the supervisor's overview read
    heads, counts and bisections; the scans and the reference functions are never called."""
    fill(centre, clock, 12)
    clock.advance(minutes=10)
    services.call_next(centre, counter="1", by="demo")

    def scan(*args, **kwargs):
        """Stands in for every scan: being called fails the test."""
        raise AssertionError("scanned the waiting tickets")
    for name in ("choose", "place"):
        monkeypatch.setattr(policy, name, scan)
    for name in ("waiting_for", "open_tickets", "day_tickets"):
        monkeypatch.setattr(centre.tickets, name, scan)
    ticket = services.issue_ticket(centre, service="B")
    assert ticket["ahead"] == 2  # three priority tickets wait for B: two go first, then its turn
    assert services.call_next(centre, counter="2", by="demo") is not None
    page = services.waiting_list(centre, "3", limit=5)
    assert len(page.tickets) == 5 and page.total == 11
    shown = services.display_state(centre)
    assert shown["waiting"] == {"A": 3, "B": 4, "C": 4} and len(shown["now_serving"]) == 2
    figures = services.overview(centre)
    # the first four arrived at the start, then 7 s passed after every fourth, then 10 minutes
    assert [(s["waiting"], s["longest_wait_s"]) for s in figures["services"]] == [(3, 621), (4, 614), (4, 621)]
    assert figures["longest_wait_s"] == 621


def test_concurrent_issue_and_call_keep_the_index_whole(centre):
    """Threads issuing and calling at once leave an index equal to the store."""
    errors = []

    def issue():
        """Issue 20 tickets, a third of them priority."""
        try:
            for _ in range(20):
                services.issue_ticket(centre, service="A", priority="elderly" if _ % 3 == 0 else "normal")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def call(counter):
        """Call next 15 times at one counter."""
        try:
            for _ in range(15):
                services.call_next(centre, counter=counter, by="demo")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
    threads = [threading.Thread(target=issue) for _ in range(4)] + [threading.Thread(target=call, args=(k,))
                                                                    for k in ("1", "2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    check_index(centre)
