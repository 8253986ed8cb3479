"""Which secret values each host receives with its desired set: only those its own containers name.

Why here and not in the agent's message builder: the values are unsealed from the store (store/secrets.py) at the
moment of sending, per environment once, and leave the server only inside a `desired` message on the host's
pinned TLS websocket (never logged). A host whose containers name no secret receives none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from corral.store.repository import Store
from corral.store.secrets import SecretStore


def secret_names(entries: Iterable[Mapping[str, Any]]) -> set[str]:
    """The secrets named by the launch configs of desired entries (`to_dict` form)."""
    return {
        str(mount.get("source", ""))
        for entry in entries
        for mount in entry["launch"].get("files", ())
        if mount.get("kind") == "secret"
    }


def secrets_by_host(
    store: Store, secrets: SecretStore | None, desired: Mapping[str, list[dict[str, Any]]]
) -> dict[str, dict[str, str]]:
    """host id -> {secret name: value} for the hosts whose desired containers name secrets."""
    wanted = {host_id: names for host_id, entries in desired.items() if (names := secret_names(entries))}
    if secrets is None or not wanted:
        return {}
    environments = {h.id: h.environment_id for h in store.hosts_by_id(wanted).values()}
    result: dict[str, dict[str, str]] = {}
    for environment_id in set(environments.values()):
        hosts = [h for h, e in environments.items() if e == environment_id]
        values = secrets.values(environment_id, set().union(*(wanted[h] for h in hosts)))
        for host_id in hosts:
            result[host_id] = {name: values[name] for name in sorted(wanted[host_id]) if name in values}
    return result
