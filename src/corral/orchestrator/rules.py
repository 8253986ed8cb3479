"""Cattle's scheduling rules from a service's labels: parsing, and whether one host satisfies each rule.

Why a module of its own: real Rancher catalog templates carry their placement in labels
(`io.rancher.scheduler.affinity:host_label_soft_ne: zone=eu`, `io.rancher.scheduler.global: 'true'`), so the
labels are the rule language. Parsing is a pure function with one clear `InvalidInput` per malformed label (the
server can call it when a stack is created, the reconciler reports it as the reason nothing is placed); matching
works on small per-host facts (host labels, the label pairs and names of the containers on the host) so the
scheduler can evaluate it for thousands of hosts without looking at slots again.

Semantics (Rancher 1.x): `io.rancher.*` and `io.corral.*` keys are equivalent. A rule is
`scheduler.affinity:{host_label|container_label|container}` with optional `_soft` and `_ne` suffixes (in either
order) and a value `k1=v1,k2=v2` (container names for `container`). A positive rule needs ALL pairs to match; a
`_ne` rule excludes a host where ANY pair matches. `container_label` pairs match independently: each needs some
container on the host carrying it. Macros `${stack_name}` / `$${stack_name}` and `${service_name}` /
`$${service_name}` are substituted. Soft rules keep their label order (labels are sorted by key).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from corral.model.errors import InvalidInput

PREFIXES = ("io.rancher.", "io.corral.")
AFFINITY = "scheduler.affinity:"
GLOBAL = "scheduler.global"
TRUE = frozenset({"true", "yes", "1"})
FALSE = frozenset({"false", "no", "0", ""})

# System labels every container slot carries for container_label rules (the Rancher spread idiom matches on them).
STACK_NAME = "io.rancher.stack.name"
STACK_SERVICE_NAME = "io.rancher.stack_service.name"


class Kind(enum.StrEnum):
    HOST_LABEL = "host_label"
    CONTAINER_LABEL = "container_label"
    CONTAINER = "container"


@dataclass(frozen=True)
class Rule:
    """One affinity rule. `pairs` are (key, value); for `container` rules (name, "")."""

    kind: Kind
    soft: bool
    negated: bool
    pairs: tuple[tuple[str, str], ...]

    @property
    def name(self) -> str:
        """E.g. "container_label_soft_ne"."""
        return f"{self.kind.value}{'_soft' if self.soft else ''}{'_ne' if self.negated else ''}"

    @property
    def value(self) -> str:
        return ",".join(k if self.kind is Kind.CONTAINER else f"{k}={v}" for k, v in self.pairs)

    def describe(self) -> str:
        """E.g. "affinity host_label zone=eu"."""
        return f"affinity {self.name} {self.value}"

    def host_ok(self, labels: Mapping[str, str]) -> bool:
        """For host_label rules: does a host with `labels` satisfy the rule."""
        hits = (labels.get(k) == v for k, v in self.pairs)
        return not any(hits) if self.negated else all(hits)

    def containers_ok(self, pairs: Mapping[tuple[str, str], int], names: Mapping[str, int]) -> bool:
        """For container rules: does a host whose containers carry `pairs` and `names` (counts) satisfy the rule."""
        if self.kind is Kind.CONTAINER:
            hits = (names.get(n, 0) > 0 for n, _ in self.pairs)
        else:
            hits = (pairs.get(p, 0) > 0 for p in self.pairs)
        return not any(hits) if self.negated else all(hits)


@dataclass(frozen=True)
class Rules:
    hard: tuple[Rule, ...] = ()
    soft: tuple[Rule, ...] = ()
    global_: bool = False

    @property
    def host_rules(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.hard if r.kind is Kind.HOST_LABEL)

    @property
    def container_rules(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.hard if r.kind is not Kind.HOST_LABEL)

    @property
    def watched_keys(self) -> frozenset[str]:
        """Container label keys any rule looks at (the scheduler indexes only these)."""
        return frozenset(k for r in (*self.hard, *self.soft) if r.kind is Kind.CONTAINER_LABEL for k, _ in r.pairs)

    @property
    def watched_names(self) -> frozenset[str]:
        return frozenset(k for r in (*self.hard, *self.soft) if r.kind is Kind.CONTAINER for k, _ in r.pairs)

    @property
    def empty(self) -> bool:
        return not (self.hard or self.soft or self.global_)


NO_RULES = Rules()


def unprefixed(key: str) -> str | None:
    """The key without its io.rancher. / io.corral. prefix, or None for other keys."""
    for prefix in PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix) :]
    return None


def substitute(value: str, *, stack: str, service: str) -> str:
    for name, actual in (("stack_name", stack), ("service_name", service)):
        value = value.replace(f"$${{{name}}}", actual).replace(f"${{{name}}}", actual)
    return value


def _kind_of(key: str, rest: str) -> tuple[Kind, bool, bool]:
    words = rest.split("_")
    flags = set()
    while words and words[-1] in ("soft", "ne"):
        flag = words.pop()
        if flag in flags:
            raise InvalidInput(f"label {key}: {flag!r} is given twice", field=key)
        flags.add(flag)
    base = "_".join(words)
    try:
        kind = Kind(base)
    except ValueError:
        known = ", ".join(k.value for k in Kind)
        raise InvalidInput(
            f"label {key}: unknown affinity {base!r} (known: {known}, each optionally with _soft and/or _ne)",
            field=key,
        ) from None
    return kind, "soft" in flags, "ne" in flags


def _pairs(key: str, kind: Kind, value: str) -> tuple[tuple[str, str], ...]:
    items = [item.strip() for item in value.split(",")]
    if not value.strip() or any(not item for item in items):
        raise InvalidInput(f"label {key}: {value!r} has an empty entry (expected k1=v1,k2=v2)", field=key)
    pairs: list[tuple[str, str]] = []
    for item in items:
        if kind is Kind.CONTAINER:
            pairs.append((item, ""))
            continue
        name, sep, wanted = item.partition("=")
        if not sep or not name.strip():
            raise InvalidInput(f"label {key}: {item!r} is not key=value", field=key)
        pairs.append((name.strip(), wanted.strip()))
    return tuple(pairs)


def parse_rules(labels: Mapping[str, str] | Iterable[tuple[str, str]], *, stack: str, service: str) -> Rules:
    """The scheduling rules in a service's launch labels; `InvalidInput` names the first malformed label."""
    items = sorted(labels.items() if isinstance(labels, Mapping) else labels)
    hard: list[Rule] = []
    soft: list[Rule] = []
    global_ = False
    for key, raw in items:
        rest = unprefixed(key)
        if rest is None:
            continue
        if rest == GLOBAL:
            text = str(raw).strip().lower()
            if text not in TRUE | FALSE:
                raise InvalidInput(f"label {key}: {raw!r} must be true or false", field=key)
            global_ = global_ or text in TRUE
        elif rest.startswith(AFFINITY):
            kind, is_soft, negated = _kind_of(key, rest[len(AFFINITY) :])
            value = substitute(str(raw), stack=stack, service=service)
            if not value.strip():  # Rancher 1.6 read an empty affinity as no constraint (compose/ warns)
                continue
            rule = Rule(kind, is_soft, negated, _pairs(key, kind, value))
            (soft if is_soft else hard).append(rule)
    return Rules(tuple(hard), tuple(soft), global_)


def system_labels(stack: str, service: str) -> tuple[tuple[str, str], ...]:
    """The labels Corral puts on every container of `stack/service` that container_label rules can match."""
    return (
        (STACK_NAME, stack),
        (STACK_SERVICE_NAME, f"{stack}/{service}"),
        ("io.corral.stack.name", stack),
        ("io.corral.stack_service.name", f"{stack}/{service}"),
        ("io.corral.stack", stack),
        ("io.corral.service", service),
    )
