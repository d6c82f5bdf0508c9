"""The kiosk-side agent against a real central over loopback HTTP (SQLite and PostgreSQL):
push, no-op, pull into the inbox and atomic apply, cursors restored from old backups, clock skew,
enrolment and the command line's exit codes."""
from __future__ import annotations

import json
import os
import shutil
import stat

import pytest
from sqlalchemy import func, select, update

from kiosk import create_app as create_kiosk_app
from kiosk.store import feed
from sync import agent as agent_mod
from sync import protocol
from sync.central.models import DeviceCursor, Record, TicketEventRow
from sync.inbox import apply_inbox
from tests.sync.support import ticket_doc

SERVICE = {"id": "A", "code": "A", "prefix": "A", "active": True, "daily_cap": None, "fee_iqd": 0,
           "sla_hours": 72, "documents": [], "pictogram": "documents",
           "names": {"ar": "وثائق", "ckb": "بەڵگەنامە", "en": "Documents"}}


def central_tickets(ops) -> dict[str, dict]:
    """Ticket documents central holds, by id."""
    with ops.engine.connect() as conn:
        rows = conn.execute(select(Record.key, Record.doc).where(Record.tbl == "tickets",
                                                                 Record.deleted.is_(False))).all()
    return {r.key: r.doc for r in rows}


def central_cursor(ops) -> int:
    """The (only) device's cursor at central."""
    with ops.engine.connect() as conn:
        return conn.execute(select(DeviceCursor.last_seq)).scalar_one()


def issue(store, n: int) -> list[dict]:
    """Store n tickets, one commit each, as the kiosk would."""
    docs = [ticket_doc(number=i) for i in range(n)]
    for doc in docs:
        store.put("tickets", doc)
    return docs


def load_config(ops, tmp_path, data: dict, name: str = "config.json") -> None:
    """config-load for ERB-01."""
    path = tmp_path / name
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    ops.cli("config-load", "ERB-01", str(path))


@pytest.fixture
def kiosk_app(kiosk_dir, kiosk_clock, store):
    """The kiosk app on the test data directory (store injected); it registers the sync commands."""
    app = create_kiosk_app({"DATA_DIR": str(kiosk_dir), "SECRET_KEY": "k", "CENTRE": "ERB-01"},
                           store=store, clock=kiosk_clock)
    yield app
    app.extensions["kiosk"].close()


def test_push_then_nothing_to_do(enrolled, store, make_agent, ops, kiosk_dir):
    docs = issue(store, 25)
    outcome = make_agent(batch_commits=10).run()
    assert outcome.pushed_commits == 25 and outcome.acked_seq == store.seq
    assert central_tickets(ops) == {d["id"]: d for d in docs}
    state = agent_mod.read_state(kiosk_dir)
    assert state["acked_seq"] == store.seq and state["position"] == feed.head(kiosk_dir / "store")
    again = make_agent().run()
    assert again.pushed_commits == 0 and again.acked_seq == store.seq
    status = agent_mod.status(kiosk_dir)
    assert status["enrolled"] and status["pending"] == 0 and status["last_error"] is None
    assert status["last_success_at"] and status["clock_offset_s"] == 0.0 and status["centre"] == "ERB-01"
    issue(store, 3)
    assert agent_mod.status(kiosk_dir)["pending"] == 3


def test_a_dropped_table_reaches_central_as_a_cleared_one(enrolled, store, make_agent, ops):
    """The journal records drop_table() as a drop; central, which knows put, del and clear, gets a
    clear: what the kiosk dropped is gone at central too, what it stored afterwards is kept."""
    issue(store, 5)
    make_agent().run()
    store.db.drop_table("tickets")
    later = issue(store, 2)
    outcome = make_agent().run()
    assert outcome.acked_seq == store.seq
    assert central_tickets(ops) == {d["id"]: d for d in later}


def test_pulled_configuration_applies_atomically_with_tombstones(enrolled, store, make_agent, ops, tmp_path,
                                                                  kiosk_dir):
    load_config(ops, tmp_path, {"services": [SERVICE, {**SERVICE, "id": "B", "code": "B", "prefix": "B"}],
                                "settings": [{"id": "queue", "priority_ratio": 3}]})
    outcome = make_agent().run()
    assert outcome.pulled_changes == 3 and outcome.inbox_file
    assert store.all("services") == []  # only the kiosk process applies, when it polls its inbox
    before = store.seq
    assert apply_inbox(store, kiosk_dir) == 3
    assert store.seq == before + 1  # one commit for the whole pull
    assert {s["id"] for s in store.all("services")} == {"A", "B"}
    assert store.get("settings", "queue")["priority_ratio"] == 3
    assert os.listdir(kiosk_dir / "sync" / "inbox") == []
    load_config(ops, tmp_path, {"services": [{**SERVICE, "fee_iqd": 1000}]}, "two.json")
    make_agent().run()
    assert apply_inbox(store, kiosk_dir) == 2
    assert [s["id"] for s in store.all("services")] == ["A"] and store.get("services", "A")["fee_iqd"] == 1000
    commits, _ = feed.read(kiosk_dir / "store", before)
    assert [c.get("o") for c in commits] == ["central", "central"]
    assert {(c["t"], c["k"], c["o"]) for c in commits[1]["c"]} == {("services", "A", "put"), ("services", "B", "del")}
    # configuration applied from central is never pushed back
    make_agent().run()
    with ops.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Record)).scalar_one() == 0
    assert central_cursor(ops) == store.seq


