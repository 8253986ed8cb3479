"""REST routes under /v1: environments, registration tokens, hosts, agent registration, events.

Why thin: each route checks the caller, validates input with the model's rules, calls the store or the host
service, and renders views. Errors are raised as the model's error tree and rendered once by app.py.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from corral.model.entities import (
    SUPPORTED_ORCHESTRATIONS,
    Environment,
    HostFacts,
    KeyKind,
    Orchestration,
    Principal,
    normalise_arch,
)
from corral.model.errors import CorralError, Forbidden, InvalidInput
from corral.model.names import validate_labels, validate_name
from corral.model.network import NetworkSettings
from corral.model.policy import parse_settings
from corral.model.quotas import Quotas, checked_overrides, merged
from corral.server.auth import authenticate_header, require_admin
from corral.server.host_service import HostService
from corral.server.views import container_view, environment_view, host_view, token_view
from corral.store.repository import Store

router = APIRouter(prefix="/v1")
Admin = Annotated[Principal, Depends(require_admin)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EnvironmentCreate(Strict):
    name: str
    orchestration: str = "cattle"
    description: str = Field(default="", max_length=2000)
    network: dict[str, Any] | None = None  # {subnet, host_prefix, mtu, vni}; subnet default: CORRAL_DEFAULT_SUBNET
    allow: list[str] = Field(default_factory=list, max_length=32)  # dangerous container settings (model/policy.py)
    quotas: dict[str, int | None] = Field(default_factory=dict, max_length=16)  # over CORRAL_QUOTA_* (model/quotas.py)


class EnvironmentUpdate(Strict):
    description: str | None = Field(default=None, max_length=2000)
    allow: list[str] | None = Field(default=None, max_length=32)  # replaces the set; [] locks the environment
    quotas: dict[str, int | None] | None = Field(default=None, max_length=16)  # merged; null = the server's default


class TokenCreate(Strict):
    description: str = Field(default="", max_length=2000)


class HostCreate(Strict):
    name: str
    environment: str
    driver: str = "local"
    labels: dict[str, str] = Field(default_factory=dict)
    arch: str | None = None


class HostUpdate(Strict):
    labels: dict[str, str]


class AgentRegistration(Strict):
    token: str = Field(max_length=512)
    name: str
    labels: dict[str, str] = Field(default_factory=dict)
    facts: dict[str, Any] = Field(default_factory=dict)


def store_of(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _hosts(request: Request) -> HostService:
    service: HostService = request.app.state.host_service
    return service


def quota_defaults(request: Request) -> Quotas:
    """The server's quotas (`CORRAL_QUOTA_*`), under each environment's own."""
    settings = request.app.state.settings
    return Quotas(
        services_per_stack=settings.quota_services_per_stack,
        services_per_environment=settings.quota_services_per_environment,
        containers_per_stack=settings.quota_containers_per_stack,
        containers_per_environment=settings.quota_containers_per_environment,
    )


def environment_quotas(request: Request, env: Environment) -> Quotas:
    return quota_defaults(request).with_overrides(env.quotas)


def _view(request: Request, env: Environment) -> dict[str, Any]:
    return environment_view(env, quota_defaults(request))


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


@router.get("/environments")
def list_environments(request: Request, _: Admin) -> dict[str, Any]:
    return {"data": [_view(request, env) for env in store_of(request).list_environments()]}


@router.post("/environments", status_code=201)
def create_environment(request: Request, body: EnvironmentCreate, _: Admin) -> dict[str, Any]:
    name = validate_name(body.name)
    network = NetworkSettings.from_dict({"subnet": request.app.state.settings.default_subnet, **(body.network or {})})
    allow = parse_settings(body.allow)
    quotas = merged({}, checked_overrides(body.quotas))
    env = store_of(request).create_environment(
        name, _orchestration(body.orchestration), body.description, network, allow=allow, quotas=quotas
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
    env = store.get_environment(ref)
    allow = parse_settings(body.allow) if body.allow is not None else None
    quotas = merged(env.quotas, checked_overrides(body.quotas)) if body.quotas is not None else None
    env = store.update_environment(env.id, description=body.description, allow=allow, quotas=quotas)
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
    store = store_of(request)
    env = store.get_environment(ref)
    token, secret = store.create_registration_token(env.id, body.description)
    url = str(request.base_url).rstrip("/")
    view = token_view(token)
    request.app.state.bus.publish("registration_token", "created", view, env.id)
    return {**view, "token": secret, "url": url, "command": f"corral agent --url {url} --token {secret}"}


@router.get("/environments/{ref}/registration-tokens")
def list_registration_tokens(request: Request, ref: str, _: Admin) -> dict[str, Any]:
    store = store_of(request)
    env = store.get_environment(ref)
    return {"data": [token_view(t) for t in store.list_registration_tokens(env.id)]}


@router.delete("/registration-tokens/{token_id}", status_code=204)
def delete_registration_token(request: Request, token_id: str, _: Admin) -> Response:
    store_of(request).delete_registration_token(token_id)
    request.app.state.bus.publish("registration_token", "removed", {"id": token_id})
    return Response(status_code=204)


# -- hosts ----------------------------------------------------------------------------------------------------


def _environment_for(store: Store, ref: str | None) -> Environment | None:
    return store.get_environment(ref) if ref else None


@router.get("/hosts")
def list_hosts(request: Request, _: Admin, environment: Annotated[str | None, Query()] = None) -> dict[str, Any]:
    store = store_of(request)
    env = _environment_for(store, environment)
    hosts = store.list_hosts(env.id if env else None)
    hub = request.app.state.hub
    return {"data": [{**host_view(h, hosts), "agent_version": hub.agent_version(h.id) or ""} for h in hosts]}


@router.post("/hosts", status_code=202)
async def create_host(request: Request, body: HostCreate, _: Admin) -> dict[str, Any]:
    name = validate_name(body.name)
    labels = validate_labels(body.labels)
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
    labels = validate_labels(body.labels)
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


@router.delete("/hosts/{host_id}", status_code=204)
async def delete_host(request: Request, host_id: str, _: Admin) -> Response:
    host = await run_in_threadpool(store_of(request).get_host, host_id)
    await _hosts(request).remove(host)
    return Response(status_code=204)


@router.get("/hosts/{host_id}/containers")
def list_host_containers(request: Request, host_id: str, _: Admin) -> dict[str, Any]:
    store = store_of(request)
    host = store.get_host(host_id)
    return {"data": [container_view(host.id, c) for c in store.list_host_containers(host.id)]}


# -- agents ---------------------------------------------------------------------------------------------------


@router.post("/agent/register", status_code=201)
def register_agent(request: Request, body: AgentRegistration) -> dict[str, Any]:
    """Exchange a registration token (once per host) for per-host credentials."""
    name = validate_name(body.name)
    labels = validate_labels(body.labels)
    facts = HostFacts.from_dict(body.facts)
    address = request.client.host if request.client else ""
    host, access_key, secret = _hosts(request).register(body.token, name, labels, facts, address)
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
async def events_socket(websocket: WebSocket, environment: str | None = None) -> None:
    store: Store = websocket.app.state.store
    await websocket.accept()
    try:
        principal = await run_in_threadpool(authenticate_header, store, websocket.headers.get("authorization"))
        if principal.kind is not KeyKind.ADMIN:
            raise Forbidden("host credentials cannot read the event stream")
        env = await run_in_threadpool(_environment_for, store, environment)
    except CorralError as exc:
        await websocket.close(code=4000 + exc.status, reason=exc.message[:120])
        return
    bus = websocket.app.state.bus
    subscription = bus.subscribe(env.id if env else None)
    receiver = asyncio.create_task(_drain_client(websocket))
    try:
        while not receiver.done():
            getter = asyncio.create_task(subscription.queue.get())
            done, _ = await asyncio.wait({getter, receiver}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                break
            await websocket.send_json(getter.result())
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        bus.unsubscribe(subscription)
        receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await receiver


async def _drain_client(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, so that a close from its side ends the stream."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            await websocket.receive_text()
