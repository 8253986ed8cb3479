"""Convergence against the machine's real Docker engine: the executor directly, then the real agent process.

Every test works in an environment and stack of its own (unique per run) and removes what carries its labels
afterwards, even when it fails; containers on the engine that belong to anything else are never touched.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from corral.agent.converge import ActionKind, Converger
from corral.model import protocol
from corral.model.errors import Conflict
from corral.model.stack import ContainerSlot, DesiredContainer, LaunchConfig, PortSpec, VolumeSpec
from corral.runtime import containers as runtime
from corral.runtime import labels
from corral.runtime.docker_engine import DockerEngine, _parse_time
from tests.integration.agent_harness import (  # noqa: F401
    FakeServer,
    StartAgent,
    fake_server_fixture,
    has_container,
    start_agent_fixture,
    state_dir_fixture,
)
from tests.integration.conftest import ROOT_DOCKER_HOST as DOCKER_HOST
from tests.integration.conftest import TEST_IMAGE as IMAGE
from tests.integration.conftest import skip_or_fail

pytestmark = pytest.mark.integration

TEST_RUN = "io.corral.test-run"  # on the foreign containers a test makes, so that cleanup finds them too


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class World:
    """One test's corner of the engine: its environment, its stack, a docker client and a converger."""

    run: str
    environment_id: str
    stack: str
    client: docker.DockerClient
    converger: Converger

    def desired(
        self,
        slot_id: str,
        launch: LaunchConfig,
        *,
        service: str = "web",
        index: int = 1,
        running: bool = True,
        start_requested_at: float = 0.0,
    ) -> DesiredContainer:
        slot = ContainerSlot(
            id=f"{slot_id}-{self.run}",
            environment_id=self.environment_id,
            stack=self.stack,
            service=service,
            index=index,
            host_id="host-1",
            config_hash=launch.config_hash(),
        )
        return DesiredContainer(slot, launch, running=running, start_requested_at=start_requested_at)

    def converge(self, *desired: DesiredContainer) -> Any:
        return self.converger.converge(list(desired), self.environment_id)

    def inspect(self, name_or_id: str) -> dict[str, Any]:
        return dict(self.client.api.inspect_container(name_or_id))

    def slot_containers(self, slot_id: str) -> list[dict[str, Any]]:
        rows = self.client.api.containers(all=True, filters={"label": f"{labels.CONTAINER}={slot_id}"})
        found = []
        for row in rows:
            try:
                found.append(self.inspect(row["Id"]))
            except docker.errors.NotFound:  # removed between the list and the inspect (the agent is converging)
                continue
        return found

    def foreign(self, name: str, *extra_labels: str, command: tuple[str, ...] = ("sleep", "300")) -> str:
        """A container Corral did not create (labelled only for this test's cleanup)."""
        found = {TEST_RUN: self.run}
        for pair in extra_labels:
            key, _, value = pair.partition("=")
            found[key] = value
        container = self.client.containers.run(
            IMAGE, list(command), name=name, labels=found, network_mode="none", stop_signal="SIGKILL", detach=True
        )
        return str(container.id)


START_ONCE = (("io.rancher.container.start_once", "true"),)


def sleeper(**overrides: Any) -> LaunchConfig:
    """`sleep` as PID 1 ignores SIGTERM, so stopping it waits the grace period out: none, unless a test wants one."""
    values: dict[str, Any] = {
        "image": IMAGE,
        "command": ("sleep", "300"),
        "network_mode": "none",
        "stop_grace_seconds": 0,
    }
    values.update(overrides)
    return LaunchConfig(**values)


@pytest.fixture
def world(root_engine: DockerEngine) -> Iterator[World]:
    client = docker.DockerClient(base_url=DOCKER_HOST, version="auto")
    try:
        client.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        client.close()
        skip_or_fail(f"image {IMAGE} is missing (scripts/setup.sh builds it)")
    run = secrets.token_hex(4)
    converger = Converger(DockerEngine(DOCKER_HOST), max_retry_seconds=0.0)
    environment_id = f"env-it-{run}"
    try:
        yield World(run, environment_id, f"it{run}", client, converger)
    finally:
        converger.close()
        for label in (f"{labels.ENVIRONMENT}={environment_id}", f"{TEST_RUN}={run}"):
            for row in client.api.containers(all=True, filters={"label": label}):
                with contextlib.suppress(docker.errors.NotFound):
                    client.api.remove_container(row["Id"], force=True, v=True)
        for volume in client.volumes.list(filters={"name": f"it{run}"}):
            volume.remove(force=True)
        client.close()


