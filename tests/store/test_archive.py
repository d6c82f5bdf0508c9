"""The day archive on its own: part files (gzip'd JSON lines, SHA-256 in an atomically replaced
manifest), what a crash leaves behind, verification of damaged files, pruning, and History, the one
read-only view over live and archived records."""
import gzip
import hashlib
import json
import os
import stat
from zoneinfo import ZoneInfo

import pytest

from kiosk.domain import audit
from kiosk.ids import new_ulid
from kiosk.store import Store
from kiosk.store.archive import Archive, ArchiveError, History, record_day

TZ = ZoneInfo("Asia/Baghdad")
DAY = "2026-11-21"
CLOSED_AT = "2026-11-21T21:05:00.000Z"


def ulid_at(ms: int) -> str:
    """A ULID stamped `ms` (new_ulid keeps a process's ids rising, so it cannot go back in time)."""
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    return "".join(alphabet[(ms >> (5 * i)) & 31] for i in reversed(range(10))) + new_ulid()[10:]


def ticket(n: int, day: str = DAY, ticket_id: str | None = None) -> dict:
    """A finished ticket of `day` (issued at 10:00 local time)."""
    at = f"{day}T07:00:00.000Z"
    return {"id": ticket_id or new_ulid(), "number": f"A-{n:03d}", "service": "A", "priority": "normal",
            "lang": "ar", "state": "done", "issued_at": at, "arrival_at": at, "day": day, "seq_in_day": n,
            "counter": "1", "device": "test",
            "events": [{"state": "waiting", "at": at}, {"state": "done", "at": at, "by": "demo"}]}


def chain(count: int, day: str = DAY, start: int = 1, prev: str = audit.GENESIS) -> list[dict]:
    """`count` consecutive audit entries written on `day`."""
    out = []
    for n in range(start, start + count):
        entry = audit.make_entry(entry_id=new_ulid(), n=n, prev=prev, at=f"{day}T08:00:{n % 60:02d}.000Z",
                                 actor="demo", action="finish", target="x", detail={})
        out.append(entry)
        prev = entry["hash"]
    return out


@pytest.fixture
def archive(data_dir) -> Archive:
    return Archive(data_dir)


def write(archive: Archive, day: str, records: dict, seq: int = 1, done: bool = False):
    """One day's part, named in the manifest (as "written", or "done")."""
    [part] = archive.write_parts({day: records}, seq=seq, closed_at=CLOSED_AT)
    return archive.mark_done([part])[0] if done else part


def test_a_part_is_gzipped_json_lines_named_with_its_checksum(archive, data_dir):
    tickets = [ticket(2), ticket(1)]
    entries = chain(3)
    part = write(archive, DAY, {"tickets": tickets, "audit": list(reversed(entries))}, seq=42)
    assert (part.day, part.part, part.state, part.seq) == (DAY, 1, "written", 42)
    assert part.counts == {"tickets": 2, "audit": 3} and part.audit == (1, 3)
    path = data_dir / "archive" / part.file
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == part.sha256 and len(data) == part.bytes
    assert stat.S_IMODE(path.stat().st_mode) == 0o400, "written once, read-only, owner only"
    lines = [json.loads(line) for line in gzip.decompress(data).splitlines()]  # any gzip tool reads it
    assert lines[0] == {"archive": 1, "day": DAY, "part": 1, "seq": 42, "closed_at": CLOSED_AT,
                        "counts": {"tickets": 2, "audit": 3}}
    assert [(r["t"], r["k"]) for r in lines[1:]] == (
        [("tickets", t["id"]) for t in sorted(tickets, key=lambda t: t["id"])]
        + [("audit", e["id"]) for e in entries]), "tables in order, tickets by id, the chain by number"
    assert [d for _, d in archive.read(part, ("tickets",))] == sorted(tickets, key=lambda t: t["id"])
    assert archive.verify(part, TZ) == []
    [done] = archive.mark_done([part])
    assert Archive(data_dir).parts() == [done], "the manifest on disk says the same"
    again = write(archive, DAY, {"tickets": [ticket(3)]}, seq=50)
    assert again.part == 2 and again.file == f"{DAY}.2.jsonl.gz"


