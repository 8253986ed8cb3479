"""Volumes on one engine (runtime/volumes.py) against a fake Docker API: who mounts what, removal refused while in
use, and a container's stack volumes created first with Corral's labels (external ones never)."""

from __future__ import annotations

from typing import Any

import pytest

from corral.model.errors import Conflict, NotFound
from corral.model.stack import ContainerSlot, DesiredContainer, LaunchConfig, VolumeSpec
from corral.model.volumes import ENVIRONMENT_LABEL, SCOPE_LABEL, STACK_LABEL, ObservedVolume
from corral.runtime.volumes import ensure_stack_volumes, list_volumes, remove_volume


class FakeApi:
    def __init__(self) -> None:
        self.volume_rows: list[dict[str, Any]] = [
            {"Name": "app_data", "Driver": "local", "Labels": {SCOPE_LABEL: "stack"}},
            {"Name": "idle", "Driver": "local", "Labels": None},
        ]
        self.container_rows = [
            {"Names": ["/app-db-1"], "Mounts": [{"Type": "volume", "Name": "app_data"}, {"Type": "bind"}]},
            {"Names": ["/app-db-2"], "Mounts": [{"Type": "volume", "Name": "app_data"}]},
        ]
        self.created: list[tuple[str, dict[str, Any]]] = []
        self.removed: list[str] = []

    def volumes(self) -> dict[str, Any]:
        return {"Volumes": self.volume_rows}

    def containers(self, all: bool) -> list[dict[str, Any]]:
        return self.container_rows

    def create_volume(self, name: str, **options: Any) -> None:
        self.created.append((name, options))

    def remove_volume(self, name: str) -> None:
        self.removed.append(name)


class FakeEngine:
    def __init__(self) -> None:
        self.api = FakeApi()

    def call(self, what: str, fn: Any) -> Any:
        return fn(self)


def test_volumes_are_listed_with_the_containers_that_mount_them() -> None:
    engine = FakeEngine()
    assert list_volumes(engine) == (  # type: ignore[arg-type]
        ObservedVolume("app_data", labels={SCOPE_LABEL: "stack"}, containers=("app-db-1", "app-db-2")),
        ObservedVolume("idle"),
    )


def test_removal_is_refused_while_in_use_and_names_the_containers() -> None:
    engine = FakeEngine()
    with pytest.raises(Conflict, match="in use by app-db-1, app-db-2"):
        remove_volume(engine, "app_data")  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        remove_volume(engine, "nothing")  # type: ignore[arg-type]
    remove_volume(engine, "idle")  # type: ignore[arg-type]
    assert engine.api.removed == ["idle"]


def test_stack_and_per_container_volumes_are_created_first_with_corrals_labels() -> None:
    engine = FakeEngine()
    volumes = (
        VolumeSpec(kind="volume", target="/data", source="app_data"),  # exists: kept as it is
        VolumeSpec(kind="volume", target="/cache", source="app_cache", scope="container"),
        VolumeSpec(kind="volume", target="/ext", source="shared", scope="environment"),
        VolumeSpec(kind="bind", target="/etc/x", source="/srv/x"),
    )
    slot = ContainerSlot(id="s1", environment_id="e1", stack="app", service="db", index=2, host_id="h", config_hash="x")
    ensure_stack_volumes(engine, DesiredContainer(slot=slot, launch=LaunchConfig(image="i", volumes=volumes)))  # type: ignore[arg-type]
    assert engine.api.created == [
        (
            "app_cache_2",
            {
                "driver": "local",
                "driver_opts": None,
                "labels": {ENVIRONMENT_LABEL: "e1", STACK_LABEL: "app", SCOPE_LABEL: "container"},
            },
        )
    ]
