"""Real files from rancher/community-catalog (../shared/catalog-samples): the plain ones load with default answers.

`.tpl` files are rendered by the catalog (`corral.catalog.validate`: default answers, placeholders for required
questions without one); every rancher-compose.yml file is also checked against stand-in services so that every
real rancher-compose.yml key is at least understood.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from corral.catalog.loader import load_version
from corral.catalog.validate import validate_version
from corral.compose import ComposeFile, load_stack

SAMPLES = Path(os.environ.get("CORRAL_CATALOG_SAMPLES", "/work/shared/catalog-samples")) / "templates"
pytestmark = pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"no catalog samples at {SAMPLES}")


def versions() -> list[Path]:
    return sorted(p for p in SAMPLES.glob("*/*") if p.is_dir()) if SAMPLES.is_dir() else []


def plain_versions() -> list[Path]:
    return [
        p for p in versions() if (p / "docker-compose.yml").is_file() and "{{" not in _read(p / "docker-compose.yml")
    ]


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def default_answers(rancher_text: str) -> dict[str, str]:
    doc: dict[str, Any] = yaml.safe_load(rancher_text) or {}
    catalog = doc.get("catalog") or doc.get(".catalog") or {}
    answers: dict[str, str] = {}
    for question in catalog.get("questions", []):
        default = question.get("default")
        if default is None:
            continue
        answers[question["variable"]] = str(default).lower() if isinstance(default, bool) else str(default)
    return answers


def test_there_are_plain_samples() -> None:
    assert {p.parent.name for p in plain_versions()} >= {"MongoDB", "etcd-ha"}


@pytest.mark.parametrize("version", plain_versions(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_plain_samples_load_with_default_answers(version: Path) -> None:
    rancher_text = _read(version / "rancher-compose.yml")
    spec = load_stack(
        version.parent.name.lower(),
        ComposeFile("docker-compose.yml", _read(version / "docker-compose.yml")),
        ComposeFile("rancher-compose.yml", rancher_text),
        answers=default_answers(rancher_text),
    )
    assert spec.services
    for service in spec.services:
        assert service.launch.image
        assert 0 <= service.scale <= 1000
    for warning in spec.warnings:
        assert warning.startswith(("docker-compose.yml: ", "rancher-compose.yml: "))


def test_mongodb_sample_in_detail() -> None:
    version = SAMPLES / "MongoDB" / "3"
    rancher_text = _read(version / "rancher-compose.yml")
    spec = load_stack(
        "mongo",
        ComposeFile("docker-compose.yml", _read(version / "docker-compose.yml")),
        ComposeFile("rancher-compose.yml", rancher_text),
        answers=default_answers(rancher_text),
    )
    cluster = spec.service("mongo-cluster")
    assert cluster is not None
    assert cluster.scale == 3
    assert cluster.retain_ip
    assert cluster.metadata == {"mongo": {"yml": {"replset.name": "rs0"}}}
    assert cluster.launch.command == ("--replSet", "rs0")
    assert cluster.launch.entrypoint == ("/opt/rancher/bin/entrypoint.sh",)
    assert dict(cluster.launch.labels)["io.rancher.scheduler.affinity:container_label_ne"] == (
        "io.rancher.stack_service.name=${stack_name}/${service_name}"
    )
    assert [(p.host_port, p.container_port, p.protocol) for p in cluster.launch.ports] == [(27017, 27017, "tcp")]
    assert any("'host_label' is not set" in w for w in spec.warnings)
    assert cluster.launch.volumes_from == ("mongo-datavolume", "mongo-base")
    assert cluster.sidekicks == ("mongo-base", "mongo-datavolume")


def test_etcd_sample_in_detail() -> None:
    version = SAMPLES / "etcd-ha" / "7"
    rancher_text = _read(version / "rancher-compose.yml")
    spec = load_stack(
        "etcd",
        ComposeFile("docker-compose.yml", _read(version / "docker-compose.yml")),
        ComposeFile("rancher-compose.yml", rancher_text),
        answers=default_answers(rancher_text),
    )
    etcd, data = spec.service("etcd"), spec.service("data")
    assert etcd is not None and data is not None
    assert etcd.scale == 3
    assert etcd.health_check is not None and etcd.health_check["port"] == 2378
    assert dict(etcd.launch.environment)["EMBEDDED_BACKUPS"] == "true"
    assert [(v.kind, v.source, v.target) for v in etcd.launch.volumes] == [
        ("volume", "etcd", "/pdata"),
        ("bind", "/var/etcd/backups", "/data-backup"),
    ]
    assert data.launch.network_mode == "none"  # v1 `net: none`


@pytest.mark.parametrize("version", versions(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_rancher_compose_file_is_understood(version: Path) -> None:
    rancher_text = _read(version / "rancher-compose.yml")
    doc: dict[str, Any] = yaml.safe_load(rancher_text)
    names = doc["services"] if "services" in doc else {k: v for k, v in doc.items() if k not in (".catalog", "catalog")}
    compose = "".join(f"{name}:\n  image: busybox\n" for name in names)
    spec = load_stack(
        "sample",
        ComposeFile("docker-compose.yml", compose),
        ComposeFile("rancher-compose.yml", rancher_text),
        answers=default_answers(rancher_text),
    )
    assert {s.name for s in spec.services} == set(names)


@pytest.mark.parametrize("version", versions(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_sample_renders_and_loads_with_default_answers(version: Path) -> None:
    result = validate_version(load_version(version, version.parent.name))
    assert result.ok, result.error
