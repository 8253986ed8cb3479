"""The whole pipeline: load → interpolate → validate → merge docker-compose.yml with rancher-compose.yml → `StackSpec`.

Why the stack-level checks live here: service names, references between services (depends_on, links,
network_mode service:), dependency cycles and the start order are properties of the set of services, not of one;
the same goes for rancher-compose entries that must name a service of docker-compose.yml.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from corral.compose.envfile import read_env_file
from corral.compose.extends import active_services, resolve_extends
from corral.compose.interpolate import Interpolator
from corral.compose.lb_config import lb_service
from corral.compose.location import Loc
from corral.compose.networks import declared_networks
from corral.compose.rancher import RancherService, parse_rancher_service
from corral.compose.service import ParsedService, ServiceContext, env_file_entries, parse_service
from corral.compose.sidekicks import apply_units, resolve_units
from corral.compose.values import as_bool, as_str, kind, mapping, scalar_text
from corral.compose.virtual_service import virtual_service
from corral.compose.yamlsafe import load_yaml
from corral.model.errors import InvalidInput
from corral.model.health import merge_health_check
from corral.model.stack import ServiceSpec, StackSpec, VolumeScope

SERVICE_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")
_VERSION = re.compile(r"[23](?:\.[0-9]+)?")
_TOP_KEYS = frozenset({"version", "services", "volumes", "networks", "secrets", "configs"})  # the last two: files.py
_TOP_IGNORED = frozenset({"include", "models"})
_CATALOG_KEYS = frozenset({"catalog", ".catalog"})
_VOLUME_KEYS = frozenset({"driver", "driver_opts", "external", "labels", "name", "per_container"})
# A bound of the parser, before any service is read (the operator's limits are the quotas, model/quotas.py); the
# largest services_per_stack quota that compose files can reach.
MAX_SERVICES = 2000


def build_stack(
    stack_name: str,
    compose_name: str,
    compose_text: str,
    rancher: tuple[str, str] | None,
    *,
    answers: Mapping[str, str],
    env_files: Mapping[str, str],
    base_dir: str | None,
    profiles: frozenset[str] = frozenset(),
) -> StackSpec:
    warnings: list[str] = []
    doc = _top_mapping(load_yaml(compose_text, compose_name, warnings=warnings), compose_name)
    interpolator = Interpolator(answers)
    raw_services, services_loc = _compose_layout(doc, compose_name, stack_name, warnings)
    if len(raw_services) > MAX_SERVICES:
        raise services_loc.error(f"{len(raw_services)} services; a compose file may define at most {MAX_SERVICES}")
    raw_services = {
        name: interpolator.value(body, services_loc.in_service(name)) for name, body in raw_services.items()
    }

    def read_side_file(path: str, loc: Loc) -> str:
        return read_env_file(path, loc, env_files=env_files, base_dir=base_dir, what="extends file")

    def load_side_file(file_name: str, text: str) -> dict[str, Any]:
        side = _top_mapping(load_yaml(text, file_name, warnings=warnings), file_name)
        side_services, side_loc = _compose_layout(side, file_name, stack_name, warnings)
        return {name: interpolator.value(body, side_loc.in_service(name)) for name, body in side_services.items()}

    raw_services = resolve_extends(raw_services, services_loc, read_file=read_side_file, load_file=load_side_file)
    raw_services, disabled = active_services(raw_services, profiles, services_loc)
    volume_names: dict[str, str] | None = None
    volume_scopes: dict[str, VolumeScope] = {}
    if "version" in doc or "services" in doc:
        volumes_loc = Loc(compose_name, ("volumes",))
        volume_names, volume_scopes = _volumes(
            interpolator.value(doc.get("volumes"), volumes_loc), volumes_loc, warnings, stack_name=stack_name
        )
    networks: dict[str, str] | None = None  # None: the environment's flat network (nothing declares networks)
    internal_networks: set[str] = set()
    if doc.get("networks") or any(isinstance(b, dict) and b.get("networks") for b in raw_services.values()):
        networks_loc = Loc(compose_name, ("networks",))
        networks = declared_networks(
            interpolator.value(doc.get("networks"), networks_loc),
            networks_loc,
            warnings,
            stack_name=stack_name,
            internal=internal_networks,
        )
    warnings.extend(interpolator.warnings())
    if not raw_services:
        raise services_loc.error("no services are defined" + (" (all are disabled by profiles)" if disabled else ""))

    ctx = ServiceContext(
        answers,
        env_files,
        base_dir,
        volume_names,
        warnings,
        stack_name=stack_name,
        volume_scopes=volume_scopes,
        networks=networks,
        internal_networks=frozenset(internal_networks),
    )
    renames = _service_names(list(raw_services), services_loc, warnings)
    parsed: dict[str, ParsedService] = {}
    errors: list[InvalidInput] = []
    for name, body in raw_services.items():
        checked = renames.get(name, name)
        try:
            parsed[checked] = parse_service(checked, body, services_loc.in_service(name), ctx)
        except InvalidInput as exc:
            errors.append(exc)
    parsed = {name: _renamed(service, renames) for name, service in parsed.items()}
    if not errors:
        errors.extend(_reference_errors(parsed, compose_name, disabled))
    if errors:
        raise _combined(errors, interpolator.unset)
    _check_cycles(parsed, compose_name)
    parsed = _links_order_start_up(parsed, warnings)
    parsed, units = resolve_units(parsed, compose_name)

    extra: dict[str, RancherService] = {}
    if rancher is not None:
        extra = _rancher(rancher[0], rancher[1], compose_name, parsed, answers, warnings, renames)

    rancher_file = rancher[0] if rancher is not None else "rancher-compose.yml"
    plain = {name: extra.get(name, RancherService()) for name in parsed}
    services = tuple(
        virtual_service(
            lb_service(_spec(parsed[n], plain[n]), plain[n].lb_config, warnings, rancher_file),
            plain[n].external_ips,
            plain[n].hostname,
            warnings,
            rancher_file,
        )
        for n in _start_order(parsed)
    )
    explicit_scale = {n: s for n in parsed if (s := _explicit_scale(parsed[n], extra.get(n))) is not None}
    loc_of = {n: p.loc for n, p in parsed.items()}
    services = apply_units(services, units, explicit_scale=explicit_scale, loc_of=loc_of, warnings=warnings)
    services = _condition_targets(services, loc_of, warnings)
    _check_container_names(parsed, services, warnings)
    return StackSpec(name=stack_name, services=services, warnings=tuple(warnings))


def _condition_targets(
    services: tuple[ServiceSpec, ...], loc_of: Mapping[str, Loc], warnings: list[str]
) -> tuple[ServiceSpec, ...]:
    """What a depends_on condition asks of its service: one waited for with service_completed_successfully runs
    once to its end (Compose does not restart it; Cattle restarts an exited container), and one waited for with
    service_healthy needs a health check (else the wait names the missing check; an image's HEALTHCHECK counts)."""
    completed = {d for s in services for d, c in s.depends_conditions if c == "service_completed_successfully"}
    healthy = sorted({d for s in services for d, c in s.depends_conditions if c == "service_healthy"})
    by_name = {s.name: s for s in services}
    for name in healthy:
        target = by_name.get(name)
        if target is not None and target.health_check is None and target.launch.healthcheck is None:
            warnings.append(
                f"{loc_of[name].service_prefix()}: services wait for it to be healthy (depends_on condition "
                "service_healthy) but it has no healthcheck; they wait until its image's HEALTHCHECK passes"
            )
    result = []
    for spec in services:
        if spec.name in completed:
            if spec.launch.restart != "no":
                warnings.append(
                    f"{loc_of[spec.name].service_prefix()}: services wait for it to complete (depends_on condition "
                    f"service_completed_successfully) but restart {spec.launch.restart!r} restarts it when it ends"
                )
            else:
                spec = replace(spec, launch=replace(spec.launch, run_once=True))
        result.append(spec)
    return tuple(result)


def _combined(errors: list[InvalidInput], unset: Mapping[str, Loc]) -> InvalidInput:
    """Every error of the file at once, the first one's field for clients that show one."""
    hint = f" (variables not set: {', '.join(sorted(unset))})" if unset else ""
    if len(errors) == 1:
        return InvalidInput(errors[0].message + hint, field=errors[0].field)
    lines = "\n".join(f"  - {exc.message}" for exc in errors)
    return InvalidInput(f"{len(errors)} errors{hint}:\n{lines}", field=errors[0].field)


def _service_names(names: list[str], services_loc: Loc, warnings: list[str]) -> dict[str, str]:
    """Valid names as they are; mixed-case ones (Rancher 1.6 ran them) lowercased with a warning."""
    renames: dict[str, str] = {}
    for name in names:
        lowered = name.lower()
        if lowered != name and _valid_service_name(lowered) and lowered not in names:
            warnings.append(
                f"{services_loc.file}: service {name!r} is named {lowered!r} (container and DNS names are lowercase)"
            )
            renames[name] = lowered
        elif not _valid_service_name(name):
            _service_name(name, services_loc)  # raises, with a suggestion
    return renames


def _renamed(service: ParsedService, renames: Mapping[str, str]) -> ParsedService:
    if not renames:
        return service

    def link(text: str) -> str:
        target, sep, alias = text.partition(":")
        return f"{renames.get(target, target)}{sep}{alias}"

    return replace(
        service,
        depends_on=tuple(sorted({renames.get(d, d) for d in service.depends_on})),
        depends_conditions=tuple(sorted((renames.get(d, d), c) for d, c in service.depends_conditions)),
        references=tuple((renames.get(t, t), where, how) for t, where, how in service.references),
        launch=replace(service.launch, links=tuple(link(x) for x in service.launch.links)),
    )


def _links_order_start_up(parsed: dict[str, ParsedService], warnings: list[str]) -> dict[str, ParsedService]:
    """A link orders start-up as depends_on does (Compose adds that dependency); links that form a cycle, which
    Rancher 1.6 allowed, are kept for DNS but order nothing (warned)."""
    with_links = {
        name: replace(
            service,
            depends_on=tuple(sorted({*service.depends_on, *(t for t, _, how in service.references if how == "links")})),
        )
        for name, service in parsed.items()
    }
    if with_links == parsed:
        return parsed
    if len(_start_order(with_links)) == len(with_links):
        return with_links
    linked = sorted(name for name, service in parsed.items() if "links" in {how for _, _, how in service.references})
    warnings.append(
        f"{next(iter(parsed.values())).loc.file}: the links of {', '.join(linked)} form a cycle: "
        "they give DNS names but do not order start-up"
    )
    return parsed


def _check_container_names(
    parsed: Mapping[str, ParsedService], services: tuple[ServiceSpec, ...], warnings: list[str]
) -> None:
    for service in services:
        source = parsed.get(service.name)
        if source is None or not source.container_name:
            continue
        where = source.loc.key("container_name")
        if service.scale > 1:
            raise where.error(
                f"a container name is unique: the service cannot run {service.scale} containers named "
                f"{source.container_name!r} (remove container_name, or scale to 1)"
            )
        warnings.append(
            f"{where.prefix()}: the container is named by Corral; {service.name!r} reaches it by DNS, "
            f"and {source.container_name!r} was not used"
        )


def collect_env_files(
    compose_name: str, compose_text: str, base_dir: str, *, answers: Mapping[str, str]
) -> dict[str, str]:
    """Read every env file and `extends` file the compose file's services name, from below `base_dir`: what a
    client uploads as `env_files`. Optional (`required: false`) env files that are missing are left out."""
    doc = _top_mapping(load_yaml(compose_text, compose_name, warnings=[]), compose_name)
    raw_services, services_loc = _compose_layout(doc, compose_name, "", [])
    interpolator = Interpolator(answers)
    contents: dict[str, str] = {}

    def read_side_file(path: str, loc: Loc) -> str:
        contents[path] = read_env_file(path, loc, env_files={}, base_dir=base_dir, what="extends file")
        return contents[path]

    def load_side_file(file_name: str, text: str) -> dict[str, Any]:
        side = _top_mapping(load_yaml(text, file_name, warnings=[]), file_name)
        side_services, side_loc = _compose_layout(side, file_name, "", [])
        return {name: interpolator.value(body, side_loc.in_service(name)) for name, body in side_services.items()}

    bodies = {name: interpolator.value(raw, services_loc.in_service(name)) for name, raw in raw_services.items()}
    resolved = resolve_extends(bodies, services_loc, read_file=read_side_file, load_file=load_side_file)
    for name, body in resolved.items():
        if not isinstance(body, dict):
            continue
        for path, required, where in env_file_entries(body, services_loc.in_service(name)):
            try:
                contents[path] = read_env_file(path, where, env_files={}, base_dir=base_dir)
            except InvalidInput:
                if required:
                    raise
    return contents


def _top_mapping(doc: Any, file_name: str) -> dict[str, Any]:
    if doc is None:
        raise Loc(file_name).error("the file is empty")
    if not isinstance(doc, dict):
        raise Loc(file_name).error(f"the top level must be a mapping, not {kind(doc)}")
    return _text_keys(doc, Loc(file_name))


def _compose_layout(
    doc: dict[str, Any], file_name: str, stack_name: str, warnings: list[str]
) -> tuple[dict[str, Any], Loc]:
    """The services mapping and where it sits: under `services:` (v2, v3, compose spec) or at the top (v1)."""
    top = Loc(file_name)
    if "version" not in doc and "services" not in doc:
        return {k: v for k, v in doc.items() if not k.startswith("x-")}, top
    if "version" in doc:
        _version(doc["version"], top.key("version"))
    for key in doc:
        if key.startswith("x-") or key in _TOP_KEYS - _TOP_IGNORED:
            continue
        if key in _TOP_IGNORED:
            if doc[key]:
                warnings.append(f"{file_name}: top-level key {key!r} is not supported yet and was ignored")
        elif key == "name":
            if doc[key] != stack_name:
                warnings.append(f"{file_name}: top-level key 'name' was ignored: the stack is named {stack_name!r}")
        else:
            raise top.key(key).error(
                f"unknown top-level key {key!r} (known: {', '.join(sorted(_TOP_KEYS | _TOP_IGNORED | {'name'}))})"
            )
    services_loc = top.key("services")
    return _services(doc.get("services"), services_loc), services_loc


def _services(value: Any, loc: Loc) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise loc.error(f"must be a mapping, not {kind(value)}")
    return _text_keys(value, loc)


def _text_keys(value: dict[Any, Any], loc: Loc) -> dict[str, Any]:
    """A mapping whose keys may be service names, as text (a service may be called `2048`; YAML reads a number)."""
    result: dict[str, Any] = {}
    for key, body in value.items():
        name = scalar_text(key, loc) if isinstance(key, str | int) and not isinstance(key, bool) else repr(key)
        if name in result:
            raise loc.key(name).error(f"{name!r} is defined twice")
        result[name] = body
    return result


def _version(value: Any, loc: Loc) -> str:
    text = scalar_text(value, loc) if not isinstance(value, dict | list) else kind(value)
    if not _VERSION.fullmatch(text):
        raise loc.error(f"unsupported version {text!r} (use '2', '2.x', '3' or '3.x'; version 1 files have no version)")
    return text


def _volumes(
    value: Any, loc: Loc, warnings: list[str], *, stack_name: str
) -> tuple[dict[str, str], dict[str, VolumeScope]]:
    """Top-level volume declarations, their Docker names and Rancher scopes: `<stack>_<key>` (scoped to the stack,
    as Compose scopes them to the project), the `name:` given, or the external volume's name as is (scope
    "environment": it must exist); `per_container: true` gives each container index its own (scope "container")."""
    names: dict[str, str] = {}
    scopes: dict[str, VolumeScope] = {}
    for name, conf in mapping(value, loc).items():
        where = loc.key(name)
        options = mapping(conf, where)
        for key in options:
            if key not in _VOLUME_KEYS:
                raise where.key(key).error(f"unknown volume key {key!r} (known: {', '.join(sorted(_VOLUME_KEYS))})")
        driver = options.get("driver")
        if driver not in (None, "", "local"):
            warnings.append(
                f"{loc.file}: volume {name}: driver {scalar_text(driver, where)!r} is not supported yet; "
                "Docker's local driver is used"
            )
        for key in ("driver_opts", "labels"):
            if options.get(key):
                warnings.append(f"{loc.file}: volume {name}: key {key!r} is not supported yet and was ignored")
        names[name] = f"{stack_name}_{name}" if stack_name else name
        external = options.get("external")
        if isinstance(external, dict):
            external_name = mapping(external, where.key("external")).get("name")
            names[name] = name
            if external_name is not None:
                names[name] = as_str(external_name, where.key("external").key("name"))
            scopes[name] = "environment"
        elif external is not None and as_bool(external, where.key("external")):
            names[name] = name
            scopes[name] = "environment"
        if options.get("name") is not None:
            names[name] = as_str(options["name"], where.key("name"))
        if options.get("per_container") is not None and as_bool(options["per_container"], where.key("per_container")):
            if name in scopes:
                raise where.key("per_container").error("an external volume cannot be per_container (it exists once)")
            scopes[name] = "container"
    return names, scopes


def _valid_service_name(text: str) -> bool:
    return len(text) <= 63 and SERVICE_NAME.fullmatch(text) is not None


def _service_name(text: str, services_loc: Loc) -> str:
    if _valid_service_name(text):
        return text
    suggestion = re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]+", "-", text.lower())).strip("-")[:63].strip("-")
    raise services_loc.key(text).error(
        f"service name {text!r} is not valid: use 1-63 lowercase letters, digits and inner dashes "
        f"(for example {suggestion or 'web'!r}); Corral uses it in container names"
    )


