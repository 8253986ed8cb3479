"""The network pass keeps each container's overlay record (and its dict) while the slot, service and report it was
made of are the same objects, and remakes it when any of them is another: after any sequence of changes, its
records are the ones a pass without that memory makes, and every dict it sends is its record's."""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from corral.model.entities import Environment, Host, HostState, ObservedContainer, Orchestration
from corral.model.stack import ContainerSlot, LaunchConfig, Service, ServiceSpec, SlotRecord
from corral.server.control.network_pass import NetworkPass
from corral.server.views.environment_state import EnvironmentState, observed_of

ENV = Environment("env", "default", Orchestration.CATTLE, "", 0.0)
HOST = Host("h1", "env", "h1", HostState.ACTIVE, "", "custom", "198.18.0.1")


class _Reads:
    """The environment's services, slots and reports, as plain lists."""

    def __init__(self) -> None:
        self.services: list[Service] = []
        self.slots: list[SlotRecord] = []
        self.reports: list[tuple[str, ObservedContainer]] = []

    def state(self) -> EnvironmentState:
        """What `_environment_parts` reads (the views' state of the environment)."""
        observed = observed_of(self.slots, self.reports)
        return EnvironmentState({HOST.id: HOST}, self.services, self.slots, observed)


def _pass() -> NetworkPass:
    return NetworkPass(store=None, stacks=None, hub=None, reads=None)  # type: ignore[arg-type]


def _service(name: str, links: tuple[str, ...]) -> Service:
    spec = ServiceSpec(name, LaunchConfig(image="corral/busybox:latest", links=links))
    return Service(f"s-{name}", "st", "env", "shop", name, spec, 1, 0)


def _slot(index: int, service: str, *, ip: str = "", running: bool = True) -> SlotRecord:
    slot = ContainerSlot(f"c{index}", "env", "shop", service, index, "h1", "hash")
    return SlotRecord(slot, "st", f"s-{service}", running=running, ip=ip)


def _report(index: int, state: str, health: str) -> tuple[str, ObservedContainer]:
    labels = {"io.corral.container": f"c{index}"}
    return "h1", ObservedContainer(f"d{index}", f"shop-web-{index}", "x", state, labels=labels, health=health)


changes = st.one_of(
    st.tuples(st.just("ip"), st.integers(0, 3), st.sampled_from(["", "10.32.0.5", "10.32.0.6"])),
    st.tuples(st.just("running"), st.integers(0, 3), st.booleans()),
    st.tuples(st.just("report"), st.integers(0, 3), st.sampled_from(["running", "exited", None])),
    st.tuples(st.just("health"), st.integers(0, 3), st.sampled_from(["", "healthy", "unhealthy"])),
    st.tuples(st.just("links"), st.just(0), st.sampled_from([(), ("db",), ("db:database",)])),
    st.tuples(st.just("remove"), st.integers(0, 3), st.none()),
    st.tuples(st.just("add"), st.integers(0, 3), st.none()),
    st.tuples(st.just("same"), st.just(0), st.none()),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(changes, min_size=1, max_size=15))
def test_kept_records_are_the_records_a_fresh_pass_makes(steps: list[tuple[str, int, Any]]) -> None:
    reads = _Reads()
    reads.services = [_service("web", ())]
    reads.slots = [_slot(i, "web") for i in range(4)]
    reports: dict[int, tuple[str, ObservedContainer]] = {i: _report(i, "running", "") for i in range(4)}
    remembering = _pass()
    for what, index, value in steps:
        slots = {r.slot.index: r for r in reads.slots}
        if what == "ip" and index in slots:
            slots[index] = dataclasses.replace(slots[index], ip=value)
        elif what == "running" and index in slots:
            slots[index] = dataclasses.replace(slots[index], running=value)
        elif what == "report":
            if value is None:
                reports.pop(index, None)
            else:
                reports[index] = _report(index, value, "")
        elif what == "health" and index in reports:
            reports[index] = _report(index, reports[index][1].state, value)
        elif what == "links":
            reads.services = [_service("web", value)]
        elif what == "remove":
            slots.pop(index, None)
        elif what == "add" and index not in slots:
            slots[index] = _slot(index, "web")
        reads.slots = [slots[i] for i in sorted(slots)]
        reads.reports = [reports[i] for i in sorted(reports)]
        kept, _, _ = remembering._environment_parts(ENV, [HOST], reads.state())
        fresh, _, _ = _pass()._environment_parts(ENV, [HOST], reads.state())
        assert kept == fresh
        assert [remembering._container_dict(c) for c in kept] == [c.to_dict() for c in fresh]
