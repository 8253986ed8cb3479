"""The local host driver on the real machine: netns hosts with their own dockerd, reachable over a bridge, removed
without a trace, and leftovers of a crashed run swept.

Every run uses its own bridge, subnet and prefix, so a developer's demo on the same machine is never touched; a
module fixture removes whatever the tests made even when they fail.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import signal
import string
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import docker
import pytest

from corral.model.errors import Conflict, ProvisioningFailed
from corral.provision import _system as system
from corral.provision.local import LocalHostDriver, LocalHostRecord
from corral.runtime.images import matching_tags

IMAGE = "corral/busybox:latest"
SOURCE = "unix:///var/run/docker.sock"
AGENT = [sys.executable, "-c", "import time; time.sleep(3600)"]  # ignores the --docker-host the driver appends


def _run_id(n: int = 5) -> str:
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(n))


def _free_subnet() -> str:
    """A 198.18.X.0/24 no interface of the root namespace uses (X < 64: 198.18.64.0/18 is the overlay's)."""
    used = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True, check=True).stdout
    free = [x for x in range(2, 64) if f" 198.18.{x}." not in used]
    return f"198.18.{secrets.choice(free)}.0/24"


def _missing_prerequisite() -> str | None:
    if os.geteuid() != 0:
        return "the local driver needs root (network namespaces, dockerd)"
    for tool in ("ip", "dockerd", "nsenter", "iptables"):
        if system.which(tool) is None:
            return f"{tool} is not installed (run `make setup`)"
    if not system.engine_answers("/var/run/docker.sock"):
        return "no Docker engine answers on /var/run/docker.sock (run `make setup`)"
    return None


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalHostDriver]:
    reason = _missing_prerequisite()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the local driver tests: {reason}")
        pytest.skip(reason)
    run_id = _run_id()
    made = LocalHostDriver(
        root_dir=tmp_path_factory.mktemp("local-driver") / "hosts",
        bridge=f"crt{run_id}",
        subnet=_free_subnet(),
        prefix=f"cld{run_id}",
        image_patterns=["corral/busybox:*"],  # what the tests run: all of corral/* (about 460 MB) took most of a start
        source_docker_host=SOURCE,
    )
    try:
        yield made
    finally:
        for record in made.records():
            made.remove(record.name)
        made.cleanup_leftovers(remove_dead=True)
        made.remove_bridge()


def _host_pids(drv: LocalHostDriver, record: LocalHostRecord) -> set[int]:
    """Every process that belongs to the host right now: dockerd, containerd, shims, containers, agent."""
    pids = {p for p in (record.dockerd_pid, record.agent_pid) if p}
    pids |= system.pids_mentioning(f"{drv.run_dir(record.name)}/")
    pids |= system.pids_in_cgroup(drv.cgroup_parent(record.name))
    inode = system.netns_inode(record.netns)
    if inode is not None:
        pids |= system.pids_in_netns(inode)
    return pids


def _assert_no_traces(drv: LocalHostDriver, record: LocalHostRecord, pids: set[int]) -> None:
    assert record.netns not in system.netns_names()
    assert not Path("/sys/class/net", record.veth).exists()
    assert not [p for p in pids if system.alive(p)], f"processes left: {sorted(p for p in pids if system.alive(p))}"
    run_dir = drv.run_dir(record.name)
    assert not system.pids_mentioning(f"{run_dir}/")
    assert not system.pids_in_cgroup(drv.cgroup_parent(record.name))
    assert not system.cgroup_dirs(drv.cgroup_parent(record.name))
    assert not system.mounts_under([Path(record.host_dir), run_dir])
    assert not Path(record.host_dir).exists()
    assert not run_dir.exists()
    assert drv.load(record.name) is None


