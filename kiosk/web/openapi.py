"""OpenAPI 3.1 description of the JSON API v1, served at /api/v1/openapi.json."""

_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["code", "message"],
    "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                   "fields": {"type": "object", "additionalProperties": {"type": "string"}}}}}}
_NAMES = {"type": "object", "required": ["ar", "ckb", "en"],
          "properties": {k: {"type": "string"} for k in ("ar", "ckb", "en")}}
_STATES = ["waiting", "called", "serving", "done", "no_show", "held", "transferred", "cancelled"]
_EVENT = {"type": "object", "required": ["state", "at"], "properties": {
    "state": {"enum": _STATES}, "at": {"type": "string", "format": "date-time"}, "counter": {"type": "string"},
    "by": {"type": "string"}, "action": {"type": "string"}, "reason": {"type": "string"}}}
_TICKET = {"type": "object", "required": ["id", "number", "service", "priority", "lang", "state", "issued_at",
                                          "ahead", "estimated_wait_s", "events"],
           "properties": {
               "id": {"type": "string", "pattern": "^[0-9A-HJKMNP-TV-Z]{26}$"},
               "number": {"type": "string", "examples": ["A-007"]},
               "service": {"type": "string"}, "priority": {"type": "string"},
               "lang": {"enum": ["ar", "ckb", "en"]}, "state": {"enum": _STATES},
               "issued_at": {"type": "string", "format": "date-time"},
               "arrival_at": {"type": "string", "format": "date-time"},
               "ahead": {"type": "integer", "minimum": 0},
               "estimated_wait_s": {"type": "integer", "minimum": 0},
               "counter": {"type": ["string", "null"]},
               "qr": {"type": "string"},
               "events": {"type": "array", "items": _EVENT}}}


def _json(schema):
    """A JSON content block."""
    return {"content": {"application/json": {"schema": schema}}}


def _err(*codes):
    """Error responses for the given statuses."""
    return {str(c): {"description": "error", **_json(_ERROR)} for c in codes}


def _ticket_out(status="200"):
    """A response carrying one TICKET."""
    return {status: {"description": "the ticket", **_json({"type": "object", "properties": {"ticket": _TICKET}})}}


_AUTH = [{"bearer": []}]
_ID = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]

SPEC = {
    "openapi": "3.1.0",
    "info": {"title": "Public service centre kiosk API", "version": "1",
             "description": "Tickets, queue actions and display state of one centre. Every error body is "
                            "{\"error\": {\"code\", \"message\"}}. Times are ISO 8601 UTC with Z."},
    "servers": [{"url": "/api/v1"}],
    "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
                   "schemas": {"Ticket": _TICKET, "Error": _ERROR}},
    "paths": {
        "/services": {"get": {"summary": "Configured services", "responses": {"200": {"description": "services", **_json(
            {"type": "object", "properties": {"services": {"type": "array", "items": {"type": "object", "properties": {
                "code": {"type": "string"}, "prefix": {"type": "string"}, "names": _NAMES, "active": {"type": "boolean"}}}}}})}}}},
        "/tickets": {"post": {
            "summary": "Take a ticket",
            "requestBody": {"required": True, **_json({"type": "object", "additionalProperties": False, "required": ["service"],
                                                        "properties": {"service": {"type": "string"},
                                                                       "priority": {"type": "string", "default": "normal"},
                                                                       "lang": {"enum": ["ar", "ckb", "en"]}}})},
            "responses": {**_ticket_out("201"), **_err(400, 409, 413, 422, 429)}}},
        "/tickets/{id}": {"get": {"summary": "One ticket", "parameters": _ID,
                                  "responses": {**_ticket_out(), **_err(404)}}},
        "/display": {"get": {"summary": "Hall display state (no personal data)", "responses": {"200": {
            "description": "now serving and waiting counts", **_json({"type": "object", "properties": {
                "now_serving": {"type": "array", "items": {"type": "object", "properties": {
                    "number": {"type": "string"}, "counter": {"type": "string"}, "called_at": {"type": "string"}}}},
                "waiting": {"type": "object", "additionalProperties": {"type": "integer"}}}})}}}},
        "/auth/token": {"post": {
            "summary": "Staff login with name and PIN",
            "requestBody": {"required": True, **_json({"type": "object", "additionalProperties": False,
                                                        "required": ["staff", "pin"],
                                                        "properties": {"staff": {"type": "string"}, "pin": {"type": "string"}}})},
            "responses": {"200": {"description": "token", **_json({"type": "object", "properties": {
                "token": {"type": "string"}, "expires_at": {"type": "string"}, "role": {"type": "string"}}})},
                **_err(400, 401, 422, 429)}}},
        "/counters/{counter}/call-next": {"post": {
            "summary": "Call the next ticket for a counter", "security": _AUTH,
            "parameters": [{"name": "counter", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "called", **_json({"type": "object", "properties": {
                "ticket": _TICKET, "reason": {"type": "string"}, "rule": {"enum": ["overdue", "priority", "turn", "next"]}}})},
                "204": {"description": "nobody is waiting for this counter's services"}, **_err(401, 403, 404)}}},
        "/tickets/{id}/call": {"post": {
            "summary": "Call a specific ticket", "security": _AUTH, "parameters": _ID,
            "requestBody": {"required": True, **_json({"type": "object", "required": ["counter"],
                                                        "properties": {"counter": {"type": "string"}}})},
            "responses": {**_ticket_out(), **_err(400, 401, 404, 409, 422)}}},
        "/tickets/{id}/transfer": {"post": {
            "summary": "Transfer to another service (keeps the arrival time)", "security": _AUTH, "parameters": _ID,
            "requestBody": {"required": True, **_json({"type": "object", "required": ["service"],
                                                        "properties": {"service": {"type": "string"}}})},
            "responses": {**_ticket_out(), **_err(400, 401, 404, 409, 422)}}},
        "/tickets/{id}/{action}": {"post": {
            "summary": "recall, start, finish, no-show, hold, requeue, reactivate, cancel", "security": _AUTH,
            "parameters": _ID + [{"name": "action", "in": "path", "required": True, "schema": {
                "enum": ["recall", "start", "finish", "no-show", "hold", "requeue", "reactivate", "cancel"]}}],
            "responses": {**_ticket_out(), **_err(400, 401, 404, 409)}}},
    },
}
