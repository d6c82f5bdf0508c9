"""Device enrolment, revocation and the verification of signed sync requests.

A request is accepted when: it carries every signature header; its timestamp is within
MAX_SKEW_S of central's clock; the device is known; the body matches its Content-Digest; the
Ed25519 signature over the method, path, device, timestamp, nonce, device clock and digest
verifies with that device's public key; the device is not revoked; and the nonce was never seen
for that device. The nonce is recorded in the request's own transaction.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import re
import secrets

from sqlalchemy import Connection, delete, select, update

from sync import protocol
from sync.central.errors import ApiError, CentralError
from sync.central.models import Centre, Device, DeviceCursor, Enrolment, Nonce
from sync.central.sql import insert_for

log = logging.getLogger(__name__)

_ASCII_DIGITS = re.compile(r"[0-9]{1,12}")
_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read aloud over a phone


def _hash_code(code: str) -> str:
    """Codes are stored hashed: a database copy does not hand out enrolments."""
    normal = code.strip().upper().replace("-", "").replace(" ", "")
    return hashlib.sha256(normal.encode("ascii", "replace")).hexdigest()


def new_code() -> str:
    """A 20-character one-time code in groups of five (about 99 bits)."""
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(20))
    return "-".join(raw[i:i + 5] for i in range(0, 20, 5))


def create_enrolment(conn: Connection, *, centre: str, label: str, now: dt.datetime,
                     ttl: dt.timedelta) -> str:
    """Record a one-time code for `label` at `centre`; return the code (it is not stored)."""
    if conn.execute(select(Centre.code).where(Centre.code == centre)).first() is None:
        raise CentralError(f"no centre {centre!r}; add it first with add-centre")
    if not label or len(label) > 64:
        raise CentralError("a device label has 1 to 64 characters")
    code = new_code()
    conn.execute(Enrolment.__table__.insert().values(
        code_hash=_hash_code(code), centre=centre, label=label, created_at=now,
        expires_at=now + ttl, used_at=None, device_id=None))
    return code


def redeem(conn: Connection, req: protocol.EnrolRequest, *, now: dt.datetime) -> Device:
    """Exchange a one-time code for an active device holding the given public key."""
    try:
        protocol.load_public_key(req.public_key)
    except protocol.ProtocolError as exc:
        raise ApiError(422, "validation_failed", f"public_key: {exc}", fields={"public_key": str(exc)}) from None
    enrolment = conn.execute(select(Enrolment).where(Enrolment.code_hash == _hash_code(req.code))
                             .with_for_update()).first()
    if enrolment is None or enrolment.used_at is not None or enrolment.expires_at <= now:
        # one answer for unknown, used and expired codes: the response must not help guessing
        raise ApiError(403, "invalid_enrolment_code",
                       "the enrolment code is unknown, already used or expired; ask central for a new one")
    if req.centre and req.centre != enrolment.centre:
        raise ApiError(409, "centre_mismatch",
                       f"this code enrols a device for centre {enrolment.centre}, but the kiosk is "
                       f"configured as centre {req.centre}; fix CENTRE or ask for a code for {req.centre}")
    existing = conn.execute(select(Device).where(Device.device_id == req.device_id)).first()
    if existing is not None and existing.centre != enrolment.centre:
        raise ApiError(409, "device_of_another_centre",
                       f"device {req.device_id} is enrolled for centre {existing.centre}; revoke it there first")
    conn.execute(update(Enrolment).where(Enrolment.code_hash == enrolment.code_hash)
                 .values(used_at=now, device_id=req.device_id))
    # a label names one machine: a new machine under the same label replaces the old one
    conn.execute(update(Device)
                 .where(Device.centre == enrolment.centre, Device.label == enrolment.label,
                        Device.device_id != req.device_id, Device.status == "active")
                 .values(status="revoked", revoked_at=now))
    values = dict(centre=enrolment.centre, label=enrolment.label, public_key=req.public_key,
                  key_id=protocol.key_id(req.public_key), status="active", enrolled_at=now,
                  revoked_at=None)
    if existing is None:
        conn.execute(Device.__table__.insert().values(device_id=req.device_id, head_seq=0, **values))
        conn.execute(DeviceCursor.__table__.insert().values(device_id=req.device_id, last_seq=0,
                                                            last_hlc="", updated_at=now))
    else:
        # re-enrolling the same machine (lost key, new disk) keeps its cursor and history
        conn.execute(update(Device).where(Device.device_id == req.device_id).values(**values))
    log.info("device %s enrolled for centre %s as %s", req.device_id, enrolment.centre, enrolment.label)
    return conn.execute(select(Device).where(Device.device_id == req.device_id)).one()


def revoke(conn: Connection, ident: str, *, now: dt.datetime) -> list[str]:
    """Revoke the device with this id, or the active device(s) with this label; return their ids."""
    rows = conn.execute(select(Device.device_id).where(Device.device_id == ident)).all()
    if not rows:
        rows = conn.execute(select(Device.device_id).where(Device.label == ident,
                                                           Device.status == "active")).all()
    if not rows:
        raise CentralError(f"no device with id or active label {ident!r}")
    ids = [r.device_id for r in rows]
    conn.execute(update(Device).where(Device.device_id.in_(ids)).values(status="revoked", revoked_at=now))
    return ids


def authenticate(conn: Connection, *, method: str, path: str, headers, body: bytes,
                 now: dt.datetime, max_skew_s: int = protocol.MAX_SKEW_S):
    """The device that signed this request, or an ApiError saying why it is refused."""
    device_id = headers.get(protocol.H_DEVICE)
    timestamp = headers.get(protocol.H_TIMESTAMP)
    nonce = headers.get(protocol.H_NONCE)
    device_time = headers.get(protocol.H_DEVICE_TIME, "")
    digest = headers.get(protocol.H_DIGEST)
    signature = headers.get(protocol.H_SIGNATURE)
    if not all((device_id, timestamp, nonce, digest, signature)):
        raise ApiError(401, "unauthorized", "the request is not signed (enrol this kiosk and sign every request)")
    # str.isdigit() is also true for "²" and other digits int() refuses: allow ASCII digits only
    if not _ASCII_DIGITS.fullmatch(timestamp) or len(nonce) > 32 or len(device_id) > 26:
        raise ApiError(401, "unauthorized", "malformed signature headers")
    skew = abs(now.timestamp() - int(timestamp))
    if skew > max_skew_s:
        raise ApiError(401, "stale_timestamp",
                       f"the request was signed {int(skew)} s away from central's clock (limit {max_skew_s} s)",
                       server_time=protocol.utc_iso(now))
    if not hmac.compare_digest(digest, protocol.content_digest(body)):
        raise ApiError(401, "unauthorized", "the body does not match its Content-Digest")
    device = conn.execute(select(Device).where(Device.device_id == device_id)).first()
    try:
        message = protocol.signing_string(
            method=method, path=path, device_id=device_id, timestamp=timestamp, nonce=nonce,
            device_time=device_time, digest=digest, content_type=headers.get("Content-Type", ""),
            content_encoding=headers.get("Content-Encoding", ""))
    except protocol.ProtocolError:
        raise ApiError(401, "unauthorized", "malformed signature headers") from None
    if device is None or not protocol.verify_signature(device.public_key, signature, message):
        raise ApiError(401, "unauthorized", "the signature does not verify for this device")
    if device.status != "active":
        raise ApiError(403, "device_revoked", "this device's credential was revoked; enrol it again")
    fresh = conn.execute(insert_for(conn, Nonce).values(device_id=device_id, nonce=nonce, seen_at=now)
                         .on_conflict_do_nothing().returning(Nonce.nonce)).first()
    if fresh is None:
        raise ApiError(401, "replayed_request", "this request was already received (replayed nonce)")
    if secrets.randbelow(64) == 0:
        prune_nonces(conn, now=now, max_skew_s=max_skew_s)  # now and then, not on every request
    return device


def prune_nonces(conn: Connection, *, now: dt.datetime, max_skew_s: int) -> None:
    """Forget nonces whose requests could no longer pass the timestamp check anyway."""
    conn.execute(delete(Nonce).where(Nonce.seen_at < now - dt.timedelta(seconds=2 * max_skew_s)))
