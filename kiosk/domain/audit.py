"""The audit chain: each staff action is an entry whose hash covers the previous entry's hash.

Changing, removing or reordering any stored entry breaks every hash after it, so no official can
quietly rewrite the record; central receives the entries with the sync and checks the chain.
"""
from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Iterable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

GENESIS = "0" * 64


def entry_hash(entry: dict) -> str:
    """SHA-256 over the canonical JSON of the entry without its own hash."""
    body = {k: v for k, v in entry.items() if k != "hash"}
    data = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def make_entry(*, entry_id: str, n: int, prev: str, at: str, actor: str, action: str, target: str,
               detail: dict | None = None) -> dict:
    """The next entry of the chain (n counts from 1, prev is the previous entry's hash)."""
    entry = {"id": entry_id, "n": n, "prev": prev, "at": at, "actor": actor, "action": action,
             "target": target, "detail": detail or {}}
    entry["hash"] = entry_hash(entry)
    return entry


def verify_chain(entries: list[dict]) -> tuple[bool, str]:
    """Check an audit chain given in any order; return (ok, what is wrong at the first bad entry)."""
    return verify_ordered(sorted(entries, key=lambda e: e["n"]))


def verify_ordered(entries: Iterable[dict]) -> tuple[bool, str]:
    """Check an audit chain given in number order, one entry at a time (a year of entries is read
    from the archive as a stream, never held in memory at once)."""
    prev = GENESIS
    count = 0
    for index, entry in enumerate(entries, start=1):
        if entry["n"] != index:
            return False, f"entry {index} is missing (found {entry['n']})"
        if entry["prev"] != prev:
            return False, f"entry {index} does not follow entry {index - 1}"
        if entry_hash(entry) != entry["hash"]:
            return False, f"entry {index} was altered"
        prev = entry["hash"]
        count = index
    return True, f"{count} entries intact"


# -- signed checkpoints ----------------------------------------------------------------------------
# A checkpoint is the kiosk's signed statement "my chain has n entries and the last one's hash is
# H". Central keeps every checkpoint: an entry covered by one can no longer be changed, removed or
# replaced by another history without the difference showing (docs/sync.md, "Audit checkpoints").

CHECKPOINT_LABEL = "audit-checkpoint/1"
CHECKPOINT_KINDS = ("sync", "day_close")
GAP, ALTERED, FORK = "gap", "altered", "fork"
FLAG_KINDS = (GAP, ALTERED, FORK)
SIGNED_FIELDS = ("id", "kind", "device_id", "centre", "n", "hash", "at", "seq")


def checkpoint_message(checkpoint: dict) -> bytes:
    """The exact bytes a checkpoint's signature covers (canonical JSON of its signed fields)."""
    body = {"label": CHECKPOINT_LABEL, **{k: checkpoint.get(k) for k in SIGNED_FIELDS}}
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def make_checkpoint(key, *, checkpoint_id: str, kind: str, device_id: str, centre: str, n: int,
                    head_hash: str, at: str, seq: int | None = None) -> dict:
    """A checkpoint of the chain head (n, head_hash), signed with the device's Ed25519 `key` (any
    object with `sign(bytes) -> bytes`). `seq` is the journal sequence the head was read at, when
    known (a checkpoint sent beside the journal); one written into the journal leaves it None."""
    if kind not in CHECKPOINT_KINDS:
        raise ValueError(f"unknown checkpoint kind {kind!r}")
    checkpoint = {"id": checkpoint_id, "kind": kind, "device_id": device_id, "centre": centre, "n": int(n),
                  "hash": head_hash, "at": at, "seq": seq}
    checkpoint["sig"] = base64.urlsafe_b64encode(key.sign(checkpoint_message(checkpoint))).rstrip(b"=").decode("ascii")
    return checkpoint


