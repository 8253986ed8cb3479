"""One docker-compose service mapping into a `LaunchConfig` plus what the stack-level merge still needs.

Why three kinds of keys: keys Corral implements are parsed and validated; keys compose knows but Corral does not
implement yet are reported as warnings (never silently dropped, so a user sees why `logging` had no effect); keys
compose does not know at all are typos and fail, with a suggestion.
"""

from __future__ import annotations

import difflib
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from corral.compose.engine_options import engine_options
from corral.compose.envfile import parse_env_file, read_env_file
from corral.compose.host_access import parse_devices, parse_ipc, parse_pid
from corral.compose.location import Loc, Reference
from corral.compose.networks import service_networks
from corral.compose.ports import parse_expose, parse_ports
from corral.compose.values import (
    as_bool,
    as_float,
    as_int,
    as_str,
    duration_seconds,
    key_values,
    kind,
    mapping,
    memory_bytes,
    sequence,
    str_list,
)
from corral.compose.volumes import parse_volumes, parse_volumes_from
from corral.model.builds import PLACEHOLDER_IMAGE
from corral.model.errors import InvalidInput
from corral.model.health import docker_healthcheck
from corral.model.names import LABEL_KEY_PATTERN
from corral.model.stack import LaunchConfig, RestartPolicy, VolumeScope

MAX_SCALE = 1000

SUPPORTED_KEYS = frozenset({
    "image", "command", "entrypoint", "environment", "env_file", "labels", "ports", "expose", "volumes",
    "working_dir", "user", "hostname", "restart", "stop_grace_period", "cap_add", "cap_drop", "privileged",
    "mem_limit", "cpus", "depends_on", "links", "tty", "stdin_open", "network_mode", "net", "deploy",
    "healthcheck", "scale", "mem_reservation", "milli_cpu_reservation", "volumes_from", "external_links",
    "profiles", "init", "read_only", "shm_size", "stop_signal", "extra_hosts", "tmpfs", "ulimits",
    "pid", "ipc", "devices",
    "networks",  # compose/networks.py
    "secrets", "configs",  # read by compose/files.py
    "build",  # read by compose/build.py
})  # fmt: skip
# Known to compose (any version, plus Rancher's docker-compose extensions) but not implemented: warned and ignored.
IGNORED_KEYS = frozenset({
    "annotations", "attach", "blkio_config", "blkio_weight", "blkio_weight_device", "cgroup", "cgroup_parent",
    "cpu_count", "cpu_percent", "cpu_period", "cpu_quota", "cpu_rt_period", "cpu_rt_runtime",
    "cpu_shares", "cpuset", "credential_spec", "develop", "device_cgroup_rules", "device_read_bps",
    "device_read_iops", "device_write_bps", "device_write_iops", "dns", "dns_opt", "dns_search",
    "dockerfile", "domainname", "gpus", "group_add", "isolation",
    "kernel_memory", "label_file", "log_driver", "log_opt", "logging", "mac_address", "mem_swappiness",
    "memswap_limit", "models", "oom_kill_disable",
    "oom_score_adj", "pids_limit", "platform", "post_start", "pre_stop", "provider",
    "pull_policy", "runtime", "security_opt", "storage_opt",
    "sysctls", "use_api_socket", "userns_mode", "uts", "volume_driver",
})  # fmt: skip
# Known, but ignoring them would change what the service is: an error.
REJECTED_KEYS: dict[str, str] = {}
SPECIAL_KEYS = frozenset({"container_name", "extends"})  # extends is resolved before (compose/extends.py)
KNOWN_KEYS = SUPPORTED_KEYS | IGNORED_KEYS | REJECTED_KEYS.keys() | SPECIAL_KEYS

_DEPLOY_KEYS = frozenset({
    "mode", "replicas", "labels", "resources", "restart_policy", "placement", "update_config",
    "rollback_config", "endpoint_mode",
})  # fmt: skip
_HEALTH_KEYS = frozenset({"test", "interval", "timeout", "retries", "start_period", "start_interval", "disable"})
_DEPENDS_KEYS = frozenset({"condition", "restart", "required"})
_CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")
_IMAGE = re.compile(
    r"(?:(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"|\[[0-9a-fA-F:]+\])(?::[0-9]+)?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[\w][\w.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?"
)
_RESERVED_LABEL_PREFIX = "io.corral."  # Corral's own container labels (runtime/labels.py) ...
# ... except the user-facing ones, which mean what their io.rancher.* twins mean (scheduling, sidekicks, start_once,
# pull_image, requested_ip, ...).
_USER_CORRAL_LABEL_PREFIXES = ("io.corral.scheduler.", "io.corral.container.", "io.corral.sidekicks")


