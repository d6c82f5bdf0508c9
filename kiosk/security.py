"""PIN hashing (argon2id) and signed, expiring staff tokens."""
from __future__ import annotations

import hashlib

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

_hasher = PasswordHasher()  # argon2id with the library's OWASP-level defaults


def hash_pin(pin: str) -> str:
    """An argon2id hash of a PIN, safe to store and to sync."""
    return _hasher.hash(pin)


def verify_pin(pin_hash: str, pin: str) -> bool:
    """True when `pin` matches; never raises on a bad or foreign hash."""
    try:
        return _hasher.verify(pin_hash, pin)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def pin_fingerprint(pin_hash: str) -> str:
    """A short tag of the stored hash: tokens carry it, so changing a PIN revokes old tokens."""
    return hashlib.sha256(pin_hash.encode()).hexdigest()[:12]


class TokenSigner:
    """Stateless bearer tokens: signed staff id, role and PIN tag, checked for age on every use."""

    def __init__(self, secret: str | bytes, ttl_s: int, clock):
        """Sign with `secret`; tokens older than `ttl_s` by `clock` are refused."""

        class ClockSigner(TimestampSigner):
            def get_timestamp(self) -> int:
                return int(clock.now().timestamp())

        self._s = URLSafeTimedSerializer(secret, salt="kiosk-api-token", signer=ClockSigner)
        self.ttl_s = ttl_s

    def issue(self, staff: dict) -> str:
        """A token for a staff document."""
        return self._s.dumps({"s": staff["id"], "r": staff["role"], "p": pin_fingerprint(staff["pin_hash"])})

    def read(self, token: str) -> dict | None:
        """The token's claims, or None when forged, malformed or expired."""
        try:
            claims = self._s.loads(token, max_age=self.ttl_s)
        except (SignatureExpired, BadSignature):
            return None
        return claims if isinstance(claims, dict) and {"s", "r", "p"} <= claims.keys() else None