def _in_netns(record: LocalHostRecord, *args: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["nsenter", f"--net=/var/run/netns/{record.netns}", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.integration
def test_two_hosts_run_their_own_engines_reach_each_other_and_leave_nothing(driver: LocalHostDriver) -> None:
    started = time.monotonic()
    one = driver.create("one", AGENT)
    two = driver.create("two", AGENT, arch="x86_64")
    print(f"two local hosts created in {time.monotonic() - started:.1f} s")

    subnet = ipaddress.ip_network(str(driver.network))
    assert {one.address, two.address} == {str(subnet.network_address + 11), str(subnet.network_address + 12)}
    assert driver.load("one") == one and driver.load("two") == two and two.arch == "x86_64"
    assert len({one.veth, two.veth}) == 2 and all(len(r.veth) <= 15 for r in (one, two))
    with pytest.raises(Conflict):
        driver.create("one", AGENT)

    engines = {r.name: docker.DockerClient(base_url=r.docker_host) for r in (one, two)}
    try:
        ids = set()
        for record in (one, two):
            engine = engines[record.name]
            assert engine.ping()
            assert IMAGE in engine.images.get(IMAGE).tags
            ids.add(engine.info()["ID"])
            assert driver.dockerd_alive(record) and driver.agent_alive(record)
            # the agent runs inside the host's netns and was told its engine
            assert system.net_ns_inode(record.agent_pid or 0) == system.netns_inode(record.netns)
            assert system.cmdline(record.agent_pid or 0)[-2:] == ["--docker-host", record.docker_host]
            assert oct((Path(record.host_dir) / "agent").stat().st_mode & 0o777) == "0o700"
        assert len(ids) == 2, "each engine must have its own identity"

        # host <-> host over the bridge, and host -> gateway (where a server listens for agents)
        assert _in_netns(one, "busybox", "ping", "-c1", "-W2", two.address).returncode == 0
        assert _in_netns(two, "busybox", "ping", "-c1", "-W2", driver.gateway()).returncode == 0
        # a published port on one host is reachable from the other (FORWARD rule on the bridge)
        engines["two"].containers.run(
            IMAGE,
            ["httpd", "-f", "-p", "80", "-h", "/www"],
            detach=True,
            ports={"80/tcp": 8080},
            restart_policy={"Name": "always"},
        )
        engines["two"].containers.run(IMAGE, ["sleep", "3600"], detach=True)
        deadline = time.monotonic() + 10
        while True:
            got = _in_netns(one, "timeout", "3", "busybox", "wget", "-qO-", f"http://{two.address}:8080/")
            if got.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert got.returncode == 0, got.stderr
    finally:
        for engine in engines.values():
            engine.close()

    # a dead agent is started again
    old_agent = one.agent_pid or 0
    os.kill(old_agent, signal.SIGKILL)
    system.wait_gone({old_agent}, 5)
    new_agent = driver.start_agent("one", AGENT)
    assert new_agent != old_agent and system.alive(new_agent)
    assert driver.load("one") == replace(one, agent_pid=new_agent)
    one = driver.load("one") or one

    for record in (one, two):
        pids = _host_pids(driver, record)
        assert len(pids) >= 3  # dockerd, containerd, agent (+ shims and containers on two)
        started = time.monotonic()
        driver.remove(record.name)
        print(f"host {record.name} removed in {time.monotonic() - started:.1f} s")
        _assert_no_traces(driver, record, pids)
        driver.remove(record.name)  # twice is fine
    assert driver.records() == []


@pytest.mark.integration
def test_cleanup_leftovers_after_a_crash(driver: LocalHostDriver) -> None:
    # A crashed run: the server died (record never written) and so did the dockerd, leaving containerd, a shim
    # and a container running, plus the netns, the veth and the mounts.
    crashed = driver.create("crashed", AGENT)
    engine = docker.DockerClient(base_url=crashed.docker_host)
    engine.containers.run(IMAGE, ["sleep", "3600"], detach=True)
    engine.close()
    pids = _host_pids(driver, crashed)
    os.kill(crashed.dockerd_pid or 0, signal.SIGKILL)
    system.wait_gone({crashed.dockerd_pid or 0}, 5)
    (Path(crashed.host_dir) / "host.json").unlink()
    # A namespace made by hand with this driver's prefix, and one of another prefix that must be left alone.
    subprocess.run(["ip", "netns", "add", f"{driver.prefix}-ghost"], check=True)
    foreign = f"x{driver.prefix}-ghost"
    subprocess.run(["ip", "netns", "add", foreign], check=True)
    # A host whose processes all died: swept only when asked.
    dead = driver.create("dead", AGENT)
    dead_pids = _host_pids(driver, dead)
    system.terminate({dead.agent_pid or 0, dead.dockerd_pid or 0}, 20)
    try:
        assert driver.cleanup_leftovers() == ["crashed", "ghost"]
        _assert_no_traces(driver, crashed, pids)
        assert f"{driver.prefix}-ghost" not in system.netns_names()
        assert foreign in system.netns_names()
        assert driver.load("dead") == dead

        assert driver.cleanup_leftovers(remove_dead=True) == ["dead"]
        _assert_no_traces(driver, dead, dead_pids)
        assert driver.cleanup_leftovers(remove_dead=True) == []
    finally:
        subprocess.run(["ip", "netns", "delete", foreign], check=False)


@pytest.mark.integration
def test_failed_create_names_the_step_and_undoes_everything(driver: LocalHostDriver) -> None:
    broken = LocalHostDriver(
        root_dir=driver.root_dir,
        bridge=driver.bridge,
        subnet=str(driver.network),
        prefix=driver.prefix,
        image_patterns=["corral/*"],
        source_docker_host="unix:///nonexistent/docker.sock",
    )
    with pytest.raises(ProvisioningFailed, match="copying images"):
        broken.create("broken", AGENT)
    record = LocalHostRecord(
        name="broken",
        netns=driver.netns_name("broken"),
        veth=driver.veth_name("broken"),
        address="",
        docker_host="",
        dockerd_pid=None,
        agent_pid=None,
        host_dir=str(driver.host_dir("broken")),
        arch=None,
    )
    _assert_no_traces(driver, record, system.pids_mentioning(f"{driver.run_dir('broken')}/"))


def test_a_subnet_another_interface_holds_is_refused_naming_it(tmp_path: Path) -> None:
    if _missing_prerequisite() is not None:
        pytest.skip(str(_missing_prerequisite()))
    run_id = _run_id()
    subnet = _free_subnet()
    holder, bridge = f"cdm{run_id}", f"crt{run_id}"
    subprocess.run(["ip", "link", "add", holder, "type", "veth", "peer", "name", f"cdp{run_id}"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", subnet.replace(".0/24", ".9/24"), "dev", holder], check=True)
        driver = LocalHostDriver(
            root_dir=tmp_path / "hosts",
            bridge=bridge,
            subnet=subnet,
            prefix=f"cld{run_id}",
            image_patterns=[],
            source_docker_host=SOURCE,
        )
        with pytest.raises(ProvisioningFailed, match=f"overlaps .* on interface {holder}"):
            driver.ensure_bridge()
        assert subprocess.run(["ip", "link", "show", bridge], capture_output=True).returncode != 0  # not made
    finally:
        subprocess.run(["ip", "link", "delete", holder], check=False)


def test_names_fit_the_kernel_limits_and_never_collide_across_drivers(tmp_path: Path) -> None:
    def make(prefix: str, bridge: str, subnet: str) -> LocalHostDriver:
        return LocalHostDriver(
            root_dir=tmp_path / prefix,
            bridge=bridge,
            subnet=subnet,
            prefix=prefix,
            image_patterns=[],
            source_docker_host=SOURCE,
        )

    demo = make("corral", "corralbr0", "198.18.0.0/24")
    test = make("crtab12c", "crtab12c", "198.18.7.0/24")
    longest = "h" * 63
    assert demo.gateway() == "198.18.0.1" and test.gateway() == "198.18.7.1"
    for name in ("a", "web-1", longest):
        assert demo.netns_name(name) != test.netns_name(name)
        assert demo.veth_name(name) != test.veth_name(name)
        assert len(demo.veth_name(name)) <= 15
        assert demo.run_dir(name) != test.run_dir(name)
        # containerd's longest socket path below the exec root must fit the 108-byte sun_path
        assert len(f"{demo.run_dir(name)}/exec/containerd/containerd-debug.sock") < 108
    assert demo.host_dir("web-1") == tmp_path / "corral" / "web-1"
    for bad in ("../etc", "UPPER", "a_b", ""):
        with pytest.raises(Exception, match="host name"):
            demo.host_dir(bad)


def test_record_round_trips_through_json() -> None:
    record = LocalHostRecord(
        "a", "corral-a", "cv0", "198.18.0.11", "unix:///run/corral/corral-a/docker.sock", 1, None, "/x/a", None
    )
    assert LocalHostRecord.from_json(record.to_json()) == record
    assert json.loads(record.to_json())["address"] == "198.18.0.11"


def test_image_patterns_match_repo_and_tag() -> None:
    tags = ["corral/busybox:latest", "corral/web:1.0", "nginx:latest", "registry:5000/corral/x:2"]
    assert matching_tags(tags, ["corral/*"]) == ["corral/busybox:latest", "corral/web:1.0"]
    assert matching_tags(tags, ["nginx"]) == ["nginx:latest"]
    assert matching_tags(tags, ["corral/web:1.*", "registry:5000/*"]) == ["corral/web:1.0", "registry:5000/corral/x:2"]
    assert matching_tags(tags, []) == []
