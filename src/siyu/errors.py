"""Domain errors carry their HTTP status so the API maps them in one place."""

from __future__ import annotations


class DomainError(Exception):
    """A refusal a user can act on: ``code`` is stable for clients, ``message`` is for people."""

    http_status = 400

    def __init__(self, code: str, message: str, *, http_status: int | None = None, path: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.path = path
        if http_status is not None:
            self.http_status = http_status


class NotFound(DomainError):
    http_status = 404


class ValidationFailed(DomainError):
    http_status = 422


class PermissionDenied(DomainError):
    http_status = 403
