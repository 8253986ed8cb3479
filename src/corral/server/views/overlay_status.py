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
    from either side; `reported`: whether any report about this host's pairs exists (pure)."""
    others = {h.id: h for h in hosts if h.id != host.id and h.environment_id == host.environment_id}
    peers: dict[str, dict[str, Any]] = {}
    broken: set[str] = set()
    reported = False
    for peer_id, status in host.connectivity.items():
        peer = others.get(peer_id)
        if peer is None:
            continue  # a host removed since the report
        reported = True
        peers[peer.name] = dict(status)
        if not status.get("ok", False):
            broken.add(peer.name)
    for peer in others.values():
        about_me = peer.connectivity.get(host.id)
        if about_me is None:
            continue
        reported = True
        if not about_me.get("ok", False):
            broken.add(peer.name)
    return {"peers": dict(sorted(peers.items())), "broken": sorted(broken), "reported": reported}
