"""The WireGuard half of the encrypted overlay on one host: the host's key pair, its interface, its
peers and its transit address.

Why this way: the kernel module is used where the host has it (`ip link add NAME type wireguard`), else Debian's
userspace `wireguard-go` (a TUN device; it daemonizes and ends by itself when its device is deleted), and both are
configured with `wg` from wireguard-tools, so the agent imports nothing new (bench P4). The interface name comes from
the host id (model/network.py `wireguard_interface`): wireguard-go's control sockets in /var/run/wireguard are
shared by every network namespace of a machine.

`tunnel_config` and `tunnel_differences` are pure (what `wg syncconf` gets; what differs between the wish and
`wg show NAME dump`), so they are unit-tested without a namespace. `Tunnel.apply` is level-triggered like
network/overlay.py: a deleted interface, a lost peer or address is put back on the next call. The private key stays
in the agent's state dir (0600) and reaches `wg` on its standard input, never a command line or a log.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute

from corral.model.errors import CorralError
from corral.model.network import TRANSIT_NETWORK
from corral.network.overlay import OverlayError

log = logging.getLogger("corral.network.wireguard")

KEY_FILE = "wireguard.key"
USERSPACE_ENV = {"WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD": "1"}
COMMAND_SECONDS = 10.0
DEVICE_WAIT_SECONDS = 5.0
_IFF_UP = 1


# -- keys -------------------------------------------------------------------------------------------------------


def _wg(*args: str, stdin: str | None = None) -> str:
    try:
        done = subprocess.run(
            ["wg", *args], input=stdin, capture_output=True, text=True, timeout=COMMAND_SECONDS, check=False
        )
    except FileNotFoundError as exc:
        raise OverlayError("wireguard-tools is not installed (no `wg`): the encrypted overlay needs it") from exc
    except subprocess.TimeoutExpired as exc:
        raise OverlayError(f"`wg {args[0]}` did not answer within {COMMAND_SECONDS:g} s") from exc
    if done.returncode != 0:
        raise OverlayError(f"`wg {args[0]}` failed: {done.stderr.strip()[:300]}")
    return done.stdout


def load_or_create_key(state_dir: Path) -> tuple[str, str]:
    """(private key, public key) of this host, generating the private key on first use (0600 in `state_dir`)."""
    path = state_dir / KEY_FILE
    if path.exists():
        private = path.read_text().strip()
    else:
        private = _wg("genkey").strip()
        state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(private + "\n")
    os.chmod(path, 0o600)
    return private, _wg("pubkey", stdin=private + "\n").strip()


# -- what is wanted (plain data) --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TunnelPeer:
    public_key: str
    endpoint: str  # the peer's underlay address
    port: int
    transit: str  # its transit address
    routed: tuple[str, ...] = ()  # its slice and its containers' addresses outside it (network/routing.py)

    @property
    def allowed_ips(self) -> tuple[str, ...]:
        """The addresses accepted from it and sent to it: its transit address and what is routed to it."""
        return (f"{self.transit}/32", *self.routed)


@dataclass(frozen=True)
class WantedTunnel:
    name: str
    private_key: str
    port: int
    transit: str  # this host's transit address
    mtu: int
    peers: tuple[TunnelPeer, ...] = ()

    def __repr__(self) -> str:  # never the private key, whoever logs this
        return f"WantedTunnel({self.name}, port {self.port}, {self.transit}, mtu {self.mtu}, {len(self.peers)} peers)"

    @property
    def address(self) -> str:
        return f"{self.transit}/{ipaddress.IPv4Network(TRANSIT_NETWORK).prefixlen}"


def usable_peers(peers: Sequence[TunnelPeer]) -> tuple[TunnelPeer, ...]:
    """The peers that can be configured (a key, an endpoint, a port and a transit address), by key."""
    found = {p.public_key: p for p in peers if p.public_key and p.endpoint and p.port and p.transit}
    return tuple(found[key] for key in sorted(found))


def tunnel_config(want: WantedTunnel) -> str:
    """The `wg syncconf` text for `want` (pure): the interface's key and port, one section per peer."""
    lines = ["[Interface]", f"PrivateKey = {want.private_key}", f"ListenPort = {want.port}"]
    for peer in usable_peers(want.peers):
        lines += [
            "",
            "[Peer]",
            f"PublicKey = {peer.public_key}",
            f"Endpoint = {peer.endpoint}:{peer.port}",
            f"AllowedIPs = {', '.join(peer.allowed_ips)}",
        ]
    return "\n".join(lines) + "\n"


