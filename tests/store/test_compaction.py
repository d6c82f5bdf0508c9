"""Compaction writes the snapshot without holding the store lock: writers go on meanwhile, their
changes are kept in memory and in the journal, the snapshot holds exactly the state it started
from, and a kill at any moment loses nothing acknowledged."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.store import Store, StoreError
from kiosk.store import journal
from kiosk.store.journal import JOURNAL, SNAPSHOT, _Overlay, list_segments
from tests.processes import child_env


def contents(store: Store) -> dict:
    """Every table of the store as plain data."""
    return {name: {k: dict(d) for k, d in table.items()} for name, table in store.storage.tables.items()}


def reopen(store: Store) -> Store:
    """Close and open again from disk, as after a restart."""
    store.close()
    return Store(store.data_dir, clock=store.clock)


def during_snapshot(monkeypatch, action, after_writes: int = 3):
    """Run `action` when the snapshot writer has written `after_writes` pieces of the file."""
    real_write = journal._SnapshotFile.write
    calls = []

    def write(self, text):
        calls.append(text)
        if len(calls) == after_writes:
            action()
        return real_write(self, text)
    monkeypatch.setattr(journal._SnapshotFile, "write", write)


@pytest.fixture
def store(data_dir, clock):
    """A store with three tables, snapshotted once, and the snapshot written a document per chunk."""
    s = Store(data_dir, clock=clock)
    s.storage.snapshot_chunk = 1
    s.put_many("a", [{"id": f"a{i}", "n": i} for i in range(6)])
    s.put_many("b", [{"id": f"b{i}", "n": i} for i in range(3)])
    s.put("c", {"id": "c0"})
    s.compact()
    yield s
    s.close()


def test_writers_go_on_while_a_snapshot_is_written(store, monkeypatch):
    """Puts, deletes, a cleared, a dropped and a new table, and a rolled-back transaction, made
    from another thread mid-snapshot, finish without waiting for it; the snapshot holds the state
    it started from, memory and every restart hold the writes."""
    before = contents(store)
    seq = store.seq
    finished = threading.Event()
    seen = {}

    def writes():
        store.put("a", {"id": "a-new", "n": 10})
        store.put("a", {"id": "a1", "n": 11})
        store.delete("a", "a2")
        store.db.table("b").truncate()
        store.put("b", {"id": "b-after-clear"})
        store.db.drop_table("c")
        store.put("d", {"id": "d0"})
        with pytest.raises(RuntimeError):
            with store.transaction():
                store.put("a", {"id": "a-rolled-back"})
                store.delete("a", "a3")
                raise RuntimeError("boom")
        seen["a"] = sorted(d["id"] for d in store.all("a"))
        seen["len"] = store.db.table("a").__len__()
        finished.set()

    def in_another_thread():
        writer = threading.Thread(target=writes)
        writer.start()
        writer.join(timeout=30)
        assert finished.is_set(), "a writer waited for the snapshot"
    during_snapshot(monkeypatch, in_another_thread)
    result = store.compact()
    assert result["seq"] == seq, "the snapshot covers what was there when it started"
    snapshot = json.loads((store.directory / SNAPSHOT).read_bytes())
    assert snapshot["seq"] == seq and snapshot["tables"] == before
    assert seen == {"a": ["a-new", "a0", "a1", "a3", "a4", "a5"], "len": 6}, "readers saw the writes at once"
    expected = {"a": {"a0": {"id": "a0", "n": 0}, "a1": {"id": "a1", "n": 11}, "a3": {"id": "a3", "n": 3},
                      "a4": {"id": "a4", "n": 4}, "a5": {"id": "a5", "n": 5}, "a-new": {"id": "a-new", "n": 10}},
                "b": {"b-after-clear": {"id": "b-after-clear"}}, "d": {"d0": {"id": "d0"}}}
    assert contents(store) == expected
    assert all(type(t) is dict for t in store.storage.tables.values()), "the overlays were folded back"
    store = reopen(store)
    assert contents(store) == expected, "the journal after the snapshot holds the writes"
    monkeypatch.undo()
    store.compact()
    store = reopen(store)
    assert contents(store) == expected
    store.close()


def test_folding_back_runs_a_batch_per_lock_turn(store, monkeypatch):
    """Many changes made during a snapshot are folded back in several short turns, and the tables
    read the same throughout."""
    store.storage.fold_batch = 7
    turns = []
    real_fold = _Overlay.fold

    def fold(self, limit):
        turns.append(len(self.changes))
        return real_fold(self, limit)
    monkeypatch.setattr(_Overlay, "fold", fold)

    def writes():
        writer = threading.Thread(target=lambda: store.put_many("a", [{"id": f"x{i}"} for i in range(50)]))
        writer.start()
        writer.join(timeout=30)
    during_snapshot(monkeypatch, writes)
    store.compact()
    assert turns[:8] == [50, 43, 36, 29, 22, 15, 8, 1]
    assert store.count("a") == 56 and type(store.storage.tables["a"]) is dict
    store = reopen(store)
    assert store.count("a") == 56
    store.close()


def test_closing_during_a_snapshot_abandons_it(store, monkeypatch):
    """close() stops a snapshot being written: the previous one stays, nothing is lost."""
    store.put("a", {"id": "late"})
    previous = (store.directory / SNAPSHOT).read_bytes()
    entered = threading.Event()

    def wait_for_close():
        entered.set()
        deadline = time.monotonic() + 30
        while not store.storage._closing and time.monotonic() < deadline:
            time.sleep(0.01)
    during_snapshot(monkeypatch, wait_for_close)
    errors = []

    def compact():
        try:
            store.compact()
        except StoreError as exc:
            errors.append(exc)
    thread = threading.Thread(target=compact)
    thread.start()
    assert entered.wait(30)
    store.close()
    thread.join(timeout=30)
    assert errors and "closed while a snapshot was written" in str(errors[0])
    assert (store.directory / SNAPSHOT).read_bytes() == previous
    assert not (store.directory / (SNAPSHOT + ".tmp")).exists()
    store = Store(store.data_dir, clock=store.clock)
    assert store.get("a", "late") and store.count("a") == 7
    store.close()


def test_no_deadlock_with_a_thread_holding_the_store_lock(store, monkeypatch):
    """A thread inside the store lock that asks to compact or close while a compaction runs is told
    so at once (the compaction needs that lock to finish)."""
    entered, go_on = threading.Event(), threading.Event()

    def pause():
        entered.set()
        go_on.wait(30)
    during_snapshot(monkeypatch, pause)
    store.put("a", {"id": "before"})
    seq = store.seq
    thread = threading.Thread(target=store.compact)
    thread.start()
    assert entered.wait(30)
    with store.lock:
        with pytest.raises(StoreError, match="a compaction is running"):
            store.compact()
        with pytest.raises(StoreError, match="a compaction is running"):
            store.storage.close()
    go_on.set()
    thread.join(timeout=30)
    assert not thread.is_alive() and store.storage.snapshot_seq == seq, "the compaction went on to the end"
    store.put("a", {"id": "after"})
    store = reopen(store)
    assert store.get("a", "after")
    store.close()


def test_a_failed_snapshot_changes_nothing(store, monkeypatch):
    """A disk error while the snapshot is written raises; the tables, the old snapshot and every
    write stay, and writing goes on."""
    previous = (store.directory / SNAPSHOT).read_bytes()
    store.put("a", {"id": "before"})

    def disk_full(fd):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "fdatasync", disk_full)
    during_snapshot(monkeypatch, lambda: store.put("a", {"id": "during"}))
    with pytest.raises(OSError, match="No space"):
        store.compact()
    monkeypatch.undo()
    assert (store.directory / SNAPSHOT).read_bytes() == previous
    assert not (store.directory / (SNAPSHOT + ".tmp")).exists()
    assert all(type(t) is dict for t in store.storage.tables.values())
    store.put("a", {"id": "after"})
    store = reopen(store)
    assert {"before", "during", "after"} <= {d["id"] for d in store.all("a")}
    store.compact()
    store = reopen(store)
    assert store.count("a") == 9
    store.close()


@settings(max_examples=200, deadline=None)
@given(base=st.dictionaries(st.sampled_from("abcdefgh"), st.integers(), max_size=6),
       ops=st.lists(st.tuples(st.sampled_from("abcdefghij"), st.none() | st.integers()), max_size=30),
       batch=st.integers(min_value=1, max_value=5))
def test_an_overlay_reads_like_the_table_it_stands_for(base, ops, batch):
    """Any mix of sets and deletes reads the same through an overlay as on a plain dict, the frozen
    base never changes until folded, and folding in any batch size ends with the same dict."""
    frozen = dict(base)
    overlay, model = _Overlay(frozen), dict(base)
    for key, value in ops:
        if value is None:
            assert (key in overlay) == (key in model)
            if key in model:
                del overlay[key]
                del model[key]
        else:
            overlay[key] = value
            model[key] = value
        assert dict(overlay) == model and len(overlay) == len(model)
        assert all(overlay.get(k) == model.get(k) for k in "abcdefghij")
        assert sorted(overlay) == sorted(model)
    assert frozen == base, "the snapshot's view stayed frozen"
    while not overlay.fold(batch):
        assert dict(overlay) == model
    assert overlay.base == model and dict(overlay) == model


WRITER = textwrap.dedent("""
    import os, sys, threading
    from kiosk.store import Store
    store = Store(sys.argv[1])
    tag = sys.argv[2]

    def say(line):
        os.write(1, line.encode() + b"\\n")  # one write per line: the two threads never interleave

    def write():
        i = 0
        while True:
            doc = {"id": f"{tag}-{i}", "state": "waiting", "pad": "x" * 300}
            store.put("tickets", doc)
            say("ACK " + doc["id"])
            i += 1
    threading.Thread(target=write, daemon=True).start()
    while True:
        say("COMPACT")
        store.compact()
