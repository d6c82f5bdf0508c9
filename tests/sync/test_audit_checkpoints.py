"""Audit checkpoints through real sync (SQLite and PostgreSQL): the kiosk signs its chain's head at
each sync and day close; central checks each segment against the previous checkpoint and flags an
altered entry, a removed entry and a fork made by tampering with the kiosk's store between syncs."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from kiosk import create_app as create_kiosk_app
from kiosk import services
from kiosk.domain import audit
from kiosk.usecases.days import close_days
from sync import protocol
from sync.central import checkpoints as checkpoints_mod
from sync.central.models import AuditCheckpoint, AuditEntry, AuditFlag
from tests.sync.support import commit, put

CHECKPOINT = f"{protocol.API_PREFIX}/checkpoint"


@pytest.fixture
def centre(kiosk_dir, kiosk_clock, store):
    """The kiosk's use cases on the test store."""
    app = create_kiosk_app({"DATA_DIR": str(kiosk_dir), "SECRET_KEY": "k", "CENTRE": "ERB-01",
                            "PRINTER_URL": "off"}, store=store, clock=kiosk_clock)
    yield app.extensions["kiosk"].centre
    app.extensions["kiosk"].close()


def act(centre, count: int, what: str = "unlock") -> None:
    """Record `count` staff actions in the audit chain, as the kiosk's screens do."""
    for i in range(count):
        services.audit_staff_action(centre, by="sup-1", action=what, target=f"att-{i}", detail={"i": i})


def checkpoints(ops) -> list:
    """Central's checkpoints, by number."""
    with ops.engine.connect() as conn:
        return conn.execute(select(AuditCheckpoint).order_by(AuditCheckpoint.n, AuditCheckpoint.received_at)).all()


def flags(ops) -> list[tuple[str, int]]:
    """Central's audit flags as (kind, entry number), sorted."""
    with ops.engine.connect() as conn:
        return sorted((r.kind, r.n) for r in conn.execute(select(AuditFlag)))


def entries(store) -> list[dict]:
    """The kiosk's live audit entries by number."""
    return sorted(store.all("audit"), key=lambda e: e["n"])


def test_a_clean_chain_verifies_across_syncs_and_a_day_close(enrolled, store, centre, make_agent, ops, kiosk_clock):
    act(centre, 4)
    assert make_agent().run().checkpoint == "ok"
    act(centre, 3)
    kiosk_clock.advance(minutes=5)
    assert make_agent().run().checkpoint == "ok"
    assert make_agent().run().checkpoint is None, "an unchanged head is not signed again"
    kiosk_clock.advance(days=1)
    result = close_days(centre)
    assert result["closed"] and result["checkpoint"]["n"] == 7 and result["checkpoint"]["kind"] == "day_close"
    assert store.count("audit") == 0, "the day's entries moved to the archive"
    act(centre, 2)
    outcome = make_agent().run()
    assert outcome.checkpoint == "ok"
    rows = checkpoints(ops)
    assert [(r.kind, r.n, r.status) for r in rows] == [("sync", 4, "ok"), ("sync", 7, "ok"),
                                                        ("day_close", 7, "ok"), ("sync", 9, "ok")]
    assert flags(ops) == []
    assert services.verify_audit(centre)[0]


def test_a_central_without_checkpoints_still_takes_records_and_gives_configuration(enrolled, store, centre,
                                                                                  make_agent, ops, central_app):
    """Kiosks may be updated before central: an older central answers 404 to a checkpoint, and the
    round still pushes, pulls and succeeds; the head is signed again once central takes it."""
    from flask import abort
    original = central_app.view_functions["sync_api.checkpoint"]
    central_app.view_functions["sync_api.checkpoint"] = lambda: abort(404)
    act(centre, 3)
    outcome = make_agent().run()
    assert outcome.checkpoint == "unsupported" and outcome.acked_seq == store.seq
    assert checkpoints(ops) == []
    central_app.view_functions["sync_api.checkpoint"] = original
    assert make_agent().run().checkpoint == "ok"


