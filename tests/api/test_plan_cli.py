"""`corral up --plan` through the real app: the preview printed (table and JSON), exit 0, nothing created; then the
plan of a change names the changed field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.api.test_container_policy_cli import cli, corral  # noqa: F401 - the fixture

COMPOSE = "services:\n  web:\n    image: corral/busybox\n    environment:\n      MODE: fast\n"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.usefixtures("cli")
def test_up_plan_prints_the_preview_and_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "docker-compose.yml").write_text(COMPOSE)
    monkeypatch.chdir(tmp_path)
    code, out = corral("up", "--plan", "-s", "shop")
    assert code == 0, out
    assert "create stack shop" in out and "+ web: create" in out
    assert "#1: no hosts in the environment" in out
    code, out = corral("ps", "--format", "json")
    assert code == 0 and json.loads(out) == [], out  # nothing was created

    assert corral("up", "-d", "-s", "shop")[0] == 0
    (tmp_path / "docker-compose.yml").write_text(COMPOSE.replace("fast", "slow"))
    code, out = corral("up", "--plan", "-s", "shop", "--format", "json")
    assert code == 0, out
    preview = json.loads(out)
    assert preview["create"] is False
    [web] = preview["services"]
    assert web["action"] == "change"
    assert web["changes"] == [{"field": "launch.environment.MODE", "old": "fast", "new": "slow"}]
    code, out = corral("up", "--plan", "-s", "shop")
    assert code == 0 and "launch.environment.MODE: fast -> slow" in out, out
