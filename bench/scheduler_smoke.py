"""Smoke benchmark (not a test): place 1,000 slots of one service on 5,000 hosts and print the seconds it takes;
then the same under scheduling rules (host_label affinity, soft spread idiom, memory reservations, image arch) and a
global service on every matching host.

Run: .venv/bin/python bench/scheduler_smoke.py
Placement must stay well under a second (batched scoring with a heap, never N x hosts x slots).
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Sequence

from corral.model.entities import HostState
from corral.model.stack import ContainerSlot, LaunchConfig, PortSpec, ServiceSpec
from corral.orchestrator.reconciling import HostView, Plan, SlotView, apply_plan, reconcile

HOSTS = 5_000
SCALE = 1_000
OTHERS = 20_000  # slots of other services already spread over the hosts, a third of them publishing 6379/tcp


def timed(
    service: ServiceSpec,
    slots: Sequence[SlotView],
    hosts: Sequence[HostView],
    others: Sequence[SlotView],
    image_archs: frozenset[str] | None = None,
) -> tuple[float, Plan]:
    counter = itertools.count()
    start = time.perf_counter()
    plan = reconcile(
        service,
        stack="app",
        environment_id="env",
        slots=slots,
        hosts=hosts,
        other_slots=others,
        dependencies_ready=True,
        new_id=lambda: f"n{next(counter)}",
        now=0.0,
        image_archs=image_archs,
    )
    return time.perf_counter() - start, plan


def main() -> None:
    hosts = [HostView(id=f"h{i}", name=f"host{i:05d}", state=HostState.ACTIVE, arch="x86_64") for i in range(HOSTS)]
    redis_ports = LaunchConfig(image="redis", ports=(PortSpec(6379, 6379),)).published_ports()
    others = [
        SlotView(
            ContainerSlot(f"o{i}", "env", "app", f"svc{i % 40}", i // 40 + 1, f"h{(i * 7) % HOSTS}", "x"),
            observed_state="running",
            observed_hash="x",
            published_ports=redis_ports if i % 3 == 0 else frozenset(),
        )
        for i in range(OTHERS)
    ]
    for label, launch in (
        ("no ports", LaunchConfig(image="nginx")),
        ("port 80", LaunchConfig(image="nginx", ports=(PortSpec(80, 80),))),
    ):
        service = ServiceSpec(name="web", launch=launch, scale=SCALE)
        seconds, plan = timed(service, [], hosts, others)
        assert len(plan.place) == SCALE
        print(f"{label}: placed {SCALE} slots on {HOSTS} hosts ({OTHERS} other slots) in {seconds:.3f} s")
        placed = [SlotView(s, published_ports=launch.published_ports()) for s in apply_plan([], plan)]
        seconds, again = timed(service, placed, hosts, others)
        print(f"{label}: reconciled the {SCALE} placed slots again in {seconds:.3f} s (empty plan: {again.empty})")
    constrained(hosts, others)


def constrained(plain: Sequence[HostView], others: Sequence[SlotView]) -> None:
    """Hosts in 3 zones, 2 archs, 4 sizes (24 host classes); others reserve 128 MiB each."""
    zones, archs, sizes = ("eu", "us", "ap"), ("x86_64", "aarch64"), (4, 8, 16, 32)
    hosts = [
        dataclasses.replace(
            h,
            labels={"zone": zones[i % 3], "disk": "ssd"},
            arch=archs[(i // 3) % 2],
            memory_bytes=sizes[(i // 6) % 4] * 2**30,
            cpus=float(sizes[(i // 6) % 4] // 2),
        )
        for i, h in enumerate(plain)
    ]
    reserving = [dataclasses.replace(o, mem_reservation_bytes=128 * 2**20) for o in others]
    affinity = "io.rancher.scheduler.affinity:"
    labels = {
        affinity + "host_label": "zone=eu,disk=ssd",
        affinity + "container_label_soft_ne": "io.rancher.stack_service.name=$${stack_name}/$${service_name}",
    }
    launch = LaunchConfig(image="nginx", labels=tuple(sorted(labels.items())))
    service = ServiceSpec(name="web", launch=launch, scale=SCALE, mem_reservation_bytes=512 * 2**20)
    seconds, plan = timed(service, [], hosts, reserving, frozenset({"amd64"}))
    print(
        f"constrained: placed {len(plan.place)} of {SCALE} slots on {HOSTS} hosts (zone=eu, amd64, soft spread, "
        f"512 MiB reserved; {len(plan.unplaced)} pending) in {seconds:.3f} s"
    )
    placed = [SlotView(s, labels=launch.labels) for s in apply_plan([], plan)]
    seconds, again = timed(service, placed, hosts, reserving, frozenset({"amd64"}))
    print(f"constrained: reconciled again in {seconds:.3f} s (empty plan: {again.empty})")
    everywhere = LaunchConfig(
        image="agent", labels=(("io.rancher.scheduler.global", "true"), (affinity + "host_label", "zone=eu"))
    )
    seconds, plan = timed(ServiceSpec(name="agent", launch=everywhere), [], hosts, reserving)
    print(f"global: placed {len(plan.place)} slots, one per zone=eu host, in {seconds:.3f} s")


if __name__ == "__main__":
    main()
