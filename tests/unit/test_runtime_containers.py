"""From a DesiredContainer to Docker's create arguments, without an engine."""

from __future__ import annotations

import pytest

from corral.model.errors import InvalidInput
from corral.model.stack import ContainerSlot, DesiredContainer, LaunchConfig, PortSpec, VolumeSpec
from corral.runtime import labels
from corral.runtime.containers import create_arguments, docker_network_mode, expose_ports, stop_timeout

SLOT = ContainerSlot(
    id="c-1", environment_id="env-1", stack="shop", service="web", index=2, host_id="h-1", config_hash="abc"
)


def arguments(**launch: object) -> tuple[dict[str, object], dict[str, object]]:
    made = create_arguments(DesiredContainer(SLOT, LaunchConfig(image="img:1", **launch)))  # type: ignore[arg-type]
    return made.config, made.host_config


def test_labels_are_the_users_plus_corrals_which_win() -> None:
    config, _ = arguments(labels=(("tier", "front"), (labels.CONTAINER, "forged")))
    assert config["labels"] == {
        "tier": "front",
        labels.ENVIRONMENT: "env-1",
        labels.STACK: "shop",
        labels.SERVICE: "web",
        labels.CONTAINER: "c-1",
        labels.SERVICE_INDEX: "2",
        labels.CONFIG_HASH: "abc",
        "io.rancher.stack.name": "shop",
        "io.rancher.stack_service.name": "shop/web",
    }
    assert config["name"] == "shop-web-2"


def test_defaults_leave_the_image_in_charge() -> None:
    config, host = arguments()
    assert config["command"] is None and config["entrypoint"] is None
    assert config["ports"] is None and config["volumes"] is None
    assert config["working_dir"] is None and config["user"] is None and config["hostname"] is None
    assert config["stop_timeout"] is None and config["environment"] == []
    assert host["network_mode"] == "bridge"
    assert host["restart_policy"] is None and host["port_bindings"] is None and host["binds"] is None
    assert host["mem_limit"] is None and host["nano_cpus"] is None
    assert host["pid_mode"] is None and host["ipc_mode"] is None and host["devices"] is None


def test_everything_a_launch_config_says_reaches_docker() -> None:
    config, host = arguments(
        command=("httpd", "-f"),
        entrypoint=("/bin/sh", "-c"),
        environment=(("A", "1"), ("B", "x=y")),
        ports=(
            PortSpec(80, 8080),
            PortSpec(80, 8081, host_ip="127.0.0.1"),
            PortSpec(53, 5353, "udp"),
            PortSpec(9000),
        ),
        expose=("7000-7001", "53/udp"),
        volumes=(
            VolumeSpec("bind", "/www", "/srv/www", read_only=True),
            VolumeSpec("volume", "/data", "shop-data"),
            VolumeSpec("anonymous", "/cache"),
        ),
        working_dir="/www",
        user="nobody",
        hostname="web",
        restart="on-failure",
        stop_grace_seconds=2.5,
        cap_add=("NET_ADMIN",),
        cap_drop=("MKNOD",),
        privileged=True,
        mem_limit_bytes=64 << 20,
        cpus=0.5,
        tty=True,
        stdin_open=True,
        network_mode="host",
        pid="host",
        ipc="shareable",
        devices=("/dev/kvm:/dev/kvm:rwm",),
    )
    assert (host["pid_mode"], host["ipc_mode"], host["devices"]) == ("host", "shareable", ["/dev/kvm:/dev/kvm:rwm"])
    assert config["command"] == ["httpd", "-f"] and config["entrypoint"] == ["/bin/sh", "-c"]
    assert config["environment"] == ["A=1", "B=x=y"]
    assert config["ports"] == [(80, "tcp"), (53, "udp"), (9000, "tcp"), (7000, "tcp"), (7001, "tcp")]
    assert host["port_bindings"] == {"80/tcp": [("", 8080), ("127.0.0.1", 8081)], "53/udp": [("", 5353)]}
    assert host["binds"] == ["/srv/www:/www:ro", "shop-data:/data:rw"]
    assert config["volumes"] == ["/cache"]
    assert (config["working_dir"], config["user"], config["hostname"]) == ("/www", "nobody", "web")
    assert host["restart_policy"] == {"Name": "on-failure", "MaximumRetryCount": 0}
    assert config["stop_timeout"] == 3
    assert host["cap_add"] == ["NET_ADMIN"] and host["cap_drop"] == ["MKNOD"] and host["privileged"] is True
    assert host["mem_limit"] == 64 << 20 and host["nano_cpus"] == 500_000_000
    assert config["tty"] is True and config["stdin_open"] is True
    assert host["network_mode"] == "host"
    assert config["use_config_proxy"] is False


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("managed", "bridge"), ("", "bridge"), ("bridge", "bridge"), ("none", "none"), ("container:db", "container:db")],
)
def test_network_modes(mode: str, expected: str) -> None:
    assert docker_network_mode(mode) == expected


def test_expose_entries() -> None:
    assert expose_ports(["80", "53/UDP", "8000-8002/tcp", "80"]) == [
        (80, "tcp"),
        (53, "udp"),
        (8000, "tcp"),
        (8001, "tcp"),
        (8002, "tcp"),
    ]
    for bad in ("http", "0", "70000", "90-80", "80/icmp"):
        with pytest.raises(InvalidInput, match="not a port"):
            expose_ports([bad])


def test_stop_grace_is_rounded_up_to_whole_seconds() -> None:
    assert stop_timeout(None) is None
    assert stop_timeout(0) == 0
    assert stop_timeout(0.1) == 1
    assert stop_timeout(10) == 10


def test_a_bind_mount_needs_a_host_path() -> None:
    with pytest.raises(InvalidInput, match="no host path"):
        arguments(volumes=(VolumeSpec("bind", "/data"),))


def test_a_per_container_volume_is_the_indexs_own_and_others_are_shared() -> None:
    _, host = arguments(
        volumes=(
            VolumeSpec("volume", "/cache", "shop_cache", scope="container"),
            VolumeSpec("volume", "/data", "shop_data"),
            VolumeSpec("volume", "/shared", "shared", read_only=True, scope="environment"),
        )
    )
    assert host["binds"] == ["shop_cache_2:/cache:rw", "shop_data:/data:rw", "shared:/shared:ro"]
