"""The TinyDB surface of the store behaves like TinyDB, and everything it changes survives a restart.

One test per behaviour that once differed: the query cache after every kind of change, dropped
tables, in-place updates through callables (nested too), documents handed out as private copies,
integer ids, and values JSON cannot hold.
"""
from __future__ import annotations

import os

import pytest
from tinydb import Query, where
from tinydb.operations import add, delete, increment
from tinydb.table import Document

from kiosk.store import Store, StoreFailed
from kiosk.store.journal import JournalTable


@pytest.fixture
def store(data_dir, clock):
    """A store with three documents n=1..3 in table "things"."""
    s = Store(data_dir, clock=clock)
    s.db.table("things").insert_multiple({"n": n, "tags": [f"t{n}"], "deep": {"list": [{"v": n}]}} for n in (1, 2, 3))
    yield s
    s.close()


def reopen(store: Store) -> Store:
    """Close and open again from disk, as after a restart."""
    store.close()
    return Store(store.data_dir, clock=store.clock)


def numbers(docs) -> list:
    """The sorted n of some documents."""
    return sorted(d["n"] for d in docs)


def fail_next_fsync(monkeypatch):
    """Make the next fsync fail (a disk error), then behave again."""
    real_fsync = os.fsync

    def failing(fd):
        monkeypatch.setattr(os, "fsync", real_fsync)
        raise OSError(5, "I/O error")
    monkeypatch.setattr(os, "fsync", failing)


def _rolled_back(store, t):
    """A transaction that inserts, searches (filling the cache), then fails."""
    with pytest.raises(RuntimeError):
        with store.transaction():
            t.insert({"n": 7})
            assert numbers(t.search(where("n") >= 2)) == [2, 3, 7]
            raise RuntimeError("boom")


def _other_table_object(store, t):
    """A write through another Table object on the same storage."""
    JournalTable(store.storage, "things").insert({"n": 8})


MUTATIONS = {
    "truncate": lambda store, t: t.truncate(),
    "insert": lambda store, t: t.insert({"n": 5}),
    "insert_multiple": lambda store, t: t.insert_multiple([{"n": 5}, {"n": 0}]),
    "insert Document with id": lambda store, t: t.insert(Document({"n": 6}, 40)),
    "update fields by query": lambda store, t: t.update({"n": 0}, where("n") == 2),
    "update fields by ids": lambda store, t: t.update({"n": 0}, doc_ids=[t.get(where("n") == 3).doc_id]),
    "update all": lambda store, t: t.update({"n": 9}),
    "update callable": lambda store, t: t.update(lambda d: d.__setitem__("n", 0), where("n") == 3),
    "update operation": lambda store, t: t.update(increment("n"), where("n") == 1),
    "update delete field": lambda store, t: t.update(delete("n"), where("n") == 2),
    "update_multiple": lambda store, t: t.update_multiple([({"n": 0}, where("n") == 2), ({"n": 4}, where("n") == 1)]),
    "upsert existing": lambda store, t: t.upsert({"n": 0}, where("n") == 3),
    "upsert new": lambda store, t: t.upsert({"n": 5}, where("n") == 5),
    "remove by query": lambda store, t: t.remove(where("n") == 2),
    "remove by ids": lambda store, t: t.remove(doc_ids=[t.get(where("n") == 3).doc_id]),
    "drop_table": lambda store, t: store.db.drop_table("things"),
    "drop_tables": lambda store, t: store.db.drop_tables(),
    "Store.put": lambda store, t: store.put("things", {"id": "x", "n": 9}),
    "Store.delete": lambda store, t: store.delete("things", t.get(where("n") == 2).doc_id),
    "transaction rolled back": _rolled_back,
    "another Table object": _other_table_object,
}


@pytest.mark.parametrize("mutation", MUTATIONS)
def test_query_cache_never_answers_from_before_a_change(store, mutation):
    """A cached search and count see every kind of change at once, and a restart agrees."""
    t = store.db.table("things")
    query = where("n") >= 2
    assert numbers(t.search(query)) == [2, 3] and t.count(query) == 2
    assert query in t._query_cache, "TinyDB caches the search (the test must be able to see staleness)"
    MUTATIONS[mutation](store, t)
    expected = numbers(d for d in t.all() if query(d))
    assert numbers(t.search(query)) == expected
    assert t.count(query) == expected.__len__()
    store = reopen(store)
    assert numbers(store.db.table("things").search(query)) == expected
    store.close()


