"""The journaled TinyDB store: same API as TinyDB, durable per call, recoverable after any cut."""
import json
import os
import subprocess
import sys
import textwrap

import pytest
from tinydb import Query
from tinydb.operations import increment

from kiosk.store import Store, StoreCorrupt, StoreFailed, StoreLocked, feed
from kiosk.store.journal import JOURNAL, decode_commit, encode_commit, list_segments


@pytest.fixture
def store(data_dir, clock):
    s = Store(data_dir, clock=clock)
    yield s
    s.close()


def reopen(store: Store) -> Store:
    """Close and open again from disk, as after a restart."""
    store.close()
    return Store(store.data_dir, clock=store.clock)


def journal_bytes(store: Store) -> bytes:
    return b"".join(p.read_bytes() for _, p in list_segments(store.directory / JOURNAL))


def test_tinydb_api_round_trip(store):
    """insert, insert_multiple, update (by query, by id, with operations), upsert, remove, truncate."""
    t = store.db.table("things")
    a = t.insert({"name": "a", "n": 1})
    ids = t.insert_multiple([{"name": "b", "n": 2}, {"name": "c", "n": 3}])
    assert isinstance(a, str) and len(a) == 26, "doc ids are ULIDs"
    t.update({"n": 20}, Query().name == "b")
    t.update(increment("n"), doc_ids=[a])
    t.upsert({"name": "d", "n": 4}, Query().name == "d")
    t.remove(Query().name == "c")
    expected = sorted((d["name"], d["n"]) for d in t.all())
    assert expected == [("a", 2), ("b", 20), ("d", 4)]
    store = reopen(store)
    t = store.db.table("things")
    assert sorted((d["name"], d["n"]) for d in t.all()) == expected
    assert t.get(doc_id=ids[0])["n"] == 20
    t.truncate()
    store = reopen(store)
    assert store.db.table("things").all() == []
    store.close()


def test_put_get_delete_and_copies(store):
    store.put("tickets", {"id": "T1", "events": [{"state": "waiting"}]})
    doc = store.get("tickets", "T1")
    doc["events"].append({"state": "hacked"})
    assert store.get("tickets", "T1")["events"] == [{"state": "waiting"}], "readers get copies"
    assert store.delete("tickets", "T1") and not store.delete("tickets", "T1")
    assert store.get("tickets", "T1") is None


def test_each_write_is_one_fsynced_line(store, monkeypatch):
    calls = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real_fsync(fd)))
    before = len(journal_bytes(store))
    store.put("tickets", {"id": "T1"})
    assert len(calls) == 1, "the write returns only after one fsync"
    line = journal_bytes(store)[before:]
    commit = decode_commit(line)
    assert commit["c"] == [{"t": "tickets", "o": "put", "k": "T1", "d": {"id": "T1"}}]


def test_commit_lines_are_what_encode_commit_makes(store):
    """Lines assembled from pre-encoded changes are byte for byte encode_commit()'s, origin and
    non-ASCII text included (the sync agent and central read them as plain JSON)."""
    with store.transaction(origin="central"):
        store.put("services", {"id": "A", "name": "بەڵگەنامە", "n": [1, 2.5, None, True]})
        store.delete("services", "missing")
        store.db.table("t").truncate()
    store.db.drop_table("t")
    for line in journal_bytes(store).splitlines(keepends=True):
        assert encode_commit(decode_commit(line)) == line


def test_transaction_is_one_commit_and_rolls_back(store):
    seq = store.seq
    with store.transaction():
        store.put("a", {"id": "1"})
        store.put("b", {"id": "2"})
    assert store.seq == seq + 1
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.put("a", {"id": "3"})
            store.delete("a", "1")
            raise RuntimeError("boom")
    assert store.get("a", "3") is None and store.get("a", "1") is not None
    assert store.seq == seq + 1


def test_failed_write_changes_nothing(store, monkeypatch):
    store.put("a", {"id": "1", "v": 1})
    seq, size = store.seq, len(journal_bytes(store))

    real_fsync, calls = os.fsync, []

    def fsync_fails_once(fd):
        calls.append(fd)
        if len(calls) == 1:
            raise OSError(5, "I/O error")
        real_fsync(fd)
    monkeypatch.setattr(os, "fsync", fsync_fails_once)
    with pytest.raises(StoreFailed):
        store.put("a", {"id": "1", "v": 2})
    monkeypatch.undo()
    assert store.get("a", "1")["v"] == 1 and store.seq == seq
    assert len(journal_bytes(store)) == size, "the half-written line was cut back"
    store.put("a", {"id": "1", "v": 3})
    assert reopen(store).get("a", "1")["v"] == 3


