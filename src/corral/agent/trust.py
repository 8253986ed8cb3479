"""Which server the agent trusts: the CA pinned in its state dir, first fetched and checked against a digest.

Why pinning (as Docker swarm's join token and kubeadm's `--discovery-token-ca-cert-hash` do): the agent holds
credentials that run privileged containers, so it must know it reaches *its* server before it sends a token, and
on every later connection. The join token carries `sha256:<digest>` of the server's CA; the first start fetches
`GET /v1/ca` (over TLS it cannot verify yet), keeps it only if the digest matches, and stores it (`ca.pem`, 0600).
From then on, registration and the websocket verify the server's certificate against that CA alone, also across
restarts; a server certificate the CA did not sign ends the agent with one line and exit code 1.

A CA rotation (server/hub/ca_rotation.py) reaches the agent as a `trust` message over the connection the pinned CA
verified: `pin_bundle` pins the bundle it carries (current and next CA, later the new one alone) and keeps the
digests it replaced in `ca-history`, so an agent restarted with the digest it was first given (`--ca-digest`, the
join token) still accepts the CA it learned since.

Plain stdlib (`ssl`, asyncio streams): an agent with credentials never loads an HTTP client (bench P4).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import ssl
from pathlib import Path
from urllib.parse import urlsplit

from corral.model.errors import CorralError, InvalidInput, Unavailable
from corral.model.join_token import ca_digest_of_pem, ca_digests_of_bundle

PINNED_CA_FILE = "ca.pem"
HISTORY_FILE = "ca-history"
MAX_HISTORY = 16
FETCH_TIMEOUT_SECONDS = 10.0
MAX_CA_BYTES = 64 * 1024
MITM = "refusing: possible man in the middle"


class UntrustedServerError(CorralError):
    """The server is not the one the agent was told to trust: never retried."""


def pinned_ca_path(state_dir: Path) -> Path:
    return state_dir / PINNED_CA_FILE


def client_context(ca_pem: str) -> ssl.SSLContext:
    """Verify the server's certificate (and name) against this CA only, not the system's CAs."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_verify_locations(cadata=ca_pem)
    return context


def _unverified_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _endpoint(url: str) -> tuple[str, int, str]:
    parts = urlsplit(url)
    if not parts.hostname:
        raise InvalidInput(f"server URL {url!r} has no host", field="url")
    return parts.hostname, parts.port or 443, parts.path.rstrip("/")


async def _read_to_end(reader: asyncio.StreamReader) -> bytes:
    """The whole answer (`Connection: close`), at most MAX_CA_BYTES."""
    raw = b""
    while len(raw) < MAX_CA_BYTES:
        chunk = await reader.read(MAX_CA_BYTES - len(raw))
        if not chunk:
            break
        raw += chunk
    return raw


async def fetch_ca(url: str) -> str:
    """GET {url}/v1/ca over TLS without verifying (the caller checks the digest). Unavailable to retry."""
    host, port, prefix = _endpoint(url)
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=_unverified_context(), server_hostname=host),
            timeout=FETCH_TIMEOUT_SECONDS,
        )
    except (OSError, TimeoutError) as exc:
        raise Unavailable(f"cannot fetch the CA from {url}: {exc or type(exc).__name__}") from exc
    try:
        authority = f"[{host}]" if ":" in host else host
        request = f"GET {prefix}/v1/ca HTTP/1.1\r\nHost: {authority}:{port}\r\nConnection: close\r\n\r\n"
        writer.write(request.encode("ascii"))
        await writer.drain()
        raw = await asyncio.wait_for(_read_to_end(reader), timeout=FETCH_TIMEOUT_SECONDS)
    except (OSError, TimeoutError) as exc:
        raise Unavailable(f"cannot fetch the CA from {url}: {exc or type(exc).__name__}") from exc
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    if " 200 " not in status_line + " ":
        raise Unavailable(f"{url}/v1/ca answered {status_line or 'nothing'}")
    return body.decode("ascii", "replace")


