"""Push and pull semantics of central, on SQLite and on PostgreSQL: idempotent replay, gaps,
last-writer-wins, immutable events, quarantine, payload limits, the configuration feed."""
from __future__ import annotations

import gzip
import json

from sqlalchemy import func, select

from sync import protocol
from sync.central.models import (ConfigChange, DeviceCursor, InboundBatch, Quarantined, Record,
                                 TicketEventRow)
from tests.sync.support import SignedDevice, commit, hlc, put, ticket_doc

PUSH = f"{protocol.API_PREFIX}/push"


def _rows(ops, model, *where):
    """All rows of a table (optionally filtered)."""
    with ops.engine.connect() as conn:
        return conn.execute(select(model).where(*where)).all()


def _count(ops, model) -> int:
    """Row count of a table."""
    with ops.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(model)).scalar_one()


def _cursor(ops, device) -> int:
    """Central's cursor for a device."""
    with ops.engine.connect() as conn:
        return conn.execute(select(DeviceCursor.last_seq).where(DeviceCursor.device_id == device.device_id)).scalar_one()


# -- push ------------------------------------------------------------------------------------------

def test_a_batch_sent_twice_changes_nothing_the_second_time(device, ops, server_clock):
    t1, t2 = ticket_doc(number=1), ticket_doc(number=2, states=("waiting", "called"))
    batch = [commit(1, put("tickets", t1), put("audit", {"id": "AU1", "at": "2026-11-22T09:00:00Z",
                                                         "action": "call", "hash": "ab"})),
             commit(2, put("tickets", t2)), commit(3, {"t": "tickets", "o": "del", "k": t1["id"], "d": None})]
    first = device.push(batch)
    assert first.status_code == 200 and first.get_json()["acked_seq"] == 3
    before = {(r.tbl, r.key): (r.doc, r.hlc, r.deleted, r.updated_at) for r in _rows(ops, Record)}
    server_clock.advance(seconds=30)
    again = device.push(batch)
    assert again.status_code == 200
    assert again.get_json() | {"server_time": None} == {"v": 1, "acked_seq": 3, "applied": 0, "quarantined": 0,
                                                        "server_time": None}
    after = {(r.tbl, r.key): (r.doc, r.hlc, r.deleted, r.updated_at) for r in _rows(ops, Record)}
    assert after == before
    assert before[("tickets", t1["id"])][2] is True  # the delete is a tombstone
    assert _count(ops, TicketEventRow) == 1 + 2
    assert _count(ops, InboundBatch) == 1


def test_a_batch_after_a_gap_is_answered_with_the_expected_sequence(device, ops):
    assert device.push([commit(1, put("tickets", ticket_doc())), commit(2)]).status_code == 200
    gap = device.push([commit(5, put("tickets", ticket_doc())), commit(6)])
    assert gap.status_code == 409
    error = gap.get_json()["error"]
    assert error["code"] == "sequence_gap" and error["expected_from_seq"] == 3
    assert _cursor(ops, device) == 2 and _count(ops, Record) == 1
    ok = device.push([commit(3), commit(4), commit(5, put("tickets", ticket_doc())), commit(6)])
    assert ok.get_json()["acked_seq"] == 6 and _count(ops, Record) == 2


def test_an_overlapping_batch_applies_only_the_new_commits(device, ops):
    t = ticket_doc()
    assert device.push([commit(1, put("tickets", t)), commit(2)]).status_code == 200
    late = ticket_doc(t["id"], states=("waiting", "called"))
    # commit 1 resent with other content must not be re-applied: only 3 is new
    response = device.push([commit(1, put("tickets", late), h=hlc(1)), commit(2), commit(3, put("tickets", ticket_doc()))])
    assert response.get_json()["acked_seq"] == 3 and response.get_json()["applied"] == 1
    assert _rows(ops, Record, Record.key == t["id"])[0].doc == t


def test_a_rewound_journal_is_detected(device):
    assert device.push([commit(1), commit(2), commit(3, h=hlc(3))]).status_code == 200
    diverged = device.push([commit(3, h=hlc(99)), commit(4)])
    assert diverged.status_code == 409
    assert diverged.get_json()["error"]["code"] == "history_diverged"


