"""Container stats against the machine's real Docker engine (runtime/stats.py through ContainerStreams, as the agent
reads them): one sample on request, a stream of samples that shows a busy container's CPU use, and a stream that
ends soon after it is stopped.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from corral.model.errors import NotFound
from corral.runtime.docker_engine import DockerEngine
from corral.runtime.streams import ContainerStreams
from tests.integration.agent_harness import Throwaways
from tests.integration.conftest import ROOT_DOCKER_HOST

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def streams(prerequisites: None) -> Iterator[ContainerStreams]:
    streams = ContainerStreams(DockerEngine(ROOT_DOCKER_HOST, timeout=20, pool_size=4))
    yield streams
    streams.close()


@pytest.fixture(scope="module")
def throwaways(prerequisites: None) -> Iterator[Throwaways]:
    containers = Throwaways(ROOT_DOCKER_HOST, prefix=f"corral-test-stats-{secrets.token_hex(2)}")
    try:
        yield containers
    finally:
        containers.remove_all()


def test_samples_of_a_busy_container_one_and_streamed(streams: ContainerStreams, throwaways: Throwaways) -> None:
    docker_id = throwaways.run("while :; do :; done")

    (single,) = list(streams.stats(docker_id, stream=False, stop=threading.Event()))
    assert single["memory_limit"] > 0 and 0 < single["memory_usage"] <= single["memory_limit"]
    assert (single["network_rx"], single["network_tx"]) == (0, 0)  # --network none

    stop = threading.Event()
    samples: list[dict[str, Any]] = []
    for sample in streams.stats(docker_id, stream=True, stop=stop):
        samples.append(sample)
        if len(samples) == 2:
            stop.set()  # the iterator must end by itself soon after
    assert len(samples) == 2
    assert samples[1]["time"] > samples[0]["time"]
    assert all(sample["cpu_percent"] > 5 for sample in samples), samples  # a shell spinning on one CPU

    with pytest.raises(NotFound):
        streams.stats("corral-no-such-container", stream=False, stop=threading.Event())
