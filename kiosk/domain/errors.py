"""The kiosk's exceptions; web/errors.py turns each into an HTTP status and a JSON or HTML error."""


class KioskError(Exception):
    """A request the centre cannot carry out; `code` is stable, `message` is English for logs and API."""

    code = "bad_request"
    status = 400

    def __init__(self, message: str, **details):
        """Keep the message and any machine-readable details (e.g. fields)."""
        super().__init__(message)
        self.message = message
        self.details = details


class BadRequest(KioskError):
    """Malformed input: not JSON, wrong types, unknown fields."""


class Unauthorized(KioskError):
    """No valid credentials."""

    code, status = "unauthorized", 401


class Forbidden(KioskError):
    """Valid credentials, but not for this."""

    code, status = "forbidden", 403


class NotFound(KioskError):
    """No such ticket, counter, service..."""

    code, status = "not_found", 404


class InvalidTransition(KioskError):
    """The action is not allowed in the ticket's current state."""

    code, status = "invalid_transition", 409


class NotYourTicket(Forbidden):
    """An attendant acting on a ticket that was not called at the counter they hold."""

    code = "not_your_ticket"


class OutsideStaffNetwork(Forbidden):
    """A staff page, the staff API or a staff stream asked for from outside STAFF_NETWORKS."""

    code = "outside_staff_network"


class AlreadyRated(KioskError):
    """The ticket's feedback was already given (one answer per ticket)."""

    code, status = "already_rated", 409


class CounterTaken(KioskError):
    """The counter is held by another attendant."""

    code, status = "counter_taken", 409


class CounterNotOpen(KioskError):
    """The counter is on a break or closed, so it takes no calls."""

    code, status = "counter_not_open", 409


class ServiceUnavailable(KioskError):
    """The service exists but takes no tickets now (switched off or daily cap reached)."""

    code, status = "service_unavailable", 409


class UnknownService(KioskError):
    """The service code names no configured service."""

    code, status = "unknown_service", 422


class ValidationFailed(KioskError):
    """Well-formed input with invalid values; `fields` maps each field to what is wrong."""

    code, status = "validation_failed", 422

    def __init__(self, message: str, fields: dict[str, str]):
        """Name the offending fields."""
        super().__init__(message, fields=fields)
        self.fields = fields


class RateLimited(KioskError):
    """Too many requests from one terminal."""

    code, status = "rate_limited", 429


class PayloadTooLarge(KioskError):
    """The body is over the configured limit."""

    code, status = "payload_too_large", 413


class CheckInRefused(KioskError):
    """An appointment that cannot check in now; `code` says why: too_early, too_late,
    already_checked_in or cancelled."""

    status = 409

    def __init__(self, code: str, message: str, **details):
        """Keep the reason code and the details a screen needs (times, the ticket already issued)."""
        super().__init__(message, **details)
        self.code = code
