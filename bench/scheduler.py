"""P1 (issue 8): the scheduler at scale. Place S services x T containers on N simulated hosts through the same pure
code the server runs (`orchestrator.reconciling.reconcile` with a shared `HostLoad`, as one orchestrator pass over an
environment), then reconcile every service again (the steady-state pass the server repeats every few seconds).

Why simulated hosts: placement is pure, so the figure measures the scheduler alone (one core), not Docker. Hosts come
in mixed classes (x86_64 / aarch64, zone and role labels, four sizes with memory and CPU capacity); services mix the
constraints Rancher catalogs use: host-label affinity, container_label_ne anti-affinity (spread one per host),
arch-specific images, published host ports (two services share each port: conflicts), memory and CPU reservations.

Run: .venv/bin/python bench/scheduler.py [--hosts 5000 --services 1000 --per-service 1000] [--json]
Target: 1,000 x 1,000 onto 5,000 hosts in under 60 s on one core (the figure is the process CPU time: the machine
may be shared; wall time is reported too). Peer: Nomad's C1M, about 3,750 placements/s
(1,000,000 containers on 5,000 hosts in under 5 minutes with 5 servers of 32 vCPUs).
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import sys
import time
from collections.abc import Callable

from corral.model.entities import HostState
from corral.model.stack import ContainerSlot, LaunchConfig, PortSpec, ServiceSpec
from corral.orchestrator.reconciling import HostView, SlotView, apply_plan, reconcile
from corral.orchestrator.rules import parse_rules
from corral.orchestrator.scheduling import HostLoad

TARGET_SECONDS = 60.0
NOMAD_PLACEMENTS_PER_SECOND = 1_000_000 / 300  # C1M: 5,000 hosts, 5 servers x 32 vCPUs, "under 5 minutes"
GIB = 2**30
MIB = 2**20
ENV, STACK = "env", "bench"
AFFINITY = "io.rancher.scheduler.affinity:"
SPREAD = "io.rancher.stack_service.name=$${stack_name}/$${service_name}"
ZONES = ("eu", "us", "ap")
ROLES = ("web", "batch", "db")
SIZES = ((8, 4.0), (16, 8.0), (32, 16.0), (64, 32.0))  # (GiB memory, CPUs)


def make_hosts(count: int) -> list[HostView]:
    """Hosts of 2 archs x 3 zones x 3 roles x 4 sizes (72 classes); one in four is aarch64."""
    views = []
    for i in range(count):
        memory, cpus = SIZES[(i // 9) % 4]
        views.append(
            HostView(
                id=f"h{i:05d}",
                name=f"host{i:05d}",
                state=HostState.ACTIVE,
                labels={"zone": ZONES[i % 3], "role": ROLES[(i // 3) % 3]},
                arch="aarch64" if i % 4 == 3 else "x86_64",
                memory_bytes=memory * GIB,
                cpus=cpus,
            )
        )
    return views


def make_service(i: int, scale: int) -> tuple[ServiceSpec, frozenset[str] | None, str]:
    """Service number i: its spec, the image's archs (None: any) and a short name of its constraints."""
    labels: dict[str, str] = {}
    ports: tuple[PortSpec, ...] = ()
    archs: frozenset[str] | None = None
    mem: int | None = None
    cpu: float | None = None
    kind = i % 6
    if kind == 1:
        labels[AFFINITY + "host_label"] = f"zone={ZONES[i % 3]}"
    elif kind == 2:
        labels[AFFINITY + "container_label_ne"] = SPREAD
        labels[AFFINITY + "host_label_ne"] = "role=db"
    elif kind == 3:
        archs = frozenset({"arm64"} if i % 4 == 3 else {"amd64"})
    elif kind == 4:
        ports = (PortSpec(container_port=8080, host_port=20_000 + i // 12),)  # two services share each port
    elif kind == 5:
        mem, cpu = (256 + 256 * (i % 3)) * MIB, 0.25
        labels[AFFINITY + "container_label_soft_ne"] = SPREAD
    launch = LaunchConfig(image=f"registry.example/app{i % 50}:1", ports=ports, labels=tuple(sorted(labels.items())))
    spec = ServiceSpec(name=f"svc{i:04d}", launch=launch, scale=scale, mem_reservation_bytes=mem, cpu_reservation=cpu)
    names = ("plain", "host_label", "spread_ne", "arch", "port", "reserve+soft")
    return spec, archs, names[kind]


def slot_view(slot_spec: ServiceSpec, slot: ContainerSlot) -> SlotView:
    launch = slot_spec.launch
    return SlotView(
        slot,
        observed_state="running",
        observed_hash=slot.config_hash,
        published_ports=launch.published_ports(),
        labels=launch.labels,
        mem_reservation_bytes=slot_spec.mem_reservation_bytes or 0,
        cpu_reservation=slot_spec.cpu_reservation or 0.0,
    )


def run_pass(
    services: list[tuple[ServiceSpec, frozenset[str] | None, str]],
    hosts: list[HostView],
    state: dict[str, list[SlotView]],
    new_id: Callable[[], str],
) -> tuple[int, int, int]:
    """One orchestrator pass over the environment: each service in turn against a shared load, as the server does.
    Returns (placements, unplaced, other changes)."""
    load = HostLoad.shared(hosts, (parse_rules(s.launch.labels, stack=STACK, service=s.name) for s, _, _ in services))
    for views in state.values():
        for view in views:
            load.claim_view(view)
    placed = unplaced = changes = 0
    for spec, archs, _ in services:
        own = state.get(spec.name, [])
        for view in own:
            load.release_view(view)
        plan = reconcile(
            spec,
            stack=STACK,
            environment_id=ENV,
            slots=own,
            hosts=hosts,
            other_slots=(),
            dependencies_ready=True,
            new_id=new_id,
            now=0.0,
            image_archs=archs,
            load=load,
        )
        placed += len(plan.place)
        unplaced += len(plan.unplaced)
        changes += len(plan.remove) + len(plan.replace) + len(plan.update)
        if plan.place or plan.remove or plan.replace or plan.update:
            by_id = {v.slot.id: v for v in own}
            state[spec.name] = [by_id.get(s.id) or slot_view(spec, s) for s in apply_plan([v.slot for v in own], plan)]
    return placed, unplaced, changes


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=5000)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--per-service", type=int, default=1000)
    parser.add_argument("--no-steady", action="store_true", help="skip the second (steady-state) pass")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args(argv)

    hosts = make_hosts(args.hosts)
    services = [make_service(i, args.per_service) for i in range(args.services)]
    counter = itertools.count()
    state: dict[str, list[SlotView]] = {}
    wall, cpu = time.perf_counter(), time.process_time()
    placements, unplaced, _ = run_pass(services, hosts, state, lambda: f"c{next(counter)}")
    seconds, wall_seconds = time.process_time() - cpu, time.perf_counter() - wall
    steady_seconds, steady_changes = None, None
    if not args.no_steady:
        cpu = time.process_time()
        again, _, steady_changes = run_pass(services, hosts, state, lambda: f"c{next(counter)}")
        steady_seconds = time.process_time() - cpu
        steady_changes += again
    rate = placements / seconds if seconds else 0.0
    full = args.hosts == 5000 and args.services == 1000 and args.per_service == 1000
    met = seconds < TARGET_SECONDS if full else seconds * (1_000_000 / max(1, placements)) < TARGET_SECONDS
    result: dict[str, object] = {
        "benchmark": "P1",
        "title": "scheduler at scale",
        "figure": round(seconds, 3),
        "unit": "s",
        "target": TARGET_SECONDS,
        "target_text": "< 60 s for 1,000 x 1,000 on 5,000 hosts, one core"
        + ("" if full else " (smaller run: met if its rate would do 1,000,000 in 60 s)"),
        "met": met,
        "peers": {"nomad_c1m_placements_per_second": round(NOMAD_PLACEMENTS_PER_SECOND, 1)},
        "ratios": {"placements_per_second_vs_nomad_c1m": round(rate / NOMAD_PLACEMENTS_PER_SECOND, 2)},
        "hosts": args.hosts,
        "services": args.services,
        "per_service": args.per_service,
        "placements": placements,
        "unplaced": unplaced,
        "seconds": round(seconds, 3),
        "wall_seconds": round(wall_seconds, 3),
        "placements_per_second": round(rate, 1),
        "steady_pass_seconds": None if steady_seconds is None else round(steady_seconds, 3),
        "steady_pass_changes": steady_changes,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
    print(
        f"P1 scheduler: {placements:,} placements ({unplaced:,} pending) of {args.services:,} services x "
        f"{args.per_service:,} on {args.hosts:,} hosts in {seconds:.2f} s CPU ({wall_seconds:.2f} s wall) = "
        f"{rate:,.0f} placements/s "
        f"(target < {TARGET_SECONDS:g} s for 1,000,000; {'met' if met else 'NOT met'})"
    )
    if steady_seconds is not None:
        print(f"  steady-state pass (reconcile all again): {steady_seconds:.2f} s, {steady_changes} changes")
    print(
        f"  peak RSS {result['peak_rss_mb']} MB; Nomad C1M ~{NOMAD_PLACEMENTS_PER_SECOND:,.0f} placements/s "
        f"(ratio {result['ratios']['placements_per_second_vs_nomad_c1m']}x, one core vs 160 vCPUs)"
    )  # type: ignore[index]
    if args.json:
        print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
