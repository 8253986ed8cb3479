"""Deltas of a host's `network` state (model/network.py `NetworkState`) for an agent whose `hello` said
`"network_deltas": true`.

Why: a host's network state can be large (the whole environment for an agent that does not take scoped states or
whose metadata service asked for everything; model/network_scope.py), and it used to go to every host on every
change: at 200 hosts x 6,000 containers about 1.5 MB per host. Now, after the first full state (carrying a
`version`), the server sends per section (peers, containers, services, hosts, and a scoped state's directory) the
entries put and the keys removed, plus the small fixed parts (environment, settings, the host itself, whether it is
scoped) only when they changed, against the `base` version the agent holds.
The agent applies them with the desired set's machinery (model/deltas.py `diff`, `apply`, `is_gap`), acknowledges
with `ack` {"network": version}, and on a gap asks for the full state again (`ack` with `resync`). A reconnect
always starts from the full state, so level-triggered stays true.

Full states list every section in one canonical order (`full_state`), so the state an agent builds from deltas is
exactly, order included, the full state the server would send.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from corral.model import deltas
from corral.model.errors import InvalidInput

Entry = deltas.Entry
Sections = Mapping[str, Mapping[str, Entry]]
# always in a full state ("scoped" only in a scoped one: model/network_scope.py); in a delta when changed
FIXED = ("environment_id", "environment", "settings", "host", "scoped")


def _text(entry: Mapping[str, Any], field: str, section: str) -> str:
    value = entry.get(field)
    if not isinstance(value, str):
        raise InvalidInput(f"network: an entry of {section} without a {field} string", field=f"{section}.{field}")
    return value


def _host_key(section: str) -> Callable[[Mapping[str, Any]], str]:
    return lambda entry: _text(entry, "host_id", section)


def _container_key(entry: Mapping[str, Any]) -> str:
    return _text(entry, "slot_id", "containers")


def _service_key(section: str) -> Callable[[Mapping[str, Any]], str]:
    return lambda entry: _text(entry, "stack", section) + "/" + _text(entry, "name", section)


def _container_order(entry: Mapping[str, Any]) -> tuple[str, str, int, str]:
    index = entry.get("index", 0)
    return (str(entry["stack"]), str(entry["service"]), index if isinstance(index, int) else 0, str(entry["slot_id"]))


# section -> (the key of an entry, the canonical order of a full state's list)
SECTIONS: dict[str, tuple[Callable[[Mapping[str, Any]], str], Callable[[Mapping[str, Any]], Any]]] = {
    "peers": (_host_key("peers"), _host_key("peers")),
    "containers": (_container_key, _container_order),
    "services": (_service_key("services"), lambda entry: (str(entry["stack"]), str(entry["name"]))),
    "hosts": (_host_key("hosts"), _host_key("hosts")),
    # a scoped state's every service (model/network_scope.py); absent from an unscoped one
    "directory": (_service_key("directory"), lambda entry: (str(entry["stack"]), str(entry["name"]))),
}


@dataclass(frozen=True)
class Parts:
    """A network state split for diffing: the fixed parts, and each section's entries by key."""

    fixed: Mapping[str, Any]
    sections: Sections

    @classmethod
    def of(cls, state: Mapping[str, Any]) -> Parts:
        """A full `network` message's data split by key; InvalidInput when it is malformed."""
        missing = [name for name in ("environment_id", "host") if name not in state]
        if missing:
            raise InvalidInput(f"network: the full state has no {missing[0]}", field=missing[0])
        sections: dict[str, dict[str, Entry]] = {}
        for name, (key, _) in SECTIONS.items():
            items = state.get(name, [])
            if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
                raise InvalidInput(f"network: {name} must be a list of objects", field=name)
            sections[name] = {key(item): item for item in items}
        return cls({name: state[name] for name in FIXED if name in state}, sections)


