"""Turn exceptions into answers in one place: JSON for the API, an HTML page for screens."""
from __future__ import annotations

import logging

from flask import Flask, jsonify, make_response, render_template, request
from werkzeug.exceptions import HTTPException

from kiosk.domain.errors import KioskError
from kiosk.store import StoreError

log = logging.getLogger(__name__)

_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
               415: "unsupported_media_type", 429: "rate_limited"}


def wants_json() -> bool:
    """API paths, and clients that ask for JSON, get JSON errors."""
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def error_response(code: str, message: str, status: int, **extra):
    """The one error shape: {"error": {"code", "message", ...}} or the error page."""
    if wants_json():
        body = {"error": {"code": code, "message": message, **extra}}
        return jsonify(body), status
    return render_template("errors/error.html", code=code, message=message, status=status, extra=extra), status


def register(app: Flask) -> None:
    """Install the handlers on `app`."""

    @app.errorhandler(KioskError)
    def kiosk_error(exc: KioskError):
        """A refusal decided by the use cases (with Retry-After when it says how long to wait)."""
        extra = {k: v for k, v in exc.details.items() if k == "fields"}
        response = make_response(error_response(exc.code, exc.message, exc.status, **extra))
        if "retry_after_s" in exc.details:
            response.headers["Retry-After"] = str(exc.details["retry_after_s"])
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        """Werkzeug's errors (404, 405 with Allow, 413 ...)."""
        code = _HTTP_CODES.get(exc.code, "http_error")
        message = {413: f"the request body is larger than {app.config['MAX_CONTENT_LENGTH']} bytes"}.get(
            exc.code, exc.description or exc.name)
        # error_response gives (body, status) where the body is a str for pages: make a response
        # before adding headers, else a wrong method on any page became a 500
        response = make_response(error_response(code, message, exc.code))
        if exc.code == 405 and exc.valid_methods:
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(StoreError)
    def store_error(exc: StoreError):
        """The store cannot write: 503, and the supervisor is asked for."""
        log.error("store error: %s", exc)
        return error_response("storage_error", "the centre's storage cannot accept changes now; "
                              "call the supervisor", 503)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        """A bug: logged, answered 500 without details."""
        log.exception("unexpected error on %s %s", request.method, request.path)
        return error_response("internal_error", "something went wrong; nothing was changed by this request", 500)
