"""What the metadata service answers, as a pure function of the latest `network` message and the caller's address.

Why pure and separate from the HTTP server (agent/metadata.py): the shape of the answers is the part users and
catalog templates depend on (Rancher's rancher-metadata: `/latest/self/service/name`, key walks, JSON), so it is
tested without sockets. A `MetadataIndex` is built once per `NetworkState` (the agent gets a new one only when
something changed) and answers each request by walking the tree of plain values.

Tree (per version `2015-07-25`, `2015-12-19` and `latest`, which equals `2015-12-19`):
`self/{container,service,stack,host}` (only for a caller that is a known container), `containers`, `services`,
`stacks`, `hosts`. In `2015-07-25` a service lists its containers and a stack its services by name; later versions
nest the full maps. Lists can be indexed by position or by an element's `name`.

Plain text answers follow rancher-metadata's key walk: a map lists its keys one per line (keys of maps and lists end
with `/`), a list lists `INDEX=NAME` for elements with a name (else `INDEX`, or `INDEX/` for nested lists), a leaf
prints its value (booleans `true`/`false`, None as nothing). With `Accept: application/json` the node is JSON.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from corral.model.network import (
    DNS_DOMAIN,
    SERVICES_ADDRESS,
    ContainerRecord,
    NetworkState,
    ServiceRecord,
)

VERSIONS = ("2015-07-25", "2015-12-19", "latest")
_NESTED_VERSIONS = ("2015-12-19", "latest")  # services hold container maps, stacks hold service maps

Node = Any  # str | int | float | bool | None | dict[str, Node] | list[Node]


@dataclass(frozen=True)
class Answer:
    status: int
    body: str
    content_type: str

    @property
    def data(self) -> bytes:
        return self.body.encode()


def not_found(path: str, *, as_json: bool) -> Answer:
    if as_json:
        return Answer(404, json.dumps({"code": 404, "message": f"not found: {path}"}) + "\n", "application/json")
    return Answer(404, f"Not found: {path}\n", "text/plain; charset=utf-8")


class MetadataIndex:
    """The maps of one `NetworkState`, per version, with the callers it knows by overlay address."""

    def __init__(self, state: NetworkState | None) -> None:
        self.state = state
        self._by_ip: dict[str, ContainerRecord] = {}
        self._trees: dict[str, dict[str, Node]] = {}
        if state is None:
            return
        for record in state.containers:
            if record.ip:
                self._by_ip[record.ip] = record
        for version in VERSIONS:
            self._trees[version] = _tree(state, nested=version in _NESTED_VERSIONS)

    def caller(self, ip: str) -> ContainerRecord | None:
        return self._by_ip.get(ip)

    def root(self, version: str, caller_ip: str) -> dict[str, Node] | None:
        """The version's tree as `caller_ip` sees it; None for an unknown version."""
        if version not in VERSIONS:
            return None
        tree = dict(self._trees.get(version) or _empty_tree())
        record = self.caller(caller_ip)
        if record is not None:
            tree["self"] = self._self(tree, record)
        return tree

    def _self(self, tree: dict[str, Node], record: ContainerRecord) -> dict[str, Node]:
        container = _find(tree["containers"], record.name)
        service = _find(tree["services"], record.service, stack=record.stack)
        stack = _find(tree["stacks"], record.stack)
        host = _find_host(tree["hosts"], record.host_id)
        return {"container": container, "service": service, "stack": stack, "host": host}

    def answer(self, path: str, caller_ip: str, *, as_json: bool) -> Answer:
        """The answer for a GET of `path` (an URL path, query string already removed)."""
        parts = [unquote(p) for p in path.split("/") if p]
        if not parts:  # the versions, one per line
            if as_json:
                return _render(list(VERSIONS), as_json=True)
            return Answer(200, "".join(f"{v}\n" for v in VERSIONS), "text/plain; charset=utf-8")
        root = self.root(parts[0], caller_ip)
        if root is None:
            return not_found(path, as_json=as_json)
        node: Node = root
        for part in parts[1:]:
            found, node = _step(node, part)
            if not found:
                return not_found(path, as_json=as_json)
        return _render(node, as_json=as_json)


def wants_json(accept: str) -> bool:
    return "application/json" in accept.lower()


# -- building the tree -------------------------------------------------------------------------------------------


def _empty_tree() -> dict[str, Node]:
    return {"containers": [], "hosts": [], "services": [], "stacks": []}


def _tree(state: NetworkState, *, nested: bool) -> dict[str, Node]:
    services_by_key = {(s.stack, s.name): s for s in state.services}
    containers = [_container(c, services_by_key.get((c.stack, c.service))) for c in _ordered(state.containers)]
    by_service: dict[tuple[str, str], list[dict[str, Node]]] = {}
    for record, container in zip(_ordered(state.containers), containers, strict=True):
        by_service.setdefault((record.stack, record.service), []).append(container)
    services: list[dict[str, Node]] = []
    for service in sorted(state.services, key=lambda s: (s.stack, s.name)):
        members = by_service.get((service.stack, service.name), [])
        services.append(_service(service, members if nested else [str(m["name"]) for m in members]))
    stacks: list[dict[str, Node]] = []
    for stack in sorted({s.stack for s in state.services} | {c.stack for c in state.containers}):
        own = [s for s in services if s["stack_name"] == stack]
        stacks.append(
            {
                "name": stack,
                "environment_name": state.environment,
                "environment_uuid": state.environment_id,
                "services": own if nested else [str(s["name"]) for s in own],
                "system": False,
            }
        )
    return {"containers": containers, "hosts": _hosts(state), "services": services, "stacks": stacks}


