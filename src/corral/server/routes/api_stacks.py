"""REST routes for stacks, services and containers.

Why the shape: `PUT /v1/stacks` is `corral up` (create, or update only what changed — an unchanged service keeps
its containers); compose errors come back as 422 naming file, service and field, and nothing is stored. Every write
wakes the orchestrator, which does the actual work. What `up` checks and stores is the stack service's
(services/stacks.py), which the plan, run and catalog routes call too.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from corral.model.entities import Principal
from corral.model.errors import InvalidInput, NotFound
from corral.model.stack import Service
from corral.model.standalone import is_standalone
from corral.server.routes.common import stack_result, state_of, with_offers
from corral.server.routes.watch import versioned, watch_response
from corral.server.security.auth import require_admin
from corral.server.services.stack_requests import RollingRestart, StackFiles
from corral.server.services.stack_secrets import remove_stack_secrets
from corral.server.services.stacks import stack_service_of, stacks_of, store_of
from corral.server.shared.bodies import Strict
from corral.server.views.environment_state import EnvironmentState
from corral.server.views.paging import Paging, dumps, page, paged_body
from corral.server.views.stack_views import (
    all_containers_json,
    container_listed,
    listed_service,
    listed_stack,
    service_view,
    slot_container_json,
    slot_container_view,
    stack_view,
)
from corral.server.views.standalone_views import slot_of, standalone_listed, standalone_view
from corral.state.snapshot import ClusterSnapshot, slot_order
from corral.store.standalone import StandaloneStore

router = APIRouter(prefix="/v1")
Admin = Annotated[Principal, Depends(require_admin)]
MAX_SCALE = 1000


class ScaleBody(Strict):
    scale: int


@router.post("/stacks", status_code=201)
def create_stack(request: Request, body: StackFiles, _: Admin) -> dict[str, Any]:
    return stack_result(request, stack_service_of(request).create(body).id)


@router.put("/stacks")
def up_stack(request: Request, response: Response, body: StackFiles, _: Admin) -> dict[str, Any]:
    """Create the stack or bring it to these files; only services whose definition changed are touched."""
    stack, changed, created = stack_service_of(request).apply(body)
    if created:
        response.status_code = 201
    return {**stack_result(request, stack.id), "changed_services": changed}


LISTED_INCLUDES = frozenset({"containers"})
Include = Annotated[
    str | None,
    Query(
        max_length=64,
        description="`containers`: each service with its containers, as `GET /v1/stacks/{id}` and "
        "`GET /v1/services/{id}` show them (lists and watches give a service's counts only: a page of stacks would "
        "otherwise hold every container)",
    ),
]


@router.get("/stacks")
def list_stacks(
    request: Request,
    _: Admin,
    paging: Paging,
    environment: Annotated[str | None, Query()] = None,
    phase: Annotated[str | None, Query(alias="state", max_length=32)] = None,
    include: Include = None,
) -> Response:
    with_containers = "containers" in _includes(include)
    env_id = store_of(request).get_environment(environment).id if environment else None
    state = state_of(request, env_id)
    stacks = [s for s in state.stacks if not is_standalone(s.name)]  # api_run.py's

    def build() -> dict[str, Any]:
        views = {s.id: stack_view(s, state, encoded=True) for s in stacks} if phase else {}
        chosen = [s for s in stacks if not phase or views[s.id]["state"] == phase]
        found, token = page("stacks", chosen, lambda s: (s.name, s.id), paging)
        data = [
            with_offers(
                request, s, listed_stack(views.get(s.id) or stack_view(s, state, encoded=True), with_containers)
            )
            for s in found
        ]
        return paged_body(data, token, paging)

    if any(s.catalog for s in stacks):  # upgrade offers come from the catalogs, not from this state
        return _json(dumps(build()))
    return _json(state.rendered(("stacks", env_id, phase, paging, with_containers), build))


def _includes(include: str | None) -> frozenset[str]:
    asked = frozenset(part.strip() for part in (include or "").split(",") if part.strip())
    unknown = sorted(asked - LISTED_INCLUDES)
    if unknown:
        raise InvalidInput(
            f"include: unknown {', '.join(unknown)} (known: {', '.join(sorted(LISTED_INCLUDES))})", field="include"
        )
    return asked


def _json(body: bytes) -> Response:
    return Response(content=body, media_type="application/json")


@router.get("/stacks/{stack_id}")
def get_stack(request: Request, stack_id: str, _: Admin) -> dict[str, Any]:
    return stack_result(request, stack_id)


@router.delete("/stacks/{stack_id}", status_code=204)
def delete_stack(
    request: Request,
    stack_id: str,
    _: Admin,
    keep_volumes: Annotated[bool, Query(description="Keep the stack's volumes (removed with it otherwise).")] = False,
) -> Response:
    stack = stacks_of(request).get_stack(stack_id)
    stacks_of(request).delete_stack(stack.id)
    request.app.state.volumes.stack_removed(stack.environment_id, stack.name, keep_volumes=keep_volumes)
    remove_stack_secrets(stack_service_of(request).secrets, stack.environment_id, stack.name)
    stack_service_of(request).wake()
    request.app.state.bus.publish("stack", "removed", {"id": stack.id, "name": stack.name}, stack.environment_id)
    return Response(status_code=204)


def _scope(request: Request, environment: str | None, stack: str | None) -> tuple[str | None, str | None]:
    """(environment id, stack id) of optional `environment` and `stack` query filters."""
    if stack and not environment:
        raise InvalidInput("filtering by stack needs an environment", field="environment")
    env_id = store_of(request).get_environment(environment).id if environment else None
    stack_id = stacks_of(request).find_stack(env_id, stack).id if stack and env_id else None
    return env_id, stack_id


@router.get("/services")
def list_services(
    request: Request,
    _: Admin,
    paging: Paging,
    environment: Annotated[str | None, Query()] = None,
    stack: Annotated[str | None, Query()] = None,
    phase: Annotated[str | None, Query(alias="state", max_length=32)] = None,
    watch: Annotated[bool, Query(description="Stream the changes (NDJSON) instead of listing.")] = False,
    since_version: Annotated[str | None, Query(max_length=20, description="Watch from this version.")] = None,
    include: Include = None,
) -> Response:
    """The services (`X-Corral-Version`: the state version of the answer); `watch=true` streams their changes
    after `since_version` (server/routes/watch.py)."""
    with_containers = "containers" in _includes(include)
    env_id, stack_id = _scope(request, environment, stack)

    def chosen(state: EnvironmentState) -> list[tuple[Service, dict[str, Any] | None]]:
        services = [s for s in state.services if (s.stack_id == stack_id if stack_id else not is_standalone(s.stack))]
        views = {s.id: service_view(s, state) for s in services} if phase else {}
        return [(s, views.get(s.id)) for s in services if not phase or views[s.id]["state"] == phase]

    if watch:

        def at(snapshot: ClusterSnapshot) -> dict[str, Any]:
            state = EnvironmentState.at_snapshot(stacks_of(request), request.app.state.cluster, snapshot, env_id)
            return {s.id: listed_service(view or service_view(s, state), with_containers) for s, view in chosen(state)}

        return watch_response(request, since_version, at)
    state = state_of(request, env_id)

    def build() -> dict[str, Any]:
        found, token = page(
            "services", chosen(state), lambda item: (item[0].stack, item[0].position, item[0].id), paging
        )
        views = [listed_service(view or service_view(s, state, encoded=True), with_containers) for s, view in found]
        return paged_body(views, token, paging)

    key = ("services", env_id, stack_id, phase, paging, with_containers)
    return versioned(_json(state.rendered(key, build)), state.version)


@router.get("/services/{service_id}")
def get_service(request: Request, service_id: str, _: Admin) -> dict[str, Any]:
    return _service_result(request, stacks_of(request).get_service(service_id))


@router.post("/services/{service_id}/scale")
def scale_service(request: Request, service_id: str, body: ScaleBody, _: Admin) -> dict[str, Any]:
    if not 0 <= body.scale <= MAX_SCALE:
        raise InvalidInput(f"scale must be between 0 and {MAX_SCALE}", field="scale")
    return _service_result(request, stack_service_of(request).scale(service_id, body.scale))


def _service_result(request: Request, service: Service) -> dict[str, Any]:
    """The view of one service from its own rows (a sidekick's view needs its primary: the environment's state)."""
    if service.spec.sidekick_of is not None:
        return service_view(service, state_of(request, service.environment_id))
    return service_view(service, EnvironmentState.of_service(store_of(request), stacks_of(request), service))


@router.post("/services/{service_id}/restart")
def restart_service(request: Request, service_id: str, _: Admin, body: RollingRestart | None = None) -> dict[str, Any]:
    """All containers at once, or in batches with a body (a rolling restart): stored with the service, which is
    `restarting` until the orchestrator's passes are done (orchestrator/restarts.py, orchestrator/upgrade_steps.py)."""
    stacks = stacks_of(request)
    service = stacks.get_service(service_id)
    records = stacks.list_slots(service_id=service.id)
    slot_ids = [r.slot.id for r in sorted(records, key=lambda r: r.slot.index) if not r.retired]
    stack_service_of(request).request_restart(service, slot_ids, body)
    return _service_result(request, stacks.get_service(service.id))


