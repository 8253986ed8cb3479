"""Host liveness rules as properties over a fake clock."""

from __future__ import annotations

from hypothesis import assume, example, given
from hypothesis import strategies as st

from corral.model.entities import HostState
from corral.orchestrator.hosts import LivenessPolicy, next_host_state
from corral.orchestrator.reconciling import staying
from corral.orchestrator.scheduling import HostView, takes_new

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


reasons = st.text(min_size=1, max_size=40)


@given(
    st.sampled_from([HostState.ACTIVE, HostState.ENGINE_DOWN, HostState.RECONNECTING, HostState.REGISTERING]),
    times,
    reasons,
)
def test_a_talking_agent_without_its_engine_makes_its_host_engine_down(state, now, why) -> None:
    new, reason = next_host_state(state, connected=True, last_seen=now, now=now, policy=POLICY, engine_down=why)
    assert new is HostState.ENGINE_DOWN and why in reason


@given(times, st.floats(0, 15))
@example(0.0, 15.0)  # the threshold itself
def test_the_engine_back_makes_the_host_active_again(last_seen, silence) -> None:
    now = last_seen + silence
    assume(now - last_seen <= POLICY.silent_after)  # the silence the rule sees: 15.0 added and taken away may exceed 15
    new, reason = next_host_state(HostState.ENGINE_DOWN, connected=True, last_seen=last_seen, now=now, policy=POLICY)
    assert (new, reason) == (HostState.ACTIVE, "")


@given(st.booleans(), times, st.floats(15.01, 1e5), reasons)
def test_a_silent_agent_outranks_its_engine_report(connected, last_seen, silence, why) -> None:
    """Without contact, the engine's state is unknown: the host goes the way of any silent host."""
    new, _ = next_host_state(
        HostState.ENGINE_DOWN,
        connected=connected,
        last_seen=last_seen,
        now=last_seen + silence,
        policy=POLICY,
        engine_down=why,
    )
    assert new in (HostState.RECONNECTING, HostState.DISCONNECTED)


@given(states, st.booleans(), times, st.floats(0, 1e5), st.one_of(st.just(""), reasons))
def test_the_rule_is_idempotent_with_the_engine(state, connected, last_seen, silence, why) -> None:
    now = last_seen + silence
    once, _ = next_host_state(state, connected=connected, last_seen=last_seen, now=now, policy=POLICY, engine_down=why)
    twice, _ = next_host_state(once, connected=connected, last_seen=last_seen, now=now, policy=POLICY, engine_down=why)
    assert once is twice


@given(states, st.booleans(), times, st.floats(0, 1e5), reasons)
def test_an_engine_down_host_never_takes_new_containers(state, connected, last_seen, silence, why) -> None:
    new, _ = next_host_state(
        state, connected=connected, last_seen=last_seen, now=last_seen + silence, policy=POLICY, engine_down=why
    )
    view = HostView(id="h", name="h", state=new)
    assert not takes_new(view)
    if new is HostState.ENGINE_DOWN:
        assert staying(view)  # its containers stay where they are until the engine is back
