"""The FastAPI application: wiring of store, event bus, agent hub and host service; error rendering; /healthz.

Why here: this is the one edge where the error tree becomes HTTP. Every error body is JSON
`{"error": code, "message": text, "field": name}`; request-shape errors name the offending field; nothing a client
sends can produce an HTML page or a bare 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

import corral
from corral.config import Settings
from corral.model.entities import HostState
from corral.model.errors import CorralError, Unavailable
from corral.orchestrator.host_ports import PortRange
from corral.server.control.build_cleanup import BuildCleanup
from corral.server.control.orchestration import Orchestrator
from corral.server.hub.builds import BuildCoordinator
from corral.server.hub.ca_rotation import CaRotation
from corral.server.hub.hub import AgentHub
from corral.server.hub.image_pulls import StackPulls
from corral.server.hub.volumes import VolumeService
from corral.server.routes.api import router
from corral.server.routes.api_access import router as access_router
from corral.server.routes.api_builds import router as builds_router
from corral.server.routes.api_catalog import router as catalog_router
from corral.server.routes.api_certificates import router as certificates_router
from corral.server.routes.api_compose import router as compose_router
from corral.server.routes.api_events import router as events_router
from corral.server.routes.api_images import router as images_router
from corral.server.routes.api_plan import router as plan_router
from corral.server.routes.api_pulls import router as pulls_router
from corral.server.routes.api_registries import router as registries_router
from corral.server.routes.api_run import router as run_router
from corral.server.routes.api_secrets import router as secrets_router
from corral.server.routes.api_stacks import router as stacks_router
from corral.server.routes.api_streams import router as streams_router
from corral.server.routes.api_tls import router as tls_router
from corral.server.routes.api_upgrades import router as upgrades_router
from corral.server.routes.api_volumes import router as volumes_router
from corral.server.security.audit import AuditTrail
from corral.server.security.auth import AuthThrottle
from corral.server.security.authorization import SocketRefused, enforce, refuse_socket
from corral.server.security.guard import RequestGuard
from corral.server.security.idempotency import Idempotency
from corral.server.security.ldap_identity import LdapIdentity
from corral.server.security.service_accounts import ServiceAccounts
from corral.server.services.catalog_service import CatalogService
from corral.server.services.host_service import HostService
from corral.server.services.stack_builds import kept_records, previous_records
from corral.server.services.stacks import StackService
from corral.server.shared.event_history import EventHistory
from corral.server.shared.events import EventBus
from corral.server.shared.loop_watchdog import LoopWatchdog
from corral.server.shared.warm_up import warm_up_routing
from corral.server.views.environment_state import read_from_memory
from corral.state.cluster import ClusterState
from corral.state.reads import StateReads
from corral.store.access import AccessStore
from corral.store.certificates import CertificateStore
from corral.store.events import EventStore
from corral.store.idempotency import IdempotencyStore
from corral.store.registries import RegistryStore
from corral.store.repository import Store
from corral.store.sealing import Sealer
from corral.store.secrets import SecretStore
from corral.store.stacks import StackStore

if TYPE_CHECKING:
    from corral.provision.local import LocalHostDriver
    from corral.server.security.tls import ServerTls

log = logging.getLogger("corral.server")


def create_app(
    settings: Settings,
    store: Store,
    driver: LocalHostDriver | None = None,
    agent_url: str = "",
    tls: ServerTls | None = None,
    *,
    warm_up: bool = False,
) -> FastAPI:
    """The application. `warm_up` (the server process): build the routing before serving (server/shared/warm_up.py)."""
    event_store = EventStore(store)
    event_history = EventHistory(event_store)
    bus = EventBus(recorders=[event_history.record])
    stacks = StackStore(store)
    state = ClusterState(store)  # loaded at start (lifespan), then kept equal to the database after every commit
    hub = AgentHub(store, bus, settings, slot_reasons=stacks.set_slot_reason, reads=StateReads(state))
    read_from_memory(stacks, state)  # list and object views are built from its snapshots, not from queries
    # local hosts' agents dial `agent_url` and pin the CA of `tls`
    host_service = HostService(store, bus, hub, settings, driver, agent_url=agent_url, tls=tls)
    access = AccessStore(store)
    registries = RegistryStore(store, settings.data_dir)
    secret_store = SecretStore(store, settings.data_dir)
    orchestrator = Orchestrator(
        store,
        stacks,
        hub,
        bus,
        PortRange.parse(settings.host_port_range),
        reads=StateReads(state),
        registries=registries,  # the environment's credentials go to its agents with `desired`
        secrets=secret_store,  # so do the secrets its containers name
        certificates=CertificateStore(store, settings.data_dir),  # and the certificates its LBs name
        service_accounts=ServiceAccounts(
            access,
            Sealer(settings.data_dir),
            lambda: host_service.agent_url,
            ca_pem=tls.ca_pem.decode() if tls is not None else "",
        ),
    )
    catalogs = CatalogService(
        store,
        settings.data_dir,
        allow_local=settings.catalog_allow_local,
        render_seconds=settings.template_render_seconds,
    )

    def never_logged(environment_id: str) -> list[str]:  # what a build's log must never show (model/build_log.py)
        names = [s.name for s in secret_store.list(environment_id)]
        values = list(secret_store.values(environment_id, names).values())
        return values + [c.password for c in registries.credentials(environment_id)]

    builds = BuildCoordinator(  # compose `build:` (server/hub/builds.py)
        hub,
        StateReads(state),
        settings.data_dir,
        lambda stack_id: previous_records(stacks.stack_files(stack_id)),
        never_logged,
    )
    build_cleanup = BuildCleanup(  # superseded built images and unneeded build files (server/control/build_cleanup.py)
        builds,
        lambda stack_id: kept_records(stacks.stack_files(stack_id)),
        round_seconds=settings.build_cleanup_seconds,
        file_grace_seconds=settings.build_file_grace_seconds,
    )

    volumes = VolumeService(store, stacks, hub)  # volumes as a resource (server/hub/volumes.py)
    stack_service = StackService(  # `corral up` and what the plan, run and catalog routes share with it
        store=store,
        stacks=stacks,
        bus=bus,
        orchestrator=orchestrator,
        settings=settings,
        secrets=secret_store,
        builds=builds,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if warm_up:  # before the first client: FastAPI builds its routes lazily, on the loop (server/shared/warm_up.py)
            await warm_up_routing(app)  # (seconds under load, while uvicorn reads no connection: not watched)
        watchdog = None
        if settings.loop_stall_seconds > 0:  # early: a start that stalls the loop is reported too
            watchdog = LoopWatchdog(asyncio.get_running_loop(), threshold=settings.loop_stall_seconds)
            watchdog.start()
        bus.start_at(await run_in_threadpool(event_history.open))  # versions go on from the kept history
        bus.bind(asyncio.get_running_loop())
        event_history.start()
        await run_in_threadpool(state.resync)
        await run_in_threadpool(_fail_interrupted_provisioning, store)
        await run_in_threadpool(catalogs.ensure_builtin)
        await hub.start()
        if app.state.ca_rotation is not None:
            app.state.ca_rotation.attach()
        await orchestrator.start()
        await builds.start()
        await build_cleanup.start()
        await volumes.start()
        supervisor = asyncio.create_task(host_service.supervise(), name="local-host-supervisor")
        try:
            yield
        finally:
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor
            await volumes.stop()
            await build_cleanup.stop()
            await builds.stop()
            await orchestrator.stop()
            await hub.stop()
            with contextlib.suppress(Exception):  # a database gone at shutdown loses at most a second of history
                await event_history.stop()
            if watchdog is not None:
                watchdog.stop()

    app = FastAPI(
        title="Corral",
        version=corral.__version__,
        description="Container management: environments, hosts, stacks and services on real Docker engines.",
        lifespan=lifespan,
        docs_url=None,  # Swagger/ReDoc pages load their scripts from a CDN; the UI will ship its own assets
        redoc_url=None,
        dependencies=[Depends(enforce)],  # every /v1 route and websocket: server/security/authorization.py
    )
    app.state.settings = settings
    app.state.store = store
    app.state.bus = bus
    app.state.event_store = event_store
    app.state.event_history = event_history
    app.state.hub = hub
    app.state.host_service = host_service
    app.state.stacks = stacks
    app.state.stack_service = stack_service
    app.state.cluster = state
    app.state.orchestrator = orchestrator
    app.state.catalogs = catalogs
    app.state.builds = builds
    app.state.build_cleanup = build_cleanup
    app.state.volumes = volumes
    app.state.pulls = StackPulls(store, stacks, hub, registries)  # `corral pull` (server/hub/image_pulls.py)
    app.state.registries = registries
    app.state.access = access
    app.state.ldap = LdapIdentity(settings) if settings.ldap_url else None
    app.state.secrets = secret_store
    app.state.certificates = orchestrator.certificates
    app.state.forward_token = secrets.token_urlsafe(32)  # the UI (same process) may name a browser's address
    app.state.auth_throttle = AuthThrottle(
        max_failures=settings.auth_failures_per_minute, block_seconds=settings.auth_block_seconds
    )
    app.add_middleware(Idempotency, store=IdempotencyStore(store))  # inside the guard: the caller is known
    app.add_middleware(
        RequestGuard,
        app_state=app.state,
        max_body=settings.max_body_bytes,
        public_max_body=settings.public_max_body_bytes,
    )
    app.add_middleware(AuditTrail, app_state=app.state)  # outside the guard: sees its 401s and 413s too
    app.state.tls = tls  # None: plain HTTP (--insecure-http)
    app.state.ca_rotation = CaRotation(tls, hub) if tls is not None else None
    app.include_router(router)
    app.include_router(plan_router)  # before stacks: /v1/stacks/plan is no stack id
    app.include_router(stacks_router)
    app.include_router(run_router)
    app.include_router(streams_router)
    app.include_router(builds_router)
    app.include_router(upgrades_router)
    app.include_router(catalog_router)
    app.include_router(registries_router)
    app.include_router(secrets_router)
    app.include_router(volumes_router)
    app.include_router(images_router)
    app.include_router(pulls_router)
    app.include_router(certificates_router)
    app.include_router(tls_router)
    app.include_router(access_router)
    app.include_router(compose_router)
    app.include_router(events_router)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, Any]:  # on the loop itself: answers even when every worker thread is busy
        return {"status": "ok", "version": corral.__version__, "connected_agents": len(hub.sessions)}

    app.add_exception_handler(SocketRefused, refuse_socket)
    app.add_exception_handler(CorralError, _corral_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
    return app


def _fail_interrupted_provisioning(store: Store) -> None:
    """A host left `provisioning` by a server that stopped mid-way is failed with a reason, never left stuck."""
    for host in store.list_hosts():
        if host.state is HostState.PROVISIONING:
            store.update_host(
                host.id, state=HostState.ERROR, state_reason="the server stopped while this host was provisioning"
            )


async def _corral_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CorralError)
    retry_after = getattr(exc, "retry_after", None)  # TooManyRequests (and any error that says when to retry)
    headers = {"Retry-After": str(max(1, round(retry_after)))} if isinstance(retry_after, (int, float)) else None
    if isinstance(exc, Unavailable):  # an outage (the database, an engine): the caller may retry
        headers = {"Retry-After": str(exc.retry_after_seconds)}
        log.warning("%s %s: %s", request.method, request.url.path, exc.message)
    return JSONResponse(exc.to_dict(), status_code=exc.status, headers=headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request"}
    location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    field = ".".join(location) or "body"
    if first.get("type") == "json_invalid":
        context = first.get("ctx")
        detail = context.get("error", "") if isinstance(context, dict) else ""
        field, message = "body", f"request body is not valid JSON: {detail}"
    elif first.get("type") == "extra_forbidden":
        message = f"unknown field {field!r}"
    else:
        message = f"{field}: {first.get('msg', 'invalid')}"
    return JSONResponse({"error": "invalid", "message": message, "field": field}, status_code=422)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(exc.status_code, "http_error")
    body = {"error": code, "message": str(exc.detail)}
    if exc.status_code == 413:
        body["field"] = "body"
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return JSONResponse({"error": "internal", "message": f"internal error: {type(exc).__name__}"}, status_code=500)
