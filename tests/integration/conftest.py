"""Integration fixtures: they need root, a Docker engine answering on /var/run/docker.sock (`make setup` starts
one), iproute2 and the local test image. Without them the tests are skipped with the reason."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from corral.runtime.docker_engine import DockerEngine
from tests.integration.servers import ServerProcess

ROOT_DOCKER_HOST = "unix:///var/run/docker.sock"
TEST_IMAGE = "corral/busybox:latest"


def skip_or_fail(reason: str) -> None:
    """Skip on a developer's machine; in CI a missing prerequisite is a failure, not a quiet skip."""
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the integration tests: {reason}")
    pytest.skip(reason)


def _missing_prerequisite() -> str | None:
    if os.geteuid() != 0:
        return "integration tests need root (network namespaces, dockerd)"
    for tool in ("ip", "dockerd", "nsenter", "iptables"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (run `make setup`)"
    if not Path("/var/run/docker.sock").exists():
        return "no Docker engine on /var/run/docker.sock (run `make setup`)"
    return None


@pytest.fixture(scope="session")
def prerequisites() -> None:
    reason = _missing_prerequisite()
    if reason is not None:
        skip_or_fail(reason)


@pytest.fixture(scope="session")
def root_engine() -> Iterator[DockerEngine]:
    """The machine's own Docker engine (started by `make setup`)."""
    engine = DockerEngine(ROOT_DOCKER_HOST, timeout=10)
    if not engine.ping():
        skip_or_fail(f"no Docker engine answers at {ROOT_DOCKER_HOST} (run `make setup`)")
    yield engine
    engine.close()


def module_settings(request: pytest.FixtureRequest) -> dict[str, str]:
    """CORRAL_* settings a test module gives all its servers (`SERVER_SETTINGS = {...}` at module level), e.g. the
    load balancer modules' HAProxy image (servers.LB_SETTINGS)."""
    return dict(getattr(request.module, "SERVER_SETTINGS", {}))


@pytest.fixture
def server(prerequisites: None, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path / "data", **module_settings(request))
    process.data_dir.mkdir()
    process.start()
    try:
        yield process
    finally:
        process.teardown()


@pytest.fixture(scope="module")
def module_server(
    prerequisites: None, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[ServerProcess]:
    """One server for every test of a module that asks for it: for tests that each work in their own environment,
    stacks and tokens, so that they share the server's start (and its teardown) without sharing state."""
    process = ServerProcess(tmp_path_factory.mktemp("module") / "data", **module_settings(request))
    process.data_dir.mkdir()
    process.start()
    try:
        yield process
    finally:
        process.teardown()


@pytest.fixture
def server_with(
    prerequisites: None, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., ServerProcess]]:
    """Start a server with extra CORRAL_* settings, e.g. `server_with(CORRAL_HOST_GRACE_SECONDS="10")` (over the
    module's SERVER_SETTINGS)."""
    started: list[ServerProcess] = []
    settings = module_settings(request)

    def start(**overrides: str) -> ServerProcess:
        process = ServerProcess(tmp_path / f"data{len(started)}", **{**settings, **overrides})
        process.data_dir.mkdir()
        started.append(process)
        process.start()
        return process

    try:
        yield start
    finally:
        for process in started:
            process.teardown()
