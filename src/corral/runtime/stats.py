"""Resource usage of a container (`docker stats`): CPU %, memory and network bytes, one sample about every second.

Why here: the engine's stats JSON is large and differs between cgroup v1 and v2; the agent sends only the few
figures a person watches, computed the way the `docker stats` command does:
  * CPU %: (container CPU time delta / system CPU time delta) x online CPUs x 100, between this reading and the
    previous one (`precpu_stats`). A first streamed reading has no previous one: it is skipped.
  * memory: usage minus the page cache that can be dropped (`total_inactive_file` on cgroup v1, `inactive_file`
    on v2), and the limit (the host's memory when the container has none).
  * network: received and sent bytes summed over the container's interfaces (0 without a network).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import docker
import docker.errors

from corral.model.errors import Unavailable
from corral.runtime.docker_engine import DockerEngine
from corral.runtime.streamed_responses import (
    READ_ERRORS,
    body_chunks,
    check_reference,
    close_response,
    closed_on_stop,
    missing_container,
    raise_refusal,
)


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _section(raw: dict[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name)
    return value if isinstance(value, dict) else {}


def cpu_percent(raw: dict[str, Any]) -> float | None:
    """CPU use since the previous reading in % of one CPU (200 = two CPUs busy); None without a previous reading."""
    now, before = _section(raw, "cpu_stats"), _section(raw, "precpu_stats")
    system_delta = _number(now.get("system_cpu_usage")) - _number(before.get("system_cpu_usage"))
    if not before.get("system_cpu_usage") or system_delta <= 0:
        return None
    usage_now = _number(_section(now, "cpu_usage").get("total_usage"))
    usage_before = _number(_section(before, "cpu_usage").get("total_usage"))
    cpus = _number(now.get("online_cpus")) or float(len(_section(now, "cpu_usage").get("percpu_usage") or []) or 1)
    return max(0.0, (usage_now - usage_before) / system_delta * cpus * 100.0)


def memory_usage(raw: dict[str, Any]) -> tuple[int, int]:
    """(bytes used without the droppable page cache, limit in bytes)."""
    memory = _section(raw, "memory_stats")
    details = _section(memory, "stats")
    cache = _number(details.get("total_inactive_file", details.get("inactive_file")))
    usage = _number(memory.get("usage"))
    return int(max(0.0, usage - cache if cache < usage else usage)), int(_number(memory.get("limit")))


def network_bytes(raw: dict[str, Any]) -> tuple[int, int]:
    """(received, sent) bytes over all the container's interfaces."""
    received = sent = 0
    for interface in _section(raw, "networks").values():
        if isinstance(interface, dict):
            received += int(_number(interface.get("rx_bytes")))
            sent += int(_number(interface.get("tx_bytes")))
    return received, sent


def sample_of(raw: dict[str, Any], now: float | None = None) -> dict[str, Any] | None:
    """The figures of one engine reading (the wire format of a stats sample), or None when CPU % is not known yet."""
    cpu = cpu_percent(raw)
    if cpu is None:
        return None
    used, limit = memory_usage(raw)
    received, sent = network_bytes(raw)
    return {
        "time": time.time() if now is None else now,
        "cpu_percent": round(cpu, 3),
        "memory_usage": used,
        "memory_limit": limit,
        "memory_percent": round(used / limit * 100.0, 3) if limit > 0 else 0.0,
        "network_rx": received,
        "network_tx": sent,
    }


def container_stats(
    engine: DockerEngine, docker_id: str, *, stream: bool, stop: threading.Event
) -> Iterator[dict[str, Any]]:
    """Samples of a container's resource use: one (not `stream`), or one about every second until the container
    stops or `stop` is set from another thread. A missing container raises `NotFound` before iterating."""
    reference = check_reference(docker_id)

    def open_stats(client: docker.DockerClient) -> Any:
        api = client.api
        try:
            info = api.inspect_container(reference)
        except docker.errors.NotFound:
            raise missing_container(reference) from None
        url = api._url("/containers/{0}/stats", str(info["Id"]))
        response = api._get(url, params={"stream": int(stream)}, stream=True)
        try:
            api._raise_for_status(response)
        except docker.errors.APIError as exc:
            close_response(response)
            raise_refusal(exc, reference, "read the stats of")
        return response

    response = engine.call(f"read the stats of {reference}", open_stats)
    return _read_samples(engine, response, stop, reference)


def _read_samples(
    engine: DockerEngine, response: Any, stop: threading.Event, reference: str
) -> Iterator[dict[str, Any]]:
    pending = b""
    with closed_on_stop(response, stop, "docker-stats-closer"):
        try:
            for chunk in body_chunks(response):
                if stop.is_set():
                    return
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    sample = _parse(line)
                    if sample is not None:
                        yield sample
            sample = _parse(pending)
            if sample is not None:
                yield sample
        except READ_ERRORS as exc:
            if stop.is_set():
                return
            raise Unavailable(
                f"docker engine at {engine.docker_host}: the stats of {reference} broke off: {exc}"
            ) from exc


def _parse(line: bytes) -> dict[str, Any] | None:
    if not line.strip():
        return None
    try:
        raw = json.loads(line)
    except ValueError:
        return None
    return sample_of(raw) if isinstance(raw, dict) else None