def test_clean_removes_what_an_interrupted_write_left(archive, data_dir):
    kept = write(archive, DAY, {"tickets": [ticket(1)]})
    folder = data_dir / "archive"
    (folder / "2026-11-22.1.jsonl.gz").write_bytes(b"killed before the manifest named it")
    (folder / "2026-11-22.1.jsonl.gz.tmp").write_bytes(b"killed mid-write")
    assert archive.leftovers() == ["2026-11-22.1.jsonl.gz", "2026-11-22.1.jsonl.gz.tmp"]
    assert sorted(archive.clean()) == ["2026-11-22.1.jsonl.gz", "2026-11-22.1.jsonl.gz.tmp"]
    assert sorted(os.listdir(folder)) == sorted(["MANIFEST.json", kept.file])
    assert archive.pending() == [kept], "named but its live copies not yet removed"
    archive.mark_done([kept])
    assert archive.pending() == [] and archive.leftovers() == []


@pytest.mark.parametrize("damage", ["flip", "truncate", "missing", "recompressed"])
def test_verify_finds_a_damaged_file(archive, data_dir, damage):
    part = write(archive, DAY, {"tickets": [ticket(1), ticket(2)]}, seq=3, done=True)
    path = data_dir / "archive" / part.file
    data = bytearray(path.read_bytes())
    path.chmod(0o600)
    if damage == "flip":
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
    elif damage == "truncate":
        path.write_bytes(bytes(data[:-12]))
    elif damage == "missing":
        path.unlink()
    else:  # a valid gzip file with one record changed: only the checksum can tell
        text = gzip.decompress(bytes(data)).replace(b'"A-001"', b'"A-009"')
        path.write_bytes(gzip.compress(text, mtime=0))
    problems = archive.verify(part, TZ)
    assert problems, "damage is reported"
    expected = {"flip": "checksum", "truncate": "checksum", "missing": "missing", "recompressed": "checksum"}[damage]
    assert any(expected in p for p in problems), problems
    if damage != "recompressed":
        with pytest.raises(ArchiveError):
            list(archive.read(part))


def test_verify_checks_counts_order_and_days(archive, data_dir):
    part = write(archive, DAY, {"tickets": [ticket(1)]}, seq=3)
    other_day = write(archive, "2026-11-20", {"tickets": [ticket(1, day="2026-11-21")]}, seq=3)
    assert archive.verify(part, TZ) == []
    assert any("another day" in p for p in archive.verify(other_day, TZ))


def test_prune_takes_only_old_parts_central_has(archive, data_dir):
    old = write(archive, "2025-10-01", {"tickets": [ticket(1, "2025-10-01")]}, seq=10, done=True)
    unacked = write(archive, "2025-10-02", {"tickets": [ticket(1, "2025-10-02")]}, seq=30, done=True)
    recent = write(archive, DAY, {"tickets": [ticket(1)]}, seq=5, done=True)
    assert archive.prune(before_day="2025-10-26", acked_seq=20) == [old]
    assert archive.parts() == [unacked, recent] and not (data_dir / "archive" / old.file).exists()
    assert archive.prune(before_day="2025-10-26", acked_seq=30) == [unacked]
    assert archive.parts() == [recent]


