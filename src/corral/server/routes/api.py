"""REST routes under /v1: environments, registration tokens, hosts, agent registration, events.

Why thin: each route checks the caller, validates input with the model's rules, calls the store or the host
service, and renders views. Errors are raised as the model's error tree and rendered once by app.py.
"""

from __future__ import annotations

import logging
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, WebSocket
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from corral.model.admission import (
    DEFAULT_TOKEN_LIFETIME,
    parse_lifetime,
    validate_facts,
    validate_host_labels,
    validate_max_uses,
)
from corral.model.entities import (
    SUPPORTED_ORCHESTRATIONS,
    Environment,
    Host,
    Orchestration,
    Principal,
    normalise_arch,
)
from corral.model.errors import CorralError, InvalidInput, TooManyRequests, Unauthorized
from corral.model.join_token import format_join_token
from corral.model.names import validate_name
from corral.model.network import NetworkSettings, random_vni
from corral.model.policy import parse_settings
from corral.model.quotas import checked_overrides, merged
from corral.server.routes.event_stream import stream_events
from corral.server.routes.watch import parse_version, versioned, watch_response
from corral.server.security.auth import authenticate_request, require_admin, throttle_of
from corral.server.security.authorization import visible_environment_ids
from corral.server.services.host_service import HostService
from corral.server.services.stacks import stack_service_of, store_of
from corral.server.shared.advertise import loopback_warning
from corral.server.shared.bodies import Strict
from corral.server.views.paging import Paging, dumps, page, paged_body
from corral.server.views.resources import container_view, environment_view, host_view, token_view
from corral.state.reads import StateReads
from corral.state.snapshot import ClusterSnapshot
from corral.store.repository import Store

log = logging.getLogger("corral.server.api")
router = APIRouter(prefix="/v1")
Admin = Annotated[Principal, Depends(require_admin)]


class EnvironmentCreate(Strict):
    name: str
    orchestration: str = "cattle"
    description: str = Field(default="", max_length=2000)
    # {subnet, host_prefix, mtu, vni, encryption}; subnet default: CORRAL_DEFAULT_SUBNET, vni: random, encryption: on
    network: dict[str, Any] | None = None
    allow: list[str] = Field(default_factory=list, max_length=32)  # dangerous container settings (model/policy.py)
    require_approval: bool = False  # hosts registering with a token stay `pending` until approved
    quotas: dict[str, int | None] = Field(default_factory=dict, max_length=16)  # over CORRAL_QUOTA_* (model/quotas.py)


class EnvironmentUpdate(Strict):
    description: str | None = Field(default=None, max_length=2000)
    allow: list[str] | None = Field(default=None, max_length=32)  # replaces the set; [] locks the environment
    require_approval: bool | None = None
    quotas: dict[str, int | None] | None = Field(default=None, max_length=16)  # merged; null = the server's default


class TokenCreate(Strict):
    description: str = Field(default="", max_length=2000)
    expires: str = Field(default=DEFAULT_TOKEN_LIFETIME, max_length=32)  # "2h", "7d", "never"
    max_uses: int | None = None  # None: unlimited; 1: a one-time token


class HostCreate(Strict):
    name: str
    environment: str
    driver: str = "local"
    labels: dict[str, str] = Field(default_factory=dict)
    arch: str | None = None


class HostUpdate(Strict):
    labels: dict[str, Any]


class AgentRegistration(Strict):
    token: str = Field(max_length=512)
    name: str = Field(max_length=253)
    labels: dict[str, Any] = Field(default_factory=dict)  # bounds: model/admission.py
    facts: dict[str, Any] = Field(default_factory=dict)


def _hosts(request: Request) -> HostService:
    service: HostService = request.app.state.host_service
    return service


def _view(request: Request, env: Environment) -> dict[str, Any]:
    return environment_view(env, stack_service_of(request).quota_defaults())


def _orchestration(value: str) -> Orchestration:
    try:
        orchestration = Orchestration(value)
    except ValueError:
        choices = ", ".join(o.value for o in Orchestration)
        raise InvalidInput(
            f"orchestration {value!r} is unknown; choose one of {choices}", field="orchestration"
        ) from None
    if orchestration not in SUPPORTED_ORCHESTRATIONS:
        raise InvalidInput(f"orchestration {value!r} is not supported yet; use cattle", field="orchestration")
    return orchestration


