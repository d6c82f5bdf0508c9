"""The pure checkpoint logic: sign and verify a chain head, compare a segment with the previous
checkpoint (gap, altered, fork), compare a re-sent entry."""
from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.domain import audit
from sync import protocol


def chain(count: int, *, actor: str = "a") -> list[dict]:
    """A chain of `count` entries."""
    out, prev = [], audit.GENESIS
    for n in range(1, count + 1):
        entry = audit.make_entry(entry_id=f"E{n}{actor}", n=n, prev=prev, at="2026-01-01T00:00:00.000Z",
                                 actor=actor, action="x", target="t")
        out.append(entry)
        prev = entry["hash"]
    return out


def sign(key, n: int, head: str) -> dict:
    """A sync checkpoint of (n, head)."""
    return audit.make_checkpoint(key, checkpoint_id="c1", kind="sync", device_id="D", centre="C", n=n,
                                 head_hash=head, at="2026-01-01T00:00:00.000Z", seq=9)


def test_a_checkpoint_verifies_only_with_its_key_and_fields():
    key = Ed25519PrivateKey.generate()
    entries = chain(3)
    cp = sign(key, 3, entries[-1]["hash"])
    assert audit.verify_checkpoint(cp, protocol.public_key_text(key))
    assert not audit.verify_checkpoint(cp, protocol.public_key_text(Ed25519PrivateKey.generate()))
    for field, value in (("n", 2), ("hash", "0" * 64), ("centre", "X"), ("seq", 10), ("kind", "day_close")):
        assert not audit.verify_checkpoint({**cp, field: value}, protocol.public_key_text(key)), field
    assert not audit.verify_checkpoint({**cp, "sig": "!!"}, protocol.public_key_text(key))


def test_a_whole_segment_has_no_findings():
    entries = chain(10)
    assert audit.check_segment(0, audit.GENESIS, iter(entries), 10, entries[-1]["hash"]) == []
    assert audit.check_segment(4, entries[3]["hash"], (audit.link(e) for e in entries[4:]), 10,
                               entries[-1]["hash"]) == []


def test_a_missing_entry_is_a_gap():
    entries = chain(6)
    found = audit.check_segment(0, audit.GENESIS, iter(entries[:2] + entries[3:]), 6, entries[-1]["hash"])
    assert [(f.kind, f.n) for f in found] == [("gap", 3)]
    found = audit.check_segment(0, audit.GENESIS, iter(entries[:4]), 6, entries[-1]["hash"])
    assert [(f.kind, f.n) for f in found] == [("gap", 5)]


def test_an_altered_entry_is_found_with_or_without_a_new_hash():
    entries = chain(5)
    edited = [*entries[:2], {**entries[2], "actor": "b"}, *entries[3:]]
    found = audit.check_segment(0, audit.GENESIS, iter(edited), 5, entries[-1]["hash"])
    assert [(f.kind, f.n) for f in found] == [("altered", 3)]
    rehashed = [*entries[:2], audit.make_entry(entry_id="E3a", n=3, prev=entries[1]["hash"], at="x",
                                               actor="b", action="x", target="t"), *entries[3:]]
    found = audit.check_segment(0, audit.GENESIS, iter(rehashed), 5, entries[-1]["hash"])
    assert [(f.kind, f.n) for f in found] == [("altered", 4)]


def test_a_segment_that_ends_elsewhere_is_a_fork():
    ours, theirs = chain(4), chain(4, actor="b")
    found = audit.check_segment(0, audit.GENESIS, iter(theirs), 4, ours[-1]["hash"])
    assert [(f.kind, f.n) for f in found] == [("fork", 4)]


def test_a_resent_entry_is_compared():
    entries = chain(2)
    stored = audit.link(entries[1])
    assert audit.compare_resent(stored, audit.link(entries[1])) is None
    assert audit.compare_resent(stored, audit.link({**entries[1], "actor": "z"})).kind == "altered"
    assert audit.compare_resent(stored, audit.link(chain(2, actor="b")[1])).kind == "fork"
