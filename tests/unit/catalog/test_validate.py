"""The catalog linter: the real samples and the default catalog pass; broken versions fail with a clear error."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from corral.catalog.loader import default_catalog_root
from corral.catalog.validate import ValidationResult, validate_catalog

from .test_loader import COMPOSE, write_template

SAMPLES = Path(os.environ.get("CORRAL_CATALOG_SAMPLES", "/work/shared/catalog-samples"))


@pytest.mark.skipif(not (SAMPLES / "templates").is_dir(), reason=f"no catalog samples at {SAMPLES}")
def test_all_ten_samples_validate() -> None:
    results = validate_catalog(SAMPLES)
    assert [r for r in results if not r.ok] == []
    assert len(results) == 10
    drone = next(r for r in results if r.template == "drone")
    assert drone.placeholders == ("drone_host", "drone_secret")


def test_default_catalog_validates() -> None:
    results = validate_catalog(default_catalog_root())
    assert [r for r in results if not r.ok] == []
    assert {(r.template, r.version) for r in results} >= {("hello-web", "0"), ("hello-web", "1"), ("fanout", "0")}


def test_broken_versions_fail_one_by_one(tmp_path: Path) -> None:
    write_template(
        tmp_path,
        "demo",
        {
            "0": {"docker-compose.yml": COMPOSE},
            "1": {"docker-compose.yml.tpl": "version: '2'\nservices:\n  web:\n    image: {{ .Values.X \n"},
            "2": {"docker-compose.yml": "version: '2'\nservices:\n  web:\n    image: busybox\n    scale: lots\n"},
            "3": {"docker-compose.yml": COMPOSE, "rancher-compose.yml": "catalog:\n  questions:\n  - type: int\n"},
        },
    )
    results = {r.version: r for r in validate_catalog(tmp_path)}
    assert results["0"] == ValidationResult("demo", "0", True)
    assert not results["1"].ok and results["1"].error.startswith("docker-compose.yml.tpl:4:")
    assert not results["2"].ok and results["2"].error.startswith("docker-compose.yml: service web: scale")
    assert not results["3"].ok and "'variable' is missing" in results["3"].error
    assert list(results) == ["0", "1", "2", "3"]
    assert results["1"].to_dict().keys() == {"template", "version", "ok", "error"}