def tunnel_differences(want: WantedTunnel, dump: str) -> list[str]:
    """What differs between `want` and `wg show NAME dump` (pure), in words; [] when the interface is as wanted.
    The dump's first line is the interface (private key, public key, port, fwmark), then one line per peer
    (public key, preshared key, endpoint, allowed ips, handshake, rx, tx, keepalive)."""
    rows = [line.split("\t") for line in dump.splitlines() if line.strip()]
    if not rows or len(rows[0]) < 3:
        return ["the interface has no configuration"]
    differences: list[str] = []
    if rows[0][0] != want.private_key:
        differences.append("another private key")
    if rows[0][2] != str(want.port):
        differences.append(f"listen port {rows[0][2]} is not {want.port}")
    have = {row[0]: (row[2], ",".join(sorted(row[3].split(",")))) for row in rows[1:] if len(row) >= 4}
    wanted = {
        p.public_key: (f"{p.endpoint}:{p.port}", ",".join(sorted(p.allowed_ips))) for p in usable_peers(want.peers)
    }
    for key in sorted(have.keys() - wanted.keys()):
        differences.append(f"peer {key[:8]}… is no longer wanted")
    for key, (endpoint, allowed) in sorted(wanted.items()):
        if key not in have:
            differences.append(f"peer {key[:8]}… is missing")
        elif have[key] != (endpoint, allowed):
            differences.append(f"peer {key[:8]}… has endpoint {have[key][0]}, allowed {have[key][1]}")
    return differences


# -- the interface ----------------------------------------------------------------------------------------------


class Tunnel:
    """Creates, configures and removes this host's WireGuard interface (in the current network namespace)."""

    def __init__(self) -> None:
        self.userspace: bool | None = None  # None until the first interface was made: kernel or wireguard-go

    def apply(self, want: WantedTunnel) -> list[str]:
        """Make the interface what `want` says; return what was changed (for the log). Raises OverlayError."""
        changed: list[str] = []
        try:
            with IPRoute() as ipr:
                if not ipr.link_lookup(ifname=want.name):
                    self._create(want.name)
                    changed.append(f"created {want.name} ({'wireguard-go' if self.userspace else 'kernel'})")
                    self._wait_for(ipr, want.name)
                differences = tunnel_differences(want, _wg("show", want.name, "dump"))
                if differences:
                    _wg("syncconf", want.name, "/dev/stdin", stdin=tunnel_config(want))
                    changed.append("configured: " + "; ".join(differences))
                changed += _set_link(ipr, want)
        except CorralError:
            raise
        except Exception as exc:
            raise OverlayError(f"cannot set up the WireGuard interface {want.name}: {exc}") from exc
        for what in changed:
            log.info("wireguard: %s", what)
        return changed

    def remove(self, name: str) -> bool:
        """Delete the interface (wireguard-go then exits); True when there was one."""
        try:
            with IPRoute() as ipr:
                found = ipr.link_lookup(ifname=name)
                if found:
                    ipr.link("del", index=found[0])
                    log.info("wireguard: removed %s", name)
                    return True
        except Exception as exc:
            raise OverlayError(f"cannot remove the WireGuard interface {name}: {exc}") from exc
        return False

    def _create(self, name: str) -> None:
        if self.userspace is not True:
            done = subprocess.run(
                ["ip", "link", "add", name, "type", "wireguard"],
                capture_output=True,
                text=True,
                timeout=COMMAND_SECONDS,
                check=False,
            )
            if done.returncode == 0:
                self.userspace = False
                return
            self.userspace = True  # no kernel module here: from now on straight to wireguard-go
        if shutil.which("wireguard-go") is None:
            raise OverlayError("this host has no WireGuard kernel module and wireguard-go is not installed")
        done = subprocess.run(
            ["wireguard-go", name],
            env={**os.environ, **USERSPACE_ENV},
            capture_output=True,
            text=True,
            timeout=COMMAND_SECONDS,
            check=False,
        )
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()
            raise OverlayError(f"wireguard-go {name} failed: {detail[-1] if detail else done.returncode}")

    @staticmethod
    def _wait_for(ipr: Any, name: str) -> None:
        deadline = time.monotonic() + DEVICE_WAIT_SECONDS
        while not ipr.link_lookup(ifname=name):
            if time.monotonic() > deadline:
                raise OverlayError(f"the WireGuard interface {name} did not appear within {DEVICE_WAIT_SECONDS:g} s")
            time.sleep(0.05)


def _set_link(ipr: Any, want: WantedTunnel) -> list[str]:
    """The transit address (only it), the MTU, up."""
    index = int(ipr.link_lookup(ifname=want.name)[0])
    link = ipr.get_links(index)[0]
    changed: list[str] = []
    addresses = {f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}" for a in ipr.get_addr(index=index, family=2)}
    for stale in sorted(addresses - {want.address}):
        address, prefix = stale.split("/")
        ipr.addr("del", index=index, address=address, prefixlen=int(prefix))
        changed.append(f"removed address {stale}")
    if want.address not in addresses:
        address, prefix = want.address.split("/")
        ipr.addr("add", index=index, address=address, prefixlen=int(prefix))
        changed.append(f"address {want.address}")
    if int(link.get("IFLA_MTU") or 0) != want.mtu or not link["flags"] & _IFF_UP:
        ipr.link("set", index=index, mtu=want.mtu, state="up")
        changed.append(f"mtu {want.mtu}, up")
    return changed