def test_rollback_listeners_run_after_memory_is_restored(store, monkeypatch):
    """In-memory indexes kept beside the store hear about a rollback, nested or at commit, once the
    store's memory is back; outside a transaction nothing is registered; a failing listener is
    logged and never hides the cause."""
    seen = []

    def listener(name):
        """A listener that records its name and what the store holds when it runs."""
        return lambda: seen.append((name, store.get("a", "1")))
    store.put("a", {"id": "1", "v": 1})
    store.on_rollback(listener("outside"))
    with pytest.raises(RuntimeError, match="boom"):
        with store.transaction():
            store.put("a", {"id": "1", "v": 2})
            store.on_rollback(listener("first"))
            store.on_rollback(lambda: 1 / 0)
            with store.transaction():
                store.on_rollback(listener("nested"))
            raise RuntimeError("boom")
    assert seen == [("nested", {"id": "1", "v": 1}), ("first", {"id": "1", "v": 1})]
    seen.clear()
    real_fsync, calls = os.fsync, []

    def fsync_fails_once(fd):
        """Fail the commit's fsync, then fsync for real."""
        calls.append(fd)
        if len(calls) == 1:
            raise OSError(5, "I/O error")
        real_fsync(fd)
    monkeypatch.setattr(os, "fsync", fsync_fails_once)
    with pytest.raises(StoreFailed):
        with store.transaction():
            store.put("a", {"id": "1", "v": 3})
            store.on_rollback(listener("commit"))
    monkeypatch.undo()
    assert seen == [("commit", {"id": "1", "v": 1})]
    with store.transaction():
        store.put("a", {"id": "1", "v": 4})
        store.on_rollback(listener("kept"))
    assert seen == [("commit", {"id": "1", "v": 1})], "a commit that succeeds tells nobody"


def test_unserialisable_document_is_refused_cleanly(store):
    """A value JSON cannot hold raises TypeError, as in TinyDB; NaN (not JSON either) ValueError."""
    with pytest.raises(TypeError):
        store.put("a", {"id": "1", "bad": object()})
    with pytest.raises(ValueError):
        store.put("a", {"id": "1", "bad": float("nan")})
    assert store.get("a", "1") is None and store.seq == 0


