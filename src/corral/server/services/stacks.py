"""The stack service: what `corral up` does (parse, check, store), shared by the stack routes, the plan and run
routes and the catalog's install and upgrade; and the environment's limits those checks apply.

Why here and not in a route module: `PUT /v1/stacks`, `POST /v1/stacks/plan`, `corral run` and a catalog install
run the same checks in the same order (compose errors, the environment's container policy, container credentials,
builds, quotas, secrets), so each of them calls this service; no route calls another route for them. app.py builds
one `StackService` with what it needs and routes find it on the app (`stack_service_of`). Writes wake the
orchestrator, which does the actual work, and are published on the event bus.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from fastapi import Request

from corral.compose import ComposeFile, load_stack
from corral.config import Settings
from corral.model.builds import BuildRecord
from corral.model.entities import Environment
from corral.model.errors import Conflict, InvalidInput
from corral.model.names import validate_name
from corral.model.policy import ContainerPolicy, enforce
from corral.model.quotas import Demand, Quotas, demand_of, spec_demand
from corral.model.quotas import enforce as enforce_quotas
from corral.model.stack import Service, Stack, StackSpec
from corral.orchestrator.pass_inputs import host_view, slot_view
from corral.orchestrator.preview import World
from corral.orchestrator.restarts import new_restart
from corral.orchestrator.rules import parse_rules
from corral.orchestrator.stack_checks import check_scheduling_labels
from corral.orchestrator.upgrades import strategy_for
from corral.server.control.orchestration import Orchestrator
from corral.server.hub.builds import BuildCoordinator
from corral.server.security.service_accounts import check_service_accounts
from corral.server.services.stack_builds import earlier_records, previous_records, request_builds, with_builds
from corral.server.services.stack_requests import RollingRestart, StackFiles, UpgradeRequest
from corral.server.services.stack_secrets import store_stack_secrets, uploads_of
from corral.server.shared.events import EventBus
from corral.store.repository import Store
from corral.store.secrets import SecretStore
from corral.store.stacks import StackStore


def store_of(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def stacks_of(request: Request) -> StackStore:
    stacks: StackStore = request.app.state.stacks
    return stacks


def stack_service_of(request: Request) -> StackService:
    service: StackService = request.app.state.stack_service
    return service


def parse_stack_files(body: StackFiles) -> tuple[StackSpec, dict[str, Any]]:
    """The files -> a checked StackSpec and the files to store with it, without storing anything."""
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


class StackService:
    def __init__(
        self,
        *,
        store: Store,
        stacks: StackStore,
        bus: EventBus,
        orchestrator: Orchestrator,
        settings: Settings,
        secrets: SecretStore,
        builds: BuildCoordinator | None,
    ) -> None:
        self.store = store
        self.stacks = stacks
        self.bus = bus
        self.orchestrator = orchestrator
        self.settings = settings  # read at each call: quotas and the data dir
        self.secrets = secrets
        self.builds = builds  # None: this server does not build images

    def wake(self) -> None:
        self.orchestrator.trigger()

    def service_changed(self, service: Service, action: str) -> None:
        """Wake the orchestrator and publish the service's `action` (restart, confirm-upgrade, rollback)."""
        self.wake()
        self.bus.publish(
            "service", "updated", {"id": service.id, "name": service.name, "action": action}, service.environment_id
        )

    def scale(self, service_id: str, scale: int) -> Service:
        """`POST /v1/services/{id}/scale` (0..`max_scale`): the service and its sidekicks (a unit has one scale),
        within the environment's quotas; returns the service with the scale this call stored (a concurrent scale
        may store another one after it). Reads from the in-memory state while it is fresh (no query before the
        write), from the database otherwise."""
        memory = self.orchestrator.reads if self.orchestrator.reads.state.fresh else None
        get_service = memory.get_service if memory is not None else self.stacks.get_service
        list_services = memory.list_services if memory is not None else self.stacks.list_services
        get_environment = memory.get_environment if memory is not None else self.store.get_environment
        service = get_service(service_id)
        if (primary := service.spec.sidekick_of) is not None:
            raise InvalidInput(
                f"{service.name} is a sidekick of {primary}: it runs one container beside each {primary} container; "
                f"scale {primary} instead",
                field="scale",
            )
        env = get_environment(service.environment_id)
        in_stack = list_services(stack_id=service.stack_id)
        unit = {service.id} | {s.id for s in in_stack if s.spec.sidekick_of == service.name}
        enforce_quotas(
            self.environment_quotas(env),
            stack=service.stack,
            stack_now=demand_of(s.scale for s in in_stack),
            stack_after=demand_of(scale if s.id in unit else s.scale for s in in_stack),
            environment_now=demand_of(s.scale for s in list_services(environment_id=env.id)),
            environment=env.name,
        )
        for member in sorted(unit, key=lambda member_id: member_id != service.id):  # the service first
            self.stacks.set_scale(member, scale)
        self.wake()
        self.bus.publish("service", "updated", {"id": service.id, "scale": scale}, service.environment_id)
        return dataclasses.replace(get_service(service_id), scale=scale)

    def quota_defaults(self) -> Quotas:
        """The server's quotas (`CORRAL_QUOTA_*`), under each environment's own."""
        settings = self.settings
        return Quotas(
            services_per_stack=settings.quota_services_per_stack,
            services_per_environment=settings.quota_services_per_environment,
            containers_per_stack=settings.quota_containers_per_stack,
            containers_per_environment=settings.quota_containers_per_environment,
        )

    def environment_quotas(self, env: Environment) -> Quotas:
        return self.quota_defaults().with_overrides(env.quotas)

    def environment_policy(self, env: Environment) -> ContainerPolicy:
        """The environment's allowed dangerous settings; the server's data directory is a system path too."""
        return ContainerPolicy(env.allow, (str(self.settings.data_dir),))

    def check_quotas(self, env: Environment, spec: StackSpec, stack_id: str | None) -> None:
        """`QuotaExceeded` (422 `quota`, every quota passed) when storing `spec` as the stack `stack_id` (None: a new
        one) would pass the environment's quotas."""
        scales = self.stacks.service_scales(env.id)
        stack_now = demand_of(scale for sid, scale in scales if sid == stack_id) if stack_id else Demand()
        enforce_quotas(
            self.environment_quotas(env),
            stack=spec.name,
            stack_now=stack_now,
            stack_after=spec_demand(spec),
            environment_now=demand_of(scale for _, scale in scales),
            environment=env.name,
        )

    def with_builds(
        self,
        body: StackFiles,
        spec: StackSpec,
        files: dict[str, Any],
        previous: dict[str, BuildRecord],
        earlier: dict[str, BuildRecord] | None = None,
        *,
        store_contexts: bool = True,
    ) -> tuple[StackSpec, dict[str, BuildRecord]]:
        """The spec with its `build:` services' images, and the builds to request once the stack is stored; a plan
        (`store_contexts=False`) stores no context: a service built anew shows its next image."""
        return with_builds(
            self.builds,
            spec,
            files,
            compose_name=body.compose_name,
            compose_text=body.compose,
            answers=body.answers,
            contexts=body.build_contexts if store_contexts else None,
            context_of=body.build_context_of,
            mode=body.build,
            previous=previous,
            earlier=earlier,
        )

    def create(self, body: StackFiles) -> Stack:
        """`POST /v1/stacks`: a new stack from these files (Conflict when one has its name)."""
        env = self.store.get_environment(body.environment)
        spec, files = parse_stack_files(body)
        spec, records = self.with_builds(body, spec, files, {})
        spec = enforce(spec, self.environment_policy(env), env.name)
        self.check_quotas(env, spec, None)
        stack = self.stacks.create_stack(env.id, spec, files)
        request_builds(self.builds, env.id, stack.id, records)
        self.wake()
        self.bus.publish("stack", "created", {"id": stack.id, "name": stack.name}, env.id)
        return stack

    def apply(
        self, body: StackFiles, *, catalog: dict[str, Any] | None = None, create_only: bool = False
    ) -> tuple[Stack, list[str], bool]:
        """`corral up` (also behind catalog install and upgrade): parse, then create or update the stack.

        Returns the stack, the names of changed services and whether it was created. `catalog` is the stack's origin
        to store (None keeps it); `create_only` refuses a stack that exists (Conflict) instead of updating it.
        """
        env = self.store.get_environment(body.environment)
        spec, files = parse_stack_files(body)
        spec = enforce(spec, self.environment_policy(env), env.name)  # PolicyRefused (422) before anything is stored
        check_service_accounts(spec)  # InvalidInput (422) for a container credential role above restricted
        stacks = self.stacks
        existing = next((s for s in stacks.list_stacks(env.id) if s.name == spec.name), None)
        if existing is not None and create_only:
            raise Conflict(f"a stack named {spec.name!r} already exists in this environment", field="stack")
        old_files = stacks.stack_files(existing.id) if existing is not None else {}
        spec, records = self.with_builds(body, spec, files, previous_records(old_files), earlier_records(old_files))
        self.check_quotas(env, spec, existing.id if existing is not None else None)  # QuotaExceeded (422)
        store_stack_secrets(self.secrets, env.id, spec, body)  # external ones must exist; file/environment ones stored
        if existing is None:
            stack = stacks.create_stack(env.id, spec, files, catalog=catalog)
            changed = [s.name for s in spec.services]
        else:
            strategies = upgrade_strategies(spec, body.upgrade) if body.upgrade is not None else None
            stack, changed = stacks.update_stack(
                existing.id, spec, files, upgrade_strategies=strategies, catalog=catalog
            )
        request_builds(self.builds, env.id, stack.id, records)
        self.wake()
        self.bus.publish("stack", "updated", {"id": stack.id, "name": stack.name}, env.id)
        return stack, changed, existing is None

    def world(self, env: Environment) -> World:
        """The environment as the orchestrator's next pass would see it (the in-memory state: no query)."""
        orchestrator = self.orchestrator
        snapshot = orchestrator.snapshot()
        services = [s for s in snapshot.services if s.environment_id == env.id]
        specs = {s.id: s.spec for s in services}
        records = [r for r in snapshot.slots if r.slot.environment_id == env.id]
        return World(
            environment_id=env.id,
            environment=env.name,
            hosts=[host_view(h) for h in snapshot.hosts if h.environment_id == env.id],
            services=services,
            slots=[slot_view(r, snapshot.observed.get(r.slot.id), specs.get(r.service_id)) for r in records],
            retired=frozenset(r.slot.id for r in records if r.retired),
            image_reports=[h.images for h in snapshot.hosts if h.environment_id == env.id],
            now=time.time(),
            stack_ids={s.name: s.id for s in orchestrator.reads.snapshot().stacks(environment_id=env.id)},
        )

    def request_restart(self, service: Service, slot_ids: list[str], body: RollingRestart | None) -> None:
        """Store a restart of `slot_ids` (in this order; all at once without a body) and wake the orchestrator."""
        progress = new_restart(
            slot_ids,
            batch_size=body.batch_size if body is not None else None,
            interval_ms=body.interval_ms if body is not None else 0,
            initializing_ms=check.initializing_timeout_ms if (check := service.spec.health()) is not None else 0,
        )
        self.stacks.request_restart(service.id, progress)
        self.service_changed(service, "restart")
