"""The real agent reports the architectures of its engine's images: in its hello, then after image events."""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

import pytest

from corral.model import protocol
from corral.runtime.docker_engine import DockerEngine
from tests.integration.agent_harness import (  # noqa: F401
    FakeServer,
    StartAgent,
    fake_server_fixture,
    start_agent_fixture,
    state_dir_fixture,
)
from tests.integration.conftest import ROOT_DOCKER_HOST as DOCKER_HOST
from tests.integration.conftest import TEST_IMAGE as IMAGE

pytestmark = pytest.mark.integration


def _docker(*args: str) -> None:
    subprocess.run(["docker", "-H", DOCKER_HOST, *args], check=True, capture_output=True)


def test_hello_carries_the_image_architectures_and_tags_update_them(
    fake_server: FakeServer, state_dir: Path, start_agent: StartAgent, root_engine: DockerEngine
) -> None:
    image_id = root_engine.call("inspect the test image", lambda c: c.images.get(IMAGE).id)
    start_agent(state_dir, DOCKER_HOST)
    _, hello = fake_server.expect(protocol.HELLO)
    images = protocol.images_from_wire(hello.data["images"])
    assert images[IMAGE] == ("x86_64",) and images[image_id] == ("x86_64",)

    tag = f"corral-test/images-{secrets.token_hex(4)}:1"
    _docker("tag", IMAGE, tag)
    try:
        fake_server.expect(protocol.IMAGES, where=lambda m: m.data["images"].get(tag) == ["x86_64"], timeout=15)
    finally:
        _docker("rmi", tag)  # untags only: the image keeps its other tag
    fake_server.expect(protocol.IMAGES, where=lambda m: tag not in m.data["images"], timeout=15)
