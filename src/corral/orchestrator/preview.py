"""What an `up` would do, without doing it (`corral up --plan`, the UI's Preview; Nomad's `job plan`).

Why here and this shape: the preview must place containers where the server's pass then does, so it runs the very
same pure `reconcile` over the environment's snapshot, with the proposed stack's services swapped in for the
stored ones, in the pass's order and on one shared host load (pass_load.py), as environment_plan.py does. Its
plans are not stored: they become a `StackPreview` (model/plan_preview.py).

What it leaves out, knowingly: a service that waits for its dependencies is planned as if they were ready (it
says so in a note: the pass places it once they run); an index whose old container may still run is planned as
free (the pass waits for that container first); rolling upgrades are shown as the recreate of every old
container, placed where the reconciler would put the new ones.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from corral.model.images import archs_of_image
from corral.model.plan_preview import (
    ContainerAction,
    ContainerPreview,
    ServicePreview,
    StackPreview,
    UnplacedPreview,
    spec_changes,
)
from corral.model.reasons import group_unplaced
from corral.model.stack import Service, ServiceSpec, StackSpec
from corral.orchestrator.pass_load import claim_rest, rules_of
from corral.orchestrator.plans import Plan
from corral.orchestrator.reconciling import HostView, SlotView, reconcile
from corral.orchestrator.scheduling import HostLoad
from corral.orchestrator.sidekicks import PrimaryPlacement, primary_placement

NEW = "new:"  # the id prefix of a proposed service that does not exist yet


@dataclass(frozen=True)
class World:
    """One environment as the pass sees it (server/control/orchestration.py builds it from the in-memory state)."""

    environment_id: str
    environment: str
    hosts: Sequence[HostView]
    services: Sequence[Service]  # as stored, in the pass's order: (stack, position)
    slots: Sequence[SlotView]  # every slot of the environment
    retired: frozenset[str] = frozenset()  # slots a rolling upgrade retired (they leave their service's scale)
    image_reports: Sequence[Mapping[str, tuple[str, ...]]] = ()
    now: float = 0.0
    stack_ids: Mapping[str, str] = field(default_factory=dict)  # stack name -> id


def preview_stack(world: World, proposed: StackSpec, *, rolling: bool = False) -> StackPreview:
    """What storing `proposed` (then one pass) would do to the stack of that name in `world`.

    `rolling`: changed services' launch configs are applied by a rolling upgrade (`corral up --upgrade`)."""
    stored = {s.name: s for s in world.services if s.stack == proposed.name}
    stack_id = world.stack_ids.get(proposed.name, f"{NEW}{proposed.name}")
    swapped = [s for s in world.services if s.stack != proposed.name]
    service_previews: list[ServicePreview] = []
    for position, spec in enumerate(proposed.services):
        current = stored.get(spec.name)
        base = current or Service(
            id=f"{NEW}{proposed.name}/{spec.name}",
            stack_id=stack_id,
            environment_id=world.environment_id,
            stack=proposed.name,
            name=spec.name,
            spec=spec,
            scale=spec.scale,
        )
        swapped.append(dataclasses.replace(base, spec=spec, scale=spec.scale, position=position))
        service_previews.append(_service_preview(current, spec, rolling))
    service_previews.extend(ServicePreview(name, "remove") for name in stored if proposed.service(name) is None)
    swapped.sort(key=lambda s: (s.stack, s.position))

    plans, before = _plan_pass(world, swapped, proposed.name, stored)
    hosts = {h.id: h for h in world.hosts}
    containers: list[ContainerPreview] = []
    unplaced: list[UnplacedPreview] = []
    for service in (s for s in swapped if s.stack == proposed.name):
        plan = plans[service.name]
        containers.extend(_containers(service.name, plan, before[service.name], hosts))
        if plan.unplaced:
            indexes = tuple(sorted(i for i, _ in plan.unplaced))
            unplaced.append(UnplacedPreview(service.name, indexes, group_unplaced(plan.unplaced)))
    for name in stored:
        if proposed.service(name) is None:
            for view in sorted(before[name], key=lambda v: v.slot.index):
                containers.append(_container("remove", name, view.slot.index, view.slot.host_id, hosts))
    order = {"remove": 0, "recreate": 1, "create": 2}
    containers.sort(key=lambda c: (c.service, c.index, order[c.action]))
    return StackPreview(
        stack=proposed.name,
        environment=world.environment,
        create=proposed.name not in world.stack_ids,
        services=tuple(service_previews),
        containers=tuple(containers),
        unplaced=tuple(unplaced),
        warnings=proposed.warnings,
    )


def _service_preview(current: Service | None, spec: ServiceSpec, rolling: bool) -> ServicePreview:
    note = f"starts after: {', '.join(spec.depends_on)}" if spec.depends_on else ""
    if current is None:
        return ServicePreview(spec.name, "create", note=note)
    changes = spec_changes(current.spec, current.scale, spec)
    if not changes:
        return ServicePreview(spec.name, "unchanged")
    if rolling and current.spec.launch != spec.launch:
        note = "; ".join(n for n in ("rolling upgrade: old containers are kept until confirmed", note) if n)
    return ServicePreview(spec.name, "change", changes, note)