def _ordered(records: tuple[ContainerRecord, ...]) -> list[ContainerRecord]:
    return sorted(records, key=lambda c: (c.stack, c.service, c.index, c.name))


def _container(record: ContainerRecord, service: ServiceRecord | None) -> dict[str, Node]:
    health = "healthy" if record.healthy else "unhealthy"
    return {
        "name": record.name,
        "uuid": record.slot_id,
        "hostname": record.name,
        "primary_ip": record.ip,
        "ips": [record.ip] if record.ip else [],
        "stack_name": record.stack,
        "service_name": record.service,
        "primary_service_name": record.primary or record.service,
        "service_index": str(record.index),
        "create_index": record.index,
        "host_uuid": record.host_id,
        "state": "running" if record.running else "stopped",
        "health_state": health,
        "labels": dict(service.labels) if service is not None else {},
        "ports": list(service.ports) if service is not None else [],
        "dns": [SERVICES_ADDRESS] if record.ip else [],
        "dns_search": [f"{record.stack}.{DNS_DOMAIN}", DNS_DOMAIN] if record.ip else [],
        "links": [*record.links, *record.external_links],
    }


def _service(service: ServiceRecord, containers: list[Any]) -> dict[str, Node]:
    return {
        "name": service.name,
        "stack_name": service.stack,
        "kind": "service",
        "fqdn": f"{service.name}.{service.stack}.{DNS_DOMAIN}",
        "image": service.image,
        "scale": service.scale,
        "labels": dict(service.labels),
        "metadata": _plain(service.metadata),
        "sidekicks": list(service.sidekicks),
        "primary_service_name": service.sidekick_of or service.name,
        "ports": list(service.ports),
        "containers": containers,
    }


def _hosts(state: NetworkState) -> list[dict[str, Node]]:
    raw = list(state.hosts)
    known = {str(h.get("host_id", "")) for h in raw}
    for member in (state.host, *state.peers):  # hosts the server sent no view of still appear with what is known
        if member.host_id not in known:
            raw.append({"host_id": member.host_id, "name": member.name, "address": member.address})
    hosts: list[dict[str, Node]] = []
    for view in sorted(raw, key=lambda h: str(h.get("name", ""))):
        host: dict[str, Node] = {str(k): _plain(v) for k, v in view.items()}
        host.setdefault("name", "")
        host.setdefault("labels", {})
        host["uuid"] = str(view.get("host_id", ""))
        host["hostname"] = str(view.get("hostname") or view.get("name", ""))
        host["agent_ip"] = str(view.get("agent_ip") or view.get("address", ""))
        hosts.append(host)
    return hosts


def _plain(value: Any) -> Node:
    """User data (rancher-compose `metadata:`) as plain JSON-able values: maps with string keys, lists, scalars."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _find(items: list[dict[str, Node]], name: str, *, stack: str | None = None) -> dict[str, Node]:
    for item in items:
        if item.get("name") == name and (stack is None or item.get("stack_name") == stack):
            return item
    return {}


def _find_host(hosts: list[dict[str, Node]], host_id: str) -> dict[str, Node]:
    return next((h for h in hosts if h.get("uuid") == host_id), {})


# -- walking and rendering ---------------------------------------------------------------------------------------


def _step(node: Node, key: str) -> tuple[bool, Node]:
    if isinstance(node, dict):
        if key in node:
            return True, node[key]
        return False, None
    if isinstance(node, list):
        if key.isdigit():
            index = int(key)
            return (True, node[index]) if index < len(node) else (False, None)
        for item in node:  # by name, as rancher-metadata allowed (`/latest/services/web/...`)
            if isinstance(item, dict) and item.get("name") == key:
                return True, item
    return False, None


def _render(node: Node, *, as_json: bool) -> Answer:
    if as_json:
        return Answer(200, json.dumps(node, sort_keys=True) + "\n", "application/json")
    return Answer(200, text_of(node), "text/plain; charset=utf-8")


def text_of(node: Node) -> str:
    """The plain-text key walk of one node."""
    if isinstance(node, dict):
        lines = sorted(quote(str(k), safe="") + ("/" if isinstance(v, dict | list) else "") for k, v in node.items())
        return "".join(f"{line}\n" for line in lines)
    if isinstance(node, list):
        out = []
        for index, item in enumerate(node):
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                out.append(f"{index}={quote(item['name'], safe='')}\n")
            elif isinstance(item, dict | list):
                out.append(f"{index}/\n")
            else:
                out.append(f"{index}\n")
        return "".join(out)
    return _leaf(node)


def _leaf(value: Node) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value):
            return str(int(value))
        return repr(value)
    return str(value)