@dataclass
class ServiceContext:
    answers: Mapping[str, str]
    env_files: Mapping[str, str]
    base_dir: str | None
    volume_names: Mapping[str, str] | None  # None: a version 1 file (named volumes are not declared)
    warnings: list[str] = field(default_factory=list)
    stack_name: str = ""  # for Rancher's same-stack `external_links: [service:alias]`
    volume_scopes: Mapping[str, VolumeScope] = field(default_factory=dict)  # top-level key -> scope
    networks: dict[str, str] | None = None  # declared networks (key -> name); None: the flat network
    internal_networks: frozenset[str] = frozenset()  # names of the declared `internal: true` networks


@dataclass(frozen=True)
class ParsedService:
    name: str
    loc: Loc
    launch: LaunchConfig
    depends_on: tuple[str, ...]
    depends_conditions: tuple[tuple[str, str], ...]  # (service, condition) when not service_started
    references: tuple[Reference, ...]  # the services it names: depends_on, links, volumes_from, ...
    scale: int | None
    health_check: dict[str, Any] | None
    mem_reservation_bytes: int | None = None
    cpu_reservation: float | None = None
    container_name: str = ""
    networks: tuple[str, ...] = ()  # the network names it is on; () on the environment's flat network
    network_aliases: tuple[tuple[str, str], ...] = ()  # (network, alias)
    internal: bool = False  # every network it is on is `internal: true`: no traffic leaves the overlay


def unsupported(loc: Loc, key: str) -> str:
    return f"{loc.service_prefix()}: key {key!r} is not supported yet and was ignored"


