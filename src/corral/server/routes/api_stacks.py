"""REST routes for stacks, services and containers.

Why the shape: `PUT /v1/stacks` is `corral up` (create, or update only what changed — an unchanged service keeps
its containers); compose errors come back as 422 naming file, service and field, and nothing is stored. Every write
wakes the orchestrator, which does the actual work.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from corral.compose import ComposeFile, load_stack
from corral.model.builds import BuildRecord
from corral.model.entities import Environment, Principal
from corral.model.errors import Conflict, InvalidInput, NotFound
from corral.model.names import validate_name
from corral.model.policy import ContainerPolicy, enforce
from corral.model.quotas import Demand, demand_of, spec_demand
from corral.model.quotas import enforce as enforce_quotas
from corral.model.stack import Service, SlotRecord, Stack, StackSpec
from corral.model.standalone import is_standalone
from corral.orchestrator.rules import parse_rules
from corral.orchestrator.stack_checks import check_scheduling_labels
from corral.orchestrator.upgrades import strategy_for
from corral.server.routes.api import Strict, environment_quotas, store_of
from corral.server.routes.api_upgrades import RollingRestart, request_restart
from corral.server.routes.watch import versioned, watch_response
from corral.server.security.auth import require_admin
from corral.server.security.service_accounts import check_service_accounts
from corral.server.services.catalog_service import CatalogService
from corral.server.services.stack_builds import (
    add_builds,
    earlier_records,
    previous_records,
    request_builds,
    with_builds,
)
from corral.server.services.stack_requests import StackFiles, UpgradeRequest
from corral.server.services.stack_secrets import remove_stack_secrets, store_stack_secrets, uploads_of
from corral.server.views.paging import Paging, dumps, page, paged_body
from corral.server.views.stack_views import (
    EnvironmentState,
    container_listed,
    service_view,
    slot_container_view,
    stack_view,
)
from corral.server.views.standalone_views import slot_of, standalone_listed, standalone_view
from corral.state.snapshot import ClusterSnapshot
from corral.store.stacks import StackStore
from corral.store.standalone import StandaloneStore

router = APIRouter(prefix="/v1")
Admin = Annotated[Principal, Depends(require_admin)]
MAX_SCALE = 1000


class ScaleBody(Strict):
    scale: int


def _stacks(request: Request) -> StackStore:
    stacks: StackStore = request.app.state.stacks
    return stacks


def _wake(request: Request) -> None:
    request.app.state.orchestrator.trigger()


def _parse(body: StackFiles) -> tuple[StackSpec, dict[str, Any]]:
    name = validate_name(body.name)
    rancher = (
        ComposeFile(name=body.rancher_compose_name, text=body.rancher_compose)
        if body.rancher_compose is not None
        else None
    )
    spec = load_stack(
        name,
        ComposeFile(name=body.compose_name, text=body.compose),
        rancher,
        answers=body.answers,
        env_files=body.env_files,
        profiles=frozenset(body.profiles),
        uploads=uploads_of(body.uploads, body.upload_environment),
    )
    check_scheduling_labels(spec, body.compose_name)
    files = {
        body.compose_name: body.compose,
        **({body.rancher_compose_name: body.rancher_compose} if body.rancher_compose is not None else {}),
        "answers": body.answers,
        **({"profiles": sorted(set(body.profiles))} if body.profiles else {}),
    }
    return spec, files


def upgrade_strategies(spec: StackSpec, request: UpgradeRequest) -> dict[str, dict[str, Any]]:
    """Service name -> rolling-upgrade strategy; global services are updated in place (not listed)."""
    strategies = {}
    for service in spec.services:
        if parse_rules(service.launch.labels, stack=spec.name, service=service.name).global_:
            continue
        strategy = strategy_for(
            service.upgrade_strategy,
            service.health_check,
            batch_size=request.batch_size,
            interval_ms=request.interval_ms,
            start_first=request.start_first,
            deadline_seconds=request.deadline_seconds,
        )
        strategies[service.name] = strategy.to_dict()
    return strategies


def _state(request: Request, environment_id: str | None) -> EnvironmentState:
    return EnvironmentState.load(store_of(request), _stacks(request), environment_id)


def _stack_result(request: Request, stack_id: str) -> dict[str, Any]:
    stack = _stacks(request).get_stack(stack_id)
    view = _with_offers(request, stack, stack_view(stack, _state(request, stack.environment_id)))
    return add_builds(request, view)


def _builds(
    request: Request,
    body: StackFiles,
    spec: StackSpec,
    files: dict[str, Any],
    previous: dict[str, BuildRecord],
    earlier: dict[str, BuildRecord] | None = None,
) -> tuple[StackSpec, dict[str, BuildRecord]]:
    return with_builds(
        request,
        spec,
        files,
        compose_name=body.compose_name,
        compose_text=body.compose,
        answers=body.answers,
        contexts=body.build_contexts,
        context_of=body.build_context_of,
        mode=body.build,
        previous=previous,
        earlier=earlier,
    )


def environment_policy(request: Request, env: Environment) -> ContainerPolicy:
    """The environment's allowed dangerous settings; the server's data directory is a system path too."""
    return ContainerPolicy(env.allow, (str(request.app.state.settings.data_dir),))


def check_quotas(request: Request, env: Environment, spec: StackSpec, stack_id: str | None) -> None:
    """`QuotaExceeded` (422 `quota`, every quota passed) when storing `spec` as the stack `stack_id` (None: a new
    one) would pass the environment's quotas."""
    scales = _stacks(request).service_scales(env.id)
    stack_now = demand_of(scale for sid, scale in scales if sid == stack_id) if stack_id else Demand()
    enforce_quotas(
        environment_quotas(request, env),
        stack=spec.name,
        stack_now=stack_now,
        stack_after=spec_demand(spec),
        environment_now=demand_of(scale for _, scale in scales),
        environment=env.name,
    )


