"""JSON shapes of stacks, services and containers, joining what Corral wants (slots) with what agents report.

Why a module: the REST API, the CLI's `ps` and the event stream must show the same state, host, exit code and
reason for a container; this is the one place that joins slot, observed container and host.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from corral.model.entities import Host, ObservedContainer
from corral.model.errors import CorralError
from corral.model.policy import service_findings
from corral.model.reasons import parse_unplaced
from corral.model.service_state import (
    ROLLBACK_STATES,
    UPGRADE_STATES,
    ServiceFacts,
    ServiceState,
    service_state,
    stack_state,
)
from corral.model.stack import LaunchConfig, Service, ServiceSpec, SlotRecord, Stack
from corral.model.standalone import is_standalone
from corral.orchestrator.restarts import RestartProgress
from corral.orchestrator.rules import parse_rules
from corral.runtime.labels import is_start_once
from corral.server.views.environment_state import EnvironmentState
from corral.server.views.paging import preencoded


def is_global_service(service: Service) -> bool:
    """`io.rancher.scheduler.global: true`: one container per matching host, whatever the scale says."""
    try:
        return parse_rules(service.spec.launch.labels, stack=service.stack, service=service.name).global_
    except CorralError:
        return False


STARTING_SECONDS = 15.0  # an exited container asked to start this recently shows "starting"


def container_state(record: SlotRecord, observed: ObservedContainer | None, host: Host | None, now: float = 0.0) -> str:
    """What the engine reports, or the transition Corral has asked for and the engine has not finished: `stopping`
    (asked to stop, still running), `starting` (asked to start: created, or exited before the request's answer)."""
    if observed is None:
        if host is None:
            return "lost"
        return "pending" if record.running else "stopped"
    if not record.running and observed.state in ("running", "restarting"):
        return "stopping"
    if record.running and not record.reason and not record.retired:
        if observed.state == "created":
            return "starting"
        asked = record.start_requested_at
        if observed.state == "exited" and asked and now - asked < STARTING_SECONDS:
            return "starting"
    return observed.state


def slot_container_view(record: SlotRecord, state: EnvironmentState) -> dict[str, Any]:
    observed = state.observed.get(record.slot.id)
    host = state.hosts.get(record.slot.host_id)
    return {
        "id": record.slot.id,
        "name": record.slot.name,
        "environment_id": record.slot.environment_id,
        "stack": "" if is_standalone(record.slot.stack) else record.slot.stack,  # its hidden stack is no user's
        "stack_id": record.stack_id,
        "service": record.slot.service,
        "service_id": record.service_id,
        "index": record.slot.index,
        "host_id": record.slot.host_id,
        "host": host.name if host is not None else "",
        "host_address": host.address if host is not None else "",
        "state": container_state(record, observed, host, state.now),
        "desired": "running" if record.running else "stopped",
        "start_requested_at": record.start_requested_at,  # grows with each start/restart (the CLI waits on it)
        "docker_id": observed.docker_id if observed is not None else "",
        "ip": observed.ip if observed is not None else "",
        "overlay_ip": record.ip,  # the address the IPAM gave it (server/control/network_pass.py)
        "ports": published_ports_view(
            service.spec.launch if (service := state.services_by_id.get(record.service_id)) is not None else None,
            record.host_ports,
            host.address if host is not None else "",
        ),
        "image": observed.image if observed is not None else "",
        "status": observed.status if observed is not None else "",
        "exit_code": observed.exit_code if observed is not None else None,
        "restart_count": observed.restart_count if observed is not None else 0,
        "health": observed.health if observed is not None else "",
        "health_reason": observed.health_reason if observed is not None else "",
        "config_hash": record.slot.config_hash,
        "up_to_date": observed is not None and observed.labels.get("io.corral.config-hash") == record.slot.config_hash,
        "reason": record.reason,
        "created_at": record.created_at,
        "retired": record.retired,
        "standalone": is_standalone(record.slot.stack),  # `corral run`: listed by its own id with standalone=true
    }


def slot_container_json(record: SlotRecord, state: EnvironmentState) -> object:
    """`slot_container_view` encoded once, for list bodies (`paging.dumps` splices it in as it is): built again only
    when what the view shows changed: the slot or its reported container is another object (the in-memory state's
    snapshots share every entity that did not change), its host's name or address, its service's launch config (a
    scale leaves it as it was), or a "starting" window closed. A list of 30,000 containers after one change
    re-encodes the ones that changed, not all of them."""
    observed = state.observed.get(record.slot.id)
    host = state.hosts.get(record.slot.host_id)
    service = state.services_by_id.get(record.service_id)
    placed = (host.name, host.address) if host is not None else None
    launch = service.spec.launch if service is not None else None
    made = _CONTAINER_JSON.get(record.slot.id)
    if (
        made is not None
        and made[0] is record
        and made[1] is observed
        and made[2] == placed
        and made[3] is launch
        and state.now < made[4]
    ):
        return made[5]
    fragment = preencoded(slot_container_view(record, state))
    asked = record.start_requested_at
    waits_to_start = observed is not None and observed.state == "exited" and record.running and bool(asked)
    until = asked + STARTING_SECONDS if waits_to_start and state.now < asked + STARTING_SECONDS else math.inf
    if len(_CONTAINER_JSON) >= MAX_ENCODED_CONTAINERS:
        _CONTAINER_JSON.clear()  # removed slots' entries go too; the next lists encode what is left once more
    _CONTAINER_JSON[record.slot.id] = (record, observed, placed, launch, until, fragment)
    return fragment


# slot id -> (the record, container, host's name and address, and launch config its view was built from, valid
# until, its JSON)
_CONTAINER_JSON: dict[
    str, tuple[SlotRecord, ObservedContainer | None, tuple[str, str] | None, LaunchConfig | None, float, Any]
] = {}
MAX_ENCODED_CONTAINERS = 1_000_000


def settled(observed: ObservedContainer | None, service: Service) -> bool:
    """The container does what its service wants: it runs, or it ran once to a clean end (`start_once`, or
    `run_once`: others wait for it to complete)."""
    if observed is None:
        return False
    if observed.state == "running":
        return True
    launch = service.spec.launch
    return observed.state == "exited" and observed.exit_code == 0 and (launch.run_once or is_start_once(launch.labels))


def overdue(service: Service, state: EnvironmentState, now: float, deadline: float) -> list[str]:
    """Why containers of the service are still not running `deadline` seconds after they were last changed: a
    transitional state with a deadline, so a service never stays "activating" without saying what is wrong."""
    problems = []
    for record in state.slots_of(service.id):
        observed = state.observed.get(record.slot.id)
        since = max(record.created_at, record.updated_at)
        if not record.running or settled(observed, service) or now - since < deadline:
            continue
        if observed is None:
            what = record.reason or "no container was created yet"
        elif observed.state in ("exited", "dead", "created"):
            code = f" (exit code {observed.exit_code})" if observed.exit_code is not None else ""
            what = f"{observed.state}{code}" + (f": {record.reason}" if record.reason else "")
        else:
            continue  # restarting, paused, removing: Docker is on it
        problems.append(f"{record.slot.name} not running after {deadline:.0f} s: {what}")
    return problems


def health_summary(service: Service, slots: list[SlotRecord], state: EnvironmentState) -> tuple[int | None, list[str]]:
    """How many containers are healthy (None without a health check), and a line for each one that is not."""
    if service.spec.health() is None:
        return None, []
    healthy = 0
    problems = []
    for record in slots:
        observed = state.observed.get(record.slot.id)
        health = observed.health if observed is not None else ""
        if health == "healthy":
            healthy += 1
        elif observed is not None and observed.state == "running":
            why = f": {observed.health_reason}" if observed.health_reason else ""
            problems.append(f"{record.slot.name} is {health or 'not checked yet'}{why}")
    return healthy, problems


def service_view(service: Service, state: EnvironmentState, *, encoded: bool = False) -> dict[str, Any]:
    """`encoded`: its containers as `slot_container_json` (a list body that goes straight to `dumps`), and the view
    made once for every state with the same mark (environment_state.py) until time changes what it says: a list
    of 600 services after one change makes the views of the services that changed, not all of them."""
    mark = _mark_of(service, state) if encoded else None
    if mark is None:
        return _service_view(service, state, encoded=encoded)
    made = _SERVICE_VIEWS.get(service.id)
    if made is not None and made[0] == mark and state.now < made[1]:
        return made[2]
    view = _service_view(service, state, encoded=True)
    if len(_SERVICE_VIEWS) >= MAX_SERVICE_VIEWS:
        _SERVICE_VIEWS.clear()
    _SERVICE_VIEWS[service.id] = (mark, _view_until(service, state), view)
    return view


# service id -> (the marks its view was made at, valid until, the view with its containers encoded)
_SERVICE_VIEWS: dict[str, tuple[tuple[int, int], float, dict[str, Any]]] = {}
MAX_SERVICE_VIEWS = 100_000


def all_containers_json(state: EnvironmentState) -> list[object] | None:
    """Every slot's `slot_container_json` in `slot_order`, taken from its service's reused view (`service_view`):
    an unpaged list of 30,000 containers asks 600 services, not 30,000 slots, whether they changed. None when that
    order cannot be had from the services (two services of one name in one list: several environments; a slot
    whose service is gone)."""
    listed: list[object] = []
    last: tuple[str, str] | None = None
    for service in sorted(state.services, key=lambda s: (s.stack, s.name)):
        if (service.stack, service.name) == last:
            return None
        last = (service.stack, service.name)
        if state.slots_of(service.id):
            listed.extend(service_view(service, state, encoded=True)["containers"])
    return listed if len(listed) == len(state.slots) else None


def _mark_of(service: Service, state: EnvironmentState) -> tuple[int, int] | None:
    """The service's mark and its primary's (a sidekick's view shows its primary's scale), None when untracked."""
    marks = state.marks
    if marks is None or service.id not in marks or state.services_by_id.get(service.id) is not service:
        return None
    primary = _primary_of(service, state)
    return (marks[service.id], marks.get(primary.id, -1) if primary is not None else 0)


def _view_until(service: Service, state: EnvironmentState) -> float:
    """When time alone changes the service's view: a container's "starting" window closes, or one that is still
    not running reaches its deadline (`overdue`)."""
    until = math.inf
    for record in state.slots_of(service.id):
        observed = state.observed.get(record.slot.id)
        since = max(record.created_at, record.updated_at)
        if record.running and not settled(observed, service) and state.now - since < state.deadline:
            until = min(until, since + state.deadline)
        asked = record.start_requested_at
        waits = observed is not None and observed.state == "exited" and record.running and bool(asked)
        if waits and state.now < asked + STARTING_SECONDS:
            until = min(until, asked + STARTING_SECONDS)
    return until


def _service_view(service: Service, state: EnvironmentState, *, encoded: bool) -> dict[str, Any]:
    records = state.slots_of(service.id)
    slots = [r for r in records if not r.retired]  # retired: old containers of an upgrade, kept for a rollback
    running = sum(1 for r in slots if settled(state.observed.get(r.slot.id), service))
    stopped = sum(1 for r in slots if not r.running and not settled(state.observed.get(r.slot.id), service))
    is_global = is_global_service(service)
    desired = len(slots) if is_global else service.scale
    primary = _primary_of(service, state)
    if primary is not None:  # a sidekick: one container beside each of its primary's, whatever its own scale
        is_global, desired = False, _desired_count(primary, state)
    healthy, unhealthy = health_summary(service, slots, state)
    facts = ServiceFacts(  # what its containers say first; an action in progress says more (below)
        desired=desired,
        is_global=is_global,
        placed=len(slots),
        settled=running,
        stopped=stopped,
        unplaced=bool(service.reason),
        unhealthy=bool(unhealthy),
    )
    phase = service_state(facts)
    errors: list[str] = []
    if phase == ServiceState.ACTIVATING:
        errors = overdue(service, state, state.now, state.deadline)
        phase = service_state(dataclasses.replace(facts, overdue=bool(errors)))
    elif phase == ServiceState.DEGRADED:
        errors = unhealthy
    if service.state != ServiceState.ACTIVE:  # an upgrade, rollback or restart in progress
        phase = service_state(dataclasses.replace(facts, stored=service.state))
        errors = [why for why in (service.upgrade.get("reason", ""), *errors) if why]
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
        "healthy": healthy,
        "pending": 0 if is_global else max(0, desired - len(slots)),
        "unplaced": [{"indexes": indexes, "reason": why} for indexes, why in parse_unplaced(service.reason)],
        "reason": "; ".join([service.reason, *errors] if service.reason else errors),
        "image": launch.image,
        "depends_on": list(service.spec.depends_on),
        "sidekick_of": service.spec.sidekick_of,
        "sidekicks": list(service.spec.sidekicks),
        "ports": [
            f"{p.host_port}:{p.container_port}/{p.protocol}" if p.host_port else f"{p.container_port}/{p.protocol}"
            for p in launch.ports
        ],
        "config_hash": launch.config_hash(),
        "upgrade": upgrade_progress(service, records, launch.config_hash()),
        "restart": restart_progress(service),
        "containers": [(slot_container_json if encoded else slot_container_view)(r, state) for r in records],
    }


