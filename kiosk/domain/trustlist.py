"""The receipt trust list: centre public keys with their signing windows, revocations, a rising
sequence; signed by the ministry's root key and refused when rolled back or signed otherwise."""
from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

import cbor2
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kiosk.domain import receipts
from kiosk.domain.receipts import ReceiptError, epoch, from_epoch, iso, key_id

TRUST_LIST_VERSION = 1
# Separate external AAD from receipts: one signed object can never stand in for the other.
TRUST_LIST_AAD = b"trustlist-v1"
# Far above any real list (a few hundred keys and revoked ids), low enough to refuse a flood.
MAX_TRUST_LIST_BYTES = 1 << 20
MAX_SEQUENCE = 2**53 - 1

REASONS = {
    "malformed": "The trust list is damaged or not a trust list.",
    "unsupported_alg": "The trust list asks for a signature algorithm other than ES256.",
    "unknown_root": "The trust list was signed by a key that is not a pinned root key.",
    "bad_signature": "The trust list's signature does not match its contents.",
    "bad_payload": "The signed trust list has contents this version cannot read.",
    "rollback": "The trust list is older than the one already accepted.",
}


class TrustListError(receipts.VerificationError):
    """A trust list that must not be accepted; `reason` is one of REASONS' keys."""

    @property
    def message(self) -> str:
        """The default English wording of the reason."""
        return REASONS[self.reason]


def _public_key(spki: bytes) -> ec.EllipticCurvePublicKey:
    """A P-256 public key from SubjectPublicKeyInfo DER in its one canonical (uncompressed) form."""
    try:
        key = serialization.load_der_public_key(spki)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"unreadable public key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValueError("trust list keys must be P-256")
    if _spki(key) != spki:
        raise ValueError("public key is not in canonical SubjectPublicKeyInfo form")
    return key


def _spki(public_key: ec.EllipticCurvePublicKey) -> bytes:
    """SubjectPublicKeyInfo DER of a public key."""
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _b64url(data: bytes) -> str:
    """Base64url without padding (JWK coordinates)."""
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def public_jwk(public_key: ec.EllipticCurvePublicKey) -> dict:
    """A P-256 public key as a JWK, the form WebCrypto imports."""
    numbers = public_key.public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64url(numbers.x.to_bytes(32, "big")),
        "y": _b64url(numbers.y.to_bytes(32, "big")),
    }


@dataclass(frozen=True)
class TrustedKey:
    """One centre signing key: receipts it signed count when issued inside its window."""

    centre: str
    spki: bytes
    not_before_at: dt.datetime
    not_after_at: dt.datetime
    kid: bytes = field(init=False)
    public_key: ec.EllipticCurvePublicKey = field(init=False, compare=False, repr=False)

    def __post_init__(self):
        """Load the key once, derive its kid, check the window."""
        object.__setattr__(self, "public_key", _public_key(self.spki))
        object.__setattr__(self, "kid", key_id(self.public_key))
        for name in ("not_before_at", "not_after_at"):
            object.__setattr__(self, name, receipts.utc_seconds(getattr(self, name), name))
        if self.not_after_at < self.not_before_at:
            raise ValueError("a key's window ends before it starts")
        if not receipts.is_code(self.centre):
            raise ValueError("centre must be a centre code")

    @classmethod
    def from_public_key(cls, centre: str, public_key: ec.EllipticCurvePublicKey,
                        not_before_at: dt.datetime, not_after_at: dt.datetime) -> TrustedKey:
        """Enrol a centre's public key (as exported by kiosk.keys) for a signing window."""
        return cls(centre, _spki(public_key), not_before_at, not_after_at)

    def to_json(self) -> dict:
        """JSON form with the key as a JWK, as the browser verifier reads it."""
        return {
            "kid": self.kid.hex(),
            "centre": self.centre,
            "jwk": public_jwk(self.public_key),
            "not_before_at": iso(self.not_before_at),
            "not_after_at": iso(self.not_after_at),
        }


@dataclass(frozen=True)
class TrustList:
    """Everything a verifier trusts, as published by central under one sequence number."""

    sequence: int
    issued_at: dt.datetime
    verify_host: str
    keys: tuple[TrustedKey, ...] = ()
    revoked_kids: frozenset[bytes] = frozenset()
    revoked_receipt_ids: frozenset[str] = frozenset()

    def __post_init__(self):
        """Validate and normalise (host upper case, collections immutable, times whole seconds)."""
        if type(self.sequence) is not int or not 0 <= self.sequence <= MAX_SEQUENCE:
            raise ValueError("sequence must be a non-negative integer")
        object.__setattr__(self, "issued_at", receipts.utc_seconds(self.issued_at, "issued_at"))
        object.__setattr__(self, "verify_host", receipts.normalise_host(self.verify_host))
        object.__setattr__(self, "keys", tuple(sorted(self.keys, key=lambda k: (k.kid, k.spki))))
        object.__setattr__(self, "revoked_kids", frozenset(self.revoked_kids))
        object.__setattr__(self, "revoked_receipt_ids", frozenset(self.revoked_receipt_ids))
        if any(type(k) is not bytes or len(k) != receipts.KID_LENGTH for k in self.revoked_kids):
            raise ValueError("revoked key ids are 8 bytes each")
        for rid in self.revoked_receipt_ids:
            receipts.ulid_to_bytes(rid)

    def keys_for(self, kid: bytes) -> list[TrustedKey]:
        """Every listed key with this kid (a collision of 64-bit ids is unlikely, not impossible)."""
        return [key for key in self.keys if key.kid == kid]

    def is_key_revoked(self, kid: bytes) -> bool:
        """True when the key id is on the revoked list."""
        return kid in self.revoked_kids

    def is_receipt_revoked(self, receipt_id: str) -> bool:
        """True when the receipt id is on the revoked list."""
        return receipt_id in self.revoked_receipt_ids

    def to_json(self) -> dict:
        """JSON form for the browser verifier (keys as JWK, ids in hex / ULID text, sorted)."""
        return {
            "version": TRUST_LIST_VERSION,
            "sequence": self.sequence,
            "issued_at": iso(self.issued_at),
            "verify_host": self.verify_host,
            "keys": [key.to_json() for key in self.keys],
            "revoked_keys": sorted(kid.hex() for kid in self.revoked_kids),
            "revoked_receipts": sorted(self.revoked_receipt_ids),
        }


