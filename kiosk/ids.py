"""ULIDs: sortable, client-generated identifiers for every record that leaves the centre."""
import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_lock = threading.Lock()
_last_ms = 0
_last_rand = 0


def _encode(value: int, length: int) -> str:
    """Crockford base32 of an integer, left-padded to `length` characters."""
    out = []
    for _ in range(length):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def new_ulid(now_ms: int | None = None) -> str:
    """A new ULID, monotonic within this process even when the clock stands still or steps back."""
    global _last_ms, _last_rand
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    with _lock:
        if ms <= _last_ms:
            # same or earlier millisecond: keep order by incrementing the random part
            ms = _last_ms
            rand = _last_rand + 1
        else:
            rand = int.from_bytes(os.urandom(10), "big")
        _last_ms, _last_rand = ms, rand & ((1 << 80) - 1)
    return _encode(ms, 10) + _encode(_last_rand, 16)


def is_ulid(value: object) -> bool:
    """True when `value` looks like a ULID (26 Crockford base32 characters)."""
    return isinstance(value, str) and len(value) == 26 and all(c in _ALPHABET for c in value)
