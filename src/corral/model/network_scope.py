"""Which part of its environment's network state a host needs (issue 15 item 3: "a host receives the overlay peers
and records it needs, not the environment's whole container list").

Why: every host used to receive every container of its environment, so each container change went to every host
(at 1,000 hosts and 30,000 containers, the set-up alone sent about 27 GB) and a scale by one cost about 1 KB per
host. An agent that says `network_scope` in its `hello` gets a *scoped* state instead (`host_scope`):
- every container on the host, with the record of each service they belong to (`complete` False, `scale` 0: a
  scale change of a service spread over many hosts must not reach them all);
- every container and the full record of each service its containers name by declaration (`links`,
  `external_links`, the targets of its load balancers' rules, selectors matched), of each service it asked the
  server for (its `demand`), and, transitively, of the services aliases among those stand for;
- the records of every load balancer (a host stopping a container asks whether an LB routes to it: agent/drain.py);
- every container on compose networks when one of its own is (network/segments.py filters by source);
- the directory: every service's stack, name and primary, which changes only when services come or go.
The server adds the containers whose address lies outside their host's slice (the encrypted overlay routes them).

The agent asks for more when it must answer about something it does not hold completely: its DNS for a name the
directory says is Corral's (agent/dns_records.py `NameTable.wanted`), its metadata service for anything (metadata
lists the whole environment, as Rancher's did: such a host gets the unscoped state, `demand` "all"). The demand is an
`ack` {"demand": ["stack/service", ...] | "all"}, repeated in the next `hello`; it lasts as long as the connection.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace

from corral.model.lb import lb_config_from_dict
from corral.model.network import ContainerRecord, DirectoryEntry, ServiceRecord
from corral.model.virtual import Virtual

Key = tuple[str, str]  # (stack, service), as the environment spells them
ALL = "all"  # a demand for the whole environment
MAX_DEMANDED = 10_000  # services one agent may ask for by name (beyond: it asks for "all")
Demand = Callable[[set[Key] | str], Awaitable[None]]  # an agent's: ask the server for these (or "all") and wait


def selected(selector: str, service: ServiceRecord) -> bool:
    """Whether an LB rule's label selector ("k=v,k2=v2") matches the service's labels."""
    pairs = [part.strip().partition("=") for part in selector.split(",") if part.strip()]
    return bool(pairs) and all(service.labels.get(key.strip()) == value.strip() for key, _, value in pairs)


class ServiceIndex:
    """An environment's service records, indexed for scoping: by key, by key without case (names in links and
    aliases are compared without case), the load balancers and what each routes to. Built once per pass."""

    def __init__(self, services: Iterable[ServiceRecord]) -> None:
        self.services: dict[Key, ServiceRecord] = {(s.stack, s.name): s for s in services}
        self._folded: dict[Key, Key] = {(k[0].lower(), k[1].lower()): k for k in self.services}
        self.lbs: frozenset[Key] = frozenset(k for k, s in self.services.items() if s.lb)
        self._lb_targets: dict[Key, frozenset[Key]] = {}

    def find(self, stack: str, name: str) -> Key | None:
        """The service called `name` in `stack`, compared without case; None when there is none."""
        return self._folded.get((stack.lower(), name.lower()))

    def lb_targets(self, key: Key) -> frozenset[Key]:
        """The services the rules of LB `key` route to: `service` or `stack/service` (relative to the LB's stack),
        or every service whose labels its selector matches."""
        found = self._lb_targets.get(key)
        if found is None:
            lb, targets = self.services[key], set()
            for rule in lb_config_from_dict(lb.lb).port_rules if lb.lb else ():
                if rule.selector:
                    targets |= {k for k, s in self.services.items() if selected(rule.selector, s)}
                elif rule.service:
                    stack, _, name = rule.service.rpartition("/")
                    target = self.find(stack or lb.stack, name)
                    if target is not None:
                        targets.add(target)
            found = self._lb_targets[key] = frozenset(targets)
        return found

    def alias_targets(self, key: Key) -> list[Key]:
        """The services an alias service stands for ([] for any other service)."""
        virtual = Virtual.from_dict(self.services[key].virtual)
        if virtual is None or virtual.kind != "alias":
            return []
        return [found for stack, name in virtual.target_keys(key[0]) if (found := self.find(stack, name))]

    def directory(self) -> list[DirectoryEntry]:
        return [DirectoryEntry(s.stack, s.name, s.sidekick_of) for s in self.services.values()]


@dataclass(frozen=True)
class Scope:
    """What one host holds: every container and the full record of `complete`; only the record of `records`;
    every container on compose networks when `segmented`."""

    complete: frozenset[Key]
    records: frozenset[Key]
    segmented: bool


def host_scope(local: Iterable[ContainerRecord], index: ServiceIndex, demanded: Iterable[Key] = ()) -> Scope:
    """The scope of a host whose containers are `local`, which asked for the services `demanded` (pure)."""
    local = list(local)
    own = {key for c in local if (key := (c.stack, c.service)) in index.services}
    wanted: set[Key] = {key for key in demanded if key in index.services}
    for container in local:
        for link in container.links:
            name = link.strip().partition(":")[0]
            if name and (found := index.find(container.stack, name)):
                wanted.add(found)
        for link in container.external_links:
            stack, slash, name = link.strip().partition(":")[0].partition("/")
            if slash and (found := index.find(stack, name)):
                wanted.add(found)
    for key in own & index.lbs:
        wanted |= index.lb_targets(key)
    pending = list(wanted)
    while pending:  # what aliases stand for, transitively
        for target in index.alias_targets(pending.pop()):
            if target not in wanted:
                wanted.add(target)
                pending.append(target)
    return Scope(
        complete=frozenset(wanted),
        records=frozenset((own | index.lbs) - wanted),
        segmented=any(c.networks for c in local),
    )


def incomplete(record: ServiceRecord) -> ServiceRecord:
    """The record a host gets of a service it does not hold every container of."""
    return replace(record, scale=0, complete=False)


def demand_from_wire(value: object) -> frozenset[Key] | str:
    """An agent's `demand` ("all", or a list of "stack/service") as `host_scope` takes it; ValueError if malformed."""
    if value == ALL:
        return ALL
    if not isinstance(value, list) or len(value) > MAX_DEMANDED:
        raise ValueError(f'demand must be "all" or a list of at most {MAX_DEMANDED} "stack/service" names')
    keys = set()
    for item in value:
        if not isinstance(item, str) or len(item) > 512:
            raise ValueError(f'demand: {str(item)[:80]!r} is not a "stack/service" name')
        stack, slash, name = item.partition("/")
        if not (slash and stack and name):
            raise ValueError(f'demand: {str(item)[:80]!r} is not a "stack/service" name')
        keys.add((stack, name))
    return frozenset(keys)


def demand_to_wire(demand: Iterable[Key] | str) -> list[str] | str:
    if isinstance(demand, str):
        return ALL
    return sorted(f"{stack}/{name}" for stack, name in demand)
