"""Quotas per stack and per environment: the pure check behind `corral up`, `corral scale` and catalog installs.

Why quotas: every service costs the server work on every orchestrator pass, whatever its scale, and every
container costs a host. Without a bound one user's stack (10,000 services at scale 0, issue 14) starves every other
environment. Each environment has limits on services and containers (the sum of the services' scales) per stack
and in all; the server's `CORRAL_QUOTA_*` settings give the defaults and an admin raises or lowers them per
environment (`corral env update NAME --quota services_per_stack=200`).

A change is refused only when it asks for more than a limit *and* for more than there is now: lowering a quota
below what an environment runs never blocks scaling down or removing services.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace

from corral.model.errors import InvalidInput
from corral.model.stack import StackSpec

SERVICES_PER_STACK = "services_per_stack"
SERVICES_PER_ENVIRONMENT = "services_per_environment"
CONTAINERS_PER_STACK = "containers_per_stack"
CONTAINERS_PER_ENVIRONMENT = "containers_per_environment"
NAMES: tuple[str, ...] = (
    SERVICES_PER_STACK,
    SERVICES_PER_ENVIRONMENT,
    CONTAINERS_PER_STACK,
    CONTAINERS_PER_ENVIRONMENT,
)
MAX_LIMIT = 1_000_000


@dataclass(frozen=True)
class Quotas:
    """The limits of one environment (defaults: the server's settings; `config.py`)."""

    services_per_stack: int = 200
    services_per_environment: int = 1000
    containers_per_stack: int = 5000
    containers_per_environment: int = 10000

    def with_overrides(self, overrides: Mapping[str, int]) -> Quotas:
        return replace(self, **{k: int(v) for k, v in overrides.items() if k in NAMES})

    def to_dict(self) -> dict[str, int]:
        return {f.name: int(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class Demand:
    """What a stack (or an environment) asks for: services and containers (the sum of the scales)."""

    services: int = 0
    containers: int = 0

    def __add__(self, other: Demand) -> Demand:
        return Demand(self.services + other.services, self.containers + other.containers)

    def __sub__(self, other: Demand) -> Demand:
        return Demand(self.services - other.services, self.containers - other.containers)


def demand_of(scales: Iterable[int]) -> Demand:
    """The demand of services with these scales (a sidekick counts as a service with its primary's scale)."""
    values = [max(0, int(s)) for s in scales]
    return Demand(len(values), sum(values))


def spec_demand(spec: StackSpec) -> Demand:
    return demand_of(s.scale for s in spec.services)


@dataclass(frozen=True)
class Violation:
    """One limit a change would pass: which quota, its limit, what was asked and what it was before."""

    quota: str
    limit: int
    requested: int
    current: int
    scope: str  # 'stack "app"' or 'environment "default"'

    def describe(self, environment: str) -> str:
        what = "services" if self.quota.startswith("services") else "containers (total scale)"
        return (
            f"{self.scope} would have {self.requested} {what} (now {self.current}); quota {self.quota} of "
            f'environment "{environment}" is {self.limit} (raise it with: corral env update {environment} '
            f"--quota {self.quota}={self.requested})"
        )


def check(
    quotas: Quotas, *, stack: str, stack_now: Demand, stack_after: Demand, environment_now: Demand, environment: str
) -> list[Violation]:
    """Every quota the change of one stack from `stack_now` to `stack_after` would pass, in `NAMES` order.

    `environment_now` includes `stack_now`. A value above its limit is a violation only when it grows.
    """
    env_after = environment_now - stack_now + stack_after
    in_stack, in_env = f'stack "{stack}"', f'environment "{environment}"'
    measured = (
        (SERVICES_PER_STACK, in_stack, stack_now.services, stack_after.services),
        (SERVICES_PER_ENVIRONMENT, in_env, environment_now.services, env_after.services),
        (CONTAINERS_PER_STACK, in_stack, stack_now.containers, stack_after.containers),
        (CONTAINERS_PER_ENVIRONMENT, in_env, environment_now.containers, env_after.containers),
    )
    found = []
    for name, scope, now, after in measured:
        limit = int(getattr(quotas, name))
        if after > limit and after > now:
            found.append(Violation(name, limit, after, now, scope))
    return found


class QuotaExceeded(InvalidInput):
    """A change asks for more than its environment's quotas; every quota passed is listed (nothing is stored)."""

    code = "quota"

    def __init__(self, environment: str, found: list[Violation]) -> None:
        self.violations = [v.describe(environment) for v in found]
        count = f"{len(found)} quotas" if len(found) > 1 else "a quota"
        super().__init__(f"over {count}: " + "; ".join(self.violations), field="quota")
        self.found = found

    def to_dict(self) -> dict[str, object]:  # type: ignore[override]
        return {**super().to_dict(), "violations": self.violations}


def enforce(
    quotas: Quotas, *, stack: str, stack_now: Demand, stack_after: Demand, environment_now: Demand, environment: str
) -> None:
    found = check(
        quotas,
        stack=stack,
        stack_now=stack_now,
        stack_after=stack_after,
        environment_now=environment_now,
        environment=environment,
    )
    if found:
        raise QuotaExceeded(environment, found)


def parse_quotas(values: Iterable[str], *, field: str = "quota") -> dict[str, int | None]:
    """`NAME=N` items (each may be a comma-separated list; `-` for `_`): name -> limit, or None for `NAME=default`
    (back to the server's default)."""
    result: dict[str, int | None] = {}
    for value in values:
        for part in str(value).split(","):
            item = part.strip()
            if not item:
                continue
            name, sep, number = item.partition("=")
            name = name.strip().lower().replace("-", "_")
            if not sep:
                raise InvalidInput(f"{field}: {item!r} is not NAME=LIMIT (e.g. services_per_stack=200)", field=field)
            result[name] = None if number.strip().lower() == "default" else _limit(name, number.strip(), field)
    return checked_overrides(result, field=field)


def _limit(name: str, text: str, field: str) -> int:
    try:
        return int(text)
    except ValueError:
        reason = f"{field}: {name}={text!r}: the limit must be a whole number or 'default'"
        raise InvalidInput(reason, field=field) from None


def checked_overrides(values: Mapping[str, int | None], *, field: str = "quotas") -> dict[str, int | None]:
    """Known quota names with limits between 0 and `MAX_LIMIT` (None: back to the server's default)."""
    for name, limit in values.items():
        if name not in NAMES:
            known = ", ".join(NAMES)
            raise InvalidInput(f"{field}: {name!r} is not a quota (known: {known})", field=field)
        if limit is not None and not 0 <= limit <= MAX_LIMIT:
            raise InvalidInput(f"{field}: {name}={limit} must be between 0 and {MAX_LIMIT}", field=field)
    return dict(values)


def merged(current: Mapping[str, int], changes: Mapping[str, int | None]) -> dict[str, int]:
    """An environment's stored overrides after a change (None removes one)."""
    result = dict(current)
    for name, limit in changes.items():
        if limit is None:
            result.pop(name, None)
        else:
            result[name] = limit
    return {name: result[name] for name in NAMES if name in result}
