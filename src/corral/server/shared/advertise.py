"""The URL other machines use to reach this server: the one `tokens create` puts in the agent command.

Why its own setting: the address the server listens on is not always one another machine can use (`0.0.0.0`
names no machine; behind NAT the public address is not an interface). `CORRAL_ADVERTISE_URL` (or
`--advertise-url`) says it; without it, the server advertises the address it listens on, or for all interfaces
the machine's primary address (the source of its default route). A loopback URL is kept but warned about: it
only works for agents on this machine.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from corral.model.errors import InvalidInput

_ALL_INTERFACES = ("0.0.0.0", "::", "")
_FIELD = "advertise_url"


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def is_loopback_host(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def checked_advertise_url(text: str, scheme: str) -> str:
    """`text` as an advertised URL (`https://host[:port]`, no path), or InvalidInput naming what is wrong."""
    value = text.strip().rstrip("/")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise InvalidInput(f"CORRAL_ADVERTISE_URL {text!r}: {exc}", field=_FIELD) from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"CORRAL_ADVERTISE_URL {text!r}: must be {scheme}://HOST[:PORT]", field=_FIELD)
    if parts.scheme != scheme:
        raise InvalidInput(
            f"CORRAL_ADVERTISE_URL {text!r}: the server serves {scheme}, not {parts.scheme}", field=_FIELD
        )
    if parts.path or parts.query or parts.fragment or parts.username or parts.password:
        raise InvalidInput(
            f"CORRAL_ADVERTISE_URL {text!r}: only scheme, host and port (no path, query or user)", field=_FIELD
        )
    return f"{scheme}://{url_host(parts.hostname)}" + (f":{port}" if port is not None else "")


def advertised_url(scheme: str, listen_host: str, port: int, configured: str, primary: str | None) -> str:
    """The URL for other machines: the configured one, else the listening address, else (listening on every
    interface) the primary address, else loopback."""
    if configured:
        return checked_advertise_url(configured, scheme)
    if listen_host in _ALL_INTERFACES:
        host = primary or "127.0.0.1"
    elif listen_host == "localhost":
        host = "127.0.0.1"
    else:
        host = listen_host
    return f"{scheme}://{url_host(host)}:{port}"


def loopback_warning(url: str) -> str | None:
    """What to tell an operator whose advertised URL only this machine can use (None when others can)."""
    host = urlsplit(url).hostname or ""
    if not is_loopback_host(host):
        return None
    return (
        f"{url} reaches this machine only: an agent on another machine cannot use it. Start the server with "
        "--host 0.0.0.0 (or an address of this machine), or set CORRAL_ADVERTISE_URL=https://ADDRESS:PORT"
    )


def primary_address() -> str | None:
    """The source address of this machine's default route (no packet is sent: a UDP `connect` only picks the
    route), or None without one."""
    for family, target in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.connect((target, 9))
                address = str(sock.getsockname()[0])
        except OSError:
            continue
        if not is_loopback_host(address):
            return address
    return None
