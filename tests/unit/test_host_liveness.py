"""Host liveness rules as properties over a fake clock."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from corral.model.entities import HostState
from corral.orchestrator.hosts import LivenessPolicy, next_host_state

POLICY = LivenessPolicy(heartbeat_seconds=5, missed_heartbeats=3, grace_seconds=60)
states = st.sampled_from(list(HostState))
times = st.floats(min_value=0, max_value=1e6, allow_nan=False)


@given(states, st.booleans(), times, st.floats(min_value=0, max_value=1000))
def test_untracked_states_are_left_alone(state, connected, last_seen, silence) -> None:
    if state in (HostState.PROVISIONING, HostState.REMOVING, HostState.ERROR):
        assert (
            next_host_state(state, connected=connected, last_seen=last_seen, now=last_seen + silence, policy=POLICY)[0]
            is state
        )


@given(
    st.sampled_from([HostState.ACTIVE, HostState.RECONNECTING, HostState.DISCONNECTED, HostState.REGISTERING]), times
)
def test_a_talking_agent_makes_its_host_active(state, now) -> None:
    assert next_host_state(state, connected=True, last_seen=now, now=now, policy=POLICY) == (HostState.ACTIVE, "")


@given(st.sampled_from([HostState.ACTIVE, HostState.RECONNECTING]), st.booleans(), times, st.floats(15.01, 60))
def test_silence_within_grace_is_reconnecting(state, connected, last_seen, silence) -> None:
    new, reason = next_host_state(
        state, connected=connected, last_seen=last_seen, now=last_seen + silence, policy=POLICY
    )
    assert new is HostState.RECONNECTING and reason


@given(
    st.sampled_from([HostState.ACTIVE, HostState.RECONNECTING, HostState.REGISTERING]),
    st.booleans(),
    times,
    st.floats(60.01, 1e5),
)
def test_silence_past_grace_is_disconnected(state, connected, last_seen, silence) -> None:
    new, reason = next_host_state(
        state, connected=connected, last_seen=last_seen, now=last_seen + silence, policy=POLICY
    )
    assert new is HostState.DISCONNECTED and reason


@given(times, st.floats(0, 60))
def test_a_lost_connection_is_reconnecting_at_once(last_seen, silence) -> None:
    new, _ = next_host_state(
        HostState.ACTIVE, connected=False, last_seen=last_seen, now=last_seen + silence, policy=POLICY
    )
    assert new is HostState.RECONNECTING


@given(states, st.booleans(), times, st.floats(0, 1e5))
def test_the_rule_is_idempotent(state, connected, last_seen, silence) -> None:
    now = last_seen + silence
    once, _ = next_host_state(state, connected=connected, last_seen=last_seen, now=now, policy=POLICY)
    twice, _ = next_host_state(once, connected=connected, last_seen=last_seen, now=now, policy=POLICY)
    assert once is twice


@given(times, st.floats(0, 1e5))
def test_only_a_talking_agent_brings_a_disconnected_host_back(last_seen, silence) -> None:
    new, _ = next_host_state(
        HostState.DISCONNECTED, connected=False, last_seen=last_seen, now=last_seen + silence, policy=POLICY
    )
    assert new is HostState.DISCONNECTED
