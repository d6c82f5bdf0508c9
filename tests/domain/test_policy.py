"""Call-next policy: interleaving, ageing, determinism, and no starvation (property tests)."""
import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.clock import iso
from kiosk.domain.policy import Policy, choose, estimate_wait_s, position

T0 = dt.datetime(2026, 11, 22, 8, 0, tzinfo=dt.timezone.utc)
RANKS = {"elderly": 1, "disability": 2, "pregnancy": 3, "normal": 4}


def tk(n: int, priority: str = "normal", minute: float = 0) -> dict:
    """A waiting ticket number n that arrived `minute` minutes after T0."""
    at = iso(T0 + dt.timedelta(minutes=minute))
    return {"id": f"T{n:05d}", "number": f"A-{n:03d}", "priority": priority, "issued_at": at,
            "arrival_at": at, "seq_in_day": n}


def test_empty_queue_gives_nothing():
    assert choose([], now=T0, streak=0, policy=Policy()) is None


def test_fifo_for_normal_tickets():
    c = choose([tk(2, minute=1), tk(1, minute=0)], now=T0 + dt.timedelta(minutes=5), streak=0, policy=Policy())
    assert c.ticket["id"] == "T00001" and c.rule == "next" and c.waited_s == 300
    assert c.reason() == "next in line, waited 5 min"


def test_priority_interleaves_at_ratio():
    waiting = [tk(1, minute=0), tk(2, minute=1)] + [tk(10 + i, "elderly", minute=2 + i) for i in range(5)]
    now = T0 + dt.timedelta(minutes=10)
    calls, streak = [], 0
    for _ in range(7):
        c = choose(waiting, now=now, streak=streak, policy=Policy(ratio=2), ranks=RANKS)
        calls.append(c.ticket["priority"][0] + ":" + c.rule)
        streak = c.streak
        waiting = [t for t in waiting if t["id"] != c.ticket["id"]]
    assert calls == ["e:priority", "e:priority", "n:turn", "e:priority", "e:priority", "n:turn", "e:priority"]


def test_overdue_ticket_jumps_ahead_of_priority():
    waiting = [tk(1, minute=0), tk(2, "elderly", minute=40)]
    c = choose(waiting, now=T0 + dt.timedelta(minutes=46), streak=0, policy=Policy(max_wait_s=45 * 60), ranks=RANKS)
    assert c.ticket["id"] == "T00001" and c.rule == "overdue"
    assert "longer than the maximum" in c.reason()


def test_position_and_estimate():
    waiting = [tk(1, minute=0), tk(2, minute=1), tk(3, minute=2)]
    assert position(waiting[2], waiting) == 2
    assert estimate_wait_s(2, [100, 200], counters_open=2) == 150
    assert estimate_wait_s(3, [], counters_open=0, default_service_s=60) == 180


ticket_specs = st.lists(st.tuples(st.sampled_from(["normal", "normal", "elderly", "disability", "pregnancy"]),
                                  st.integers(0, 120)), min_size=1, max_size=40)


@given(ticket_specs, st.integers(1, 4), st.integers(1, 60), st.integers(0, 5))
def test_deterministic_and_never_calls_twice(specs, ratio, max_wait_min, streak):
    waiting = [tk(i, p, m) for i, (p, m) in enumerate(specs)]
    now = T0 + dt.timedelta(minutes=130)
    rule = Policy(ratio=ratio, max_wait_s=max_wait_min * 60)
    first = choose(waiting, now=now, streak=streak, policy=rule, ranks=RANKS)
    again = choose(list(reversed(waiting)), now=now, streak=streak, policy=rule, ranks=RANKS)
    assert first.ticket["id"] == again.ticket["id"], "order of input must not matter"
    called, pool = set(), list(waiting)
    while pool:
        c = choose(pool, now=now, streak=streak, policy=rule, ranks=RANKS)
        assert c.ticket["id"] not in called
        called.add(c.ticket["id"])
        streak = c.streak
        pool = [t for t in pool if t["id"] != c.ticket["id"]]
    assert called == {t["id"] for t in waiting}


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["normal", "elderly", "elderly", "pregnancy"]), st.integers(0, 3)),
                min_size=1, max_size=200),
       st.integers(1, 3), st.integers(5, 30))
def test_no_ticket_starves(arrivals, ratio, max_wait_min):
    """Tickets arrive while one counter serves a ticket a minute (a flood of priority tickets is the
    worst case for normal ones). Once a ticket is overdue, only tickets that arrived before it may be
    called ahead of it, so its wait is bounded by max_wait plus the backlog that was already there."""
    rule = Policy(ratio=ratio, max_wait_s=max_wait_min * 60)
    pending, waiting, streak, minute = list(enumerate(arrivals)), [], 0, 0
    arrived_at = {}
    while pending or waiting:
        # arrivals of this minute (the second element says how many minutes after the previous one)
        while pending and (not waiting or pending[0][1][1] == 0):
            n, (prio, _) = pending.pop(0)
            t = tk(n, prio, minute)
            arrived_at[t["id"]] = minute
            waiting.append(t)
            if pending:
                pending[0] = (pending[0][0], (pending[0][1][0], max(0, pending[0][1][1] - 1)))
        now = T0 + dt.timedelta(minutes=minute, seconds=1)
        c = choose(waiting, now=now, streak=streak, policy=rule, ranks=RANKS)
        overdue_earlier = [t for t in waiting if (minute - arrived_at[t["id"]]) * 60 >= rule.max_wait_s
                           and arrived_at[t["id"]] < arrived_at[c.ticket["id"]]]
        assert not overdue_earlier, "an overdue ticket was passed over by a later arrival"
        streak = c.streak
        waiting = [t for t in waiting if t["id"] != c.ticket["id"]]
        minute += 1
        if pending and pending[0][1][1] > 0:
            pending[0] = (pending[0][0], (pending[0][1][0], pending[0][1][1] - 1))


@given(st.integers(1, 5), st.integers(1, 30))
def test_normal_ticket_never_waits_more_than_ratio_priority_calls(ratio, n_priority):
    waiting = [tk(0, "normal", 5)] + [tk(i, "elderly", i) for i in range(1, n_priority + 1)]
    now, streak, calls = T0 + dt.timedelta(minutes=40), 0, 0
    rule = Policy(ratio=ratio, max_wait_s=10 ** 6)
    while True:
        c = choose(waiting, now=now, streak=streak, policy=rule, ranks=RANKS)
        if c.ticket["priority"] == "normal":
            break
        calls += 1
        streak = c.streak
        waiting = [t for t in waiting if t["id"] != c.ticket["id"]]
    assert calls <= ratio