async def presented_certificate(url: str) -> str:
    """The digest of the certificate the server at `url` presents (for the refusal line), or a reason."""
    host, port, _ = _endpoint(url)
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=_unverified_context(), server_hostname=host),
            timeout=FETCH_TIMEOUT_SECONDS,
        )
    except (OSError, TimeoutError) as exc:
        return f"unknown ({exc or type(exc).__name__})"
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    finally:
        writer.close()
    return f"sha256:{hashlib.sha256(der).hexdigest()}" if der else "none"


async def refusal(url: str, pinned_digest: str, exc: ssl.SSLCertVerificationError) -> str:
    """The one line an agent logs when the server's certificate fails the pinned CA."""
    seen = await presented_certificate(url)
    why = exc.verify_message or str(exc)
    hint = ""
    if "mismatch" in why.lower():
        hint = " (if this is the server's name, add it with `corral server --tls-san NAME`)"
    return (
        f"the server at {url} presents certificate {seen}, not valid under the pinned CA {pinned_digest}: "
        f"{why}{hint}; {MITM}"
    )


def _write_private(path: Path, text: str) -> None:
    """Write atomically, mode 0600, in a 0700 directory."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(text)
    os.chmod(temp, 0o600)
    os.replace(temp, path)


async def establish(
    url: str, state_dir: Path, *, expected: str | None, ca_file: Path | None, insecure: bool
) -> tuple[ssl.SSLContext | None, str]:
    """The SSL context to reach `url` with (None for plain HTTP) and the pinned CA's digest.

    UntrustedServerError (exit 1) for an `http://` URL without `insecure`, a CA whose digest is not the expected
    one, or nothing to trust; Unavailable (retry) while the server does not answer."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("http", "ws"):
        if not insecure:
            raise UntrustedServerError(
                f"refusing to connect to {url} over plain HTTP: the token and credentials would cross the network "
                "in clear; use the server's https:// URL, or pass --insecure for a trusted network"
            )
        return None, ""
    pinned = pinned_ca_path(state_dir)
    if pinned.exists():
        pem = pinned.read_text(encoding="ascii", errors="replace")
        digests = ca_digests_of_bundle(pem)
        digest = digests[0]
        if expected and expected not in digests and expected not in _history(state_dir):
            raise UntrustedServerError(
                f"the CA pinned in {pinned} is {digest}, but {expected} was given; {MITM} "
                f"(remove {pinned} only if the server's CA really changed)"
            )
        return client_context(pem), digest
    if ca_file is not None:
        pem = ca_file.read_text(encoding="ascii", errors="replace")
        source = str(ca_file)
    elif expected:
        pem = await fetch_ca(url)
        source = f"{url}/v1/ca"
    else:
        raise UntrustedServerError(
            f"nothing to trust {url} with: pass the join token (CORRAL1-...) from `corral tokens create`, "
            "or --ca-digest sha256:... or --ca FILE"
        )
    try:
        digest = ca_digest_of_pem(pem)
    except InvalidInput as exc:
        raise UntrustedServerError(f"{source} is not a CA certificate ({exc.message}); {MITM}") from exc
    if expected and digest != expected:
        raise UntrustedServerError(f"CA from {source} has digest {digest}, expected {expected}; {MITM}")
    _write_private(pinned, pem)
    return client_context(pem), digest


def _history(state_dir: Path) -> list[str]:
    path = state_dir / HISTORY_FILE
    return path.read_text(encoding="ascii", errors="replace").split() if path.exists() else []


def pin_bundle(state_dir: Path, pem: str) -> tuple[ssl.SSLContext, list[str]]:
    """Pin the CA bundle a `trust` message carried (InvalidInput when it holds no usable certificate; the pin is
    then unchanged); the digests it replaces go to the history. Returns the new context and the bundle's digests."""
    digests = ca_digests_of_bundle(pem)
    context = client_context(pem)  # raises ssl.SSLError for a certificate OpenSSL cannot load
    pinned = pinned_ca_path(state_dir)
    if pinned.exists():
        previous = ca_digests_of_bundle(pinned.read_text(encoding="ascii", errors="replace"))
        history = [d for d in (*_history(state_dir), *previous) if d not in digests]
        _write_private(state_dir / HISTORY_FILE, "\n".join(dict.fromkeys(history[-MAX_HISTORY:])) + "\n")
    _write_private(pinned, pem)
    return context, digests
