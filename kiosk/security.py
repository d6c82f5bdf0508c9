"""PIN hashing (argon2id) and server-side staff sessions (screens' cookies and API tokens)."""
from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass

from argon2 import PasswordHasher, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from kiosk.domain import throttle

_hasher = PasswordHasher()  # argon2id with the library's OWASP-level defaults
_dummies: dict[str, str] = {}


def hash_pin(pin: str) -> str:
    """An argon2id hash of a PIN, safe to store and to sync."""
    return _hasher.hash(pin)


def verify_pin(pin_hash: str, pin: str) -> bool:
    """True when `pin` matches; never raises on a bad or foreign hash."""
    try:
        return _hasher.verify(pin_hash, pin)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def dummy_pin_hash(like: str | None = None) -> str:
    """A hash of a random PIN at the cost of `like` (a real staff hash) or of our defaults.

    Checking a PIN for an unknown name against it takes as long as for a known name: the audit
    measured ~3-12 ms against ~300-570 ms, which told names apart."""
    try:
        params = extract_parameters(like) if like else None
    except (InvalidHashError, ValueError):
        params = None
    hasher = PasswordHasher.from_parameters(params) if params else _hasher
    key = repr(params) if params else "default"
    if key not in _dummies:
        _dummies[key] = hasher.hash(secrets.token_urlsafe(16))
    return _dummies[key]


def pin_fingerprint(pin_hash: str) -> str:
    """A short tag of the stored hash: tokens carry it, so changing a PIN revokes old tokens."""
    return hashlib.sha256(pin_hash.encode()).hexdigest()[:12]


@dataclass
class StaffSession:
    """One signed-in staff member on one browser ("screen") or one integration ("api")."""

    staff: str
    kind: str
    fingerprint: str
    created_at: float
    seen_at: float
    address: str


class StaffSessions:
    """Server-side staff sessions, so that logout, a PIN change, the supervisor's "sign out
    everywhere" and idle expiry end them for good: the browser's cookie and the integration's
    bearer token carry only a random id, and an id this process does not hold opens nothing.

    Decisions: kept in memory, not in the store, because the kiosk is one process and a session
    worth stealing should not sit on disk or travel to central; a restart (a power cut) signs
    everybody out, which costs each attendant one login. Only a hash of each id is kept.
    Screen sessions end after STAFF_IDLE_MIN without activity and after MAX_SCREEN_HOURS in any
    case; API tokens after TOKEN_TTL_MIN from their issue.
    """

    MAX_SCREEN_HOURS = 16   # a long shift plus overtime; then one more login
    MAX_SESSIONS = 10_000   # far above any centre's staff; guards memory against a login flood

    def __init__(self, config, clock):
        """Read the time limits from `config` at each check (tests and settings may change them)."""
        self._config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, StaffSession] = {}

    @staticmethod
    def _key(token: str) -> str:
        """What is stored for a token: its hash (a memory dump does not hand out sessions)."""
        return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()

    def _now(self) -> float:
        """The injected clock as an epoch."""
        return self._clock.now().timestamp()

    def _expired(self, record: StaffSession, now: float) -> bool:
        """True when a session is past its idle or absolute limit."""
        if record.kind == "api":
            return now - record.created_at > int(self._config["TOKEN_TTL_MIN"]) * 60
        return (now - record.seen_at > int(self._config["STAFF_IDLE_MIN"]) * 60
                or now - record.created_at > self.MAX_SCREEN_HOURS * 3600)

    def expires_at(self, record: StaffSession) -> float:
        """When an API token stops working (epoch)."""
        return record.created_at + int(self._config["TOKEN_TTL_MIN"]) * 60

    def start(self, staff: dict, *, kind: str, address: str = "") -> tuple[str, StaffSession]:
        """A new session for a staff document; returns (token, record)."""
        token = secrets.token_urlsafe(32)
        now = self._now()
        record = StaffSession(staff=staff["id"], kind=kind, fingerprint=pin_fingerprint(staff["pin_hash"]),
                              created_at=now, seen_at=now, address=address)
        with self._lock:
            if len(self._sessions) >= self.MAX_SESSIONS:
                self._prune(now)
            if len(self._sessions) >= self.MAX_SESSIONS:
                oldest = min(self._sessions, key=lambda k: self._sessions[k].seen_at)
                del self._sessions[oldest]
            self._sessions[self._key(token)] = record
        return token, record

    def get(self, token: str | None, *, kind: str) -> StaffSession | None:
        """The live session of a token (of `kind`), or None; an expired one is forgotten here."""
        if not isinstance(token, str) or not token:
            return None
        key = self._key(token)
        with self._lock:
            record = self._sessions.get(key)
            if record is None or record.kind != kind:
                return None
            if self._expired(record, self._now()):
                del self._sessions[key]
                return None
            return record

    def touch(self, token: str) -> None:
        """Note activity on a session (screens: a click or a form, not a live refresh)."""
        with self._lock:
            record = self._sessions.get(self._key(token))
            if record is not None:
                record.seen_at = self._now()

    def end(self, token: str | None) -> bool:
        """End one session (logout); True when it existed."""
        if not isinstance(token, str):
            return False
        with self._lock:
            return self._sessions.pop(self._key(token), None) is not None

    def end_all(self, staff_id: str) -> int:
        """End every session of one staff member, on every browser and integration."""
        with self._lock:
            keys = [k for k, r in self._sessions.items() if r.staff == staff_id]
            for key in keys:
                del self._sessions[key]
        return len(keys)

    def active(self) -> list[StaffSession]:
        """Live sessions, oldest first (for the supervisor)."""
        now = self._now()
        with self._lock:
            self._prune(now)
            return sorted(self._sessions.values(), key=lambda r: r.created_at)

    def _prune(self, now: float) -> None:
        """Forget expired sessions (the caller holds the lock)."""
        for key in [k for k, r in self._sessions.items() if self._expired(r, now)]:
            del self._sessions[key]


