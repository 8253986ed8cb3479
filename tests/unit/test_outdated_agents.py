"""The local-host supervisor restarts an agent whose build differs from the code installed now, and only then."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from corral.build import build_id, current_build_id
from corral.config import Settings
from corral.model.entities import Host, HostState
from corral.server.services import host_service
from corral.server.services.host_service import HostService


@dataclass
class FakeHub:
    versions: dict[str, str]

    def agent_version(self, host_id: str) -> str | None:
        return self.versions.get(host_id)


@dataclass
class FakeDriver:
    restarted: list[str] = field(default_factory=list)

    def start_agent(self, name: str, command: list[str]) -> int:
        self.restarted.append(name)
        return 4242


def _host(host_id: str) -> Host:
    return Host(host_id, "env", host_id, HostState.ACTIVE, "", "local", "198.18.0.11")


def _service(hub: FakeHub, tmp_path: Any, **settings: Any) -> HostService:
    service = HostService(None, None, hub, Settings(data_dir=tmp_path, **settings), None)  # type: ignore[arg-type]
    service.agent_url = "http://198.18.0.1:1"
    return service


@pytest.mark.parametrize(
    ("running", "restart"),
    [("0.0.0+old", True), (None, False), ("", False)],
)
def test_only_an_agent_running_other_code_is_restarted(tmp_path: Any, running: str | None, restart: bool) -> None:
    hub = FakeHub({"h1": running} if running is not None else {})
    driver = FakeDriver()
    asyncio.run(_service(hub, tmp_path)._restart_if_outdated(_host("h1"), driver))  # type: ignore[arg-type]
    assert driver.restarted == (["h1"] if restart else [])


def test_an_agent_running_the_installed_code_stays(tmp_path: Any) -> None:
    driver = FakeDriver()
    hub = FakeHub({"h1": current_build_id()})
    asyncio.run(_service(hub, tmp_path)._restart_if_outdated(_host("h1"), driver))  # type: ignore[arg-type]
    assert driver.restarted == []


def test_the_setting_switches_it_off(tmp_path: Any) -> None:
    driver = FakeDriver()
    service = _service(FakeHub({"h1": "0.0.0+old"}), tmp_path, restart_outdated_agents=False)
    asyncio.run(service._restart_if_outdated(_host("h1"), driver))  # type: ignore[arg-type]
    assert driver.restarted == []


def test_build_ids_name_the_version_and_change_with_the_code(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    import corral

    assert build_id().startswith(corral.__version__ + "+")
    package = tmp_path / "corral"
    package.mkdir()
    (package / "__init__.py").write_text("x = 1\n")
    monkeypatch.setattr(corral, "__file__", str(package / "__init__.py"))
    before = current_build_id()
    (package / "mod.py").write_text("y = 2\n")
    assert current_build_id() != before
    assert host_service.current_build_id is current_build_id