stack_result = _stack_result  # the view of one stack, for the catalog routes
parse_stack_files = _parse  # files -> checked StackSpec without storing anything (catalog preview)


def _with_offers(request: Request, stack: Stack, view: dict[str, Any]) -> dict[str, Any]:
    """A stack installed from a catalog lists the template versions it may upgrade to (`catalog.upgrades`)."""
    catalogs: CatalogService | None = getattr(request.app.state, "catalogs", None)
    if stack.catalog and catalogs is not None:
        view["catalog"]["upgrades"] = catalogs.upgrade_offers(stack.environment_id, stack.catalog)
    return view


@router.post("/stacks", status_code=201)
def create_stack(request: Request, body: StackFiles, _: Admin) -> dict[str, Any]:
    env = store_of(request).get_environment(body.environment)
    spec, files = _parse(body)
    spec, records = _builds(request, body, spec, files, {})
    spec = enforce(spec, environment_policy(request, env), env.name)
    check_quotas(request, env, spec, None)
    stack = _stacks(request).create_stack(env.id, spec, files)
    request_builds(request, env.id, stack.id, records)
    _wake(request)
    request.app.state.bus.publish("stack", "created", {"id": stack.id, "name": stack.name}, env.id)
    return _stack_result(request, stack.id)


@router.put("/stacks")
def up_stack(request: Request, response: Response, body: StackFiles, _: Admin) -> dict[str, Any]:
    """Create the stack or bring it to these files; only services whose definition changed are touched."""
    stack, changed, created = apply_stack(request, body)
    if created:
        response.status_code = 201
    return {**_stack_result(request, stack.id), "changed_services": changed}


def apply_stack(
    request: Request, body: StackFiles, *, catalog: dict[str, Any] | None = None, create_only: bool = False
) -> tuple[Stack, list[str], bool]:
    """`corral up` (also behind catalog install and upgrade): parse, then create or update the stack.

    Returns the stack, the names of changed services and whether it was created. `catalog` is the stack's origin to
    store (None keeps it); `create_only` refuses a stack that exists (Conflict) instead of updating it.
    """
    env = store_of(request).get_environment(body.environment)
    spec, files = _parse(body)
    spec = enforce(spec, environment_policy(request, env), env.name)  # PolicyRefused (422) before anything is stored
    check_service_accounts(spec)  # InvalidInput (422) for a container credential role above restricted
    stacks = _stacks(request)
    existing = next((s for s in stacks.list_stacks(env.id) if s.name == spec.name), None)
    if existing is not None and create_only:
        raise Conflict(f"a stack named {spec.name!r} already exists in this environment", field="stack")
    old_files = stacks.stack_files(existing.id) if existing is not None else {}
    spec, records = _builds(request, body, spec, files, previous_records(old_files), earlier_records(old_files))
    check_quotas(request, env, spec, existing.id if existing is not None else None)  # QuotaExceeded (422)
    store_stack_secrets(request, env.id, spec, body)  # external ones must exist; file/environment ones stored
    if existing is None:
        stack = stacks.create_stack(env.id, spec, files, catalog=catalog)
        changed = [s.name for s in spec.services]
    else:
        strategies = upgrade_strategies(spec, body.upgrade) if body.upgrade is not None else None
        stack, changed = stacks.update_stack(existing.id, spec, files, upgrade_strategies=strategies, catalog=catalog)
    request_builds(request, env.id, stack.id, records)
    _wake(request)
    request.app.state.bus.publish("stack", "updated", {"id": stack.id, "name": stack.name}, env.id)
    return stack, changed, existing is None


