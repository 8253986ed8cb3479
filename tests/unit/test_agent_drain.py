"""Drain before stop (agent/drain.py): which containers drain, how long a stop waits (out of the network state, a
settle time, the open requests), and that the wait is bounded."""

from __future__ import annotations

import dataclasses

from corral.agent.drain import Drainer, is_target, open_connections, target_services
from corral.model.lb import LbConfig, PortRule, lb_config_to_dict
from corral.model.network import ContainerRecord, HostNetwork, NetworkSettings, NetworkState, ServiceRecord

HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
LISTEN_8080 = "   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1\n"
IN_8080 = "   1: 0300A8C0:1F90 0200A8C0:C350 01 00000000:00000000 00:00000000 00000000     0        0 2\n"
OUT_5432 = "   2: 0300A8C0:C351 0400A8C0:1538 01 00000000:00000000 00:00000000 00000000     0        0 3\n"


def _state(*containers: ContainerRecord, rules: tuple[PortRule, ...] = (PortRule(80, 8080, "app"),)) -> NetworkState:
    return NetworkState(
        environment_id="e1",
        environment="default",
        settings=NetworkSettings(),
        host=HostNetwork("h1", "one", "198.18.0.11", "10.42.1.0/24"),
        containers=containers,
        services=(
            ServiceRecord("shop", "lb", 1, lb=lb_config_to_dict(LbConfig(rules))),
            ServiceRecord("shop", "app", 2),
            ServiceRecord("shop", "db", 1, labels={"tier": "data"}),
            ServiceRecord("shop", "web", 1, virtual={"kind": "alias", "targets": ["db"]}),
        ),
    )


def _record(name: str, service: str, *, running: bool = True) -> ContainerRecord:
    return ContainerRecord(f"id-{name}", name, "shop", service, 1, "h1", "10.42.1.3", running, True)


def test_targets_are_the_routed_services_by_name_selector_and_alias() -> None:
    assert target_services(_state()) == {("shop", "app")}
    assert target_services(_state(rules=(PortRule(80, 5432, selector="tier=data"),))) == {("shop", "db")}
    assert target_services(_state(rules=(PortRule(80, 80, "web"),))) == {("shop", "web"), ("shop", "db")}
    state = _state(_record("shop-app-1", "app"), _record("shop-db-1", "db"))
    assert is_target(state, "shop-app-1")
    assert is_target(state, "shop-app-3-u1")  # not (or no longer) in the state: its name tells its service
    assert not is_target(state, "shop-db-1")
    assert not is_target(dataclasses.replace(state, services=state.services[1:]), "shop-app-1")  # no LB at all


def test_open_connections_counts_only_established_ones_on_a_listening_port() -> None:
    assert open_connections([HEADER + LISTEN_8080 + IN_8080 + OUT_5432]) == 1
    assert open_connections([HEADER + LISTEN_8080 + OUT_5432, HEADER]) == 0
    assert open_connections([]) == 0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_target_waits_until_out_of_the_network_state_then_settles_then_its_requests_finish() -> None:
    clock = Clock()
    states = [_state(_record("shop-app-1", "app"))] * 4 + [_state()]  # the network message comes after 3 polls
    reads = iter(states + [states[-1]] * 100)
    tables = iter([[HEADER + LISTEN_8080 + IN_8080]] * 4 + [[HEADER + LISTEN_8080]] * 100)
    drainer = Drainer(
        lambda: next(reads),
        lambda _: 42,
        settle_seconds=1.0,
        clock=clock,
        sleep=clock.sleep,
        tables=lambda _: next(tables),
    )
    waited = drainer.drain("d1", "shop-app-1")
    # 3 polls while still offered, the settle second, 4 samples while a request was open, then 3 quiet ones
    assert clock.slept == [0.2, 0.2, 0.2, 1.0] + [0.2] * 6
    assert waited == clock.now


def test_one_quiet_sample_between_requests_does_not_end_the_drain() -> None:
    clock = Clock()
    state = _state()  # already out of the network state
    busy, idle = [HEADER + LISTEN_8080 + IN_8080], [HEADER + LISTEN_8080]
    samples = iter([busy, idle, busy, idle, idle, busy] + [idle] * 100)  # an HAProxy worker still sending requests
    drainer = Drainer(
        lambda: state, lambda _: 42, settle_seconds=0.0, clock=clock, sleep=clock.sleep, tables=lambda _: next(samples)
    )
    drainer.drain("d1", "shop-app-1")
    assert clock.slept == [0.0] + [0.2] * 8  # ends on the third idle sample after the last busy one


def test_the_wait_is_bounded_and_others_do_not_wait() -> None:
    clock = Clock()
    state = _state(_record("shop-app-1", "app"), _record("shop-db-1", "db"))
    busy = [HEADER + LISTEN_8080 + IN_8080]
    drainer = Drainer(
        lambda: state, lambda _: 42, bound_seconds=5.0, clock=clock, sleep=clock.sleep, tables=lambda _: busy
    )
    assert 5.0 <= drainer.drain("d1", "shop-app-1") < 5.3  # never left the state, never idle: the bound ends it
    clock.slept.clear()
    assert drainer.drain("d2", "shop-db-1") == 0.0  # no LB routes to db
    stopped = Drainer(lambda: state, lambda _: 0, clock=clock, sleep=clock.sleep, tables=lambda _: busy)
    assert stopped.drain("d1", "shop-app-1") == 0.0  # not running: nothing to drain
    assert clock.slept == []
