"""Signed receipts: the payload, its COSE_Sign1 (ES256) envelope, the QR text and the offline verifier.

Wire format (docs/receipts.md has the full table):

    QR text    = "HTTPS://" VERIFY-HOST "/R#" BASE32-NO-PADDING(COSE_Sign1)
    COSE_Sign1 = tag 18 [ bstr{1: -7, 4: kid}, {}, bstr(payload map), r || s ]
    payload    = canonical CBOR map with small integer keys (see `Key`)

Everything read from a QR is hostile: the verifier accepts exactly one encoding of each receipt
(canonical CBOR, canonical Base32, low-S signature), so no edited text can verify as valid.
"""
from __future__ import annotations

import base64
import datetime as dt
import enum
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

if TYPE_CHECKING:
    from kiosk.domain.trustlist import TrustList, TrustedKey

UTC = dt.timezone.utc

SCHEMA_VERSION = 1
ALG_ES256 = -7
COSE_SIGN1_TAG = 18
HEADER_ALG = 1
HEADER_KID = 4
KID_LENGTH = 8
SIGNATURE_LENGTH = 64
# External AAD separates the two things signed with this envelope: a trust list can never be
# passed off as a receipt (or the other way round) even if one key were misused for both.
RECEIPT_AAD = b"receipt-v1"
# A real receipt is ~300 characters; the cap bounds the work done on hostile input.
MAX_QR_TEXT_LENGTH = 600
QR_PATH = "/R#"

_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_HALF_ORDER = _P256_ORDER // 2
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CODE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
_ULID_RE = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}")
_HOST_RE = re.compile(r"[A-Z0-9](?:[A-Z0-9-]{0,61}[A-Z0-9])?(?:\.[A-Z0-9](?:[A-Z0-9-]{0,61}[A-Z0-9])?)*(?::[0-9]{1,5})?")
_ANY_PREFIX_RE = re.compile(r"HTTPS://[^/#]{1,253}/R#")
_BASE32_RE = re.compile(r"[A-Z2-7]*")
_BASE32_DIGITS = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", "0123456789abcdefghijklmnopqrstuv")
_CROCKFORD_DIGITS = str.maketrans(_CROCKFORD, "0123456789abcdefghijklmnopqrstuv")
# Epoch seconds must fit a datetime (year 9999) and a JavaScript number exactly.
MAX_EPOCH = 253402300799
MAX_FEE_IQD = 10**12
CITIZEN_REF_LENGTHS = range(8, 33)


class Key(enum.IntEnum):
    """Integer keys of the receipt payload map (one byte each on the wire)."""

    VERSION = 0
    RECEIPT_ID = 1
    CENTRE = 2
    SERVICE = 3
    TICKET = 4
    ISSUED_AT = 5
    DUE_AT = 6
    FEE_IQD = 7
    STATUS = 8
    CITIZEN_REF = 9
    EXPIRES_AT = 10


class ReceiptStatus(enum.IntEnum):
    """Status of the request when the receipt was printed (live status is asked online)."""

    OPEN = 0
    COMPLETED = 1
    REJECTED = 2
    REFERRED = 3

    @property
    def label(self) -> str:
        """Lower-case name used in JSON and on screens."""
        return self.name.lower()


class Outcome(str, enum.Enum):
    """The four answers a verifier gives."""

    VALID = "valid"
    INVALID = "invalid"
    EXPIRED = "expired"
    REVOKED = "revoked"


# Reason codes are stable keys (screens translate them); the English text is the default wording.
REASONS = {
    "ok": "Authentic receipt, signed by a centre key the ministry trusts.",
    "malformed": "This is not a receipt code, or it was damaged or typed wrongly.",
    "wrong_host": "This code names a verification site other than the one the trust list names.",
    "unsupported_alg": "The code asks for a signature algorithm that receipts never use.",
    "unknown_key": "The code was signed by a key the trust list does not know (a sync may be needed).",
    "bad_signature": "The signature does not match the contents: the receipt was altered or forged.",
    "bad_payload": "The signed contents are not a receipt of a known version.",
    "key_not_valid": "The signing key was not in service on the date the receipt says it was issued.",
    "centre_mismatch": "The receipt names a centre other than the one its signing key belongs to.",
    "key_revoked": "The key that signed this receipt has been revoked: ask the centre for a new receipt.",
    "receipt_revoked": "This receipt has been revoked.",
    "receipt_expired": "This receipt is past its verification expiry date.",
}


