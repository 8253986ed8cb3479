"""A `StackSpec` as the canonical compose model `docker compose config --format json` prints (`corral config`).

Why from the spec and not from the YAML: what `corral config` shows must be what `corral up` would run, after
interpolation, env files, extends, profiles, merges and Corral's own reading of each key; a difference from Docker
Compose's model is then visible field by field (docs/compose-conformance.md lists the deliberate ones).
Fields at their default are left out, as Compose leaves them out; `command` and `entrypoint` are always present.
"""

from __future__ import annotations

from typing import Any

from corral.model.health import DockerHealthcheck
from corral.model.stack import LaunchConfig, PortSpec, ServiceSpec, StackSpec, VolumeSpec


def canonical_model(spec: StackSpec) -> dict[str, Any]:
    volumes: dict[str, Any] = {}
    services: dict[str, Any] = {}
    for service in sorted(spec.services, key=lambda s: s.name):
        services[service.name] = _service(service)
        for volume in service.launch.volumes:
            if volume.kind == "volume":
                volumes[volume.source] = {"name": volume.source}
    model: dict[str, Any] = {"name": spec.name, "services": services}
    if volumes:
        model["volumes"] = dict(sorted(volumes.items()))
    return model


def _service(service: ServiceSpec) -> dict[str, Any]:
    launch = service.launch
    out: dict[str, Any] = {
        "command": list(launch.command) if launch.command is not None else None,
        "entrypoint": list(launch.entrypoint) if launch.entrypoint is not None else None,
        "image": launch.image,
    }
    optional: dict[str, Any] = {
        "environment": dict(launch.environment),
        "labels": dict(launch.labels),
        "ports": [_port(p) for p in launch.ports],
        "expose": list(launch.expose),
        "volumes": [_volume(v) for v in launch.volumes],
        "working_dir": launch.working_dir,
        "user": launch.user,
        "hostname": launch.hostname,
        "restart": launch.restart if launch.restart != "no" else "",
        "stop_grace_period": _duration(launch.stop_grace_seconds),
        "cap_add": list(launch.cap_add),
        "cap_drop": list(launch.cap_drop),
        "privileged": launch.privileged,
        "mem_limit": str(launch.mem_limit_bytes) if launch.mem_limit_bytes is not None else None,
        "cpus": launch.cpus,
        "tty": launch.tty,
        "stdin_open": launch.stdin_open,
        "network_mode": _network_mode(launch),
        "links": list(launch.links),
        "external_links": list(launch.external_links),
        "volumes_from": list(launch.volumes_from),
        "depends_on": {
            name: {"condition": dict(service.depends_conditions).get(name, "service_started"), "required": True}
            for name in service.depends_on
        },
        "healthcheck": _healthcheck(launch.healthcheck) if launch.healthcheck is not None else None,
        "scale": service.scale if service.scale != 1 else None,
        "init": launch.init,
        "read_only": launch.read_only,
        "shm_size": str(launch.shm_size_bytes) if launch.shm_size_bytes is not None else None,
        "stop_signal": launch.stop_signal,
        "extra_hosts": [host.replace(":", "=", 1) for host in launch.extra_hosts],
        "tmpfs": list(launch.tmpfs),
        "ulimits": {
            name: soft if soft == hard else {"soft": soft, "hard": hard} for name, soft, hard in launch.ulimits
        },
    }
    out.update({key: value for key, value in optional.items() if value not in (None, "", [], {}, False)})
    return dict(sorted(out.items()))


def _port(port: PortSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"mode": "ingress"}
    if port.host_ip:
        out["host_ip"] = port.host_ip
    out["target"] = port.container_port
    if port.host_port is not None:
        out["published"] = str(port.host_port)
    out["protocol"] = port.protocol
    return out


def _volume(volume: VolumeSpec) -> dict[str, Any]:
    kind = "volume" if volume.kind in ("volume", "anonymous") else "bind"
    out: dict[str, Any] = {"type": kind}
    if volume.source:
        out["source"] = volume.source
    out["target"] = volume.target
    if volume.read_only:
        out["read_only"] = True
    return out


def _network_mode(launch: LaunchConfig) -> str:
    return "" if launch.network_mode == "managed" else launch.network_mode


def _duration(seconds: float | None) -> str | None:
    """Go's `time.Duration` text, as Compose prints durations ("30s", "1m30s", "1h0m0s", "500ms")."""
    if seconds is None:
        return None
    millis = round(seconds * 1000)
    if millis == 0:
        return "0s"
    if millis < 1000:
        return f"{millis}ms"
    hours, minutes = divmod(millis // 60000, 60)
    secs = (millis % 60000) / 1000
    return (f"{hours}h" if hours else "") + (f"{minutes}m" if hours or minutes else "") + f"{secs:g}s"


def _healthcheck(check: DockerHealthcheck) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if check.test:
        out["test"] = list(check.test)
    for key, seconds in (
        ("interval", check.interval_seconds),
        ("timeout", check.timeout_seconds),
        ("start_period", check.start_period_seconds),
    ):
        if seconds is not None:
            out[key] = _duration(seconds)
    if check.retries is not None:
        out["retries"] = check.retries
    return out
