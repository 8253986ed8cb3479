"""The load balancers on this host (issue 19): every running LB container here gets the haproxy.cfg its rules and
its targets' healthy overlay addresses give, and HAProxy reloads it without dropping a connection.

Why a network component: the `network` message already carries what it takes (every container of the environment
with its address, running state and health, and each service's `lb` rules, model/network.py), and it comes again
whenever a target starts, stops or changes health, so a scale, an upgrade or a failed check reaches the LB's
configuration without anything else. Level-triggered: each round renders the wanted configuration per LB container
(`wanted_configs`, pure) and pushes only what differs from what that container (by Docker id: a recreated container
starts from the image's default) last got; a push writes the file through the engine and sends SIGUSR2 to HAProxy's
master (`haproxy -W`), which starts new workers on the same listening sockets (`expose-fd listeners`) while the old
ones finish their connections. A round also runs every `apply_seconds`, so a failed push is retried.
A reload signal is sent only once HAProxy's master handles SIGUSR2 (`SigCgt` in /proc/PID/status): while it starts
or re-executes itself for the previous reload it ignores the signal (the kernel drops a default-handled signal sent
to a container's PID 1), so a signal sent then was lost and the container kept its old configuration for good (the
push counted as done): the image's default with no frontend when the first push met HAProxy's start, the previous
targets when two pushes came within the reload's re-exec. The file is written before the master is seen ready and
signalled after, so whichever reload follows reads it; a master not ready within `RELOAD_WAIT_SECONDS` is not
signalled, and the push is not counted, so the next round writes and signals again.
Certificates (chain + key, from the desired set, server/control/cert_delivery.py) are written into the container's
CERT_DIR (mode 0600) before the configuration naming them; they are part of what decides a reload (a renewal).
The LB's fixed host ports are forwarded by this component too (network/lb_ports.py): each goes to the newest LB
container of the host whose HAProxy got its configuration and listens on its ports (`forwards`, pure), so a
start-first upgrade's new container takes the new connections only once it can answer them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import logging
import re
import signal
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from corral.agent.drain import listening_ports, read_tables
from corral.model.errors import CorralError
from corral.model.lb import lb_config_from_dict
from corral.model.network import ContainerRecord, NetworkState, ServiceRecord
from corral.model.network_scope import selected
from corral.model.virtual import Virtual
from corral.network.haproxy_config import CERT_DIR, Target, certificate_order, missing_certificates, render
from corral.network.lb_ports import Forward, LbPorts
from corral.network.overlay import OverlayError
from corral.runtime.containers import container_pid
from corral.runtime.docker_engine import DockerEngine
from corral.runtime.files import container_id, put_file, put_files, send_signal

log = logging.getLogger("corral.agent.lb")

CONFIG_PATH = "/usr/local/etc/haproxy/haproxy.cfg"
RELOAD_SIGNAL = "SIGUSR2"
APPLY_SECONDS = 5.0
LISTEN_WAIT_SECONDS = 5.0  # for a reloaded HAProxy to listen on its ports before it is given connections
RELOAD_WAIT_SECONDS = 5.0  # for HAProxy's master to handle the reload signal (it ignores it while it (re)starts)
_GENERATION = re.compile(r"-u(\d+)$")
_BIND = re.compile(r"^\s+bind \*:(\d+)\b", re.MULTILINE)


def _targets(
    ref: str, selector: str, stack: str, state: NetworkState, by_service: dict[tuple[str, str], list[ContainerRecord]]
) -> list[Target]:
    if selector:
        keys = [(s.stack, s.name) for s in state.services if selected(selector, s)]
    else:
        target_stack, _, name = ref.rpartition("/")
        keys = [(target_stack or stack, name)]
    virtual = {(s.stack, s.name): v for s in state.services if (v := Virtual.from_dict(s.virtual)) is not None}
    targets: list[Target] = []
    for key in keys:
        service = virtual.get(key)
        if service is None:
            targets += _live(by_service.get(key, ()))
        elif service.kind == "alias":  # the containers of the services it stands for
            targets += [t for target in service.target_keys(key[0]) for t in _live(_by_key(by_service, target))]
        elif service.hostname:  # HAProxy resolves it (init-addr: it starts even while the name does not resolve)
            targets.append(Target(f"{key[1]}-{service.hostname}", service.hostname))
        else:
            targets += [Target(f"{key[1]}-{ip}", ip) for ip in service.external_ips]
    return targets


def _live(containers: Iterable[ContainerRecord]) -> list[Target]:
    return [Target(c.name, c.ip) for c in containers if c.running and c.healthy and c.ip]


def _by_key(by_service: dict[tuple[str, str], list[ContainerRecord]], key: tuple[str, str]) -> list[ContainerRecord]:
    """The containers of (stack, service), compared without case (aliases' targets are kept lower-case)."""
    return [c for (stack, name), found in by_service.items() if (stack.lower(), name.lower()) == key for c in found]


@dataclass(frozen=True)
class Wanted:
    """What one LB container must hold: its haproxy.cfg and its certificates' PEM bundles (file name -> text)."""

    config: str
    certificates: dict[str, str] = field(default_factory=dict)
    missing: tuple[str, ...] = ()  # certificates it names that the server did not send

    def digest(self) -> str:
        files = sorted(self.certificates.items())
        return hashlib.sha256(repr((self.config, files)).encode()).hexdigest()


def wanted_configs(state: NetworkState, certificates: Mapping[str, str] | None = None) -> dict[str, Wanted]:
    """Docker name of each running LB container on this host -> its haproxy.cfg and certificates (pure).
    `certificates`: name -> PEM bundle, as the server sent them with the desired set."""
    certificates = certificates or {}
    lbs = {(s.stack, s.name): s for s in state.services if s.lb}
    if not lbs:
        return {}
    by_service: dict[tuple[str, str], list[ContainerRecord]] = {}
    for record in state.containers:
        by_service.setdefault((record.stack, record.service), []).append(record)
    wanted: dict[str, Wanted] = {}
    for record in state.containers:
        service = lbs.get((record.stack, record.service))
        if service is None or record.host_id != state.host.host_id or not record.running:
            continue
        config = lb_config_from_dict(service.lb)
        targets = {
            (rule.service or rule.selector): _targets(rule.service, rule.selector, record.stack, state, by_service)
            for rule in config.port_rules
        }
        names = certificate_order(config, certificates)
        wanted[record.name] = Wanted(
            render(config, targets, certificates=names),
            {f"{name}.pem": certificates[name] for name in names},
            tuple(missing_certificates(config, certificates)),
        )
    return wanted


def published(service: ServiceRecord) -> list[tuple[str, int, int]]:
    """(protocol, host port, container port) of the service's fixed host ports ("80:8080/tcp" in its record)."""
    found = []
    for entry in service.ports:
        mapping, _, protocol = entry.partition("/")
        host, sep, container = mapping.rpartition(":")
        if sep and host.isdigit() and container.isdigit():
            found.append((protocol or "tcp", int(host), int(container)))
    return found


def forwards(state: NetworkState, ready: Collection[str]) -> list[Forward]:
    """The host's LB ports, each to the newest (upgrade generation, then name) running LB container of its service on
    this host among the `ready` ones (configured and listening); none while no container is ready (pure)."""
    found: list[Forward] = []
    for service in state.services:
        ports = published(service) if service.lb else []
        candidates = [
            c
            for c in state.containers
            if (c.stack, c.service) == (service.stack, service.name)
            and c.host_id == state.host.host_id
            and c.running
            and c.ip
            and c.name in ready
        ]
        if not ports or not candidates:
            continue
        chosen = max(candidates, key=lambda c: (int(m.group(1)) if (m := _GENERATION.search(c.name)) else 0, c.name))
        found += [Forward(protocol, host, chosen.ip, port, chosen.name) for protocol, host, port in ports]
    return found


class LoadBalancers:
    """Keeps every LB container on this host configured (register it on the NetworkManager)."""

    def __init__(self, engine: DockerEngine, *, apply_seconds: float = APPLY_SECONDS) -> None:
        self.engine = engine
        self.apply_seconds = apply_seconds
        self._state: NetworkState | None = None
        self._applied: NetworkState | None = None  # the state of the last round pushed to this host's HAProxys
        self._wake = asyncio.Event()
        self._pushed: dict[str, tuple[str, str]] = {}  # container name -> (docker id, config digest)
        self._certificates: Mapping[str, str] = {}  # name -> PEM bundle (chain + key); never logged
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="lb")
        self._listening: dict[str, str] = {}  # container name -> docker id whose HAProxy listens on its ports
        self.ports = LbPorts()

    @property
    def state(self) -> NetworkState | None:
        """The last network state received."""
        return self._state

    @property
    def applied(self) -> NetworkState | None:
        """The network state of the last finished round: what this host's HAProxys were told (agent/drain.py reads
        which targets they still offer; the received state can be a round ahead of them)."""
        return self._applied

    def update(self, state: NetworkState) -> None:
        self._state = state
        self._wake.set()

    def set_certificates(self, certificates: Mapping[str, str]) -> None:
        """The certificates of the desired set (server/control/cert_delivery.py); a change reaches HAProxy next
        round."""
        if dict(certificates) != dict(self._certificates):
            self._certificates = dict(certificates)
            self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                woken = asyncio.ensure_future(self._wake.wait())
                await asyncio.wait({stopping, woken}, timeout=self.apply_seconds, return_when=asyncio.FIRST_COMPLETED)
                woken.cancel()
                self._wake.clear()
                state = self._state
                if state is None or stop.is_set():
                    continue
                try:
                    await loop.run_in_executor(self._executor, self.apply_blocking, state)
                except Exception:  # a bug costs one round
                    log.exception("configuring the load balancers failed")
        finally:
            stopping.cancel()
            self._executor.shutdown(wait=False, cancel_futures=True)

    def apply_blocking(self, state: NetworkState) -> list[str]:
        """Push each differing configuration and forward the LB ports; the names of the containers that got one."""
        wanted = wanted_configs(state, self._certificates)
        pushed = self.push(wanted)
        self._forward(state, wanted)
        self._applied = state
        return pushed

    def push(self, wanted: Mapping[str, Wanted]) -> list[str]:
        """Write each configuration (and certificates) that differs from what its container last got and reload its
        HAProxy; the names of the containers that got one (the others are tried again next round)."""
        pushed: list[str] = []
        for name in set(self._pushed) - set(wanted):
            del self._pushed[name]
        for name, want in sorted(wanted.items()):
            digest = want.digest()
            text = want.config
            try:
                docker_id = container_id(self.engine, name)
                if docker_id is None or self._pushed.get(name) == (docker_id, digest):
                    continue
                if want.missing:
                    log.warning(
                        "load balancer %s: waiting for certificate %s (not sent by the server: does it exist?)",
                        name,
                        ", ".join(want.missing),
                    )
                if want.certificates:  # before the configuration that names them
                    put_files(self.engine, name, CERT_DIR, {k: v.encode() for k, v in want.certificates.items()})
                put_file(self.engine, name, CONFIG_PATH, text.encode())
                if not self._reloadable(docker_id):
                    log.warning(
                        "load balancer %s: HAProxy's master does not handle %s yet (starting or reloading: the "
                        "signal would be lost); configuring it again next round",
                        name,
                        RELOAD_SIGNAL,
                    )
                    continue
                send_signal(self.engine, name, RELOAD_SIGNAL)
            except CorralError as exc:
                log.warning("load balancer %s: cannot update its configuration: %s", name, exc.message)
                continue
            self._pushed[name] = (docker_id, digest)
            pushed.append(name)
            log.info("load balancer %s: configuration updated (%s)", name, _summary(text))
        return pushed

    def fronted(self, name: str) -> bool:
        """Whether this host's LB ports send new connections to container `name` (agent/drain.py waits for it)."""
        return any(f.name == name for f in self.ports.current or ())

    def _forward(self, state: NetworkState, wanted: Mapping[str, Wanted]) -> None:
        self._listening = {k: v for k, v in self._listening.items() if k in wanted}
        for name, want in wanted.items():
            docker_id = self._pushed.get(name, ("", ""))[0]
            if docker_id and self._listening.get(name) != docker_id and self._listens(docker_id, want.config):
                self._listening[name] = docker_id
        ready = [
            name for name, docker_id in self._listening.items() if self._pushed.get(name, ("", ""))[0] == docker_id
        ]
        chosen = forwards(state, ready)
        if self.ports.current is None and not chosen and not any(s.lb for s in state.services):
            return  # no LB here ever: leave the host's NAT alone
        try:
            self.ports.apply(chosen)
        except OverlayError as exc:
            log.warning("load balancer ports: %s", exc.message)

    def _reloadable(self, docker_id: str) -> bool:
        """Wait (bounded) until the container's HAProxy master handles the reload signal (`reload_ready`)."""
        try:
            pid = container_pid(self.engine, docker_id)  # the master keeps its pid across its re-executions
        except CorralError:
            return False
        deadline = time.monotonic() + RELOAD_WAIT_SECONDS
        while pid:
            ready = reload_ready(pid, docker_id)
            if ready is None or ready:  # None: its processes are not visible from here, signal it as before
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return False

    def _listens(self, docker_id: str, config: str) -> bool:
        """Wait (bounded) until the container's HAProxy listens on every port its configuration binds."""
        wanted = {int(port) for port in _BIND.findall(config)}
        deadline = time.monotonic() + LISTEN_WAIT_SECONDS
        while True:
            try:
                pid = container_pid(self.engine, docker_id)
            except CorralError:
                return False
            if pid and wanted <= listening_ports(read_tables(pid)):
                return True
            if not pid or time.monotonic() >= deadline:
                return False
            time.sleep(0.1)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._executor.shutdown(wait=False, cancel_futures=True)
        self.engine.close()