class VerificationError(ValueError):
    """A signed object that cannot be accepted; `reason` is a stable code screens translate."""

    def __init__(self, reason: str, detail: str = ""):
        """Keep the reason code and a detail for developers (never shown to citizens)."""
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class ReceiptError(VerificationError):
    """A receipt or envelope that cannot be accepted; `reason` is one of REASONS' keys."""


def utc_seconds(value: dt.datetime, name: str) -> dt.datetime:
    """An aware datetime converted to UTC and truncated to whole seconds (the wire precision)."""
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    value = value.astimezone(UTC).replace(microsecond=0)
    if not 0 <= int(value.timestamp()) <= MAX_EPOCH:
        raise ValueError(f"{name} is out of range")
    return value


def epoch(value: dt.datetime) -> int:
    """Whole epoch seconds of an aware datetime."""
    return int(value.timestamp())


def from_epoch(value: object, name: str) -> dt.datetime:
    """An aware UTC datetime from wire epoch seconds, refusing anything but an in-range integer."""
    if type(value) is not int or not 0 <= value <= MAX_EPOCH:
        raise ValueError(f"{name} must be epoch seconds")
    return dt.datetime.fromtimestamp(value, UTC)


def iso(value: dt.datetime) -> str:
    """ISO 8601 UTC with milliseconds and a Z, as the JSON API and JavaScript's toISOString write."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def ulid_to_bytes(ulid: str) -> bytes:
    """The 16 bytes of a ULID given as 26 Crockford base32 characters."""
    if not isinstance(ulid, str) or not _ULID_RE.fullmatch(ulid):
        raise ValueError("receipt_id must be a ULID (26 upper-case Crockford base32 characters)")
    return int(ulid.translate(_CROCKFORD_DIGITS), 32).to_bytes(16, "big")


def ulid_from_bytes(data: bytes) -> str:
    """The 26-character ULID text of 16 bytes."""
    if type(data) is not bytes or len(data) != 16:
        raise ValueError("a ULID is 16 bytes")
    value = int.from_bytes(data, "big")
    return "".join(_CROCKFORD[(value >> (5 * i)) & 31] for i in reversed(range(26)))


def is_code(value: object) -> bool:
    """True for a centre, service or ticket code: 1-32 of A-Z, a-z, 0-9, '.', '_', '-'."""
    return isinstance(value, str) and _CODE_RE.fullmatch(value) is not None


def citizen_ref_hash(pepper: bytes, reference: str, receipt_id: str, length: int = 8) -> bytes:
    """Keyed hash of a citizen reference bound to one receipt, so two receipts are unlinkable."""
    if len(pepper) < 16:
        raise ValueError("the pepper must be at least 16 bytes")
    if length not in CITIZEN_REF_LENGTHS:
        raise ValueError("citizen reference hash length must be 8..32 bytes")
    message = reference.encode("utf-8") + b"\x00" + receipt_id.encode("ascii")
    return hmac.new(pepper, message, hashlib.sha256).digest()[:length]


@dataclass(frozen=True)
class Receipt:
    """What a receipt proves: who issued it, for what, when, at which official fee, due when."""

    receipt_id: str
    centre: str
    service: str
    ticket: str
    issued_at: dt.datetime
    due_at: dt.datetime
    fee_iqd: int
    status: ReceiptStatus
    citizen_ref: bytes
    expires_at: dt.datetime

    def __post_init__(self):
        """Validate every field and normalise times to whole UTC seconds."""
        ulid_to_bytes(self.receipt_id)
        for name in ("centre", "service", "ticket"):
            value = getattr(self, name)
            if not is_code(value):
                raise ValueError(f"{name} must be 1-32 characters of A-Z, a-z, 0-9, '.', '_' or '-'")
        for name in ("issued_at", "due_at", "expires_at"):
            object.__setattr__(self, name, utc_seconds(getattr(self, name), name))
        if self.due_at < self.issued_at:
            raise ValueError("due_at is before issued_at")
        if self.expires_at <= self.issued_at:
            raise ValueError("expires_at must be after issued_at")
        if type(self.fee_iqd) is not int or not 0 <= self.fee_iqd <= MAX_FEE_IQD:
            raise ValueError("fee_iqd must be a whole number of dinars, 0 or more")
        object.__setattr__(self, "status", ReceiptStatus(self.status))
        if type(self.citizen_ref) is not bytes or len(self.citizen_ref) not in CITIZEN_REF_LENGTHS:
            raise ValueError("citizen_ref must be 8-32 bytes (a keyed hash, never the reference itself)")

    def to_json(self) -> dict:
        """JSON form shared with the browser verifier (times ISO UTC, citizen_ref in hex)."""
        return {
            "receipt_id": self.receipt_id,
            "centre": self.centre,
            "service": self.service,
            "ticket": self.ticket,
            "issued_at": iso(self.issued_at),
            "due_at": iso(self.due_at),
            "fee_iqd": self.fee_iqd,
            "status": self.status.label,
            "citizen_ref": self.citizen_ref.hex(),
            "expires_at": iso(self.expires_at),
        }


def encode_payload(receipt: Receipt) -> bytes:
    """The canonical CBOR payload of a receipt."""
    return cbor2.dumps(
        {
            Key.VERSION: SCHEMA_VERSION,
            Key.RECEIPT_ID: ulid_to_bytes(receipt.receipt_id),
            Key.CENTRE: receipt.centre,
            Key.SERVICE: receipt.service,
            Key.TICKET: receipt.ticket,
            Key.ISSUED_AT: epoch(receipt.issued_at),
            Key.DUE_AT: epoch(receipt.due_at),
            Key.FEE_IQD: receipt.fee_iqd,
            Key.STATUS: int(receipt.status),
            Key.CITIZEN_REF: receipt.citizen_ref,
            Key.EXPIRES_AT: epoch(receipt.expires_at),
        },
        canonical=True,
    )


def decode_payload(data: bytes) -> Receipt:
    """A Receipt from canonical payload bytes; ReceiptError('bad_payload') for anything else."""
    try:
        fields = strict_loads(data)
    except ReceiptError as exc:
        raise ReceiptError("bad_payload", exc.detail) from None
    if type(fields) is not dict or set(fields) != set(Key) or any(type(k) is not int for k in fields):
        raise ReceiptError("bad_payload", "payload keys differ from schema version 1")
    if fields[Key.VERSION] != SCHEMA_VERSION or type(fields[Key.VERSION]) is not int:
        raise ReceiptError("bad_payload", "unknown schema version")
    try:
        status = fields[Key.STATUS]
        if type(status) is not int or status not in ReceiptStatus._value2member_map_:
            raise ValueError("unknown status")
        return Receipt(
            receipt_id=ulid_from_bytes(fields[Key.RECEIPT_ID]),
            centre=fields[Key.CENTRE],
            service=fields[Key.SERVICE],
            ticket=fields[Key.TICKET],
            issued_at=from_epoch(fields[Key.ISSUED_AT], "issued_at"),
            due_at=from_epoch(fields[Key.DUE_AT], "due_at"),
            fee_iqd=fields[Key.FEE_IQD],
            status=ReceiptStatus(status),
            citizen_ref=fields[Key.CITIZEN_REF],
            expires_at=from_epoch(fields[Key.EXPIRES_AT], "expires_at"),
        )
    except (ValueError, TypeError) as exc:
        raise ReceiptError("bad_payload", str(exc)) from None


# --- COSE_Sign1 envelope (shared with trust lists) ---------------------------------------------

_CBOR_INT_RANGE = range(-(2**64), 2**64)


def strict_loads(data: bytes) -> object:
    """Decode CBOR in canonical form using only the types receipts use; ReceiptError('malformed') otherwise.

    Allowed: integers, byte and text strings, arrays, maps, and tag 18 at the top. The browser
    verifier's decoder accepts exactly the same subset, so both reach the same verdict."""
    try:
        value = cbor2.loads(data, allow_indefinite=False, allow_duplicate_keys=False, max_depth=16)
        canonical = cbor2.dumps(value, canonical=True)
    except Exception as exc:  # noqa: BLE001 - any decoder failure means a malformed input
        raise ReceiptError("malformed", f"CBOR: {exc.__class__.__name__}") from None
    if canonical != data:
        raise ReceiptError("malformed", "CBOR is not in canonical form")
    _check_subset(value, top=True)
    return value


