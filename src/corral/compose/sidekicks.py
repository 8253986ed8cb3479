"""Sidekicks: `io.rancher.sidekicks: a, b` on a primary service makes it and its sidekicks one deployment unit.

Why a module of its own: which services form a unit, and whether `volumes_from` and `network_mode: service:` /
`container:` point inside it, are properties of the set of services (like depends_on cycles), checked once the
whole file is parsed. A unit is placed as one (same host, same index, the primary's scale), so a service may only
share volumes or a network namespace with a member of its own unit: anything else could land on another host.

Decisions (documented for users in the README):
- `volumes_from: [SERVICE[:ro|:rw]]` must name a service of the same unit; `container:NAME[:ro|:rw]` names any
  Docker container and is passed on as it is (Corral does not manage it).
- `network_mode: service:SERVICE` must name a service of the same unit; `container:NAME` naming a service of the
  stack means the same and is stored as `service:NAME`; any other `container:NAME` is an outside container, kept.
- A sidekick's own scale is ignored (a warning when it differs from the primary's); depends_on between members of
  one unit is dropped from the spec (the agent creates a unit's containers in reference order instead, and a
  primary waiting for its own sidekicks would wait forever); scheduling labels of a sidekick are ignored (warned).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from corral.compose.location import Loc, Reference
from corral.compose.service import ParsedService
from corral.model.stack import ServiceSpec
from corral.model.units import network_service

SIDEKICK_LABELS = ("io.rancher.sidekicks", "io.corral.sidekicks")
_SCHEDULING_PREFIXES = ("io.rancher.scheduler.", "io.corral.scheduler.")


def sidekick_names(labels: Mapping[str, str]) -> tuple[str, ...]:
    """The names an `io.rancher.sidekicks` (or `io.corral.sidekicks`) label lists, in order, once each."""
    names: list[str] = []
    for key in SIDEKICK_LABELS:
        names.extend(n.strip() for n in labels.get(key, "").split(",") if n.strip())
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class Units:
    """The deployment units of a stack: primary -> its sidekicks, and sidekick -> its primary."""

    sidekicks: dict[str, tuple[str, ...]]
    primary_of: dict[str, str]

    def unit_of(self, service: str) -> str:
        """The primary of the unit the service belongs to (itself for a primary or a lone service)."""
        return self.primary_of.get(service, service)


def find_units(labels_of: Mapping[str, Mapping[str, str]], loc_of: Mapping[str, Loc], file_name: str) -> Units:
    """Read the sidekick labels of every service and check them; errors name file, service, label and the name."""
    declared: dict[str, tuple[str, ...]] = {}
    for name in sorted(labels_of):
        names = sidekick_names(labels_of[name])
        if names:
            declared[name] = names
    primary_of: dict[str, str] = {}
    for primary, names in declared.items():
        key = next(k for k in SIDEKICK_LABELS if labels_of[primary].get(k, "").strip())
        where = loc_of[primary].key("labels").key(key)
        for sidekick in names:
            if sidekick == primary:
                raise where.error(f"names the service itself ({primary!r}); list the services that run beside it")
            if sidekick not in labels_of:
                raise where.error(f"names service {sidekick!r}, which is not defined in {file_name}")
            if sidekick in declared:
                raise where.error(
                    f"names service {sidekick!r}, which has sidekicks of its own; a sidekick cannot be a primary"
                )
            if sidekick in primary_of:
                raise where.error(
                    f"names service {sidekick!r}, which is already a sidekick of {primary_of[sidekick]!r}; "
                    "a service belongs to one deployment unit"
                )
            primary_of[sidekick] = primary
    return Units(sidekicks=declared, primary_of=primary_of)


def check_unit_references(
    units: Units,
    references: Mapping[str, Sequence[Reference]],
    published: Mapping[str, frozenset[tuple[int, str]]],
    loc_of: Mapping[str, Loc],
) -> None:
    """`volumes_from` and `network_mode: service:` stay inside a unit, have no cycle, and a unit's members do not
    publish the same host port (they share one host)."""
    edges: dict[str, list[str]] = {name: [] for name in references}
    for name, refs in references.items():
        for target, where, how in refs:
            if how not in ("volumes_from", "network_mode", "net"):
                continue
            if target == name:
                raise where.error(f"{how} names the service itself")
            if units.unit_of(target) != units.unit_of(name):
                primary = units.unit_of(name)
                hint = (
                    f"add {target!r} to the io.rancher.sidekicks label of {primary!r}"
                    if target not in units.primary_of and target not in units.sidekicks
                    else "make both services members of one deployment unit"
                )
                raise where.error(
                    f"{how} names service {target!r}, which is not in the deployment unit of {name!r} "
                    f"(only the services of one unit share a host; {hint})"
                )
            edges[name].append(target)
    _check_reference_cycles(edges, references)
    for primary, sidekicks in units.sidekicks.items():
        seen: dict[tuple[int, str], str] = {port: primary for port in published.get(primary, frozenset())}
        for sidekick in sidekicks:
            for port in sorted(published.get(sidekick, frozenset())):
                if port in seen:
                    raise (
                        loc_of[sidekick]
                        .key("ports")
                        .error(
                            f"publishes port {port[0]}/{port[1]}, which {seen[port]!r} of the same deployment unit "
                            "publishes too (a unit runs on one host)"
                        )
                    )
                seen[port] = sidekick


def _check_reference_cycles(edges: Mapping[str, list[str]], references: Mapping[str, Sequence[Reference]]) -> None:
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in edges.get(name, ()):
            if state.get(target) == 1:
                cycle = [*path[path.index(target) :], target] if target in path else [name, target]
                where = next(w for t, w, _ in references[name] if t == target)
                raise where.error(f"volumes_from / network_mode references form a cycle: {' -> '.join(cycle)}")
            if target not in state:
                visit(target, [*path, target])
        state[name] = 2

    for root in sorted(edges):
        if root not in state:
            visit(root, [root])


def apply_units(
    services: Sequence[ServiceSpec],
    units: Units,
    *,
    explicit_scale: Mapping[str, int],
    loc_of: Mapping[str, Loc],
    warnings: list[str],
) -> tuple[ServiceSpec, ...]:
    """Record the units in the specs: `sidekicks` on primaries, `sidekick_of` and the primary's scale on
    sidekicks; depends_on inside a unit dropped; warnings for a sidekick's own scale and scheduling labels."""
    by_name = {s.name: s for s in services}
    result: list[ServiceSpec] = []
    for spec in services:
        unit = units.unit_of(spec.name)
        members = {unit, *units.sidekicks.get(unit, ())}
        depends_on = tuple(d for d in spec.depends_on if d not in members)
        conditions = tuple((d, c) for d, c in spec.depends_conditions if d not in members)
        spec = dataclasses.replace(spec, depends_conditions=conditions)
        if spec.name in units.sidekicks:
            spec = dataclasses.replace(spec, sidekicks=units.sidekicks[spec.name], depends_on=depends_on)
        elif spec.name in units.primary_of:
            primary = by_name[unit]
            prefix = loc_of[spec.name].service_prefix()
            own = explicit_scale.get(spec.name)
            if own is not None and own != primary.scale:
                warnings.append(
                    f"{prefix}: scale {own} was ignored: it is a sidekick of {unit!r} and runs one container beside "
                    f"each {unit} container (scale {primary.scale})"
                )
            ignored = sorted(k for k, _ in spec.launch.labels if k.startswith(_SCHEDULING_PREFIXES))
            if ignored:
                warnings.append(
                    f"{prefix}: scheduling label {', '.join(ignored)} was ignored: a sidekick runs on the host of "
                    f"its primary {unit!r} (put scheduling labels on {unit!r})"
                )
            spec = dataclasses.replace(spec, sidekick_of=unit, scale=primary.scale, depends_on=depends_on)
        result.append(spec)
    return tuple(result)


