"""A kiosk restored from an old backup syncs on with a real central (SQLite and PostgreSQL): the
restore moves the journal's numbering past what central holds, the agent sends the numbers in
between as empty commits, and central ends with every record exactly once."""
from __future__ import annotations

import shutil

import pytest
from sqlalchemy import func, select

from kiosk import create_app as create_kiosk_app
from kiosk.store import Store
from kiosk.usecases.backup import backup, restore
from sync import agent as agent_mod
from sync.central.models import DeviceCursor, Record, TicketEventRow
from tests.sync.support import ticket_doc


def issue(store, n: int) -> list[dict]:
    """Store n tickets, one commit each."""
    docs = [ticket_doc(number=i) for i in range(n)]
    for doc in docs:
        store.put("tickets", doc)
    return docs


def central_state(ops) -> tuple[dict, int, int, int]:
    """Central's tickets by id, its ticket rows (deleted or not), its event rows, the device's cursor."""
    with ops.engine.connect() as conn:
        rows = conn.execute(select(Record.key, Record.doc).where(Record.tbl == "tickets")).all()
        events = conn.execute(select(func.count()).select_from(TicketEventRow)).scalar_one()
        cursor = conn.execute(select(DeviceCursor.last_seq)).scalar_one()
    return {r.key: r.doc for r in rows}, len(rows), events, cursor


@pytest.fixture
def config(kiosk_dir, kiosk_clock, store):
    """The kiosk's settings (what backup and restore check the copy with)."""
    app = create_kiosk_app({"DATA_DIR": str(kiosk_dir), "SECRET_KEY": "k", "CENTRE": "ERB-01",
                            "PRINTER_URL": "off"}, store=store, clock=kiosk_clock)
    return dict(app.config)


@pytest.mark.parametrize("lost_disk", [False, True], ids=["replaced-data-present", "disk-lost"])
def test_a_restored_old_backup_syncs_without_duplicates(enrolled, store, make_agent, ops, kiosk_dir, kiosk_clock,
                                                       tmp_path, config, lost_disk):
    before = issue(store, 5)
    make_agent().run()
    dest = tmp_path / "usb"
    dest.mkdir()
    taken = backup(kiosk_dir, dest, centre="ERB-01", clock=kiosk_clock, config=config)  # the kiosk is running
    after = issue(store, 10)
    make_agent(batch_commits=4).run()
    unsynced = issue(store, 2)   # made after the last sync: central never sees them
    _, _, _, acked = central_state(ops)
    assert acked == taken["seq"] + 10
    store.close()

    after_seq = 0
    if lost_disk:  # a new disk: nothing of the old data directory is left
        shutil.rmtree(kiosk_dir)
        kiosk_dir.mkdir()
        after_seq = acked  # what central's devices page shows as acknowledged
    result = restore(taken["path"], kiosk_dir, centre="ERB-01", clock=kiosk_clock, config=config, force=True,
                     after_seq=after_seq)
    assert result["checks"][0] == (True, f"store opened at commit {result['next_seq'] - 1}")  # the restore's commit
    assert result["next_seq"] > acked + 1
    restored = Store(kiosk_dir, clock=kiosk_clock, fsync=False)
    try:
        assert {d["id"] for d in restored.all("tickets")} == {d["id"] for d in before}
        new = issue(restored, 6)
        outcome = make_agent(batch_commits=4).run()  # small batches: the filler commits span several
        assert outcome.acked_seq == restored.seq
        tickets, rows, events, cursor = central_state(ops)
        assert cursor == restored.seq
        expected = before + after + new
        assert tickets == {d["id"]: d for d in expected}, "every record once, none lost"
        assert rows == len(expected) and events == len(expected)
        assert not {d["id"] for d in unsynced} & tickets.keys()
        if not lost_disk:  # and the two central never had are kept aside, not deleted
            aside = Store(result["replaced"], clock=kiosk_clock, fsync=False)
            try:
                assert {d["id"] for d in unsynced} <= {d["id"] for d in aside.all("tickets")}
            finally:
                aside.close()
        # a second round has nothing to send, and later tickets follow as usual
        assert make_agent().run().pushed_commits == 0
        issue(restored, 1)
        assert make_agent().run().acked_seq == restored.seq
        assert len(central_state(ops)[0]) == len(expected) + 1
    finally:
        restored.close()
        store.__init__(kiosk_dir, clock=kiosk_clock, fsync=False)  # let the fixture close a store


def test_a_restore_that_cannot_know_central_is_stopped_with_what_to_do(enrolled, store, make_agent, ops, kiosk_dir,
                                                                       kiosk_clock, tmp_path, config):
    issue(store, 3)
    dest = tmp_path / "usb"
    dest.mkdir()
    taken = backup(kiosk_dir, dest, centre="ERB-01", clock=kiosk_clock, config=config)
    issue(store, 4)
    make_agent().run()
    store.close()
    shutil.rmtree(kiosk_dir)
    kiosk_dir.mkdir()
    restore(taken["path"], kiosk_dir, centre="ERB-01", clock=kiosk_clock, config=config)  # no --after-seq
    restored = Store(kiosk_dir, clock=kiosk_clock, fsync=False)
    try:
        issue(restored, 1)
        with pytest.raises(agent_mod.JournalMismatch, match="restored from an older backup"):
            make_agent().run()
    finally:
        restored.close()
        store.__init__(kiosk_dir, clock=kiosk_clock, fsync=False)