def _check_subset(value: object, top: bool = False) -> None:
    """Refuse floats, booleans, null, other tags and bignums (cbor2 turns some tags into plain types)."""
    kind = type(value)
    if kind is int:
        if value not in _CBOR_INT_RANGE:
            raise ReceiptError("malformed", "bignum")
    elif kind in (bytes, str):
        return
    elif kind in (list, tuple):
        for item in value:
            _check_subset(item)
    elif kind in (dict, cbor2.frozendict):
        for key, item in value.items():
            _check_subset(key)
            _check_subset(item)
    elif kind is cbor2.CBORTag and top and value.tag == COSE_SIGN1_TAG:
        _check_subset(value.value)
    else:
        raise ReceiptError("malformed", f"CBOR {kind.__name__} is not used here")


def key_id(public_key: ec.EllipticCurvePublicKey) -> bytes:
    """The 8-byte key id: the start of SHA-256 over the SubjectPublicKeyInfo (as HCERT does)."""
    spki = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).digest()[:KID_LENGTH]


def _sig_structure(protected: bytes, aad: bytes, payload: bytes) -> bytes:
    """The bytes COSE signs: Sig_structure = ["Signature1", protected, external_aad, payload]."""
    return cbor2.dumps(["Signature1", protected, aad, payload])


