"""Errors of the sync API, turned into `{"error": {"code", "message", ...}}` responses in one place."""
from __future__ import annotations


class ApiError(Exception):
    """A refusal with an HTTP status, a stable snake_case code and a human message."""

    def __init__(self, status: int, code: str, message: str, **extra):
        """Remember what the client will be told; `extra` fields go into the error object."""
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def body(self) -> dict:
        """The JSON body of the response."""
        return {"error": {"code": self.code, "message": self.message, **self.extra}}


class CentralError(Exception):
    """An operator command could not be done; the message says why and what to do."""
