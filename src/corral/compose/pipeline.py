"""The whole pipeline: load → interpolate → validate → merge docker-compose.yml with rancher-compose.yml → `StackSpec`.

Why the stack-level checks live here: service names, references between services (depends_on, links,
network_mode service:), dependency cycles and the start order are properties of the set of services, not of one;
the same goes for rancher-compose entries that must name a service of docker-compose.yml.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Mapping
from typing import Any

from corral.compose.envfile import read_env_file
from corral.compose.interpolate import Interpolator
from corral.compose.location import Loc
from corral.compose.rancher import RancherService, parse_rancher_service
from corral.compose.service import ParsedService, ServiceContext, env_file_entries, parse_service
from corral.compose.sidekicks import apply_units, resolve_units
from corral.compose.values import as_bool, as_str, kind, mapping, scalar_text
from corral.compose.yamlsafe import load_yaml
from corral.model.errors import InvalidInput
from corral.model.health import merge_health_check
from corral.model.stack import ServiceSpec, StackSpec

SERVICE_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")
_VERSION = re.compile(r"[23](?:\.[0-9]+)?")
_TOP_KEYS = frozenset({"version", "services", "volumes", "networks", "secrets", "configs"})  # the last two: files.py
_TOP_IGNORED = frozenset({"networks", "include", "models"})
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
) -> StackSpec:
    warnings: list[str] = []
    doc = _top_mapping(load_yaml(compose_text, compose_name), compose_name)
    interpolator = Interpolator(answers)
    raw_services, services_loc = _compose_layout(doc, compose_name, stack_name, warnings)
    if len(raw_services) > MAX_SERVICES:
        raise services_loc.error(f"{len(raw_services)} services; a compose file may define at most {MAX_SERVICES}")
    raw_services = {
        name: interpolator.value(body, services_loc.in_service(name)) for name, body in raw_services.items()
    }
    volume_names: dict[str, str] = {}
    if "version" in doc or "services" in doc:
        volumes_loc = Loc(compose_name, ("volumes",))
        volume_names = _volumes(interpolator.value(doc.get("volumes"), volumes_loc), volumes_loc, warnings)
    warnings.extend(interpolator.warnings())
    if not raw_services:
        raise services_loc.error("no services are defined")

    ctx = ServiceContext(answers, env_files, base_dir, volume_names, warnings, stack_name=stack_name)
    parsed: dict[str, ParsedService] = {}
    try:
        for name, body in raw_services.items():
            checked = _service_name(name, services_loc)
            parsed[checked] = parse_service(checked, body, services_loc.in_service(checked), ctx)
    except InvalidInput as exc:
        if not interpolator.unset:
            raise
        hint = f" (variables not set: {', '.join(sorted(interpolator.unset))})"
        raise InvalidInput(exc.message + hint, field=exc.field) from None
    _check_references(parsed, compose_name)
    _check_cycles(parsed, compose_name)
    parsed, units = resolve_units(parsed, compose_name)

    extra: dict[str, RancherService] = {}
    if rancher is not None:
        extra = _rancher(rancher[0], rancher[1], compose_name, parsed, answers, warnings)

    services = tuple(_spec(parsed[name], extra.get(name, RancherService())) for name in _start_order(parsed))
    explicit_scale = {n: s for n in parsed if (s := _explicit_scale(parsed[n], extra.get(n))) is not None}
    loc_of = {n: p.loc for n, p in parsed.items()}
    services = apply_units(services, units, explicit_scale=explicit_scale, loc_of=loc_of, warnings=warnings)
    return StackSpec(name=stack_name, services=services, warnings=tuple(warnings))


def collect_env_files(
    compose_name: str, compose_text: str, base_dir: str, *, answers: Mapping[str, str]
) -> dict[str, str]:
    """Read every env file the compose file's services name, from below `base_dir`: what a client uploads as
    `env_files`. Optional (`required: false`) files that are missing are left out."""
    doc = _top_mapping(load_yaml(compose_text, compose_name), compose_name)
    raw_services, services_loc = _compose_layout(doc, compose_name, "", [])
    interpolator = Interpolator(answers)
    contents: dict[str, str] = {}
    for name, raw in raw_services.items():
        loc = services_loc.in_service(name)
        body = interpolator.value(raw, loc)
        if not isinstance(body, dict):
            continue
        for path, required, where in env_file_entries(body, loc):
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


def _volumes(value: Any, loc: Loc, warnings: list[str]) -> dict[str, str]:
    """Top-level volume declarations: their Docker names (`name:`), and warnings for unsupported options."""
    names: dict[str, str] = {}
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
        for key in ("driver_opts", "labels", "per_container"):
            if options.get(key):
                warnings.append(f"{loc.file}: volume {name}: key {key!r} is not supported yet and was ignored")
        external = options.get("external")
        if isinstance(external, dict):
            external_name = mapping(external, where.key("external")).get("name")
            if external_name is not None:
                names[name] = as_str(external_name, where.key("external").key("name"))
        elif external is not None:
            as_bool(external, where.key("external"))
        if options.get("name") is not None:
            names[name] = as_str(options["name"], where.key("name"))
    return names


def _service_name(text: str, services_loc: Loc) -> str:
    if len(text) <= 63 and SERVICE_NAME.fullmatch(text):
        return text
    suggestion = re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]+", "-", text.lower())).strip("-")[:63].strip("-")
    raise services_loc.key(text).error(
        f"service name {text!r} is not valid: use 1-63 lowercase letters, digits and inner dashes "
        f"(for example {suggestion or 'web'!r}); Corral uses it in container names"
    )


def _check_references(parsed: dict[str, ParsedService], file_name: str) -> None:
    for service in parsed.values():
        for target, where, how in service.references:
            if target not in parsed:
                raise where.error(f"{how} names service {target!r}, which is not defined in {file_name}")


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
) -> dict[str, RancherService]:
    doc = load_yaml(text, file_name)
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
    for name, body in entries.items():
        if name not in parsed:
            raise services_loc.key(name).error(f"service {name!r} is in {file_name} but not defined in {compose_name}")
        result[name] = parse_rancher_service(body, services_loc.in_service(name), warnings)
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