def started_at(info: dict[str, Any]) -> str:
    return str(info["State"]["StartedAt"])


def test_a_container_is_created_as_desired(world: World, tmp_path: Path) -> None:
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("hello from corral\n")
    port = free_port()
    launch = LaunchConfig(
        image=IMAGE,
        command=("httpd", "-f", "-p", "80", "-h", "/www"),
        environment=(("GREETING", "hi"), ("MODE", "a=b")),
        labels=(("tier", "front"),),
        ports=(PortSpec(80, port, "tcp", "127.0.0.1"),),
        expose=("9000", "53/udp"),
        volumes=(
            VolumeSpec("bind", "/www", str(www), read_only=True),
            VolumeSpec("volume", "/data", f"it{world.run}-data"),
            VolumeSpec("anonymous", "/cache"),
        ),
        working_dir="/www",
        user="0:0",
        hostname="webhost",
        restart="on-failure",
        stop_grace_seconds=2,
        cap_add=("NET_ADMIN",),
        cap_drop=("MKNOD",),
        mem_limit_bytes=64 << 20,
        cpus=0.5,
        network_mode="managed",
    )
    want = world.desired("web", launch)
    report = world.converge(want)
    assert [(r.action.kind, r.error) for r in report.results] == [(ActionKind.CREATE, "")]
    assert report.problems == {}

    info = world.inspect(want.slot.name)
    config, host = info["Config"], info["HostConfig"]
    assert info["State"]["Status"] == "running"
    assert config["Image"] == IMAGE
    assert config["Cmd"] == ["httpd", "-f", "-p", "80", "-h", "/www"]
    assert {"GREETING=hi", "MODE=a=b"} <= set(config["Env"])
    assert config["Labels"]["tier"] == "front"
    assert {k: config["Labels"][k] for k in labels.ALL} == {
        labels.ENVIRONMENT: world.environment_id,
        labels.STACK: world.stack,
        labels.SERVICE: "web",
        labels.CONTAINER: want.slot.id,
        labels.SERVICE_INDEX: "1",
        labels.CONFIG_HASH: launch.config_hash(),
    }
    assert config["Labels"][labels.RANCHER_STACK_NAME] == world.stack
    assert config["Labels"][labels.RANCHER_STACK_SERVICE_NAME] == f"{world.stack}/web"
    assert set(config["ExposedPorts"]) == {"80/tcp", "53/udp", "9000/tcp"}
    assert host["PortBindings"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}
    mounts = {m["Destination"]: m for m in info["Mounts"]}
    assert mounts["/www"]["Type"] == "bind" and mounts["/www"]["Source"] == str(www) and not mounts["/www"]["RW"]
    assert mounts["/data"]["Type"] == "volume" and mounts["/data"]["Name"] == f"it{world.run}-data"
    assert mounts["/cache"]["Type"] == "volume" and mounts["/cache"]["RW"]
    assert (config["WorkingDir"], config["User"], config["Hostname"]) == ("/www", "0:0", "webhost")
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 0}
    assert config["StopTimeout"] == 2
    assert host["CapAdd"] == ["NET_ADMIN"] and host["CapDrop"] == ["MKNOD"]
    assert host["Memory"] == 64 << 20 and host["NanoCpus"] == 500_000_000
    assert host["NetworkMode"] == "bridge"

    deadline = time.monotonic() + 10
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                assert response.read().decode() == "hello from corral\n"
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_converging_again_changes_nothing(world: World) -> None:
    desired = [world.desired("a", sleeper()), world.desired("b", sleeper(), service="worker", running=False)]
    world.converge(*desired)
    before = {d.slot.id: world.slot_containers(d.slot.id) for d in desired}
    assert [len(v) for v in before.values()] == [1, 1]
    assert before[desired[1].slot.id][0]["State"]["Status"] == "created"

    for converger in (world.converger, Converger(DockerEngine(DOCKER_HOST))):  # also as a restarted agent would
        report = converger.converge(desired, world.environment_id)
        assert report.actions == () and report.problems == {}
        converger_after = {d.slot.id: world.slot_containers(d.slot.id) for d in desired}
        for slot_id, infos in converger_after.items():
            assert [(i["Id"], started_at(i), i["RestartCount"]) for i in infos] == [
                (i["Id"], started_at(i), 0) for i in before[slot_id]
            ]


