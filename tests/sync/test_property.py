"""Property: whatever happens to the pushes (lost requests, lost answers, duplicates, batches
delivered late and out of order, a device cursor that goes back or runs ahead), central always
holds exactly the device journal's state at central's cursor, and a final clean sync converges
to the whole journal, with every ticket event recorded once."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from kiosk.ids import new_ulid
from sync.central.models import DeviceCursor, Record, TicketEventRow
from tests.sync.support import SignedDevice, commit, hlc

STATES = ("waiting", "called", "serving", "done", "no_show", "waiting", "called", "done")


@st.composite
def journals(draw) -> list[tuple[str, str, str | None]]:
    """A device journal as a list of commits, each a list of (table, op, key) changes."""
    commits = draw(st.lists(st.lists(st.tuples(st.sampled_from(["tickets", "tickets", "audit"]),
                                               st.sampled_from(["put", "put", "put", "del"]),
                                               st.sampled_from(["K1", "K2", "K3", "K4"])),
                                     max_size=3), min_size=1, max_size=24))
    return commits


ACTIONS = st.lists(st.one_of(
    st.tuples(st.just("send"), st.integers(1, 8), st.sampled_from(["ok", "ok", "lost_request", "lost_answer"])),
    st.tuples(st.just("replay"), st.integers(0, 1000)),
    st.tuples(st.just("rewind"), st.integers(1, 10)),
    st.tuples(st.just("run_ahead"), st.integers(1, 5)),
), max_size=30)


def _materialise(shape: list[list[tuple]], prefix: str) -> list[dict]:
    """Journal commits with real documents: a ticket's events only ever grow, across deletes too."""
    versions: dict[str, int] = {}
    out = []
    for s, changes in enumerate(shape, start=1):
        real = []
        for table, op, key in changes:
            key = f"{prefix}{key}"
            if op == "del":
                real.append({"t": table, "o": "del", "k": key, "d": None})
                continue
            versions[key] = versions.get(key, 0) + 1
            v = versions[key]
            if table == "tickets":
                events = [{"state": STATES[i % len(STATES)], "at": f"2026-11-22T09:{i:02d}:00.000Z"} for i in range(v)]
                doc = {"id": key, "state": events[-1]["state"], "events": events, "number": "A-001"}
            else:
                doc = {"id": key, "at": "2026-11-22T09:00:00.000Z", "action": f"act{v}", "hash": f"{v:064x}"}
            real.append({"t": table, "o": "put", "k": key, "d": doc})
        out.append(commit(s, *real, h=hlc(s)))
    return out


def _expected(commits: list[dict], upto: int) -> tuple[dict, set]:
    """(records, events) central must hold after applying commits 1..upto."""
    records: dict[tuple[str, str], tuple] = {}
    events: set = set()
    for c in commits[:upto]:
        for ch in c["c"]:
            records[(ch["t"], ch["k"])] = (ch["d"], ch["o"] == "del")
            if ch["o"] == "put" and ch["t"] == "tickets":
                events |= {(ch["k"], i, e["state"]) for i, e in enumerate(ch["d"]["events"])}
    return records, events


def _actual(engine, centre: str, device_id: str) -> tuple[int, dict, set]:
    """(cursor, records, events) as central holds them for one device."""
    with engine.connect() as conn:
        cursor = conn.execute(select(DeviceCursor.last_seq).where(DeviceCursor.device_id == device_id)).scalar_one()
        records = {(r.tbl, r.key): (r.doc, r.deleted) for r in conn.execute(
            select(Record.tbl, Record.key, Record.doc, Record.deleted).where(Record.centre == centre))}
        events = {(r.ticket_id, r.idx, r.state) for r in conn.execute(
            select(TicketEventRow.ticket_id, TicketEventRow.idx, TicketEventRow.state)
            .where(TicketEventRow.centre == centre))}
    return cursor, records, events


def _settings(backend: str):
    """Fewer examples on PostgreSQL, whose round trips cost more."""
    return settings(max_examples=60 if backend == "sqlite" else 25, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def test_any_interleaving_of_pushes_converges(backend, central_app, ops, server_clock):
    client = central_app.test_client()

    @_settings(backend)
    @given(shape=journals(), actions=ACTIONS)
    def run(shape, actions):
        centre = f"C{new_ulid()[-12:]}"
        ops.add_centre(centre, "property centre")
        dev = SignedDevice(client, server_clock)
        assert dev.enrol(ops.code(centre), centre).status_code == 201
        commits = _materialise(shape, prefix=f"{dev.device_id}-")
        total = len(commits)
        acked = 0  # what the device believes central has
        sent: list[list[dict]] = []

        def check_prefix():
            cursor, records, events = _actual(ops.engine, centre, dev.device_id)
            expected_records, expected_events = _expected(commits, cursor)
            assert records == expected_records and events == expected_events
            return cursor

        for action in actions:
            if action[0] == "send":
                _, size, fate = action
                batch = commits[acked:acked + size]
                if not batch:
                    continue
                sent.append(batch)
                if fate == "lost_request":
                    continue
                response = dev.push(batch, from_seq=acked + 1)
                if response.status_code == 409:
                    if fate == "ok":
                        acked = response.get_json()["error"]["expected_from_seq"] - 1
                    continue
                assert response.status_code == 200, response.get_json()
                if fate == "ok":
                    acked = response.get_json()["acked_seq"]
            elif action[0] == "replay" and sent:
                batch = sent[action[1] % len(sent)]
                response = dev.push(batch)
                assert response.status_code in (200, 409)
            elif action[0] == "rewind":
                acked = max(0, acked - action[1])
            elif action[0] == "run_ahead":
                acked = min(total, acked + action[1])
            check_prefix()

        for _ in range(2 * total + 5):
            if acked >= total and check_prefix() == total:
                break
            if acked >= total:
                acked = check_prefix()  # believed more than central has: ask by sending from there
            batch = commits[acked:acked + 5]
            response = dev.push(batch, from_seq=acked + 1)
            if response.status_code == 409:
                acked = response.get_json()["error"]["expected_from_seq"] - 1
            else:
                assert response.status_code == 200
                acked = response.get_json()["acked_seq"]
        assert check_prefix() == total

    run()
