"""JSON API v1 (the integration contract in docs/api.md and /api/v1/openapi.json)."""
from __future__ import annotations

import datetime as dt
import json
import threading
import time
from functools import wraps

from flask import Blueprint, Response, current_app, g, jsonify, request

from kiosk import services
from kiosk.app import kiosk
from kiosk.clock import iso
from kiosk.domain import queue_report as report_domain
from kiosk.domain import report_files
from kiosk.domain.errors import BadRequest, NotFound, RateLimited, Unauthorized, ValidationFailed
from kiosk.security import pin_fingerprint
from kiosk.usecases import insight
from kiosk.web.auth import require_staff_network
from kiosk.web.openapi import SPEC

bp = Blueprint("api", __name__, url_prefix="/api/v1")

ACTIONS = {"recall": "recall", "start": "start", "finish": "finish", "no-show": "no_show", "hold": "hold",
           "requeue": "requeue", "reactivate": "reactivate", "cancel": "cancel"}


def body(schema: dict[str, type], required: tuple[str, ...] = ()) -> dict:
    """The request's JSON object, checked against `schema` (field -> type); nothing else accepted."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        data = {}
    else:
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadRequest(f"the body is not valid JSON: {exc}") from None
        except RecursionError:
            # a few KB of "[[[[..." exhausts the parser's stack; no request of ours nests at all
            raise BadRequest("the body is nested too deeply") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    unknown = sorted(set(data) - set(schema))
    if unknown:
        raise ValidationFailed("unknown fields", {k: "unknown field" for k in unknown})
    for k, v in data.items():
        if schema[k] is int and isinstance(v, float) and v.is_integer():
            data[k] = int(v)  # JSON has one number type: 1.0 is the integer 1 (as JSON Schema says)
    wrong = {k: f"must be a {schema[k].__name__.replace('str', 'string')}"
             for k, v in data.items() if not isinstance(v, schema[k]) or isinstance(v, bool) != (schema[k] is bool)}
    if wrong:
        raise BadRequest("wrong types: " + ", ".join(f"{k} {v}" for k, v in sorted(wrong.items())), fields=wrong)
    missing = [k for k in required if k not in data]
    if missing:
        raise ValidationFailed("missing fields", {k: "required" for k in missing})
    return data


class RateLimiter:
    """Token bucket per client address (the kiosk is one process, so memory is the right place)."""

    def __init__(self):
        """No buckets yet."""
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, per_minute: int) -> bool:
        """Spend one token for `key`; False when none is left."""
        if per_minute <= 0:
            return True
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(per_minute), now))
            tokens = min(float(per_minute), tokens + (now - last) * per_minute / 60.0)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                return False
            self._buckets[key] = (tokens - 1, now)
            if len(self._buckets) > 10000:
                self._buckets.clear()
            return True


class AppLimiter:
    """The current app's RateLimiter: buckets belong to one centre app, not to the process (two apps
    in one process, as in the tests, must not spend each other's tokens)."""

    def allow(self, key: str, per_minute: int) -> bool:
        """RateLimiter.allow on the current app's buckets."""
        return current_app.extensions.setdefault("kiosk_limiter", RateLimiter()).allow(key, per_minute)


limiter = AppLimiter()


def staff_required(*roles: str):
    """Require a valid bearer token (of one of `roles`, when given); the staff document lands on g.staff."""
    def decorate(view):
        """Wrap one view."""
        @wraps(view)
        def wrapper(*args, **kwargs):
            """Check the network and the token, then run the view."""
            require_staff_network()
            header = request.headers.get("Authorization", "")
            if not header.startswith("Bearer "):
                raise Unauthorized("missing bearer token")
            record = kiosk().sessions.get(header[7:].strip(), kind="api")
            if record is None:
                raise Unauthorized("invalid or expired token")
            staff = kiosk().centre.store.get("staff", record.staff)
            if not staff or not staff.get("active", True) or pin_fingerprint(staff["pin_hash"]) != record.fingerprint:
                raise Unauthorized("invalid or expired token")
            if roles:
                services.require_role(staff, *roles)
            g.staff = staff
            return view(*args, **kwargs)
        return wrapper
    return decorate


@bp.after_request
def no_store(response):
    """API answers describe live state: never cache them."""
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3.1 description of this API."""
    return jsonify(SPEC)


@bp.get("/services")
def list_services():
    """Services with their names in the three languages."""
    centre = kiosk().centre
    out = []
    for s in services.services_list(centre):
        state = services.availability(centre, s)
        out.append({"code": s["code"], "prefix": s["prefix"], "names": s["names"], "active": s.get("active", True),
                    "fee_iqd": s.get("fee_iqd", 0), "documents": s.get("documents", []), "pictogram": s.get("pictogram"),
                    "available": state.open, "unavailable_reason": state.reason,
                    "reopens_at": iso(state.reopens_at) if state.reopens_at else None})
    return jsonify({"services": out})


@bp.post("/tickets")
def issue_ticket():
    """Take a ticket for a service."""
    data = body({"service": str, "priority": str, "lang": str}, required=("service",))
    if not limiter.allow(request.remote_addr or "?", kiosk().app.config["TICKET_RATE_PER_MIN"]):
        raise RateLimited("too many tickets from this terminal; wait a moment")
    ticket = services.issue_ticket(kiosk().centre, service=data["service"],
                                   priority=data.get("priority", services.NORMAL), lang=data.get("lang"))
    response = jsonify({"ticket": ticket})
    response.status_code = 201
    response.headers["Location"] = f"/api/v1/tickets/{ticket['id']}"
    return response


# Staff actions check the counter rights (services.authorize) and act in one store transaction:
# nobody takes the counter in between, and a refused action also undoes the counter the first
# call would have taken, so a failed request changes nothing.


def public_ticket(ticket: dict) -> dict:
    """A ticket as anyone may see it: without the staff ids in its history (who served whom is
    for the audit, not for whoever holds a ticket id)."""
    return {**ticket, "events": [{k: v for k, v in e.items() if k != "by"} for e in ticket["events"]]}


@bp.get("/tickets/<ticket_id>")
def get_ticket(ticket_id):
    """One ticket, with its place in the queue."""
    return jsonify({"ticket": public_ticket(services.get_ticket(kiosk().centre, ticket_id))})


@bp.post("/tickets/<ticket_id>/feedback")
def give_feedback(ticket_id):
    """The citizen's anonymous rating of a finished visit (public: the ticket id is the secret)."""
    data = body({"score": int, "comment": str}, required=("score",))
    if not limiter.allow(request.remote_addr or "?", kiosk().app.config["TICKET_RATE_PER_MIN"]):
        raise RateLimited("too many answers from this address; wait a moment")
    doc = insight.give_feedback(kiosk().centre, ticket_id, score=data["score"], comment=data.get("comment"))
    return jsonify({"feedback": {k: doc[k] for k in ("ticket", "score", "at")}}), 201


