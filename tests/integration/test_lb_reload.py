"""A load balancer's configuration reaches HAProxy even when it arrives while HAProxy starts or reloads (agent/lb.py).

HAProxy's master ignores the reload signal (SIGUSR2) until it runs its loop, at its start and again after each
re-exec for a reload; a signal sent then was lost while the push counted as done, so the container kept its old
configuration for good (tests/integration/test_external_services.py saw an LB that never served port 81). Here real
corral/haproxy containers on the machine's engine are held starting (or reloading) for a few seconds by a Lua file
their configuration loads when the agent's load balancer component pushes a configuration that binds port 81;
rounds go on as the agent's would until the push is done, and HAProxy must then listen on 81.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Callable, Iterator, Mapping

import docker
import docker.errors
import pytest

from corral.agent.drain import listening_ports, read_tables
from corral.agent.lb import LoadBalancers, Wanted, reload_ready, wanted_configs
from corral.model.lb import LbConfig, PortRule, lb_config_to_dict
from corral.model.network import ContainerRecord, HostNetwork, NetworkSettings, NetworkState, ServiceRecord
from corral.runtime.containers import container_pid
from corral.runtime.docker_engine import DockerEngine
from corral.runtime.files import put_file
from tests.integration.conftest import ROOT_DOCKER_HOST, skip_or_fail
from tests.integration.servers import wait_until

pytestmark = pytest.mark.integration

IMAGE = "corral/haproxy:latest"
CONFIG_DIR = "/usr/local/etc/haproxy"
START_SECONDS = 4  # how long the first configuration keeps HAProxy's master starting
SLOW_START = f"""\
global
    lua-load {CONFIG_DIR}/slow.lua
defaults
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend health
    bind *:42
    mode http
    monitor-uri /
"""


def _state(lb_container: str) -> NetworkState:
    """This host runs `lb_container`, of an LB sending port 81 to web's one container."""
    rules = LbConfig((PortRule(81, 8080, "web"),))
    return NetworkState(
        environment_id="e1",
        environment="default",
        settings=NetworkSettings(),
        host=HostNetwork("h1", "one", "198.18.0.11", "10.42.1.0/24"),
        containers=(
            ContainerRecord("id-lb", lb_container, "lbt", "lb", 1, "h1", "10.42.1.2", True, True),
            ContainerRecord("id-web", "lbt-web-1", "lbt", "web", 1, "h1", "10.42.1.3", True, True),
        ),
        services=(ServiceRecord("lbt", "lb", 1, lb=lb_config_to_dict(rules)), ServiceRecord("lbt", "web", 1)),
    )


Start = Callable[[str | None], str]


@pytest.fixture
def start_haproxy(prerequisites: None, root_engine: DockerEngine) -> Iterator[Start]:
    """Starts corral/haproxy containers (no network) with a given haproxy.cfg (None: the image's) and slow.lua,
    which keeps HAProxy's master busy for START_SECONDS when a configuration loads it; their names."""
    client = docker.DockerClient(base_url=ROOT_DOCKER_HOST, version="auto")
    try:
        client.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        client.close()
        skip_or_fail(f"image {IMAGE} is missing (scripts/images.sh builds it)")
    engine = DockerEngine(ROOT_DOCKER_HOST)
    run = f"corral-test-lb-reload-{secrets.token_hex(3)}"
    started: list[str] = []

    def start(config: str | None) -> str:
        name = f"{run}-{len(started)}"
        started.append(name)
        container = client.containers.create(IMAGE, name=name, network_mode="none", labels={"io.corral.test-run": run})
        files = {"slow.lua": f'os.execute("sleep {START_SECONDS}")\n'}
        if config is not None:
            files["haproxy.cfg"] = config
        for file_name, text in files.items():
            put_file(engine, name, f"{CONFIG_DIR}/{file_name}", text.encode())
        container.start()
        return name

    try:
        yield start
    finally:
        for row in client.api.containers(all=True, filters={"label": f"io.corral.test-run={run}"}):
            with contextlib.suppress(docker.errors.NotFound):
                client.api.remove_container(row["Id"], force=True)
        engine.close()
        client.close()


def _push_until_done(balancers: LoadBalancers, wanted: Mapping[str, Wanted], name: str) -> None:
    deadline = time.monotonic() + 60
    while balancers.push(wanted) != [name]:  # the agent's next round
        assert time.monotonic() < deadline, "the configuration was never pushed"
        time.sleep(1)


def _wait_listening(balancers: LoadBalancers, name: str, ports: set[int], absent: frozenset[int] = frozenset()) -> None:
    pid = container_pid(balancers.engine, name)
    listening: set[int] = set()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (ports <= listening and not absent & listening):
        time.sleep(0.2)
        listening = listening_ports(read_tables(pid))
    assert ports <= listening and not absent & listening, f"HAProxy kept an old configuration ({sorted(listening)})"


def test_a_configuration_pushed_while_haproxy_starts_is_loaded(start_haproxy: Start) -> None:
    name = start_haproxy(SLOW_START)
    wanted = wanted_configs(_state(name))
    assert "bind *:81" in wanted[name].config
    balancers = LoadBalancers(DockerEngine(ROOT_DOCKER_HOST))
    try:
        _push_until_done(balancers, wanted, name)
        _wait_listening(balancers, name, {42, 81})
        assert balancers.push(wanted) == []  # done: the next round leaves it alone
    finally:
        balancers.close()


def test_a_configuration_pushed_while_haproxy_reloads_for_the_previous_one_is_loaded(start_haproxy: Start) -> None:
    name = start_haproxy(None)
    balancers = LoadBalancers(DockerEngine(ROOT_DOCKER_HOST))
    try:
        pid = container_pid(balancers.engine, name)
        assert wait_until("HAProxy runs", lambda: reload_ready(pid), 30)
        previous = {name: Wanted(SLOW_START + "frontend previous\n    bind *:82\n    mode http\n    monitor-uri /\n")}
        assert balancers.push(previous) == [name]
        wait_until("HAProxy's master re-executes for the reload", lambda: reload_ready(pid) is False, 10, 0.01)
        wanted = wanted_configs(_state(name))
        _push_until_done(balancers, wanted, name)
        _wait_listening(balancers, name, {42, 81}, absent=frozenset({82}))
    finally:
        balancers.close()
