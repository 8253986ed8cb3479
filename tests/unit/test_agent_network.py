"""Managed containers on the overlay: create arguments, the converger's gate, and a changed address recreating."""

from __future__ import annotations

import dataclasses

from corral.agent.converge import ActionKind, plan_convergence
from corral.agent.network import OVERLAY_DISABLED, WAITING_FOR_ADDRESS, WAITING_FOR_NETWORK, NetworkManager
from corral.model.entities import ObservedContainer
from corral.model.network import HostNetwork, NetworkSettings, NetworkState
from corral.model.stack import ContainerSlot, DesiredContainer, LaunchConfig
from corral.runtime import labels
from corral.runtime.containers import container_labels, create_arguments
from corral.runtime.docker_engine import DockerEngine


def desired(ip: str = "10.42.1.5", network_mode: str = "managed") -> DesiredContainer:
    slot = ContainerSlot(
        id="slot-1",
        environment_id="env-1",
        stack="web",
        service="app",
        index=1,
        host_id="h1",
        config_hash="abc",
    )
    return DesiredContainer(
        slot=slot, launch=LaunchConfig(image="corral/busybox:latest", network_mode=network_mode), ip=ip
    )


def test_a_managed_container_with_an_address_joins_the_overlay_with_corral_dns() -> None:
    args = create_arguments(desired())
    assert args.host_config["network_mode"] == "corral-managed"
    assert args.endpoint == {"network": "corral-managed", "ipv4_address": "10.42.1.5"}
    assert args.host_config["dns"] == ["169.254.169.250"]
    assert args.host_config["dns_search"] == ["web.corral.internal", "corral.internal"]
    assert args.config["labels"][labels.OVERLAY_IP] == "10.42.1.5"


def test_other_network_modes_stay_as_they_are() -> None:
    for mode in ("host", "bridge", "none"):
        args = create_arguments(desired(network_mode=mode))
        assert args.host_config["network_mode"] == mode and args.endpoint is None
        assert "dns" not in args.host_config


def test_gate_waits_for_an_address_then_for_the_network() -> None:
    manager = NetworkManager(DockerEngine("unix:///nonexistent.sock"))
    try:
        assert manager.gate(desired(ip="")) == WAITING_FOR_ADDRESS
        assert manager.gate(desired()).startswith(WAITING_FOR_NETWORK)
        assert manager.gate(desired(network_mode="host")) == ""
        manager.ready = True
        assert manager.gate(desired()) == ""
    finally:
        manager.close()


def test_without_the_overlay_managed_containers_wait_with_the_reason_and_nothing_is_applied() -> None:
    manager = NetworkManager(DockerEngine("unix:///nonexistent.sock"), enabled=False)
    seen: list[NetworkState] = []

    class Component:
        def update(self, state: NetworkState) -> None:
            seen.append(state)

    try:
        manager.register(Component())
        state = NetworkState(
            environment_id="env-1",
            environment="default",
            settings=NetworkSettings(subnet="198.18.64.0/18"),
            host=HostNetwork("h1", "a", "198.18.0.11", "198.18.65.0/24"),
        )
        assert manager.receive(state.to_dict()) == ""
        assert manager.gate(desired()) == OVERLAY_DISABLED and "CORRAL_AGENT_OVERLAY=0" in OVERLAY_DISABLED
        assert manager.gate(desired(network_mode="bridge")) == ""
        assert seen == [] and not manager._apply_now.is_set()
    finally:
        manager.close()


def test_malformed_network_message_keeps_the_state_and_a_good_one_reaches_components() -> None:
    manager = NetworkManager(DockerEngine("unix:///nonexistent.sock"))
    seen: list[NetworkState] = []

    class Component:
        def update(self, state: NetworkState) -> None:
            seen.append(state)

    try:
        manager.register(Component())
        assert "malformed" in manager.receive({"settings": {}})
        assert manager.state is None and seen == []
        state = NetworkState(
            environment_id="env-1",
            environment="default",
            settings=NetworkSettings(subnet="198.18.64.0/18"),
            host=HostNetwork("h1", "one", "198.18.0.11", "198.18.65.0/24"),
            peers=(HostNetwork("h2", "two", "198.18.0.12", "198.18.66.0/24"),),
        )
        assert manager.receive(state.to_dict()) == ""
        assert seen == [state] and set(manager.peers) == {"h2"}
    finally:
        manager.close()


def observed(ip_label: str | None, config_hash: str = "abc") -> ObservedContainer:
    found = container_labels(desired())
    found[labels.CONFIG_HASH] = config_hash
    if ip_label is not None:
        found[labels.OVERLAY_IP] = ip_label
    return ObservedContainer(
        docker_id="d1",
        name="web-app-1",
        image="corral/busybox:latest",
        state="running",
        status="",
        exit_code=None,
        restart_count=0,
        labels=found,
        created=1.0,
        ip=ip_label or "",
    )


def test_a_changed_overlay_address_recreates_and_the_same_keeps() -> None:
    (action,) = plan_convergence([desired()], [observed("10.42.1.9")], {})
    assert action.kind is ActionKind.RECREATE and "10.42.1.9 -> 10.42.1.5" in action.reason
    assert plan_convergence([desired()], [observed("10.42.1.5")], {}) == []
    (action,) = plan_convergence([desired()], [observed(None)], {})  # created on the old fallback bridge
    assert action.kind is ActionKind.RECREATE
    assert plan_convergence([dataclasses.replace(desired(), ip="")], [observed("10.42.1.9")], {}) == []
