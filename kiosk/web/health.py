"""`GET /healthz` (also `/api/v1/health`, in the API's OpenAPI document): the machine's health for monitoring (no login, no personal data): store
writable, disk space, printer, last sync and clock offset, version. 200 when ok or degraded,
503 when failing."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from kiosk import __version__
from kiosk.app import kiosk
from kiosk.ops import health

bp = Blueprint("health", __name__)


def _printer() -> dict | None:
    """The print queue's status, as the staff screens show it."""
    from kiosk.web.counter import printer_info
    return printer_info()


def current_health() -> dict:
    """Every check, now."""
    state = kiosk()
    return health.check(current_app.config["DATA_DIR"], current_app.config, state.clock.now(),
                        printer=_printer, sync=state.sync_status, version=__version__)


@bp.get("/healthz")
@bp.get("/api/v1/health")
def healthz():
    """The health document; monitoring alerts on 503 (and on "degraded" if it reads the body)."""
    result = current_health()
    response = jsonify(result)
    response.status_code = 503 if result["status"] == health.FAIL else 200
    response.headers["Cache-Control"] = "no-store"
    return response
