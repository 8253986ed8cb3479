"""A local host removed while the supervisor is reviving it stays removed: the supervisor's revive and the removal
never interleave (a revive that had already looked at the host used to rebuild its dockerd and agent after the
removal had torn them down, leaving them running for a host that no longer exists)."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from typing import Any

from corral.config import Settings
from corral.model.entities import Host, HostState
from corral.model.errors import NotFound
from corral.server.services.host_service import HostService

HOST = Host("h1", "env", "alpha", HostState.ACTIVE, "", "local", "198.18.0.11")


class Store:
    def __init__(self) -> None:
        self.hosts = {HOST.id: HOST}

    def list_hosts(self) -> list[Host]:
        return list(self.hosts.values())

    def get_host(self, host_id: str) -> Host:
        if host_id not in self.hosts:
            raise NotFound(f"host {host_id!r} not found", field="host")
        return self.hosts[host_id]

    def update_host(self, host_id: str, **changes: Any) -> Host:
        self.hosts[host_id] = dataclasses.replace(self.get_host(host_id), **changes)
        return self.hosts[host_id]

    def delete_host(self, host_id: str) -> None:
        self.hosts.pop(host_id, None)


class Driver:
    """A local driver whose machine is dead; `load` waits until told, so a removal can start meanwhile."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.loading = threading.Event()
        self.go_on = threading.Event()

    def load(self, name: str) -> object:
        self.loading.set()
        self.go_on.wait(timeout=10)
        return object()

    def dockerd_alive(self, record: object) -> bool:
        return False

    def agent_alive(self, record: object) -> bool:
        return False

    def revive(self, name: str, command: list[str]) -> None:
        self.calls.append(f"revive {name}")

    def remove(self, name: str) -> None:
        self.calls.append(f"remove {name}")


class Hub:
    async def kick(self, host_id: str) -> None:
        return None


class Bus:
    def publish(self, *args: Any, **kwargs: Any) -> None:
        return None


def test_a_removal_during_a_revive_is_the_last_word(tmp_path: Any) -> None:
    store, driver = Store(), Driver()
    service = HostService(store, Bus(), Hub(), Settings(data_dir=tmp_path), driver)  # type: ignore[arg-type]
    service.agent_url = "https://198.18.0.1:1"

    async def scenario() -> None:
        revive = asyncio.create_task(service.revive_local_hosts())
        while not driver.loading.is_set():  # the supervisor has looked at the host and is loading its record
            await asyncio.sleep(0.01)
        removal = asyncio.create_task(service.remove(HOST))
        await asyncio.sleep(0.2)  # the removal gets as far as it can while the revive is under way
        driver.go_on.set()
        await asyncio.gather(revive, removal)

    asyncio.run(scenario())
    assert driver.calls[-1] == "remove alpha", driver.calls
    assert store.hosts == {}


def test_a_host_being_removed_is_not_revived(tmp_path: Any) -> None:
    store, driver = Store(), Driver()
    driver.go_on.set()
    service = HostService(store, Bus(), Hub(), Settings(data_dir=tmp_path), driver)  # type: ignore[arg-type]
    service.agent_url = "https://198.18.0.1:1"
    store.update_host(HOST.id, state=HostState.REMOVING)
    asyncio.run(service.revive_local_hosts())
    assert driver.calls == []