def parse_service(name: str, raw: Any, loc: Loc, ctx: ServiceContext) -> ParsedService:
    body = mapping(raw, loc, null_ok=False)
    warn = ctx.warnings
    for key in body:
        if key.startswith("x-"):
            continue
        if key not in KNOWN_KEYS:
            close = difflib.get_close_matches(key, sorted(KNOWN_KEYS), n=1, cutoff=0.7)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise loc.key(key).error(f"unknown key {key!r}{hint}")
        if key in IGNORED_KEYS:
            warn.append(unsupported(loc, key))
    for key, reason in REJECTED_KEYS.items():
        if key in body:
            raise loc.key(key).error(reason)
    if body.get("image") is None and body.get("build") is not None:  # compose/build.py names the image
        body = {**body, "image": PLACEHOLDER_IMAGE}
    if body.get("image") is None:
        raise loc.key("image").error("is required (every service needs an image or a build)")
    image = as_str(body["image"], loc.key("image")).strip()
    if not _IMAGE.fullmatch(image):
        raise loc.key("image").error(f"{image!r} is not a valid image reference")

    deploy = _deploy(body.get("deploy"), loc.key("deploy"), warn)
    if deploy.get("labels"):  # Compose puts them on the Swarm service, never on the containers
        _labels(deploy["labels"], loc.key("deploy").key("labels"))
        warn.append(
            f"{loc.service_prefix()}: deploy.labels label the Swarm service, not its containers, and were ignored "
            "(use labels)"
        )
    labels = _labels(body.get("labels"), loc.key("labels"))
    if deploy.get("global"):
        labels.setdefault(GLOBAL_LABEL, "true")
    for key, value in labels.items():
        if ".scheduler.affinity:" in key and not value.strip():
            warn.append(f"{loc.key('labels').key(key).prefix()}: an empty affinity is no constraint (as in Rancher)")
    mem_limit = memory_bytes(body["mem_limit"], loc.key("mem_limit")) if _given(body, "mem_limit") else None
    cpus = as_float(body["cpus"], loc.key("cpus")) if _given(body, "cpus") else None
    mem_limit = deploy.get("memory", mem_limit)
    cpus = deploy.get("cpus", cpus)
    mem_reservation, cpu_reservation = reservations(body, loc)
    mem_reservation = deploy.get("reserve_memory", mem_reservation)
    cpu_reservation = deploy.get("reserve_cpus", cpu_reservation)
    network_mode, network_service = _network_mode(body, loc)
    links, link_refs = _links(body.get("links"), loc.key("links"))
    depends_on, depends_refs, conditions = _depends_on(body.get("depends_on"), loc.key("depends_on"))
    volumes_from, volumes_from_refs = parse_volumes_from(body.get("volumes_from"), loc.key("volumes_from"))
    references = depends_refs + link_refs + ((network_service,) if network_service else ()) + volumes_from_refs

    healthcheck = _healthcheck(body.get("healthcheck"), loc.key("healthcheck"))

    launch = LaunchConfig(
        image=image,
        command=_command(body.get("command"), loc.key("command")),
        entrypoint=_command(body.get("entrypoint"), loc.key("entrypoint")),
        environment=tuple(sorted(_environment(body, loc, ctx).items())),
        labels=tuple(sorted(labels.items())),
        ports=parse_ports(body.get("ports"), loc.key("ports"), warn),
        expose=parse_expose(body.get("expose"), loc.key("expose"), warn),
        volumes=parse_volumes(
            body.get("volumes"),
            loc.key("volumes"),
            warn,
            base_dir=ctx.base_dir,
            volume_names=ctx.volume_names,
            volume_scopes=ctx.volume_scopes,
        ),
        working_dir=_working_dir(body.get("working_dir"), loc.key("working_dir")),
        user=as_str(_value(body, "user", ""), loc.key("user"), numbers=True),
        hostname=as_str(_value(body, "hostname", ""), loc.key("hostname")),
        restart=_restart(body.get("restart", "no"), loc.key("restart"), warn),
        stop_grace_seconds=(
            duration_seconds(body["stop_grace_period"], loc.key("stop_grace_period"))
            if _given(body, "stop_grace_period")
            else None
        ),
        cap_add=str_list(body.get("cap_add"), loc.key("cap_add")),
        cap_drop=str_list(body.get("cap_drop"), loc.key("cap_drop")),
        privileged=as_bool(_value(body, "privileged", False), loc.key("privileged")),
        mem_limit_bytes=mem_limit,
        cpus=cpus,
        tty=as_bool(_value(body, "tty", False), loc.key("tty")),
        stdin_open=as_bool(_value(body, "stdin_open", False), loc.key("stdin_open")),
        network_mode=network_mode,
        links=links,
        external_links=_external_links(body.get("external_links"), loc.key("external_links"), ctx.stack_name),
        volumes_from=volumes_from,
        healthcheck=docker_healthcheck(healthcheck),
        **engine_options(body, loc),
        pid=parse_pid(body.get("pid"), loc.key("pid")),
        ipc=parse_ipc(body.get("ipc"), loc.key("ipc")),
        devices=parse_devices(body.get("devices"), loc.key("devices")),
    )
    if network_mode == "host" and launch.ports:
        raise loc.key("ports").error(
            "a service on the host's network cannot publish ports (its ports are the host's already): "
            "remove ports, or network_mode: host"
        )
    networks: tuple[str, ...] = ()
    aliases: tuple[tuple[str, str], ...] = ()
    if network_mode != "managed" and body.get("networks"):
        raise loc.key("networks").error(
            f"cannot be combined with network_mode {network_mode!r} (Compose refuses both): remove one"
        )
    if ctx.networks is not None and network_mode == "managed":
        networks, aliases = service_networks(
            body.get("networks"), loc.key("networks"), warn, declared=ctx.networks, stack_name=ctx.stack_name
        )
    scale = deploy.get("replicas")
    if scale is None and _given(body, "scale"):
        scale = as_int(body["scale"], loc.key("scale"), low=0, high=MAX_SCALE)
    return ParsedService(
        name=name,
        loc=loc,
        launch=launch,
        depends_on=depends_on,
        depends_conditions=tuple(sorted(conditions.items())),
        references=references,
        scale=scale,
        health_check=healthcheck,
        mem_reservation_bytes=mem_reservation,
        cpu_reservation=cpu_reservation,
        container_name=as_str(_value(body, "container_name", ""), loc.key("container_name")),
        networks=networks,
        network_aliases=aliases,
        internal=bool(networks) and all(n in ctx.internal_networks for n in networks),
    )


