"""Server-sent event streams for the screens.

Each client gets its own bounded queue from the Broker (a slow client is dropped, never a slow
publisher); the stream starts with a `ping` event (the page re-fetches its state on it, which also
covers whatever happened while it was reconnecting), sends a comment heartbeat so dead connections
are noticed, and ends after a while so the browser reconnects and staff sessions are re-checked.
Event names are kebab-case (`queue-changed`, `ticket-called`); data is one line of JSON.
"""
from __future__ import annotations

import json
import logging
import queue
import re
import time
from typing import Callable

from flask import Blueprint, Response, current_app

from kiosk.app import kiosk
from kiosk.web.auth import staff_required

log = logging.getLogger(__name__)

bp = Blueprint("sse", __name__, url_prefix="/events")

EVENT_NAME = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
HEARTBEAT_S = 15.0
MAX_AGE_S = 600.0
RETRY_MS = 1000

Transform = Callable[[str, dict], "dict | None"]


def format_event(name: str, data: dict) -> str:
    """One SSE message."""
    if not EVENT_NAME.fullmatch(name):
        raise ValueError(f"event names are kebab-case, got {name!r}")
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n"


def event_stream(transform: Transform | None = None) -> Response:
    """A streaming response fed by a fresh Broker subscription (subscribed before the first byte,
    so no event between the page's render and the stream's start is lost)."""
    state = kiosk()
    config = current_app.config
    heartbeat_s = float(config.get("SSE_HEARTBEAT_S", HEARTBEAT_S))
    max_age_s = float(config.get("SSE_MAX_AGE_S", MAX_AGE_S))
    broker, stopping = state.events, state.stopping
    subscription = broker.subscribe()

    def generate():
        """ping, then events and heartbeats until the client leaves, the app stops or time is up."""
        ends_at = time.monotonic() + max_age_s
        try:
            yield f"retry: {RETRY_MS}\n" + format_event("ping", {})
            while not stopping.is_set():
                left = ends_at - time.monotonic()
                if left <= 0:
                    return
                try:
                    name, data = subscription.get(timeout=min(heartbeat_s, left))
                except queue.Empty:
                    yield ": heartbeat\n\n"
                    continue
                if name == "__closed__":
                    return
                if transform is not None:
                    data = transform(name, data)
                    if data is None:
                        continue
                try:
                    yield format_event(name, data)
                except ValueError:
                    log.error("not sending event %r: its name is not kebab-case", name)
        finally:
            broker.unsubscribe(subscription)

    response = Response(generate(), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"
    return response


def display_transform() -> Transform:
    """What the hall display may see: numbers, counters and the clips to announce them."""
    from kiosk.web.display import clip_urls
    app = current_app._get_current_object()

    def transform(name: str, data: dict) -> dict | None:
        """Strip events to display-safe fields; add the announcement's clips to calls."""
        if name == "ticket-called":
            with app.app_context():
                clips = clip_urls(data["number"], str(data["counter"]), data.get("lang") or app.config["DEFAULT_LANGUAGE"])
            return {"number": data["number"], "counter": data["counter"], "clips": clips}
        if name == "queue-changed":
            return {}
        return None

    return transform


@bp.get("/display")
def display_events():
    """The hall display's stream (public: it carries no personal data)."""
    return event_stream(display_transform())


@bp.get("/staff")
@staff_required("attendant", "supervisor")
def staff_events():
    """The counter and supervisor screens' stream."""
    return event_stream(lambda name, data: data if name in ("queue-changed", "ticket-called") else None)
