"""The repositories' read methods, answered from the in-memory state instead of the database.

Why the same signatures: the orchestrator, network and port passes read through these (the passes "read the
snapshot, never the database"), and code that has a `Store`/`StackStore` today reads the same entities in the same
order from here, without a query. Each call reads one snapshot; callers that need several lists consistent with one
another take `snapshot()` once and ask it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from corral.model.entities import Environment, Host, ObservedContainer
from corral.model.errors import NotFound
from corral.model.stack import Service, SlotRecord
from corral.state.cluster import ClusterState
from corral.state.snapshot import ClusterSnapshot


class StateReads:
    def __init__(self, state: ClusterState, pinned: ClusterSnapshot | None = None) -> None:
        self.state = state
        self._pinned = pinned

    def snapshot(self) -> ClusterSnapshot:
        return self._pinned if self._pinned is not None else self.state.snapshot()

    def pinned(self) -> StateReads:
        """These reads over one snapshot: several lists that agree with one another (a view joins four)."""
        return StateReads(self.state, self.snapshot())

    def list_environments(self) -> list[Environment]:
        return self.snapshot().environments()

    def get_environment(self, ref: str) -> Environment:
        """By id or by name, as `Store.get_environment`."""
        snapshot = self.snapshot()
        found: Environment | None = snapshot.get("environments", ref)
        if found is None:
            found = next((e for e in snapshot.environments() if e.name == ref), None)
        if found is None:
            raise NotFound(f"environment {ref!r} not found", field="environment")
        return found

    def list_hosts(self, environment_id: str | None = None, *, container_counts: bool = True) -> list[Host]:
        snapshot = self.snapshot()
        hosts = snapshot.hosts(environment_id)
        if not container_counts:
            return hosts
        return [_counted(host, snapshot) for host in hosts]

    def get_host(self, host_id: str) -> Host:
        """As `Store.get_host` (with its container count)."""
        snapshot = self.snapshot()
        found: Host | None = snapshot.get("hosts", host_id)
        if found is None:
            raise NotFound(f"host {host_id!r} not found", field="host")
        return _counted(found, snapshot)

    def reported_container(self, host_id: str, docker_id: str) -> ObservedContainer | None:
        """As `Store.reported_container`."""
        found: ObservedContainer | None = self.snapshot().get("containers", (host_id, docker_id))
        return found

    def hosts_by_id(self, host_ids: Iterable[str]) -> dict[str, Host]:
        snapshot = self.snapshot()
        found = {host_id: snapshot.get("hosts", host_id) for host_id in set(host_ids)}
        return {host_id: _counted(host, snapshot) for host_id, host in found.items() if host is not None}

    def get_service(self, service_id: str) -> Service:
        """As `StackStore.get_service`."""
        found: Service | None = self.snapshot().get("services", service_id)
        if found is None:
            raise NotFound(f"service {service_id!r} not found", field="service")
        return found

    def list_services(self, *, environment_id: str | None = None, stack_id: str | None = None) -> list[Service]:
        return self.snapshot().services(environment_id=environment_id, stack_id=stack_id)

    def list_slots(
        self, *, environment_id: str | None = None, host_id: str | None = None, service_id: str | None = None
    ) -> list[SlotRecord]:
        return self.snapshot().slots(environment_id=environment_id, host_id=host_id, service_id=service_id)


def _counted(host: Host, snapshot: ClusterSnapshot) -> Host:
    return dataclasses.replace(host, container_count=snapshot.container_count(host.id))
