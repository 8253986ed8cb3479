"""The local host driver: a "machine" made on this box from a network namespace, a veth and a dockerd of its own.

Why: Corral must be demonstrated and tested on one machine with several real hosts. Each host is a netns attached
to a bridge in the root namespace (hosts reach each other and the server at the bridge's gateway address), running
its own dockerd (which starts its own containerd) and a Corral agent. Everything a host owns is named from the
driver's prefix and the host name, so a developer's demo and a test run never touch each other's hosts, and
everything is found again from the names alone: removal works after a server restart or a crash, and leftovers of a
crashed run can be swept. A record of each host is kept as JSON in <root_dir>/<name>/host.json.

Pitfalls learned here: enter the netns with `nsenter --net=`, never `ip netns exec` (it remounts
/sys and dockerd then fails on cgroups); unix socket paths are limited to 108 bytes and containerd's sockets live
below dockerd's exec root, so exec roots are short paths under /run/corral; every nested dockerd would otherwise
share the engine ID (the trust key in /etc/docker/key.json), so each gets its own key via its own daemon.json.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from corral.model.errors import Conflict, CorralError, InvalidInput, ProvisioningFailed
from corral.provision import _system as system
from corral.runtime.images import copy_images

log = logging.getLogger(__name__)

RUN_BASE = Path("/run/corral")
TEST_REGISTRIES = "198.18.0.0/15"  # the benchmarking range local hosts live in: HTTP registries allowed
FIRST_HOST_OFFSET = 11  # hosts get .11, .12, ... of the subnet; .1 is the gateway on the bridge
DOCKERD_START_SECONDS = 60.0
AGENT_STOP_SECONDS = 5.0
DOCKERD_STOP_SECONDS = 20.0
VETH_ALIAS_TAG = "corral-local"
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_PREFIX = re.compile(r"^[a-z][a-z0-9]{0,15}$")
_IFNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")


@dataclass(frozen=True)
class LocalHostRecord:
    """What the driver made for one host; enough to find and remove all of it later."""

    name: str
    netns: str
    veth: str
    address: str  # the host's IP on the bridge, e.g. 198.18.0.11
    docker_host: str  # unix:///run/corral/.../docker.sock of its own dockerd
    dockerd_pid: int | None
    agent_pid: int | None
    host_dir: str
    arch: str | None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> LocalHostRecord:
        raw = json.loads(text)
        return cls(
            name=str(raw["name"]),
            netns=str(raw["netns"]),
            veth=str(raw["veth"]),
            address=str(raw["address"]),
            docker_host=str(raw["docker_host"]),
            dockerd_pid=_opt_int(raw.get("dockerd_pid")),
            agent_pid=_opt_int(raw.get("agent_pid")),
            host_dir=str(raw["host_dir"]),
            arch=None if raw.get("arch") is None else str(raw["arch"]),
        )


def _opt_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class LocalHostDriver:
    """Creates and removes local hosts; safe to use from several threads and several processes at once.

    `prefix` must be unique per driver configuration and must not be another driver's prefix followed by "-":
    netns names are "<prefix>-<name>" and leftovers are recognised by that prefix.
    """

    def __init__(
        self,
        *,
        root_dir: Path,
        bridge: str,
        subnet: str,
        prefix: str,
        image_patterns: list[str],
        source_docker_host: str,
        storage_driver: str | None = None,
    ) -> None:
        if not _IFNAME.fullmatch(bridge):
            raise InvalidInput(f"bridge name {bridge!r} must be 1-15 letters, digits, '_', '.', '-'", field="bridge")
        if not _PREFIX.fullmatch(prefix):
            raise InvalidInput(f"prefix {prefix!r} must be 1-16 lowercase letters and digits", field="prefix")
        try:
            network = ipaddress.IPv4Network(subnet, strict=True)
        except ValueError as exc:
            raise InvalidInput(f"subnet {subnet!r} is not an IPv4 network: {exc}", field="subnet") from exc
        if network.num_addresses < 16:
            raise InvalidInput(f"subnet {subnet} is too small (want /28 or larger)", field="subnet")
        self.root_dir = Path(root_dir)
        self.bridge = bridge
        self.network = network
        self.prefix = prefix
        self.image_patterns = list(image_patterns)
        self.source_docker_host = source_docker_host
        # None: let dockerd choose (overlay2 on ext4/xfs), except on an overlay fs, where only vfs works.
        self.storage_driver = storage_driver
        self._thread_lock = threading.RLock()
        self._lock_depth = 0
        self._lock_file: int | None = None
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    # --- names -------------------------------------------------------------------------------------------------

    def gateway(self) -> str:
        return str(self.network.network_address + 1)

    def host_dir(self, name: str) -> Path:
        return self.root_dir / _checked_name(name)

    def netns_name(self, name: str) -> str:
        return f"{self.prefix}-{_checked_name(name)}"

    def veth_name(self, name: str) -> str:
        digest = hashlib.sha256(f"{self.prefix}/{_checked_name(name)}".encode()).hexdigest()
        return f"cv{digest[:11]}"

    def run_dir(self, name: str) -> Path:
        """Short private dir for sockets and the exec root (unix socket paths must stay under 108 bytes)."""
        netns = self.netns_name(name)
        if len(netns) > 40:
            netns = f"{netns[:30]}-{hashlib.sha256(netns.encode()).hexdigest()[:8]}"
        return RUN_BASE / netns

    def cgroup_parent(self, name: str) -> str:
        return f"/{self.netns_name(name)}"

    # --- records -----------------------------------------------------------------------------------------------

    def load(self, name: str) -> LocalHostRecord | None:
        path = self.host_dir(name) / "host.json"
        try:
            return LocalHostRecord.from_json(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("unreadable host record %s: %s", path, exc)
            return None

    def records(self) -> list[LocalHostRecord]:
        out: list[LocalHostRecord] = []
        with contextlib.suppress(FileNotFoundError):
            for entry in sorted(os.listdir(self.root_dir)):
                if _NAME.fullmatch(entry):
                    record = self.load(entry)
                    if record is not None:
                        out.append(record)
        return out

    def _save(self, record: LocalHostRecord) -> None:
        path = Path(record.host_dir) / "host.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(record.to_json())
        os.replace(tmp, path)

    def dockerd_alive(self, record: LocalHostRecord) -> bool:
        pid = record.dockerd_pid
        return system.alive(pid) and str(self.run_dir(record.name)) + "/" in " ".join(system.cmdline(pid or 0))

    def agent_alive(self, record: LocalHostRecord) -> bool:
        pid = record.agent_pid
        return system.alive(pid) and record.docker_host in system.cmdline(pid or 0)

    # --- bridge ------------------------------------------------------------------------------------------------

    def ensure_bridge(self) -> str:
        """Bridge up with the gateway address and bridged traffic accepted by FORWARD; returns the gateway."""
        gateway = self.gateway()
        with self._locked():
            self._refuse_a_subnet_in_use()
            if not _link_exists(self.bridge):
                system.run(["ip", "link", "add", self.bridge, "type", "bridge"])
            cidr = f"{gateway}/{self.network.prefixlen}"
            addrs = system.run(["ip", "-o", "-4", "addr", "show", "dev", self.bridge]).stdout
            if f" {cidr} " not in addrs:
                system.run(["ip", "addr", "add", cidr, "dev", self.bridge])
            system.run(["ip", "link", "set", self.bridge, "up"])
            # The root dockerd sets FORWARD's policy to DROP and bridged frames pass through iptables.
            rule = ["FORWARD", "-i", self.bridge, "-o", self.bridge, "-j", "ACCEPT"]
            if not system.succeeds(["iptables", "-w", "5", "-C", *rule]):
                system.run(["iptables", "-w", "5", "-I", *rule])
        return gateway

    def _refuse_a_subnet_in_use(self) -> None:
        """Another interface with an address in our subnet would take the hosts' traffic to the gateway: agents
        would never reach the server. Refuse with its name instead."""
        for line in system.run(["ip", "-o", "-4", "addr", "show"]).stdout.splitlines():
            fields = line.split()
            if len(fields) < 4 or fields[1] == self.bridge:
                continue
            with contextlib.suppress(ValueError):
                if ipaddress.ip_interface(fields[3]).network.overlaps(self.network):
                    raise ProvisioningFailed(
                        f"the local hosts' subnet {self.network} overlaps {fields[3]} on interface {fields[1]}; "
                        "choose another CORRAL_LOCAL_SUBNET or remove that address"
                    )

    def remove_bridge(self) -> None:
        with self._locked():
            rule = ["FORWARD", "-i", self.bridge, "-o", self.bridge, "-j", "ACCEPT"]
            while system.succeeds(["iptables", "-w", "5", "-C", *rule]):
                system.run(["iptables", "-w", "5", "-D", *rule])
            if _link_exists(self.bridge):
                system.run(["ip", "link", "delete", self.bridge])

    # --- create ------------------------------------------------------------------------------------------------

    def create(self, name: str, agent_command: list[str], *, arch: str | None = None) -> LocalHostRecord:
        """Make the host and start its agent (blocking, a few seconds). Undoes everything on failure."""
        host_dir = self.host_dir(name)
        run_dir = self.run_dir(name)
        netns = self.netns_name(name)
        step = "reserving an address"
        try:
            with self._locked():
                if self.load(name) is not None:
                    raise Conflict(f"local host {name} already exists", field="name")
                if self._has_traces(name):
                    log.warning("removing leftovers of an earlier local host %s", name)
                    self._teardown(name)
                address = self._allocate_address()
                record = LocalHostRecord(
                    name=name,
                    netns=netns,
                    veth=self.veth_name(name),
                    address=address,
                    docker_host=f"unix://{run_dir / 'docker.sock'}",
                    dockerd_pid=None,
                    agent_pid=None,
                    host_dir=str(host_dir),
                    arch=arch,
                )
                host_dir.mkdir(parents=True, exist_ok=False)
                self._save(record)
        except CorralError:
            raise
        except OSError as exc:
            raise ProvisioningFailed(f"creating local host {name} failed while {step}: {exc}") from exc
        started = time.monotonic()
        try:
            (host_dir / "agent").mkdir(mode=0o700)
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "owner").write_text(json.dumps({"prefix": self.prefix, "name": name}))
            step = "setting up the bridge"
            self.ensure_bridge()
            step = "creating the network namespace"
            self._make_netns(record)
            step = "starting dockerd"
            proc = self._start_dockerd(record)
            record = replace(record, dockerd_pid=proc.pid)
            self._save(record)
            step = "waiting for dockerd"
            self._wait_dockerd(record, proc)
            step = "copying images"
            if self.image_patterns:
                copy_images(self.source_docker_host, record.docker_host, self.image_patterns)
            step = "starting the agent"
            record = replace(record, agent_pid=self._spawn_agent(record, agent_command))
            self._save(record)
        except Exception as exc:
            log.warning("creating local host %s failed while %s: %s; undoing", name, step, exc)
            with contextlib.suppress(Exception):
                self._teardown(name)
            detail = exc.message if isinstance(exc, CorralError) else str(exc)
            raise ProvisioningFailed(f"creating local host {name} failed while {step}: {detail}") from exc
        log.info("local host %s up at %s in %.1f s", name, record.address, time.monotonic() - started)
        return record

    def _allocate_address(self) -> str:
        used = {r.address for r in self.records()}
        used.add(self.gateway())
        last = self.network.num_addresses - 2  # before the broadcast address
        for offset in range(FIRST_HOST_OFFSET, last + 1):
            candidate = str(self.network.network_address + offset)
            if candidate not in used:
                return candidate
        raise ProvisioningFailed(f"no free address left in {self.network}")

    def _make_netns(self, record: LocalHostRecord) -> None:
        netns, veth = record.netns, record.veth
        system.run(["ip", "netns", "add", netns])
        # Create the pair with its peer directly inside the netns: no temporary name that could collide.
        system.run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns])
        system.run(["ip", "link", "set", veth, "alias", f"{VETH_ALIAS_TAG}:{self.prefix}:{record.name}"])
        system.run(["ip", "link", "set", veth, "master", self.bridge, "up"])
        system.run(["ip", "-n", netns, "link", "set", "lo", "up"])
        system.run(["ip", "-n", netns, "addr", "add", f"{record.address}/{self.network.prefixlen}", "dev", "eth0"])
        system.run(["ip", "-n", netns, "link", "set", "eth0", "up"])
        system.run(["ip", "-n", netns, "route", "add", "default", "via", self.gateway()])

    def _storage_driver_for(self, data_root: Path) -> str | None:
        if self.storage_driver:
            return self.storage_driver
        return "vfs" if system.fs_type(data_root) == "overlay" else None

    def _start_dockerd(self, record: LocalHostRecord) -> subprocess.Popen[bytes]:
        host_dir, run_dir = Path(record.host_dir), self.run_dir(record.name)
        data_root = host_dir / "docker"
        data_root.mkdir(exist_ok=True)
        # Own daemon.json: keeps /etc/docker/daemon.json out and gives this engine its own trust key (engine ID).
        # Registries on test addresses (198.18.0.0/15, e.g. one on the bridge's gateway) speak plain HTTP.
        config = host_dir / "daemon.json"
        daemon = {"deprecated-key-path": str(host_dir / "key.json"), "insecure-registries": [TEST_REGISTRIES]}
        config.write_text(json.dumps(daemon))
        index = (int(ipaddress.IPv4Address(record.address)) - int(self.network.network_address)) - 10
        args = [
            system.executable("nsenter"),
            f"--net={system.NETNS_DIR / record.netns}",
            system.executable("dockerd"),
            "--config-file", str(config),
            "--data-root", str(data_root),
            "--exec-root", str(run_dir / "exec"),
            "--pidfile", str(run_dir / "docker.pid"),
            "-H", record.docker_host,
            "--bip", f"198.19.{index % 256}.1/24",
            # containers in a cgroup of their own per host, so removal finds (and kills) them even if dockerd died
            "--cgroup-parent", self.cgroup_parent(record.name),
            "--shutdown-timeout", "5",
        ]  # fmt: skip
        driver = self._storage_driver_for(data_root)
        if driver:
            args += ["--storage-driver", driver]
        return self._spawn(args, host_dir / "dockerd.log", cwd=host_dir)

    def _wait_dockerd(self, record: LocalHostRecord, proc: subprocess.Popen[bytes]) -> None:
        sock = record.docker_host.removeprefix("unix://")
        deadline = time.monotonic() + DOCKERD_START_SECONDS
        while not system.engine_answers(sock):
            if proc.poll() is not None:
                log_tail = system.tail(Path(record.host_dir) / "dockerd.log")
                raise ProvisioningFailed(f"dockerd exited with code {proc.returncode}: {log_tail}")
            if time.monotonic() > deadline:
                raise ProvisioningFailed(f"dockerd did not answer on {sock} within {DOCKERD_START_SECONDS:.0f} s")
            time.sleep(0.1)

    def _spawn(self, args: list[str], log_path: Path, *, cwd: Path) -> subprocess.Popen[bytes]:
        with open(log_path, "ab") as log_file:
            # start_new_session: hosts outlive the server process (and its terminal's Ctrl-C).
            proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=system.system_env(),
                start_new_session=True,
                close_fds=True,
            )
        self._children[proc.pid] = proc
        return proc

    def _reap_children(self) -> None:
        """Collect exited children (dockerds and agents this process started), so no zombie keeps its pid."""
        for pid, proc in list(self._children.items()):
            if proc.poll() is not None or not system.alive(pid):
                self._children.pop(pid, None)

    def _spawn_agent(self, record: LocalHostRecord, agent_command: list[str]) -> int:
        if not agent_command:
            raise InvalidInput("agent_command is empty", field="agent_command")
        args = [
            system.executable("nsenter"),
            f"--net={system.NETNS_DIR / record.netns}",
            *agent_command,
            "--docker-host",
            record.docker_host,
        ]
        return self._spawn(args, Path(record.host_dir) / "agent.log", cwd=Path(record.host_dir)).pid

    def start_agent(self, name: str, agent_command: list[str]) -> int:
        """(Re)start the agent of an existing host, e.g. after it died; returns its pid."""
        record = self.load(name)
        if record is None:
            raise ProvisioningFailed(f"local host {name} has no record in {self.root_dir}")
        if not system.netns_inode(record.netns):
            raise ProvisioningFailed(f"local host {name} has lost its network namespace {record.netns}")
        if self.agent_alive(record):
            system.terminate({record.agent_pid or 0}, AGENT_STOP_SECONDS)
        pid = self._spawn_agent(record, agent_command)
        with self._locked():
            current = self.load(name) or record
            self._save(replace(current, agent_pid=pid))
        return pid

    def revive(self, name: str, agent_command: list[str]) -> LocalHostRecord:
        """Bring back what died of an existing host (after a reboot, a crash, or a killed process): its netns and
        veth, its dockerd (same data root, so containers with a restart policy come back), its agent."""
        record = self.load(name)
        if record is None:
            raise ProvisioningFailed(f"local host {name} has no record in {self.root_dir}")
        step = "setting up the bridge"
        self._reap_children()
        try:
            self.ensure_bridge()
            with self._locked():
                if system.netns_inode(record.netns) is None:
                    step = "re-creating the network namespace"
                    if _link_exists(record.veth):
                        system.run(["ip", "link", "delete", record.veth])
                    self._make_netns(record)
                if not self.dockerd_alive(record):
                    step = "restarting dockerd"
                    self.run_dir(name).mkdir(parents=True, exist_ok=True)
                    owner = {"prefix": self.prefix, "name": name}
                    (self.run_dir(name) / "owner").write_text(json.dumps(owner))
                    (self.run_dir(name) / "docker.pid").unlink(missing_ok=True)  # names a dead dockerd
                    proc = self._start_dockerd(record)
                    record = replace(record, dockerd_pid=proc.pid)
                    self._save(record)
                    step = "waiting for dockerd"
                    self._wait_dockerd(record, proc)
                if not self.agent_alive(record):
                    step = "restarting the agent"
                    record = replace(record, agent_pid=self._spawn_agent(record, agent_command))
                    self._save(record)
        except Exception as exc:
            detail = exc.message if isinstance(exc, CorralError) else str(exc)
            raise ProvisioningFailed(f"reviving local host {name} failed while {step}: {detail}") from exc
        return record

    # --- remove ------------------------------------------------------------------------------------------------

    def remove(self, name: str) -> None:
        """Stop and delete everything of the host; idempotent, and works without (or with a stale) record."""
        self._teardown(name)

    def _has_traces(self, name: str) -> bool:
        return (
            system.netns_inode(self.netns_name(name)) is not None
            or _link_exists(self.veth_name(name))
            or self.host_dir(name).exists()
            or self.run_dir(name).exists()
        )

    def _teardown(self, name: str) -> None:
        record = self.load(name)
        netns, veth = self.netns_name(name), self.veth_name(name)
        host_dir, run_dir = self.host_dir(name), self.run_dir(name)
        cgroup = self.cgroup_parent(name)
        marker = f"{run_dir}/"
        problems: list[str] = []

        # 1. The agent first, so it does not fight the teardown by recreating containers.
        if record is not None and self.agent_alive(record):
            system.terminate({record.agent_pid or 0}, AGENT_STOP_SECONDS)
        # 2. Containers: the host is going away, so no graceful stop; kill them through their cgroup.
        containers = system.pids_in_cgroup(cgroup)
        system.signal_pids(containers, signal.SIGKILL)
        system.wait_gone(containers, 5.0)
        # 3. dockerd (stops its containerd on SIGTERM). Meanwhile keep killing containers: a restart policy may
        #    bring one back, and dockerd would wait its full stop timeout for a PID 1 that ignores SIGTERM.
        dockerds = {
            pid for pid in system.pids_mentioning(marker) if Path((system.cmdline(pid) or [""])[0]).name == "dockerd"
        }
        system.signal_pids(dockerds, signal.SIGTERM)
        deadline = time.monotonic() + DOCKERD_STOP_SECONDS
        while system.wait_gone(dockerds, 0.1) and time.monotonic() < deadline:
            system.signal_pids(system.pids_in_cgroup(cgroup), signal.SIGKILL)
        system.terminate(dockerds, 0.0)
        # 4. Whatever is left of this host: processes in its netns, shims and containerd naming its run dir.
        inode = system.netns_inode(netns)
        rest = system.pids_mentioning(marker) | system.pids_in_cgroup(cgroup)
        if inode is not None:
            rest |= system.pids_in_netns(inode)
        survivors = system.terminate(rest, 5.0)
        if survivors:
            problems.append(f"processes still alive: {sorted(survivors)}")
        self._reap_children()
        problems += system.remove_cgroup(cgroup)
        # 5. Mounts dockerd left (overlay2 layers, its private bind of the data root, netns files of containers).
        still_mounted = system.unmount_under([host_dir, run_dir])
        if still_mounted:
            problems.append(f"still mounted: {still_mounted}")
        # 6. Network: deleting the netns destroys eth0 and with it the root-side veth; delete the veth anyway.
        if netns in system.netns_names():
            try:
                system.run(["ip", "netns", "delete", netns])
            except ProvisioningFailed as exc:
                problems.append(exc.message)
        if _link_exists(veth):
            try:
                system.run(["ip", "link", "delete", veth])
            except ProvisioningFailed as exc:
                if _link_exists(veth):
                    problems.append(exc.message)
        # 7. Files, only when nothing is mounted below them any more.
        if not still_mounted:
            for directory in (run_dir, host_dir):
                try:
                    shutil.rmtree(directory)
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    problems.append(f"cannot remove {directory}: {exc}")
        if problems:
            raise ProvisioningFailed(f"removing local host {name} left: {'; '.join(problems)}")

    # --- leftovers ---------------------------------------------------------------------------------------------

    def cleanup_leftovers(self, *, remove_dead: bool = False) -> list[str]:
        """Remove namespaces, veths, run dirs and host dirs of this driver's prefix that have no record (a crashed
        earlier run); with `remove_dead`, also hosts whose dockerd and agent are both dead. Returns their names."""
        with self._locked():
            names = self._names_with_traces()
            removed: list[str] = []
            for name in sorted(names):
                record = self.load(name)
                dead = record is not None and not self.dockerd_alive(record) and not self.agent_alive(record)
                if record is None or (remove_dead and dead):
                    self._teardown(name)
                    removed.append(name)
            return removed

    def _names_with_traces(self) -> set[str]:
        names: set[str] = set()
        head = f"{self.prefix}-"
        names.update(n[len(head) :] for n in system.netns_names() if n.startswith(head))
        for link in _veth_aliases():
            tag, _, rest = link.partition(":")
            prefix, _, name = rest.partition(":")
            if tag == VETH_ALIAS_TAG and prefix == self.prefix:
                names.add(name)
        with contextlib.suppress(FileNotFoundError):
            for entry in os.listdir(RUN_BASE):
                with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                    owner = json.loads((RUN_BASE / entry / "owner").read_text())
                    if owner["prefix"] == self.prefix:
                        names.add(str(owner["name"]))
        with contextlib.suppress(FileNotFoundError):
            names.update(e for e in os.listdir(self.root_dir) if (self.root_dir / e).is_dir())
        return {n for n in names if _NAME.fullmatch(n)}

    # --- locking -----------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise allocation and bridge setup across threads (RLock) and processes (flock on root_dir/.lock)."""
        with self._thread_lock:
            if self._lock_depth == 0:
                self.root_dir.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.root_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(fd, fcntl.LOCK_EX)
                self._lock_file = fd
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
                if self._lock_depth == 0 and self._lock_file is not None:
                    os.close(self._lock_file)  # closing releases the flock
                    self._lock_file = None


def _checked_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise InvalidInput(f"host name {name!r} must be 1-63 lowercase letters, digits and inner dashes", field="name")
    return name


def _link_exists(ifname: str) -> bool:
    return Path("/sys/class/net", ifname).exists()


def _veth_aliases() -> list[str]:
    aliases: list[str] = []
    with contextlib.suppress(OSError):
        for ifname in os.listdir("/sys/class/net"):
            with contextlib.suppress(OSError):
                alias = Path("/sys/class/net", ifname, "ifalias").read_text().strip()
                if alias:
                    aliases.append(alias)
    return aliases