# -- environments ---------------------------------------------------------------------------------------------


@router.get("/")
def api_index(request: Request, _: Admin) -> dict[str, Any]:
    """What `/v1` holds (the banner of `make demo` points here): the collections and the OpenAPI document."""
    base = str(request.base_url).rstrip("/")
    collections = ["environments", "hosts", "stacks", "services", "containers", "volumes", "events", "catalogs", "keys"]
    return {
        "openapi": f"{base}/openapi.json",
        "links": {name: f"{base}/v1/{name}" for name in collections},
    }


@router.get("/environments")
def list_environments(request: Request, _: Admin, paging: Paging) -> dict[str, Any]:
    visible = visible_environment_ids(request)
    environments = [e for e in store_of(request).list_environments() if visible is None or e.id in visible]
    found, token = page("environments", environments, lambda e: (e.name, e.id), paging)
    return paged_body([_view(request, env) for env in found], token, paging)


@router.post("/environments", status_code=201)
def create_environment(request: Request, body: EnvironmentCreate, _: Admin) -> dict[str, Any]:
    name = validate_name(body.name)
    store = store_of(request)
    vni = random_vni(e.network.vni for e in store.list_environments())
    network = NetworkSettings.from_dict(
        {"subnet": request.app.state.settings.default_subnet, "vni": vni, **(body.network or {})}
    )
    allow = parse_settings(body.allow)
    quotas = merged({}, checked_overrides(body.quotas))
    env = store.create_environment(
        name,
        _orchestration(body.orchestration),
        body.description,
        network,
        allow=allow,
        require_approval=body.require_approval,
        quotas=quotas,
    )
    view = _view(request, env)
    request.app.state.bus.publish("environment", "created", view, env.id)
    return view


@router.get("/environments/{ref}")
def get_environment(request: Request, ref: str, _: Admin) -> dict[str, Any]:
    return _view(request, store_of(request).get_environment(ref))


@router.patch("/environments/{ref}")
def update_environment(request: Request, ref: str, body: EnvironmentUpdate, _: Admin) -> dict[str, Any]:
    store = store_of(request)
    changes = body.model_dump(exclude_none=True)
    if "allow" in changes:
        changes["allow"] = sorted(parse_settings(body.allow or []))
    if body.quotas is not None:
        changes["quotas"] = merged(store.get_environment(ref).quotas, checked_overrides(body.quotas))
    env = store.update_environment(ref, **changes)
    view = _view(request, env)
    request.app.state.bus.publish("environment", "updated", view, env.id)
    return view


@router.delete("/environments/{ref}", status_code=204)
async def delete_environment(request: Request, ref: str, _: Admin) -> Response:
    env = await run_in_threadpool(store_of(request).get_environment, ref)
    await _hosts(request).remove_environment(env)
    request.app.state.bus.publish("environment", "removed", _view(request, env), env.id)
    return Response(status_code=204)


# -- registration tokens --------------------------------------------------------------------------------------


@router.post("/environments/{ref}/registration-tokens", status_code=201)
def create_registration_token(request: Request, ref: str, body: TokenCreate, _: Admin) -> dict[str, Any]:
    lifetime = parse_lifetime(body.expires)
    max_uses = validate_max_uses(body.max_uses)
    store = store_of(request)
    env = store.get_environment(ref)
    expires_at = time.time() + lifetime if lifetime is not None else None
    token, secret = store.create_registration_token(env.id, body.description, expires_at=expires_at, max_uses=max_uses)
    # what other machines can use (server/shared/advertise.py); the address this call came to when none is set
    url = request.app.state.settings.advertise_url or str(request.base_url).rstrip("/")
    view = token_view(token)
    request.app.state.bus.publish("registration_token", "created", view, env.id)
    tls = request.app.state.tls
    if tls is not None:  # the join token pins this server's CA: `CORRAL1-<CA digest>-<secret>`
        secret = format_join_token(secret, tls.ca_digest)
    insecure = "" if tls is not None else " --insecure"
    command = f"corral agent --url {url} --token {secret}{insecure}"
    return {**view, "token": secret, "url": url, "command": command, "warning": loopback_warning(url)}


@router.get("/environments/{ref}/registration-tokens")
def list_registration_tokens(request: Request, ref: str, _: Admin) -> dict[str, Any]:
    store = store_of(request)
    env = store.get_environment(ref)
    now = time.time()
    return {"data": [token_view(t, now) for t in store.list_registration_tokens(env.id)]}


