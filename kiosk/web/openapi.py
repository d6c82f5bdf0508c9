"""OpenAPI 3.1 description of the JSON API v1, served at /api/v1/openapi.json.

Every object is closed (`additionalProperties: false`) and every error an operation can answer is
listed, so that schema-driven tests (tests/fuzz) hold the API to exactly this document: a new
field or error code goes into this file in the same change.
"""

_TEXT = {"type": "string"}
_TIME = {"type": "string", "format": "date-time"}
_ULID = {"type": "string", "pattern": "^[0-9A-HJKMNP-TV-Z]{26}$"}
_STATES = ["waiting", "called", "serving", "done", "no_show", "held", "transferred", "cancelled"]
_LANGS = ["ar", "ckb", "en"]


def _object(properties: dict, required: tuple[str, ...] = ()) -> dict:
    """A closed JSON object: only the listed properties."""
    return {"type": "object", "additionalProperties": False, "required": list(required), "properties": properties}


_ERROR = _object({"error": _object({
    "code": {"type": "string", "pattern": "^[a-z_]+$"},
    "message": _TEXT,
    "fields": {"type": "object", "additionalProperties": _TEXT}}, ("code", "message"))}, ("error",))
_NAMES = _object({k: _TEXT for k in _LANGS}, tuple(_LANGS))
_EVENT = _object({
    "state": {"enum": _STATES}, "at": _TIME, "action": _TEXT, "counter": _TEXT, "by": _TEXT,
    "reason": _TEXT, "from": _TEXT}, ("state", "at"))
_TICKET = _object({
    "id": _ULID,
    "number": {"type": "string", "examples": ["A-007"]},
    "service": _TEXT, "priority": _TEXT, "lang": {"enum": _LANGS}, "state": {"enum": _STATES},
    "issued_at": _TIME, "arrival_at": _TIME, "day": {"type": "string", "format": "date"},
    "seq_in_day": {"type": "integer", "minimum": 1},
    "ahead": {"type": "integer", "minimum": 0},
    "estimated_wait_s": {"type": "integer", "minimum": 0},
    "counter": {"type": ["string", "null"]},
    "qr": _TEXT,
    "transferred_from": _ULID, "transferred_to": _ULID,
    "appointment": {"type": "string", "description": "the booking's code, on a ticket issued by a check-in"},
    "slot_start_at": _TIME, "slot_end_at": _TIME,
    "events": {"type": "array", "items": _EVENT}},
    ("id", "number", "service", "priority", "lang", "state", "issued_at", "ahead", "estimated_wait_s", "events"))
_SERVICE = _object({
    "code": _TEXT, "prefix": _TEXT, "names": _NAMES, "active": {"type": "boolean"},
    "fee_iqd": {"type": "integer", "minimum": 0}, "documents": {"type": "array", "items": _NAMES},
    "pictogram": {"type": ["string", "null"]},
    "available": {"type": "boolean"},
    "unavailable_reason": {"type": ["string", "null"], "enum": ["off", "daily_cap", "closed_day", None],
                           "description": "off: switched off; daily_cap: at its limit for today; closed_day: the "
                                          "centre's weekend or a holiday (reopens_at: the next working day)"},
    "reopens_at": {"type": ["string", "null"], "format": "date-time"}},
    ("code", "prefix", "names", "active", "available", "unavailable_reason", "reopens_at"))

_NUM = {"type": ["number", "null"]}
_SPREAD = _object({"p50": _NUM, "p90": _NUM, "max": _NUM}, ("p50", "p90", "max"))
_FEEDBACK_FIGURES = _object({"count": {"type": "integer", "minimum": 0},
                             "mean": {"type": ["number", "null"], "minimum": 1, "maximum": 5}}, ("count", "mean"))
_COUNTS = {k: {"type": "integer", "minimum": 0} for k in ("issued", "served", "no_show", "transferred", "cancelled")}
_SHARE = {"type": ["number", "null"], "minimum": 0, "maximum": 1}
_MEMBER = _object({"id": _TEXT, "served": {"type": "integer", "minimum": 0}, "service_s": _SPREAD,
                   "feedback": _FEEDBACK_FIGURES}, ("id", "served", "service_s", "feedback"))