def verify_checkpoint(checkpoint: dict, public_key: str) -> bool:
    """True when `checkpoint` carries a valid signature by the device whose raw Ed25519 public key
    (base64url) is `public_key`, and its fields have the right types."""
    try:
        if not (isinstance(checkpoint.get("n"), int) and checkpoint["n"] >= 0
                and isinstance(checkpoint.get("hash"), str) and len(checkpoint["hash"]) == 64
                and checkpoint.get("kind") in CHECKPOINT_KINDS and isinstance(checkpoint.get("sig"), str)):
            return False
        raw = base64.urlsafe_b64decode(public_key + "=" * (-len(public_key) % 4))
        sig = base64.urlsafe_b64decode(checkpoint["sig"] + "=" * (-len(checkpoint["sig"]) % 4))
        Ed25519PublicKey.from_public_bytes(raw).verify(sig, checkpoint_message(checkpoint))
        return True
    except (InvalidSignature, ValueError, TypeError, KeyError):
        return False


@dataclass(frozen=True)
class Finding:
    """Something wrong with the chain: a gap, an altered entry or a fork, at entry `n`."""

    kind: str
    n: int
    detail: str


def link(entry: dict) -> dict:
    """What a checkpoint check needs of an entry: its number, id, hashes and whether its content
    still matches its own hash (`intact`). Central keeps only these per entry."""
    return {"n": entry["n"], "id": entry.get("id"), "prev": entry.get("prev"), "hash": entry.get("hash"),
            "digest": entry_hash(entry), "intact": entry_hash(entry) == entry.get("hash")}


def check_segment(start_n: int, start_hash: str, links: Iterable[dict], end_n: int,
                  end_hash: str | None) -> list[Finding]:
    """Compare the chain segment after a checkpoint (start_n, start_hash) up to a later one
    (end_n, end_hash). `links` (see `link`; full entries work too) come in number order, one at a
    time, so a year of entries is never held in memory. A missing number is a GAP, an entry whose
    content no longer matches its hash or that does not follow its predecessor is ALTERED, and a
    complete segment that does not end at end_hash is a FORK (the later checkpoint does not
    descend from the earlier one). `end_hash` None checks a first part of a long segment only
    (no FORK: the checkpoint is further on)."""
    findings: list[Finding] = []
    expected, prev, broken = start_n + 1, start_hash, False
    for item in links:
        n = item["n"]
        if n < expected or n > end_n:
            continue
        if n > expected:
            findings.append(Finding(GAP, expected, f"entries {expected}..{n - 1} are missing"
                                    if n - 1 > expected else f"entry {expected} is missing"))
            broken = True
        intact = item.get("intact")
        if intact is None:
            intact = entry_hash(item) == item.get("hash")
        if not intact:
            findings.append(Finding(ALTERED, n, f"entry {n} no longer matches its own hash"))
            broken = True
        elif n == expected and item.get("prev") != prev:
            findings.append(Finding(ALTERED, n, f"entry {n} does not follow entry {n - 1}"
                                    if n > 1 else "entry 1 does not start the chain"))
            broken = True
        prev, expected = item.get("hash"), n + 1
    if expected <= end_n:
        findings.append(Finding(GAP, expected, f"entries {expected}..{end_n} are missing"
                                if end_n > expected else f"entry {expected} is missing"))
    elif not broken and end_hash is not None and prev != end_hash:
        findings.append(Finding(FORK, end_n, f"the chain after entry {start_n} ends at {str(prev)[:12]}, "
                                f"the checkpoint says {end_hash[:12]}: it does not descend from the previous one"))
    return findings


def compare_resent(stored: dict, again: dict) -> Finding | None:
    """An entry received again for a number central already holds (`stored` and `again` are
    `link`s): None when it is the same entry; ALTERED when the same entry changed, FORK when another
    entry took its place (a history rebuilt from an older copy)."""
    if stored["id"] == again["id"] and stored["hash"] == again["hash"] and stored["digest"] == again["digest"]:
        return None
    n = stored["n"]
    if stored["id"] != again["id"]:
        return Finding(FORK, n, f"entry {n} was {stored['id']} ({stored['hash'][:12]}) and is now "
                       f"{again['id']} ({str(again['hash'])[:12]}): another history")
    return Finding(ALTERED, n, f"entry {n} ({stored['id']}) changed after central received it")
