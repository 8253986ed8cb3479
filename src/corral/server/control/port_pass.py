"""Random host ports for the slots of `ports: ["80"]` services: read the in-memory state, run the pure allocator
(orchestrator/host_ports.py), store what changed in `container_slots.host_ports`.

Why after the orchestrator's pass and level-triggered: a slot gets its ports in the same pass that placed it (before
the desired sets are pushed), a slot that moved or whose service changed its ports is corrected on the next pass,
and nothing depends on remembering what was done before. The agent binds them (runtime/containers.py) and recreates
a container whose ports differ (label `io.corral.host-ports`).
"""

from __future__ import annotations

import logging
from collections import defaultdict

from corral.model.stack import LaunchConfig, Service, SlotRecord
from corral.orchestrator.host_ports import PortNeed, PortRange, allocate_host_ports
from corral.orchestrator.upgrade_steps import launch_for, previous_spec
from corral.state.reads import StateReads
from corral.store.stacks import StackStore

log = logging.getLogger("corral.host_ports")


def random_ports(launch: LaunchConfig) -> tuple[tuple[int, str], ...]:
    """The (container port, protocol) pairs a launch config publishes on a host port of the server's choosing."""
    return tuple(dict.fromkeys((p.container_port, p.protocol) for p in launch.ports if p.host_port is None))


class PortPass:
    def __init__(self, stacks: StackStore, reads: StateReads, port_range: PortRange) -> None:
        self.stacks = stacks
        self.reads = reads
        self.port_range = port_range
        self._reasons: dict[str, str] = {}  # slot id -> why it lacks a port (logged when it changes)

    def assign(self, records: list[SlotRecord] | None = None, services: list[Service] | None = None) -> None:
        services_by_id = {s.id: s for s in (services if services is not None else self.reads.list_services())}
        previous = {s.id: previous_spec(s) for s in services_by_id.values() if s.upgrade}
        fixed: dict[str, set[tuple[int, str]]] = defaultdict(set)
        needs: list[PortNeed] = []
        by_id: dict[str, SlotRecord] = {}
        for record in records if records is not None else self.reads.list_slots():
            service = services_by_id.get(record.service_id)
            if service is None:
                continue
            launch = launch_for(service, record.slot, previous.get(service.id))
            fixed[record.slot.host_id] |= launch.published_ports()
            wanted = random_ports(launch)
            if wanted or record.host_ports:
                needs.append(PortNeed(record.slot.id, record.slot.host_id, wanted, record.host_ports))
                by_id[record.slot.id] = record
        allocation = allocate_host_ports(needs, fixed, self.port_range)
        changed = {sid: ports for sid, ports in allocation.ports.items() if ports != by_id[sid].host_ports}
        if changed:
            self.stacks.set_slot_host_ports(changed)
            for slot_id, ports in changed.items():
                shown = ", ".join(f"{h}->{c}/{p}" for c, p, h in ports) or "none"
                log.info("%s: host ports %s", by_id[slot_id].slot.name, shown)
        for slot_id, reason in allocation.exhausted.items():
            if self._reasons.get(slot_id) != reason:
                log.warning("%s: %s", by_id[slot_id].slot.name, reason)
        self._reasons = dict(allocation.exhausted)
