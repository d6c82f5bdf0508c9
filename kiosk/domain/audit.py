"""The audit chain: each staff action is an entry whose hash covers the previous entry's hash.

Changing, removing or reordering any stored entry breaks every hash after it, so no official can
quietly rewrite the record; central receives the entries with the sync and checks the chain.
"""
from __future__ import annotations

import hashlib
import json
from typing import Iterable

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