def test_a_config_change_recreates_and_an_undesired_container_is_removed(world: World) -> None:
    first = world.desired("a", sleeper(environment=(("V", "1"),)))
    other = world.desired("b", sleeper(), service="worker")
    world.converge(first, other)
    old_id = world.inspect(first.slot.name)["Id"]

    changed = world.desired("a", sleeper(environment=(("V", "2"),)))
    assert changed.slot.config_hash != first.slot.config_hash
    report = world.converge(changed, other)
    assert [r.action.kind for r in report.results] == [ActionKind.RECREATE]
    info = world.inspect(changed.slot.name)
    assert info["Id"] != old_id and "V=2" in info["Config"]["Env"] and info["State"]["Status"] == "running"
    assert info["Config"]["Labels"][labels.CONFIG_HASH] == changed.slot.config_hash
    assert len(world.slot_containers(changed.slot.id)) == 1

    report = world.converge(changed)
    assert [(r.action.kind, r.action.slot_id) for r in report.results] == [(ActionKind.REMOVE, other.slot.id)]
    assert world.slot_containers(other.slot.id) == []


def test_foreign_containers_are_left_alone(world: World) -> None:
    plain = world.foreign(f"it{world.run}-plain")
    half = world.foreign(f"it{world.run}-half", f"{labels.ENVIRONMENT}={world.environment_id}")
    elsewhere = world.foreign(
        f"it{world.run}-elsewhere", f"{labels.ENVIRONMENT}=env-other-{world.run}", f"{labels.CONTAINER}=x-{world.run}"
    )
    report = world.converge()
    assert report.actions == ()
    for docker_id in (plain, half, elsewhere):
        assert world.inspect(docker_id)["State"]["Status"] == "running"


def test_a_name_held_by_a_foreign_container_is_reported_and_the_others_still_converge(world: World) -> None:
    blocked = world.desired("a", sleeper())
    fine = world.desired("b", sleeper(), service="worker")
    holder = world.foreign(blocked.slot.name)
    report = world.converge(blocked, fine)
    assert report.problems == {
        blocked.slot.id: f"the name {blocked.slot.name} is taken by container {holder[:12]}, which Corral did not "
        "create; remove or rename it"
    }
    assert world.inspect(blocked.slot.name)["Id"] == holder
    assert world.inspect(holder)["State"]["Status"] == "running"
    assert world.inspect(fine.slot.name)["State"]["Status"] == "running"


def test_a_stale_corral_container_holding_the_name_is_replaced(world: World) -> None:
    want = world.desired("a", sleeper())
    stale_labels = [f"{labels.ENVIRONMENT}={world.environment_id}", f"{labels.CONTAINER}=stale-{world.run}"]
    stale = world.foreign(want.slot.name, *stale_labels)
    engine = world.converger.engine
    with pytest.raises(Conflict, match="desired too"):
        runtime.create_container(engine, want, protected_slots={f"stale-{world.run}"})
    docker_id = runtime.create_container(engine, want, protected_slots={want.slot.id})
    assert docker_id != stale
    assert world.inspect(want.slot.name)["Id"] == docker_id
    # Asked again for the very same container, the runtime adopts it instead of failing.
    assert runtime.create_container(engine, want) == docker_id

    elsewhere = world.desired("b", sleeper(), service="worker")
    world.foreign(elsewhere.slot.name, f"{labels.ENVIRONMENT}=env-other-{world.run}", f"{labels.CONTAINER}=y")
    with pytest.raises(Conflict, match="another Corral environment"):
        runtime.create_container(engine, elsewhere)


def test_duplicates_of_a_slot_are_reduced_to_one(world: World) -> None:
    want = world.desired("a", sleeper())
    world.converge(want)
    kept = world.inspect(want.slot.name)["Id"]
    copy_labels = [f"{k}={v}" for k, v in runtime.container_labels(want).items()]
    copy = world.foreign(f"it{world.run}-copy", *copy_labels, command=("true",))
    report = world.converge(want)
    assert [(r.action.kind, r.action.docker_id, r.error) for r in report.results] == [(ActionKind.REMOVE, copy, "")]
    assert [i["Id"] for i in world.slot_containers(want.slot.id)] == [kept]


