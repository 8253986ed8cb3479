"""Which addresses a DNS name means for a given container: the pure half of the per-host DNS server (agent/dns.py).

Why pure and separate: the answers depend on who asks (a short `web` means the `web` of the asker's own stack, a
link alias exists only for the service that declared it), on health and on the running state, so the rules are
many and easy to get subtly wrong; here they are plain functions of a `NetworkState`, unit- and property-tested
without sockets. The server only parses packets, asks `NameTable.resolve`, shuffles and packs.

Names (case-insensitive, a trailing dot is fine), for a client known by its source address (its ContainerRecord):
  `alias`                     a `links` ("service:alias", or "service") or `external_links` ("stack/service:alias")
                              alias of the client's service; it wins over a service of the same name
  `service`                   that service of the client's own stack
  `alias` (compose networks)  a network alias (`networks: {front: {aliases: [x]}}`) on one of the client's networks
  `sidekick.primary`          the sidekick's containers, in the client's own stack
  `service.stack`, `sidekick.primary.stack`, and both with `.corral.internal`
  `alias.STACK.corral.internal` where STACK is the client's own stack: the search list's expansion of `alias`
  `stack-service-1`, `stack-service-1.corral.internal`   one container, by its Docker name
A client on compose networks (ContainerRecord.networks) gets only the addresses it may reach: those of containers
sharing one of its networks, or on the flat network (network/segments.py drops the rest); none left is NXDOMAIN,
as Compose's DNS does not know a service of another network.
An unknown client (the host itself, a container off the overlay) gets only the fully qualified forms: `service.stack`,
`sidekick.primary.stack`, the `.corral.internal` names and container names.

Decisions: a name Corral owns (it matches a service, sidekick, alias or container, live or not, or it ends in
`corral.internal`) is answered here and never forwarded; when it has no running and healthy container with an
address, the answer is NXDOMAIN, as Rancher's DNS did, so a client falls through its search list and an application
sees "unknown host" instead of a stale address. Any other name is forwarded to the host's resolvers.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from corral.model.network import DNS_DOMAIN, ContainerRecord, NetworkState
from corral.model.virtual import Virtual

_DOMAIN_LABELS = tuple(DNS_DOMAIN.split("."))


class Outcome(enum.Enum):
    ANSWER = "answer"  # ours: `addresses` (maybe empty: the name exists without A records, e.g. the zone apex)
    NXDOMAIN = "nxdomain"  # ours, but nothing live (or nothing at all) under it
    FORWARD = "forward"  # not ours: ask the host's upstream resolvers


@dataclass(frozen=True)
class Lookup:
    outcome: Outcome
    addresses: tuple[str, ...] = ()  # sorted; the server shuffles them per query
    cname: str = ""  # an external service by hostname: the name is an alias of this one (a CNAME record)

    @property
    def owned(self) -> bool:
        return self.outcome is not Outcome.FORWARD


FORWARD = Lookup(Outcome.FORWARD)
NXDOMAIN = Lookup(Outcome.NXDOMAIN)


def split_name(name: str) -> tuple[str, ...]:
    """`Web.Shop.` -> ("web", "shop"); empty labels (the root, `a..b`) are dropped."""
    return tuple(label for label in name.strip().lower().split(".") if label)


def is_live(container: ContainerRecord) -> bool:
    return container.running and container.healthy and bool(container.ip)


def shuffled(addresses: Sequence[str], rng: random.Random | None = None) -> list[str]:
    """A fresh random order per query: clients that take the first address spread over all containers."""
    result = list(addresses)
    (rng or random).shuffle(result)
    return result


def _alias_targets(client: ContainerRecord) -> dict[str, tuple[str, str]]:
    """The client's aliases: alias -> (stack, service). `links` are in the client's stack."""
    aliases: dict[str, tuple[str, str]] = {}
    for link in client.links:
        service, _, alias = link.strip().lower().partition(":")
        if service:
            aliases[alias or service] = (client.stack.lower(), service)
    for link in client.external_links:
        target, _, alias = link.strip().lower().partition(":")
        stack, slash, service = target.partition("/")
        if slash and stack and service:
            aliases[alias or service] = (stack, service)
    return aliases


class NameTable:
    """Every name of one environment, indexed once per `network` message; `resolve` is dictionary look-ups."""

    def __init__(self, state: NetworkState) -> None:
        self.stacks: set[str] = set()
        self.services: dict[tuple[str, str], list[str]] = {}  # (stack, service) -> live addresses
        self.sidekicks: dict[tuple[str, str, str], list[str]] = {}  # (stack, primary, sidekick) -> addresses
        self.containers: dict[str, list[str]] = {}  # docker name -> its address, when live
        self.clients: dict[str, ContainerRecord] = {}  # ip -> the container that has it
        self.aliases: dict[str, dict[str, tuple[str, str]]] = {}  # client ip -> alias -> (stack, service)
        self.network_aliases: dict[tuple[str, str], list[str]] = {}  # (network, alias) -> live addresses
        for service in state.services:
            stack, name = service.stack.lower(), service.name.lower()
            self.stacks.add(stack)
            self.services.setdefault((stack, name), [])
            if service.sidekick_of:
                self.sidekicks.setdefault((stack, service.sidekick_of.lower(), name), [])
            for sidekick in service.sidekicks:
                self.sidekicks.setdefault((stack, name, sidekick.lower()), [])
        for container in state.containers:
            stack, name = container.stack.lower(), container.service.lower()
            self.stacks.add(stack)
            live = [container.ip] if is_live(container) else []
            self.services.setdefault((stack, name), []).extend(live)
            if container.primary:
                self.sidekicks.setdefault((stack, container.primary.lower(), name), []).extend(live)
            self.containers.setdefault(container.name.lower(), []).extend(live)
            for network, alias in container.network_aliases:
                self.network_aliases.setdefault((network, alias.lower()), []).extend(live)
            if container.ip:
                self.clients[container.ip] = container
        for ip, client in self.clients.items():
            self.aliases[ip] = _alias_targets(client)
        self.cnames: dict[tuple[str, str], str] = {}  # (stack, external service) -> its hostname
        self._virtual(state)
        # a scoped state (model/network_scope.py): every service of the environment by lower-case key, and those
        # whose every container this host holds; `wanted` says which others a name needs
        self.scoped = state.scoped
        self.directory = {(d.stack.lower(), d.name.lower()): d for d in state.directory}
        self.complete = {(s.stack.lower(), s.name.lower()) for s in state.services if s.complete}
        if self.scoped:
            self.stacks |= {stack for stack, _ in self.directory}

    def _virtual(self, state: NetworkState) -> None:
        """External services answer their IPs or hostname; aliases the live containers of what they alias."""
        aliases: list[tuple[tuple[str, str], Virtual]] = []
        for service in state.services:
            virtual = Virtual.from_dict(service.virtual)
            if virtual is None:
                continue
            key = (service.stack.lower(), service.name.lower())
            if virtual.kind == "alias":
                aliases.append((key, virtual))
            elif virtual.hostname:
                self.cnames[key] = virtual.hostname
            else:
                self.services[key] = list(virtual.external_ips)
        for key, virtual in aliases:
            self.services[key] = [ip for target in virtual.target_keys(key[0]) for ip in self.services.get(target, ())]

    def _service(self, key: tuple[str, str] | None) -> Lookup:
        if key is not None and key in self.cnames:
            return Lookup(Outcome.ANSWER, cname=self.cnames[key])
        return self._answer(self.services.get(key) if key is not None else None)

    def client(self, ip: str) -> ContainerRecord | None:
        return self.clients.get(ip)

    def resolve(self, name: str, client_ip: str = "") -> Lookup:
        """What `name` means for the container at `client_ip` ("" or an unknown address: an unknown client)."""
        lookup = self._resolve(name, client_ip)
        client = self.clients.get(client_ip)
        if client is None or not client.networks or not lookup.addresses:
            return lookup
        mine = set(client.networks)
        visible = tuple(
            ip
            for ip in lookup.addresses
            if (other := self.clients.get(ip)) is None or not other.networks or mine & set(other.networks)
        )
        return Lookup(Outcome.ANSWER, visible) if visible else NXDOMAIN

    def _resolve(self, name: str, client_ip: str) -> Lookup:
        labels = split_name(name)
        if not labels:
            return FORWARD
        client = self.clients.get(client_ip)
        if labels[-len(_DOMAIN_LABELS) :] == _DOMAIN_LABELS:
            return self._qualified(labels[: -len(_DOMAIN_LABELS)], client_ip, client)
        return self._relative(labels, client_ip, client)

    def _qualified(self, labels: tuple[str, ...], client_ip: str, client: ContainerRecord | None) -> Lookup:
        """Names under corral.internal: always ours, NXDOMAIN when they name nothing live."""
        if not labels:
            return Lookup(Outcome.ANSWER)  # the zone apex exists
        if len(labels) == 1:
            if labels[0] in self.stacks:
                return Lookup(Outcome.ANSWER)  # `shop.corral.internal` exists, without addresses
            return self._answer(self.containers.get(labels[0]))
        if len(labels) == 2:
            name, stack = labels
            if client is not None and stack == client.stack.lower():
                alias = self.aliases[client_ip].get(name)
                if alias is not None:
                    return self._service(alias)
            return self._service((stack, name))
        if len(labels) == 3:
            sidekick, primary, stack = labels
            return self._answer(self.sidekicks.get((stack, primary, sidekick)))
        return NXDOMAIN

    def _relative(self, labels: tuple[str, ...], client_ip: str, client: ContainerRecord | None) -> Lookup:
        """Names outside corral.internal: ours when they match, otherwise forwarded."""
        own_stack = client.stack.lower() if client is not None else None
        if len(labels) == 1:
            (name,) = labels
            if client is not None and own_stack is not None:
                alias = self.aliases[client_ip].get(name)
                if alias is not None:
                    return self._service(alias)
                if (own_stack, name) in self.services:
                    return self._service((own_stack, name))
                on_networks = [self.network_aliases.get((n, name)) for n in client.networks]
                if any(found is not None for found in on_networks):
                    return self._answer(ip for found in on_networks for ip in found or ())
            if name in self.containers:
                return self._answer(self.containers[name])
            return FORWARD
        if len(labels) == 2:
            first, second = labels
            if (second, first) in self.services:
                return self._service((second, first))
            if own_stack is not None and (own_stack, second, first) in self.sidekicks:
                return self._answer(self.sidekicks[(own_stack, second, first)])
            return FORWARD
        if len(labels) == 3:
            sidekick, primary, stack = labels
            if (stack, primary, sidekick) in self.sidekicks:
                return self._answer(self.sidekicks[(stack, primary, sidekick)])
        return FORWARD

    def wanted(self, name: str, client_ip: str = "") -> set[tuple[str, str]]:
        """The services (as the directory spells them) that `name` may mean for this client and that a scoped
        state does not hold completely: the agent asks the server for them before answering (empty when the state
        is not scoped, or the name needs nothing more)."""
        if not self.scoped:
            return set()
        labels = split_name(name)
        if labels[-len(_DOMAIN_LABELS) :] == _DOMAIN_LABELS:
            labels = labels[: -len(_DOMAIN_LABELS)]
        client = self.clients.get(client_ip)
        own_stack = client.stack.lower() if client is not None else ""
        keys: set[tuple[str, str]] = set()
        if len(labels) == 1:
            (first,) = labels
            if client is not None:
                alias = self.aliases[client_ip].get(first)
                keys |= {alias} if alias is not None else {(own_stack, first)}
            if "-" in first:  # a container's Docker name: stack-service-index (an upgrade's: -uN after it)
                keys |= {key for key in self.directory if first.startswith(f"{key[0]}-{key[1]}-")}
        elif len(labels) == 2:
            first, second = labels
            keys |= {(second, first), (own_stack, first)}
            if client is not None and second == own_stack and (alias := self.aliases[client_ip].get(first)):
                keys.add(alias)
        elif len(labels) == 3:
            keys.add((labels[2], labels[0]))
        return {self.directory[key].key for key in keys if key in self.directory and key not in self.complete}

    @staticmethod
    def _answer(addresses: Iterable[str] | None) -> Lookup:
        found = tuple(sorted(set(addresses or ())))
        return Lookup(Outcome.ANSWER, found) if found else NXDOMAIN
