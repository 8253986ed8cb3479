"""Health checks of external services' IPs (issue 19 item 4): the pure filter that leaves unhealthy IPs out of what
DNS and the load balancers see (property-tested), what it means for them (fewer answers; none: NXDOMAIN and a
backend without servers), and the agent's prober driving it with the shared threshold logic."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from corral.agent.dns_records import NameTable, Outcome
from corral.agent.external_health import ExternalHealth, Key, checked_ips, healthy_view
from corral.agent.lb import wanted_configs
from corral.model.health import HEALTHY, HealthCheck
from corral.model.lb import LbConfig, PortRule, lb_config_to_dict
from corral.model.network import ContainerRecord, HostNetwork, NetworkSettings, NetworkState, ServiceRecord
from corral.model.virtual import Virtual

CHECK = HealthCheck(port=80, interval_ms=10, response_timeout_ms=100, healthy_threshold=2, unhealthy_threshold=2)
IPS = ("198.18.5.1", "198.18.5.2", "198.18.5.3")


def _state(ips: tuple[str, ...] = IPS[:2], check: HealthCheck | None = CHECK) -> NetworkState:
    lb = LbConfig((PortRule(80, 8080, "db"),))
    return NetworkState(
        environment_id="e1",
        environment="default",
        settings=NetworkSettings(),
        host=HostNetwork("h1", "one", "198.18.0.11", "10.42.0.0/24"),
        containers=(ContainerRecord("s-lb1", "web-lb-1", "web", "lb", 1, "h1", "10.42.0.9", True, True),),
        services=(
            ServiceRecord("web", "db", 0, virtual=Virtual("external", ips, health_check=check).to_dict()),
            ServiceRecord("web", "other", 0, virtual=Virtual("external", ips).to_dict()),
            ServiceRecord("web", "name", 0, virtual=Virtual("external", hostname="db.example.net").to_dict()),
            ServiceRecord("web", "lb", 1, lb=lb_config_to_dict(LbConfig(lb.port_rules))),
        ),
    )


def _servers(state: NetworkState) -> list[str]:
    text = wanted_configs(state)["web-lb-1"].config
    return sorted(line.split()[2] for line in text.splitlines() if line.strip().startswith("server "))


def test_checked_ips_are_those_of_external_services_with_a_port_check() -> None:
    assert checked_ips(_state()) == {("web", "db", IPS[0]): CHECK, ("web", "db", IPS[1]): CHECK}
    assert checked_ips(_state(check=HealthCheck(command=True))) == {}  # a command needs a container
    assert checked_ips(_state(check=None)) == {}


def test_an_unhealthy_ip_leaves_dns_and_the_lb_and_none_left_is_nxdomain_and_no_server() -> None:
    one_down = healthy_view(_state(), {("web", "db", IPS[1])})
    assert NameTable(one_down).resolve("db.web").addresses == (IPS[0],)
    assert _servers(one_down) == [f"{IPS[0]}:8080"]
    assert NameTable(one_down).resolve("other.web").addresses == IPS[:2]  # the same IP of an unchecked service stays
    all_down = healthy_view(_state(), {("web", "db", IPS[0]), ("web", "db", IPS[1])})
    assert NameTable(all_down).resolve("db.web").outcome is Outcome.NXDOMAIN  # a Corral name: never forwarded
    assert _servers(all_down) == []  # HAProxy answers 503
    assert healthy_view(_state(), set()) == _state()


_keys = st.sets(st.tuples(st.just("web"), st.sampled_from(["db", "other", "name", "lb"]), st.sampled_from(IPS)))


@given(ips=st.lists(st.sampled_from(IPS), unique=True).map(tuple), unhealthy=_keys)
def test_healthy_view_removes_exactly_the_unhealthy_ips_and_nothing_else(
    ips: tuple[str, ...], unhealthy: set[Key]
) -> None:
    state = _state(ips)
    view = healthy_view(state, unhealthy)
    assert view.containers == state.containers and view.host == state.host and view.peers == state.peers
    assert [(s.stack, s.name) for s in view.services] == [(s.stack, s.name) for s in state.services]
    for before, after in zip(state.services, view.services, strict=True):
        was, now = Virtual.from_dict(before.virtual), Virtual.from_dict(after.virtual)
        if was is None or now is None:
            assert after == before
            continue
        assert now.external_ips == tuple(
            ip for ip in was.external_ips if (before.stack, before.name, ip) not in unhealthy
        )
        assert dict(now.to_dict(), external_ips=[]) == dict(was.to_dict(), external_ips=[])  # the rest unchanged
    assert healthy_view(view, unhealthy) == view  # idempotent
    assert healthy_view(state, set()) == state


class _Recorder:
    def __init__(self) -> None:
        self.states: list[NetworkState] = []

    def update(self, state: NetworkState) -> None:
        self.states.append(state)

    def db_ips(self) -> tuple[str, ...]:
        service = next(s for s in self.states[-1].services if s.name == "db")
        virtual = Virtual.from_dict(service.virtual)
        assert virtual is not None
        return virtual.external_ips


async def _until(what: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while not what():
            await asyncio.sleep(0.005)


def test_the_prober_drops_a_failing_ip_after_the_threshold_and_takes_it_back_when_it_answers() -> None:
    answers = {IPS[0]: True, IPS[1]: True}
    probed: list[tuple[str, int]] = []

    async def fake_probe(address: str, port: int, request_line: str, timeout: float) -> tuple[bool, str]:
        probed.append((address, port))
        return answers[address], "ok" if answers[address] else "refused"

    async def scenario() -> None:
        recorder = _Recorder()
        prober = ExternalHealth([recorder], probe_fn=fake_probe)
        prober.update(_state())
        assert recorder.db_ips() == IPS[:2]  # no verdict yet: healthy
        stop = asyncio.Event()
        task = asyncio.create_task(prober.run(stop))
        await _until(lambda: set(prober.statuses.values()) == {HEALTHY})
        answers[IPS[1]] = False  # failing while initializing would wait for the initializing timeout
        await _until(lambda: recorder.db_ips() == IPS[:1])
        assert prober.unhealthy == {("web", "db", IPS[1])}
        answers[IPS[1]] = True
        await _until(lambda: recorder.db_ips() == IPS[:2])
        assert prober.unhealthy == frozenset()
        prober.update(_state(check=None))  # the check removed: nothing is probed, every IP answers
        assert recorder.db_ips() == IPS[:2]
        count = len(probed)
        await asyncio.sleep(0.05)
        assert len(probed) <= count + 2  # at most the probes already under way
        stop.set()
        await task
        assert {address for address, _ in probed} == set(IPS[:2]) and {port for _, port in probed} == {80}

    asyncio.run(scenario())


def test_an_ip_that_never_answers_turns_unhealthy_after_the_initializing_timeout() -> None:
    check = HealthCheck(port=80, interval_ms=10, response_timeout_ms=10, initializing_timeout_ms=50)

    async def refused(address: str, port: int, request_line: str, timeout: float) -> tuple[bool, str]:
        return address != IPS[1], "refused"

    async def scenario() -> None:
        recorder = _Recorder()
        prober = ExternalHealth([recorder], probe_fn=refused)
        prober.update(_state(check=check))
        stop = asyncio.Event()
        task = asyncio.create_task(prober.run(stop))
        await _until(lambda: recorder.db_ips() == IPS[:1])
        stop.set()
        await task

    asyncio.run(scenario())
