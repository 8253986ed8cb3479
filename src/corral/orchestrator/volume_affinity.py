"""Volume affinity (issue 17 item 4): a container whose local stack or per-container volume already holds data on a
host is placed on that host, a hard rule while the host is usable; when it cannot go there, its reason says which
volume keeps it where.

Why: a `local` volume is a directory of one host's engine. Placing the container elsewhere would start it on an
empty copy of the volume, the data silently left behind (Rancher 1.x pinned such containers the same way). A host
that is gone, disconnected or evacuating is no longer usable: the rule lapses there and the container may start
elsewhere on a new, empty volume, as it would have without the rule. Environment (`external`) volumes are the
operator's and are not followed: they may exist on several hosts on purpose.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from corral.model.entities import HostState
from corral.model.stack import VolumeSpec

# a holder in one of these states keeps its containers (it may come back or take them again); others release them
_HOLDING_STATES = frozenset({HostState.ACTIVE, HostState.RECONNECTING, HostState.ENGINE_DOWN})


@dataclass(frozen=True)
class Holder:
    """What the rule needs of one host: its volumes' names and whether it can take the container now."""

    id: str
    name: str
    state: HostState
    volumes: frozenset[str]
    takes_new: bool  # active, schedulable, not evacuating
    evacuating: bool = False


@dataclass(frozen=True)
class VolumeAffinity:
    """Where index `index` must go: one of `hosts` (ids), because of `volumes` (Docker names)."""

    hosts: frozenset[str]
    volumes: tuple[str, ...]
    host_names: tuple[str, ...]

    def reason(self, why_not: str) -> str:
        volumes = ", ".join(self.volumes)
        noun = "volume" if len(self.volumes) == 1 else "volumes"
        where = " or ".join(self.host_names) if self.host_names else "no single host"
        return f"its {noun} {volumes} keeps it on {where}, where the data is: {why_not}"


def local_volume_names(volumes: Iterable[VolumeSpec], index: int) -> tuple[str, ...]:
    """The Docker names of the stack and per-container volumes container `index` mounts (Corral creates them with
    the local driver), sorted."""
    return tuple(
        sorted(
            {
                v.docker_source(index)
                for v in volumes
                if v.kind == "volume" and v.source and v.scope in ("", "container")
            }
        )
    )


def affinity(volumes: Iterable[VolumeSpec], index: int, holders: Iterable[Holder]) -> VolumeAffinity | None:
    """The hosts container `index` must go to, or None when no usable host holds any of its local volumes.

    Each volume held by a usable host narrows the choice to its holders; two volumes held on different hosts leave
    no host (the reason says so rather than losing one of them)."""
    names = local_volume_names(volumes, index)
    if not names:
        return None
    usable = [h for h in holders if h.state in _HOLDING_STATES and not h.evacuating]
    allowed: set[str] | None = None
    binding: list[str] = []
    for name in names:
        holding = {h.id for h in usable if name in h.volumes}
        if not holding:
            continue
        binding.append(name)
        allowed = holding if allowed is None else allowed & holding
    if allowed is None:
        return None
    by_id = {h.id: h for h in usable}
    names_of = tuple(sorted(by_id[i].name for i in allowed))
    return VolumeAffinity(hosts=frozenset(allowed), volumes=tuple(binding), host_names=names_of)


def why_not_there(affinity_: VolumeAffinity, holders: Iterable[Holder], feasible_reason: str) -> str:
    """Why none of the affinity's hosts took the container: their state, or the scheduler's reason."""
    chosen = [h for h in holders if h.id in affinity_.hosts]
    if not chosen:
        return "the volumes are on different hosts; remove one of them or the service's use of it"
    if not any(h.takes_new for h in chosen):
        return "; ".join(
            f"{h.name} is {h.state.value if h.state is not HostState.ACTIVE else 'deactivated'}" for h in chosen
        )
    return feasible_reason
