"""The sync protocol shared by the kiosk agent and the central server (version 1).

Push: the agent sends the kiosk's journal commits after the last acknowledged sequence, in batches
bounded by count and bytes, gzip-compressed, as `PushRequest`. Central applies them idempotently
and answers with the device's new cursor (`acked_seq`); a batch that starts after the cursor gets a
409 `sequence_gap` naming the sequence central expects.

Pull: the agent asks for central's configuration changes for its centre after its pull cursor
(`since`) and writes them, tombstones included, into the kiosk's inbox; the kiosk applies each
inbox file in one atomic commit.

Every request except enrolment is signed with the device's Ed25519 key over the method, path and
query, a digest of the body as sent, a timestamp, a nonce and the device's own clock reading.
Central stores only public keys, so a copy of its database cannot impersonate a kiosk.
"""
from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import json
import os
import re
import zlib
from typing import Annotated, Any, Literal

import pydantic_core
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import (BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter, ValidationError,
                      field_validator)
from typing_extensions import NotRequired, TypedDict

VERSION = 1
API_PREFIX = "/api/sync/v1"

# Kiosk-authoritative tables, pushed to central. A new table that the kiosk should report goes
# here; central stores any table it is not itself authoritative for without schema changes.
# `checkpoints` holds the signed heads of the audit chain written at day close (docs/sync.md).
PUSH_TABLES = frozenset({"tickets", "requests", "receipts", "audit", "feedback", "checkpoints"})
# Central-authoritative tables, pulled by the kiosk (a kiosk may never push these). `appointments`
# holds the bookings central took for the centre (docs/appointments.md).
PULL_TABLES = frozenset({"services", "counters", "staff", "priority_classes", "settings", "appointments"})
ORIGIN_CENTRAL = "central"
# Commits that move a closed day's finished records from the kiosk's live store into its archive:
# the records stay what they were, so central must not delete them.
ORIGIN_ARCHIVE = "archive"
# Commits whose changes are never pushed (they travel as empty stubs, keeping the sequence whole).
UNPUSHED_ORIGINS = frozenset({ORIGIN_CENTRAL, ORIGIN_ARCHIVE})

MAX_BODY_BYTES = 8 * 1024 * 1024        # a request body as sent (compressed)
MAX_INFLATED_BYTES = 32 * 1024 * 1024   # the same body after gunzip (guards against gzip bombs)
MAX_PULL_LIMIT = 2000
MAX_SEQ = 2 ** 63 - 1                    # sequences and cursors are BIGINT at central
DEFAULT_BATCH_COMMITS = 500
DEFAULT_BATCH_BYTES = 1_000_000
MAX_SKEW_S = 300                        # signed timestamps further from central's clock are refused

H_DEVICE = "Sync-Device"
H_TIMESTAMP = "Sync-Timestamp"
H_NONCE = "Sync-Nonce"
H_DEVICE_TIME = "Sync-Device-Time"
H_SIGNATURE = "Sync-Signature"
H_DIGEST = "Content-Digest"

TABLE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
SIGNING_LABEL = "kiosk-sync/1"


class ProtocolError(ValueError):
    """A message does not follow the protocol; the text says what is wrong."""


# -- encoding ------------------------------------------------------------------------------------

def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON, the one serialisation on the wire."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def gzip_json(obj: Any, *, level: int = 3) -> bytes:
    """JSON then gzip; on journal batches level 3 is ~10 % larger than level 5 for a fifth of the CPU.

    pydantic_core's encoder writes the same bytes as `dumps` about four times faster; its input
    here comes from the journal, which cannot hold NaN or infinities (the only difference).
    """
    return gzip.compress(pydantic_core.to_json(obj), compresslevel=level, mtime=0)


def inflate(body: bytes, *, limit: int = MAX_INFLATED_BYTES) -> bytes:
    """gunzip `body`, refusing output beyond `limit` bytes and anything that is not one gzip stream."""
    decoder = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = decoder.decompress(body, limit + 1)
    except zlib.error as exc:
        raise ProtocolError(f"the body is not valid gzip: {exc}") from None
    if len(out) > limit or decoder.unconsumed_tail:
        raise ProtocolError(f"the body inflates beyond {limit} bytes")
    if not decoder.eof:
        raise ProtocolError("the gzip body is truncated")
    if decoder.unused_data:
        # a second gzip member or bytes after the stream: what was signed is not what would be read
        raise ProtocolError("the gzip body has data after its end")
    return out