def test_second_writer_gets_a_clear_error(store):
    with pytest.raises(StoreLocked, match="already open for writing by process"):
        Store(store.data_dir)
    code = textwrap.dedent(f"""
        from kiosk.store import Store, StoreLocked
        try:
            Store({str(store.data_dir)!r})
        except StoreLocked as exc:
            print("LOCKED", exc)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.startswith("LOCKED") and str(os.getpid()) in out.stdout


def test_every_cut_of_the_journal_recovers(data_dir, clock):
    """Power loss model: the disk keeps any prefix of what was written. Every prefix must open
    cleanly with exactly the commits whose line is complete, and a commit is never split."""
    s = Store(data_dir, clock=clock)
    for i in range(6):
        with s.transaction():
            s.put("tickets", {"id": f"T{i}", "n": i, "text": "بەڕێوەبەرایەتی" * (i + 1)})
            s.put("numbering", {"id": "d", "last": i})
    s.close()
    (_, path), = list_segments(data_dir / "store" / JOURNAL)
    full = path.read_bytes()
    line_ends = [i + 1 for i, b in enumerate(full) if b == ord("\n")]
    for cut in sorted(set(range(0, len(full) + 1, 7)) | set(line_ends)):
        path.write_bytes(full[:cut])
        s = Store(data_dir, clock=clock)
        complete = sum(1 for end in line_ends if end <= cut)
        assert s.seq == complete
        assert sorted(t["n"] for t in s.all("tickets")) == list(range(complete))
        numbering = s.get("numbering", "d")
        assert (numbering is None) if complete == 0 else numbering["last"] == complete - 1
        s.close()
    path.write_bytes(full)


def test_cut_recovery_keeps_exactly_complete_commits(data_dir, clock):
    s = Store(data_dir, clock=clock)
    for i in range(5):
        s.put("t", {"id": str(i)})
    s.close()
    (_, path), = list_segments(data_dir / "store" / JOURNAL)
    full = path.read_bytes()
    ends = [i + 1 for i, b in enumerate(full) if b == ord("\n")]
    for cut in sorted(set([0, *ends, *(e - 1 for e in ends), *(e - 20 for e in ends if e > 20)])):
        path.write_bytes(full[:cut])
        s = Store(data_dir, clock=clock)
        complete = sum(1 for e in ends if e <= cut)
        assert s.seq == complete
        assert sorted(d["id"] for d in s.all("t")) == [str(i) for i in range(complete)]
        assert s.storage.recovered_torn_bytes == cut - (ends[complete - 1] if complete else 0)
        s.put("t", {"id": "after"})  # writing continues cleanly after the cut
        s.close()
        s = Store(data_dir, clock=clock)
        assert s.get("t", "after") and s.seq == complete + 1
        s.close()
        path.write_bytes(full)


def test_damage_in_the_middle_is_reported_not_skipped(data_dir, clock):
    s = Store(data_dir, clock=clock)
    for i in range(3):
        s.put("t", {"id": str(i)})
    s.close()
    (_, path), = list_segments(data_dir / "store" / JOURNAL)
    data = bytearray(path.read_bytes())
    data[15] ^= 0x01  # flip a bit inside the first line
    path.write_bytes(bytes(data))
    with pytest.raises(StoreCorrupt, match="damaged at byte 0"):
        Store(data_dir, clock=clock)


def test_compaction_keeps_unacknowledged_segments(data_dir, clock):
    s = Store(data_dir, clock=clock)
    for i in range(10):
        s.put("t", {"id": str(i)})
    s.compact()
    for i in range(10, 15):
        s.put("t", {"id": str(i)})
    s.compact()
    journal = data_dir / "store" / JOURNAL
    assert len(list_segments(journal)) == 3, "nothing acknowledged yet: every segment stays for sync"
    commits, _ = feed.read(data_dir / "store", 0, max_commits=100)
    assert [c["s"] for c in commits] == list(range(1, 16))
    (data_dir / "sync").mkdir()
    (data_dir / "sync" / "state.json").write_text(json.dumps({"acked_seq": 12}))
    result = s.compact()
    assert result["segments_removed"] == 1, "only the fully acknowledged segment goes"
    assert [c["s"] for c in feed.read(data_dir / "store", 12)[0]] == [13, 14, 15]
    s.close()
    s = Store(data_dir, clock=clock)
    assert s.count("t") == 15 and s.seq == 15
    s.close()


def test_snapshot_is_replaced_atomically(data_dir, clock, monkeypatch):
    s = Store(data_dir, clock=clock)
    s.put("t", {"id": "1"})
    s.compact()
    s.put("t", {"id": "2"})

    def crash(*args):
        raise OSError("power cut during rename")
    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        s.compact()
    monkeypatch.undo()
    s.close()
    s = Store(data_dir, clock=clock)
    assert sorted(d["id"] for d in s.all("t")) == ["1", "2"]
    s.close()


def test_feed_reads_only_complete_lines_and_resumes_from_position(data_dir, clock):
    s = Store(data_dir, clock=clock)
    for i in range(5):
        s.put("t", {"id": str(i)})
    commits, pos = feed.read(data_dir / "store", 0, max_commits=2)
    assert [c["s"] for c in commits] == [1, 2]
    commits, pos = feed.read(data_dir / "store", 2, position=pos)
    assert [c["s"] for c in commits] == [3, 4, 5]
    assert pos == feed.head(data_dir / "store"), "caught up: position equals the head"
    (_, path), = list_segments(data_dir / "store" / JOURNAL)
    with open(path, "ab") as fh:
        fh.write(encode_commit({"s": 6, "c": []})[:-5])  # a writer mid-line
    assert feed.read(data_dir / "store", 5, position=pos)[0] == []
    assert feed.read(data_dir / "store", 0, max_bytes=1)[0][0]["s"] == 1, "always at least one commit"
    s.close()


def test_origin_is_recorded(store):
    with store.transaction(origin="central"):
        store.put("services", {"id": "A"})
    commit = feed.read(store.directory, store.seq - 1)[0][0]
    assert commit["o"] == "central"


def test_hlc_never_goes_back(store, clock):
    store.put("t", {"id": "1"})
    clock.advance(-3600)
    store.put("t", {"id": "2"})
    commits, _ = feed.read(store.directory, 0)
    assert commits[1]["h"] > commits[0]["h"]
