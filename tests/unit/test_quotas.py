"""Quotas (model/quotas.py): a change is refused exactly when it asks for more than a limit and more than there is
now; every quota passed is named with its limit, the amount asked and the command that raises it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.model.errors import InvalidInput
from corral.model.quotas import (
    CONTAINERS_PER_ENVIRONMENT,
    CONTAINERS_PER_STACK,
    NAMES,
    SERVICES_PER_ENVIRONMENT,
    SERVICES_PER_STACK,
    Demand,
    QuotaExceeded,
    Quotas,
    check,
    demand_of,
    enforce,
    merged,
    parse_quotas,
)

small = st.integers(min_value=0, max_value=60)
demands = st.builds(Demand, small, small)
quota_sets = st.builds(Quotas, small, small, small, small)


def _check(quotas: Quotas, stack_now: Demand, stack_after: Demand, others: Demand) -> list:
    return check(
        quotas,
        stack="app",
        stack_now=stack_now,
        stack_after=stack_after,
        environment_now=others + stack_now,
        environment="prod",
    )


@given(quota_sets, demands, demands, demands)
def test_a_quota_is_violated_exactly_when_it_is_passed_and_grows(
    quotas: Quotas, stack_now: Demand, stack_after: Demand, others: Demand
) -> None:
    found = {v.quota: v for v in _check(quotas, stack_now, stack_after, others)}
    env_now, env_after = others + stack_now, others + stack_after
    measured = {
        SERVICES_PER_STACK: (stack_now.services, stack_after.services),
        SERVICES_PER_ENVIRONMENT: (env_now.services, env_after.services),
        CONTAINERS_PER_STACK: (stack_now.containers, stack_after.containers),
        CONTAINERS_PER_ENVIRONMENT: (env_now.containers, env_after.containers),
    }
    for name, (now, after) in measured.items():
        limit = getattr(quotas, name)
        assert (name in found) == (after > limit and after > now)
        if name in found:
            assert (found[name].limit, found[name].requested, found[name].current) == (limit, after, now)
    assert [v.quota for v in _check(quotas, stack_now, stack_after, others)] == [n for n in NAMES if n in found]


@given(quota_sets, demands, demands)
def test_shrinking_or_keeping_a_stack_is_never_refused(quotas: Quotas, stack: Demand, others: Demand) -> None:
    smaller = Demand(stack.services // 2, stack.containers // 3)
    assert _check(quotas, stack, stack, others) == []
    assert _check(quotas, stack, smaller, others) == []


@given(quota_sets, demands, demands, demands)
def test_raising_every_limit_to_what_was_asked_lets_the_change_through(
    quotas: Quotas, stack_now: Demand, stack_after: Demand, others: Demand
) -> None:
    found = _check(quotas, stack_now, stack_after, others)
    raised = quotas.with_overrides({v.quota: v.requested for v in found})
    assert _check(raised, stack_now, stack_after, others) == []


def test_the_refusal_names_quota_limit_amount_and_the_command() -> None:
    with pytest.raises(QuotaExceeded) as caught:
        enforce(
            Quotas(services_per_stack=2, containers_per_environment=10),
            stack="app",
            stack_now=Demand(1, 1),
            stack_after=demand_of([1, 5, 6]),
            environment_now=Demand(3, 4),
            environment="prod",
        )
    error = caught.value
    assert error.status == 422 and error.to_dict()["error"] == "quota" and error.field == "quota"
    assert error.to_dict()["violations"] == [
        'stack "app" would have 3 services (now 1); quota services_per_stack of environment "prod" is 2 '
        "(raise it with: corral env update prod --quota services_per_stack=3)",
        'environment "prod" would have 15 containers (total scale) (now 4); quota containers_per_environment of '
        'environment "prod" is 10 (raise it with: corral env update prod --quota containers_per_environment=15)',
    ]
    assert error.message.startswith("over 2 quotas: ")


def test_parse_quotas_and_merge() -> None:
    assert parse_quotas(["services-per-stack=5,containers_per_stack=7", "services_per_environment=default"]) == {
        SERVICES_PER_STACK: 5,
        CONTAINERS_PER_STACK: 7,
        SERVICES_PER_ENVIRONMENT: None,
    }
    assert merged({SERVICES_PER_ENVIRONMENT: 3, CONTAINERS_PER_STACK: 1}, parse_quotas(["services_per_stack=5"])) == {
        SERVICES_PER_STACK: 5,
        SERVICES_PER_ENVIRONMENT: 3,
        CONTAINERS_PER_STACK: 1,
    }
    assert merged({SERVICES_PER_STACK: 5}, {SERVICES_PER_STACK: None}) == {}
    for bad, named in (
        (["pods=3"], "'pods' is not a quota"),
        (["services_per_stack"], "is not NAME=LIMIT"),
        (["services_per_stack=many"], "whole number"),
        (["services_per_stack=-1"], "between 0 and"),
    ):
        with pytest.raises(InvalidInput, match=named):
            parse_quotas(bad)


@given(st.lists(st.integers(min_value=-5, max_value=100), max_size=30))
def test_demand_counts_services_and_their_scales(scales: list[int]) -> None:
    demand = demand_of(scales)
    assert demand.services == len(scales) and demand.containers == sum(max(0, s) for s in scales)