def cose_sign(payload: bytes, private_key: ec.EllipticCurvePrivateKey, aad: bytes, kid: bytes | None = None) -> bytes:
    """A tagged COSE_Sign1 (ES256, deterministic, low-S) over `payload` with `aad` as external AAD."""
    if not isinstance(private_key, ec.EllipticCurvePrivateKey) or private_key.curve.name != "secp256r1":
        raise ValueError("receipts are signed with a P-256 key")
    kid = key_id(private_key.public_key()) if kid is None else kid
    protected = cbor2.dumps({HEADER_ALG: ALG_ES256, HEADER_KID: kid}, canonical=True)
    der = private_key.sign(
        _sig_structure(protected, aad, payload), ec.ECDSA(hashes.SHA256(), deterministic_signing=True)
    )
    r, s = decode_dss_signature(der)
    # low-S form: (r, n - s) would verify too, and we want exactly one valid text per receipt
    s = min(s, _P256_ORDER - s)
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return cbor2.dumps(cbor2.CBORTag(COSE_SIGN1_TAG, [protected, {}, payload, signature]), canonical=True)


@dataclass(frozen=True)
class Sign1:
    """A structurally checked COSE_Sign1 whose signature has not been verified yet."""

    protected: bytes
    kid: bytes
    payload: bytes
    signature: bytes

    def verify(self, public_key: ec.EllipticCurvePublicKey, aad: bytes) -> bool:
        """True when the signature is the low-S ES256 signature of `public_key` over this message."""
        r = int.from_bytes(self.signature[:32], "big")
        s = int.from_bytes(self.signature[32:], "big")
        if not (0 < r < _P256_ORDER and 0 < s <= _HALF_ORDER):
            return False
        try:
            public_key.verify(
                encode_dss_signature(r, s),
                _sig_structure(self.protected, aad, self.payload),
                ec.ECDSA(hashes.SHA256()),
            )
        except InvalidSignature:
            return False
        return True


