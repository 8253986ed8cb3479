"""The overlay connectivity reports of agents, as the server keeps and shows them.

Why its own module: each agent reports only its own probes (`connectivity` message, model/protocol.py), but a
pair of hosts is broken when *either* side cannot reach the other (an fdb entry lost on B breaks A->B replies as
much as B->A requests). `parse_connectivity` checks a report; `overlay_connectivity` (pure) joins a host's report
with its peers' reports about it, for the host view's `overlay.peers` and `overlay.broken`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from corral.model.entities import Host
from corral.model.errors import InvalidInput

MAX_PEERS = 10_000


def parse_connectivity(data: object) -> dict[str, dict[str, Any]]:
    """A `connectivity` message's data -> {peer host id: {ok, since, error}}; InvalidInput naming the field."""
    if not isinstance(data, dict) or not isinstance(data.get("peers"), dict):
        raise InvalidInput("connectivity needs a peers object", field="peers")
    peers: dict[str, Any] = data["peers"]
    if len(peers) > MAX_PEERS:
        raise InvalidInput(f"connectivity lists more than {MAX_PEERS} peers", field="peers")
    result: dict[str, dict[str, Any]] = {}
    for host_id, status in peers.items():
        if not isinstance(status, dict) or not isinstance(status.get("ok"), bool):
            raise InvalidInput(f"connectivity peers[{host_id!r}] needs a boolean ok", field=f"peers.{host_id}")
        since = status.get("since", 0.0)
        error = status.get("error", "")
        if isinstance(since, bool) or not isinstance(since, int | float) or not isinstance(error, str):
            raise InvalidInput(
                f"connectivity peers[{host_id!r}] needs a number since and a string error", field=f"peers.{host_id}"
            )
        result[str(host_id)] = {"ok": status["ok"], "since": float(since), "error": error[:500]}
    return result


def overlay_connectivity(host: Host, hosts: Iterable[Host]) -> dict[str, Any]:
    """`peers`: this host's own probe results by peer name; `broken`: names of peers whose pair is broken as seen
    from either side; `reported`: whether any report about this host's pairs exists (pure). A list of hosts asks
    this of each of its hosts with the same `hosts`: the peers and the reports about each host are indexed once
    per list, not once per host (a page of 100 of 1,000 hosts read 100,000 entries)."""
    index = _index_of(hosts)
    others = index.by_id.get(host.environment_id, {})
    peers: dict[str, dict[str, Any]] = {}
    broken: set[str] = set()
    reported = False
    for peer_id, status in host.connectivity.items():
        peer = others.get(peer_id)
        if peer is None or peer_id == host.id:
            continue  # a host removed since the report
        reported = True
        peers[peer.name] = dict(status)
        if not status.get("ok", False):
            broken.add(peer.name)
    for peer, about_me in index.about.get((host.environment_id, host.id), ()):
        reported = True
        if not about_me.get("ok", False):
            broken.add(peer.name)
    return {"peers": dict(sorted(peers.items())), "broken": sorted(broken), "reported": reported}


class _Index:
    """Hosts by environment and id, and each host's peers' reports about it."""

    def __init__(self, hosts: Iterable[Host]) -> None:
        self.by_id: dict[str, dict[str, Host]] = {}
        for host in hosts:
            self.by_id.setdefault(host.environment_id, {})[host.id] = host
        self.about: dict[tuple[str, str], list[tuple[Host, dict[str, Any]]]] = {}
        for environment_id, members in self.by_id.items():
            for peer in members.values():
                for target, status in peer.connectivity.items():
                    if target in members and target != peer.id:
                        self.about.setdefault((environment_id, target), []).append((peer, status))


_LAST: list[tuple[object, _Index]] = []  # the list of hosts asked about last, and its index


def _index_of(hosts: Iterable[Host]) -> _Index:
    if not isinstance(hosts, list | tuple):
        return _Index(hosts)
    last = _LAST[0] if _LAST else None
    if last is not None and last[0] is hosts:
        return last[1]
    index = _Index(hosts)
    _LAST[:] = [(hosts, index)]
    return index
