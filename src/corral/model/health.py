"""Health checks of a service: what the agent probes, how often, when a container counts as (un)healthy, and what the
orchestrator does about an unhealthy one.

Why one typed model: a service's check comes from two files with two vocabularies — rancher-compose's
`health_check` (port, request_line, all times in milliseconds) and compose's `healthcheck` (a command Docker runs,
durations in seconds) — and three places read it (the agent's prober, the orchestrator's policy, the views).
Merging them here, once, with Rancher's defaults, means no reader ever sees seconds where it expects milliseconds.

Two kinds of check, possibly both:
- a *probe* (`port` set): the agent connects to the container's port from the host, TCP only when `request_line`
  is empty, else it sends the request line and a 2xx/3xx status counts as success;
- a *command* (compose `healthcheck.test`): passed to Docker as the container's HEALTHCHECK (`DockerHealthcheck`,
  part of the launch config) and Docker's status is reported. When a probe exists, the probe decides the state.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from corral.model.errors import InvalidInput

Strategy = Literal["none", "recreate", "recreateOnQuorum"]
STRATEGIES: tuple[Strategy, ...] = ("none", "recreate", "recreateOnQuorum")

# Container health states (ObservedContainer.health); "" means the container has no health check.
INITIALIZING = "initializing"
HEALTHY = "healthy"
UNHEALTHY = "unhealthy"
REINITIALIZING = "reinitializing"
HEALTH_STATES = (INITIALIZING, HEALTHY, UNHEALTHY, REINITIALIZING)

MAX_MILLIS = 24 * 3600 * 1000
MAX_THRESHOLD = 1000
_RANCHER_MILLIS = {
    "interval": "interval_ms",
    "response_timeout": "response_timeout_ms",
    "initializing_timeout": "initializing_timeout_ms",
    "reinitializing_timeout": "reinitializing_timeout_ms",
}
_RANCHER_COUNTS = ("healthy_threshold", "unhealthy_threshold")
RANCHER_KEYS = frozenset({
    "port", "request_line", *_RANCHER_MILLIS, *_RANCHER_COUNTS, "strategy", "recreate_on_quorum_strategy_config",
    "name",
})  # fmt: skip
_METHOD = re.compile(r"[A-Z]+")
_VERSION = re.compile(r"HTTP/\d\.\d")


@dataclass(frozen=True)
class HealthCheck:
    """A service's health check, all times in milliseconds, Rancher's defaults (its API: strategy `recreate`)."""

    port: int | None = None  # None: no probe from the agent (only a Docker command, if any)
    request_line: str = ""  # "" = a TCP connect; else e.g. "GET /healthcheck HTTP/1.0"
    interval_ms: int = 2000
    response_timeout_ms: int = 2000
    healthy_threshold: int = 2
    unhealthy_threshold: int = 3
    initializing_timeout_ms: int = 60000
    reinitializing_timeout_ms: int = 60000
    strategy: Strategy = "recreate"
    quorum: int = 1  # recreateOnQuorum: replace only while at least this many containers are healthy
    command: bool = False  # True: compose gave a command that Docker runs (see LaunchConfig.healthcheck)

    @property
    def probes(self) -> bool:
        return self.port is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HealthCheck:
        """The stored form (`to_dict`); unknown keys are ignored so older rows still load."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class DockerHealthcheck:
    """Compose `healthcheck` handed to Docker as the container's HEALTHCHECK (None fields: Docker's defaults).

    `test` is () to keep the image's own command with other timings, ("NONE",) to disable the image's check.
    """

    test: tuple[str, ...] = ()
    interval_seconds: float | None = None
    timeout_seconds: float | None = None
    retries: int | None = None
    start_period_seconds: float | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DockerHealthcheck:
        return cls(
            test=tuple(str(w) for w in data.get("test") or ()),
            interval_seconds=data.get("interval_seconds"),
            timeout_seconds=data.get("timeout_seconds"),
            retries=data.get("retries"),
            start_period_seconds=data.get("start_period_seconds"),
        )


def docker_healthcheck(compose: dict[str, Any] | None) -> DockerHealthcheck | None:
    """Compose's normalised `healthcheck` (compose/service.py: test list, durations in seconds) for Docker."""
    if not compose:
        return None
    return DockerHealthcheck(
        test=tuple(compose.get("test") or ()),
        interval_seconds=compose.get("interval"),
        timeout_seconds=compose.get("timeout"),
        retries=compose.get("retries"),
        start_period_seconds=compose.get("start_period"),
    )