def test_a_missing_image_is_pulled_and_the_failed_pull_reported_clearly(world: World) -> None:
    image = f"corral/missing-{world.run}:latest"
    missing = world.desired("a", LaunchConfig(image=image))
    fine = world.desired("b", sleeper(), service="worker")
    report = world.converge(missing, fine)
    assert list(report.problems) == [missing.slot.id]
    assert report.problems[missing.slot.id].startswith(
        f"image {image} is not present on this host and cannot be pulled: "
    )
    assert world.slot_containers(fine.slot.id)[0]["State"]["Status"] == "running"
    with pytest.raises(docker.errors.ImageNotFound):
        world.client.images.get(image)
    # Once the desired entry is fixed, the problem is gone.
    fixed = world.desired("a", sleeper())
    assert world.converge(fixed, fine).problems == {}


def test_running_false_stops_with_the_grace_period_and_a_start_request_starts_again(world: World) -> None:
    # sleep as PID 1 ignores SIGTERM: the grace period runs out; start_once: Corral does not restart it by itself
    launch = sleeper(stop_grace_seconds=1, labels=START_ONCE)
    world.converge(world.desired("a", launch))
    running = world.desired("a", launch)
    first_start = started_at(world.inspect(running.slot.name))

    began = time.monotonic()
    report = world.converge(world.desired("a", launch, running=False))
    took = time.monotonic() - began
    assert [r.action.kind for r in report.results] == [ActionKind.STOP]
    info = world.inspect(running.slot.name)
    assert info["State"]["Status"] == "exited" and info["State"]["ExitCode"] == 137
    assert 0.9 <= took < 8, took  # the 1 s grace, not Docker's default 10 s

    assert world.converge(running).actions == ()  # an exited container stays exited without a request
    request = world.desired("a", launch, start_requested_at=time.time())
    report = world.converge(request)
    assert [r.action.kind for r in report.results] == [ActionKind.START]
    info = world.inspect(running.slot.name)
    assert info["State"]["Status"] == "running" and started_at(info) != first_start
    assert world.converge(request).actions == ()


def test_an_exited_one_shot_container_is_started_once_per_request(world: World) -> None:
    launch = LaunchConfig(image=IMAGE, command=("sh", "-c", "exit 3"), network_mode="none", labels=START_ONCE)
    want = world.desired("job", launch)
    world.converge(want)

    def exited() -> dict[str, Any]:
        deadline = time.monotonic() + 10
        while (info := world.inspect(want.slot.name))["State"]["Status"] != "exited":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        return info

    first = exited()
    assert first["State"]["ExitCode"] == 3
    assert world.converge(want).actions == ()
    request = replace(want, start_requested_at=time.time())
    assert [r.action.kind for r in world.converge(request).results] == [ActionKind.START]
    second = exited()
    assert _parse_time(started_at(second)) > _parse_time(started_at(first)) and second["Id"] == first["Id"]
    assert world.converge(request).actions == ()


# -- the real agent process


def _desired_message(*desired: DesiredContainer) -> str:
    return protocol.Message(protocol.DESIRED, {"containers": [d.to_dict() for d in desired]}).encode()