def test_an_altered_entry_is_flagged(enrolled, store, centre, make_agent, ops):
    act(centre, 5)
    assert make_agent().run().checkpoint == "ok"
    third = entries(store)[2]
    store.put("audit", {**third, "actor": "someone-else"})  # the record rewritten in the store
    make_agent().run()
    assert flags(ops) == [("altered", 3)]
    with ops.engine.connect() as conn:
        kept = conn.execute(select(AuditEntry.hash).where(AuditEntry.n == 3)).scalar_one()
    assert kept == third["hash"], "central keeps the entry as first received"


def test_an_altered_and_rehashed_chain_is_flagged(enrolled, store, centre, make_agent, ops):
    act(centre, 5)
    make_agent().run()
    chain = entries(store)
    prev = chain[1]["hash"]
    for entry in chain[2:]:  # rewrite entry 3 and re-link everything after it, head included
        entry = audit.make_entry(entry_id=entry["id"], n=entry["n"], prev=prev, at=entry["at"], actor="x",
                                 action=entry["action"], target=entry["target"], detail=entry["detail"])
        store.put("audit", entry)
        prev = entry["hash"]
    store.put("settings", {"id": "audit_head", "n": 5, "hash": prev})
    assert make_agent().run().checkpoint == "flagged"
    found = flags(ops)
    assert ("altered", 3) in found and ("fork", 5) in found


def test_a_removed_entry_is_flagged(enrolled, store, centre, make_agent, ops):
    act(centre, 5)
    make_agent().run()
    store.delete("audit", entries(store)[1]["id"])
    make_agent().run()
    assert flags(ops) == [("gap", 2)]


def test_an_entry_removed_before_its_first_sync_is_still_flagged(enrolled, store, centre, make_agent, ops):
    act(centre, 6)
    store.delete("audit", entries(store)[3]["id"])
    # the journal still carried the entry to central, so the chain checks out there; the removal shows
    assert make_agent().run().checkpoint == "ok"
    assert flags(ops) == [("gap", 4)]


def test_a_restored_older_copy_with_other_entries_is_a_fork(enrolled, store, centre, make_agent, ops, kiosk_clock):
    act(centre, 5)
    make_agent().run()
    copy = {"audit": entries(store), "head": store.get("settings", "audit_head")}
    act(centre, 3)
    kiosk_clock.advance(minutes=1)
    make_agent().run()
    # the audit records go back to the older copy, then the kiosk carries on with other actions
    for entry in entries(store):
        if entry["n"] > 5:
            store.delete("audit", entry["id"])
    store.put("settings", copy["head"])
    kiosk_clock.advance(minutes=1)
    act(centre, 2, what="counter_closed")
    assert make_agent().run().checkpoint == "flagged"
    found = flags(ops)
    assert ("fork", 6) in found and ("fork", 7) in found, found
    assert {("gap", 6), ("gap", 7), ("gap", 8)} <= set(found)
    assert services.verify_audit(centre)[0], "locally the rebuilt chain looks whole: only central can tell"


# -- the endpoint, through the test client --------------------------------------------------------

def _entries(count: int, start: int = 1, prev: str = audit.GENESIS, actor: str = "a") -> list[dict]:
    """A chain of `count` entries."""
    out = []
    for n in range(start, start + count):
        entry = audit.make_entry(entry_id=f"E{n:04d}{actor}", n=n, prev=prev, at="2026-11-22T09:00:00.000Z",
                                 actor=actor, action="unlock", target="t")
        out.append(entry)
        prev = entry["hash"]
    return out


def _post(device, doc, *, key=None):
    """Send a checkpoint signed (the request) with the device's key."""
    body = protocol.gzip_json({"v": 1, "checkpoint": doc})
    return device.send("POST", CHECKPOINT, body, device.headers("POST", CHECKPOINT, body, key=key))


def _checkpoint(device, n: int, head: str, *, seq: int, key=None, cp_id: str | None = None) -> dict:
    """A checkpoint of (n, head) signed with `key` (the device's own by default)."""
    return audit.make_checkpoint(key or device.key, checkpoint_id=cp_id or f"cp-{n}-{head[:6]}", kind="sync",
                                 device_id=device.device_id, centre="ERB-01", n=n, head_hash=head,
                                 at="2026-11-22T09:00:00.000Z", seq=seq)


