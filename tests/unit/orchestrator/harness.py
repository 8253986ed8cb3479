"""A side-effect-free harness for the reconciler (after Nomad's scheduler harness): build views, run, apply."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterable, Sequence

from corral.model.entities import HostState
from corral.model.stack import ContainerSlot, LaunchConfig, PortSpec, ServiceSpec
from corral.orchestrator.reconciling import HostView, Plan, SlotView, apply_plan, reconcile

ENV = "env1"
STACK = "app"
ACTIVE = HostState.ACTIVE
RECONNECTING = HostState.RECONNECTING
DISCONNECTED = HostState.DISCONNECTED


def launch(image: str = "nginx", ports: Iterable[int] = (), labels: dict[str, str] | None = None) -> LaunchConfig:
    return LaunchConfig(
        image=image,
        ports=tuple(PortSpec(container_port=p, host_port=p) for p in ports),
        labels=tuple(sorted((labels or {}).items())),
    )


def service(
    scale: int = 1,
    *,
    name: str = "web",
    image: str = "nginx",
    ports: Iterable[int] = (),
    depends_on: tuple[str, ...] = (),
    labels: dict[str, str] | None = None,
    mem: int | None = None,
    cpu: float | None = None,
) -> ServiceSpec:
    return ServiceSpec(
        name=name,
        launch=launch(image, ports, labels),
        scale=scale,
        depends_on=depends_on,
        mem_reservation_bytes=mem,
        cpu_reservation=cpu,
    )


def hosts(*states: HostState) -> list[HostView]:
    return [
        HostView(id=f"h{i:02d}", name=f"host{i:02d}", state=state, arch="x86_64") for i, state in enumerate(states, 1)
    ]


def labelled_hosts(*labels: dict[str, str], **fields: object) -> list[HostView]:
    """Active hosts h01.. with the given labels (and other HostView fields, the same for all)."""
    return [
        HostView(id=f"h{i:02d}", name=f"host{i:02d}", state=ACTIVE, arch="x86_64", labels=lab, **fields)  # type: ignore[arg-type]
        for i, lab in enumerate(labels, 1)
    ]


def active_hosts(count: int) -> list[HostView]:
    return hosts(*[ACTIVE] * count)


def ids(prefix: str = "new") -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"{prefix}{next(counter)}"


def slot(
    index: int, host_id: str, spec: ServiceSpec, *, id: str | None = None, config_hash: str | None = None
) -> ContainerSlot:
    return ContainerSlot(
        id=id or f"s{index}",
        environment_id=ENV,
        stack=STACK,
        service=spec.name,
        index=index,
        host_id=host_id,
        config_hash=config_hash if config_hash is not None else spec.launch.config_hash(),
    )


def view(
    s: ContainerSlot,
    launch_of: dict[str, LaunchConfig],
    *,
    observed_state: str | None = None,
    observed_hash: str | None = None,
) -> SlotView:
    config = launch_of.get(s.config_hash)
    ports = config.published_ports() if config is not None else frozenset()
    labels = config.labels if config is not None else ()
    return SlotView(s, observed_state=observed_state, observed_hash=observed_hash, published_ports=ports, labels=labels)


def running(s: ContainerSlot, launch_of: dict[str, LaunchConfig]) -> SlotView:
    return view(s, launch_of, observed_state="running", observed_hash=s.config_hash)


def other_slots(spec: ServiceSpec, placement: Sequence[str]) -> list[SlotView]:
    """Slots of another service `spec`, one per host id in `placement`, as running views (with its reservations)."""
    launch_of = {spec.launch.config_hash(): spec.launch}
    return [
        dataclasses.replace(
            running(slot(i, host_id, spec, id=f"{spec.name}{i}"), launch_of),
            mem_reservation_bytes=spec.mem_reservation_bytes or 0,
            cpu_reservation=spec.cpu_reservation or 0.0,
        )
        for i, host_id in enumerate(placement, 1)
    ]


def run(
    spec: ServiceSpec,
    slots: Sequence[SlotView],
    host_views: Sequence[HostView],
    *,
    others: Sequence[SlotView] = (),
    ready: bool = True,
    new_id: Callable[[], str] | None = None,
    image_archs: frozenset[str] | None = None,
    blocked: dict[int, str] | None = None,
) -> Plan:
    return reconcile(
        spec,
        stack=STACK,
        environment_id=ENV,
        slots=slots,
        hosts=host_views,
        other_slots=others,
        dependencies_ready=ready,
        new_id=new_id or ids(),
        now=1000.0,
        image_archs=image_archs,
        blocked=blocked,
    )


def leftovers_of(slots: Sequence[SlotView], plan: Plan, host_views: Sequence[HostView]) -> dict[int, str]:
    """The indexes blocked after `plan` (occupancy.py): its removed slots on hosts that still answer may still run."""
    states = {h.id: h.state for h in host_views}
    gone = {*plan.remove, *(old for old, _ in plan.replace)}
    return {
        v.slot.index: f"waiting for {v.slot.name} to stop"
        for v in slots
        if v.slot.id in gone and states.get(v.slot.host_id) in (ACTIVE, RECONNECTING)
    }


def after(slots: Sequence[SlotView], plan: Plan, launch_of: dict[str, LaunchConfig]) -> list[SlotView]:
    """The views after applying `plan`: kept slots keep what the agent reported, new and updated ones have none."""
    before = {v.slot.id: v for v in slots}
    result = []
    for s in apply_plan(slots, plan):
        old = before.get(s.id)
        result.append(old if old is not None and old.slot == s else view(s, launch_of))
    return result


def per_host(slots: Iterable[ContainerSlot | SlotView]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in slots:
        s = item.slot if isinstance(item, SlotView) else item
        counts[s.host_id] = counts.get(s.host_id, 0) + 1
    return counts