@router.get("/containers")
def list_containers(
    request: Request,
    _: Admin,
    paging: Paging,
    environment: Annotated[str | None, Query()] = None,
    stack: Annotated[str | None, Query()] = None,
    service: Annotated[str | None, Query(description="A service's id or name.")] = None,
    host: Annotated[str | None, Query(description="A host's id or name.")] = None,
    phase: Annotated[str | None, Query(alias="state", max_length=32)] = None,
    watch: Annotated[bool, Query(description="Stream the changes (NDJSON) instead of listing.")] = False,
    since_version: Annotated[str | None, Query(max_length=20, description="Watch from this version.")] = None,
    standalone: Annotated[
        bool | None, Query(description="true: only standalone containers (`corral run`), false: only services'.")
    ] = None,
) -> Response:
    """The containers (`X-Corral-Version`: the state version of the answer); `watch=true` streams their changes
    after `since_version` (server/routes/watch.py). Standalone containers are listed with `standalone: true`; with
    `standalone=true` each is listed once by its own id, also before it is placed and after its host is gone."""
    env_id, stack_id = _scope(request, environment, stack)
    filters: dict[str, Any] = {"stack_id": stack_id, "service": service, "host": host, "phase": phase}
    if standalone and not watch:
        return _standalone_list(request, env_id, paging, filters)
    if standalone is not None:
        filters["standalone"] = standalone
    if watch:

        def at(snapshot: ClusterSnapshot) -> dict[str, Any]:
            state = EnvironmentState.at_snapshot(stacks_of(request), request.app.state.cluster, snapshot, env_id)
            listed = [r for r in state.slots if container_listed(state, r, **filters)]
            return {r.slot.id: slot_container_view(r, state) for r in listed}

        return watch_response(request, since_version, at)
    state = state_of(request, env_id)

    def build() -> dict[str, Any]:
        filtered = any(value is not None for value in filters.values())
        every = all_containers_json(state) if not filtered and not paging.paged else None
        if every is not None:
            return paged_body(every, None, paging)
        chosen = [r for r in state.slots if container_listed(state, r, **filters)] if filtered else state.slots
        found, token = page("containers", chosen, slot_order, paging, presorted=True)
        return paged_body([slot_container_json(r, state) for r in found], token, paging)

    body = state.rendered(("containers", env_id, stack_id, service, host, phase, paging), build)
    return versioned(_json(body), state.version)