REPORT_TYPES = {"csv": "text/csv", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


@bp.get("/reports/queue")
@staff_required("supervisor")
def queue_report():
    """The queue report of a range of service days, as JSON, CSV or XLSX."""
    centre = kiosk().centre
    fmt = request.args.get("format", "json")
    if fmt not in ("json", *REPORT_TYPES):
        raise ValidationFailed("unknown format", {"format": "json, csv or xlsx"})
    first, last = report_domain.parse_range(request.args.get("from"), request.args.get("to"), centre.today())
    report = insight.queue_report(centre, first, last)
    if fmt == "json":
        return jsonify(report)
    scope = centre.config["CENTRE"]
    content = ("\ufeff" + report_files.to_csv(report, scope)).encode("utf-8") if fmt == "csv" \
        else report_files.to_xlsx(report, scope)
    response = Response(content, mimetype=REPORT_TYPES[fmt])
    response.headers["Content-Disposition"] = f'attachment; filename="queue-{scope}-{first}-{last}.{fmt}"'
    return response


@bp.get("/display")
def display():
    """What the hall display shows (no personal data)."""
    state = services.display_state(kiosk().centre)
    return jsonify({"now_serving": [{k: x[k] for k in ("number", "counter", "called_at")} for x in state["now_serving"]],
                    "waiting": state["waiting"]})


@bp.post("/auth/token")
def token():
    """Exchange a staff name and PIN for a bearer token."""
    require_staff_network()
    data = body({"staff": str, "pin": str}, required=("staff", "pin"))
    staff = services.login(kiosk().centre, kiosk().logins, data["staff"], data["pin"],
                           address=request.remote_addr or "")
    # an opaque id of a server-side session: revoked by a PIN change or "sign out everywhere"
    token, record = kiosk().sessions.start(staff, kind="api", address=request.remote_addr or "")
    expires = kiosk().sessions.expires_at(record)
    return jsonify({"token": token, "role": staff["role"],
                    "expires_at": iso(dt.datetime.fromtimestamp(expires, dt.timezone.utc))})


@bp.post("/counters/<counter>/call-next")
@staff_required()
def call_next(counter):
    """Call the next ticket for a counter, with the reason; 204 when nobody is waiting."""
    body({})
    centre = kiosk().centre
    with centre.store.transaction():
        services.authorize(centre, g.staff, action="call_next", counter=counter, take=True)
        result = services.call_next(centre, counter=counter, by=g.staff["id"])
    if result is None:
        return "", 204
    ticket, reason, rule = result
    return jsonify({"ticket": ticket, "reason": reason, "rule": rule})


@bp.post("/tickets/<ticket_id>/call")
@staff_required()
def call_ticket(ticket_id):
    """Call a specific waiting ticket to a counter."""
    data = body({"counter": str}, required=("counter",))
    centre = kiosk().centre
    with centre.store.transaction():
        services.authorize(centre, g.staff, action="call", counter=data["counter"], take=True)
        ticket = services.call_ticket(centre, ticket_id, counter=data["counter"], by=g.staff["id"])
    return jsonify({"ticket": ticket})


@bp.post("/tickets/<ticket_id>/transfer")
@staff_required()
def transfer(ticket_id):
    """Send the citizen to another service's queue, keeping their arrival time."""
    data = body({"service": str}, required=("service",))
    centre = kiosk().centre
    with centre.store.transaction():
        services.authorize(centre, g.staff, action="transfer", ticket_id=ticket_id)
        ticket = services.transfer(centre, ticket_id, service=data["service"], by=g.staff["id"])
    return jsonify({"ticket": ticket})


@bp.post("/tickets/<ticket_id>/<action>")
@staff_required()
def ticket_action(ticket_id, action):
    """recall, start, finish, no-show, hold, requeue, reactivate, cancel."""
    if action not in ACTIONS:
        raise NotFound(f"unknown action {action!r}; use one of {', '.join(ACTIONS)}")
    data = body({"counter": str})
    centre = kiosk().centre
    with centre.store.transaction():
        # a counter named in the body (recall) must exist and, for an attendant, be the ticket's own
        services.authorize(centre, g.staff, action=ACTIONS[action], counter=data.get("counter"), ticket_id=ticket_id)
        ticket = services.act(centre, ticket_id, ACTIONS[action], by=g.staff["id"], counter=data.get("counter"))
    return jsonify({"ticket": ticket})