def _primary_of(service: Service, state: EnvironmentState) -> Service | None:
    name = service.spec.sidekick_of
    if name is None:
        return None
    return next((s for s in state.services if s.stack_id == service.stack_id and s.name == name), None)


def _desired_count(service: Service, state: EnvironmentState) -> int:
    if is_global_service(service):
        return sum(1 for r in state.slots_of(service.id) if not r.retired)
    return service.scale


def upgrade_progress(service: Service, records: list[SlotRecord], config_hash: str) -> dict[str, Any] | None:
    """How far a rolling upgrade is (None without one): containers on the new config, old ones left, retired."""
    if service.state not in UPGRADE_STATES | ROLLBACK_STATES or not service.upgrade:
        return None
    current = [r for r in records if not r.retired]
    return {
        "state": service.state,
        "since": service.state_since,
        "strategy": service.upgrade.get("strategy", {}),
        "upgraded": sum(1 for r in current if r.slot.config_hash == config_hash),
        "old": sum(1 for r in current if r.slot.config_hash != config_hash),
        "retired": len(records) - len(current),
        "reason": service.upgrade.get("reason", ""),
    }


def restart_progress(service: Service) -> dict[str, Any] | None:
    """How far a restart is (None without one): containers restarted, in the current batch, waiting."""
    data = service.upgrade.get("restart") if service.state == ServiceState.RESTARTING else None
    if data is None:
        return None
    progress = RestartProgress.from_dict(data)
    return {
        "since": service.state_since,
        "batch_size": progress.batch_size,
        "interval_ms": progress.interval_ms,
        "restarted": len(progress.done),
        "restarting": len(progress.batch),
        "waiting": len(progress.pending),
        "reason": service.upgrade.get("reason", ""),
    }