def reservations(body: dict[str, Any], loc: Loc) -> tuple[int | None, float | None]:
    """`mem_reservation` (a Docker size) and Rancher's `milli_cpu_reservation` (thousandths of a CPU) for the
    scheduler; used by docker-compose.yml services and rancher-compose.yml entries alike."""
    mem = memory_bytes(body["mem_reservation"], loc.key("mem_reservation")) if _given(body, "mem_reservation") else None
    cpu = None
    if _given(body, "milli_cpu_reservation"):
        milli = as_int(body["milli_cpu_reservation"], loc.key("milli_cpu_reservation"), low=0)
        cpu = milli / 1000 if milli else None
    return mem, cpu


def _given(body: dict[str, Any], key: str) -> bool:
    return body.get(key) is not None


def _value(body: dict[str, Any], key: str, default: Any) -> Any:
    """A key's value, with null meaning "not set", as in compose."""
    value = body.get(key)
    return default if value is None else value


def _command(value: Any, loc: Loc) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return tuple(shlex.split(value))
        except ValueError as exc:
            raise loc.error(f"cannot split {value!r} into words: {exc}") from None
    if isinstance(value, list):
        return str_list(value, loc)
    raise loc.error(f"must be a string or a list of strings, not {kind(value)}")


def env_file_entries(body: dict[str, Any], loc: Loc) -> list[tuple[str, bool, Loc]]:
    """The service's env files as (path, required, where), in order (later files win)."""
    env_loc = loc.key("env_file")
    raw_files = body.get("env_file")
    if isinstance(raw_files, str):
        return [(raw_files, True, env_loc)]
    entries: list[tuple[str, bool, Loc]] = []
    for i, entry in enumerate(sequence(raw_files, env_loc)):
        item_loc = env_loc.key(i)
        if isinstance(entry, dict):
            for key in entry:
                if key not in ("path", "required", "format"):
                    raise item_loc.key(key).error(f"unknown env_file key {key!r} (known: format, path, required)")
            required = as_bool(_value(entry, "required", True), item_loc.key("required"))
            entries.append((as_str(entry.get("path"), item_loc.key("path")), required, item_loc))
        else:
            entries.append((as_str(entry, item_loc), True, item_loc))
    return entries


def _environment(body: dict[str, Any], loc: Loc, ctx: ServiceContext) -> dict[str, str]:
    env: dict[str, str] = {}
    for path, required, item_loc in env_file_entries(body, loc):
        try:
            text = read_env_file(path, item_loc, env_files=ctx.env_files, base_dir=ctx.base_dir)
        except InvalidInput:
            if required:
                raise
            continue
        env.update(parse_env_file(text, path, ctx.answers))
    env_value = body.get("environment")
    if env_value is not None and not isinstance(env_value, list | dict):
        raise loc.key("environment").error(f"must be a list of KEY=VALUE strings or a mapping, not {kind(env_value)}")
    # `KEY` alone takes the caller's value, and is left unset without one (as Compose does, never "")
    env.update(key_values(env_value, loc.key("environment"), missing=ctx.answers.get))
    for key, value in env.items():
        if "=" in key or "\0" in key or "\0" in value:
            raise loc.key("environment").key(key).error(f"{key!r} is not a valid environment variable")
    return env


def _labels(value: Any, loc: Loc) -> dict[str, str]:
    if value is not None and not isinstance(value, list | dict):
        raise loc.error(f"must be a list of KEY=VALUE strings or a mapping, not {kind(value)}")
    labels = key_values(value, loc, missing=lambda key: "")
    for key in labels:
        if key.startswith(_RESERVED_LABEL_PREFIX) and not key.startswith(_USER_CORRAL_LABEL_PREFIXES):
            raise loc.key(key).error(f"label {key!r}: labels starting with {_RESERVED_LABEL_PREFIX} are reserved")
        if not LABEL_KEY_PATTERN.fullmatch(key):
            raise loc.key(key).error(f"{key!r} is not a valid label key")
    return labels


def _working_dir(value: Any, loc: Loc) -> str:
    text = as_str(value if value is not None else "", loc)
    if text and not text.startswith("/"):
        raise loc.error(f"{text!r} must be an absolute path")
    return text


