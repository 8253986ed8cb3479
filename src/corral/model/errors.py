"""One error tree for all of Corral, rendered to HTTP, CLI or log lines only at the edges.

Why: layers raise what went wrong in domain terms (which field, which resource); the server turns it into a status
code and a JSON body, the CLI into one line and exit code 1.
"""

from __future__ import annotations


class CorralError(Exception):
    """Base of every error Corral raises on purpose."""

    status = 500
    code = "internal"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, str]:
        body = {"error": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body


class InvalidInput(CorralError):
    """The caller sent something malformed or out of range; the message names the field and the reason."""

    status = 422
    code = "invalid"


class NotFound(CorralError):
    status = 404
    code = "not_found"


class Conflict(CorralError):
    """The request collides with existing state (duplicate name, resource in use)."""

    status = 409
    code = "conflict"


class Unauthorized(CorralError):
    status = 401
    code = "unauthorized"


class Forbidden(CorralError):
    status = 403
    code = "forbidden"


class PayloadTooLarge(CorralError):
    """A request body over the server's limit; refused before any of it is parsed."""

    status = 413
    code = "too_large"


class TooManyRequests(CorralError):
    """Refused for a while (e.g. too many failed authentications from one address); `retry_after` in seconds."""

    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: float, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.retry_after = retry_after


class Unavailable(CorralError):
    """A dependency (Docker engine, network namespace, database) is not there right now: retry later."""

    status = 503
    code = "unavailable"
    retry_after_seconds = 5  # sent as the HTTP Retry-After header


DATABASE_UNAVAILABLE = "the server's database is unavailable"  # how a database outage's message starts (503)


class ProvisioningFailed(CorralError):
    """A host driver could not create or remove a host; the message says which step failed."""

    status = 500
    code = "provisioning_failed"


class Gone(CorralError):
    """A resume point older than what the server keeps (or from a run that lost it): list again, then watch."""

    status = 410
    code = "resync-required"
