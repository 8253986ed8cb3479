"""`corral catalog validate PATH [--format json]` on the samples, the default catalog and a broken catalog."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from corral.entry import app

SAMPLES = Path(os.environ.get("CORRAL_CATALOG_SAMPLES", "/work/shared/catalog-samples"))
runner = CliRunner()


@pytest.mark.skipif(not (SAMPLES / "templates").is_dir(), reason=f"no catalog samples at {SAMPLES}")
def test_samples_pass_as_json() -> None:
    result = runner.invoke(app, ["catalog", "validate", str(SAMPLES), "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) == 10
    assert all(set(row) == {"template", "version", "ok", "error"} and row["ok"] for row in rows)
    assert {row["template"] for row in rows} >= {"minio", "traefik", "etcd-ha"}


def test_default_catalog_passes_as_table() -> None:
    result = runner.invoke(app, ["catalog", "validate"])
    assert result.exit_code == 0, result.output
    assert "hello-web" in result.stdout and "fanout" in result.stdout and "failed" not in result.stdout


def test_broken_catalog_exits_1_naming_file_line_column(tmp_path: Path) -> None:
    folder = tmp_path / "templates" / "demo"
    (folder / "0").mkdir(parents=True)
    (folder / "config.yml").write_text("name: Demo\nversion: '1'\n")
    (folder / "0" / "docker-compose.yml.tpl").write_text("version: '2'\nservices:\n{{- range }}\n")
    result = runner.invoke(app, ["catalog", "validate", str(tmp_path / "templates"), "--format", "json"])
    assert result.exit_code == 1
    (row,) = json.loads(result.stdout)
    assert (row["template"], row["version"], row["ok"]) == ("demo", "0", False)
    assert row["error"].startswith("docker-compose.yml.tpl:3:")


def test_not_a_directory(tmp_path: Path) -> None:
    result = runner.invoke(app, ["catalog", "validate", str(tmp_path / "nowhere")])
    assert result.exit_code == 1
    assert "not a directory" in result.output