""")


@pytest.mark.slow
def test_sigkill_during_compaction_loses_no_acknowledged_write(data_dir, clock):
    """A process putting documents (each acknowledged after it returns) while compacting a large
    store in a loop is killed again and again, mostly mid-snapshot: every acknowledged document is
    there after each restart."""
    filler = Store(data_dir, clock=clock, fsync=False)
    for start in range(0, 40_000, 2_000):
        filler.put_many("tickets", [{"id": f"old-{i}", "state": "done", "pad": "y" * 300}
                                    for i in range(start, start + 2_000)])
    filler.compact()
    filler.close()
    rng = random.Random(20261122)
    tmp = data_dir / "store" / (SNAPSHOT + ".tmp")
    acked: set[str] = set()
    mid_snapshot = 0
    for round_ in range(8):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(data_dir), f"r{round_}"], stdout=subprocess.PIPE,
                                text=True, env=child_env())
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(proc.stdout))
        reader.start()
        deadline = time.monotonic() + 60
        while lines.count("COMPACT\n") < 2 and time.monotonic() < deadline:
            time.sleep(0.005)  # the second compaction, so some commits come after a snapshot too
        if round_ % 2 == 0:
            while not tmp.exists() and time.monotonic() < deadline:
                time.sleep(0.001)
        time.sleep(rng.uniform(0, 0.05 if round_ % 2 == 0 else 0.5))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        reader.join(timeout=30)
        proc.stdout.close()
        mid_snapshot += tmp.exists()
        acked.update(line.split()[1] for line in lines if line.startswith("ACK "))
        store = Store(data_dir, clock=clock)
        try:
            stored = {d["id"] for d in store.all("tickets")}
            missing = acked - stored
            assert not missing, f"round {round_}: {len(missing)} acknowledged writes lost"
            assert sum(1 for i in stored if i.startswith("old-")) == 40_000
        finally:
            store.close()
    assert len(acked) > 100, "the writer did write between kills"
    assert mid_snapshot >= 2, f"only {mid_snapshot} kills landed while a snapshot was being written"
    assert len(list_segments(data_dir / "store" / JOURNAL)) > 8, "every compaction started a segment"
