"""The sync API kiosks talk to: enrol, push, pull (JSON, versioned under /api/sync/v1)."""
from __future__ import annotations

import hashlib
import logging

from flask import Blueprint, current_app, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sync import protocol
from sync.central import auth, checkpoints, feed, ingest
from sync.central.errors import ApiError

log = logging.getLogger(__name__)

bp = Blueprint("sync_api", __name__, url_prefix=protocol.API_PREFIX)


class PullQuery(BaseModel):
    """Query of a pull: numbers arrive as text and are converted, nothing else is allowed."""

    model_config = ConfigDict(extra="forbid")
    # sequences are 64-bit in the database: a larger number must be a 422, not a driver overflow
    since: int = Field(default=0, ge=0, le=protocol.MAX_SEQ)
    limit: int = Field(default=500, ge=1, le=protocol.MAX_PULL_LIMIT)
    head_seq: int | None = Field(default=None, ge=0, le=protocol.MAX_SEQ)


def _central():
    """The app's Central (engine, clock, settings)."""
    return current_app.extensions["central"]


def _signed_path() -> str:
    """Path and query exactly as the client addressed them (what the signature covers)."""
    path = request.script_root + request.path
    query = request.query_string.decode("latin-1")
    return f"{path}?{query}" if query else path


def _offset(now, device_time: str | None) -> float | None:
    """Server minus device clock, in seconds, from the device's signed clock reading."""
    if not device_time:
        return None
    try:
        return round(now.timestamp() - protocol.parse_utc(device_time).timestamp(), 3)
    except protocol.ProtocolError:
        return None


def _inflated(body: bytes) -> bytes:
    """The JSON bytes of a (possibly gzip) body, within the size limits."""
    if request.mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type", "the body must be application/json")
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding == "gzip":
        try:
            return protocol.inflate(body)
        except protocol.ProtocolError as exc:
            raise ApiError(400, "bad_request", str(exc)) from None
    if encoding not in ("", "identity"):
        raise ApiError(415, "unsupported_media_type", f"Content-Encoding {encoding!r} is not supported (use gzip)")
    return body


def _parse(model, body: bytes):
    """Parse and validate JSON in one pass; malformed JSON is a 400, a wrong shape a 422."""
    try:
        return model.model_validate_json(_inflated(body))
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors(include_url=False, include_input=False)):
            raise ApiError(400, "bad_request", "the body is not valid JSON") from None
        raise _validation_failed(exc) from None


def _parse_push(body: bytes):
    """protocol.parse_push with the same error mapping as `_parse`."""
    try:
        return protocol.parse_push(_inflated(body))
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors(include_url=False, include_input=False)):
            raise ApiError(400, "bad_request", "the body is not valid JSON") from None
        raise _validation_failed(exc) from None


def _validation_failed(exc: ValidationError) -> ApiError:
    """422 with the fields that are wrong."""
    return ApiError(422, "validation_failed", "the message does not match the sync protocol",
                    fields=protocol.describe(exc))


@bp.post("/enroll")
def enroll():
    """Exchange a one-time enrolment code for a device credential (the device's public key)."""
    central = _central()
    req = _parse(protocol.EnrolRequest, request.get_data())
    now = central.clock.now()
    with central.engine.begin() as conn:
        device = auth.redeem(conn, req, now=now)
    body = protocol.EnrolResponse(v=protocol.VERSION, device_id=device.device_id, centre=device.centre,
                                  label=device.label, key_id=device.key_id,
                                  server_time=protocol.utc_iso(now))
    return jsonify(body.model_dump()), 201


def _signed_by(conn, body: bytes, now):
    """The enrolled device that signed this request (ApiError 401 otherwise)."""
    return auth.authenticate(conn, method=request.method, path=_signed_path(), headers=request.headers,
                             body=body, now=now, max_skew_s=_central().max_skew_s)


@bp.post("/push")
def push():
    """Apply a batch of journal commits and answer with the device's new cursor."""
    central = _central()
    body = request.get_data()
    now = central.clock.now()
    with central.engine.begin() as conn:
        device = _signed_by(conn, body, now)
        batch, checked = _parse_push(body)
        result = ingest.apply_push(conn, device, batch, checked, body_sha256=hashlib.sha256(body).hexdigest(),
                                   now=now, clock_offset_s=_offset(now, request.headers.get(protocol.H_DEVICE_TIME)))
    return jsonify(result.model_dump())


@bp.post("/checkpoint")
def checkpoint():
    """Store and check a signed head of the device's audit chain; a bad signature is refused."""
    central = _central()
    body = request.get_data()
    now = central.clock.now()
    with central.engine.begin() as conn:
        device = _signed_by(conn, body, now)
        req = _parse(protocol.CheckpointRequest, body)
        doc = req.checkpoint
        reason = checkpoints.refusal(doc, device)
        if reason is None and doc.get("seq") is None:
            reason = "a checkpoint sent beside the journal needs the sequence it was taken at (seq)"
        if reason is not None:
            raise ApiError(422, "invalid_checkpoint", reason)
        status = checkpoints.receive(conn, device, doc, seq=doc["seq"], now=now)
    body = protocol.CheckpointResponse(v=protocol.VERSION, status=status, server_time=protocol.utc_iso(now))
    return jsonify(body.model_dump()), 201


@bp.get("/pull")
def pull():
    """A page of configuration changes for the device's centre after `since`."""
    central = _central()
    body = request.get_data()
    now = central.clock.now()
    with central.engine.begin() as conn:
        device = _signed_by(conn, body, now)
        try:
            query = PullQuery.model_validate(request.args.to_dict())
        except ValidationError as exc:
            raise _validation_failed(exc) from None
        result = feed.pull(conn, device, since=query.since, limit=query.limit, head_seq=query.head_seq,
                           now=now, clock_offset_s=_offset(now, request.headers.get(protocol.H_DEVICE_TIME)))
    return jsonify(result.model_dump())


@bp.after_request
def _server_time(response):
    """Every answer carries central's clock, so the agent can measure its offset on any of them."""
    response.headers["Sync-Server-Time"] = protocol.utc_iso(_central().clock.now())
    response.headers["Cache-Control"] = "no-store"
    return response