def test_an_unreadable_manifest_is_an_error_not_an_empty_archive(archive, data_dir):
    write(archive, DAY, {"tickets": [ticket(1)]})
    (data_dir / "archive" / "MANIFEST.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ArchiveError, match="manifest"):
        Archive(data_dir).parts()


def test_record_days():
    assert record_day("tickets", ticket(1), TZ) == DAY
    assert record_day("audit", {"at": "2026-11-21T21:30:00.000Z"}, TZ) == "2026-11-22", "00:30 in Baghdad"
    assert record_day("receipts", {"issued_at": "2026-11-21T20:59:59.000Z"}, TZ) == "2026-11-21"
    assert record_day("requests", {"created_day": "2026-11-20"}, TZ) == "2026-11-20"


@pytest.fixture
def store(data_dir, clock):
    s = Store(data_dir, clock=clock)
    yield s
    s.close()


def test_history_reads_live_first_then_the_archive(store, data_dir):
    history = History(store, Archive(data_dir), TZ)
    archived = [ticket(n) for n in (1, 2, 3)]
    moving = archived[0]
    store.put("tickets", moving)  # archived, live copy not yet removed (a cut-off day close)
    changed = {**archived[1], "state": "cancelled"}
    store.put("tickets", changed)  # live and newer: the live copy wins
    today = ticket(1, day="2026-11-22")
    store.put("tickets", today)
    write(history.archive, DAY, {"tickets": archived}, seq=store.seq)
    got = list(history.records("tickets", [DAY]))
    assert sorted(t["id"] for t in got) == sorted(t["id"] for t in archived), "each record once"
    assert next(t for t in got if t["id"] == changed["id"])["state"] == "cancelled"
    assert [t["id"] for t in history.records("tickets", ["2026-11-22"])] == [today["id"]]
    assert [day for day, _ in history.each_day("tickets")] == [DAY, "2026-11-22"]
    assert {t["id"] for t in dict(history.each_day("tickets"))[DAY]} == {t["id"] for t in archived}
    assert history.get("tickets", archived[2]["id"], days=[DAY]) == archived[2]
    assert history.get("tickets", changed["id"])["state"] == "cancelled"
    assert history.get("tickets", new_ulid()) is None


def test_history_opens_only_parts_whose_ids_range_holds_the_key(store, data_dir, monkeypatch):
    """ULIDs rise with time, so a lookup opens the part of the id's own day; an id made while the
    clock was wrong is still found, through the range of the part that holds it."""
    history = History(store, Archive(data_dir), TZ)
    day_ms = 1795240800000  # 2026-11-21 09:00 in Baghdad
    cases = {day: [{"id": ulid_at(day_ms + i * 86_400_000 + n), "created_day": day} for n in range(3)]
             for i, day in enumerate(("2026-11-21", "2026-11-22", "2026-11-23"))}
    wrong_clock = {"id": ulid_at(0), "created_day": "2026-11-22"}
    cases["2026-11-22"].append(wrong_clock)
    for day, docs in cases.items():
        write(history.archive, day, {"requests": docs})
    opened = []
    real_read = history.archive.read
    monkeypatch.setattr(history.archive, "read", lambda part, tables=None: (opened.append(part.day),
                                                                            real_read(part, tables))[1])
    wanted = cases["2026-11-23"][1]
    assert history.get("requests", wanted["id"]) == wanted and opened == ["2026-11-23"]
    opened.clear()
    assert history.get("requests", wrong_clock["id"]) == wrong_clock and opened == ["2026-11-22"]
    opened.clear()
    assert history.get("requests", ulid_at(day_ms + 5 * 86_400_000)) is None and opened == []


def test_audit_chain_runs_across_live_and_archived_entries(store, data_dir):
    history = History(store, Archive(data_dir), TZ)
    first, second, third = chain(4, "2026-11-19"), None, None
    second = chain(3, "2026-11-20", start=5, prev=first[-1]["hash"])
    third = chain(2, "2026-11-21", start=8, prev=second[-1]["hash"])
    history.archive.write_parts({"2026-11-20": {"audit": second}, "2026-11-19": {"audit": first}}, seq=1,
                                closed_at=CLOSED_AT)
    for entry in [second[0], *third]:  # second[0] both archived and still live
        store.put("audit", entry)
    entries = list(history.audit_chain())
    assert [e["n"] for e in entries] == list(range(1, 10))
    assert audit.verify_ordered(iter(entries)) == (True, "9 entries intact")
    store.put("audit", {**third[0], "actor": "mallory"})
    ok, message = audit.verify_ordered(history.audit_chain())
    assert not ok and message == "entry 8 was altered"


def test_store_reads_in_place_and_deletes_only_what_is_unchanged(store):
    """The facade's in-place reads (ids and counts by predicate, no copies) and compare-and-delete,
    which day close uses to remove live copies of archived records."""
    a, b = ticket(1), ticket(2)
    store.put_many("tickets", [a, b])
    assert sorted(store.keys("tickets")) == sorted([a["id"], b["id"]])
    assert store.keys("tickets", lambda d: d["number"] == "A-002") == [b["id"]]
    assert store.count("tickets", lambda d: d["state"] == "done") == 2 and store.count("tickets") == 2
    seq = store.seq
    assert store.delete_if_unchanged("tickets", {**b, "state": "cancelled"}) is False
    assert store.get("tickets", b["id"]) == b and store.seq == seq, "a different copy changes nothing"
    with store.transaction(origin="archive"):
        assert store.delete_if_unchanged("tickets", a) is True
        assert store.delete_if_unchanged("tickets", b) is True
    assert store.delete_if_unchanged("tickets", a) is None
    assert store.seq == seq + 1 and store.count("tickets") == 0, "both in one commit"
    store.close()
    reopened = Store(store.data_dir, clock=store.clock)
    try:
        assert reopened.count("tickets") == 0, "and durable"
    finally:
        reopened.close()
