"""The shared protocol pieces without a server: encoding limits, signatures, batch shape, and the
agent's cheap reading of the journal's last sequence."""
from __future__ import annotations

import gzip

import pytest

from kiosk.store.journal import encode_commit
from sync import protocol
from sync.agent import journal_last_seq


def test_inflate_refuses_bombs_truncation_and_garbage():
    assert protocol.inflate(gzip.compress(b"x" * 1000), limit=1000) == b"x" * 1000
    with pytest.raises(protocol.ProtocolError, match="beyond"):
        protocol.inflate(gzip.compress(b"x" * 1001), limit=1000)
    with pytest.raises(protocol.ProtocolError, match="truncated"):
        protocol.inflate(gzip.compress(b"x" * 1000)[:-10])
    with pytest.raises(protocol.ProtocolError):
        protocol.inflate(b"plain text")


def test_signatures_cover_every_field():
    key = protocol.new_private_key()
    public = protocol.public_key_text(key)
    fields = dict(method="POST", path="/api/sync/v1/push", device_id="D", timestamp="1", nonce="n",
                  device_time="t", digest=protocol.content_digest(b"body"), content_type="application/json",
                  content_encoding="gzip")
    signature = protocol.b64url(key.sign(protocol.signing_string(**fields)))
    assert protocol.verify_signature(public, signature, protocol.signing_string(**fields))
    for name in fields:
        changed = {**fields, name: fields[name] + "x"}
        assert not protocol.verify_signature(public, signature, protocol.signing_string(**changed)), name
    with pytest.raises(protocol.ProtocolError):
        protocol.signing_string(**{**fields, "path": "/a\nb"})
    assert not protocol.verify_signature("not a key", signature, b"")


def test_a_batch_must_be_consecutive_and_match_its_range():
    base = {"v": 1, "device_id": "D", "head_seq": 3, "device_time": "t"}
    commits = [{"s": 2, "at": "a", "h": "h", "c": []}, {"s": 3, "at": "a", "h": "h", "c": []}]
    protocol.PushRequest.model_validate({**base, "from_seq": 2, "to_seq": 3, "commits": commits}).check_range()
    with pytest.raises(protocol.ProtocolError):
        protocol.PushRequest.model_validate({**base, "from_seq": 1, "to_seq": 3, "commits": commits}).check_range()
    with pytest.raises(ValueError):
        protocol.PushRequest.model_validate({**base, "from_seq": 2, "to_seq": 4,
                                             "commits": [commits[0], {**commits[1], "s": 4}]})
    protocol.PushRequest.model_validate({**base, "from_seq": 4, "to_seq": 3, "commits": []}).check_range()


def test_journal_last_seq_reads_only_complete_lines(tmp_path):
    journal = tmp_path / "journal"
    journal.mkdir()
    assert journal_last_seq(tmp_path) == 0
    lines = b"".join(encode_commit({"s": s, "at": "a", "h": "h", "c": []}) for s in range(1, 6))
    (journal / "000000000001.jsonl").write_bytes(lines + encode_commit({"s": 6, "c": []})[:-5])
    assert journal_last_seq(tmp_path) == 5  # the torn line being written is not counted
    (journal / "000000000006.jsonl").write_bytes(b"")
    assert journal_last_seq(tmp_path) == 5  # a fresh segment after compaction
    big = encode_commit({"s": 6, "at": "a", "h": "h", "c": [{"t": "x", "o": "put", "k": "k", "d": {"id": "k", "x": "y" * 100_000}}]})
    (journal / "000000000006.jsonl").write_bytes(big)
    assert journal_last_seq(tmp_path) == 6  # one commit larger than the tail that is read