def test_failed_commit_leaves_no_stale_cache(store, monkeypatch):
    """A write whose fsync fails is rolled back, and a search cached meanwhile does not keep it."""
    t = store.db.table("things")
    query = where("n") >= 2
    t.search(query)
    fail_next_fsync(monkeypatch)
    with pytest.raises(StoreFailed):
        t.insert({"n": 5})
    assert numbers(t.search(query)) == [2, 3]
    store = reopen(store)
    assert numbers(store.db.table("things").search(query)) == [2, 3]
    store.close()


def test_drop_table_and_drop_tables_are_durable(store):
    """drop_table() and drop_tables() are journaled: the tables stay gone after a restart."""
    store.db.table("other").insert({"n": 1})
    store.db.table("kept").insert({"n": 2})
    seq = store.seq
    store.db.drop_table("things")
    store.db.drop_table("never-existed")
    assert store.seq == seq + 1, "one commit; dropping a missing table changes nothing"
    assert store.db.tables() == {"other", "kept"}
    store = reopen(store)
    assert store.db.tables() == {"other", "kept"}
    assert store.db.table("kept").all() == [{"n": 2}]
    store.db.drop_tables()
    assert store.db.tables() == set()
    store.db.table("things").insert({"n": 9})  # a dropped table can be made again
    store = reopen(store)
    assert store.db.tables() == {"things"}
    assert store.db.table("things").all() == [{"n": 9}]
    store.compact()
    store = reopen(store)
    assert store.db.tables() == {"things"}
    store.close()


def test_a_rolled_back_drop_restores_the_table(store):
    """A drop inside a failed transaction changes neither memory nor the journal."""
    seq = store.seq
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.db.drop_tables()
            assert store.db.tables() == set()
            raise RuntimeError("boom")
    assert store.seq == seq and numbers(store.db.table("things").all()) == [1, 2, 3]
    store = reopen(store)
    assert numbers(store.db.table("things").all()) == [1, 2, 3]
    store.close()


def test_empty_tables_exist_as_in_tinydb(store):
    """truncate() keeps the table; persist_empty=True makes one: both survive a restart."""
    store.db.table("things").truncate()
    store.db.table("made", persist_empty=True)
    store.db.table("only-read").search(where("n") == 1)
    assert store.db.tables() == {"things", "made"}
    store = reopen(store)
    assert store.db.tables() == {"things", "made"} and store.db.table("things").all() == []
    store.close()


def test_in_place_updates_are_recorded(store):
    """Callables that change a document in place, nested at any depth, are journaled."""
    t = store.db.table("things")
    one = t.get(where("n") == 1).doc_id
    seq = store.seq
    assert t.update(lambda d: d["tags"].append("x"), doc_ids=[one]) == [one]
    t.update(lambda d: d["deep"]["list"].append({"v": 10}), where("n") == 1)
    t.update(lambda d: d["deep"]["list"][0].__setitem__("v", 11), where("n") == 1)
    t.update(add("tags", ["y"]), where("n") == 1)
    assert store.seq == seq + 4, "each update is one commit"
    expected = {"n": 1, "tags": ["t1", "x", "y"], "deep": {"list": [{"v": 11}, {"v": 10}]}}
    assert t.get(doc_id=one) == expected
    assert t.update(lambda d: d["tags"].sort(), where("n") == 2) == [t.get(where("n") == 2).doc_id]
    assert store.seq == seq + 4, "an update that changes nothing writes nothing"
    store = reopen(store)
    assert store.db.table("things").get(doc_id=one) == expected
    store.compact()
    store = reopen(store)
    assert store.db.table("things").get(doc_id=one) == expected
    store.close()


def test_an_update_that_changes_only_a_type_is_recorded(store):
    """1, 1.0 and True are equal in Python but not in JSON: changing one into another is a change."""
    t = store.db.table("things")
    t.update({"n": 1.0}, where("n") == 1)
    t.update({"n": True}, where("n") == 2)
    store = reopen(store)
    docs = {d["tags"][0]: d["n"] for d in store.db.table("things").all()}
    assert type(docs["t1"]) is float and docs["t2"] is True
    store.close()


def test_a_failed_updater_changes_nothing(store):
    """An updater that raises halfway leaves every document as it was."""
    t = store.db.table("things")
    seq = store.seq

    def half(doc):
        doc["tags"].append("x")
        if doc["n"] == 2:
            raise RuntimeError("boom")
    with pytest.raises(RuntimeError):
        t.update(half)
    assert store.seq == seq
    assert sorted(d["tags"] for d in t.all()) == [["t1"], ["t2"], ["t3"]]