def resolve_units(parsed: Mapping[str, ParsedService], file_name: str) -> tuple[dict[str, ParsedService], Units]:
    """Find and check the stack's units; `network_mode: container:SERVICE` becomes `service:SERVICE`."""
    result: dict[str, ParsedService] = {}
    for name, service in parsed.items():
        mode = service.launch.network_mode
        target = mode[len("container:") :] if mode.startswith("container:") else None
        if target is not None and target in parsed:
            launch = dataclasses.replace(service.launch, network_mode=f"service:{target}")
            ref = (target, service.loc.key("network_mode"), "network_mode")
            service = dataclasses.replace(service, launch=launch, references=(*service.references, ref))
        if network_service(service.launch.network_mode) is not None and service.launch.published_ports():
            raise service.loc.key("ports").error(
                f"cannot publish ports with network_mode {service.launch.network_mode}: the container uses the "
                "network of another one (publish them on that service)"
            )
        result[name] = service
    loc_of = {name: s.loc for name, s in result.items()}
    units = find_units({name: dict(s.launch.labels) for name, s in result.items()}, loc_of, file_name)
    check_unit_references(
        units,
        {name: s.references for name, s in result.items()},
        {name: s.launch.published_ports() for name, s in result.items()},
        loc_of,
    )
    return result, units
