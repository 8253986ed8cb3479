"""orchestrator/pull_targets.py: which hosts `corral pull` asks for which image, and which services it skips."""

from __future__ import annotations

import pytest

from corral.model.entities import Host, HostFacts, HostState
from corral.model.errors import InvalidInput
from corral.model.stack import ContainerSlot, LaunchConfig, Service, ServiceSpec, SlotRecord
from corral.orchestrator.pull_targets import PullNote, PullTarget, pull_targets


def host(host_id: str, arch: str = "x86_64", state: HostState = HostState.ACTIVE, **images: tuple[str, ...]) -> Host:
    return Host(host_id, "env", host_id, state, "", "custom", "198.18.0.1", facts=HostFacts(arch=arch), images=images)


def service(name: str, image: str, position: int = 0, **spec: object) -> Service:
    launch = LaunchConfig(image=image)
    return Service(f"s-{name}", "st", "env", "shop", name, ServiceSpec(name, launch, **spec), 1, position)  # type: ignore[arg-type]


def slot(service_id: str, host_id: str, index: int = 1) -> SlotRecord:
    return SlotRecord(
        ContainerSlot(f"{service_id}-{index}", "env", "shop", service_id, index, host_id, "h"), "st", service_id
    )


HOSTS = [
    host("amd", **{"corral/arm-only:1": ("aarch64",)}),
    host("arm", "aarch64", **{"corral/arm-only:1": ("aarch64",)}),
    host("gone", state=HostState.DISCONNECTED),
]


def test_placed_services_pull_where_their_containers_are_and_others_where_they_may_run() -> None:
    services = [
        service("web", "corral/web:1", 0),
        service("arm", "corral/arm-only:1", 1),
        service("new", "corral/unknown:1", 2),
        service("lb", "rancher/lb-service-haproxy", 3, lb_config={"port_rules": []}),
        service("ext", "", 4, virtual={"external_ips": ["1.2.3.4"]}),
        service("built", "corral-build/shop-app:abc", 5),
    ]
    slots = [slot("s-web", "gone"), slot("s-web", "amd", 2), slot("s-web", "amd", 3)]
    targets, notes = pull_targets(services, slots, HOSTS)
    assert targets == [
        PullTarget("web", "corral/web:1", ("gone", "amd")),  # a disconnected host with containers: asked (skipped)
        PullTarget("arm", "corral/arm-only:1", ("arm",)),  # no containers: the hosts whose arch the image has
        PullTarget("new", "corral/unknown:1", ("amd", "arm")),  # arch unknown: every active host
    ]
    assert [n.service for n in notes] == ["lb", "ext", "built"]
    assert isinstance(notes[0], PullNote) and "load balancer" in notes[0].note


def test_only_the_services_named_and_unknown_names_refused() -> None:
    services = [service("web", "corral/web:1"), service("db", "corral/db:1", 1)]
    targets, _ = pull_targets(services, [], HOSTS, ["db"])
    assert [t.service for t in targets] == ["db"]
    with pytest.raises(InvalidInput) as refused:
        pull_targets(services, [], HOSTS, ["db", "cache"])
    assert refused.value.field == "services" and "'cache'" in refused.value.message
