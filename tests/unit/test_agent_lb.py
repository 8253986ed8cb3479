"""What each LB container on a host is given (agent/lb.py `wanted_configs`, network/haproxy_config.py `render`):
only running, healthy targets with an address; hostname and path routing in rule order; one config per LB
container of this host; the same inputs render the same bytes. And when HAProxy's master takes a reload signal
(`caught_signals`, `reload_ready`: a real process here; tests/integration/test_lb_reload.py with HAProxy)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.agent.lb import caught_signals, reload_ready, wanted_configs
from corral.model.lb import LbConfig, LbProtocol, PortRule, Stickiness, lb_config_to_dict
from corral.model.network import ContainerRecord, HostNetwork, NetworkSettings, NetworkState, ServiceRecord
from corral.network.haproxy_config import Target, backend_name, render

RULES = LbConfig(
    (
        PortRule(80, 8080, "a", hostname="a.example"),
        PortRule(80, 8080, "b", hostname="b.example", path="/api"),
        PortRule(80, 8080, "a"),
        PortRule(5432, 5432, "other/db", LbProtocol.TCP),
    ),
    stickiness=Stickiness(cookie="SRV"),
)


def _container(name: str, service: str, host: str, ip: str, *, running: bool = True, healthy: bool = True,
               stack: str = "shop") -> ContainerRecord:  # fmt: skip
    return ContainerRecord(f"id-{name}", name, stack, service, 1, host, ip, running, healthy)


def _state(containers: list[ContainerRecord]) -> NetworkState:
    return NetworkState(
        environment_id="e1",
        environment="default",
        settings=NetworkSettings(),
        host=HostNetwork("h1", "one", "198.18.0.11", "10.42.1.0/24"),
        containers=tuple(containers),
        services=(
            ServiceRecord("shop", "lb", 1, lb=lb_config_to_dict(RULES)),
            ServiceRecord("shop", "a", 2),
            ServiceRecord("shop", "b", 1),
            ServiceRecord("other", "db", 1),
        ),
    )


def test_each_lb_container_here_gets_its_rules_and_only_healthy_running_targets() -> None:
    state = _state(
        [
            _container("shop-lb-1", "lb", "h1", "10.42.1.2"),
            _container("shop-lb-2", "lb", "h2", "10.42.2.2"),  # another host's LB: not ours to configure
            _container("shop-a-1", "a", "h2", "10.42.2.3"),
            _container("shop-a-2", "a", "h1", "10.42.1.4", healthy=False),
            _container("shop-b-1", "b", "h1", "10.42.1.5"),
            _container("shop-b-2", "b", "h1", "10.42.1.6", running=False),
            _container("other-db-1", "db", "h2", "10.42.2.7", stack="other"),
        ]
    )
    wanted = wanted_configs(state)
    assert list(wanted) == ["shop-lb-1"]
    text = wanted["shop-lb-1"].config
    servers = [line.split()[1:3] for line in text.splitlines() if line.strip().startswith("server ")]
    assert servers == [["shop-a-1", "10.42.2.3:8080"], ["shop-b-1", "10.42.1.5:8080"], ["other-db-1", "10.42.2.7:5432"]]
    frontend = text.split("frontend port_80\n", 1)[1].split("\n\n", 1)[0]
    assert frontend.index("use_backend a_8080_http if host_0") < frontend.index(
        "use_backend b_8080_http if host_1 path_1"
    )
    assert "acl host_1 req.hdr(host),field(1,:),lower -m str b.example" in frontend
    assert "acl path_1 path_beg /api" in frontend
    assert "default_backend a_8080_http" in frontend
    assert "frontend port_5432\n    bind *:5432\n    mode tcp" in text
    assert "cookie SRV insert" in text and "cookie shop-a-1" in text
    assert "bind *:42" in text  # the LB's own health check


def test_no_lb_no_config_and_a_stopped_lb_gets_none() -> None:
    assert wanted_configs(_state([_container("shop-a-1", "a", "h1", "10.42.1.3")])) == {}
    assert wanted_configs(_state([_container("shop-lb-1", "lb", "h1", "10.42.1.2", running=False)])) == {}


def test_wildcard_hostnames() -> None:
    config = LbConfig((PortRule(80, 80, "a", hostname="*.a.com"), PortRule(80, 80, "b", hostname="b.com.*")))
    text = render(config, {})
    assert "-m end .a.com" in text and "-m beg b.com." in text
    assert backend_name(PortRule(80, 80, "x", backend_name="my backend")) == "my_backend"


_targets = st.lists(
    st.builds(Target, st.text("abc-", min_size=1, max_size=5), st.from_regex(r"10\.42\.[0-9]\.[1-9]", fullmatch=True)),
    max_size=5,
    unique_by=lambda t: t.name,
)


@given(_targets)
def test_rendering_ignores_target_order(targets: list[Target]) -> None:
    config = LbConfig((PortRule(80, 80, "a"),))
    assert render(config, {"a": targets}) == render(config, {"a": list(reversed(targets))})
    assert sum(line.strip().startswith("server ") for line in render(config, {"a": targets}).splitlines()) == len(
        targets
    )


# /proc/PID/status of HAProxy 2.6's master while it starts (SIGUSR2 ignored) and once it runs (SIGUSR2 handled)
STARTING = "Name:\thaproxy\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000001800\nSigCgt:\t0000000100702205\n"
RUNNING = "Name:\thaproxy\nSigBlk:\t0000000000000000\nSigIgn:\t0000000004001004\nSigCgt:\t0000000100716a03\n"


def test_caught_signals_reads_the_handled_mask() -> None:
    assert signal.SIGUSR2 not in caught_signals(STARTING)
    assert signal.SIGUSR2 in caught_signals(RUNNING)
    assert {signal.SIGHUP, signal.SIGINT, signal.SIGTERM} <= caught_signals(RUNNING)
    assert caught_signals("Name:\tx\n") == frozenset()


# A process named like HAProxy's master that ignores SIGUSR2 until it reads a line, then handles it.
_MASTER = """
import ctypes, signal, sys
ctypes.CDLL(None).prctl(15, b"haproxy", 0, 0, 0)  # PR_SET_NAME: /proc/PID/comm
signal.signal(signal.SIGUSR2, signal.SIG_IGN)
print("ignoring", flush=True)
sys.stdin.readline()
signal.signal(signal.SIGUSR2, lambda *_: None)
print("handling", flush=True)
sys.stdin.readline()
"""
# An init (docker-init with `init: true`) whose child is the master.
_INIT = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {_MASTER!r}])"


@pytest.fixture(params=["master", "init"])
def master(request: pytest.FixtureRequest) -> Iterator[subprocess.Popen[str]]:
    code = _MASTER if request.param == "master" else _INIT
    process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        yield process
    finally:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.close()  # an init's child (the master) reads end of file and ends too
        process.stdout.close()
        process.kill()
        process.wait()


def test_a_master_ignoring_the_reload_signal_is_not_ready_until_it_handles_it(master: subprocess.Popen[str]) -> None:
    assert master.stdin is not None and master.stdout is not None
    assert master.stdout.readline().strip() == "ignoring"
    assert reload_ready(master.pid) is False
    master.stdin.write("\n")
    master.stdin.flush()
    assert master.stdout.readline().strip() == "handling"
    deadline = time.monotonic() + 5
    while not reload_ready(master.pid) and time.monotonic() < deadline:  # the line is printed after the handler
        time.sleep(0.01)
    assert reload_ready(master.pid) is True


def test_a_process_that_is_not_haproxy_is_not_ready_and_one_out_of_sight_is_unknown() -> None:
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as other:
        try:
            assert reload_ready(other.pid) is False
        finally:
            other.kill()
    assert reload_ready(2**22 + 1) is None  # above pid_max's ceiling: no such process


def test_a_process_outside_the_container_is_unknown_not_a_master_that_never_gets_ready(
    master: subprocess.Popen[str],
) -> None:
    """An agent in its own pid namespace may see another process at the container's host pid: not in the container's
    cgroup, so the agent signals as it would without /proc instead of waiting for it forever."""
    assert master.stdout is not None
    assert master.stdout.readline().strip() == "ignoring"
    assert reload_ready(master.pid, "f6b70aa4b3dd" * 5) is None
