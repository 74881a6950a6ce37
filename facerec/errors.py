"""Errors that reach a caller as a JSON body with a 4xx/5xx status."""

from __future__ import annotations


class ApiError(Exception):
    """An error whose message is safe to show to the caller."""

    status = 400
    key = "error"

    def __init__(self, message: str, *, status: int | None = None, reason: str | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.reason = reason or type(self).__name__

    def body(self) -> dict[str, str]:
        return {self.key: self.message, "reason": self.reason}


class BadRequest(ApiError):
    status = 400


class InvalidImage(BadRequest):
    """Bytes that are not a decodable image, or a field that is not a data URI."""


class NoFace(BadRequest):
    pass


class LimitExceeded(ApiError):
    """A configured limit was exceeded; the message names the limit."""

    status = 413


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class ServiceUnavailable(ApiError):
    status = 503


class DatabaseUnavailable(ServiceUnavailable):
    pass


class ExtractionUnavailable(ServiceUnavailable):
    pass


class ModelUnavailable(RuntimeError):
    """A model cannot run as configured (its weights missing or not the pinned ones, the device or
    package asked for absent): the service must not start."""


class InvalidSetting(ValueError):
    """A setting's value a service cannot run with, found when it starts: it stops, naming the variable."""