def test_newer_clock_wins_and_events_are_written_once(central_app, device, ops, server_clock):
    tid = ticket_doc()["id"]
    waiting = ticket_doc(tid)
    called = ticket_doc(tid, states=("waiting", "called"))
    done = ticket_doc(tid, states=("waiting", "called", "serving", "done"))
    # three versions in one batch collapse to the newest (PostgreSQL refuses a row twice per statement)
    response = device.push([commit(1, put("tickets", waiting)), commit(2, put("tickets", called)),
                            commit(3, put("tickets", done))])
    assert response.status_code == 200
    (record,) = _rows(ops, Record, Record.key == tid)
    assert record.doc == done and record.hlc == hlc(3) and record.seq == 3
    events = sorted(_rows(ops, TicketEventRow, TicketEventRow.ticket_id == tid), key=lambda e: e.idx)
    assert [e.state for e in events] == ["waiting", "called", "serving", "done"]
    assert events[1].counter == "1" and events[1].by == "demo"
    # a second device with an older clock for the same ticket does not win
    other = SignedDevice(central_app.test_client(), server_clock)
    assert other.enrol(ops.code(label="kiosk-2"), "ERB-01").status_code == 201
    stale = ticket_doc(tid, states=("waiting", "cancelled"))
    assert other.push([commit(1, put("tickets", stale), h=hlc(2))]).status_code == 200
    assert _rows(ops, Record, Record.key == tid)[0].doc == done
    assert _count(ops, TicketEventRow) == 4  # event 1 exists: never rewritten
    newer = ticket_doc(tid, states=("waiting", "called", "serving", "done", "cancelled"))
    assert other.push([commit(2, put("tickets", newer), h=hlc(10))]).status_code == 200
    assert _rows(ops, Record, Record.key == tid)[0].doc == newer
    assert _count(ops, TicketEventRow) == 5


def test_invalid_changes_are_quarantined_acknowledged_and_shown(central_app, device, ops):
    good = ticket_doc()
    batch = [commit(1, put("tickets", good),
                    {"t": "tickets", "o": "put", "k": "T2", "d": {"id": "T2", "state": "waiting", "events": []}},
                    {"t": "services", "o": "put", "k": "A", "d": {"id": "A"}},
                    {"t": "Bad Table", "o": "put", "k": "x", "d": {"id": "x"}},
                    {"t": "receipts", "o": "put", "k": "R1", "d": {"id": "R2"}},
                    "not an object"),
             commit(2, put("receipts", {"id": "R1", "ticket": good["id"]}))]
    response = device.push(batch)
    assert response.status_code == 200
    assert response.get_json()["acked_seq"] == 2 and response.get_json()["quarantined"] == 5
    assert {(r.tbl, r.key) for r in _rows(ops, Record)} == {("tickets", good["id"]), ("receipts", "R1")}
    quarantined = sorted(_rows(ops, Quarantined), key=lambda q: q.idx)
    assert [q.idx for q in quarantined] == [1, 2, 3, 4, 5]
    assert "events" in quarantined[0].reason and "maintained by central" in quarantined[1].reason
    assert json.loads(quarantined[0].change)["k"] == "T2"
    # replaying the batch does not quarantine twice
    assert device.push(batch).get_json()["quarantined"] == 0
    # visible at central, to an operator
    ops.cli("add-operator", "ana", "--password-stdin", input="correct horse battery\n")
    client = central_app.test_client()
    auth = {"Authorization": "Basic " + __import__("base64").b64encode(b"ana:correct horse battery").decode()}
    page = client.get("/centres/ERB-01", headers=auth)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "T2" in html and "maintained by central" in html
    index = client.get("/", headers=auth).get_data(as_text=True)
    assert device.device_id in index and "kiosk-1" in index


def test_commits_without_pushed_changes_still_advance_the_cursor(device, ops):
    response = device.push([commit(1), commit(2)])
    assert response.get_json()["acked_seq"] == 2 and _cursor(ops, device) == 2
    empty = device.push([], from_seq=3, to_seq=2)
    assert empty.status_code == 200 and empty.get_json()["acked_seq"] == 2


def test_a_cleared_table_tombstones_only_older_rows_of_that_device(device, ops):
    a, b = ticket_doc(), ticket_doc()
    device.push([commit(1, put("receipts", {"id": "R1"}), put("receipts", {"id": "R2"}))])
    response = device.push([commit(2, {"t": "receipts", "o": "clear", "k": None, "d": None}),
                            commit(3, put("receipts", {"id": "R3"}), put("tickets", a), put("tickets", b))])
    assert response.status_code == 200
    rows = {r.key: r.deleted for r in _rows(ops, Record, Record.tbl == "receipts")}
    assert rows == {"R1": True, "R2": True, "R3": False}


