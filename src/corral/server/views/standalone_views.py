"""What the API shows of a standalone container (`corral run`), and which slot a container id names.

Why its own module: a standalone container is a service of the hidden stack (model/standalone.py) whose id is the
service's, so that it has an id before the orchestrator placed it and after its host was removed; its view is its
slot's container view (states, ports, docker id) when it has one, else a `pending` or `lost` one with the reason,
and it always says where it is pinned. The container routes of api_stacks.py and api_run.py share it.
"""

from __future__ import annotations

from typing import Any

from corral.model.entities import HostState
from corral.model.errors import NotFound
from corral.model.stack import Service, SlotRecord
from corral.server.views.environment_state import EnvironmentState
from corral.server.views.stack_views import published_ports_view, slot_container_view
from corral.store.stacks import StackStore
from corral.store.standalone import StandaloneStore

_HOST_AWAY = (HostState.RECONNECTING, HostState.DISCONNECTED, HostState.ENGINE_DOWN)


def standalone_view(service: Service, state: EnvironmentState) -> dict[str, Any]:
    """The container as the API lists it: `id` is the standalone's own (its service's), `container_id` its
    slot's while it has one. Environment values are not listed (they may hold credentials), only their names."""
    launch = service.spec.launch
    host = state.hosts.get(service.spec.pinned_host or "")
    records = [r for r in state.slots_of(service.id) if not r.retired]
    record = records[0] if records else None
    if record is not None:
        view = slot_container_view(record, state)
        if host is not None and host.state in _HOST_AWAY and view["state"] not in ("exited", "stopped"):
            view["state"] = "unknown"  # the last report is not the truth of a host that does not answer
    else:
        view = {
            "host": host.name if host is not None else "",
            "host_address": host.address if host is not None else "",
            "state": "lost" if host is None else "pending",
            "desired": "running",
            "start_requested_at": 0.0,
            "docker_id": "",
            "ip": "",
            "overlay_ip": "",
            "ports": published_ports_view(launch, (), host.address if host is not None else ""),
            "image": "",
            "status": "",
            "exit_code": None,
            "restart_count": 0,
            "health": "",
            "health_reason": "",
            "config_hash": launch.config_hash(),
            "up_to_date": False,
            "created_at": 0.0,
            "retired": False,
        }
    reason = (record.reason if record is not None else "") or service.reason
    if not reason and host is None:
        reason = "its host was removed; a standalone container is not moved to another host"
    elif not reason and host is not None and host.state in _HOST_AWAY:
        reason = f"its host {host.name} is {host.state.value}; a standalone container is not moved to another host"
    view.update(
        {
            "id": service.id,
            "container_id": record.slot.id if record is not None else "",
            "name": service.name,
            "environment_id": service.environment_id,
            "stack": "",
            "stack_id": service.stack_id,
            "service": service.name,
            "service_id": service.id,
            "index": 1,
            "host_id": service.spec.pinned_host or "",
            "standalone": True,
            "image": view["image"] or launch.image,
            "command": list(launch.command) if launch.command is not None else None,
            "env": [key for key, _ in launch.environment],
            "labels": dict(launch.labels),
            "restart": launch.restart,
            "reason": reason,
        }
    )
    if not view["created_at"]:
        view["created_at"] = service.state_since
    return view


def standalone_of(stacks: StackStore, container_id: str) -> Service | None:
    """The standalone container `container_id` names (its own id, or its slot's), None for other containers."""
    standalone = StandaloneStore(stacks)
    try:
        return standalone.get(container_id)
    except NotFound:
        pass
    try:
        record = stacks.get_slot(container_id)
    except NotFound:
        return None
    try:
        return standalone.get(record.service_id)
    except NotFound:
        return None


def slot_of(stacks: StackStore, container_id: str) -> SlotRecord:
    """The slot a container id names: a slot's id, or a standalone container's (NotFound when it has no slot yet)."""
    try:
        return stacks.get_slot(container_id)
    except NotFound:
        service = StandaloneStore(stacks).get(container_id)  # NotFound naming the container when it is neither
    records = stacks.list_slots(service_id=service.id)
    if not records:
        reason = f": {service.reason}" if service.reason else ""
        raise NotFound(
            f"standalone container {service.name} has no container on its host yet{reason}", field="container"
        )
    return records[0]


def standalone_listed(
    view: dict[str, Any],
    *,
    stack_id: str | None = None,
    service: str | None = None,
    host: str | None = None,
    phase: str | None = None,
) -> bool:
    """`GET /v1/containers?standalone=true` with the list's other filters, over a standalone view."""
    if stack_id is not None and view["stack_id"] != stack_id:
        return False
    if service is not None and service not in (view["id"], view["name"]):
        return False
    if host is not None and host not in (view["host_id"], view["host"]):
        return False
    return not phase or phase == view["state"]