def test_applying_the_same_inbox_file_twice_gives_the_same_state(enrolled, store, make_agent, ops, tmp_path,
                                                                   kiosk_dir):
    load_config(ops, tmp_path, {"services": [SERVICE]})
    name = make_agent().run().inbox_file
    saved = (kiosk_dir / "sync" / "inbox" / name).read_bytes()
    assert apply_inbox(store, kiosk_dir) == 1
    seq = store.seq
    (kiosk_dir / "sync" / "inbox" / name).write_bytes(saved)  # as if the kiosk died before deleting it
    assert apply_inbox(store, kiosk_dir) == 0 and store.seq == seq
    assert store.get("services", "A") == SERVICE


def test_an_unreadable_inbox_file_is_set_aside_and_reported(store, kiosk_dir):
    inbox = kiosk_dir / "sync" / "inbox"
    inbox.mkdir(parents=True)
    (inbox / "000000000005.json").write_text('{"v": 1, "changes": "nope"}', encoding="utf-8")
    good = protocol.InboxFile(v=1, since=5, next_since=6, pulled_at="2026-11-22T09:00:00.000Z",
                              changes=[protocol.PulledChange(seq=6, t="services", o="put", k="A", d=SERVICE),
                                       protocol.PulledChange(seq=7, t="settings", o="put", k="audit_head",
                                                             d={"id": "audit_head", "n": 0})])
    (inbox / "000000000007.json").write_text(good.model_dump_json(), encoding="utf-8")
    assert apply_inbox(store, kiosk_dir) == 1
    assert store.get("services", "A") == SERVICE and store.get("settings", "audit_head") is None
    assert os.listdir(inbox / "failed") == ["000000000005.json"]
    assert agent_mod.status(kiosk_dir)["inbox_failed"] == 1


def test_a_cursor_restored_from_an_old_backup_resumes_correctly(enrolled, store, make_agent, ops, kiosk_dir):
    first = issue(store, 30)
    make_agent(batch_commits=7).run()
    old_state = (kiosk_dir / "sync" / "state.json").read_bytes()
    second = issue(store, 30)
    make_agent(batch_commits=7).run()
    assert store.compact()["segments_removed"] >= 1  # the journal no longer holds what central acknowledged
    (kiosk_dir / "sync" / "state.json").write_bytes(old_state)
    third = issue(store, 5)
    outcome = make_agent(batch_commits=7).run()
    assert outcome.acked_seq == store.seq
    assert central_tickets(ops) == {d["id"]: d for d in first + second + third}
    with ops.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(TicketEventRow)).scalar_one() == 65
    # a lost state file is the same story
    (kiosk_dir / "sync" / "state.json").unlink()
    issue(store, 2)
    assert make_agent().run().acked_seq == store.seq and len(central_tickets(ops)) == 67


def test_central_restored_from_a_backup_gets_the_missing_commits_again(enrolled, store, make_agent, ops):
    docs = issue(store, 20)
    make_agent().run()
    with ops.engine.begin() as conn:  # central comes back from a backup taken after commit 8
        conn.execute(update(DeviceCursor).values(last_seq=8, last_hlc=""))
        conn.execute(Record.__table__.delete().where(Record.seq > 8))
    issue(store, 1)
    assert make_agent().run().acked_seq == store.seq
    assert len(central_tickets(ops)) == 21 and all(d["id"] in central_tickets(ops) for d in docs)


def test_central_that_lost_what_the_kiosk_no_longer_holds_is_reported(enrolled, store, make_agent, ops):
    issue(store, 20)
    make_agent().run()
    store.compact()
    with ops.engine.begin() as conn:
        conn.execute(update(DeviceCursor).values(last_seq=8, last_hlc=""))
    issue(store, 1)
    with pytest.raises(agent_mod.JournalMismatch, match="central has lost records"):
        make_agent().run()


