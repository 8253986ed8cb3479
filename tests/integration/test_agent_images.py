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


def _listed(message: protocol.Message, tag: str) -> list[dict[str, object]]:
    return [i for i in message.data["images"] if tag in i["tags"]]


def test_the_image_list_shows_users_and_an_image_request_removes_only_an_unused_image(
    fake_server: FakeServer, state_dir: Path, start_agent: StartAgent
) -> None:
    """Issue 18: `image_list` (tags, size, created, containers) follows the engine; `image` removes, refused while a
    container (even a stopped one) was made from it."""
    tag = f"corral-test/inventory-{secrets.token_hex(4)}:1"
    dockerfile = f"FROM {IMAGE}\nLABEL io.corral.test={tag}\n"  # a new image id over the same layers
    subprocess.run(["docker", "-H", DOCKER_HOST, "build", "-q", "-t", tag, "-"], input=dockerfile.encode(), check=True)
    container = f"inventory-{secrets.token_hex(4)}"
    try:
        _docker("create", "--name", container, tag, "true")
        start_agent(state_dir, DOCKER_HOST)
        _, listed = fake_server.expect(protocol.IMAGE_LIST, where=lambda m: bool(_listed(m, tag)), timeout=30)
        (image,) = _listed(listed, tag)
        assert image["containers"] == [container] and image["size"] > 0 and image["created"] > 0
        assert str(image["id"]).startswith("sha256:")

        refused = fake_server.await_end(fake_server.request(protocol.IMAGE, action="remove", id=image["id"]), 30)
        assert refused.end.data["exit_code"] == 1 and f"in use by {container}" in refused.end.data["error"]

        _docker("rm", container)
        fake_server.expect(protocol.IMAGE_LIST, where=lambda m: _listed(m, tag)[:1] != [image], timeout=15)
        removed = fake_server.await_end(fake_server.request(protocol.IMAGE, action="remove", id=image["id"]), 30)
        assert removed.end.data["exit_code"] == 0, removed.end.data
        fake_server.expect(protocol.IMAGE_LIST, where=lambda m: not _listed(m, tag), timeout=15)
        gone = subprocess.run(["docker", "-H", DOCKER_HOST, "image", "inspect", tag], capture_output=True)
        assert gone.returncode != 0
    finally:
        subprocess.run(["docker", "-H", DOCKER_HOST, "rm", "-f", container], capture_output=True)
        subprocess.run(["docker", "-H", DOCKER_HOST, "rmi", tag], capture_output=True)