_DATE = {"type": "string", "format": "date"}
_QUEUE_REPORT = _object({
    "from": _DATE, "to": _DATE,
    "services": {"type": "array", "items": _object({
        "code": _TEXT, **_COUNTS, "wait_s": _SPREAD, "service_s": _SPREAD, "within_target": _SHARE,
        "feedback": _FEEDBACK_FIGURES}, ("code", *_COUNTS, "wait_s", "service_s", "within_target", "feedback"))},
    "staff": {"type": "array", "items": _MEMBER},
    "counters": {"type": "array", "items": _MEMBER},
    "hours": {"type": "array", "items": _object({
        "weekday": {"type": "integer", "minimum": 0, "maximum": 6, "description": "0 is Monday"},
        "hour": {"type": "integer", "minimum": 0, "maximum": 23},
        "issued": {"type": "integer", "minimum": 0}}, ("weekday", "hour", "issued"))},
    "days": {"type": "array", "items": _object({
        "day": _DATE, "issued": {"type": "integer", "minimum": 0}, "served": {"type": "integer", "minimum": 0},
        "wait_p50_s": _NUM}, ("day", "issued", "served", "wait_p50_s"))},
    "wait_buckets": {"type": "array", "items": _object({
        "up_to_min": {"type": ["integer", "null"]}, "tickets": {"type": "integer", "minimum": 0}},
        ("up_to_min", "tickets"))},
    "totals": _object({**_COUNTS, "wait_s": _SPREAD, "within_target": _SHARE},
                      (*_COUNTS, "wait_s", "within_target")),
    "feedback": _object({
        "count": {"type": "integer", "minimum": 0}, "mean": _FEEDBACK_FIGURES["properties"]["mean"],
        "low": {"type": "array", "items": _object({
            "ticket": _ULID, "day": {"type": ["string", "null"], "format": "date"}, "service": _TEXT,
            "staff": {"type": ["string", "null"]}, "counter": {"type": ["string", "null"]},
            "score": {"type": "integer", "minimum": 1, "maximum": 5}, "comment": _TEXT,
            "at": {"type": ["string", "null"], "format": "date-time"}},
            ("ticket", "day", "service", "staff", "counter", "score", "comment", "at"))}},
        ("count", "mean", "low")),
}, ("from", "to", "services", "staff", "counters", "hours", "days", "wait_buckets", "totals", "feedback"))
_DAY_PARAM = "a service day YYYY-MM-DD (default: the first of this month for from, today for to)"

_ERROR_TEXTS = {400: "malformed JSON, not an object, or a field of the wrong type",
                401: "no valid token (or wrong name or PIN)",
                403: "the role, the counter rights or the staff network do not allow this",
                404: "no such ticket, counter or action",
                409: "not allowed in the ticket's or counter's state, or the service takes no tickets",
                413: "the body is larger than the limit",
                422: "well-formed but invalid or unknown values (fields named)",
                429: "too many requests; Retry-After says how long to wait",
                503: "the centre's storage cannot accept changes now"}


def _json(schema):
    """A JSON content block."""
    return {"content": {"application/json": {"schema": schema}}}


def _err(*codes):
    """Error responses for the given statuses (429 with its Retry-After header)."""
    out = {}
    for code in codes:
        out[str(code)] = {"description": _ERROR_TEXTS[code], **_json({"$ref": "#/components/schemas/Error"})}
        if code == 429:
            out[str(code)]["headers"] = {"Retry-After": {"description": "seconds to wait",
                                                         "schema": {"type": "string", "pattern": "^[0-9]+$"}}}
    return out


def _ticket_out(status="200"):
    """A response carrying one TICKET."""
    return {status: {"description": "the ticket", **_json(_object({"ticket": {"$ref": "#/components/schemas/Ticket"}},
                                                                   ("ticket",)))}}


def _body(properties: dict, required: tuple[str, ...] = ()) -> dict:
    """A required JSON request body with exactly these fields."""
    return {"required": True, **_json(_object(properties, required))}


_AUTH = [{"bearer": []}]
_ID = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]
_COUNTER = [{"name": "counter", "in": "path", "required": True, "schema": {"type": "string"}}]
_STAFF_ERRORS = (400, 401, 403, 404, 409, 413, 422, 503)

