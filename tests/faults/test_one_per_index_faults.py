"""The reproductions of issue 14, item 1, under the invariant monitor: a stop-first rolling upgrade whose replacement
must go to another host (its old container is slow to stop), and an index freed by a scale-down taken again on
another host before its old container is gone. Shares the compose file and `_up` of the integration test."""

from __future__ import annotations

import time
from typing import Any

from tests.faults.conftest import MARKS, Cluster
from tests.faults.monitor import wait_for
from tests.integration.test_one_per_index import _up

pytestmark = MARKS


def _host_of(cluster: Cluster, index: int) -> str:
    where = cluster.monitor.running()[("r", "a", str(index))]
    assert len(where) == 1, where
    return where[0].rsplit("@", 1)[1]


def _hosts_of(cluster: Cluster, index: int) -> list[str]:
    return [w.rsplit("@", 1)[1] for w in cluster.monitor.running().get(("r", "a", str(index)), [])]


def _service(cluster: Cluster) -> dict[str, Any]:
    with cluster.client() as client:
        return client.stacks.find_service("default", "r/a")


def test_stop_first_upgrade_and_index_reuse_never_run_an_index_twice(cluster: Cluster) -> None:
    cluster.wait_active()
    _up(cluster.server, cluster.work, "1")
    with cluster.monitor.fault("item 1: stop-first upgrade off a deactivated host") as window:
        cluster.monitor.converged(window, {("r", "a"): 2})
        first = _host_of(cluster, 1)
        cluster.server.cli("hosts", "deactivate", first)
        try:
            _up(cluster.server, cluster.work, "2", "-u", "--batch-size", "1", "--interval", "1000")
            wait_for("upgraded", lambda: _service(cluster)["state"] == "upgraded", 90)
            assert _host_of(cluster, 1) != first
            cluster.server.cli("up", "-s", "r", "--confirm-upgrade")
        finally:
            cluster.server.cli("hosts", "activate", first)
        cluster.monitor.converged(window, {("r", "a"): 2})
        cluster.monitor.final(window, ["r"])

    with cluster.monitor.fault("item 1: an index reused on another host after a scale-down") as window:
        cluster.server.cli("scale", "r/a=3")
        cluster.monitor.converged(window, {("r", "a"): 3})
        third = _host_of(cluster, 3)
        cluster.server.cli("hosts", "deactivate", third)
        try:
            cluster.server.cli("scale", "-d", "r/a=2")
            cluster.server.cli("scale", "-d", "r/a=3")
            began = time.monotonic()
            wait_for("r-a-3 running elsewhere", lambda: _hosts_of(cluster, 3) not in ([], [third]), 60)
            cluster.monitor.converged(window, {("r", "a"): 3}, since=began)
        finally:
            cluster.server.cli("hosts", "activate", third)
        cluster.monitor.final(window, ["r"])
    cluster.remove_stack("r")
