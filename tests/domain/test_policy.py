"""Call-next policy: interleaving, ageing, appointments, determinism, and no starvation of walk-ins
or appointments (property tests), and the indexed form (decisions from the queue heads, the lazy
call order, a ticket's place by bisection) held equal to the reference."""
import bisect
import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.clock import iso
from kiosk.domain.policy import (Policy, call_order, calls_before, choose, choose_from_heads, class_ranks,
                                 epoch_ms, estimate_wait_s, order_key, place, queue_key, side)

T0 = dt.datetime(2026, 11, 22, 8, 0, tzinfo=dt.timezone.utc)
RANKS = {"elderly": 1, "disability": 2, "pregnancy": 3, "normal": 4}


def tk(n: int, priority: str = "normal", minute: float = 0) -> dict:
    """A waiting ticket number n that arrived `minute` minutes after T0."""
    at = iso(T0 + dt.timedelta(minutes=minute))
    return {"id": f"T{n:05d}", "number": f"A-{n:03d}", "priority": priority, "issued_at": at,
            "arrival_at": at, "seq_in_day": n}


def appt(n: int, slot_minute: float, minute: float | None = None, priority: str = "normal") -> dict:
    """A ticket of an appointment whose slot starts `slot_minute` after T0, checked in at `minute`
    (by default ten minutes before its slot)."""
    ticket = tk(n, priority, slot_minute - 10 if minute is None else minute)
    return {**ticket, "appointment": f"B{n:07d}", "slot_start_at": iso(T0 + dt.timedelta(minutes=slot_minute))}


SIDES = {True: "priority", False: "normal"}


def entries(waiting: list[dict], ranks: dict[str, int], which: bool | str) -> list[tuple]:
    """One queue of the index as the store keeps it: (queue_key, ticket) in key order."""
    name = SIDES.get(which, which)
    return sorted((queue_key(t, ranks), t) for t in waiting if side(t) == name)


def choose_indexed(waiting, *, now, streak, policy, ranks=None, appointment_streak=0):
    """`choose`'s signature on top of the indexed form: only the three heads are looked at."""
    ranks = ranks or {}
    first = {name: next(iter(entries(waiting, ranks, name)), None) for name in ("priority", "normal", "appointment")}
    return choose_from_heads(first["priority"], first["normal"], now=now, streak=streak, policy=policy,
                             first_appointment=first["appointment"], appointment_streak=appointment_streak)


CHOOSERS = pytest.mark.parametrize("chooser", [choose, choose_indexed], ids=["reference", "indexed"])


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


def test_place_and_estimate():
    waiting = [tk(1, minute=0), tk(2, minute=1), tk(3, minute=2)]
    assert place(waiting[2], waiting, now=T0, policy=Policy()) == 2
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


@CHOOSERS
@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["normal", "elderly", "elderly", "pregnancy"]), st.integers(0, 3)),
                min_size=1, max_size=200),
       st.integers(1, 3), st.integers(5, 30))
def test_no_ticket_starves(chooser, arrivals, ratio, max_wait_min):
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
        c = chooser(waiting, now=now, streak=streak, policy=rule, ranks=RANKS)
        overdue_earlier = [t for t in waiting if (minute - arrived_at[t["id"]]) * 60 >= rule.max_wait_s
                           and arrived_at[t["id"]] < arrived_at[c.ticket["id"]]]
        assert not overdue_earlier, "an overdue ticket was passed over by a later arrival"
        streak = c.streak
        waiting = [t for t in waiting if t["id"] != c.ticket["id"]]
        minute += 1
        if pending and pending[0][1][1] > 0:
            pending[0] = (pending[0][0], (pending[0][1][0], pending[0][1][1] - 1))


@CHOOSERS
@given(st.integers(1, 5), st.integers(1, 30))
def test_normal_ticket_never_waits_more_than_ratio_priority_calls(chooser, ratio, n_priority):
    waiting = [tk(0, "normal", 5)] + [tk(i, "elderly", i) for i in range(1, n_priority + 1)]
    now, streak, calls = T0 + dt.timedelta(minutes=40), 0, 0
    rule = Policy(ratio=ratio, max_wait_s=10 ** 6)
    while True:
        c = chooser(waiting, now=now, streak=streak, policy=rule, ranks=RANKS)
        if c.ticket["priority"] == "normal":
            break
        calls += 1
        streak = c.streak
        waiting = [t for t in waiting if t["id"] != c.ticket["id"]]
    assert calls <= ratio


# -- the indexed form equals the reference -----------------------------------------------------------

CLASSES = ["normal", "normal", "elderly", "disability", "pregnancy", "unlisted"]


