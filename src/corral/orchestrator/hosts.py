"""Host liveness as a pure function: from connection facts and the clock to the host's state.

Why pure: the server's monitor calls it every second for every host; tests drive it with a fake clock
(Hypothesis), and the rules (active -> reconnecting -> disconnected -> active; active <-> engine-down while the
agent talks but its Docker engine does not answer) live in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

from corral.model.entities import HostState

LIVENESS_STATES = frozenset({HostState.ACTIVE, HostState.ENGINE_DOWN, HostState.RECONNECTING, HostState.DISCONNECTED})


@dataclass(frozen=True)
class LivenessPolicy:
    heartbeat_seconds: float
    missed_heartbeats: int
    grace_seconds: float

    @property
    def silent_after(self) -> float:
        return self.heartbeat_seconds * self.missed_heartbeats


def next_host_state(
    current: HostState,
    *,
    connected: bool,
    last_seen: float,
    now: float,
    policy: LivenessPolicy,
    engine_down: str = "",
) -> tuple[HostState, str]:
    """The state a host should be in now, and the reason shown to operators.

    Hosts that are provisioning, removing or failed are left alone. `last_seen` is the last message from the
    agent, or when the server started if that is later (the server's own downtime is not the host's fault), or
    when the host was created if its agent never connected. `engine_down` is the agent's word that its Docker
    engine does not answer (why), "" while it does: a talking agent without its engine leaves the host `engine-down`.
    """
    if current not in LIVENESS_STATES and current is not HostState.REGISTERING:
        return current, ""
    silence = max(0.0, now - last_seen)
    if connected and silence <= policy.silent_after:
        if engine_down:
            return HostState.ENGINE_DOWN, f"the docker engine does not answer: {engine_down}"
        return HostState.ACTIVE, ""
    if current is HostState.DISCONNECTED and not connected:
        return current, "no contact with the agent"
    if silence > policy.grace_seconds:
        if current is HostState.REGISTERING:
            return HostState.DISCONNECTED, f"the agent has not connected within {policy.grace_seconds:g} s"
        return HostState.DISCONNECTED, f"no contact with the agent for more than {policy.grace_seconds:g} s"
    if current is HostState.REGISTERING:
        return current, "waiting for the agent to connect"
    if connected:
        return HostState.RECONNECTING, f"no heartbeat for {silence:.0f} s"
    return HostState.RECONNECTING, "agent connection lost"
