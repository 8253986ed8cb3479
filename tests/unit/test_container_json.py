"""server/views/stack_views.py slot_container_json: a list body's container, encoded once and reused, is always what
`slot_container_view` says now, whatever changed between two lists (the slot, its report, its host, its service,
the clock)."""

from __future__ import annotations

import dataclasses
import json

from hypothesis import example, given, settings
from hypothesis import strategies as st

from corral.model.entities import Host, HostState, ObservedContainer
from corral.model.stack import ContainerSlot, LaunchConfig, PortSpec, Service, ServiceSpec, SlotRecord
from corral.server.views.environment_state import EnvironmentState
from corral.server.views.paging import dumps
from corral.server.views.stack_views import STARTING_SECONDS, slot_container_json, slot_container_view

NOW = 1_000_000.0


def _host(address: str) -> Host:
    return Host("h1", "env", "h1", HostState.ACTIVE, "", "custom", address)


def _service(ports: tuple[PortSpec, ...]) -> Service:
    launch = LaunchConfig(image="corral/busybox:latest", ports=ports)
    return Service("svc", "st", "env", "shop", "web", ServiceSpec("web", launch), 1, 0)


def _slot(slot_id: str) -> SlotRecord:
    return SlotRecord(ContainerSlot(slot_id, "env", "shop", "web", 1, "h1", "hash1"), "st", "svc", created_at=NOW)


def _observed(slot_id: str, state: str, exit_code: int | None) -> ObservedContainer:
    labels = {"io.corral.container": slot_id, "io.corral.config-hash": "hash1"}
    return ObservedContainer(
        f"d-{slot_id}", "shop-web-1", "corral/busybox:latest", state, exit_code=exit_code, labels=labels
    )


# one change between two lists: which part, and to what
changes = st.one_of(
    st.tuples(st.just("running"), st.booleans()),
    st.tuples(st.just("asked"), st.floats(NOW - 30, NOW + 30)),
    st.tuples(st.just("reason"), st.sampled_from(["", "image not found"])),
    st.tuples(st.just("reported"), st.sampled_from([None, "running", "exited", "created", "restarting"])),
    st.tuples(st.just("address"), st.sampled_from(["198.18.0.1", "198.18.0.2"])),
    st.tuples(st.just("ports"), st.sampled_from([(), (PortSpec(80),), (PortSpec(80, 8080),)])),
    st.tuples(st.just("host_ports"), st.sampled_from([(), ((80, "tcp", 50001),)])),
    st.tuples(st.just("clock"), st.floats(0, 2 * STARTING_SECONDS)),
    st.tuples(st.just("same"), st.none()),  # a new snapshot in which this container did not change
)


@settings(max_examples=300, deadline=None)
@example([("reported", "exited"), ("asked", NOW - 1), ("clock", STARTING_SECONDS)], 1)  # "starting" runs out
@given(st.lists(changes, min_size=1, max_size=12), st.integers(0, 10**9))
def test_the_encoded_view_is_the_view_after_any_sequence_of_changes(steps: list[tuple[str, object]], seed: int) -> None:
    slot_id = f"slot-{seed}"  # the cache is the process's: each example its own slot
    record, host, service = _slot(slot_id), _host("198.18.0.1"), _service(())
    observed: ObservedContainer | None = None
    now = NOW
    for what, value in steps:
        if what == "running":
            record = dataclasses.replace(record, running=bool(value))
        elif what == "asked":
            record = dataclasses.replace(record, start_requested_at=float(value))  # type: ignore[arg-type]
        elif what == "reason":
            record = dataclasses.replace(record, reason=str(value))
        elif what == "reported":
            observed = None if value is None else _observed(slot_id, str(value), 1 if value == "exited" else None)
        elif what == "address":
            host = _host(str(value))
        elif what == "ports":
            service = _service(value)  # type: ignore[arg-type]
        elif what == "host_ports":
            record = dataclasses.replace(record, host_ports=value)  # type: ignore[arg-type]
        elif what == "clock":
            now += float(value)  # type: ignore[arg-type]
        state = EnvironmentState(
            {host.id: host}, [service], [record], {slot_id: observed} if observed else {}, now=now, deadline=120.0
        )
        encoded = json.loads(dumps([slot_container_json(record, state)]))[0]
        assert encoded == json.loads(dumps(slot_container_view(record, state)))
