"""The agent's side of the managed overlay network: the `network` message in, the overlay applied, the per-host
services (DNS, metadata) fed, the connectivity check run.

Why one manager: the `network` message (model/network.py NetworkState) concerns several parts of the agent, and
they must all see the same state. The manager lives as long as the agent (like the health monitor); sessions
attach to it for their connection's lifetime.

- `receive(data)` (from the session): parse the message (a malformed one keeps the previous state and returns
  the error for the session to answer with `error`), hand the new state to every registered component, and apply
  the overlay at once.
- Applying (on a worker thread, never on the websocket loop): the Docker network `corral-managed`
  (runtime/networks.py) with this host's slice, then, when the environment is encrypted, the WireGuard interface
  with the peers' keys (network/wireguard.py) and the peers' slices routed into it (network/routing.py, no VXLAN),
  else the VXLAN device between underlay addresses with its fdb entries (network/overlay.py), the services
  address on the bridge either way, and the UDP filter that accepts VXLAN and WireGuard only from the peers
  (network/firewall.py), and the NAT rules that send the services address's ports 53 and 80 to the DNS and
  metadata (network/services_nat.py). The host's WireGuard key
  pair is made once (state dir, 0600); its public half goes to the server in `hello` (`hello_fields`). Applying
  runs again every `apply_seconds` (level-triggered: a deleted fdb entry, device or peer is put back without a
  restart) and at once after a failed probe.
- The connectivity check (agent/connectivity.py): every `probe_seconds` each peer's gateway is probed over the
  overlay; a `connectivity` message goes out when a status changes and after every connect.
- The converger asks `gate(desired)` before it creates a managed container: "waiting for an overlay address" while
  the server has not given it one, "waiting for the overlay network" while the Docker network is not in place.

Registering a component (DNS, metadata, ...): any object with a method `update(state: NetworkState) -> None`;
call `manager.register(component)` once at agent start. `update` is called on the agent's event loop with every
new state (and at once with the current one, if any, on registration); it must be quick and must not raise
(an exception is logged and the others still get the state) — hand slow work to a thread of your own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from corral.agent import connectivity
from corral.agent.connectivity import EchoResponder, PeerRecord
from corral.model import network_scope, protocol
from corral.model.errors import CorralError, InvalidInput
from corral.model.network import WIREGUARD_MTU, WIREGUARD_PORT, NetworkState, wireguard_interface
from corral.model.stack import DesiredContainer
from corral.network.firewall import Firewall, WantedFilter
from corral.network.overlay import Overlay, WantedOverlay, wanted_peers
from corral.network.routing import Routes, WantedRoutes, foreign_addresses
from corral.network.segments import Segments
from corral.network.services_nat import ServicesNat
from corral.network.wireguard import Tunnel, TunnelPeer, WantedTunnel, load_or_create_key, usable_peers
from corral.runtime.containers import on_overlay
from corral.runtime.docker_engine import DockerEngine
from corral.runtime.networks import ensure_network, wanted_network

log = logging.getLogger("corral.agent.network")

APPLY_SECONDS = 10.0
DEMAND_WAIT_SECONDS = 2.0  # the longest DNS or metadata waits for the records it asked the server for
PROBE_SECONDS = 5.0
WAITING_FOR_ADDRESS = "waiting for an overlay address"
WAITING_FOR_NETWORK = "waiting for the overlay network"
OVERLAY_DISABLED = (
    "this host's agent runs without the managed overlay (CORRAL_AGENT_OVERLAY=0): "
    "use network_mode bridge, host or none for containers placed here"
)

Sender = Callable[[str, dict[str, Any]], Awaitable[None]]


class NetworkComponent(Protocol):
    def update(self, state: NetworkState) -> None: ...


class NetworkManager:
    def __init__(
        self,
        engine: DockerEngine,
        *,
        overlay: Overlay | None = None,
        apply_seconds: float = APPLY_SECONDS,
        probe_seconds: float = PROBE_SECONDS,
        probe_port: int = connectivity.PROBE_PORT,
        clock: Callable[[], float] = connectivity.wall_clock,
        enabled: bool = True,
        state_dir: Path | None = None,
        wireguard_port: int = WIREGUARD_PORT,
    ) -> None:
        self.engine = engine
        # False (`CORRAL_AGENT_OVERLAY=0`): this host takes no part in the overlay (no Docker network, VXLAN, DNS or
        # metadata here); managed containers wait with a reason saying so
        self.enabled = enabled
        self.overlay = overlay if overlay is not None else Overlay()
        self.apply_seconds = apply_seconds
        self.probe_seconds = probe_seconds
        self.probe_port = probe_port
        self._clock = clock
        self.state: NetworkState | None = None
        self.ready = False  # the Docker network is in place with this host's slice
        self.problem = ""  # why the overlay is not (fully) applied, "" when it is
        self.peers: dict[str, PeerRecord] = {}  # host id -> probe bookkeeping
        self._components: list[NetworkComponent] = []
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="overlay")
        self._apply_now = asyncio.Event()
        self._send: Sender | None = None
        self._on_ready: Callable[[], None] | None = None
        self._responder = EchoResponder(port=probe_port)
        self._report_due = False  # the peer set changed: the next probe round reports even without a flip
        self.tunnel = Tunnel()
        self.firewall = Firewall()
        self.segments = Segments()  # compose networks (network/segments.py)
        self.routes = Routes()
        self.services_nat = ServicesNat()
        self.wireguard_port = wireguard_port
        self._keys: tuple[str, str] | None = None  # (private, public) WireGuard key of this host
        self._key_problem = "this agent has no WireGuard key (no state dir)"
        # what this host asked the server for beyond its scope (model/network_scope.py): services, or "all"
        self.demanded: set[network_scope.Key] | str = set()
        self._received = asyncio.Event()  # set, then replaced, on every state taken
        if enabled and state_dir is not None:
            try:
                self._keys = load_or_create_key(state_dir)
            except (CorralError, OSError) as exc:
                self._key_problem = f"no WireGuard key: {exc}"
                log.warning("the encrypted overlay cannot work on this host: %s", self._key_problem)

    def hello_fields(self) -> dict[str, Any]:
        """What `hello` carries for the overlay: a scoped network state and what this host asked for beyond it
        (model/network_scope.py); the WireGuard public key and port (never the private key)."""
        fields: dict[str, Any] = {
            "network_scope": True,
            "network_demand": network_scope.demand_to_wire(self.demanded),
        }
        if self._keys is not None:
            fields["wireguard"] = {"public_key": self._keys[1], "port": self.wireguard_port}
        return fields

    async def demand(self, keys: set[network_scope.Key] | str, timeout: float = DEMAND_WAIT_SECONDS) -> None:
        """Ask the server for these services' every container and record (or, "all", the whole environment) and
        wait, at most `timeout`, until the state holds them. Asked once per connection; later callers only wait."""
        if self.demanded == network_scope.ALL or self._holds(keys):
            return
        if keys == network_scope.ALL:
            new = True
            self.demanded = network_scope.ALL
        else:
            assert isinstance(keys, set) and isinstance(self.demanded, set)
            new = not keys <= self.demanded
            self.demanded |= keys
            if len(self.demanded) > network_scope.MAX_DEMANDED:  # more than the server takes by name
                self.demanded = network_scope.ALL
        send = self._send
        if new:
            log.info("asking the server for %s", network_scope.demand_to_wire(keys))
        if new and send is not None:
            await send(protocol.ACK, {"network": None, "demand": network_scope.demand_to_wire(self.demanded)})
        deadline = asyncio.get_running_loop().time() + timeout
        while not self._holds(keys):
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                log.info("the server did not send %s within %.1f s", network_scope.demand_to_wire(keys), timeout)
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._received.wait(), remaining)

    def _holds(self, keys: set[network_scope.Key] | str) -> bool:
        state = self.state
        if state is None or not state.scoped:
            return state is not None
        if keys == network_scope.ALL:
            return False
        complete = {(s.stack, s.name) for s in state.services if s.complete}
        listed = {d.key for d in state.directory}
        return all(key in complete or key not in listed for key in keys)

    # -- registration and sessions

    def register(self, component: NetworkComponent) -> None:
        self._components.append(component)
        if self.state is not None:
            self._update(component, self.state)

    def attach(self, send: Sender, on_ready: Callable[[], None] | None = None) -> None:
        """A session connected: connectivity goes out through `send`; `on_ready` when the network becomes ready."""
        self._send = send
        self._on_ready = on_ready

    def detach(self, send: Sender) -> None:
        if self._send is send:
            self._send = None
            self._on_ready = None

    async def send_report(self) -> None:
        """The current connectivity (after each connect; the server may have missed or forgotten it)."""
        send = self._send
        if send is not None and self.state is not None:
            await send(protocol.CONNECTIVITY, {"peers": connectivity.report(self.peers)})

    # -- the message

    def receive(self, data: dict[str, Any]) -> str:
        """A `network` message: "" when taken, else the error (the previous state stays)."""
        try:
            state = NetworkState.from_dict(data)
        except InvalidInput as exc:
            log.warning("ignoring a network message I cannot read (keeping the previous one): %s", exc.message)
            return exc.message
        if not self.enabled:
            self.state = state
            return ""
        if state != self.state:
            log.info(
                "network: slice %s, %d peers, %d containers",
                state.host.slice or "none",
                len(state.peers),
                len(state.containers),
            )
        self.state = state
        peers = connectivity.forget_peers(self.peers, [p.host_id for p in state.peers if p.slice], self._clock())
        self._report_due = self._report_due or set(peers) != set(self.peers)
        self.peers = peers
        for component in list(self._components):
            self._update(component, state)
        self._apply_now.set()
        self._received.set()
        self._received = asyncio.Event()
        return ""

    @staticmethod
    def _update(component: NetworkComponent, state: NetworkState) -> None:
        try:
            component.update(state)
        except Exception:
            log.exception("network component %r failed to take the new state", component)

    def gate(self, desired: DesiredContainer) -> str:
        """Why a managed container cannot be created now ("" when it can, or when it is not on the overlay)."""
        if not on_overlay(desired):
            return ""
        if not self.enabled:
            return OVERLAY_DISABLED
        if not desired.ip:
            return WAITING_FOR_ADDRESS
        if not self.ready:
            return WAITING_FOR_NETWORK + (f": {self.problem}" if self.problem else "")
        return ""

    # -- applying

    def apply_blocking(self, state: NetworkState) -> tuple[bool, str]:
        """Docker network, then VXLAN; (network ready, problem or ""). Runs on the worker thread."""
        if not state.host.slice:
            return False, "the server has not given this host a slice of the overlay yet"
        try:
            ensure_network(self.engine, wanted_network(state.settings, state.host, state.environment_id))
        except CorralError as exc:
            return False, exc.message
        try:
            self.services_nat.apply()
            nat_problem = ""
        except CorralError as exc:
            nat_problem = exc.message
        try:
            self.segments.apply(state.containers, state.host.host_id, str(state.settings.network))
        except CorralError as exc:
            nat_problem = "; ".join(p for p in (nat_problem, exc.message) if p)
        if not state.host.address:
            problem = "the server does not know this host's underlay address"
        else:
            try:
                problem = self._apply_tunnel_and_overlay(state)
            except CorralError as exc:
                problem = exc.message
        return True, "; ".join(p for p in (problem, nat_problem) if p)

    def _apply_tunnel_and_overlay(self, state: NetworkState) -> str:
        """Plain: VXLAN between underlay addresses. Encrypted: WireGuard, the peers' slices routed into it and no
        VXLAN. Then the UDP filter. The problem or ""."""
        settings, host = state.settings, state.host
        name = wireguard_interface(host.host_id)
        if not settings.encryption:
            self.tunnel.remove(name)
            peers = wanted_peers(host.address, (p.address for p in state.peers))
            self.overlay.apply(WantedOverlay(settings.vni, host.address, settings.mtu, peers))
            self.firewall.apply(WantedFilter(vxlan_sources=peers))
            return ""
        if self._keys is None:
            return self._key_problem
        if not host.transit:
            return "the server has not given this host a transit address for the encrypted overlay"
        on_host: dict[str, list[str]] = {}
        for container in state.containers:
            on_host.setdefault(container.host_id, []).append(container.ip)
        tunnel_peers = usable_peers(
            [
                TunnelPeer(
                    p.public_key,
                    p.address,
                    p.port,
                    p.transit,
                    (p.slice, *sorted(foreign_addresses(p.slice, on_host.get(p.host_id, ())))),
                )
                for p in state.peers
                if p.address != host.address and p.slice
            ]
        )
        want = WantedTunnel(name, self._keys[0], self.wireguard_port, host.transit, WIREGUARD_MTU)
        self.tunnel.apply(dataclasses.replace(want, peers=tunnel_peers))
        self.overlay.apply(WantedOverlay(settings.vni, host.transit, settings.mtu, frozenset(), vxlan=False))
        self.routes.apply(
            WantedRoutes(
                name,
                settings.subnet,
                frozenset(route for peer in tunnel_peers for route in peer.routed),
                foreign_addresses(host.slice, on_host.get(host.host_id, ())),
                host.gateway,
            )
        )
        self.firewall.apply(
            WantedFilter(
                wireguard_port=self.wireguard_port, wireguard_sources=frozenset(p.endpoint for p in tunnel_peers)
            )
        )
        keyless = sorted(p.name for p in state.peers if p.slice and not p.public_key)
        return f"peers without a WireGuard key (their agents are too old?): {', '.join(keyless)}" if keyless else ""

    def teardown(self) -> None:
        """This host left the environment: remove the WireGuard interface and the UDP filter."""
        state = self.state
        try:
            if state is not None:
                name = wireguard_interface(state.host.host_id)
                self.tunnel.remove(name)
                self.routes.remove(WantedRoutes(name, state.settings.subnet, frozenset()))
            self.firewall.remove()
            self.segments.remove()
            self.services_nat.remove()
        except CorralError as exc:
            log.warning("cleaning up the overlay: %s", exc.message)

    async def apply(self) -> None:
        state = self.state
        if state is None:
            return
        loop = asyncio.get_running_loop()
        try:
            ready, problem = await loop.run_in_executor(self._executor, self.apply_blocking, state)
        except Exception as exc:  # a bug costs one round
            log.exception("applying the overlay failed")
            ready, problem = False, f"applying the overlay failed: {exc!r}"
        if problem and problem != self.problem:
            log.warning("overlay: %s", problem)
        elif not problem and self.problem:
            log.info("overlay: in place")
        became_ready = ready and not self.ready
        self.ready, self.problem = ready, problem
        if became_ready and self._on_ready is not None:
            self._on_ready()

    # -- the loops

    async def run(self, stop: asyncio.Event) -> None:
        """Apply and probe until `stop` is set."""
        if not self.enabled:
            await stop.wait()
            return
        tasks = [
            asyncio.create_task(self._apply_loop(), name="overlay-apply"),
            asyncio.create_task(self._probe_loop(), name="overlay-probe"),
        ]
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._responder.close()
            self._executor.shutdown(wait=False, cancel_futures=True)

    async def _apply_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._apply_now.wait(), timeout=self.apply_seconds)
            self._apply_now.clear()
            await self.apply()

    async def _probe_loop(self) -> None:
        while True:
            await asyncio.sleep(self.probe_seconds)
            try:
                await self.probe_once()
            except Exception:  # a bug costs one round
                log.exception("the connectivity check failed")

    async def probe_once(self) -> None:
        """Probe every peer once; repair at once after a failure; report changes."""
        state = self.state
        if state is None or not self.ready:
            return
        await self._responder.ensure()
        targets = [p for p in state.peers if p.slice and p.host_id in self.peers]
        results = await asyncio.gather(
            *(connectivity.probe_peer(p.gateway, port=self.probe_port) for p in targets), return_exceptions=True
        )
        now = self._clock()
        changed = False
        failed = False
        for peer, result in zip(targets, results, strict=True):
            ok, error = result if isinstance(result, tuple) else (False, f"probe failed: {result!r}")
            failed = failed or not ok
            self.peers, flipped = connectivity.record_probe(self.peers, peer.host_id, ok, error, now)
            if flipped:
                changed = True
                log.log(
                    logging.INFO if ok else logging.WARNING,
                    "overlay towards %s (%s): %s",
                    peer.name,
                    peer.gateway,
                    "ok" if ok else error,
                )
        if failed:
            await self.apply()  # repair before the next probe
        if changed or self._report_due:
            self._report_due = False
            await self.send_report()

    def close(self) -> None:
        self._responder.close()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.engine.close()
