"""The managed overlay network of an environment, as the server and the agents share it.

Why one module: the server's IPAM (`orchestrator/ipam.py`) decides slices and addresses, the server sends each agent
a `network` message (model/protocol.py) built from these types, and the agent's overlay, DNS and metadata services
read the same message. Every field is plain data so the message round-trips through JSON unchanged.

Addresses: an environment has one subnet (default 10.32.0.0/11); each host gets a slice of it (`host_prefix`, default
/24) whose first usable address is the host's gateway on its `corral0` bridge; managed containers get addresses of
their host's slice (or keep theirs with `retain_ip`, or take `io.rancher.container.requested_ip`). The overlay is
one flat L2 segment over VXLAN, so an address may live on any host. DNS and metadata answer on the link-local
`SERVICES_ADDRESS` on every host.

Encryption (on unless the environment was created with `encryption: false`): every host has a WireGuard interface
(`wireguard_interface`, named from the host id: unique on the machine) with a *transit* address derived from its
slice (`transit_address`, in `TRANSIT_NETWORK`); each peer's slice is routed into it (network/routing.py), no
VXLAN, so every overlay packet crosses the underlay inside WireGuard and the segment is L3 between hosts (the host
answers ARP for the other slices). The interface's MTU is `WIREGUARD_MTU` (1500 - 60 WireGuard over IPv4 - 20
spare for an IPv6 underlay), the default inside too. Each environment gets a random VNI at creation (`random_vni`).
"""

from __future__ import annotations

import functools
import ipaddress
import secrets
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from corral.model.errors import InvalidInput

DEFAULT_SUBNET = "10.32.0.0/11"  # 8,192 hosts of 253 containers: the scale targets' 5,000 hosts fit
DEFAULT_HOST_PREFIX = 24
DEFAULT_MTU = 1450  # 1500 minus the VXLAN overhead (50 bytes)
WIREGUARD_MTU = 1420  # 1500 minus WireGuard's worst case (80 bytes): its interface, whatever the environment's MTU
ENCRYPTED_MTU = WIREGUARD_MTU  # routed, no VXLAN inside (environments made before keep their stored 1370)
VXLAN_OVERHEAD = 50  # outer IPv4 + UDP + VXLAN + inner Ethernet header
DEFAULT_VNI = 4242
VXLAN_PORT = 4789
WIREGUARD_PORT = 51820  # each host's WireGuard listen port (its own network namespace or machine)
# Transit addresses (VXLAN endpoints inside the tunnel): link-local, never routed, and clear of the addresses
# clouds use there (169.254.169.254 metadata, 169.254.170.x, 169.254.20.10 node-local DNS).
TRANSIT_NETWORK = "169.254.64.0/18"
WIREGUARD_PREFIX = "cwg"  # + the host id's hex part: at most 15 characters (IFNAMSIZ - 1)
SERVICES_ADDRESS = "169.254.169.250"  # DNS (port 53) and metadata (port 80) on every host, as in Rancher
# Every host port is the user's (issue 17 item 9): the agent's DNS and metadata listen on the services address at
# these ports, and the host's NAT table sends SERVICES_ADDRESS:53 and :80 there (network/services_nat.py), so a
# container may publish 53 and 80 itself.
DNS_LISTEN_PORT = 9553
METADATA_LISTEN_PORT = 9580
CONNECTIVITY_PROBE_PORT = 4790  # the overlay's UDP echo (agent/connectivity.py)
# What Corral itself holds in each host's namespace, by (port, protocol): the scheduler refuses these to containers
# (the reason names the holder) and the host port allocator never hands them out.
HELD_HOST_PORTS: dict[tuple[int, str], str] = {
    (DNS_LISTEN_PORT, "udp"): "Corral's DNS for containers",
    (DNS_LISTEN_PORT, "tcp"): "Corral's DNS for containers",
    (METADATA_LISTEN_PORT, "tcp"): "Corral's metadata service",
    (VXLAN_PORT, "udp"): "Corral's overlay (VXLAN)",
    (CONNECTIVITY_PROBE_PORT, "udp"): "Corral's overlay connectivity check",
    (WIREGUARD_PORT, "udp"): "Corral's encrypted overlay (WireGuard)",
}
DNS_DOMAIN = "corral.internal"
BRIDGE_NAME = "corral0"
VXLAN_NAME = "corralvx"
DOCKER_NETWORK = "corral-managed"