class LoginThrottle:
    """Wrong-PIN records per account name and per client address (kiosk.domain.throttle rules),
    in memory: the kiosk is one process, and a restart cannot be triggered from outside."""

    MAX_KEYS = 50_000  # a flood of made-up names must not grow memory without end

    def __init__(self, clock, *, account: throttle.Rule = throttle.ACCOUNT,
                 address: throttle.Rule = throttle.ADDRESS):
        """Use `clock` for every decision."""
        self._clock = clock
        self._rules = {"account": account, "address": address}
        self._lock = threading.Lock()
        self._records: dict[tuple[str, str], throttle.Attempts] = {}

    def _now(self) -> float:
        """The injected clock as an epoch."""
        return self._clock.now().timestamp()

    @staticmethod
    def _keys(name: str, address: str) -> list[tuple[str, str]]:
        """The records one attempt touches (a very long name is cut: it names nobody anyway)."""
        return [("account", name[:128]), ("address", address or "?")]

    def wait_s(self, name: str, address: str) -> float:
        """Seconds until a login for this name from this address may be checked (0: now)."""
        now = self._now()
        with self._lock:
            return max(throttle.wait_s(self._records.get(key), now) for key in self._keys(name, address))

    def failed(self, name: str, address: str) -> None:
        """Record a wrong PIN (or unknown name) for the name and the address."""
        now = self._now()
        with self._lock:
            if len(self._records) >= self.MAX_KEYS:
                self._prune(now)
            for key in self._keys(name, address):
                self._records[key] = throttle.after_failure(self._records.get(key), self._rules[key[0]], now)

    def succeeded(self, name: str) -> None:
        """A correct PIN clears the account's record (not the address's: one's own login must
        not reset the count of names guessed from that address)."""
        with self._lock:
            self._records.pop(("account", name[:128]), None)

    def locked(self) -> list[dict]:
        """Accounts and addresses locked now, longest wait first (for the supervisor)."""
        now = self._now()
        with self._lock:
            out = [{"kind": kind, "key": key, "wait_s": throttle.wait_s(rec, now), "locks": rec.level}
                   for (kind, key), rec in self._records.items() if throttle.wait_s(rec, now) > 0]
        return sorted(out, key=lambda x: -x["wait_s"])

    def unlock(self, kind: str, key: str) -> bool:
        """Forget one record (the supervisor vouches for the person); True when there was one."""
        with self._lock:
            return self._records.pop((kind, key), None) is not None

    def _prune(self, now: float) -> None:
        """Forget stale records; if that is not enough, the oldest (the caller holds the lock)."""
        for key in [k for k, r in self._records.items() if throttle.is_stale(r, self._rules[k[0]], now)]:
            del self._records[key]
        while len(self._records) >= self.MAX_KEYS:
            oldest = min(self._records, key=lambda k: self._records[k].last_failure_at)
            del self._records[oldest]