def _restart(value: Any, loc: Loc, warnings: list[str]) -> RestartPolicy:
    if value is False or value is None:
        return "no"
    text = as_str(value, loc).strip()
    if text == "no":
        return "no"
    if text == "always":
        return "always"
    if text == "unless-stopped":
        return "unless-stopped"
    if text == "on-failure":
        return "on-failure"
    if re.fullmatch(r"on-failure:[0-9]+", text):
        warnings.append(f"{loc.prefix()}: the retry count in {text!r} is not supported yet and was ignored")
        return "on-failure"
    raise loc.error(f"{text!r} must be no, always, on-failure[:N] or unless-stopped")


def _network_mode(body: dict[str, Any], loc: Loc) -> tuple[str, tuple[str, Loc, str] | None]:
    if "net" in body and "network_mode" in body:
        raise loc.key("net").error("use network_mode only (net is its old name)")
    key = "net" if "net" in body else "network_mode"
    if body.get(key) is None:
        return "managed", None
    where = loc.key(key)
    text = as_str(body[key], where).strip()
    if text in ("host", "bridge", "none"):
        return text, None
    if text in ("default", "managed", ""):
        return "managed", None
    if text.startswith("container:") and len(text) > len("container:"):
        return text, None
    if text.startswith("service:") and len(text) > len("service:"):
        return text, (text[len("service:") :], where, key)
    raise loc.key(key).error(f"{text!r} must be host, bridge, none, container:NAME or service:NAME")


def _links(value: Any, loc: Loc) -> tuple[tuple[str, ...], tuple[tuple[str, Loc, str], ...]]:
    links = str_list(value, loc)
    refs: list[tuple[str, Loc, str]] = []
    for i, link in enumerate(links):
        target, sep, alias = link.partition(":")
        if not target or (sep and not alias) or ":" in alias:
            raise loc.key(i).error(f"{link!r} must be SERVICE or SERVICE:ALIAS")
        refs.append((target, loc.key(i), "links"))
    return links, tuple(refs)


def _external_links(value: Any, loc: Loc, stack_name: str = "") -> tuple[str, ...]:
    """Rancher's `external_links`: "stack/service[:alias]", a DNS alias for a service of another stack; a plain
    "service[:alias]" (as real catalogs write it) means a service of this stack and is stored as "STACK/service"."""
    links = list(str_list(value, loc))
    for i, link in enumerate(links):
        target, sep, alias = link.partition(":")
        if target and "/" not in target and stack_name:
            links[i] = link = f"{stack_name}/{link}"
            target = f"{stack_name}/{target}"
        stack, slash, service = target.partition("/")
        if not (stack and slash and service) or "/" in service or (sep and not alias) or ":" in alias:
            raise loc.key(i).error(f"{link!r} must be [STACK/]SERVICE or [STACK/]SERVICE:ALIAS")
    return tuple(links)


def _depends_on(value: Any, loc: Loc) -> tuple[tuple[str, ...], tuple[tuple[str, Loc, str], ...], dict[str, str]]:
    """Names, references and the conditions other than service_started (the orchestrator waits for them)."""
    refs: list[tuple[str, Loc, str]] = []
    conditions: dict[str, str] = {}
    if isinstance(value, dict):
        for name, options in mapping(value, loc).items():
            where = loc.key(name)
            refs.append((name, where, "depends_on"))
            opts = mapping(options, where)
            for key in opts:
                if key not in _DEPENDS_KEYS:
                    raise where.key(key).error(f"unknown key {key!r} (known: condition, required, restart)")
            condition = as_str(opts.get("condition", "service_started"), where.key("condition"))
            if condition not in _CONDITIONS:
                raise where.key("condition").error(f"{condition!r} must be one of {', '.join(_CONDITIONS)}")
            if condition != "service_started":
                conditions[name] = condition
            for key in ("restart", "required"):
                if key in opts:
                    as_bool(opts[key], where.key(key))
    else:
        for i, name in enumerate(str_list(value, loc)):
            refs.append((name, loc.key(i), "depends_on"))
    return tuple(sorted({name for name, _, _ in refs})), tuple(refs), conditions


GLOBAL_LABEL = "io.rancher.scheduler.global"


