"""Deltas of a host's desired set: what the server sends an agent that announced `"deltas": true` in its `hello`.

Why: a host's desired set is re-sent whenever anything in it changes; at thousands of containers a scale-by-one
would re-send every entry. After the first full set (carrying a `version`), the server sends only the entries put
(new or changed, by slot id) and the slot ids removed, against the `base` version the agent holds; the agent applies
them, acknowledges the new version with `ack`, and asks for the full set again (`ack` with `resync`) when the base
is not the version it holds (a gap). Level-triggered stays true: a reconnect always starts with the full set.
`diff`, `apply` and `is_gap` are the machinery the `network` message's deltas use too (model/network_deltas.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from corral.model.errors import InvalidInput

Entry = dict[str, Any]


def slot_id_of(entry: Mapping[str, Any]) -> str:
    slot = entry.get("slot")
    if not isinstance(slot, Mapping) or not isinstance(slot.get("id"), str):
        raise InvalidInput("desired: an entry without slot.id", field="slot")
    return str(slot["id"])


def by_slot(entries: list[Entry]) -> dict[str, Entry]:
    return {slot_id_of(entry): entry for entry in entries}


def diff(before: Mapping[str, Entry], after: Mapping[str, Entry]) -> tuple[list[Entry], list[str]]:
    """(entries new or changed, slot ids gone) from `before` to `after` (an entry that is the same object is the same
    entry: the server keeps unchanged entries as they were, so most are not compared field by field)."""
    put = [entry for slot_id, entry in after.items() if (old := before.get(slot_id)) is not entry and old != entry]
    remove = sorted(slot_id for slot_id in before if slot_id not in after)
    return put, remove


def _order(entry: Mapping[str, Any]) -> tuple[str, str, int, str]:
    slot = entry["slot"]
    return (str(slot.get("stack", "")), str(slot.get("service", "")), int(slot.get("index", 0)), str(slot["id"]))


def apply(
    held: Mapping[str, Entry],
    data: Mapping[str, Any],
    key: Callable[[Mapping[str, Any]], str] = slot_id_of,
    what: str = "desired delta",
) -> dict[str, Entry]:
    """`held` with a delta message's `put` and `remove` applied (entries keyed by `key`, the slot id unless told);
    InvalidInput naming `what` for a malformed delta."""
    put, remove = data.get("put"), data.get("remove")
    if not isinstance(put, list) or not isinstance(remove, list):
        raise InvalidInput(f"{what}: put and remove must be lists", field="put")
    gone = set(remove)
    result = {entry_key: entry for entry_key, entry in held.items() if entry_key not in gone}
    for entry in put:
        if not isinstance(entry, dict):
            raise InvalidInput(f"{what}: put entries must be objects", field="put")
        result[key(entry)] = entry
    return result


def is_gap(held_version: int | None, data: Mapping[str, Any]) -> bool:
    """A delta on a version other than the one held (or none held): the agent must ask for the full state."""
    return held_version is None or data.get("base") != held_version


def ordered(entries: Mapping[str, Entry]) -> list[Entry]:
    """The entries in the server's order (stack, service, index), as a full set lists them."""
    return sorted(entries.values(), key=_order)


@dataclass(frozen=True)
class Held:
    """What the server last sent a delta-taking agent: the version, its entries by slot id, and the digest of the
    registries and secrets that came with them."""

    version: int
    entries: Mapping[str, Entry]
    extras: str


@dataclass(frozen=True)
class Extras:
    """What a `desired` message carries besides the containers; never logged: registries carry passwords, secrets
    their values, certificates their keys."""

    registries: list[dict[str, str]]
    secrets: Mapping[str, Any]
    certificates: Mapping[str, Any]

    def digest(self) -> str:
        return json.dumps([self.registries, self.secrets, self.certificates], sort_keys=True)


def desired_message(
    containers: list[Entry],
    revision: float,
    extras: Extras,
    held: Held | None,
    version: int,
) -> dict[str, Any]:
    """The `desired` data: the full set (`held` None), or what changed since the set of version `held`."""
    data: dict[str, Any]
    if held is None:
        data = {"containers": containers, "revision": revision}
    else:
        put, remove = diff(held.entries, by_slot(containers))
        data = {"put": put, "remove": remove, "base": held.version, "revision": revision}
    data["version"] = version
    if held is None or held.extras != extras.digest():  # in a delta, absent means unchanged; in a full set, none
        if extras.registries or held is not None:
            data["registries"] = extras.registries
        if extras.secrets or held is not None:
            data["secrets"] = dict(extras.secrets)
        if extras.certificates or held is not None:
            data["certificates"] = dict(extras.certificates)
    return data