@dataclass(frozen=True)
class NetworkSettings:
    """An environment's overlay: its subnet, the size of each host's slice, the MTU inside, the VXLAN id and
    whether the hosts' traffic is encrypted (WireGuard). `mtu` 0 means the default for the mode."""

    subnet: str = DEFAULT_SUBNET
    host_prefix: int = DEFAULT_HOST_PREFIX
    mtu: int = 0
    vni: int = DEFAULT_VNI
    encryption: bool = True

    def __post_init__(self) -> None:
        if self.mtu == 0:
            object.__setattr__(self, "mtu", ENCRYPTED_MTU if self.encryption else DEFAULT_MTU)
        try:
            network = ipaddress.IPv4Network(self.subnet, strict=True)
        except ValueError as exc:
            message = f"network.subnet {self.subnet!r} is not an IPv4 network: {exc}"
            raise InvalidInput(message, field="network.subnet") from exc
        if not network.prefixlen < self.host_prefix <= 29:
            raise InvalidInput(
                f"network.host_prefix must be longer than the subnet's /{network.prefixlen} and at most /29, "
                f"not /{self.host_prefix}",
                field="network.host_prefix",
            )
        if not 576 <= self.mtu <= 9000:
            raise InvalidInput(f"network.mtu must be within 576..9000, not {self.mtu}", field="network.mtu")
        if not 1 <= self.vni < 2**24:
            raise InvalidInput(f"network.vni must be within 1..16777215, not {self.vni}", field="network.vni")

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.subnet)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: object) -> NetworkSettings:
        """Parse user or stored input; unknown keys and wrong types are InvalidInput naming `network.KEY`."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise InvalidInput("network must be an object", field="network")
        known: dict[str, type] = {"subnet": str, "host_prefix": int, "mtu": int, "vni": int, "encryption": bool}
        for key, value in data.items():
            if key not in known:
                raise InvalidInput(f"network.{key} is not a network setting", field=f"network.{key}")
            if not isinstance(value, known[key]) or (isinstance(value, bool) and known[key] is not bool):
                raise InvalidInput(
                    f"network.{key} must be a {known[key].__name__}, not {type(value).__name__}", field=f"network.{key}"
                )
        return cls(**data)


def random_vni(taken: Iterable[int] = ()) -> int:
    """A VXLAN id for a new environment: random, not one of `taken` (other environments'), never the old fixed
    4242 (so two installations' environments do not share one by default)."""
    avoid = {*taken, DEFAULT_VNI}
    while True:
        vni = 1 + secrets.randbelow(2**24 - 1)
        if vni not in avoid:
            return vni


def transit_address(settings: NetworkSettings, slice_text: str) -> str:
    """A host's address on its WireGuard interface (pure): TRANSIT_NETWORK's (i+1)-th address for the i-th slice of
    the subnet, so it is unique in the environment and stable for the host's life; "" without a slice or when the
    slice's number does not fit (more than 16382 slices)."""
    if not slice_text:
        return ""
    return _transit(settings.subnet, slice_text)


@functools.lru_cache(maxsize=65536)
def _transit(subnet_text: str, slice_text: str) -> str:
    # cached: the network pass asks it for every host of an environment on every pass
    subnet, piece = ipaddress.IPv4Network(subnet_text), ipaddress.IPv4Network(slice_text)
    index = (int(piece.network_address) - int(subnet.network_address)) >> (32 - piece.prefixlen)
    transit = ipaddress.IPv4Network(TRANSIT_NETWORK)
    if not 0 <= index < transit.num_addresses - 2:
        return ""
    return str(transit.network_address + index + 1)


@functools.lru_cache(maxsize=65536)
def _first_host(slice_text: str) -> str:
    return str(next(ipaddress.IPv4Network(slice_text).hosts()))


def wireguard_interface(host_id: str) -> str:
    """The WireGuard interface of a host: unique on the whole machine (userspace WireGuard's control sockets in
    /var/run/wireguard are shared by every network namespace), at most 15 characters, letters and digits only."""
    tail = "".join(c for c in host_id.split("-", 1)[-1].lower() if c.isalnum())
    return (WIREGUARD_PREFIX + tail)[:15]


@dataclass(frozen=True)
class HostNetwork:
    """One host on the overlay: its underlay address (VXLAN or WireGuard endpoint), its slice of the subnet and,
    when the environment is encrypted, its WireGuard public key, listen port and transit address."""

    host_id: str
    name: str
    address: str  # underlay IP: where its VXLAN (or WireGuard) endpoint listens
    slice: str  # e.g. "10.42.3.0/24"; "" until the IPAM gave it one
    public_key: str = ""  # WireGuard (base64), "" when its agent has not sent one
    port: int = 0  # WireGuard listen port
    transit: str = ""  # its WireGuard interface's address (transit_address), "" when the overlay is plain

    @property
    def gateway(self) -> str:
        """The host's own address on the overlay (its corral0 bridge): the first usable address of its slice."""
        if not self.slice:
            return ""
        return _first_host(self.slice)

    def to_dict(self) -> dict[str, Any]:
        # by hand, not `asdict` (deep copies): the network pass renders every host of an environment on each pass
        return {
            "host_id": self.host_id,
            "name": self.name,
            "address": self.address,
            "slice": self.slice,
            "public_key": self.public_key,
            "port": self.port,
            "transit": self.transit,
            "gateway": self.gateway,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HostNetwork:
        return cls(
            host_id=str(data["host_id"]),
            name=str(data.get("name", "")),
            address=str(data.get("address", "")),
            slice=str(data.get("slice", "")),
            public_key=str(data.get("public_key", "")),
            port=int(data.get("port", 0) or 0),
            transit=str(data.get("transit", "")),
        )


@dataclass(frozen=True)
class ContainerRecord:
    """What DNS and metadata know of one container of the environment."""

    slot_id: str
    name: str  # its Docker name, STACK-SERVICE-INDEX
    stack: str
    service: str
    index: int
    host_id: str
    ip: str  # "" when it is not on the managed network
    running: bool
    healthy: bool  # True when it has no health check, or its check passes
    primary: str = ""  # for a sidekick's container: its primary service (DNS name `sidekick.primary`)
    links: tuple[str, ...] = ()  # "service" or "service:alias" (same stack)
    external_links: tuple[str, ...] = ()  # "stack/service" or "stack/service:alias"
    networks: tuple[str, ...] = ()  # its compose networks (segments); () on the flat network
    network_aliases: tuple[tuple[str, str], ...] = ()  # (network, alias): its names for clients on that network
    internal: bool = False  # on `internal: true` networks only: its host drops its traffic leaving the overlay

    def to_dict(self) -> dict[str, Any]:
        # by hand, in the fields' order (deltas are encoded without sorted keys), not `asdict`: every container of
        # an environment is rendered on each network pass; the tuples are immutable, so they are shared
        data: dict[str, Any] = {
            "slot_id": self.slot_id,
            "name": self.name,
            "stack": self.stack,
            "service": self.service,
            "index": self.index,
            "host_id": self.host_id,
            "ip": self.ip,
            "running": self.running,
            "healthy": self.healthy,
            "primary": self.primary,
            "links": self.links,
            "external_links": self.external_links,
        }
        if self.networks:
            data["networks"] = self.networks
        if self.network_aliases:
            data["network_aliases"] = self.network_aliases
        if self.internal:
            data["internal"] = self.internal
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ContainerRecord:
        values = dict(data)
        values["networks"] = tuple(values.get("networks", ()))
        values["network_aliases"] = tuple((str(n), str(a)) for n, a in values.get("network_aliases", ()))
        values["links"] = tuple(values.get("links", ()))
        values["external_links"] = tuple(values.get("external_links", ()))
        return cls(**values)


@dataclass(frozen=True)
class ServiceRecord:
    """What metadata serves of one service (and DNS uses for sidekick names)."""

    stack: str
    name: str
    scale: int
    image: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)  # rancher-compose `metadata:`
    sidekicks: tuple[str, ...] = ()
    sidekick_of: str = ""
    ports: tuple[str, ...] = ()  # "HOST:CONTAINER/PROTO" as shown in views
    lb: dict[str, Any] = field(default_factory=dict)  # a load balancer's rules (model/lb.py), {} for other services
    virtual: dict[str, Any] = field(default_factory=dict)  # an external service or alias (model/virtual.py), or {}
    # False in a scoped state (model/network_scope.py) for a service the host does not hold every container of (its
    # own there, or an LB it only needs the rules of): DNS asks the server for it before answering; `scale` is 0
    complete: bool = True

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if not self.virtual:  # the message stays as it was for every other service
            del data["virtual"]
        if self.complete:
            del data["complete"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ServiceRecord:
        values = dict(data)
        values["sidekicks"] = tuple(values.get("sidekicks", ()))
        values["ports"] = tuple(values.get("ports", ()))
        values["labels"] = dict(values.get("labels", {}))
        values["metadata"] = dict(values.get("metadata", {}))
        values["lb"] = dict(values.get("lb", {}))
        values["virtual"] = dict(values.get("virtual", {}))
        values["complete"] = values.get("complete", True) is not False
        return cls(**values)


@dataclass(frozen=True)
class DirectoryEntry:
    """One service of the environment as a scoped state names it: enough for DNS to know that a name is Corral's
    and which service to ask the server for. It changes only when services come or go (never with their scale)."""

    stack: str
    name: str
    sidekick_of: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.stack, self.name)

    def to_dict(self) -> dict[str, Any]:
        data = {"stack": self.stack, "name": self.name}
        if self.sidekick_of:
            data["sidekick_of"] = self.sidekick_of
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DirectoryEntry:
        return cls(str(data["stack"]), str(data["name"]), str(data.get("sidekick_of", "")))


@dataclass(frozen=True)
class NetworkState:
    """The `network` message: everything one agent needs for the overlay, DNS and metadata of its environment.

    The server sends it on connect and whenever it changes (like `desired`); the agent applies it level-triggered.
    """

    environment_id: str
    environment: str  # its name (metadata)
    settings: NetworkSettings
    host: HostNetwork  # the receiving host
    peers: tuple[HostNetwork, ...] = ()  # every other host of the environment with a slice
    containers: tuple[ContainerRecord, ...] = ()
    services: tuple[ServiceRecord, ...] = ()
    hosts: tuple[dict[str, Any], ...] = ()  # host views for metadata: {host_id, name, address, labels, arch, ...}
    # True: the containers and services are only those this host needs (model/network_scope.py), and `directory`
    # names every service of the environment, so that DNS and metadata can ask the server for the rest
    scoped: bool = False
    directory: tuple[DirectoryEntry, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "environment_id": self.environment_id,
            "environment": self.environment,
            "settings": self.settings.to_dict(),
            "host": self.host.to_dict(),
            "peers": [p.to_dict() for p in self.peers],
            "containers": [c.to_dict() for c in self.containers],
            "services": [s.to_dict() for s in self.services],
            "hosts": [dict(h) for h in self.hosts],
        }
        if self.scoped:
            data["scoped"] = True
            data["directory"] = [d.to_dict() for d in self.directory]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetworkState:
        """Parse a `network` message; InvalidInput when it is malformed (then the agent keeps its last state)."""
        try:
            return cls(
                environment_id=str(data["environment_id"]),
                environment=str(data.get("environment", "")),
                settings=NetworkSettings.from_dict(data.get("settings")),
                host=HostNetwork.from_dict(data["host"]),
                peers=tuple(HostNetwork.from_dict(p) for p in data.get("peers", ())),
                containers=tuple(ContainerRecord.from_dict(c) for c in data.get("containers", ())),
                services=tuple(ServiceRecord.from_dict(s) for s in data.get("services", ())),
                hosts=tuple(dict(h) for h in data.get("hosts", ())),
                scoped=data.get("scoped") is True,
                directory=tuple(DirectoryEntry.from_dict(d) for d in data.get("directory", ())),
            )
        except InvalidInput:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidInput(f"network: malformed message: {exc!r}", field="network") from exc
