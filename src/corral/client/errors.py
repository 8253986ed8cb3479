"""The client's one error translator: an answer of the server becomes the error class the server raised (by status,
with the message and field it named), and a reference becomes one safe path segment or an InvalidInput."""

from __future__ import annotations

import httpx

from corral.model.errors import (
    Conflict,
    CorralError,
    Forbidden,
    Gone,
    InvalidInput,
    NotFound,
    Unauthorized,
    Unavailable,
)

_BY_STATUS: dict[int, type[CorralError]] = {
    400: InvalidInput,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Gone,
    422: InvalidInput,
    503: Unavailable,
}


def segment(value: str) -> str:
    if not value or "/" in value or value in (".", ".."):
        raise InvalidInput(f"{value!r} is not a valid resource reference", field="ref")
    return httpx.URL(path=value).raw_path.decode()


def error_from(response: httpx.Response) -> CorralError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    message = body.get("message") if isinstance(body, dict) else None
    field = body.get("field") if isinstance(body, dict) else None
    cls = _BY_STATUS.get(response.status_code, CorralError)
    error = cls(message or f"HTTP {response.status_code} from {response.request.url}", field=field)
    error.status = response.status_code
    return error