@st.composite
def queues(draw, max_size=60):
    """Random waiting tickets: arrivals to the millisecond with many exact ties (so rank, number and
    id decide), transferred tickets that arrived before they were issued, appointments whose slot
    has started or not (checked in before or after its start), random class ranks."""
    specs = draw(st.lists(st.tuples(st.sampled_from(CLASSES), st.integers(0, 90 * 60 * 1000).map(lambda ms: ms // 997 * 997),
                                    st.integers(1, 400), st.sampled_from(["walk-in", "walk-in", "transferred", "appointment"]),
                                    st.integers(0, 110 * 60 * 1000).map(lambda ms: ms // 997 * 997)),
                          max_size=max_size))
    waiting = []
    for i, (prio, ms, seq, kind, slot_ms) in enumerate(specs):
        arrival = iso(T0 + dt.timedelta(milliseconds=ms))
        issued = iso(T0 + dt.timedelta(milliseconds=ms + 60_000)) if kind == "transferred" else arrival
        ticket = {"id": f"T{draw(st.integers(0, 10 ** 6)):07d}-{i}", "number": f"A-{seq:03d}",
                  "priority": prio, "issued_at": issued, "arrival_at": arrival, "seq_in_day": seq}
        if kind == "appointment":
            ticket.update(appointment=f"B{i:07d}", slot_start_at=iso(T0 + dt.timedelta(milliseconds=slot_ms)))
        waiting.append(ticket)
    ranks = class_ranks([{"id": c, "rank": draw(st.integers(0, 5))} for c in ("elderly", "disability", "pregnancy")])
    return waiting, ranks


situations = st.tuples(queues(), st.integers(0, 100 * 60 * 1000), st.integers(0, 6), st.integers(1, 4),
                       st.integers(1, 60), st.integers(1, 4), st.integers(0, 6))


def unpack(situation):
    """(waiting, ranks, now, streak, rule, appointment streak) of a drawn situation."""
    (waiting, ranks), now_ms, streak, ratio, max_wait_min, appointment_ratio, appointment_streak = situation
    return waiting, ranks, T0 + dt.timedelta(milliseconds=now_ms, microseconds=now_ms % 1000), streak, \
        Policy(ratio=ratio, max_wait_s=max_wait_min * 60, appointment_ratio=appointment_ratio), appointment_streak


@settings(max_examples=300, deadline=None)
@given(queues())
def test_numeric_keys_order_tickets_as_the_reference_keys(queue):
    """Epoch milliseconds lose nothing: times are stored to the millisecond."""
    waiting, ranks = queue
    assert sorted(waiting, key=lambda t: queue_key(t, ranks)) == sorted(waiting, key=lambda t: order_key(t, ranks))
    for t in waiting:
        assert queue_key(t, ranks)[0] == epoch_ms(order_key(t, ranks)[0])


def same(a, b) -> bool:
    """Two choices agree on ticket, streaks, rule and wait."""
    if a is None or b is None:
        return a is b
    return ((a.ticket["id"], a.streak, a.rule, a.waited_s, a.appointment_streak)
            == (b.ticket["id"], b.streak, b.rule, b.waited_s, b.appointment_streak))


@settings(max_examples=400, deadline=None)
@given(situations)
def test_decision_from_the_heads_equals_the_reference(situation):
    """The same ticket, streak, rule and wait from the two heads as from sorting everything."""
    waiting, ranks, now, streak, rule, a_streak = unpack(situation)
    expected = choose(waiting, now=now, streak=streak, policy=rule, ranks=ranks, appointment_streak=a_streak)
    assert same(choose_indexed(waiting, now=now, streak=streak, policy=rule, ranks=ranks, appointment_streak=a_streak),
                expected)


@settings(max_examples=200, deadline=None)
@given(situations)
def test_whole_call_order_equals_draining_with_the_reference(situation):
    """Calling one ticket after another until the queue is empty (the console's waiting list)."""
    waiting, ranks, now, streak, rule, a_streak = unpack(situation)
    expected, pool, s, a = [], list(waiting), streak, a_streak
    while pool:
        c = choose(pool, now=now, streak=s, policy=rule, ranks=ranks, appointment_streak=a)
        expected.append(c)
        pool = [t for t in pool if t["id"] != c.ticket["id"]]
        s, a = c.streak, c.appointment_streak
    got = list(call_order(iter(entries(waiting, ranks, True)), iter(entries(waiting, ranks, False)),
                          now=now, streak=streak, policy=rule, appointments=iter(entries(waiting, ranks, "appointment")),
                          appointment_streak=a_streak))
    assert len(got) == len(expected) == len(waiting)
    assert all(same(a, b) for a, b in zip(got, expected))


def test_priority_tickets_are_counted_where_they_will_be_called():
    """A disability ticket behind five normal tickets is not told "5 ahead": it goes after at most
    one of them; a normal ticket waits for the priority tickets that came after it too."""
    waiting = [tk(n, minute=n) for n in range(1, 6)] + [tk(6, "disability", minute=6), tk(7, "elderly", minute=7)]
    now, rule = T0 + dt.timedelta(minutes=8), Policy(ratio=2)
    assert place(waiting[5], waiting, now=now, policy=rule, ranks=RANKS) == 0
    assert place(waiting[0], waiting, now=now, policy=rule, ranks=RANKS) == 2
    assert place(waiting[4], waiting, now=now, policy=rule, ranks=RANKS) == 6


def counted_place(ticket: dict, waiting: list[dict], ranks, now, rule: Policy, streak: int, a_streak: int) -> int:
    """A ticket's place by bisections of the three sorted queues, as the store's index counts it."""
    key = queue_key(ticket, ranks)
    sides = {name: [k for k, _ in entries(waiting, ranks, name)] for name in ("priority", "normal", "appointment")}
    cutoff = (epoch_ms(now) - rule.max_wait_s * 1000 + 1,)
    if key < cutoff:
        return sum(bisect.bisect_left(keys, key) for keys in sides.values())
    overdue = {name: bisect.bisect_left(keys, cutoff) for name, keys in sides.items()}
    due = bisect.bisect_left(sides["appointment"], (epoch_ms(now) + 1,))
    last_walk_in = max((sides[n][overdue[n] - 1] for n in ("priority", "normal") if overdue[n]), default=None)
    after = overdue["appointment"] - (bisect.bisect_right(sides["appointment"], last_walk_in) if last_walk_in else 0)
    mine = side(ticket)
    return calls_before(is_priority=mine == "priority", is_appointment=mine == "appointment",
                        index=bisect.bisect_left(sides[mine], key),
                        priority_waiting=len(sides["priority"]), normal_waiting=len(sides["normal"]),
                        overdue_priority=overdue["priority"], overdue_normal=overdue["normal"],
                        ratio=rule.ratio, streak=streak, appointments_due=due,
                        overdue_appointments=overdue["appointment"], appointments_after_overdue_walk_ins=after,
                        appointment_ratio=rule.appointment_ratio, appointment_streak=a_streak)


@settings(max_examples=400, deadline=None)
@given(situations, st.data())
def test_calls_before_by_bisection_equals_replaying_the_queue(situation, data):
    """A ticket's place is a few bisections of the index, equal to replaying every call before it
    (appointments, priority interleaving, overdue tickets and the counter's streaks included)."""
    waiting, ranks, now, streak, rule, a_streak = unpack(situation)
    if not waiting:
        return
    ticket = data.draw(st.sampled_from(waiting))
    assert counted_place(ticket, waiting, ranks, now, rule, streak, a_streak) == place(
        ticket, waiting, now=now, policy=rule, streak=streak, ranks=ranks, appointment_streak=a_streak)


def test_call_order_is_lazy():
    """The first choices are made without reading the rest of the queue."""
    read = []

    def stream(side):
        for n in range(10 ** 9):
            read.append(side)
            t = tk(n, "elderly" if side else "normal", minute=n)
            yield queue_key(t, RANKS), t
    order = call_order(stream(True), stream(False), now=T0, streak=0, policy=Policy(ratio=2))
    firsts = [next(order).ticket["priority"] for _ in range(6)]
    assert firsts == ["elderly", "elderly", "normal"] * 2
    assert len(read) <= 8


# -- appointments --------------------------------------------------------------------------------

def test_an_appointment_whose_slot_started_goes_before_walk_ins():
    waiting = [tk(1, minute=0), tk(2, "elderly", minute=1), appt(3, slot_minute=30, minute=20)]
    c = choose(waiting, now=T0 + dt.timedelta(minutes=31), streak=0, policy=Policy(), ranks=RANKS)
    assert c.ticket["id"] == "T00003" and c.rule == "appointment" and c.waited_s == 60
    assert c.appointment_streak == 1 and c.streak == 0
    assert c.reason() == "appointment whose slot has started, waited 1 min"


def test_an_appointment_before_its_slot_waits_behind_everybody():
    waiting = [tk(1, minute=0), appt(3, slot_minute=30, minute=20)]
    rule = Policy()
    c = choose(waiting, now=T0 + dt.timedelta(minutes=25), streak=0, policy=rule, ranks=RANKS)
    assert c.ticket["id"] == "T00001" and c.rule == "next"
    alone = choose(waiting[1:], now=T0 + dt.timedelta(minutes=25), streak=0, policy=rule, ranks=RANKS)
    assert alone.rule == "early" and alone.waited_s == 0
    assert alone.reason() == "appointment before its slot, nobody else waiting"


def test_a_late_check_in_queues_from_the_check_in():
    late = appt(3, slot_minute=10, minute=20)
    early = appt(4, slot_minute=15, minute=5)
    order = [c.ticket["id"] for c in call_order([], [], now=T0 + dt.timedelta(minutes=21), streak=0, policy=Policy(),
                                                 appointments=iter(entries([late, early], RANKS, "appointment")))]
    assert order == ["T00004", "T00003"]


def test_walk_ins_get_a_turn_after_the_appointment_ratio():
    waiting = [tk(1, minute=0), tk(2, minute=1)] + [appt(10 + i, slot_minute=5 + i, minute=2) for i in range(5)]
    now, streak, a_streak, calls = T0 + dt.timedelta(minutes=12), 0, 0, []
    for _ in range(7):
        c = choose(waiting, now=now, streak=streak, policy=Policy(appointment_ratio=2), ranks=RANKS,
                   appointment_streak=a_streak)
        calls.append(c.rule)
        streak, a_streak = c.streak, c.appointment_streak
        waiting = [t for t in waiting if t["id"] != c.ticket["id"]]
    assert calls == ["appointment", "appointment", "next", "appointment", "appointment", "next", "appointment"]


@CHOOSERS
@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["normal", "elderly", "appointment", "appointment"]), st.integers(0, 3),
                          st.integers(-20, 40)), min_size=1, max_size=150),
       st.integers(1, 3), st.integers(1, 3), st.integers(5, 30))
