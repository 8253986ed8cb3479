"""The agent's credentials on disk, and the one-time exchange of a registration token for them.

Why a module of its own: the file holds a secret, so writing it is done one careful way (mode 0600, atomic
rename, state dir 0700), and the registration call sorts server answers into "give up with one clear line"
(`RegistrationRejectedError`, `UntrustedCertificateError` when the server fails the pinned CA) and "retry later"
(`Unavailable`).
"""

from __future__ import annotations

import contextlib
import os
import re
import ssl
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from corral.model.credentials import CREDENTIALS_FILE, AgentCredentials
from corral.model.entities import HostFacts
from corral.model.errors import CorralError, Unavailable

if TYPE_CHECKING:  # httpx is imported only by an agent that registers (its footprint: bench/agent_rss.py)
    import httpx

REJECTED_SUFFIX = ".rejected"
REGISTER_TIMEOUT_SECONDS = 30.0


class RegistrationRejectedError(CorralError):
    """The server refused the registration for good (bad token, name taken, invalid input)."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.http_status = status


class UntrustedCertificateError(CorralError):
    """The server's certificate failed verification against the pinned CA: never retried."""

    def __init__(self, cause: ssl.SSLCertVerificationError) -> None:
        super().__init__(cause.verify_message or str(cause))
        self.cause = cause


def certificate_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification failure behind a transport error (httpx wraps it), if that is what it was."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def credentials_path(state_dir: Path) -> Path:
    return state_dir / CREDENTIALS_FILE


def load_credentials(state_dir: Path) -> AgentCredentials | None:
    """The stored credentials, or None when this host has not registered yet (InvalidInput if corrupt)."""
    path = credentials_path(state_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    return AgentCredentials.from_json(text)


def save_credentials(state_dir: Path, credentials: AgentCredentials) -> Path:
    """Write credentials.json with mode 0600 so that a crash leaves either the old file or the new one."""
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(state_dir, 0o700)
    path = credentials_path(state_dir)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(credentials.to_json())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    dir_fd = os.open(state_dir, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


def set_aside_credentials(state_dir: Path) -> Path | None:
    """Move credentials the server no longer accepts out of the way, so the next start can register anew."""
    path = credentials_path(state_dir)
    target = path.with_name(path.name + REJECTED_SUFFIX)
    try:
        os.replace(path, target)
    except FileNotFoundError:
        return None
    return target


def host_name_from(hostname: str) -> str:
    """A valid host name (lowercase letters, digits, inner dashes, <= 63 chars) from a machine's hostname."""
    name = re.sub(r"[^a-z0-9-]+", "-", hostname.strip().lower().split(".")[0])
    name = re.sub(r"-{2,}", "-", name).strip("-")[:63].rstrip("-")
    return name or "host"


def _server_message(response: httpx.Response) -> str:
    """The `message` of a Corral error body, FastAPI's `detail`, or the raw text: whatever the server sent."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase
    if isinstance(body, dict):
        if isinstance(body.get("message"), str):
            return str(body["message"])
        detail = body.get("detail")
        if isinstance(detail, str):
            return detail
        if isinstance(detail, list) and detail and isinstance(detail[0], dict):
            first = detail[0]
            where = ".".join(str(part) for part in first.get("loc", []) if part != "body")
            return f"{where}: {first.get('msg', 'invalid')}" if where else str(first.get("msg", "invalid"))
    return str(body)[:300]


async def register(
    client: httpx.AsyncClient,
    url: str,
    *,
    token: str,
    name: str,
    labels: dict[str, str],
    facts: HostFacts,
) -> AgentCredentials:
    """POST {url}/v1/agent/register and return the credentials it grants (not yet saved)."""
    endpoint = url.rstrip("/") + "/v1/agent/register"
    payload = {"token": token, "name": name, "labels": labels, "facts": asdict(facts)}
    import httpx

    try:
        response = await client.post(endpoint, json=payload, timeout=REGISTER_TIMEOUT_SECONDS)
    except httpx.HTTPError as exc:
        untrusted = certificate_error(exc)
        if untrusted is not None:
            raise UntrustedCertificateError(untrusted) from exc
        raise Unavailable(f"cannot reach {endpoint}: {exc or type(exc).__name__}") from exc
    if response.status_code == 201 or response.status_code == 200:
        try:
            body = response.json()
            return AgentCredentials(
                url=url.rstrip("/"),
                host_id=str(body["host_id"]),
                environment_id=str(body["environment_id"]),
                access_key=str(body["access_key"]),
                secret_key=str(body["secret_key"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise Unavailable(f"{endpoint} answered {response.status_code} without credentials") from exc
    message = _server_message(response)
    if response.status_code in (408, 425, 429) or response.status_code >= 500:
        raise Unavailable(f"{endpoint} answered {response.status_code}: {message}")
    raise RegistrationRejectedError(message, status=response.status_code)