def _plan_pass(
    world: World, services: list[Service], stack: str, stored: Mapping[str, Service]
) -> tuple[dict[str, Plan], dict[str, list[SlotView]]]:
    """The pass of environment_plan.py over the environment with the proposed services: each service's plan
    (only the proposed stack's are kept) and the slots each had before it."""
    by_service: dict[tuple[str, str], list[SlotView]] = defaultdict(list)
    for view in world.slots:
        by_service[(view.slot.stack, view.slot.service)].append(view)
    present = {(s.stack, s.name) for s in services}  # a removed service's slots hold nothing any more
    views = {v.slot.id: v for v in world.slots if (v.slot.stack, v.slot.service) in present}
    load = HostLoad.shared(world.hosts, (rules_of(s.spec, s.stack) for s in services))
    for view in views.values():
        load.claim_view(view)
    sidekicks: dict[tuple[str, str], list[ServiceSpec]] = defaultdict(list)
    for s in services:
        if s.spec.sidekick_of is not None:
            sidekicks[(s.stack_id, s.spec.sidekick_of)].append(s.spec)
    placements: dict[tuple[str, str], PrimaryPlacement] = {}
    plans: dict[str, Plan] = {}
    before_of: dict[str, list[SlotView]] = {name: by_service[(stack, name)] for name in stored}
    counter = iter(range(1, 1_000_000))
    for service in sorted(services, key=lambda s: s.spec.sidekick_of is not None):  # primaries first
        mine = by_service[(service.stack, service.name)]
        upgrading = bool(service.upgrade)  # its old slots are retired in batches, not updated in place
        own = [v for v in mine if v.slot.id not in world.retired]
        for view in mine:
            load.release_view(view)
        in_unit = bool(service.spec.sidekicks) or service.spec.sidekick_of is not None
        others = (
            [v for v in views.values() if (v.slot.stack, v.slot.service) != (service.stack, service.name)]
            if in_unit
            else []
        )
        plan = reconcile(
            service.spec,
            stack=service.stack,
            environment_id=world.environment_id,
            slots=own,
            hosts=world.hosts,
            other_slots=others,
            load=None if in_unit else load,
            dependencies_ready=True,
            new_id=lambda: f"{NEW}{next(counter)}",
            now=world.now,
            image_archs=archs_of_image(service.spec.launch.image, world.image_reports),
            accepted_hashes=frozenset(v.slot.config_hash for v in own) if upgrading else frozenset(),
            sidekicks=sidekicks.get((service.stack_id, service.name), []),
            primary=placements.get((service.stack_id, service.spec.sidekick_of or "")),
        )
        if service.spec.sidekicks:
            placements[(service.stack_id, service.name)] = primary_placement(service.name, own, plan)
        for slot_id in [*plan.remove, *(old for old, _ in plan.replace)]:
            views.pop(slot_id, None)
        for slot in [*plan.place, *(new for _, new in plan.replace)]:
            views[slot.id] = SlotView(
                slot,
                published_ports=service.spec.launch.published_ports(),
                labels=service.spec.launch.labels,
                mem_reservation_bytes=service.spec.mem_reservation_bytes or 0,
                cpu_reservation=service.spec.cpu_reservation or 0.0,
            )
        if in_unit:
            for view in mine:
                if view.slot.id in views:
                    load.claim_view(views[view.slot.id])
            for slot in [*plan.place, *(new for _, new in plan.replace)]:
                load.claim_view(views[slot.id])
        else:
            claim_rest(load, service.spec, mine, world.retired, plan)
        if service.stack == stack:
            plans[service.name] = plan
            before_of[service.name] = mine
    return plans, before_of


def _containers(name: str, plan: Plan, before: list[SlotView], hosts: Mapping[str, HostView]) -> list[ContainerPreview]:
    slots = {v.slot.id: v.slot for v in before}
    result = [_container("create", name, s.index, s.host_id, hosts) for s in plan.place]
    for slot in plan.update:
        result.append(_container("recreate", name, slot.index, slot.host_id, hosts, reason="its configuration changed"))
    for old_id, new in plan.replace:
        old = slots.get(old_id)
        from_host = _host_name(old.host_id, hosts) if old is not None else ""
        result.append(_container("recreate", name, new.index, new.host_id, hosts, from_host=from_host))
    for slot_id in plan.remove:
        if (old := slots.get(slot_id)) is not None:
            result.append(_container("remove", name, old.index, old.host_id, hosts))
    return result


def _container(
    action: ContainerAction,
    service: str,
    index: int,
    host_id: str,
    hosts: Mapping[str, HostView],
    *,
    from_host: str = "",
    reason: str = "",
) -> ContainerPreview:
    return ContainerPreview(action, service, index, host_id, _host_name(host_id, hosts), from_host, reason)


def _host_name(host_id: str, hosts: Mapping[str, HostView]) -> str:
    host = hosts.get(host_id)
    return host.name if host is not None else host_id