def stack_view(stack: Stack, state: EnvironmentState, *, encoded: bool = False) -> dict[str, Any]:
    """`encoded`: its services' containers as `slot_container_json` (a list body that goes straight to `dumps`)."""
    members = state.services_by_stack.get(stack.id, [])
    services = [service_view(s, state, encoded=encoded) for s in members]
    phase = stack_state(s["state"] for s in services)
    return {
        "id": stack.id,
        "name": stack.name,
        "environment_id": stack.environment_id,
        "state": phase,
        "warnings": list(stack.warnings),
        # dangerous fields its environment allowed (model/policy.py), for the UI's badge
        "dangerous": [danger for s in members for danger in _dangers(s)],
        "services": services,
        "created_at": stack.created_at,
        "updated_at": stack.updated_at,
        "catalog": catalog_origin_view(stack.catalog),
    }


def listed_stack(view: dict[str, Any], with_containers: bool) -> dict[str, Any]:
    """A stack as a list shows it: its services without their containers (unless asked), as Rancher's and
    Kubernetes' lists name their members rather than hold them; `GET /v1/stacks/{id}` and the container list have
    them."""
    if with_containers:
        return view
    return {**view, "services": [listed_service(s, False) for s in view["services"]]}


def listed_service(view: dict[str, Any], with_containers: bool) -> dict[str, Any]:
    """A service as a list shows it: with its counts, without its containers (unless asked; see `listed_stack`)."""
    if with_containers:
        return view
    return {key: value for key, value in view.items() if key != "containers"}


