"""OpenAPI 3.1 description of central's HTTP API, served at /api/v1/openapi.json: the sync API the
kiosks call (enrol, push, pull; signed requests), the public receipt endpoints (/R/status, the
trust list) and the public appointment endpoints (slots, booking, cancelling). Request and
response bodies of the sync API come from the pydantic models in sync/protocol.py, so the document
and the code cannot drift apart; every object is closed and every error an operation answers is
listed (tests/fuzz holds central to it)."""
from __future__ import annotations

from sync import protocol

_TEXT = {"type": "string"}
_COMPONENTS: dict[str, dict] = {}


def _model(model) -> dict:
    """A $ref to a pydantic model's JSON schema, its nested definitions hoisted into components."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    _COMPONENTS.update(schema.pop("$defs", {}))
    _COMPONENTS[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _object(properties: dict, required: tuple[str, ...] = ()) -> dict:
    """A closed JSON object."""
    return {"type": "object", "additionalProperties": False, "required": list(required), "properties": properties}


_ERROR = _object({"error": _object({
    "code": {"type": "string", "pattern": "^[a-z_]+$"}, "message": _TEXT,
    "fields": {"type": "object", "additionalProperties": _TEXT},
    "server_time": {"type": "string", "format": "date-time"},
    "expected_from_seq": {"type": "integer", "minimum": 1}, "acked_seq": {"type": "integer", "minimum": 0}},
    ("code", "message"))}, ("error",))
_TEXTS = {400: "malformed JSON or gzip", 401: "not signed, badly signed, stale or replayed",
          403: "the enrolment code is unknown, used or expired; the device is revoked; or the batch "
               "names another device",
          409: "centre mismatch, a sequence gap or a diverged history", 413: "the body is too large",
          415: "not application/json, or an unsupported Content-Encoding",
          422: "the message does not match the sync protocol (fields named)",
          503: "nothing published yet"}


def _json(schema: dict, media: str = "application/json") -> dict:
    """A content block."""
    return {"content": {media: {"schema": schema}}}


def _err(*codes: int) -> dict:
    """Error responses with the one error shape."""
    return {str(c): {"description": _TEXTS[c], **_json({"$ref": "#/components/schemas/Error"})} for c in codes}


def _header(name: str, description: str, required: bool = True, schema: dict | None = None) -> dict:
    """A request header parameter."""
    return {"name": name, "in": "header", "required": required, "description": description,
            "schema": schema or _TEXT}


def _errors(texts: dict[int, str]) -> dict:
    """Error responses with the one error shape, each with its own description."""
    return {str(c): {"description": text, **_json({"$ref": "#/components/schemas/Error"})} for c, text in texts.items()}


_APPOINTMENT = _object({
    "code": {"type": "string", "pattern": "^[0-9A-HJKMNP-TV-Z]{8}$",
             "description": "the short code (shown as two groups of four: K7M2-Q9XD)"},
    "centre": _TEXT, "service": _TEXT, "start": {"type": "string", "format": "date-time"},
    "end": {"type": "string", "format": "date-time"},
    "qr": {"type": "string", "description": "HTTPS://<verify host>/A#<BASE32>: signed by central's booking key"},
    "state": {"enum": ["booked", "cancelled"]}}, ("code", "centre", "service", "start", "end", "qr", "state"))
_ONE_APPOINTMENT = _json(_object({"appointment": {"$ref": "#/components/schemas/Appointment"}}, ("appointment",)))
_CODE = [{"name": "code", "in": "path", "required": True, "schema": {"type": "string"},
          "description": "the short code, with or without its dash, in any case"}]
_LIMITED = {429: "too many requests from this address this minute (Retry after a minute)"}
_APPOINTMENTS_TAG = ["appointments"]

_SIGNED = [
    _header(protocol.H_DEVICE, "the device id (ULID) central enrolled"),
    _header(protocol.H_TIMESTAMP, "Unix seconds when signed (ASCII digits)"),
    _header(protocol.H_NONCE, "a random value never used before by this device"),
    _header(protocol.H_DIGEST, "RFC 9530 Content-Digest of the body as sent (sha-256)"),
    _header(protocol.H_SIGNATURE, "Ed25519 signature (base64url) over method, path, device, timestamp, "
                                  "nonce, device time, digest, content type and encoding"),
    _header(protocol.H_DEVICE_TIME, "the device's clock, ISO 8601 UTC", required=False),
]
_SYNC_TAG = ["sync"]

SPEC = {
    "openapi": "3.1.0",
    "info": {"title": "Public service centres: central", "version": "1",
             "description": "The sync API of the centres' kiosks (signed requests; docs/sync.md) and the public "
                            "receipt endpoints (docs/receipts.md). Every error body is "
                            "{\"error\": {\"code\", \"message\"}}."},
    "servers": [{"url": "/"}],
    "paths": {
        f"{protocol.API_PREFIX}/enroll": {"post": {
            "tags": _SYNC_TAG, "summary": "Exchange a one-time enrolment code for a device credential",
            "requestBody": {"required": True, **_json(_model(protocol.EnrolRequest))},
            "responses": {"201": {"description": "enrolled", **_json(_model(protocol.EnrolResponse))},
                          **_err(400, 403, 409, 413, 415, 422)}}},
        f"{protocol.API_PREFIX}/push": {"post": {
            "tags": _SYNC_TAG, "summary": "A batch of journal commits (optionally gzip: Content-Encoding)",
            "parameters": _SIGNED + [_header("Content-Encoding", "gzip or identity", required=False,
                                             schema={"enum": ["gzip", "identity"]})],
            "requestBody": {"required": True, **_json(_model(protocol.PushRequest))},
            "responses": {"200": {"description": "acknowledged", **_json(_model(protocol.PushResponse))},
                          **_err(400, 401, 403, 409, 413, 415, 422)}}},
        f"{protocol.API_PREFIX}/checkpoint": {"post": {
            "tags": _SYNC_TAG, "summary": "A signed head of the device's audit chain (docs/sync.md, Audit checkpoints)",
            "parameters": _SIGNED + [_header("Content-Encoding", "gzip or identity", required=False,
                                             schema={"enum": ["gzip", "identity"]})],
            "requestBody": {"required": True, **_json(_model(protocol.CheckpointRequest))},
            "responses": {"201": {"description": "stored and checked", **_json(_model(protocol.CheckpointResponse))},
                          **_err(400, 401, 403, 413, 415, 422)}}},
        f"{protocol.API_PREFIX}/pull": {"get": {
            "tags": _SYNC_TAG, "summary": "Configuration changes for the device's centre after `since`",
            "parameters": _SIGNED + [
                {"name": "since", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": protocol.MAX_SEQ}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                            "maximum": protocol.MAX_PULL_LIMIT}},
                {"name": "head_seq", "in": "query", "schema": {"type": "integer", "minimum": 0,
                                                               "maximum": protocol.MAX_SEQ}}],
            "responses": {"200": {"description": "a page of changes", **_json(_model(protocol.PullResponse))},
                          **_err(401, 403, 422)}}},
        "/R/status": {"post": {
            "tags": ["receipts"], "summary": "Verify a receipt's signed text and answer its live status",
            "requestBody": {"required": True, "description": "at most 4096 bytes (413 beyond)", **_json(
                _object({"qr_text": {"type": "string"},
                         "lang": {"enum": ["ar", "ckb", "en"],
                                  "description": "language of the names (default: the Accept-Language choice)"}},
                        ("qr_text",)))},
            "responses": {"200": {"description": "the verdict and, for a receipt that verifies, its status and the "
                                                 "names of its centre and service", **_json(_object({
                "outcome": _TEXT, "reason": _TEXT,
                "status": {"oneOf": [{"type": "null"}, _object({
                    "status": {"enum": ["open", "completed", "rejected", "referred"]}, "overdue": {"type": "boolean"},
                    "due_at": {"type": ["string", "null"]}, "changed_at": {"type": ["string", "null"]}},
                    ("status", "overdue", "due_at", "changed_at"))]},
                "names": {"oneOf": [{"type": "null"}, _object({
                    "centre": {"type": ["string", "null"]}, "service": {"type": ["string", "null"]}},
                    ("centre", "service"))]}}, ("outcome", "reason", "status", "names")))},
                **_err(400, 413, 422, 503)}}},
        "/R/trust-list": {"get": {
            "tags": ["receipts"], "summary": "The published signed trust list and the root key(s) (JWK)",
            "responses": {"200": {"description": "the trust list", **_json(_object({
                "sequence": {"type": "integer", "minimum": 0}, "signed_base64": _TEXT,
                "root_keys": {"type": "array", "items": {"type": "object"}}},
                ("sequence", "signed_base64", "root_keys")))}, **_err(503)}}},
        "/api/v1/slots": {"get": {
            "tags": _APPOINTMENTS_TAG, "summary": "The free slots of a service at a centre on a date (public)",
            "parameters": [{"name": n, "in": "query", "required": True, "schema": schema} for n, schema in (
                ("centre", _TEXT), ("service", _TEXT), ("date", {"type": "string", "format": "date"}))],
            "responses": {"200": {"description": "slots still open for booking, with their free places", **_json(_object({
                "slots": {"type": "array", "items": _object({
                    "start": {"type": "string", "format": "date-time"}, "end": {"type": "string", "format": "date-time"},
                    "free": {"type": "integer", "minimum": 0}}, ("start", "end", "free"))}}, ("slots",)))},
                **_errors({404: "no such centre, or the service takes no appointments there",
                           422: "a parameter is missing, unknown or malformed (fields named)"})}}},
        "/api/v1/appointments": {"post": {
            "tags": _APPOINTMENTS_TAG, "summary": "Book a slot (public, rate-limited per address)",
            "requestBody": {"required": True, "description": "at most 4096 bytes (413 beyond)", **_json(_object({
                "centre": _TEXT, "service": _TEXT,
                "start": {"type": "string", "format": "date-time", "description": "a slot's start from /api/v1/slots"},
                "lang": {"enum": ["ar", "ckb", "en"]},
                "phone": {"type": ["string", "null"], "description": "optional, for one SMS reminder, then erased"}},
                ("centre", "service", "start", "lang")))},
            "responses": {"201": {"description": "booked", **_ONE_APPOINTMENT},
                          **_errors({400: "the body is not a JSON object", 409: "slot_full: every place is taken",
                                     413: "the body is too large", 415: "not application/json",
                                     422: "validation_failed: unknown centre or service, not a slot, booking closed, "
                                          "a bad phone number or language (fields named)",
                                     **_LIMITED, 503: "not_configured: central's booking key is not published yet"})}}},
        "/api/v1/appointments/{code}": {
            "get": {"tags": _APPOINTMENTS_TAG, "summary": "An appointment by its code (rate-limited)",
                    "parameters": _CODE,
                    "responses": {"200": {"description": "the appointment", **_ONE_APPOINTMENT},
                                  **_errors({404: "no appointment has this code", **_LIMITED})}},
            "delete": {"tags": _APPOINTMENTS_TAG, "summary": "Cancel an appointment with its code (rate-limited)",
                       "parameters": _CODE,
                       "responses": {"200": {"description": "cancelled (cancelling again changes nothing)",
                                             **_ONE_APPOINTMENT},
                                     **_errors({404: "no appointment has this code",
                                                409: "too_late: the slot has started", **_LIMITED})}}},
        "/.well-known/receipt-keys": {"get": {
            "tags": ["receipts"], "summary": "The published trust list as signed CBOR bytes",
            "responses": {"200": {"description": "COSE-signed CBOR", **_json(
                {"type": "string", "contentMediaType": "application/cbor"}, "application/cbor")},
                **_err(503)}}},
    },
    "components": {"schemas": {"Error": _ERROR, "Appointment": _APPOINTMENT}},
}
SPEC["components"]["schemas"].update(_COMPONENTS)