def test_malformed_batches_are_refused_without_moving_the_cursor(device, ops):
    good = [commit(1, put("tickets", ticket_doc())), commit(2)]
    cases = {
        "not consecutive": (device.push_body([good[0], commit(3)]), 422),
        "range does not match": (device.push_body(good, to_seq=5), 422),
        "unknown field": (protocol.gzip_json({**json.loads(gzip.decompress(device.push_body(good))), "x": 1}), 422),
        "not json": (gzip.compress(b"{nope"), 400),
        "not gzip": (b"\x1f\x8b garbage", 400),
        "gzip bomb": (gzip.compress(b" " * (protocol.MAX_INFLATED_BYTES + 10)), 400),
        "wrong version": (protocol.gzip_json({**json.loads(gzip.decompress(device.push_body(good))), "v": 9}), 422),
    }
    for name, (body, status) in cases.items():
        response = device.send("POST", PUSH, body, device.headers("POST", PUSH, body))
        assert response.status_code == status, (name, response.get_json())
        assert set(response.get_json()) == {"error"}
    big = b"\x00" * (protocol.MAX_BODY_BYTES + 1)
    too_big = device.send("POST", PUSH, big, device.headers("POST", PUSH, big))
    assert too_big.status_code == 413 and too_big.get_json()["error"]["code"] == "payload_too_large"
    body = device.push_body(good)
    changed = device.headers("POST", PUSH, body)
    changed["Content-Type"] = "text/plain"  # the type is signed: changing it breaks the signature
    assert device.send("POST", PUSH, body, changed).status_code == 401
    signed_as_text = protocol.sign_headers(
        device.key, device_id=device.device_id, method="POST", path=PUSH, body=body, content_type="text/plain",
        content_encoding="gzip", now_s=int(device.clock.now().timestamp()), device_time="")
    signed_as_text |= {"Content-Type": "text/plain", "Content-Encoding": "gzip"}
    assert device.send("POST", PUSH, body, signed_as_text).status_code == 415
    assert _cursor(ops, device) == 0 and _count(ops, Record) == 0


def test_uncompressed_json_is_accepted_too(device, ops):
    body = gzip.decompress(device.push_body([commit(1, put("tickets", ticket_doc()))]))
    response = device.send("POST", PUSH, body, device.headers("POST", PUSH, body, gzip=False))
    assert response.status_code == 200 and _count(ops, Record) == 1


def test_clock_offset_and_lag_are_recorded_at_each_sync(central_app, ops, server_clock):
    from kiosk.clock import FrozenClock
    from sync.central.models import Device
    ops.add_centre()
    slow = FrozenClock(server_clock.now())
    slow.advance(seconds=-120)  # the kiosk's clock is two minutes behind
    dev = SignedDevice(central_app.test_client(), slow)
    assert dev.enrol(ops.code(), "ERB-01").status_code == 201
    path = f"{protocol.API_PREFIX}/pull?since=0&limit=500&head_seq=40"
    headers = dev.headers("GET", path, b"", now_s=int(server_clock.now().timestamp()))
    assert dev.send("GET", path, b"", headers).status_code == 200
    (row,) = _rows(ops, Device)
    assert row.clock_offset_s == 120.0 and row.head_seq == 40 and row.last_pull_at == server_clock.now()


# -- pull ------------------------------------------------------------------------------------------

SERVICE = {"id": "A", "code": "A", "prefix": "A", "active": True, "daily_cap": None, "fee_iqd": 5000,
           "sla_hours": 72, "pictogram": "documents", "documents": [{"ar": "هوية", "ckb": "ناسنامە", "en": "ID"}],
           "names": {"ar": "وثائق", "ckb": "بەڵگەنامە", "en": "Documents"}}


def _config(tmp_path, name: str, data: dict) -> str:
    """Write a configuration file."""
    path = tmp_path / name
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return str(path)