class Excluding(Mapping[str, Entry]):
    """`everyone` without the entry keyed `own`, without a copy: a host's peers are its environment's hosts but
    itself, and the server keeps one section of all of them per push instead of one copy per host (O(hosts²))."""

    __slots__ = ("everyone", "own")

    def __init__(self, everyone: Mapping[str, Entry], own: str) -> None:
        self.everyone = everyone
        self.own = own

    def __getitem__(self, key: str) -> Entry:
        if key == self.own:
            raise KeyError(key)
        return self.everyone[key]

    def __iter__(self) -> Iterator[str]:
        return (key for key in self.everyone if key != self.own)

    def __len__(self) -> int:
        return len(self.everyone) - (self.own in self.everyone)


@dataclass(frozen=True)
class Held:
    """What the server last sent a delta-taking agent: the version and the state it was."""

    version: int
    parts: Parts


def full_state(parts: Parts) -> dict[str, Any]:
    """The full `network` data of `parts`, each section in the canonical order."""
    data: dict[str, Any] = dict(parts.fixed)
    for name, (_, order) in SECTIONS.items():
        if name != "directory" or parts.fixed.get("scoped"):
            data[name] = sorted(parts.sections.get(name, {}).values(), key=order)
    return data


# (id of a held section, id of the new one) -> (both sections, kept alive so that no id is reused, and their diff)
Memo = dict[tuple[int, int], tuple[object, object, tuple[list[Entry], list[str]]]]


def network_delta(held: Parts, now: Parts, memo: Memo | None = None) -> dict[str, Any] | None:
    """The delta from `held` to `now` (without version and base), None when nothing changed. `memo` keeps the diff of
    a pair of section objects for one push: every host of an environment shares its containers, services and hosts,
    so they are diffed once, not once per host."""
    put: dict[str, list[Entry]] = {}
    remove: dict[str, list[str]] = {}
    for name, (key, _) in SECTIONS.items():
        before, after = held.sections.get(name, {}), now.sections.get(name, {})
        own = None
        if isinstance(before, Excluding) and isinstance(after, Excluding) and before.own == after.own:
            # the same host's peers: the diff of everyone (shared by the hosts) without its own entry
            own, before, after = before.own, before.everyone, after.everyone
        pair = (id(before), id(after))
        kept = memo.get(pair) if memo is not None else None
        if kept is not None:
            found = kept[2]
        else:
            found = ([], []) if before is after else deltas.diff(before, after)
            if memo is not None:
                memo[pair] = (before, after, found)
        if own is not None:
            found = ([e for e in found[0] if key(e) != own], [k for k in found[1] if k != own])
        if found[0]:
            put[name] = found[0]
        if found[1]:
            remove[name] = found[1]
    data: dict[str, Any] = {name: now.fixed.get(name) for name in FIXED if held.fixed.get(name) != now.fixed.get(name)}
    if not put and not remove and not data:
        return None
    return {"put": put, "remove": remove, **data}


def apply_network(held: Parts, data: Mapping[str, Any]) -> Parts:
    """`held` with a `network` delta applied; InvalidInput for a malformed delta (the caller asks for a resync)."""
    put, remove = data.get("put", {}), data.get("remove", {})
    if not isinstance(put, dict) or not isinstance(remove, dict):
        raise InvalidInput("network delta: put and remove must be objects of sections", field="put")
    unknown = sorted((set(put) | set(remove)) - set(SECTIONS))
    if unknown:
        raise InvalidInput(f"network delta: unknown section {unknown[0]!r}", field=f"put.{unknown[0]}")
    sections = {
        name: deltas.apply(
            held.sections.get(name, {}),
            {"put": put.get(name, []), "remove": remove.get(name, [])},
            key,
            f"network delta of {name}",
        )
        if name in put or name in remove
        else held.sections.get(name, {})
        for name, (key, _) in SECTIONS.items()
    }
    fixed = {
        name: data[name] if name in data else held.fixed[name] for name in FIXED if name in data or name in held.fixed
    }
    return Parts(fixed, sections)