@router.get("/stacks")
def list_stacks(
    request: Request,
    _: Admin,
    paging: Paging,
    environment: Annotated[str | None, Query()] = None,
    phase: Annotated[str | None, Query(alias="state", max_length=32)] = None,
) -> Response:
    env_id = store_of(request).get_environment(environment).id if environment else None
    state = _state(request, env_id)
    stacks = [s for s in _stacks(request).list_stacks(env_id) if not is_standalone(s.name)]  # api_run.py's

    def build() -> dict[str, Any]:
        views = {s.id: stack_view(s, state) for s in stacks} if phase else {}
        chosen = [s for s in stacks if not phase or views[s.id]["state"] == phase]
        found, token = page("stacks", chosen, lambda s: (s.name, s.id), paging)
        data = [_with_offers(request, s, views.get(s.id) or stack_view(s, state)) for s in found]
        return paged_body(data, token, paging)

    if any(s.catalog for s in stacks):  # upgrade offers come from the catalogs, not from this state
        return _json(dumps(build()))
    return _json(state.rendered(("stacks", env_id, phase, paging), build))


def _json(body: bytes) -> Response:
    return Response(content=body, media_type="application/json")


@router.get("/stacks/{stack_id}")
def get_stack(request: Request, stack_id: str, _: Admin) -> dict[str, Any]:
    return _stack_result(request, stack_id)


@router.delete("/stacks/{stack_id}", status_code=204)
def delete_stack(
    request: Request,
    stack_id: str,
    _: Admin,
    keep_volumes: Annotated[bool, Query(description="Keep the stack's volumes (removed with it otherwise).")] = False,
) -> Response:
    stack = _stacks(request).get_stack(stack_id)
    _stacks(request).delete_stack(stack.id)
    request.app.state.volumes.stack_removed(stack.environment_id, stack.name, keep_volumes=keep_volumes)
    remove_stack_secrets(request, stack.environment_id, stack.name)
    _wake(request)
    request.app.state.bus.publish("stack", "removed", {"id": stack.id, "name": stack.name}, stack.environment_id)
    return Response(status_code=204)


def _scope(request: Request, environment: str | None, stack: str | None) -> tuple[str | None, str | None]:
    """(environment id, stack id) of optional `environment` and `stack` query filters."""
    if stack and not environment:
        raise InvalidInput("filtering by stack needs an environment", field="environment")
    env_id = store_of(request).get_environment(environment).id if environment else None
    stack_id = _stacks(request).find_stack(env_id, stack).id if stack and env_id else None
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
) -> Response:
    """The services (`X-Corral-Version`: the state version of the answer); `watch=true` streams their changes
    after `since_version` (server/routes/watch.py)."""
    env_id, stack_id = _scope(request, environment, stack)

    def chosen(state: EnvironmentState) -> list[tuple[Service, dict[str, Any] | None]]:
        services = [s for s in state.services if (s.stack_id == stack_id if stack_id else not is_standalone(s.stack))]
        views = {s.id: service_view(s, state) for s in services} if phase else {}
        return [(s, views.get(s.id)) for s in services if not phase or views[s.id]["state"] == phase]

    if watch:

        def at(snapshot: ClusterSnapshot) -> dict[str, Any]:
            state = EnvironmentState.at_snapshot(_stacks(request), request.app.state.cluster, snapshot, env_id)
            return {s.id: view or service_view(s, state) for s, view in chosen(state)}

        return watch_response(request, since_version, at)
    state = _state(request, env_id)

    def build() -> dict[str, Any]:
        found, token = page(
            "services", chosen(state), lambda item: (item[0].stack, item[0].position, item[0].id), paging
        )
        return paged_body([view or service_view(s, state) for s, view in found], token, paging)

    return versioned(_json(state.rendered(("services", env_id, stack_id, phase, paging), build)), state.version)


@router.get("/services/{service_id}")
def get_service(request: Request, service_id: str, _: Admin) -> dict[str, Any]:
    return _service_result(request, _stacks(request).get_service(service_id))


@router.post("/services/{service_id}/scale")
def scale_service(request: Request, service_id: str, body: ScaleBody, _: Admin) -> dict[str, Any]:
    if not 0 <= body.scale <= MAX_SCALE:
        raise InvalidInput(f"scale must be between 0 and {MAX_SCALE}", field="scale")
    stacks = _stacks(request)
    service = stacks.get_service(service_id)
    if (primary := service.spec.sidekick_of) is not None:
        raise InvalidInput(
            f"{service.name} is a sidekick of {primary}: it runs one container beside each {primary} container; "
            f"scale {primary} instead",
            field="scale",
        )
    _check_scale(request, service, body.scale)
    stacks.set_scale(service.id, body.scale)
    for sidekick in stacks.list_services(stack_id=service.stack_id):  # lockstep: a unit has one scale
        if sidekick.spec.sidekick_of == service.name:
            stacks.set_scale(sidekick.id, body.scale)
    _wake(request)
    request.app.state.bus.publish("service", "updated", {"id": service.id, "scale": body.scale}, service.environment_id)
    # the caller's own result: a concurrent scale may have stored another value since (issue 14)
    return _service_result(request, dataclasses.replace(stacks.get_service(service_id), scale=body.scale))


