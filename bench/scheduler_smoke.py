"""Smoke benchmark (not a test): place 1,000 slots of one service on 5,000 hosts and print the seconds it takes.

Run: .venv/bin/python bench/scheduler_smoke.py
Placement must stay well under a second (batched scoring with a heap, never N x hosts x slots).
"""

from __future__ import annotations

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
    service: ServiceSpec, slots: Sequence[SlotView], hosts: Sequence[HostView], others: Sequence[SlotView]
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


if __name__ == "__main__":
    main()
