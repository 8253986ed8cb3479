"""The one translator from database failures to `Unavailable`: an unreachable database is an outage, not a bug.

Why one place: every repository opens its sessions through `Store.session`, which passes what goes wrong through
`unavailable_from`. A locked, read-only, full or vanished database (SQLite) or a lost connection (PostgreSQL)
becomes `Unavailable` (HTTP 503 with Retry-After; the hub and the orchestrator retry), with a message that says
what is wrong in plain words and never carries SQL or parameters. Errors that are ours (a constraint the caller
maps to `Conflict`, malformed SQL) pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc as sa

from corral.model.errors import DATABASE_UNAVAILABLE, Unavailable

UNAVAILABLE_PREFIX = DATABASE_UNAVAILABLE
RETRY_HINT = "try again shortly"

# what the driver said (lower case) -> how the operator reads it; first match wins
_CAUSES: tuple[tuple[str, str], ...] = (
    ("locked", "locked by another process"),
    ("busy", "locked by another process"),
    ("readonly", "read-only"),
    ("read-only", "read-only"),
    ("read only", "read-only"),
    ("disk is full", "its disk is full"),
    ("disk i/o", "a disk I/O error"),
    ("unable to open", "its file cannot be opened"),
    ("malformed", "its file is damaged"),
    ("not a database", "its file is damaged"),
    ("timeout", "no connection within the pool's time limit"),
    ("timed out", "no connection within the pool's time limit"),
    ("connection", "the connection to it was lost"),
    ("server closed", "the connection to it was lost"),
    ("terminating", "the connection to it was lost"),
    ("shutting down", "the connection to it was lost"),
    ("could not connect", "it does not accept connections"),
)

# Not outages: the caller's constraint (IntegrityError -> Conflict), our own SQL (ProgrammingError), bad values.
_OURS = (sa.IntegrityError, sa.ProgrammingError, sa.DataError, sa.NotSupportedError)


def unavailable_message(cause: str) -> str:
    return f"{UNAVAILABLE_PREFIX} ({cause}); {RETRY_HINT}"


def unavailable_from(error: BaseException) -> Unavailable | None:
    """`Unavailable` for a failure that means the database cannot be used right now; None for anything else."""
    if isinstance(error, sa.DBAPIError) and error.connection_invalidated:
        return Unavailable(unavailable_message("the connection to it was lost"))
    if isinstance(error, _OURS):
        return None
    if isinstance(error, sa.TimeoutError):  # the connection pool ran dry waiting for the database
        return Unavailable(unavailable_message("no connection within the pool's time limit"))
    if isinstance(error, sa.OperationalError | sa.InterfaceError | sa.InternalError) or type(error) is sa.DatabaseError:
        return Unavailable(unavailable_message(_cause(error)))
    return None


def _cause(error: sa.DBAPIError) -> str:
    said = str(error.orig if error.orig is not None else "").lower()
    for needle, cause in _CAUSES:
        if needle in said:
            return cause
    return "it does not answer"


@contextmanager
def outage_as_unavailable() -> Iterator[None]:
    """Around a transaction: an error that says the database cannot be used now becomes `Unavailable` (503)."""
    try:
        yield
    except sa.SQLAlchemyError as exc:
        unavailable = unavailable_from(exc)
        if unavailable is None:
            raise
        raise unavailable from exc