def test_documents_handed_out_are_private(store):
    """Changing a document got from any reader (nested lists too) changes nothing stored."""
    t = store.db.table("things")
    one = t.get(where("n") == 1).doc_id
    seq = store.seq
    query = where("n") == 1
    readers = [lambda: t.get(query), lambda: t.get(doc_id=one), lambda: t.get(doc_ids=[one])[0],
               lambda: t.search(query)[0], lambda: t.search(query)[0], lambda: t.all()[0],
               lambda: next(iter(t)), lambda: store.get("things", one), lambda: store.all("things")[0],
               lambda: store.find("things", lambda d: d["n"] == 1)[0]]
    for read in readers:
        doc = read()
        doc["tags"].append("mine")
        doc["deep"]["list"][0]["v"] = "mine"
        doc["n"] = 99 if doc["n"] == 1 else doc["n"]
    assert t.get(doc_id=one) == {"n": 1, "tags": ["t1"], "deep": {"list": [{"v": 1}]}}
    assert numbers(t.search(query)) == [1], "the cached result was not changed either"
    assert store.seq == seq
    store = reopen(store)
    assert store.db.table("things").get(doc_id=one)["tags"] == ["t1"]
    store.close()


def test_documents_given_are_copied(store):
    """A caller that keeps changing what it inserted, updated or put changes nothing stored."""
    t = store.db.table("things")
    inserted = {"n": 5, "tags": []}
    new_id = t.insert(inserted)
    fields = {"tags": ["a"]}
    t.update(fields, doc_ids=[new_id])
    put = {"id": "P", "tags": []}
    store.put("things", put)
    inserted["tags"].append("later")
    fields["tags"].append("later")
    put["tags"].append("later")
    assert t.get(doc_id=new_id)["tags"] == ["a"] and store.get("things", "P")["tags"] == []


def test_integer_ids_are_kept_as_their_string(store):
    """An integer id given by the caller is stored as its decimal string and found either way;
    ids of other types are refused."""
    t = store.db.table("things")
    assert t.insert(Document({"n": 12}, 12)) == 12
    assert t.insert_multiple([Document({"n": 77}, 77)]) == [77]
    with pytest.raises(ValueError, match="already exists"):
        t.insert(Document({"n": 0}, "12"))
    assert t.get(doc_id=12) == {"n": 12} and t.get(doc_id="12") == {"n": 12}
    assert t.contains(doc_id=77) and not t.contains(doc_id=78)
    assert t.update({"n": 13}, doc_ids=[12, 99]) == [12]
    store = reopen(store)
    t = store.db.table("things")
    assert t.get(doc_id=12) == {"n": 13} and t.get(doc_ids=[12, 77]) == [{"n": 13}, {"n": 77}]
    assert t.search(where("n") == 13)[0].doc_id == "12", "ids read back are strings"
    assert t.remove(doc_ids=[77]) == [77]
    for bad in (1.5, True, None, ("a",)):
        with pytest.raises(TypeError, match="document id"):
            t.insert(Document({"n": 0}, bad))
    store = reopen(store)
    assert numbers(store.db.table("things").all()) == [1, 2, 3, 13]
    store.close()


def test_values_json_cannot_hold_raise_type_error(store):
    """Like TinyDB's JSON storage: TypeError at the call, nothing stored, nothing journaled
    (NaN, which JSON cannot hold either, raises ValueError)."""
    t = store.db.table("things")
    seq = store.seq
    attempts = [lambda: t.insert({"n": object()}),
                lambda: t.insert_multiple([{"n": 4}, {"n": {1, 2}}]),
                lambda: t.update({"n": object()}, where("n") == 1),
                lambda: t.update(lambda d: d["tags"].append(b"bytes"), where("n") == 2),
                lambda: t.upsert({"n": 5, "x": object()}, where("n") == 5),
                lambda: store.put("things", {"id": "x", "when": object()})]
    for attempt in attempts:
        with pytest.raises(TypeError):
            attempt()
    with pytest.raises(ValueError):
        t.insert({"n": float("nan")})
    with pytest.raises(TypeError):
        with store.transaction():
            t.insert({"n": 4})
            t.insert({"n": object()})
    assert store.seq == seq and numbers(t.all()) == [1, 2, 3]
    assert sorted(d["tags"] for d in t.all()) == [["t1"], ["t2"], ["t3"]]
    store = reopen(store)
    assert numbers(store.db.table("things").all()) == [1, 2, 3]
    store.close()


def test_query_results_follow_tinydb(store):
    """Queries, order and ids behave as TinyDB's do (ids are ULIDs, in insertion order)."""
    t = store.db.table("things")
    ids = [d.doc_id for d in t.all()]
    assert ids == sorted(ids) and all(isinstance(i, str) and len(i) == 26 for i in ids)
    assert numbers(t.search(Query().deep.list.any(Query().v == 2))) == [2]
    assert [d["n"] for d in t.all()] == [1, 2, 3]