_STATUS = {"enum": ["ok", "degraded", "fail"]}
_HEALTH = _object({
    "status": _STATUS, "version": _TEXT, "checked_at": _TIME,
    "checks": _object({
        "store": _object({"status": _STATUS, "writable": {"type": "boolean"}, "error": _TEXT}, ("status", "writable")),
        "disk": _object({"status": _STATUS, "free_bytes": {"type": "integer", "minimum": 0},
                         "total_bytes": {"type": "integer", "minimum": 0},
                         "free_percent": {"type": "number", "minimum": 0, "maximum": 100}, "error": _TEXT}, ("status",)),
        "printer": _object({"status": _STATUS, "state": _TEXT, "pending": {"type": "integer", "minimum": 0},
                            "error": _TEXT}, ("status",)),
        "sync": _object({"status": _STATUS, "enrolled": {"type": "boolean"},
                         "last_success_age_s": {"type": ["integer", "null"]},
                         "failing_for_a_day": {"type": "boolean"}, "pending": {"type": ["integer", "null"]},
                         "clock_offset_s": {"type": ["number", "null"]}, "clock_skewed": {"type": "boolean"},
                         "error": _TEXT}, ("status",))},
        ("store", "disk", "printer", "sync"))},
    ("status", "version", "checked_at", "checks"))