def test_a_checkpoint_with_a_bad_signature_is_refused(device, ops):
    chain = _entries(2)
    assert device.push([commit(1, put("audit", chain[0]), put("audit", chain[1]))]).status_code == 200
    forged = _checkpoint(device, 2, chain[1]["hash"], seq=1, key=protocol.new_private_key())
    response = _post(device, forged)
    assert response.status_code == 422 and response.get_json()["error"]["code"] == "invalid_checkpoint"
    tampered = {**_checkpoint(device, 2, chain[1]["hash"], seq=1), "n": 1}
    assert _post(device, tampered).status_code == 422
    assert checkpoints(ops) == []
    # inside the journal (a day-close checkpoint) a forged one is quarantined, not stored
    assert device.push([commit(2, put("checkpoints", forged))]).get_json()["quarantined"] == 1
    assert checkpoints(ops) == []


def test_a_checkpoint_before_its_entries_waits_for_them(device, ops):
    chain = _entries(3)
    assert _post(device, _checkpoint(device, 3, chain[2]["hash"], seq=2)).get_json()["status"] == "pending"
    assert device.push([commit(1, put("audit", chain[0]))]).status_code == 200
    assert [r.status for r in checkpoints(ops)] == ["pending"], "commit 2 may still bring the rest"
    assert device.push([commit(2, put("audit", chain[1]), put("audit", chain[2]))]).status_code == 200
    assert [r.status for r in checkpoints(ops)] == ["ok"] and flags(ops) == []


def test_a_checkpoint_whose_entries_never_came_is_a_gap(device, ops):
    chain = _entries(3)
    assert device.push([commit(1, put("audit", chain[0]))]).status_code == 200
    assert device.push([commit(2, put("audit", chain[2]))]).status_code == 200
    assert _post(device, _checkpoint(device, 3, chain[2]["hash"], seq=2)).get_json()["status"] == "flagged"
    assert flags(ops) == [("gap", 2)]


def test_two_checkpoints_of_one_number_are_a_fork(device, ops):
    chain = _entries(2)
    other = _entries(2, actor="b")
    assert _post(device, _checkpoint(device, 2, chain[1]["hash"], seq=1)).status_code == 201
    assert _post(device, _checkpoint(device, 2, other[1]["hash"], seq=1)).status_code == 201
    assert ("fork", 2) in flags(ops)


def test_a_resent_checkpoint_is_stored_once(device, ops):
    chain = _entries(1)
    device.push([commit(1, put("audit", chain[0]))])
    doc = _checkpoint(device, 1, chain[0]["hash"], seq=1)
    assert _post(device, doc).get_json()["status"] == "ok"
    assert _post(device, doc).get_json()["status"] == "ok"
    assert len(checkpoints(ops)) == 1


def test_a_long_segment_is_checked_part_by_part(device, ops, monkeypatch):
    """The first checkpoint over a long history: a bounded part per request, progress kept, and
    `audit-verify` finishes the rest; a fork at the end is still found."""
    monkeypatch.setattr(checkpoints_mod, "SEGMENT_LIMIT", 5)
    chain = _entries(12)
    assert device.push([commit(1, *(put("audit", e) for e in chain))]).status_code == 200
    assert _post(device, _checkpoint(device, 12, chain[-1]["hash"], seq=1)).get_json()["status"] == "pending"
    assert [(r.status, r.checked_n) for r in checkpoints(ops)] == [("pending", 5)]
    assert device.push([commit(2)]).status_code == 200  # the next push checks the next part
    assert [(r.status, r.checked_n) for r in checkpoints(ops)] == [("pending", 10)]
    assert "checked 0 long segment parts" in ops.cli("audit-verify"), "the last part is not a partial one"
    assert [r.status for r in checkpoints(ops)] == ["ok"] and flags(ops) == []
    other = _entries(12, actor="b")
    assert _post(device, _checkpoint(device, 14, other[-1]["hash"], seq=3)).status_code == 201
    device.push([commit(3, put("audit", _entries(14, actor="a")[12]), put("audit", _entries(14, actor="a")[13]))])
    ops.cli("audit-verify")
    assert ("fork", 14) in flags(ops)