def _wait_for(check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _state(world: World, slot_id: str) -> list[tuple[str, str, int, str]]:
    return [(i["Id"], i["State"]["Status"], i["RestartCount"], started_at(i)) for i in world.slot_containers(slot_id)]


def test_the_agent_converges_and_survives_sigkill_without_touching_containers(
    world: World, fake_server: FakeServer, state_dir: Path, start_agent: StartAgent
) -> None:
    fake_server.environment_id = world.environment_id
    web = world.desired("web", sleeper(restart="always"))
    missing_image = f"corral/missing-{world.run}:latest"
    broken = world.desired("broken", LaunchConfig(image=missing_image, network_mode="none"), service="broken")
    desired = _desired_message(web, broken)
    fake_server.after_welcome = [desired]  # as the server does: the full desired set on every connection

    agent = start_agent(state_dir, DOCKER_HOST)
    _, message = fake_server.expect(protocol.SLOT, timeout=20)
    assert message.data["slot_id"] == broken.slot.id  # the pull runs in the background (agent/pulls.py) ...
    assert message.data["reason"].startswith(f"waiting for image {missing_image}")
    number, message = fake_server.expect(protocol.SLOT, timeout=20)  # ... and its failure is the next reason
    assert message.data["slot_id"] == broken.slot.id
    assert message.data["reason"].startswith(f"image {missing_image} is not present on this host and cannot be pulled")
    _wait_for(lambda: [s[1] for s in _state(world, web.slot.id)] == ["running"], "the web container to run")
    _wait_for(
        lambda: any(has_container_of(m, web.slot.id, "running") for m in list(fake_server.history)),
        "the server to hear of the web container",
    )
    before = _state(world, web.slot.id)
    assert before[0][2] == 0

    def broken_reason(message: protocol.Message) -> bool:
        return bool(message.data["slot_id"] == broken.slot.id)

    last = number
    for _ in range(3):
        agent.process.send_signal(signal.SIGKILL)
        agent.wait(timeout=10)
        agent = start_agent(state_dir, DOCKER_HOST)
        # A new connection converges again (the broken slot's reason is reported again on each of them); a reason
        # the killed agent sent twice on its own connection (the pull's retry) may still be queued before it.
        number_now, _ = fake_server.expect(protocol.SLOT, where=broken_reason, timeout=20)
        while number_now <= last:
            number_now, _ = fake_server.expect(protocol.SLOT, where=broken_reason, timeout=20)
        assert number_now == last + 1  # one new connection per restart
        last = number_now
        assert _state(world, web.slot.id) == before

    fake_server.send(desired)  # the same set again, on the current connection
    time.sleep(1.5)  # a debounce period and some events' worth
    assert _state(world, web.slot.id) == before

    # The broken entry is fixed: the container appears and the server hears that the problem is gone.
    fixed = world.desired("broken", sleeper(), service="broken")
    fake_server.send(_desired_message(web, fixed))
    _, message = fake_server.expect(protocol.SLOT, where=lambda m: m.data["reason"] == "", timeout=20)
    assert message.data["slot_id"] == fixed.slot.id
    _wait_for(lambda: [s[1] for s in _state(world, fixed.slot.id)] == ["running"], "the fixed container to run")
    assert _state(world, web.slot.id) == before
    assert agent.process.poll() is None


def has_container_of(message: protocol.Message, slot_id: str, state: str) -> bool:
    container = message.data.get("container") or {}
    return bool(container.get("labels", {}).get(labels.CONTAINER) == slot_id and container.get("state") == state)


def test_the_agent_waits_for_the_first_desired_set_before_removing_anything(
    world: World, fake_server: FakeServer, state_dir: Path, start_agent: StartAgent
) -> None:
    fake_server.environment_id = world.environment_id
    leftover = world.desired("old", sleeper())
    world.converge(leftover)
    docker_id = world.inspect(leftover.slot.name)["Id"]

    start_agent(state_dir, DOCKER_HOST)
    fake_server.expect(protocol.SNAPSHOT, where=has_container(docker_id, "running"))
    # Events about it, resyncs: nothing removes it while the server has not said what it wants.
    subprocess.run(["docker", "-H", DOCKER_HOST, "restart", "-t", "0", docker_id], check=True, capture_output=True)
    fake_server.expect(protocol.CONTAINER, where=has_container(docker_id, "running"))
    time.sleep(1.5)
    assert world.inspect(docker_id)["State"]["Status"] == "running"

    fake_server.send(_desired_message())  # the server wants nothing here
    fake_server.expect(protocol.CONTAINER, where=lambda m: m.data.get("removed") == docker_id, timeout=20)
    assert world.slot_containers(leftover.slot.id) == []


def test_a_malformed_desired_set_is_refused_and_changes_nothing(
    world: World, fake_server: FakeServer, state_dir: Path, start_agent: StartAgent
) -> None:
    fake_server.environment_id = world.environment_id
    web = world.desired("web", sleeper())
    start_agent(state_dir, DOCKER_HOST)
    fake_server.expect(protocol.SNAPSHOT)
    fake_server.send(_desired_message(web))
    _wait_for(lambda: [s[1] for s in _state(world, web.slot.id)] == ["running"], "the web container to run")
    before = _state(world, web.slot.id)

    broken = json.loads(_desired_message(web))
    broken["data"]["containers"].append({"slot": {"id": "half"}})
    broken["id"] = "m-broken"
    fake_server.send(json.dumps(broken))
    _, error = fake_server.expect(protocol.ERROR)
    assert error.data["in_reply_to"] == "m-broken" and "containers[1]" in error.data["message"]
    time.sleep(1.0)
    assert _state(world, web.slot.id) == before


def test_the_agent_recreates_a_removed_container_restarts_an_exited_one_and_leaves_a_start_once_one_exited(
    world: World, fake_server: FakeServer, state_dir: Path, start_agent: StartAgent
) -> None:
    fake_server.environment_id = world.environment_id
    web = world.desired("web", sleeper())
    worker = world.desired("worker", sleeper(), service="worker")
    once = world.desired("once", sleeper(labels=START_ONCE), service="once")
    start_agent(state_dir, DOCKER_HOST)
    fake_server.expect(protocol.SNAPSHOT)
    fake_server.send(_desired_message(web, worker, once))
    for want in (web, worker, once):
        _wait_for(lambda want=want: [s[1] for s in _state(world, want.slot.id)] == ["running"], "containers to run")
    (old,) = _state(world, web.slot.id)
    (stopped,) = _state(world, worker.slot.id)
    (finished,) = _state(world, once.slot.id)

    world.client.api.remove_container(old[0], force=True)  # the engine's destroy event makes the agent converge
    _wait_for(lambda: [s[1] for s in _state(world, web.slot.id)] == ["running"], "the web container to come back")
    assert _state(world, web.slot.id)[0][0] != old[0]

    world.client.api.stop(stopped[0], timeout=0)  # exited: Corral keeps the service at scale and starts it again
    world.client.api.stop(finished[0], timeout=0)  # start_once: exiting is its normal end
    _wait_for(
        lambda: [(s[0], s[1]) for s in _state(world, worker.slot.id)] == [(stopped[0], "running")],
        "the exited worker to be started again, in place",
    )
    time.sleep(1.0)
    assert [(s[0], s[1]) for s in _state(world, once.slot.id)] == [(finished[0], "exited")]


def test_the_agent_applies_desired_deltas_acks_them_and_asks_for_the_full_set_after_a_gap(
    world: World, fake_server: FakeServer, state_dir: Path, start_agent: StartAgent
) -> None:
    """model/deltas.py with the real agent: it asks for deltas in its hello, converges a delta exactly as the full set
    it stands for (a container put runs, a slot removed goes), acknowledges each version, and a delta on a version it
    does not hold changes nothing and brings an `ack` asking for the full set."""
    fake_server.environment_id = world.environment_id
    web, db = world.desired("web", sleeper()), world.desired("db", sleeper(), service="db")
    start_agent(state_dir, DOCKER_HOST)
    _, hello = fake_server.expect(protocol.HELLO)
    assert hello.data["deltas"] is True
    fake_server.expect(protocol.SNAPSHOT)

    def send(data: dict[str, Any]) -> None:
        fake_server.send(protocol.Message(protocol.DESIRED, data).encode())

    def acked(version: int) -> None:
        fake_server.expect(protocol.ACK, where=lambda m: m.data.get("desired") == version and "resync" not in m.data)

    send({"containers": [web.to_dict()], "version": 1})
    acked(1)
    _wait_for(lambda: [s[1] for s in _state(world, web.slot.id)] == ["running"], "the web container to run")
    send({"put": [db.to_dict()], "remove": [], "base": 1, "version": 2})
    acked(2)
    _wait_for(lambda: [s[1] for s in _state(world, db.slot.id)] == ["running"], "the db container to run")
    assert [s[1] for s in _state(world, web.slot.id)] == ["running"]  # the delta kept what it did not name

    send({"put": [], "remove": [db.slot.id, web.slot.id], "base": 7, "version": 8})  # a gap: not applied
    fake_server.expect(protocol.ACK, where=lambda m: m.data.get("resync") is True and m.data.get("desired") == 2)
    time.sleep(1.0)
    assert [s[1] for s in _state(world, db.slot.id)] == ["running"]

    send({"put": [], "remove": [db.slot.id], "base": 2, "version": 3})
    acked(3)
    _wait_for(lambda: _state(world, db.slot.id) == [], "the db container to go")
    assert [s[1] for s in _state(world, web.slot.id)] == ["running"]