def _deploy(value: Any, loc: Loc, warnings: list[str]) -> dict[str, Any]:
    """The parts of `deploy` Corral uses: replicas, labels, memory and cpus limits and reservations."""
    deploy = mapping(value, loc)
    result: dict[str, Any] = {}
    for key in deploy:
        if key not in _DEPLOY_KEYS:
            raise loc.key(key).error(f"unknown deploy key {key!r} (known: {', '.join(sorted(_DEPLOY_KEYS))})")
        if key in ("restart_policy", "placement", "update_config", "rollback_config", "endpoint_mode"):
            warnings.append(unsupported(loc, f"deploy.{key}"))
    mode = as_str(_value(deploy, "mode", "replicated"), loc.key("mode"))
    if mode not in ("replicated", "global"):
        raise loc.key("mode").error(f"{mode!r} must be replicated or global")
    if mode == "global":  # Swarm's global mode is Cattle's global scheduling: one container per host
        result["global"] = True
    if deploy.get("replicas") is not None:
        result["replicas"] = as_int(deploy["replicas"], loc.key("replicas"), low=0, high=MAX_SCALE)
    if deploy.get("labels") is not None:
        result["labels"] = deploy["labels"]
    resources = mapping(deploy.get("resources"), loc.key("resources"))
    for key in resources:
        if key not in ("limits", "reservations"):
            raise loc.key("resources").key(key).error(f"unknown resources key {key!r} (known: limits, reservations)")
    reserve_loc = loc.key("resources").key("reservations")
    reserve = mapping(resources.get("reservations"), reserve_loc)
    for key in reserve:
        if key not in ("cpus", "memory", "devices", "generic_resources"):
            raise reserve_loc.key(key).error(
                f"unknown reservations key {key!r} (known: cpus, devices, generic_resources, memory)"
            )
        if key in ("devices", "generic_resources"):
            warnings.append(unsupported(loc, f"deploy.resources.reservations.{key}"))
    if reserve.get("memory") is not None:
        result["reserve_memory"] = memory_bytes(reserve["memory"], reserve_loc.key("memory"))
    if reserve.get("cpus") is not None:
        result["reserve_cpus"] = as_float(reserve["cpus"], reserve_loc.key("cpus"))
    limits_loc = loc.key("resources").key("limits")
    limits = mapping(resources.get("limits"), limits_loc)
    for key in limits:
        if key not in ("cpus", "memory", "pids", "devices"):
            raise limits_loc.key(key).error(f"unknown limits key {key!r} (known: cpus, devices, memory, pids)")
        if key in ("pids", "devices"):
            warnings.append(unsupported(loc, f"deploy.resources.limits.{key}"))
    if limits.get("memory") is not None:
        result["memory"] = memory_bytes(limits["memory"], limits_loc.key("memory"))
    if limits.get("cpus") is not None:
        result["cpus"] = as_float(limits["cpus"], limits_loc.key("cpus"))
    return result


def _healthcheck(value: Any, loc: Loc) -> dict[str, Any] | None:
    """Normalised: `test` as a list (["CMD-SHELL", s] for a string), durations in seconds, `retries` an int."""
    if value is None:
        return None
    check = mapping(value, loc)
    for key in check:
        if key not in _HEALTH_KEYS:
            raise loc.key(key).error(f"unknown healthcheck key {key!r} (known: {', '.join(sorted(_HEALTH_KEYS))})")
    if "disable" in check and as_bool(check["disable"], loc.key("disable")):
        return {"test": ["NONE"]}
    result: dict[str, Any] = {}
    if "test" in check:
        test = check["test"]
        if isinstance(test, str):
            if not test.strip():
                raise loc.key("test").error("must not be empty")
            result["test"] = ["CMD-SHELL", test]
        else:
            words = list(str_list(test, loc.key("test")))
            if not words or words[0] not in ("NONE", "CMD", "CMD-SHELL"):
                raise loc.key("test").error("a list must start with NONE, CMD or CMD-SHELL")
            if words[0] != "NONE" and len(words) < 2:
                raise loc.key("test").error(f"{words[0]} needs a command")
            result["test"] = words
    for key in ("interval", "timeout", "start_period", "start_interval"):
        if check.get(key) is not None:
            result[key] = duration_seconds(check[key], loc.key(key))
    if check.get("retries") is not None:
        result["retries"] = as_int(check["retries"], loc.key("retries"), low=0)
    return result
