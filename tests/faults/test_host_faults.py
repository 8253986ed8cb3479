"""Faults of one host while stacks run on three (issue 14): its agent killed ten times, its dockerd killed, its
network cut shorter and longer than the grace period (and with a server restart meanwhile), its agent frozen past
the grace period, one of its containers removed behind Corral's back. After each: the monitor saw no breach, and
every service runs its acknowledged scale again within 60 s."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from tests.faults.conftest import GRACE_SECONDS, HOSTS, MARKS, Cluster
from tests.faults.monitor import wait_for

SCALES = {"a": 4, "b": 2}

pytestmark = MARKS


def _ready(cluster: Cluster, stack: str) -> dict[tuple[str, str], int]:
    cluster.wait_active()
    cluster.up(stack, SCALES)
    expected = {(stack, name): scale for name, scale in SCALES.items()}
    with cluster.monitor.fault(f"{stack}: setup") as window:
        cluster.monitor.converged(window, expected)
    return expected


def _running_ids(cluster: Cluster, stack: str) -> set[str]:
    return {w for key, where in cluster.monitor.running().items() if key[0] == stack for w in where}


def _host_with_most(cluster: Cluster, stack: str) -> str:
    counts = {h: 0 for h in HOSTS}
    for key, where in cluster.monitor.running().items():
        if key[0] == stack:
            for w in where:
                counts[w.rsplit("@", 1)[1]] += 1
    return max(counts, key=lambda h: counts[h])


def _partition(cluster: Cluster, host: str, up: bool) -> None:
    subprocess.run(["ip", "link", "set", cluster.record(host).veth, "up" if up else "down"], check=True)


def test_agent_killed_ten_times_restarts_no_container(cluster: Cluster) -> None:
    expected = _ready(cluster, "ak")
    before = _running_ids(cluster, "ak")
    with cluster.monitor.fault("agent kill -9 x10") as window:
        for n in range(10):
            host = HOSTS[n % len(HOSTS)]
            pid = cluster.record(host).agent_pid
            os.kill(pid, signal.SIGKILL)
            wait_for(f"{host}'s agent back", lambda h=host, p=pid: cluster.record(h).agent_pid not in (None, p), 20)
        healed = time.monotonic()
        cluster.wait_active()
        cluster.monitor.converged(window, expected, since=healed)
        assert _running_ids(cluster, "ak") == before  # no container was restarted or replaced
        cluster.monitor.final(window, ["ak"])
    cluster.remove_stack("ak")


def test_dockerd_killed(cluster: Cluster) -> None:
    expected = _ready(cluster, "dk")
    host = _host_with_most(cluster, "dk")
    with cluster.monitor.fault("dockerd kill -9") as window:
        os.kill(cluster.record(host).dockerd_pid, signal.SIGKILL)
        wait_for(f"{host} not active", lambda: cluster.host_state(host) != "active", 15)
        healed = time.monotonic()  # the supervisor brings the dockerd back (as an init system would)
        cluster.wait_active()
        cluster.monitor.converged(window, expected, since=healed)
        cluster.monitor.final(window, ["dk"])
    cluster.remove_stack("dk")


def test_partitions_shorter_and_longer_than_the_grace_period(cluster: Cluster) -> None:
    expected = _ready(cluster, "pt")
    for seconds, restart in ((GRACE_SECONDS / 2, False), (GRACE_SECONDS + 6, False), (GRACE_SECONDS + 6, True)):
        host = _host_with_most(cluster, "pt")
        name = f"partition {seconds:.0f} s of {host}" + (" with a server restart" if restart else "")
        with cluster.monitor.fault(name) as window:
            cluster.monitor.isolate(host)
            _partition(cluster, host, up=False)
            cut = time.monotonic()
            try:
                if restart:
                    time.sleep(2)
                    cluster.kill_server()
                    cluster.server.start()
                if seconds > GRACE_SECONDS:  # past the grace period: the server gave the host up (and replaced)
                    wait_for(f"{host} disconnected", lambda h=host: cluster.host_state(h) == "disconnected", 30)
                time.sleep(max(0.0, seconds - (time.monotonic() - cut)))
            finally:
                _partition(cluster, host, up=True)
            cluster.monitor.healed(host)
            healed = time.monotonic()
            cluster.wait_active()
            cluster.monitor.converged(window, expected, since=healed)
            cluster.monitor.final(window, ["pt"])
    cluster.remove_stack("pt")


def test_agent_frozen_beyond_the_grace_period(cluster: Cluster) -> None:
    expected = _ready(cluster, "fz")
    host = _host_with_most(cluster, "fz")
    with cluster.monitor.fault(f"agent of {host} SIGSTOP {GRACE_SECONDS + 6} s") as window:
        pid = cluster.record(host).agent_pid
        cluster.monitor.isolate(host)
        os.kill(pid, signal.SIGSTOP)
        try:
            wait_for(f"{host} disconnected", lambda: cluster.host_state(host) == "disconnected", GRACE_SECONDS + 15)
            time.sleep(4)
        finally:
            os.kill(pid, signal.SIGCONT)
        cluster.monitor.healed(host)
        healed = time.monotonic()
        cluster.wait_active()
        cluster.monitor.converged(window, expected, since=healed)
        cluster.monitor.final(window, ["fz"])
    cluster.remove_stack("fz")


def test_a_container_removed_out_of_band(cluster: Cluster) -> None:
    expected = _ready(cluster, "oob")
    with cluster.monitor.fault("docker rm -f out of band") as window:
        key, where = next((k, w) for k, w in cluster.monitor.running().items() if k[0] == "oob")
        name, host = where[0].rsplit("@", 1)
        engine = cluster.monitor.engine(host).api
        removed = engine.inspect_container(name)["Id"]
        engine.remove_container(name, force=True)
        healed = time.monotonic()
        cluster.monitor.converged(window, expected, since=healed)
        name, host = cluster.monitor.running()[key][0].rsplit("@", 1)
        assert cluster.monitor.engine(host).api.inspect_container(name)["Id"] != removed  # a new one took its place
        cluster.monitor.final(window, ["oob"])
    cluster.remove_stack("oob")


def test_dockerd_frozen_turns_the_host_engine_down(cluster: Cluster) -> None:
    expected = _ready(cluster, "df")
    host = _host_with_most(cluster, "df")
    pid = cluster.record(host).dockerd_pid
    with cluster.monitor.fault(f"dockerd of {host} SIGSTOP") as window:
        os.kill(pid, signal.SIGSTOP)
        try:
            wait_for(f"{host} engine-down", lambda: cluster.host_state(host) == "engine-down", 45)
            on_host = [c for c in cluster.monitor.api("containers") if c["stack"] == "df" and c["host"] == host]
            wait_for(
                "its containers unknown",
                lambda: all(
                    c["state"] == "unknown"
                    for c in cluster.monitor.api("containers")
                    if c["stack"] == "df" and c["host"] == host
                ),
                15,
            )
            assert on_host
        finally:
            os.kill(pid, signal.SIGCONT)
        healed = time.monotonic()
        cluster.wait_active()
        cluster.monitor.converged(window, expected, since=healed)
        cluster.monitor.final(window, ["df"])
    cluster.remove_stack("df")
