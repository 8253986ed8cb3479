"""Compose's pass-through engine options reach Docker's create call (runtime/containers.py, pure), and launch
configs without them keep their config hash (existing containers are not recreated by the upgrade)."""

from __future__ import annotations

from dataclasses import replace

from corral.model.stack import ContainerSlot, DesiredContainer, LaunchConfig
from corral.runtime.containers import create_arguments

SLOT = ContainerSlot("s1", "env", "shop", "web", 1, "h1", "hash1")
TUNED = LaunchConfig(
    image="nginx",
    init=True,
    read_only=True,
    shm_size_bytes=64 * 1024**2,
    stop_signal="SIGQUIT",
    extra_hosts=("db.local:10.0.0.5",),
    tmpfs=("/run", "/cache:size=1m"),
    ulimits=(("nofile", 1024, 2048),),
)


def test_engine_options_are_in_the_create_arguments() -> None:
    args = create_arguments(DesiredContainer(SLOT, TUNED))
    assert args.config["stop_signal"] == "SIGQUIT"
    host = args.host_config
    assert (host["init"], host["read_only"], host["shm_size"]) == (True, True, 64 * 1024**2)
    assert host["extra_hosts"] == ["db.local:10.0.0.5"]
    assert host["tmpfs"] == {"/run": "", "/cache": "size=1m"}
    assert host["ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]


def test_a_plain_launch_config_has_none_of_them_and_keeps_its_hash() -> None:
    plain = LaunchConfig(image="nginx")
    args = create_arguments(DesiredContainer(SLOT, plain))
    assert not {"init", "read_only", "shm_size", "extra_hosts", "tmpfs", "ulimits"} & set(args.host_config)
    assert "stop_signal" not in args.config
    assert set(plain.to_dict()).isdisjoint({"init", "read_only", "shm_size_bytes", "ulimits", "tmpfs"})
    assert plain.config_hash() != TUNED.config_hash()


def test_engine_options_round_trip_through_to_dict() -> None:
    assert LaunchConfig.from_dict(TUNED.to_dict()) == TUNED
    assert replace(TUNED, ulimits=()).to_dict().get("ulimits") is None
