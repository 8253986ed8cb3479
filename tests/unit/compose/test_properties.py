"""Hypothesis properties: specs round-trip through to_dict/JSON, hashes ignore key order, and no input crashes."""

from __future__ import annotations

import json
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corral.compose import ComposeFile, load_stack
from corral.compose.rancher import IGNORED_KEYS as RANCHER_IGNORED
from corral.compose.rancher import SUPPORTED_KEYS as RANCHER_SUPPORTED
from corral.compose.service import KNOWN_KEYS
from corral.model.errors import InvalidInput
from corral.model.stack import StackSpec

from .helpers import DC, RC

names = st.from_regex(r"[a-z][a-z0-9]{0,5}(-[a-z0-9]{1,4})?", fullmatch=True)
env_keys = st.from_regex(r"[A-Z_][A-Z0-9_]{0,6}", fullmatch=True)
label_keys = st.from_regex(r"[a-z][a-z0-9]{0,6}(\.[a-z][a-z0-9]{0,4}){0,2}", fullmatch=True).filter(
    lambda k: not k.startswith("io.corral")
)
texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12).map(
    lambda s: s.replace("$", "$$")
)
scalars = st.one_of(texts, st.integers(-(10**6), 10**6), st.booleans())
images = st.sampled_from(["nginx", "redis:7", "ghcr.io/org/app:1.0", "busybox", "postgres:16-alpine"])
paths = st.from_regex(r"/[a-z]{1,6}(/[a-z0-9]{1,6}){0,2}", fullmatch=True)


@st.composite
def service_bodies(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {"image": draw(images)}
    if draw(st.booleans()):
        body["environment"] = draw(st.dictionaries(env_keys, scalars, max_size=5))
    if draw(st.booleans()):
        body["labels"] = draw(st.dictionaries(label_keys, scalars, max_size=5))
    if draw(st.booleans()):
        hosts = draw(st.lists(st.integers(1, 65535), unique=True, max_size=3))
        body["ports"] = [f"{h}:{draw(st.integers(1, 65535))}/{draw(st.sampled_from(['tcp', 'udp']))}" for h in hosts]
    if draw(st.booleans()):
        targets = draw(st.lists(paths, unique=True, max_size=3))
        body["volumes"] = [f"{draw(st.sampled_from(['data', '/srv/x', '']))}:{t}".lstrip(":") for t in targets]
    if draw(st.booleans()):
        body["command"] = draw(st.lists(texts, max_size=4))
    if draw(st.booleans()):
        body["restart"] = draw(st.sampled_from(["no", "always", "on-failure", "unless-stopped"]))
    if draw(st.booleans()):
        body["mem_limit"] = draw(st.sampled_from(["512m", "1g", 1048576]))
    if draw(st.booleans()):
        body["healthcheck"] = {"test": ["CMD", "true"], "interval": draw(st.sampled_from(["5s", "1m", 3]))}
    for flag in ("privileged", "tty", "stdin_open"):
        if draw(st.booleans()):
            body[flag] = draw(st.booleans())
    return body


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    service_names = draw(st.lists(names, min_size=1, max_size=4, unique=True))
    services: dict[str, Any] = {}
    for i, name in enumerate(service_names):
        body = draw(service_bodies())
        earlier = service_names[:i]
        dependencies: list[str] = draw(st.lists(st.sampled_from(earlier), unique=True)) if earlier else []
        if dependencies:
            body["depends_on"] = dependencies
        services[name] = body
    return {"version": draw(st.sampled_from(["2", "2.1", "3", "3.8"])), "services": services, "volumes": {"data": {}}}


def reversed_order(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: reversed_order(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [reversed_order(v) for v in value]
    return value


def load(doc: dict[str, Any]) -> StackSpec:
    return load_stack("app", ComposeFile(DC, yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)))


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_specs_round_trip_through_to_dict_and_json(doc: dict[str, Any]) -> None:
    spec = load(doc)
    assert StackSpec.from_dict(spec.to_dict()) == spec
    assert StackSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_config_hash_and_spec_do_not_depend_on_mapping_key_order(doc: dict[str, Any]) -> None:
    first, second = load(doc), load(reversed_order(doc))
    assert first == second
    assert [s.launch.config_hash() for s in first.services] == [s.launch.config_hash() for s in second.services]


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_services_start_after_their_dependencies(doc: dict[str, Any]) -> None:
    spec = load(doc)
    position = {s.name: i for i, s in enumerate(spec.services)}
    assert set(position) == set(doc["services"])
    for service in spec.services:
        assert all(position[d] < position[service.name] for d in service.depends_on)


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=10,
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(sorted(KNOWN_KEYS)), json_like, max_size=5), json_like)
def test_arbitrary_service_bodies_load_or_raise_invalid_input(body: dict[str, Any], extra: Any) -> None:
    doc = {"version": "3", "services": {"web": {"image": "nginx", **body}, "db": {"image": "redis"}}}
    rancher = {"services": {"web": {"scale": 1, **({"metadata": extra} if extra is not None else {})}}}
    try:
        load_stack(
            "app",
            ComposeFile(DC, yaml.safe_dump(doc)),
            ComposeFile(RC, yaml.safe_dump(rancher)),
            env_files={"a.env": "A=1"},
        )
    except InvalidInput as exc:
        assert exc.field is not None and exc.field.startswith((DC, RC, "a.env"))


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(sorted(RANCHER_SUPPORTED | RANCHER_IGNORED)), json_like, max_size=4))
def test_arbitrary_rancher_entries_load_or_raise_invalid_input(body: dict[str, Any]) -> None:
    try:
        spec = load_stack(
            "app", ComposeFile(DC, "web: {image: nginx}\n"), ComposeFile(RC, yaml.safe_dump({"web": body}))
        )
    except InvalidInput as exc:
        assert exc.field is not None and exc.field.startswith(RC)
    else:
        assert StackSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


@settings(max_examples=150)
@given(st.text(max_size=200))
def test_arbitrary_text_loads_or_raises_invalid_input(text: str) -> None:
    try:
        load_stack("app", ComposeFile(DC, text))
    except InvalidInput as exc:
        assert exc.message.startswith(DC)