def caught_signals(status: str) -> frozenset[int]:
    """The signals a process has a handler for, from its /proc/PID/status text (`SigCgt`, a hex mask; pure)."""
    for line in status.splitlines():
        key, _, value = line.partition(":")
        if key == "SigCgt":
            mask = int(value.strip(), 16)
            return frozenset(number for number in range(1, 65) if mask >> (number - 1) & 1)
    return frozenset()


def reload_ready(pid: int, container_id: str | None = None) -> bool | None:
    """Whether HAProxy's master in the container whose main process is `pid` (host pid) handles RELOAD_SIGNAL now;
    None when this /proc does not show that process (the agent does not see the engine's processes, or `pid` here is
    another process, e.g. an agent in its own pid namespace: nothing to wait for; its cgroup names the container).
    The master is the main process, or its child under `init: true` (docker-init forwards the signal)."""
    proc = Path("/proc")
    if not (proc / str(pid)).is_dir():
        return None
    if container_id is not None:
        try:
            if container_id not in (proc / str(pid) / "cgroup").read_text():
                return None
        except OSError:
            return None
    candidates = [pid]
    with contextlib.suppress(OSError, ValueError):
        candidates += [int(child) for child in (proc / str(pid) / "task" / str(pid) / "children").read_text().split()]
    for candidate in candidates:
        try:
            if (proc / str(candidate) / "comm").read_text().strip() != "haproxy":
                continue
            status = (proc / str(candidate) / "status").read_text()
        except OSError:
            continue
        return signal.Signals[RELOAD_SIGNAL] in caught_signals(status)
    return False


def _summary(text: str) -> str:
    servers = sum(1 for line in text.splitlines() if line.strip().startswith("server "))
    frontends: Iterable[str] = (line for line in text.splitlines() if line.startswith("frontend port_"))
    return f"{len(list(frontends))} ports, {servers} targets"
