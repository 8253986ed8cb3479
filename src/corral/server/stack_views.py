"""JSON shapes of stacks, services and containers, joining what Corral wants (slots) with what agents report.

Why a module: the REST API, the CLI's `ps` and the event stream must show the same state, host, exit code and
reason for a container; this is the one place that joins slot, observed container and host.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from corral.model.entities import Host, ObservedContainer
from corral.model.errors import CorralError
from corral.model.stack import Service, SlotRecord, Stack
from corral.orchestrator.rules import parse_rules
from corral.runtime.labels import CONTAINER as CONTAINER_LABEL
from corral.store.repository import Store
from corral.store.stacks import StackStore


@dataclass(frozen=True)
class EnvironmentState:
    hosts: dict[str, Host]
    services: list[Service]
    slots: list[SlotRecord]
    observed: dict[str, ObservedContainer]  # slot id -> container on the slot's host

    @classmethod
    def load(cls, store: Store, stacks: StackStore, environment_id: str | None) -> EnvironmentState:
        hosts = {h.id: h for h in store.list_hosts(environment_id)}
        slots = stacks.list_slots(environment_id=environment_id)
        reported: dict[tuple[str, str], ObservedContainer] = {}
        for host_id, container in store.list_all_host_containers(environment_id):
            slot_id = container.labels.get(CONTAINER_LABEL)
            if slot_id and (reported.get((host_id, slot_id)) is None or container.state == "running"):
                reported[(host_id, slot_id)] = container
        observed = {
            r.slot.id: reported[(r.slot.host_id, r.slot.id)] for r in slots if (r.slot.host_id, r.slot.id) in reported
        }
        return cls(hosts, stacks.list_services(environment_id=environment_id), slots, observed)

    def slots_of(self, service_id: str) -> list[SlotRecord]:
        return [r for r in self.slots if r.service_id == service_id]


def is_global_service(service: Service) -> bool:
    """`io.rancher.scheduler.global: true`: one container per matching host, whatever the scale says."""
    try:
        return parse_rules(service.spec.launch.labels, stack=service.stack, service=service.name).global_
    except CorralError:
        return False


def container_state(record: SlotRecord, observed: ObservedContainer | None, host: Host | None) -> str:
    if observed is not None:
        return observed.state
    if host is None:
        return "lost"
    return "pending" if record.running else "stopped"


def slot_container_view(record: SlotRecord, state: EnvironmentState) -> dict[str, Any]:
    observed = state.observed.get(record.slot.id)
    host = state.hosts.get(record.slot.host_id)
    return {
        "id": record.slot.id,
        "name": record.slot.name,
        "environment_id": record.slot.environment_id,
        "stack": record.slot.stack,
        "stack_id": record.stack_id,
        "service": record.slot.service,
        "service_id": record.service_id,
        "index": record.slot.index,
        "host_id": record.slot.host_id,
        "host": host.name if host is not None else "",
        "host_address": host.address if host is not None else "",
        "state": container_state(record, observed, host),
        "desired": "running" if record.running else "stopped",
        "docker_id": observed.docker_id if observed is not None else "",
        "ip": observed.ip if observed is not None else "",
        "image": observed.image if observed is not None else "",
        "status": observed.status if observed is not None else "",
        "exit_code": observed.exit_code if observed is not None else None,
        "restart_count": observed.restart_count if observed is not None else 0,
        "config_hash": record.slot.config_hash,
        "up_to_date": observed is not None and observed.labels.get("io.corral.config-hash") == record.slot.config_hash,
        "reason": record.reason,
        "created_at": record.created_at,
    }


def service_view(service: Service, state: EnvironmentState) -> dict[str, Any]:
    slots = state.slots_of(service.id)
    running = sum(1 for r in slots if (c := state.observed.get(r.slot.id)) is not None and c.state == "running")
    is_global = is_global_service(service)
    desired = len(slots) if is_global else service.scale
    if desired == 0 and not is_global:
        phase = "inactive"
    elif running == desired and len(slots) == desired and not service.reason:
        phase = "active"
    else:
        phase = "activating"
    launch = service.spec.launch
    return {
        "id": service.id,
        "name": service.name,
        "stack": service.stack,
        "stack_id": service.stack_id,
        "environment_id": service.environment_id,
        "state": phase,
        "scale": desired,
        "global": is_global,
        "running": running,
        "reason": service.reason,
        "image": launch.image,
        "depends_on": list(service.spec.depends_on),
        "ports": [
            f"{p.host_port}:{p.container_port}/{p.protocol}" if p.host_port else f"{p.container_port}/{p.protocol}"
            for p in launch.ports
        ],
        "config_hash": launch.config_hash(),
        "containers": [slot_container_view(r, state) for r in slots],
    }


def stack_view(stack: Stack, state: EnvironmentState) -> dict[str, Any]:
    services = [service_view(s, state) for s in state.services if s.stack_id == stack.id]
    phases = {s["state"] for s in services}
    phase = "active" if phases <= {"active", "inactive"} else "activating"
    return {
        "id": stack.id,
        "name": stack.name,
        "environment_id": stack.environment_id,
        "state": phase,
        "warnings": list(stack.warnings),
        "services": services,
        "created_at": stack.created_at,
        "updated_at": stack.updated_at,
    }
