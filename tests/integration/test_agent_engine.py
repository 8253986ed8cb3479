"""DockerEngine against the machine's real Docker engine: facts, a labelled container, and its events."""

from __future__ import annotations

import platform
import queue
import secrets
import threading
from collections.abc import Iterator

import docker
import docker.errors
import pytest

from corral.runtime import labels
from corral.runtime.docker_engine import DockerEngine
from tests.integration.conftest import ROOT_DOCKER_HOST as DOCKER_HOST
from tests.integration.conftest import TEST_IMAGE as IMAGE
from tests.integration.conftest import skip_or_fail

pytestmark = pytest.mark.integration


@pytest.fixture
def client(root_engine: DockerEngine) -> Iterator[docker.DockerClient]:
    client = docker.DockerClient(base_url=DOCKER_HOST, version="auto")
    try:
        client.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        client.close()
        skip_or_fail(f"image {IMAGE} is missing (scripts/setup.sh builds it)")
    yield client
    client.close()


@pytest.fixture
def sleeper(client: docker.DockerClient) -> Iterator[docker.models.containers.Container]:
    run_id = secrets.token_hex(4)
    container = client.containers.run(
        IMAGE,
        ["sleep", "300"],
        name=f"corral-test-engine-{run_id}",
        labels={labels.ENVIRONMENT: f"env-test-{run_id}", labels.SERVICE: "web", "tier": "front"},
        network_mode="none",  # needs no bridge: the test must not depend on docker0
        detach=True,
    )
    try:
        yield container
    finally:
        container.remove(force=True)


def test_facts_are_sane(root_engine: DockerEngine) -> None:
    facts = root_engine.facts()
    if platform.machine() == "x86_64":
        assert facts.arch == "x86_64"
    assert facts.cpus > 0
    assert facts.memory_bytes > 0
    assert facts.hostname
    assert facts.kernel == platform.release()
    assert facts.engine_version


def test_a_labelled_container_shows_up_running(root_engine: DockerEngine, sleeper) -> None:
    seen = {c.docker_id: c for c in root_engine.containers()}
    assert sleeper.id in seen
    observed = seen[sleeper.id]
    assert observed.state == "running"
    assert observed.status == "Up"
    assert observed.exit_code is None
    assert observed.name == sleeper.name
    assert observed.image == IMAGE
    assert observed.labels["tier"] == "front"
    assert observed.managed
    assert observed.created > 0
    # The list path (second call, policy known) and the inspect path agree.
    assert root_engine.container(sleeper.id) == observed
    assert {c.docker_id: c for c in root_engine.containers()}[sleeper.id] == observed


def test_unknown_container_is_none(root_engine: DockerEngine) -> None:
    assert root_engine.container("corral-no-such-container-" + secrets.token_hex(4)) is None


def test_an_event_is_yielded_when_the_container_stops(root_engine: DockerEngine, sleeper) -> None:
    stop = threading.Event()
    events: queue.Queue[tuple[str, str]] = queue.Queue()
    stream = root_engine.events(stop)  # subscribed before the stop below: nothing can be missed

    def consume() -> None:
        for item in stream:
            events.put(item)

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    try:
        sleeper.stop(timeout=0)
        actions: set[str] = set()
        while "die" not in actions:
            action, docker_id = events.get(timeout=10)
            if docker_id == sleeper.id:
                actions.add(action)
        observed = root_engine.container(sleeper.id)
        assert observed is not None and observed.state == "exited" and observed.exit_code is not None
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive(), "the event iterator must end once stop is set"
