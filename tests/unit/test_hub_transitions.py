"""A host's liveness transitions reach the store in the order they happen (server/hub/hub.py `_evaluate`).

The monitor loop and a connection's handler both evaluate a host; without one transition at a time, a write of
"reconnecting" still in flight could commit after the "active" that followed it, leaving the store's host
reconnecting forever while the hub held it active (seen in the fault tier after a server restart)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from corral.config import Settings
from corral.model.entities import HostState
from corral.server.hub.hub import AgentHub, Liveness
from corral.server.shared.events import EventBus


class SlowFirstWriteStore:
    """Its first `update_host` takes longer than the second: without ordering, the second would land first."""

    def __init__(self) -> None:
        self.states: list[HostState] = []
        self.calls = 0
        self.lock = threading.Lock()

    def update_host(self, host_id: str, **changes: Any) -> Any:
        with self.lock:
            self.calls += 1
            first = self.calls == 1
        time.sleep(0.3 if first else 0.0)
        with self.lock:
            self.states.append(changes["state"])
        return _Host()


class _Host:
    name = "h1"
    environment_id = "env"


def test_two_evaluations_in_flight_leave_the_store_where_memory_is(monkeypatch: Any) -> None:
    monkeypatch.setattr("corral.server.hub.hub.host_view", lambda host: {})

    async def scenario() -> None:
        store = SlowFirstWriteStore()
        hub = AgentHub(store=store, bus=EventBus(), settings=Settings())  # type: ignore[arg-type]
        now = time.time()
        live = hub.liveness["h"] = Liveness(state=HostState.ACTIVE, last_seen=now, connected=False)
        lost = asyncio.create_task(hub._evaluate("h", now))  # the monitor: the connection is gone
        await asyncio.sleep(0.05)
        live.connected = True  # the agent's new connection said hello meanwhile
        await hub._evaluate("h", now)
        await lost
        assert live.state is HostState.ACTIVE
        assert store.states[-1] is HostState.ACTIVE, store.states

    asyncio.run(scenario())