def _reference_errors(parsed: dict[str, ParsedService], file_name: str, disabled: set[str]) -> list[InvalidInput]:
    errors = []
    for service in parsed.values():
        for target, where, how in service.references:
            if target in disabled:
                errors.append(where.error(f"{how} names service {target!r}, which its profiles leave out"))
            elif target not in parsed:
                errors.append(where.error(f"{how} names service {target!r}, which is not defined in {file_name}"))
    return errors


def _check_cycles(parsed: dict[str, ParsedService], file_name: str) -> None:
    """Find a depends_on cycle (depth first, names in sorted order so the reported cycle is stable)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for root in sorted(parsed):
        if root in state:
            continue
        path = [root]
        pending = [iter(sorted(parsed[root].depends_on))]
        state[root] = 1
        while path:
            nxt = next(pending[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                pending.pop()
                continue
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt]
                raise parsed[cycle[0]].loc.key("depends_on").error(f"dependency cycle: {' -> '.join(cycle)}")
            if nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                pending.append(iter(sorted(parsed[nxt].depends_on)))


def _start_order(parsed: dict[str, ParsedService]) -> list[str]:
    """Topological order of depends_on; among services ready at the same time, by name."""
    waiting = {name: len(service.depends_on) for name, service in parsed.items()}
    dependents: dict[str, list[str]] = {name: [] for name in parsed}
    for name, service in parsed.items():
        for dependency in service.depends_on:
            dependents[dependency].append(name)
    ready = [name for name, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        name = heapq.heappop(ready)
        order.append(name)
        for dependent in dependents[name]:
            waiting[dependent] -= 1
            if waiting[dependent] == 0:
                heapq.heappush(ready, dependent)
    return order


def _rancher(
    file_name: str,
    text: str,
    compose_name: str,
    parsed: dict[str, ParsedService],
    answers: Mapping[str, str],
    warnings: list[str],
    renames: Mapping[str, str],
) -> dict[str, RancherService]:
    doc = load_yaml(text, file_name, warnings=warnings)
    if doc is None:
        return {}
    doc = _top_mapping(doc, file_name)
    top = Loc(file_name)
    if "version" in doc or "services" in doc:
        if "version" in doc:
            _version(doc["version"], top.key("version"))
        for key in doc:
            if key not in ("version", "services") and key not in _CATALOG_KEYS and not key.startswith("x-"):
                raise top.key(key).error(f"unknown top-level key {key!r} (known: catalog, services, version)")
        services_loc = top.key("services")
        raw = _services(doc.get("services"), services_loc)
    else:
        services_loc = top
        raw = {k: v for k, v in doc.items() if k not in _CATALOG_KEYS and not k.startswith("x-")}
    interpolator = Interpolator(answers)
    entries = {name: interpolator.value(body, services_loc.in_service(name)) for name, body in raw.items()}
    warnings.extend(interpolator.warnings())
    result: dict[str, RancherService] = {}
    for raw_name, body in entries.items():
        name = renames.get(raw_name, raw_name)
        if name not in parsed:  # Rancher 1.6 ignored these (often a load balancer or a removed service)
            warnings.append(
                f"{file_name}: service {raw_name!r} is not defined in {compose_name}; its settings were ignored"
            )
            continue
        result[name] = parse_rancher_service(body, services_loc.in_service(raw_name), warnings)
    return result


def _explicit_scale(service: ParsedService, extra: RancherService | None) -> int | None:
    if extra is not None and extra.scale is not None:
        return extra.scale
    return service.scale


def _spec(service: ParsedService, extra: RancherService) -> ServiceSpec:
    if extra.scale is not None:
        scale = extra.scale
    elif service.scale is not None:
        scale = service.scale
    else:
        scale = 1
    health = merge_health_check(service.health_check, extra.health_check)
    return ServiceSpec(
        name=service.name,
        launch=service.launch,
        scale=scale,
        depends_on=service.depends_on,
        depends_conditions=service.depends_conditions,
        networks=service.networks,
        network_aliases=service.network_aliases,
        internal=service.internal,
        start_on_create=extra.start_on_create if extra.start_on_create is not None else True,
        health_check=health.to_dict() if health is not None else None,
        upgrade_strategy=extra.upgrade_strategy,
        retain_ip=bool(extra.retain_ip),
        metadata=extra.metadata or {},
        mem_reservation_bytes=(
            extra.mem_reservation_bytes if extra.mem_reservation_bytes is not None else service.mem_reservation_bytes
        ),
        cpu_reservation=extra.cpu_reservation if extra.cpu_reservation is not None else service.cpu_reservation,
    )
