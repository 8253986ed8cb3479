"""Which images `corral pull` asks which hosts to pull (issue 18), as a pure function over a stack's snapshot.

Hosts chosen (not the scheduler's full static rules, which need the whole placement pass): the hosts where the
service has containers now; for a service without containers, every active host whose architecture the image is
known to run on (every active host when no host has reported the image's architectures yet). A sidekick is a
service of its own here (its image is pulled where its containers are). Load balancers, external services and
aliases have no image to pull; a service whose image Corral builds is skipped with a note (`corral build`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from corral.model.builds import is_built_image
from corral.model.entities import Host, HostState
from corral.model.errors import InvalidInput
from corral.model.images import archs_of_image
from corral.model.stack import Service, SlotRecord


@dataclass(frozen=True)
class PullTarget:
    service: str
    image: str
    host_ids: tuple[str, ...]


@dataclass(frozen=True)
class PullNote:
    service: str
    note: str


def pull_targets(
    services: Sequence[Service],
    slots: Sequence[SlotRecord],
    hosts: Sequence[Host],
    wanted: Sequence[str] | None = None,
) -> tuple[list[PullTarget], list[PullNote]]:
    """The (service, image, hosts) to pull and the services skipped with why; InvalidInput naming an unknown
    service of `wanted` (None: every service of the stack)."""
    by_name = {s.name: s for s in services}
    if wanted:
        unknown = [name for name in wanted if name not in by_name]
        if unknown:
            raise InvalidInput(
                f"services: no service {', '.join(map(repr, unknown))} in stack {services[0].stack if services else ''}"
                f" (it has {', '.join(sorted(by_name)) or 'none'})",
                field="services",
            )
    chosen = [by_name[n] for n in dict.fromkeys(wanted)] if wanted else sorted(services, key=lambda s: s.position)
    active = [h for h in hosts if h.state is HostState.ACTIVE]
    targets: list[PullTarget] = []
    notes: list[PullNote] = []
    for service in chosen:
        spec = service.spec
        if spec.lb_config is not None:
            notes.append(PullNote(service.name, "a load balancer: its image is Corral's, pulled with it"))
            continue
        if spec.virtual is not None:
            notes.append(PullNote(service.name, "an external service or alias: no containers, no image"))
            continue
        image = spec.launch.image
        if is_built_image(image):
            notes.append(PullNote(service.name, "built by Corral (`corral build`), not pulled from a registry"))
            continue
        placed = tuple(dict.fromkeys(s.slot.host_id for s in slots if s.service_id == service.id))
        if not placed:
            archs = archs_of_image(image, [h.images for h in hosts])
            placed = tuple(h.id for h in active if archs is None or not h.facts.arch or h.facts.arch in archs)
        if not placed:
            notes.append(PullNote(service.name, "no active host may run it"))
            continue
        targets.append(PullTarget(service.name, image, placed))
    return targets, notes