def _standalone_list(request: Request, env_id: str | None, paging: Paging, filters: dict[str, Any]) -> Response:
    state = state_of(request, env_id)

    def build() -> dict[str, Any]:
        views = [standalone_view(s, state) for s in state.services if is_standalone(s.stack)]
        chosen = [v for v in views if standalone_listed(v, **filters)]
        found, token = page("standalone", chosen, lambda v: (v["name"], v["id"]), paging)
        return paged_body(found, token, paging)

    body = state.rendered(("standalone", env_id, *filters.values(), paging), build)
    return versioned(_json(body), state.version)


@router.get("/containers/{container_id}")
def get_container(request: Request, container_id: str, _: Admin) -> dict[str, Any]:
    """A container by its id (a standalone container also by its own id, then shown as `standalone=true` lists it)."""
    try:
        record = stacks_of(request).get_slot(container_id)
    except NotFound:
        service = StandaloneStore(stacks_of(request)).get(container_id)
        return standalone_view(service, state_of(request, service.environment_id))
    return slot_container_view(record, state_of(request, record.slot.environment_id))


async def _set_running(request: Request, container_id: str, running: bool, restart: bool) -> dict[str, Any]:
    stacks = stacks_of(request)
    record = await run_in_threadpool(slot_of, stacks, container_id)
    if restart:
        service = await run_in_threadpool(stacks.get_service, record.service_id)
        await run_in_threadpool(stack_service_of(request).request_restart, service, [record.slot.id], None)
    else:
        requested = time.time() if running else None
        await run_in_threadpool(stacks.set_running, [record.slot.id], running, start_requested_at=requested)
        stack_service_of(request).wake()
    record = await run_in_threadpool(stacks.get_slot, record.slot.id)
    state = await run_in_threadpool(state_of, request, record.slot.environment_id)
    return slot_container_view(record, state)


@router.post("/containers/{container_id}/stop")
async def stop_container(request: Request, container_id: str, _: Admin) -> dict[str, Any]:
    return await _set_running(request, container_id, False, False)


@router.post("/containers/{container_id}/start")
async def start_container(request: Request, container_id: str, _: Admin) -> dict[str, Any]:
    return await _set_running(request, container_id, True, False)


@router.post("/containers/{container_id}/restart")
async def restart_container(request: Request, container_id: str, _: Admin) -> dict[str, Any]:
    return await _set_running(request, container_id, True, True)
