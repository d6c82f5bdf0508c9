"""Server-sent event streams for the screens: who may listen, and what each kind of screen hears.

A stream is requested like any page, so sessions, staff checks and security headers apply; the
view then hands the connection to the stream hub (kiosk/web/streams.py), which keeps it open on the
server's event loop without holding a worker thread. The stream starts with a `ping` event (the
page re-fetches its state on it, which also covers whatever happened while it was reconnecting).
Event names are kebab-case (`queue-changed`, `ticket-called`); data is one line of JSON.

Channels:
- `display` (public): `ticket-called` with the number, the counter and the clips that announce it,
  at once; `queue-changed` (no data) at most every `SSE_DISPLAY_COALESCE_S`.
- `staff` (attendants and supervisors): `ticket-called` and coalesced `queue-changed`.
- `ticket:<id>` (a citizen's phone following one ticket; public, the ticket id is the secret of
  whoever holds the slip): `ticket-changed` with its state, place and estimate, whenever they change;
  a change of the ticket itself (its call above all) goes out at once, other queue movements at
  most every `SSE_TICKET_COALESCE_S`.
"""
from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app

from kiosk import services
from kiosk.app import kiosk
from kiosk.domain.errors import NotFound
from kiosk.web.auth import staff_required
from kiosk.web.streams import Channel, StreamHub, format_event  # noqa: F401 - format_event is this module's API too

log = logging.getLogger(__name__)

bp = Blueprint("sse", __name__, url_prefix="/events")


def _handoff(channel: str) -> Response:
    """Hand this connection to the stream hub, or say why live updates are not available."""
    if current_app.extensions.get("kiosk_streams") is None:
        # only the kiosk's own server (flask --app kiosk serve) keeps streams; screens poll instead
        return Response("live updates need the kiosk's server: flask --app kiosk serve\n", status=503,
                        mimetype="text/plain", headers={"Retry-After": "30"})
    return Response(b"", status=200, headers={"X-Kiosk-Stream": channel, "Cache-Control": "no-store"})


@bp.get("/display")
def display_events():
    """The hall display's stream (public: it carries no personal data)."""
    return _handoff("display")


@bp.get("/staff")
@staff_required("attendant", "supervisor")
def staff_events():
    """The counter and supervisor screens' stream."""
    return _handoff("staff")


@bp.get("/ticket/<ticket_id>")
def ticket_events(ticket_id: str):
    """One ticket's stream, for the citizen following it on a phone."""
    services.get_ticket(kiosk().centre, ticket_id)  # NotFound -> 404 before any stream opens
    return _handoff(f"ticket:{ticket_id}")


def _display_transform(app):
    """What the hall display may see: numbers, counters and the clips to announce them."""
    from kiosk.web.display import clip_urls

    def transform(name: str, data: dict):
        """Strip events to display-safe fields; add the announcement's clips to calls."""
        if name == "ticket-called":
            with app.app_context():
                clips = clip_urls(data["number"], str(data["counter"]), data.get("lang") or app.config["DEFAULT_LANGUAGE"])
            return name, {"number": data["number"], "counter": data["counter"], "clips": clips}
        if name == "queue-changed":
            return name, {}
        return None

    return transform


def _staff_transform(name: str, data: dict):
    """Counters and supervisors re-fetch their own views; they need only the event's kind."""
    if name == "ticket-called":
        return name, {"number": data["number"], "counter": data["counter"]}
    if name == "queue-changed":
        return name, {}
    return None


def _ticket_transform(name: str, data: dict):
    """Any change of the queue may move a followed ticket: recompute at the next flush."""
    if name in ("queue-changed", "ticket-called"):
        return "queue-changed", {}
    return None


def _ticket_urgent(name: str, data: dict) -> str | None:
    """The followed ticket that this event is about (its own call or change), if any."""
    return data.get("ticket") if name in ("queue-changed", "ticket-called") else None


def _ticket_states(app):
    """Per followed ticket: what the phone shows (computed in a worker thread, from the indexes)."""
    def per_key(ticket_ids: list[str]) -> dict:
        """`ticket-changed` for each followed ticket that still exists."""
        out = {}
        with app.app_context():
            centre = app.extensions["kiosk"].centre
            for ticket_id in ticket_ids:
                try:
                    view = services.get_ticket(centre, ticket_id)
                except NotFound:
                    continue
                out[ticket_id] = ("ticket-changed", {
                    "number": view["number"], "state": view["state"], "counter": view.get("counter"),
                    "ahead": view["ahead"], "estimated_wait_s": view["estimated_wait_s"],
                    "calls": services.times_called(view)})
        return out

    return per_key


def make_hub(app) -> StreamHub:
    """The stream hub with the kiosk's channels and the app's stream settings."""
    config = app.config
    channels = {
        "display": Channel(_display_transform(app), coalesce_s=float(config["SSE_DISPLAY_COALESCE_S"])),
        "staff": Channel(_staff_transform, coalesce_s=float(config["SSE_STAFF_COALESCE_S"])),
        "ticket": Channel(_ticket_transform, coalesce=frozenset({"queue-changed"}),
                          coalesce_s=float(config["SSE_TICKET_COALESCE_S"]), per_key=_ticket_states(app),
                          urgent=_ticket_urgent),
    }
    return StreamHub(channels, heartbeat_s=float(config["SSE_HEARTBEAT_S"]),
                     max_age_s=float(config["SSE_MAX_AGE_S"]), retry_ms=1000,
                     queue_size=int(config["SSE_QUEUE_SIZE"]))