def cose_parse(data: bytes) -> Sign1:
    """Check the envelope's shape and header: ES256 only, kid only in the protected header."""
    message = strict_loads(data)
    if type(message) is not cbor2.CBORTag or message.tag != COSE_SIGN1_TAG:
        raise ReceiptError("malformed", "not a tagged COSE_Sign1")
    items = message.value
    # cbor2 decodes a tag's content as immutable (tuple, frozendict)
    if type(items) not in (list, tuple) or len(items) != 4:
        raise ReceiptError("malformed", "COSE_Sign1 must have 4 items")
    protected, unprotected, payload, signature = items
    if type(unprotected) not in (dict, cbor2.frozendict) \
            or any(type(item) is not bytes for item in (protected, payload, signature)):
        raise ReceiptError("malformed", "COSE_Sign1 item types")
    if any(type(k) is int and k == HEADER_ALG for k in unprotected):
        # an algorithm must be covered by the signature; one in the unprotected bucket is an attack
        raise ReceiptError("unsupported_alg", "alg in the unprotected header")
    if unprotected:
        raise ReceiptError("malformed", "unexpected unprotected header")
    header = strict_loads(protected)
    if type(header) is not dict:
        raise ReceiptError("malformed", "protected header is not a map")
    alg = header.get(HEADER_ALG)
    if type(alg) is not int or alg != ALG_ES256:
        raise ReceiptError("unsupported_alg", f"alg {alg!r}")
    kid = header.get(HEADER_KID)
    if set(header) != {HEADER_ALG, HEADER_KID} or any(type(k) is not int for k in header) \
            or type(kid) is not bytes or len(kid) != KID_LENGTH:
        raise ReceiptError("malformed", "protected header must be exactly {1: -7, 4: kid}")
    if len(signature) != SIGNATURE_LENGTH:
        raise ReceiptError("malformed", "signature is not 64 bytes")
    return Sign1(protected=protected, kid=kid, payload=payload, signature=signature)


# --- QR text ------------------------------------------------------------------------------------

def normalise_host(verify_host: str) -> str:
    """The verification host in upper case (QR alphanumeric mode), validated."""
    host = verify_host.upper() if isinstance(verify_host, str) else ""
    if not _HOST_RE.fullmatch(host) or len(host) > 253:
        raise ValueError(f"not a host name: {verify_host!r}")
    return host


def qr_prefix(verify_host: str) -> str:
    """`HTTPS://<HOST>/R#`, the fixed start of every receipt QR text for that host."""
    return f"HTTPS://{normalise_host(verify_host)}{QR_PATH}"


def qr_text(signed: bytes, verify_host: str) -> str:
    """The QR text of a signed receipt: upper case so the whole URL but '#' is QR alphanumeric."""
    return qr_prefix(verify_host) + base64.b32encode(signed).decode("ascii").rstrip("=")


def parse_qr_text(text: str, verify_host: str) -> bytes:
    """The COSE bytes inside a receipt QR text for `verify_host`; ReceiptError otherwise."""
    if not isinstance(text, str) or len(text) > MAX_QR_TEXT_LENGTH:
        raise ReceiptError("malformed", "not a string of receipt length")
    prefix = qr_prefix(verify_host)
    if not text.startswith(prefix):
        if _ANY_PREFIX_RE.match(text):
            raise ReceiptError("wrong_host", "prefix names another host")
        raise ReceiptError("malformed", "no receipt prefix")
    return b32decode_canonical(text[len(prefix):])