def _check_scale(request: Request, service: Service, scale: int) -> None:
    """The quotas, for the service (and its sidekicks, in lockstep) at this scale."""
    stacks = _stacks(request)
    env = store_of(request).get_environment(service.environment_id)
    in_stack = stacks.list_services(stack_id=service.stack_id)
    unit = {service.id} | {s.id for s in in_stack if s.spec.sidekick_of == service.name}
    enforce_quotas(
        environment_quotas(request, env),
        stack=service.stack,
        stack_now=demand_of(s.scale for s in in_stack),
        stack_after=demand_of(scale if s.id in unit else s.scale for s in in_stack),
        environment_now=demand_of(scale for _, scale in stacks.service_scales(env.id)),
        environment=env.name,
    )


def _service_result(request: Request, service: Service) -> dict[str, Any]:
    """The view of one service from its own rows (a sidekick's view needs its primary: the environment's state)."""
    if service.spec.sidekick_of is not None:
        return service_view(service, _state(request, service.environment_id))
    return service_view(service, EnvironmentState.of_service(store_of(request), _stacks(request), service))


@router.post("/services/{service_id}/restart")
def restart_service(request: Request, service_id: str, _: Admin, body: RollingRestart | None = None) -> dict[str, Any]:
    """All containers at once, or in batches with a body (a rolling restart): stored with the service, which is
    `restarting` until the orchestrator's passes are done (orchestrator/restarts.py, orchestrator/upgrade_steps.py)."""
    stacks = _stacks(request)
    service = stacks.get_service(service_id)
    records = stacks.list_slots(service_id=service.id)
    slot_ids = [r.slot.id for r in sorted(records, key=lambda r: r.slot.index) if not r.retired]
    request_restart(request, service, slot_ids, body)
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
            state = EnvironmentState.at_snapshot(_stacks(request), request.app.state.cluster, snapshot, env_id)
            listed = [r for r in state.slots if container_listed(state, r, **filters)]
            return {r.slot.id: slot_container_view(r, state) for r in sorted(listed, key=_slot_key)}

        return watch_response(request, since_version, at)
    state = _state(request, env_id)

    def build() -> dict[str, Any]:
        chosen = [r for r in state.slots if container_listed(state, r, **filters)]
        found, token = page("containers", chosen, _slot_key, paging)
        return paged_body([slot_container_view(r, state) for r in found], token, paging)

    body = state.rendered(("containers", env_id, stack_id, service, host, phase, paging), build)
    return versioned(_json(body), state.version)


def _standalone_list(request: Request, env_id: str | None, paging: Paging, filters: dict[str, Any]) -> Response:
    state = _state(request, env_id)

    def build() -> dict[str, Any]:
        views = [standalone_view(s, state) for s in state.services if is_standalone(s.stack)]
        chosen = [v for v in views if standalone_listed(v, **filters)]
        found, token = page("standalone", chosen, lambda v: (v["name"], v["id"]), paging)
        return paged_body(found, token, paging)

    body = state.rendered(("standalone", env_id, *filters.values(), paging), build)
    return versioned(_json(body), state.version)


def _slot_key(record: SlotRecord) -> tuple[str, str, int, str]:
    return (record.slot.stack, record.slot.service, record.slot.index, record.slot.id)


@router.get("/containers/{container_id}")
def get_container(request: Request, container_id: str, _: Admin) -> dict[str, Any]:
    """A container by its id (a standalone container also by its own id, then shown as `standalone=true` lists it)."""
    try:
        record = _stacks(request).get_slot(container_id)
    except NotFound:
        service = StandaloneStore(_stacks(request)).get(container_id)
        return standalone_view(service, _state(request, service.environment_id))
    return slot_container_view(record, _state(request, record.slot.environment_id))


async def _set_running(request: Request, container_id: str, running: bool, restart: bool) -> dict[str, Any]:
    stacks = _stacks(request)
    record = await run_in_threadpool(slot_of, stacks, container_id)
    if restart:
        service = await run_in_threadpool(stacks.get_service, record.service_id)
        await run_in_threadpool(request_restart, request, service, [record.slot.id], None)
    else:
        requested = time.time() if running else None
        await run_in_threadpool(stacks.set_running, [record.slot.id], running, start_requested_at=requested)
        _wake(request)
    record = await run_in_threadpool(stacks.get_slot, record.slot.id)
    state = await run_in_threadpool(_state, request, record.slot.environment_id)
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
