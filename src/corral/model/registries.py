"""Private registries: which registry an image reference names, how a registry server is spelled, and the
credentials an agent receives to authenticate its pulls.

Why here (pure): the API validates the server a user types, the agent finds the credentials for the image it is
about to pull, and both must agree on one spelling. Docker's rule for references: the first path component is a
registry when it contains "." or ":" or is "localhost"; otherwise the image lives on Docker Hub (`docker.io`).
Docker Hub's several names (`index.docker.io`, `registry-1.docker.io`) are one registry.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from corral.model.errors import InvalidInput

DOCKER_HUB = "docker.io"
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
MAX_USERNAME = 255
MAX_PASSWORD = 4096


def normalise_server(server: str) -> str:
    """One spelling per registry: lowercased host, Docker Hub's aliases folded into `docker.io`."""
    value = server.strip().lower()
    return DOCKER_HUB if value in _HUB_ALIASES else value


def validate_server(server: str) -> str:
    """A registry server as image references name it: `host[:port]` (no scheme, no path). Returns the normalised
    spelling; raises InvalidInput naming the field `server`."""
    value = server.strip()
    if not value:
        raise InvalidInput("server must not be empty; give host[:port], e.g. registry.example.com:5000", field="server")
    if "://" in value:
        raise InvalidInput(f"server {value!r} must be host[:port] without a scheme such as https://", field="server")
    if "/" in value or "@" in value or any(c.isspace() for c in value):
        raise InvalidInput(f"server {value!r} must be host[:port] (no path, user or spaces)", field="server")
    host, port = value, ""
    if value.startswith("["):
        raise InvalidInput(f"server {value!r}: IPv6 addresses are not supported; use a host name", field="server")
    if ":" in value:
        host, _, port = value.rpartition(":")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise InvalidInput(f"server {value!r}: the port must be a number from 1 to 65535", field="server")
    if not _valid_host(host):
        raise InvalidInput(f"server {value!r}: {host!r} is not a host name or IPv4 address", field="server")
    return normalise_server(value)


def _valid_host(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        pass
    else:
        return True
    if len(host) > 253 or host.replace(".", "").isdigit():
        return False
    return all(_LABEL.match(label) for label in host.split("."))


def registry_of(image: str) -> str:
    """The registry an image reference pulls from (normalised): `198.18.0.1:5000/x/y:1` -> `198.18.0.1:5000`,
    `busybox` and `library/busybox` -> `docker.io`."""
    first, slash, _ = image.strip().partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return normalise_server(first)
    return DOCKER_HUB


@dataclass(frozen=True)
class RegistryCredential:
    """What an agent needs to log in to one registry. `repr` hides the password (log lines, tracebacks)."""

    server: str
    username: str
    password: str

    def __repr__(self) -> str:
        return f"RegistryCredential(server={self.server!r}, username={self.username!r}, password='***')"

    def to_wire(self) -> dict[str, str]:
        return {"server": self.server, "username": self.username, "password": self.password}


def credentials_from_wire(data: object) -> dict[str, RegistryCredential]:
    """The `registries` list of a `desired` message -> normalised server -> credential. Raises InvalidInput."""
    if data is None:
        return {}
    if not isinstance(data, list):
        raise InvalidInput("desired: registries must be a list", field="registries")
    result: dict[str, RegistryCredential] = {}
    for index, entry in enumerate(data):
        if not isinstance(entry, Mapping) or not all(
            isinstance(entry.get(key), str) for key in ("server", "username", "password")
        ):
            raise InvalidInput(
                f"desired: registries[{index}] needs server, username and password strings",
                field=f"registries[{index}]",
            )
        server = normalise_server(str(entry["server"]))
        result[server] = RegistryCredential(server, str(entry["username"]), str(entry["password"]))
    return result


def credential_for(image: str, credentials: Mapping[str, RegistryCredential]) -> RegistryCredential | None:
    """The credential for the registry `image` is pulled from, if the environment has one."""
    return credentials.get(registry_of(image))


def credentials_needed(images: Iterable[str], credentials: Iterable[RegistryCredential]) -> list[RegistryCredential]:
    """Of an environment's credentials, those of the registries these images are pulled from (a host gets only
    what its own desired set needs: a password for a registry it never pulls from stays on the server)."""
    wanted = {registry_of(image) for image in images if image}
    return [credential for credential in credentials if normalise_server(credential.server) in wanted]