def b32decode_canonical(encoded: str) -> bytes:
    """Bytes of unpadded upper-case Base32 in its one canonical spelling; ReceiptError otherwise.

    The standard decoder ignores the unused low bits of the last character (two texts, one
    receipt) and is pure Python; reading the text as one base-32 integer checks both and is faster."""
    if not _BASE32_RE.fullmatch(encoded) or len(encoded) % 8 in (1, 3, 6):
        raise ReceiptError("malformed", "not Base32")
    spare_bits = len(encoded) * 5 % 8
    value = int(encoded.translate(_BASE32_DIGITS) or "0", 32)
    if value & ((1 << spare_bits) - 1):
        raise ReceiptError("malformed", "Base32 is not canonical")
    return (value >> spare_bits).to_bytes(len(encoded) * 5 // 8, "big")


def sign_receipt(receipt: Receipt, private_key: ec.EllipticCurvePrivateKey, kid: bytes | None = None) -> bytes:
    """The COSE_Sign1 bytes of a receipt signed by a centre key."""
    return cose_sign(encode_payload(receipt), private_key, RECEIPT_AAD, kid)


def issue(receipt: Receipt, private_key: ec.EllipticCurvePrivateKey, verify_host: str,
          kid: bytes | None = None) -> str:
    """Sign a receipt and return the text to put in its QR code."""
    return qr_text(sign_receipt(receipt, private_key, kid), verify_host)


# --- verification -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Verdict:
    """A verifier's answer: the outcome, a reason code, and the contents when the signature is good."""

    outcome: Outcome
    reason: str
    receipt: Receipt | None = None
    kid: bytes | None = None

    @property
    def message(self) -> str:
        """The default English wording of the reason."""
        return REASONS[self.reason]

    @property
    def is_valid(self) -> bool:
        """True only for an authentic, current, unrevoked receipt."""
        return self.outcome is Outcome.VALID

    def to_json(self) -> dict:
        """JSON form, identical to what the browser verifier returns for the same input."""
        return {
            "outcome": self.outcome.value,
            "reason": self.reason,
            "message": self.message,
            "kid": self.kid.hex() if self.kid is not None else None,
            "receipt": self.receipt.to_json() if self.receipt is not None else None,
        }


def verify(qr_text: str, trust_list: TrustList, now: dt.datetime) -> Verdict:
    """Verify a scanned receipt offline against an accepted trust list at time `now` (aware)."""
    if now.tzinfo is None:
        raise ValueError("now must be a timezone-aware datetime (from the app clock)")
    try:
        message = cose_parse(parse_qr_text(qr_text, trust_list.verify_host))
    except ReceiptError as exc:
        return Verdict(Outcome.INVALID, exc.reason)
    kid = message.kid
    candidates = trust_list.keys_for(kid)
    if not candidates:
        if trust_list.is_key_revoked(kid):
            # the key is gone from the list, so the signature cannot be checked; the answer is the same
            return Verdict(Outcome.REVOKED, "key_revoked", kid=kid)
        return Verdict(Outcome.INVALID, "unknown_key", kid=kid)
    signer = _first_signer(message, candidates)
    if signer is None:
        return Verdict(Outcome.INVALID, "bad_signature", kid=kid)
    # only now, with the signature good, is the content looked at (HCERT's rule)
    try:
        receipt = decode_payload(message.payload)
    except ReceiptError as exc:
        return Verdict(Outcome.INVALID, exc.reason, kid=kid)
    if not signer.not_before_at <= receipt.issued_at <= signer.not_after_at:
        return Verdict(Outcome.INVALID, "key_not_valid", receipt, kid)
    if receipt.centre != signer.centre:
        return Verdict(Outcome.INVALID, "centre_mismatch", receipt, kid)
    if trust_list.is_key_revoked(kid):
        return Verdict(Outcome.REVOKED, "key_revoked", receipt, kid)
    if trust_list.is_receipt_revoked(receipt.receipt_id):
        return Verdict(Outcome.REVOKED, "receipt_revoked", receipt, kid)
    if now >= receipt.expires_at:
        return Verdict(Outcome.EXPIRED, "receipt_expired", receipt, kid)
    return Verdict(Outcome.VALID, "ok", receipt, kid)


def _first_signer(message: Sign1, candidates: list[TrustedKey]) -> TrustedKey | None:
    """The listed key (of those sharing the kid) whose signature verifies, if any."""
    for candidate in candidates:
        if message.verify(candidate.public_key, RECEIPT_AAD):
            return candidate
    return None