def test_a_kiosk_restored_with_an_older_journal_is_stopped(enrolled, store, make_agent, ops, kiosk_dir,
                                                            kiosk_clock):
    issue(store, 5)
    backup = kiosk_dir.parent / "backup"
    store.close()
    shutil.copytree(kiosk_dir, backup)
    from kiosk.store import Store
    reopened = Store(kiosk_dir, clock=kiosk_clock, fsync=False)
    issue(reopened, 10)
    make_agent().run()
    reopened.close()
    shutil.rmtree(kiosk_dir)
    shutil.copytree(backup, kiosk_dir)  # the whole data directory from before the last 10 tickets
    restored = Store(kiosk_dir, clock=kiosk_clock, fsync=False)
    try:
        issue(restored, 3)  # reuses sequence numbers central already holds
        with pytest.raises(agent_mod.JournalMismatch, match="restored from an older backup"):
            make_agent().run()
        # the documented way out: central resumes where the restored journal stood
        assert "expects commit 6 next" in ops.cli("reset-cursor", "kiosk-1", "5")
        make_agent().run()
        assert all(t["id"] in central_tickets(ops) for t in restored.all("tickets"))
        assert len(central_tickets(ops)) == 5 + 10 + 3  # what only central held is kept
    finally:
        restored.close()
        store.__init__(kiosk_dir, clock=kiosk_clock, fsync=False)  # let the fixture close a store


def test_a_wrong_kiosk_clock_is_measured_and_does_not_block_sync(enrolled, store, make_agent, ops, kiosk_clock,
                                                                 kiosk_dir):
    kiosk_clock.advance(hours=-2)  # booted without a clock battery
    issue(store, 3)
    make_agent().run()
    assert len(central_tickets(ops)) == 3
    status = agent_mod.status(kiosk_dir)
    assert status["clock_offset_s"] == 7200.0
    with ops.engine.connect() as conn:
        from sync.central.models import Device
        assert conn.execute(select(Device.clock_offset_s)).scalar_one() == 7200.0


# -- command line ----------------------------------------------------------------------------------

def test_enroll_command_stores_a_private_credential(kiosk_app, ops, central_server, kiosk_dir):
    ops.add_centre()
    runner = kiosk_app.test_cli_runner()
    result = runner.invoke(args=["enroll", central_server.url, ops.code()])
    assert result.exit_code == 0, result.output
    assert "enrolled as kiosk-1" in result.output
    path = kiosk_dir / "sync" / "credential.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    credential = json.loads(path.read_text())
    assert credential["centre"] == "ERB-01" and credential["central_url"] == central_server.url
    device = json.loads((kiosk_dir / "device.json").read_text())["device_id"]
    assert credential["device_id"] == device
    bad = runner.invoke(args=["enroll", central_server.url, "WRONG-CODE1-XXXXX-YYYYY"])
    assert bad.exit_code == agent_mod.EXIT_REFUSED and "unknown, already used or expired" in bad.output


def test_sync_command_reports_and_exits_by_cause(kiosk_app, enrolled, store, ops, kiosk_dir, central_server):
    runner = kiosk_app.test_cli_runner()
    issue(store, 4)
    ok = runner.invoke(args=["sync"])
    assert ok.exit_code == 0 and "pushed 4 commits" in ok.output
    assert runner.invoke(args=["sync", "--quiet"]).output == ""
    ops.cli("revoke", "kiosk-1")
    refused = runner.invoke(args=["sync", "--quiet"])
    assert refused.exit_code == agent_mod.EXIT_REFUSED and "revoked" in refused.output
    assert agent_mod.status(kiosk_dir)["last_error"]
    central_server.stop()
    credential = json.loads((kiosk_dir / "sync" / "credential.json").read_text())
    credential["central_url"] = "http://127.0.0.1:9"  # nothing listens on the discard port
    (kiosk_dir / "sync" / "credential.json").write_text(json.dumps(credential))
    down = runner.invoke(args=["sync", "--quiet"])
    assert down.exit_code == agent_mod.EXIT_UNREACHABLE and "unreachable" in down.output


def test_sync_command_without_enrolment_says_what_to_do(kiosk_app):
    result = kiosk_app.test_cli_runner().invoke(args=["sync"])
    assert result.exit_code == agent_mod.EXIT_CONFIG and "flask --app kiosk enroll" in result.output


def test_a_second_run_while_one_is_running_stops_at_once(enrolled, make_agent, kiosk_dir):
    import fcntl
    fd = os.open(kiosk_dir / "sync" / "agent.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(agent_mod.Busy):
            make_agent().run()
    finally:
        os.close(fd)


def test_backoff_grows_and_is_capped():
    assert agent_mod.backoff_s(0, 60) == 60
    assert 4 <= agent_mod.backoff_s(1, 60) <= 6
    assert 32 <= agent_mod.backoff_s(4, 60) <= 48
    assert agent_mod.backoff_s(30, 60) <= 900 * 1.2
