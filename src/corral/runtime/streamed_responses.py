"""A long-lived streamed response of the Docker API (logs, stats, exec's upgraded socket), shared by streams.py and
stats.py.

Why its own module: both read bodies that may stay quiet for hours and must end the moment another thread asks, and
both translate the engine's refusals of a container the same way; stats.py builds on these helpers and streams.py
hands stats out, so they live below both rather than in either (no import cycle).

Errors: `NotFound` (no such container on this host), `Conflict` (refused because of the container's state),
`EngineRejected` (any other refusal), `InvalidInput` (a malformed container reference).
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading
from collections.abc import Iterator
from typing import Any, NoReturn

import docker
import docker.errors
import requests.exceptions
import urllib3.exceptions

from corral.model.errors import Conflict, CorralError, InvalidInput, NotFound
from corral.runtime.containers import EngineRejected

log = logging.getLogger(__name__)

READ_SIZE = 64 * 1024
STOP_POLL_SECONDS = 0.25  # how soon a `stop` event set from another thread closes a stream
READ_ERRORS = (urllib3.exceptions.HTTPError, requests.exceptions.RequestException, OSError, ValueError)

# A container id (hex) or name; nothing that could address another API path.
_REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")


def check_reference(docker_id: str) -> str:
    if not isinstance(docker_id, str) or not _REFERENCE.match(docker_id):
        raise InvalidInput(f"{docker_id!r} is not a container id or name", field="docker_id")
    return docker_id


def _explain(exc: docker.errors.APIError) -> str:
    text = exc.explanation or str(exc)
    return text.decode(errors="replace") if isinstance(text, bytes) else str(text)


def missing_container(docker_id: str) -> NotFound:
    return NotFound(f"container {docker_id} does not exist on this host", field="docker_id")


def _refused(exc: docker.errors.APIError, docker_id: str, what: str) -> CorralError | None:
    """The Corral error for the engine's refusal; None for its own failures (`DockerEngine.call`: Unavailable)."""
    status = exc.status_code
    if status == 404:
        return missing_container(docker_id)
    if status == 409:
        return Conflict(f"cannot {what} {docker_id}: {_explain(exc)}", field="docker_id")
    if status is not None and (400 <= status < 500 or status == 501):
        return EngineRejected(f"cannot {what} {docker_id}: {_explain(exc)}", field="docker_id")
    return None


def raise_refusal(exc: docker.errors.APIError, docker_id: str, what: str) -> NoReturn:
    refusal = _refused(exc, docker_id, what)
    if refusal is None:
        raise exc
    raise refusal from exc


def response_socket(response: Any) -> socket.socket | None:
    """The socket under a streamed `requests` response (unix or tcp; the SDK's own `_get_raw_response_socket`)."""
    try:
        raw = response.raw._fp.fp.raw
    except AttributeError:
        return None
    sock = getattr(raw, "_sock", None) or getattr(raw, "sock", None)
    return sock if isinstance(sock, socket.socket) else None


def shutdown_socket(sock: socket.socket | None, how: int = socket.SHUT_RDWR) -> None:
    """Shut a socket down from any thread: a read blocked on it in another thread returns at once."""
    if sock is not None:
        with contextlib.suppress(OSError):  # not connected any more
            sock.shutdown(how)


@contextlib.contextmanager
def closed_on_stop(response: Any, stop: threading.Event, thread_name: str) -> Iterator[None]:
    """While a streamed body is read: a watcher thread closes its socket as soon as `stop` is set (so a read blocked
    on a quiet stream ends); on exit the socket and the response are closed."""
    sock = response_socket(response)
    if sock is not None:
        sock.settimeout(None)  # a followed stream may be quiet for hours
    finished = threading.Event()

    def close_on_stop() -> None:
        while not finished.is_set():
            if stop.wait(STOP_POLL_SECONDS):
                shutdown_socket(sock)
                return

    threading.Thread(target=close_on_stop, name=thread_name, daemon=True).start()
    try:
        yield
    finally:
        finished.set()
        shutdown_socket(sock)
        close_response(response)


def close_response(response: Any) -> None:
    try:
        response.close()
    except Exception:  # a half-broken response must not mask what ended the stream
        log.debug("error closing a docker response", exc_info=True)


def body_chunks(response: Any) -> Iterator[bytes]:
    """A streamed HTTP body as it arrives: chunk by chunk when chunked (the engine flushes every log frame)."""
    raw = response.raw
    if getattr(raw, "chunked", False) and raw.supports_chunked_reads():
        yield from raw.read_chunked(None, decode_content=False)
    else:
        yield from raw.stream(READ_SIZE, decode_content=False)