def _revoke(request: Request, token_id: str) -> dict[str, Any]:
    token = store_of(request).revoke_registration_token(token_id)
    view = token_view(token)
    request.app.state.bus.publish("registration_token", "revoked", view, token.environment_id)
    return view


@router.delete("/registration-tokens/{token_id}", status_code=204)
def delete_registration_token(request: Request, token_id: str, _: Admin) -> Response:
    """Revoke: the token admits no more hosts; it stays listed as `revoked`."""
    _revoke(request, token_id)
    return Response(status_code=204)


@router.post("/registration-tokens/{token_id}/revoke")
def revoke_registration_token(request: Request, token_id: str, _: Admin) -> dict[str, Any]:
    return _revoke(request, token_id)


# -- hosts ----------------------------------------------------------------------------------------------------


def _environment_for(store: Store, ref: str | None) -> Environment | None:
    return store.get_environment(ref) if ref else None


@router.get("/hosts")
def list_hosts(
    request: Request,
    _: Admin,
    paging: Paging,
    environment: Annotated[str | None, Query()] = None,
    phase: Annotated[str | None, Query(alias="state", max_length=32)] = None,
    watch: Annotated[bool, Query(description="Stream the changes (NDJSON) instead of listing.")] = False,
    since_version: Annotated[str | None, Query(max_length=20, description="Watch from this version.")] = None,
) -> Response:
    """The hosts (`X-Corral-Version`: the state version of the answer); `watch=true` streams their changes
    after `since_version` (server/routes/watch.py)."""
    store = store_of(request)
    env = _environment_for(store, environment)
    cluster = request.app.state.cluster
    hub = request.app.state.hub
    env_id = env.id if env else None

    def rendered(hosts: list[Host], chosen: list[Host]) -> list[dict[str, Any]]:
        return [{**host_view(h, hosts), "agent_version": hub.agent_version(h.id) or ""} for h in chosen]

    def at(snapshot: ClusterSnapshot) -> dict[str, Any]:
        hosts = StateReads(cluster, snapshot).list_hosts(env_id)
        chosen = [h for h in hosts if not phase or h.state.value == phase]
        return {view["id"]: view for view in rendered(hosts, chosen)}

    if watch:
        return watch_response(request, since_version, at)
    reads = StateReads(cluster).pinned() if cluster.fresh else store  # the snapshot; the database until it loaded
    hosts = reads.list_hosts(env_id, container_counts=False)  # the containers counted for the page's hosts only
    chosen = [h for h in hosts if not phase or h.state.value == phase]
    found, token = page("hosts", chosen, lambda h: (h.name, h.id), paging)
    counted = reads.hosts_by_id(h.id for h in found)
    found = [counted.get(h.id, h) for h in found]
    response = Response(dumps(paged_body(rendered(hosts, found), token, paging)), media_type="application/json")
    return versioned(response, reads.snapshot().version) if isinstance(reads, StateReads) else response


@router.post("/hosts", status_code=202)
async def create_host(request: Request, body: HostCreate, _: Admin) -> dict[str, Any]:
    name = validate_name(body.name)
    labels = validate_host_labels(body.labels)
    arch = None
    if body.arch is not None:
        arch = normalise_arch(body.arch)
        if arch not in ("x86_64", "aarch64", "armv7l"):
            raise InvalidInput(f"arch {body.arch!r} is not one of x86_64, aarch64, armv7l", field="arch")
    env = await run_in_threadpool(store_of(request).get_environment, body.environment)
    host = await _hosts(request).create(env, name, body.driver, labels, arch)
    return host_view(host)


@router.get("/hosts/{host_id}")
def get_host(request: Request, host_id: str, _: Admin) -> dict[str, Any]:
    host = store_of(request).get_host(host_id)
    view = host_view(host, store_of(request).list_hosts(host.environment_id))
    return {**view, "agent_version": request.app.state.hub.agent_version(host.id) or ""}


@router.patch("/hosts/{host_id}")
def update_host(request: Request, host_id: str, body: HostUpdate, _: Admin) -> dict[str, Any]:
    labels = validate_host_labels(body.labels)
    host = store_of(request).update_host(host_id, labels=labels)
    view = host_view(host)
    request.app.state.bus.publish("host", "updated", view, host.environment_id)
    return view


