"""Table tests for parsing scheduling labels: every rule form, the macros, the prefixes and each malformed value."""

from __future__ import annotations

import pytest

from corral.model.errors import InvalidInput
from corral.orchestrator.rules import Kind, Rule, Rules, parse_rules, system_labels

A = "io.rancher.scheduler.affinity:"


def parse(labels: dict[str, str], stack: str = "app", service: str = "web") -> Rules:
    return parse_rules(labels, stack=stack, service=service)


@pytest.mark.parametrize(
    ("suffix", "kind", "soft", "negated"),
    [
        ("host_label", Kind.HOST_LABEL, False, False),
        ("host_label_soft", Kind.HOST_LABEL, True, False),
        ("host_label_ne", Kind.HOST_LABEL, False, True),
        ("host_label_soft_ne", Kind.HOST_LABEL, True, True),
        ("host_label_ne_soft", Kind.HOST_LABEL, True, True),
        ("container_label", Kind.CONTAINER_LABEL, False, False),
        ("container_label_soft_ne", Kind.CONTAINER_LABEL, True, True),
        ("container", Kind.CONTAINER, False, False),
        ("container_soft", Kind.CONTAINER, True, False),
        ("container_ne", Kind.CONTAINER, False, True),
    ],
)
def test_each_rule_form_parses(suffix: str, kind: Kind, soft: bool, negated: bool) -> None:
    value = "app-db-1, app-db-2" if kind is Kind.CONTAINER else "zone=eu, disk = ssd"
    rules = parse({A + suffix: value})
    pairs = (("app-db-1", ""), ("app-db-2", "")) if kind is Kind.CONTAINER else (("zone", "eu"), ("disk", "ssd"))
    rule = Rule(kind, soft, negated, pairs)
    assert (rules.soft if soft else rules.hard) == (rule,)
    assert not (rules.hard if soft else rules.soft)
    assert rule.name == suffix.replace("_ne_soft", "_soft_ne")


def test_io_corral_prefix_is_equivalent_and_other_labels_are_ignored() -> None:
    rancher = parse({A + "host_label": "zone=eu"})
    corral = parse({"io.corral.scheduler.affinity:host_label": "zone=eu", "com.example.x": "y", "io.rancher.foo": "1"})
    assert rancher == corral
    assert parse({"io.corral.scheduler.global": "true"}).global_


@pytest.mark.parametrize(
    "value",
    [
        "io.rancher.stack_service.name=${stack_name}/${service_name}",
        "io.rancher.stack_service.name=$${stack_name}/$${service_name}",
    ],
)
def test_macros_are_substituted(value: str) -> None:
    rules = parse({A + "container_label_soft_ne": value}, stack="shop", service="api")
    assert rules.soft[0].pairs == (("io.rancher.stack_service.name", "shop/api"),)
    assert rules.soft[0].describe() == "affinity container_label_soft_ne io.rancher.stack_service.name=shop/api"


def test_global_true_false_and_soft_rules_keep_label_order() -> None:
    assert parse({"io.rancher.scheduler.global": "true"}).global_
    assert parse({"io.rancher.scheduler.global": "True"}).global_
    assert not parse({"io.rancher.scheduler.global": "false"}).global_
    rules = parse({A + "host_label_soft_ne": "disk=hdd", A + "host_label_soft": "zone=eu"})
    assert [r.name for r in rules.soft] == ["host_label_soft", "host_label_soft_ne"]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (A + "host_label", "zone", "'zone' is not key=value"),
        (A + "host_label", "a=1,,b=2", "has an empty entry"),
        (A + "container_label", "=v", "'=v' is not key=value"),
        (A + "host", "zone=eu", "unknown affinity 'host'"),
        (A + "host_label_soft_soft", "zone=eu", "'soft' is given twice"),
        ("io.rancher.scheduler.global", "maybe", "must be true or false"),
    ],
)
def test_malformed_labels_raise_invalid_input_naming_the_label(key: str, value: str, message: str) -> None:
    with pytest.raises(InvalidInput) as error:
        parse({key: value})
    assert message in error.value.message and key in error.value.message
    assert error.value.field == key


def test_matching_semantics_and_for_positive_or_for_ne() -> None:
    positive = Rule(Kind.HOST_LABEL, False, False, (("zone", "eu"), ("disk", "ssd")))
    negated = Rule(Kind.HOST_LABEL, False, True, (("zone", "eu"), ("disk", "ssd")))
    assert positive.host_ok({"zone": "eu", "disk": "ssd"}) and not positive.host_ok({"zone": "eu"})
    assert not negated.host_ok({"zone": "eu"}) and not negated.host_ok({"disk": "ssd"})
    assert negated.host_ok({"zone": "us", "disk": "hdd"})
    names = Rule(Kind.CONTAINER, False, False, (("app-db-1", ""),))
    assert names.containers_ok({}, {"app-db-1": 1}) and not names.containers_ok({}, {})
    assert ("io.rancher.stack_service.name", "app/web") in system_labels("app", "web")


def test_an_empty_affinity_is_no_constraint_as_in_rancher() -> None:
    rules = parse_rules({A + "host_label": "", A + "host_label_soft": "  "}, stack="s", service="w")
    assert (rules.hard, rules.soft) == ((), ())