def test_pull_returns_changes_and_tombstones_after_the_cursor(device, ops, tmp_path):
    first = {"services": [SERVICE, {**SERVICE, "id": "B", "code": "B", "prefix": "B"}],
             "counters": [{"id": "1", "names": SERVICE["names"], "services": ["A", "B"], "active": True}],
             "staff": [{"id": "demo", "display_name": "Demo", "role": "attendant", "pin": "1234", "active": True}],
             "settings": [{"id": "queue", "priority_ratio": 3}]}
    out = ops.cli("config-load", "ERB-01", _config(tmp_path, "one.json", first))
    assert "services: 2 new or changed, 0 removed" in out
    page = device.pull().get_json()
    assert page["has_more"] is False and page["acked_seq"] == 0
    assert {(c["t"], c["k"], c["o"]) for c in page["changes"]} == {
        ("services", "A", "put"), ("services", "B", "put"), ("counters", "1", "put"),
        ("staff", "demo", "put"), ("settings", "queue", "put")}
    staff = next(c["d"] for c in page["changes"] if c["t"] == "staff")
    assert staff["pin_hash"].startswith("$argon2") and "pin" not in staff
    since = page["next_since"]
    assert device.pull(since).get_json()["changes"] == []
    # the same file again changes nothing (the PIN's hash is kept)
    assert "0 new or changed, 0 removed, 2 unchanged" in ops.cli("config-load", "ERB-01", _config(tmp_path, "same.json", first))
    second = {"services": [{**SERVICE, "fee_iqd": 7500}], "staff": []}
    ops.cli("config-load", "ERB-01", _config(tmp_path, "two.json", second))
    changes = device.pull(since).get_json()["changes"]
    assert [(c["t"], c["k"], c["o"]) for c in changes] == [("services", "A", "put"), ("services", "B", "del"),
                                                            ("staff", "demo", "del")]
    assert changes[0]["d"]["fee_iqd"] == 7500 and changes[1]["d"] is None
    paged = device.pull(0, limit=2).get_json()
    assert paged["has_more"] is True and len(paged["changes"]) == 2


def test_each_device_sees_only_its_own_centres_configuration(central_app, device, ops, server_clock, tmp_path):
    ops.add_centre("SUL-01", "Sulaymaniyah")
    ops.cli("config-load", "SUL-01", _config(tmp_path, "sul.json", {"services": [SERVICE]}))
    assert device.pull().get_json()["changes"] == []
    other = SignedDevice(central_app.test_client(), server_clock)
    assert other.enrol(ops.code("SUL-01"), "SUL-01").status_code == 201
    assert len(other.pull().get_json()["changes"]) == 1


def test_an_invalid_configuration_is_refused_whole(ops, device, tmp_path):
    bad = {"services": [SERVICE, {**SERVICE, "id": "B", "code": "B", "prefix": "bb"}],
           "settings": [{"id": "audit_head", "n": 1}]}
    result = ops.app.test_cli_runner().invoke(args=["config-load", "ERB-01", _config(tmp_path, "bad.json", bad)])
    assert result.exit_code != 0
    assert "services[1].prefix" in result.output and "audit_head" in result.output
    assert _count(ops, ConfigChange) == 0


def test_pull_query_is_validated(device):
    for query in ("since=-1", "limit=0", "limit=100000", "since=abc", "other=1"):
        path = f"{protocol.API_PREFIX}/pull?{query}"
        response = device.send("GET", path, b"", device.headers("GET", path, b""))
        assert response.status_code == 422, query


def test_configuration_files_leave_centrals_own_documents_alone(device, ops, tmp_path, server_clock):
    from sync.central import feed
    with ops.engine.begin() as conn:  # a document central maintains itself (e.g. the trust list)
        feed.lock_feed(conn)
        feed._record(conn, "ERB-01", "settings", "trust_list", "put", {"id": "trust_list", "seq": 1},
                     server_clock.now())
    ops.cli("config-load", "ERB-01", _config(tmp_path, "a.json", {"settings": [{"id": "queue", "priority_ratio": 2}]}))
    ops.cli("config-load", "ERB-01", _config(tmp_path, "b.json", {"settings": []}))
    changes = [(c["k"], c["o"]) for c in device.pull().get_json()["changes"]]
    assert changes == [("trust_list", "put"), ("queue", "put"), ("queue", "del")]
    result = ops.app.test_cli_runner().invoke(args=[
        "config-load", "ERB-01", _config(tmp_path, "c.json", {"settings": [{"id": "trust_list"}]})])
    assert result.exit_code != 0 and "kept by central itself" in result.output