def _set_scheduling(request: Request, host_id: str, *, schedulable: bool, evacuating: bool) -> dict[str, Any]:
    host = store_of(request).update_host(host_id, schedulable=schedulable, evacuating=evacuating)
    view = host_view(host)
    request.app.state.bus.publish("host", "updated", view, host.environment_id)
    request.app.state.orchestrator.trigger()
    return view


@router.post("/hosts/{host_id}/deactivate")
def deactivate_host(request: Request, host_id: str, _: Admin) -> dict[str, Any]:
    """Cordon: no new containers go to this host; the ones it runs stay."""
    return _set_scheduling(request, host_id, schedulable=False, evacuating=False)


@router.post("/hosts/{host_id}/evacuate")
def evacuate_host(request: Request, host_id: str, _: Admin) -> dict[str, Any]:
    """Deactivate and move its containers to other hosts (each as soon as another host can take it)."""
    return _set_scheduling(request, host_id, schedulable=False, evacuating=True)


@router.post("/hosts/{host_id}/activate")
def activate_host(request: Request, host_id: str, _: Admin) -> dict[str, Any]:
    return _set_scheduling(request, host_id, schedulable=True, evacuating=False)


@router.post("/hosts/{host_id}/approve")
async def approve_host(request: Request, host_id: str, _: Admin) -> dict[str, Any]:
    """Admit a host waiting for approval (reject one by removing it)."""
    host = await run_in_threadpool(store_of(request).get_host, host_id)
    return host_view(await _hosts(request).approve(host))


@router.delete("/hosts/{host_id}", status_code=204)
async def delete_host(request: Request, host_id: str, _: Admin) -> Response:
    host = await run_in_threadpool(store_of(request).get_host, host_id)
    await _hosts(request).remove(host)
    return Response(status_code=204)


@router.get("/hosts/{host_id}/containers")
def list_host_containers(request: Request, host_id: str, _: Admin, paging: Paging) -> dict[str, Any]:
    store = store_of(request)
    host = store.get_host(host_id)
    found, token = page("host-containers", store.list_host_containers(host.id), lambda c: (c.name, c.docker_id), paging)
    return paged_body([container_view(host.id, c) for c in found], token, paging)


# -- agents ---------------------------------------------------------------------------------------------------


@router.post("/agent/register", status_code=201)
def register_agent(request: Request, body: AgentRegistration) -> dict[str, Any]:
    """Exchange a registration token (once per host) for per-host credentials."""
    name = validate_name(body.name)
    labels = validate_host_labels(body.labels)
    facts = validate_facts(body.facts)
    address = request.client.host if request.client else ""
    throttle = throttle_of(request.app.state)  # a token is a credential: wrong ones are logged and throttled
    wait = throttle.retry_after(address)
    if wait > 0:
        raise TooManyRequests(
            f"too many failed registrations from {address}; try again in {wait:.0f} s", retry_after=wait
        )
    try:
        host, access_key, secret = _hosts(request).register(body.token, name, labels, facts, address)
    except Unauthorized as exc:
        throttle.failed(address)
        log.warning(
            "registration refused from %s (token %s): %s", address or "-", body.token.split(".")[0][:40], exc.message
        )
        raise
    return {
        "host_id": host.id,
        "environment_id": host.environment_id,
        "access_key": access_key,
        "secret_key": secret,
    }


@router.websocket("/agent")
async def agent_socket(websocket: WebSocket) -> None:
    await websocket.app.state.hub.serve(websocket)


# -- events ---------------------------------------------------------------------------------------------------


@router.websocket("/events")
async def events_socket(websocket: WebSocket, environment: str | None = None, since_version: str | None = None) -> None:
    """Live events of the environment (all for an admin naming none); `since_version=N` first replays the kept
    events after N (server/routes/event_stream.py)."""
    store: Store = websocket.app.state.store
    try:
        address = websocket.client.host if websocket.client else ""
        await authenticate_request(websocket.app.state, websocket.headers.get("authorization"), address)
        env = await run_in_threadpool(_environment_for, store, environment)
        since = parse_version(since_version)
    except CorralError as exc:
        await websocket.accept()
        await websocket.close(code=4000 + exc.status, reason=exc.message[:120])
        return
    state = websocket.app.state
    await stream_events(websocket, state.bus, state.event_history, env.id if env else None, since)