def b64url(data: bytes) -> str:
    """Base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    """Inverse of `b64url`; raises ProtocolError on anything else."""
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (ValueError, TypeError) as exc:
        raise ProtocolError(f"not base64url: {exc}") from None


def content_digest(body: bytes) -> str:
    """RFC 9530 Content-Digest value of `body` (SHA-256)."""
    return "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii") + ":"


def utc_iso(moment: dt.datetime) -> str:
    """ISO 8601 UTC with milliseconds and a Z."""
    moment = moment.astimezone(dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_utc(text: str) -> dt.datetime:
    """Parse an ISO 8601 time that carries a zone; raises ProtocolError otherwise."""
    try:
        value = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise ProtocolError(f"not an ISO 8601 time: {text!r}") from None
    if value.tzinfo is None:
        raise ProtocolError(f"time without a zone: {text!r}")
    return value.astimezone(dt.timezone.utc)


# -- keys and signatures -------------------------------------------------------------------------

def new_private_key() -> Ed25519PrivateKey:
    """A fresh device key."""
    return Ed25519PrivateKey.generate()


def private_key_bytes(key: Ed25519PrivateKey) -> bytes:
    """The 32 raw bytes of a private key."""
    from cryptography.hazmat.primitives import serialization
    return key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())


def public_key_text(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The raw public key as base64url (what central stores)."""
    from cryptography.hazmat.primitives import serialization
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return b64url(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def load_public_key(text: str) -> Ed25519PublicKey:
    """Parse `public_key_text` output; ProtocolError when it is not a 32-byte Ed25519 key."""
    raw = unb64url(text)
    if len(raw) != 32:
        raise ProtocolError("an Ed25519 public key has 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def key_id(public_text: str) -> str:
    """Short fingerprint of a public key (shown to operators, never secret)."""
    return hashlib.sha256(public_text.encode("ascii")).hexdigest()[:16]


def signing_string(*, method: str, path: str, device_id: str, timestamp: str, nonce: str,
                   device_time: str, digest: str, content_type: str, content_encoding: str) -> bytes:
    """The exact bytes both ends sign and verify: every field that gives a request its meaning."""
    fields = [SIGNING_LABEL, method.upper(), path, device_id, timestamp, nonce, device_time, digest,
              content_type, content_encoding]
    if any("\n" in f for f in fields):
        raise ProtocolError("a signed field contains a newline")
    return "\n".join(fields).encode("utf-8")


def sign_headers(key: Ed25519PrivateKey, *, device_id: str, method: str, path: str, body: bytes,
                 content_type: str = "", content_encoding: str = "", now_s: int,
                 device_time: str) -> dict[str, str]:
    """Headers that authenticate one request; `now_s` is the device clock corrected by its offset."""
    nonce = b64url(os.urandom(16))
    digest = content_digest(body)
    timestamp = str(int(now_s))
    message = signing_string(method=method, path=path, device_id=device_id, timestamp=timestamp,
                             nonce=nonce, device_time=device_time, digest=digest,
                             content_type=content_type, content_encoding=content_encoding)
    return {H_DEVICE: device_id, H_TIMESTAMP: timestamp, H_NONCE: nonce, H_DEVICE_TIME: device_time,
            H_DIGEST: digest, H_SIGNATURE: b64url(key.sign(message))}


def verify_signature(public_text: str, signature: str, message: bytes) -> bool:
    """True when `signature` is the device's signature of `message`."""
    try:
        load_public_key(public_text).verify(unb64url(signature), message)
        return True
    except (InvalidSignature, ProtocolError, ValueError):
        return False


# -- messages ------------------------------------------------------------------------------------

class _Strict(BaseModel):
    """Envelopes: unknown fields are refused, types are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True)


class EnrolRequest(_Strict):
    """A kiosk exchanging a one-time enrolment code for a device credential."""

    v: Literal[1]
    code: str = Field(min_length=8, max_length=64)
    device_id: str = Field(pattern=r"^[0-9A-HJKMNP-TV-Z]{26}$")
    public_key: str = Field(min_length=43, max_length=43)
    centre: str | None = Field(default=None, max_length=32)


class EnrolResponse(_Strict):
    """What central tells an enrolled device."""

    v: Literal[1]
    device_id: str
    centre: str
    label: str
    key_id: str
    server_time: str


class Commit(_Strict):
    """One kiosk journal commit as pushed: changes stay raw so that each is validated alone."""

    s: int = Field(ge=1, le=MAX_SEQ)
    at: str = Field(max_length=40)
    h: str = Field(min_length=1, max_length=40)
    c: list[Any] = Field(max_length=10_000)


class PushRequest(_Strict):
    """A batch of consecutive commits from one device."""

    v: Literal[1]
    device_id: str = Field(max_length=26)
    from_seq: int = Field(ge=1, le=MAX_SEQ)
    to_seq: int = Field(ge=0, le=MAX_SEQ)
    head_seq: int = Field(ge=0, le=MAX_SEQ)
    device_time: str = Field(max_length=40)
    commits: list[Commit] = Field(max_length=20_000)

    @field_validator("commits")
    @classmethod
    def _consecutive(cls, commits: list[Commit]) -> list[Commit]:
        """Commits must be strictly consecutive, so a batch can never hide a hole."""
        for before, after in zip(commits, commits[1:]):
            if after.s != before.s + 1:
                raise ValueError(f"commit {after.s} follows {before.s}: a batch must be consecutive")
        return commits

    def check_range(self) -> None:
        """from_seq/to_seq must describe exactly the commits carried."""
        if self.commits:
            if self.commits[0].s != self.from_seq or self.commits[-1].s != self.to_seq:
                raise ProtocolError(
                    f"the batch says {self.from_seq}..{self.to_seq} but carries "
                    f"{self.commits[0].s}..{self.commits[-1].s}")
        elif self.to_seq != self.from_seq - 1:
            raise ProtocolError("an empty batch must have to_seq = from_seq - 1")


class PushResponse(_Strict):
    """Central's acknowledgement of a push."""

    v: Literal[1]
    acked_seq: int = Field(ge=0)
    applied: int = Field(ge=0)
    quarantined: int = Field(ge=0)
    server_time: str


class CheckpointRequest(_Strict):
    """A signed head of the kiosk's audit chain, sent after each push (kiosk.domain.audit)."""

    v: Literal[1]
    checkpoint: dict[str, Any]


class CheckpointResponse(_Strict):
    """What central made of a checkpoint: pending (entries still to come), ok or flagged."""

    v: Literal[1]
    status: Literal["pending", "ok", "flagged"]
    server_time: str


class PulledChange(_Strict):
    """One configuration change from central's feed."""

    seq: int = Field(ge=1)
    t: str = Field(pattern=TABLE_NAME.pattern)
    o: Literal["put", "del"]
    k: str = Field(min_length=1, max_length=128)
    d: dict[str, Any] | None

    def check(self) -> None:
        """A put carries a document whose id is the key; a tombstone carries none."""
        if self.o == "put" and (self.d is None or self.d.get("id") != self.k):
            raise ProtocolError(f"{self.t}/{self.k}: a put needs a document with that id")
        if self.o == "del" and self.d is not None:
            raise ProtocolError(f"{self.t}/{self.k}: a tombstone carries no document")


class PullResponse(_Strict):
    """A page of configuration changes after `since`."""

    v: Literal[1]
    centre: str
    changes: list[PulledChange]
    next_since: int = Field(ge=0)
    has_more: bool
    acked_seq: int = Field(ge=0)
    server_time: str


class InboxFile(_Strict):
    """What the agent leaves for the kiosk to apply: one pull round, applied as one commit."""

    v: Literal[1]
    since: int = Field(ge=0)
    next_since: int = Field(ge=0)
    pulled_at: str
    changes: list[PulledChange]


class ErrorBody(BaseModel):
    """`{"error": {"code", "message", ...}}`: the error shape of every sync endpoint."""

    model_config = ConfigDict(extra="allow")
    code: str
    message: str


# -- changes inside commits (validated on central; failures are quarantined one by one) ----------
# TypedDicts rather than models: changes stay plain dicts, and a whole push is parsed and checked in
# one pydantic pass (parse_push); only a batch holding a bad change is checked change by change.

class _Loose(BaseModel):
    """Documents: known fields are typed, other fields are kept as they are."""

    model_config = ConfigDict(extra="allow", strict=True)


class Change(TypedDict):
    """A single change of a pushed commit."""

    __pydantic_config__ = ConfigDict(extra="forbid", strict=True)  # type: ignore[misc]
    t: Annotated[str, Field(pattern=TABLE_NAME.pattern)]
    o: Literal["put", "del", "clear"]
    k: NotRequired[Annotated[str, Field(min_length=1, max_length=128)] | None]
    d: NotRequired[dict[str, Any] | None]


class TicketEvent(TypedDict):
    """One step of a ticket's history (immutable once recorded)."""

    __pydantic_config__ = ConfigDict(extra="allow", strict=True)  # type: ignore[misc]
    state: Annotated[str, Field(min_length=1, max_length=32)]
    at: Annotated[str, Field(min_length=10, max_length=40)]
    counter: NotRequired[Annotated[str, Field(max_length=64)] | Annotated[int, Field(ge=0, lt=10**12)] | None]
    by: NotRequired[Annotated[str, Field(max_length=128)] | None]
    reason: NotRequired[Annotated[str, Field(max_length=500)] | None]


class TicketDoc(TypedDict):
    """The fields of a ticket central relies on."""

    __pydantic_config__ = ConfigDict(extra="allow", strict=True)  # type: ignore[misc]
    id: Annotated[str, Field(min_length=1, max_length=128)]
    state: Annotated[str, Field(min_length=1, max_length=32)]
    events: Annotated[list[TicketEvent], Field(min_length=1, max_length=1000)]


class AuditDoc(TypedDict):
    """The fields of an audit entry central relies on."""

    __pydantic_config__ = ConfigDict(extra="allow", strict=True)  # type: ignore[misc]
    id: Annotated[str, Field(min_length=1, max_length=128)]
    at: Annotated[str, Field(min_length=10, max_length=40)]
    action: Annotated[str, Field(min_length=1, max_length=128)]
    hash: Annotated[str, Field(min_length=1, max_length=256)]


_CHANGE = TypeAdapter(Change)
_DOCS = {"tickets": TypeAdapter(TicketDoc), "audit": TypeAdapter(AuditDoc)}


def check_change(raw: object) -> tuple[dict | None, str | None]:
    """Validate one pushed change: (change, None) when usable, (None, reason) when it must be quarantined."""
    if not isinstance(raw, dict):
        return None, "a change must be an object"
    try:
        change = _CHANGE.validate_python(raw)
    except ValidationError as exc:
        return None, _first_error(exc)
    reason = _rule(change)
    if reason is None and change["o"] == "put" and change["t"] in _DOCS:
        try:
            _DOCS[change["t"]].validate_python(change["d"])
        except ValidationError as exc:
            reason = f"invalid {change['t']} document: {_first_error(exc)}"
    return (None, reason) if reason else (change, None)


class _TicketPut(TypedDict):
    """A put of a ticket, with the ticket checked."""

    __pydantic_config__ = ConfigDict(extra="forbid", strict=True)  # type: ignore[misc]
    t: Literal["tickets"]
    o: Literal["put"]
    k: NotRequired[Annotated[str, Field(min_length=1, max_length=128)] | None]
    d: TicketDoc


class _AuditPut(TypedDict):
    """A put of an audit entry, with the entry checked."""

    __pydantic_config__ = ConfigDict(extra="forbid", strict=True)  # type: ignore[misc]
    t: Literal["audit"]
    o: Literal["put"]
    k: NotRequired[Annotated[str, Field(min_length=1, max_length=128)] | None]
    d: AuditDoc


def _kind(change: object) -> str:
    """Which schema a raw change must follow."""
    if isinstance(change, dict) and change.get("o") == "put" and change.get("t") in ("tickets", "audit"):
        return change["t"]
    return "other"


_CheckedChange = Annotated[Annotated[_TicketPut, Tag("tickets")] | Annotated[_AuditPut, Tag("audit")]
                           | Annotated[Change, Tag("other")], Discriminator(_kind)]


class _CheckedCommit(Commit):
    """A commit whose changes are all valid (the fast path)."""

    c: list[_CheckedChange] = Field(max_length=10_000)


class _CheckedPush(PushRequest):
    """A push whose changes are all valid (the fast path)."""

    commits: list[_CheckedCommit] = Field(max_length=20_000)


def parse_push(body: bytes) -> tuple[PushRequest, list[list[tuple[dict | None, str | None]]]]:
    """Parse a push body; every commit's changes come back checked, as (change, None) or (None, reason).

    Parsing and checking every change happen in one pydantic pass when all are valid; only a batch
    holding an invalid change is parsed again loosely and checked change by change, to quarantine
    exactly the bad ones. Envelope errors raise ValidationError.
    """
    try:
        batch = _CheckedPush.model_validate_json(body)
    except ValidationError:
        batch = PushRequest.model_validate_json(body)
        return batch, [[check_change(raw) for raw in commit.c] for commit in batch.commits]
    checked = []
    for commit in batch.commits:
        row = []
        for change in commit.c:
            reason = _rule(change)
            row.append((None, reason) if reason else (change, None))
        checked.append(row)
    return batch, checked


def _rule(change: dict) -> str | None:
    """What is wrong with a well-typed change, or None."""
    op, key, doc = change["o"], change.get("k"), change.get("d")
    if change["t"] in PULL_TABLES:
        return f"{change['t']} is maintained by central and cannot be pushed"
    if op in ("put", "del") and not key:
        return f"a {op} needs a key"
    if op == "put" and (doc is None or doc.get("id") != key):
        return "a put needs a document whose id is its key"
    if op != "put" and doc is not None:
        return f"a {op} carries no document"
    return None


def _first_error(exc: ValidationError) -> str:
    """A short, human text for the first problem pydantic found."""
    err = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(p) for p in err.get("loc", ())) or "value"
    return f"{where}: {err.get('msg', 'invalid')}"[:300]


def describe(exc: ValidationError) -> dict[str, str]:
    """Field -> message for a failed envelope (the `fields` of a validation_failed error)."""
    out = {}
    for err in exc.errors(include_url=False, include_input=False)[:20]:
        out[".".join(str(p) for p in err.get("loc", ())) or "body"] = err.get("msg", "invalid")
    return out


# -- configuration documents (validated by central before they enter the feed) --------------------

LOCAL_SETTINGS = frozenset({"audit_head"})  # kiosk-owned settings central never sends or removes


class Names(_Strict):
    """A text in each of the three languages."""

    ar: str = Field(min_length=1, max_length=300)
    ckb: str = Field(min_length=1, max_length=300)
    en: str = Field(min_length=1, max_length=300)


_ID = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")


class ServiceDoc(_Loose):
    """A service a centre offers (its id is its code)."""

    id: str = _ID
    code: str = Field(min_length=1, max_length=16)
    prefix: str = Field(pattern=r"^[A-Z]{1,3}$")
    names: Names
    active: bool = True
    daily_cap: int | None = Field(default=None, ge=1)
    target_wait_min: int | None = Field(default=None, ge=1, le=1440)  # the reports' "served within target"
    fee_iqd: int = Field(default=0, ge=0)
    sla_hours: int | float = Field(default=0, ge=0)
    documents: list[Names] = Field(default_factory=list, max_length=50)
    pictogram: str | None = Field(default=None, max_length=64)


class CounterDoc(_Loose):
    """A counter and the services it serves."""

    id: str = _ID
    names: Names
    services: list[str] = Field(max_length=100)
    active: bool = True


class StaffDoc(_Loose):
    """A staff member; the PIN travels only as an argon2 hash."""

    id: str = _ID
    display_name: str = Field(min_length=1, max_length=200)
    role: Literal["attendant", "supervisor"]
    pin_hash: str = Field(pattern=r"^\$argon2(id|i|d)\$", max_length=300)
    active: bool = True


class PriorityClassDoc(_Loose):
    """A priority class (elderly, disability, pregnancy ...)."""

    id: str = _ID
    names: Names
    rank: int = Field(ge=0, le=1000)
    active: bool = True


class SettingsDoc(_Loose):
    """A named group of settings (for example `queue`: priority_ratio, max_wait_min)."""

    id: str = _ID


CONFIG_MODELS: dict[str, type[BaseModel]] = {
    "services": ServiceDoc, "counters": CounterDoc, "staff": StaffDoc,
    "priority_classes": PriorityClassDoc, "settings": SettingsDoc,
}