def encode_trust_list(trust_list: TrustList) -> bytes:
    """The canonical CBOR payload of a trust list (lists sorted, so equal lists give equal bytes)."""
    return cbor2.dumps(
        {
            "version": TRUST_LIST_VERSION,
            "sequence": trust_list.sequence,
            "issued_at": epoch(trust_list.issued_at),
            "verify_host": trust_list.verify_host,
            "keys": [
                {
                    "kid": key.kid,
                    "centre": key.centre,
                    "public_key": key.spki,
                    "not_before_at": epoch(key.not_before_at),
                    "not_after_at": epoch(key.not_after_at),
                }
                for key in trust_list.keys
            ],
            "revoked_keys": sorted(trust_list.revoked_kids),
            "revoked_receipts": sorted(receipts.ulid_to_bytes(rid) for rid in trust_list.revoked_receipt_ids),
        },
        canonical=True,
    )


_TOP_FIELDS = {"version", "sequence", "issued_at", "verify_host", "keys", "revoked_keys", "revoked_receipts"}
_KEY_FIELDS = {"kid", "centre", "public_key", "not_before_at", "not_after_at"}


def decode_trust_list(data: bytes) -> TrustList:
    """A TrustList from canonical payload bytes; TrustListError('bad_payload') for anything else."""
    try:
        body = receipts.strict_loads(data)
        if type(body) is not dict or set(body) != _TOP_FIELDS:
            raise ValueError("trust list fields differ from version 1")
        if type(body["version"]) is not int or body["version"] != TRUST_LIST_VERSION:
            raise ValueError("unknown trust list version")
        if type(body["verify_host"]) is not str:
            raise ValueError("verify_host must be text")
        keys = []
        for entry in _list(body["keys"]):
            if type(entry) is not dict or set(entry) != _KEY_FIELDS or type(entry["public_key"]) is not bytes:
                raise ValueError("key entry fields differ from version 1")
            key = TrustedKey(
                entry["centre"],
                entry["public_key"],
                from_epoch(entry["not_before_at"], "not_before_at"),
                from_epoch(entry["not_after_at"], "not_after_at"),
            )
            if entry["kid"] != key.kid:
                raise ValueError("a key's kid does not match its public key")
            keys.append(key)
        return TrustList(
            sequence=body["sequence"],
            issued_at=from_epoch(body["issued_at"], "issued_at"),
            verify_host=body["verify_host"],
            keys=tuple(keys),
            revoked_kids=frozenset(_list(body["revoked_keys"])),
            revoked_receipt_ids=frozenset(receipts.ulid_from_bytes(rid) for rid in _list(body["revoked_receipts"])),
        )
    except (ReceiptError, ValueError, TypeError) as exc:
        raise TrustListError("bad_payload", str(exc)) from None


def _list(value: object) -> list:
    """`value` when it is a CBOR array; ValueError otherwise."""
    if type(value) is not list:
        raise ValueError("expected an array")
    return value


def seal_trust_list(trust_list: TrustList, root_private_key: ec.EllipticCurvePrivateKey) -> bytes:
    """The trust list signed by a root key: COSE_Sign1 ES256 over its canonical CBOR."""
    return receipts.cose_sign(encode_trust_list(trust_list), root_private_key, TRUST_LIST_AAD)


def open_trust_list(data: bytes, root_keys: Iterable[ec.EllipticCurvePublicKey], *,
                    accepted_sequence: int | None = None) -> TrustList:
    """Verify a signed trust list under the pinned root keys and refuse a rollback.

    `accepted_sequence` is the sequence of the list already in use; a list with a lower one is
    refused (an equal one is the same list pulled again)."""
    if type(data) is not bytes or len(data) > MAX_TRUST_LIST_BYTES:
        raise TrustListError("malformed", "not bytes of trust-list size")
    try:
        message = receipts.cose_parse(data)
    except ReceiptError as exc:
        raise TrustListError(exc.reason, exc.detail) from None
    roots = [key for key in root_keys if key_id(key) == message.kid]
    if not roots:
        raise TrustListError("unknown_root", f"kid {message.kid.hex()}")
    if not any(message.verify(root, TRUST_LIST_AAD) for root in roots):
        raise TrustListError("bad_signature")
    trust_list = decode_trust_list(message.payload)
    if accepted_sequence is not None and trust_list.sequence < accepted_sequence:
        raise TrustListError("rollback", f"sequence {trust_list.sequence} < accepted {accepted_sequence}")
    return trust_list