def _dangers(service: Service) -> list[str]:
    """`service_findings` described, once per spec (a list of stacks asks for every service's)."""
    made = _DANGERS.get(service.id)
    if made is not None and made[0] is service.spec:
        return made[1]
    dangers = [f.describe() for f in service_findings(service.spec)]
    if len(_DANGERS) >= MAX_SERVICE_VIEWS:
        _DANGERS.clear()
    _DANGERS[service.id] = (service.spec, dangers)
    return dangers


_DANGERS: dict[str, tuple[ServiceSpec, list[str]]] = {}


def catalog_origin_view(origin: dict[str, Any]) -> dict[str, Any]:
    """Where a stack came from ({} when not from a catalog); password and secret answers are masked.
    `upgrades` (versions it may upgrade to) is filled in by the API (server/services/catalog_service.py)."""
    if not origin:
        return {}
    hidden = set(origin.get("secrets", ()))
    answers = {k: ("********" if k in hidden and v else v) for k, v in dict(origin.get("answers", {})).items()}
    keys = ("catalog", "template", "version", "version_name")
    return {**{k: origin.get(k, "") for k in keys}, "answers": answers, "upgrades": []}


def container_listed(
    state: EnvironmentState,
    record: SlotRecord,
    *,
    stack_id: str | None = None,
    service: str | None = None,
    host: str | None = None,
    phase: str | None = None,
    standalone: bool | None = None,
) -> bool:
    """Whether `GET /v1/containers` with these filters shows the slot's container (`service`, `host`: id or name;
    `standalone`: only standalone containers, or only services' ones)."""
    if stack_id is not None and record.stack_id != stack_id:
        return False
    if standalone is not None and is_standalone(record.slot.stack) != standalone:
        return False
    if service is not None and service not in (record.service_id, record.slot.service):
        return False
    placed = state.hosts.get(record.slot.host_id)
    if host is not None and host != record.slot.host_id and (placed is None or placed.name != host):
        return False
    return not phase or phase == container_state(record, state.observed.get(record.slot.id), placed, state.now)


def published_ports_view(
    launch: LaunchConfig | None, host_ports: tuple[tuple[int, str, int], ...], host_address: str
) -> list[str]:
    """A container's published ports as views and `corral ps` show them: `HOSTIP:PORT->CONTAINER/proto`."""
    shown: list[str] = []
    random_ip: dict[tuple[int, str], str] = {}
    for port in launch.ports if launch is not None else ():
        if port.host_port is None:
            random_ip[(port.container_port, port.protocol)] = port.host_ip
        else:
            address = port.host_ip or host_address or "0.0.0.0"
            shown.append(f"{address}:{port.host_port}->{port.container_port}/{port.protocol}")
    for container_port, protocol, host_port in host_ports:
        address = random_ip.get((container_port, protocol)) or host_address or "0.0.0.0"
        shown.append(f"{address}:{host_port}->{container_port}/{protocol}")
    return shown