def test_no_walk_in_and_no_appointment_starves(chooser, arrivals, ratio, appointment_ratio, max_wait_min):
    """Walk-ins and appointments arrive while one counter serves a ticket a minute; an appointment
    checks in up to 20 minutes after its slot started or up to 40 before it. Once overdue, nothing
    is passed over by a later arrival (so every ticket's wait is bounded by max_wait plus the
    backlog already there), and a walk-in never waits behind more than `appointment_ratio`
    appointment calls in a row."""
    rule = Policy(ratio=ratio, max_wait_s=max_wait_min * 60, appointment_ratio=appointment_ratio)
    pending, waiting, streak, a_streak, minute = list(enumerate(arrivals)), [], 0, 0, 0
    queued_at, in_a_row = {}, 0
    while pending or waiting:
        # arrivals of this minute (the second element says how many minutes after the previous one)
        while pending and (not waiting or pending[0][1][1] == 0):
            n, (kind, _, slot_offset) = pending.pop(0)
            if kind == "appointment":
                t = appt(n, slot_minute=minute + slot_offset, minute=minute)
                queued_at[t["id"]] = max(minute, minute + slot_offset)
            else:
                t = tk(n, kind, minute)
                queued_at[t["id"]] = minute
            waiting.append(t)
            if pending:
                pending[0] = (pending[0][0], (pending[0][1][0], max(0, pending[0][1][1] - 1), pending[0][1][2]))
        now = T0 + dt.timedelta(minutes=minute, seconds=1)
        c = chooser(waiting, now=now, streak=streak, policy=rule, ranks=RANKS, appointment_streak=a_streak)
        called = c.ticket["id"]
        overdue_earlier = [t for t in waiting if (minute - queued_at[t["id"]]) * 60 >= rule.max_wait_s
                           and queued_at[t["id"]] < queued_at[called]]
        assert not overdue_earlier, "an overdue ticket was passed over by a later arrival"
        if not c.ticket.get("appointment"):
            in_a_row = 0
        elif c.rule == "appointment" and any(not t.get("appointment") for t in waiting):
            in_a_row += 1
            assert in_a_row <= appointment_ratio, "walk-ins waited behind too many appointments in a row"
        streak, a_streak = c.streak, c.appointment_streak
        waiting = [t for t in waiting if t["id"] != called]
        minute += 1
        if pending and pending[0][1][1] > 0:
            pending[0] = (pending[0][0], (pending[0][1][0], pending[0][1][1] - 1, pending[0][1][2]))


@CHOOSERS
@given(st.integers(1, 4), st.integers(1, 30))
def test_a_due_appointment_waits_for_at_most_one_walk_in_between_appointment_blocks(chooser, appointment_ratio, walk_ins):
    """However many walk-ins wait, a due appointment is called after at most one walk-in (the
    walk-in whose turn it is), unless older overdue tickets go first."""
    waiting = [tk(i, "elderly" if i % 2 else "normal", minute=i) for i in range(1, walk_ins + 1)]
    waiting.append(appt(99, slot_minute=40, minute=35))
    now, streak, a_streak, calls = T0 + dt.timedelta(minutes=41), 0, appointment_ratio, 0
    rule = Policy(appointment_ratio=appointment_ratio, max_wait_s=10 ** 6)
    while True:
        c = chooser(waiting, now=now, streak=streak, policy=rule, ranks=RANKS, appointment_streak=a_streak)
        if c.ticket["id"] == "T00099":
            break
        calls += 1
        streak, a_streak = c.streak, c.appointment_streak
        waiting = [t for t in waiting if t["id"] != c.ticket["id"]]
    assert calls <= 1
