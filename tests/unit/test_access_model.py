"""The role matrix of model/access.py against Rancher 1.x's (shared/REFERENCE.md A2), written out independently."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.model.access import Action, Resource, Role, may_grant, parse_role, permits, strongest, validate_username
from corral.model.errors import InvalidInput

R, W = Action.READ, Action.WRITE
OWNER, MEMBER, RESTRICTED, READ_ONLY = Role.OWNER, Role.MEMBER, Role.RESTRICTED, Role.READ_ONLY

# (resource, action) -> the roles allowed, as the reference states them
EXPECTED = {
    (Resource.MEMBERS, R): {OWNER, MEMBER, RESTRICTED, READ_ONLY},
    (Resource.MEMBERS, W): {OWNER},
    (Resource.ENVIRONMENT, W): {OWNER},
    (Resource.HOSTS, R): {OWNER, MEMBER, RESTRICTED, READ_ONLY},
    (Resource.HOSTS, W): {OWNER, MEMBER},
    (Resource.STACKS, R): {OWNER, MEMBER, RESTRICTED, READ_ONLY},
    (Resource.STACKS, W): {OWNER, MEMBER, RESTRICTED},
    (Resource.REGISTRIES, W): {OWNER, MEMBER, RESTRICTED},
    (Resource.EXEC, W): {OWNER, MEMBER, RESTRICTED},
    (Resource.LOGS, R): {OWNER, MEMBER, RESTRICTED, READ_ONLY},
    (Resource.AUDIT, R): {OWNER},
    (Resource.KEYS, W): {OWNER, MEMBER, RESTRICTED},  # an environment key: a change, so not read-only's
}


@pytest.mark.parametrize(("resource", "action"), sorted(EXPECTED, key=str))
def test_the_matrix_is_rancher_s(resource: Resource, action: Action) -> None:
    assert {role for role in Role if permits(role, resource, action)} == EXPECTED[(resource, action)]


def test_read_only_changes_nothing_and_no_role_means_nothing() -> None:
    for resource in Resource:
        assert not permits(READ_ONLY, resource, W)
        assert not permits(None, resource, R)
        assert not permits(None, resource, W)


@given(st.sampled_from(list(Role)), st.sampled_from(list(Role)))
def test_nobody_grants_above_their_own_role(granter: Role, granted: Role) -> None:
    assert may_grant(granter, granted) == (granter.rank >= granted.rank)
    assert may_grant(None, granted, admin=True)
    assert not may_grant(None, granted)


@given(st.lists(st.sampled_from(list(Role))))
def test_the_strongest_role_wins(roles: list[Role]) -> None:
    best = strongest(roles)
    assert best is None if not roles else all(best.at_least(r) for r in roles)


def test_roles_and_names_are_validated() -> None:
    assert parse_role(" Read-Only ") is READ_ONLY
    with pytest.raises(InvalidInput, match="owner, member, restricted, read-only"):
        parse_role("god")
    with pytest.raises(InvalidInput):
        validate_username("a b")
    assert validate_username("alice@example.com") == "alice@example.com"
