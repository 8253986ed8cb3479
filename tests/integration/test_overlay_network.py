"""runtime/networks.py on a real engine: the managed Docker network is created, kept, recreated when its settings
changed and nobody uses it, and refused (Conflict naming the containers) when containers use it."""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
from collections.abc import Iterator

import docker
import docker.errors
import pytest

from corral.model.errors import Conflict
from corral.runtime.docker_engine import DockerEngine
from corral.runtime.networks import BRIDGE_NAME_OPTION, WantedNetwork, ensure_network

pytestmark = pytest.mark.integration


@pytest.fixture
def wanted(root_engine: DockerEngine) -> Iterator[WantedNetwork]:
    run_id = secrets.token_hex(3)
    octet = 64 + secrets.randbelow(60)  # inside the test overlay range 198.18.64.0/18
    want = WantedNetwork(
        name=f"corral-test-{run_id}",
        subnet=f"198.18.{octet}.0/24",
        ip_range=f"198.18.{octet}.0/26",
        gateway=f"198.18.{octet}.1",
        options={BRIDGE_NAME_OPTION: f"crn{run_id}", "com.docker.network.driver.mtu": "1450"},
        labels={"io.corral.environment": f"env-{run_id}"},
    )
    yield want

    def cleanup(client: docker.DockerClient) -> None:
        for container in client.containers.list(all=True, filters={"label": f"io.corral.test={run_id}"}):
            container.remove(force=True)
        with contextlib.suppress(docker.errors.NotFound):
            client.api.remove_network(want.name)

    root_engine.call("clean up", cleanup)


def test_created_kept_recreated_and_refused_while_used(root_engine: DockerEngine, wanted: WantedNetwork) -> None:
    assert ensure_network(root_engine, wanted) == "created"
    assert ensure_network(root_engine, wanted) == "present"
    inspected = root_engine.call("inspect", lambda c: c.api.inspect_network(wanted.name))
    assert inspected["IPAM"]["Config"][0]["IPRange"] == wanted.ip_range
    assert inspected["Options"][BRIDGE_NAME_OPTION] == wanted.options[BRIDGE_NAME_OPTION]

    moved = dataclasses.replace(wanted, ip_range=wanted.ip_range.replace(".0/26", ".64/26"))
    assert ensure_network(root_engine, moved) == "recreated"

    run_id = wanted.name.rsplit("-", 1)[1]

    def attach(client: docker.DockerClient) -> None:
        client.containers.create(
            "corral/busybox:latest",
            "sleep 60",
            name=f"corral-test-user-{run_id}",
            network=wanted.name,
            labels={"io.corral.test": run_id},
        )

    root_engine.call("create a user", attach)
    with pytest.raises(Conflict, match=f"corral-test-user-{run_id}") as caught:
        ensure_network(root_engine, wanted)
    assert "iprange" in caught.value.message