SPEC = {
    "openapi": "3.1.0",
    "info": {"title": "Public service centre kiosk API", "version": "1",
             "description": "Tickets, queue actions and display state of one centre. Every error body is "
                            "{\"error\": {\"code\", \"message\"}}. Times are ISO 8601 UTC with Z. Staff "
                            "endpoints work only from the centre's staff networks (403 outside_staff_network)."},
    "servers": [{"url": "/api/v1"}],
    "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
                   "schemas": {"Ticket": _TICKET, "Error": _ERROR}},
    "paths": {
        "/health": {"get": {
            "summary": "Health of the centre machine for monitoring (no login, no personal data)",
            "description": "The same document is served at /healthz (outside /api/v1). Store writable, free disk, printer, age of the last successful sync and the clock "
                           "offset measured then, version. 200 when ok or degraded (a warning), 503 when failing.",
            "responses": {"200": {"description": "ok or degraded", **_json(_HEALTH)},
                          "503": {"description": "failing: the centre cannot store tickets", **_json(_HEALTH)}}}},
        "/services": {"get": {
            "summary": "Configured services",
            "responses": {"200": {"description": "services", **_json(_object(
                {"services": {"type": "array", "items": _SERVICE}}, ("services",)))}}}},
        "/tickets": {"post": {
            "summary": "Take a ticket",
            "requestBody": _body({"service": _TEXT, "priority": {"type": "string", "default": "normal"},
                                  "lang": {"enum": _LANGS}}, ("service",)),
            "responses": {**_ticket_out("201"), **_err(400, 409, 413, 422, 429, 503)}}},
        "/appointments/check-in": {"post": {
            "summary": "Check a booking in by its short code or its scanned QR text (verified offline)",
            "requestBody": _body({"code": {"type": "string", "description": "the short code (any case, dashes "
                                                                            "allowed) or the whole QR text"},
                                  "lang": {"enum": _LANGS}}, ("code",)),
            "responses": {**_ticket_out("201"), **{str(status): {"description": text, **_json(
                {"$ref": "#/components/schemas/Error"})} for status, text in (
                (404, "not_found: no such booking at this centre, or a QR that does not verify"),
                (409, "too_early (check-in opens early_min before the slot), too_late (grace_min after its start), "
                      "already_checked_in, or cancelled"))}, **_err(400, 413, 422, 429, 503)}}},
        "/tickets/{id}": {"get": {
            "summary": "One ticket (no staff ids in its events)", "parameters": _ID,
            "responses": {**_ticket_out(), **_err(404)}}},
        "/tickets/{id}/feedback": {"post": {
            "summary": "The citizen's anonymous rating of a finished visit, once per ticket (no sign-in: "
                       "the ticket id is the secret; rate-limited per address)", "parameters": _ID,
            "requestBody": _body({"score": {"type": "integer", "minimum": 1, "maximum": 5},
                                  "comment": {"type": "string", "maxLength": 500}}, ("score",)),
            "responses": {"201": {"description": "stored", **_json(_object({"feedback": _object({
                "ticket": _ULID, "score": {"type": "integer", "minimum": 1, "maximum": 5}, "at": _TIME},
                ("ticket", "score", "at"))}, ("feedback",)))},
                "409": {"description": "already_rated (one answer per ticket), or invalid_transition unless "
                                       "the visit is finished", **_json({"$ref": "#/components/schemas/Error"})},
                **_err(400, 404, 413, 422, 429, 503)}}},
        "/reports/queue": {"get": {
            "summary": "The queue report of a range of service days (live and archived): per service, "
                       "attendant, counter, hour x weekday and day; feedback; as JSON, CSV or XLSX",
            "security": _AUTH,
            "parameters": [{"name": "from", "in": "query", "required": False, "description": _DAY_PARAM,
                            "schema": _DATE},
                           {"name": "to", "in": "query", "required": False, "description": _DAY_PARAM
                            + "; at most 366 days after from", "schema": _DATE},
                           {"name": "format", "in": "query", "required": False,
                            "schema": {"enum": ["json", "csv", "xlsx"], "default": "json"}}],
            "responses": {"200": {"description": "the report (definitions in docs/reports.md)", "content": {
                "application/json": {"schema": _QUEUE_REPORT},
                "text/csv": {"schema": {"type": "string"}},
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":
                    {"schema": {"type": "string", "format": "binary"}}}},
                **_err(401, 403, 422)}}},
        "/display": {"get": {
            "summary": "Hall display state (no personal data)",
            "responses": {"200": {"description": "now serving and waiting counts", **_json(_object({
                "now_serving": {"type": "array", "items": _object(
                    {"number": _TEXT, "counter": _TEXT, "called_at": _TIME}, ("number", "counter", "called_at"))},
                "waiting": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}}},
                ("now_serving", "waiting")))}}}},
        "/auth/token": {"post": {
            "summary": "Staff login with name and PIN (throttled per name and per address)",
            "requestBody": _body({"staff": _TEXT, "pin": _TEXT}, ("staff", "pin")),
            "responses": {"200": {"description": "token", **_json(_object({
                "token": _TEXT, "expires_at": _TIME, "role": {"enum": ["attendant", "supervisor"]}},
                ("token", "expires_at", "role")))},
                **_err(400, 401, 403, 413, 422, 429, 503)}}},
        "/counters/{counter}/call-next": {"post": {
            "summary": "Call the next ticket for a counter (a free counter is taken by the first call)",
            "security": _AUTH, "parameters": _COUNTER,
            "requestBody": {"required": False, **_json(_object({}))},
            "responses": {"200": {"description": "called", **_json(_object({
                "ticket": {"$ref": "#/components/schemas/Ticket"}, "reason": _TEXT,
                "rule": {"enum": ["overdue", "appointment", "priority", "turn", "next", "early"]}},
                ("ticket", "reason", "rule")))},
                "204": {"description": "nobody is waiting for this counter's services"},
                **_err(*_STAFF_ERRORS)}}},
        "/tickets/{id}/call": {"post": {
            "summary": "Call a specific ticket (audited as out of turn)", "security": _AUTH, "parameters": _ID,
            "requestBody": _body({"counter": _TEXT}, ("counter",)),
            "responses": {**_ticket_out(), **_err(*_STAFF_ERRORS)}}},
        "/tickets/{id}/transfer": {"post": {
            "summary": "Transfer to another service (keeps the arrival time)", "security": _AUTH, "parameters": _ID,
            "requestBody": _body({"service": _TEXT}, ("service",)),
            "responses": {**_ticket_out(), **_err(*_STAFF_ERRORS)}}},
        "/tickets/{id}/{action}": {"post": {
            "summary": "recall, start, finish, no-show, hold, requeue, reactivate, cancel", "security": _AUTH,
            "parameters": _ID + [{"name": "action", "in": "path", "required": True, "schema": {
                "enum": ["recall", "start", "finish", "no-show", "hold", "requeue", "reactivate", "cancel"]}}],
            "requestBody": {"required": False, **_json(_object({"counter": _TEXT}))},
            "responses": {**_ticket_out(), **_err(*_STAFF_ERRORS)}}},
    },
}