def check_rancher_health_check(raw: dict[str, Any]) -> None:
    """Validate a rancher-compose `health_check` mapping (ints already parsed). Raises InvalidInput whose `field`
    is the key below `health_check` (e.g. "strategy") and whose message is the reason alone."""
    for key in raw:
        if key not in RANCHER_KEYS:
            known = ", ".join(sorted(RANCHER_KEYS))
            raise InvalidInput(f"unknown health_check key {key!r} (known: {known})", field=key)
    if raw.get("port") is None:
        raise InvalidInput("is required (the container port to check)", field="port")
    for key in _RANCHER_MILLIS:
        value = raw.get(key)
        if value is not None and not 0 < _int(value, key) <= MAX_MILLIS:
            raise InvalidInput(f"must be between 1 and {MAX_MILLIS} milliseconds, not {value}", field=key)
    for key in _RANCHER_COUNTS:
        value = raw.get(key)
        if value is not None and not 1 <= _int(value, key) <= MAX_THRESHOLD:
            raise InvalidInput(f"must be between 1 and {MAX_THRESHOLD}, not {value}", field=key)
    if raw.get("request_line") is not None:
        normalise_request_line(raw["request_line"])
    strategy = raw.get("strategy")
    if strategy is not None and strategy not in STRATEGIES:
        raise InvalidInput(f"must be one of {', '.join(STRATEGIES)}, not {strategy!r}", field="strategy")
    config = raw.get("recreate_on_quorum_strategy_config")
    if config is not None:
        if not isinstance(config, dict) or set(config) - {"quorum"}:
            raise InvalidInput("must be a mapping with one key, quorum", field="recreate_on_quorum_strategy_config")
        quorum = config.get("quorum")
        if quorum is not None and (isinstance(quorum, bool) or not isinstance(quorum, int) or quorum < 1):
            raise InvalidInput(
                f"must be an integer of at least 1, not {quorum!r}", field="recreate_on_quorum_strategy_config.quorum"
            )
    elif strategy == "recreateOnQuorum":
        raise InvalidInput(
            "strategy recreateOnQuorum needs recreate_on_quorum_strategy_config.quorum",
            field="recreate_on_quorum_strategy_config",
        )


def _int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"must be an integer, not {value!r}", field=key)
    return value


def normalise_request_line(value: Any) -> str:
    """`[METHOD] PATH [HTTP/x.y]` -> a full request line ("GET PATH HTTP/1.0" by default); "" stays "" (TCP)."""
    if not isinstance(value, str):
        raise InvalidInput(f"must be a string, not {value!r}", field="request_line")
    words = value.split()
    if not words:
        return ""
    method = "GET"
    if _METHOD.fullmatch(words[0]):
        method, words = words[0], words[1:]
    version = "HTTP/1.0"
    if words and _VERSION.fullmatch(words[-1]):
        version, words = words[-1], words[:-1]
    if len(words) != 1 or not words[0].startswith(("/", "http://", "https://")):
        raise InvalidInput(
            f"{value!r} is not a request line (e.g. 'GET /healthcheck HTTP/1.0', or '' for a TCP check)",
            field="request_line",
        )
    return f"{method} {words[0]} {version}"


def merge_health_check(compose: dict[str, Any] | None, rancher: dict[str, Any] | None) -> HealthCheck | None:
    """One `HealthCheck` from compose's normalised `healthcheck` (seconds) and a validated rancher-compose
    `health_check` (milliseconds; it wins field by field). None when neither gives anything to check."""
    values: dict[str, Any] = {}
    command = False
    if compose:
        test = compose.get("test")
        command = bool(test) and test != ["NONE"]
        for key, name in (("interval", "interval_ms"), ("timeout", "response_timeout_ms")):
            if compose.get(key):
                values[name] = max(1, round(compose[key] * 1000))
        if compose.get("start_period"):
            values["initializing_timeout_ms"] = max(1, round(compose["start_period"] * 1000))
        if compose.get("retries"):
            values["unhealthy_threshold"] = compose["retries"]
    if rancher:
        values["port"] = rancher["port"]
        values["request_line"] = normalise_request_line(rancher.get("request_line") or "")
        for key, name in _RANCHER_MILLIS.items():
            if rancher.get(key) is not None:
                values[name] = rancher[key]
        for key in _RANCHER_COUNTS:
            if rancher.get(key) is not None:
                values[key] = rancher[key]
        if rancher.get("strategy") is not None:
            values["strategy"] = rancher["strategy"]
        quorum = (rancher.get("recreate_on_quorum_strategy_config") or {}).get("quorum")
        if quorum is not None:
            values["quorum"] = quorum
    if not command and "port" not in values:
        return None
    return HealthCheck(command=command, **values)
