"""`corral up` / `corral export` through the real app (issue 17): a project found as Compose finds it (compose.yaml,
.env, COMPOSE_PROJECT_NAME, the caller's variables, profiles), and its files written back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.api.test_container_policy_cli import cli, corral  # noqa: F401 - the fixture

COMPOSE = """\
services:
  web:
    image: corral/busybox:${TAG}
    environment: [GREETING, NOT_SET]
  debug:
    image: corral/busybox
    profiles: [debug]
"""


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.usefixtures("cli")
def test_up_reads_the_project_as_compose_and_export_writes_it_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "compose.yaml").write_text(COMPOSE)
    (project / ".env").write_text("TAG=latest # inline comment\nCOMPOSE_PROJECT_NAME=shop\n")
    monkeypatch.chdir(project)
    monkeypatch.setenv("GREETING", "hello")
    monkeypatch.setenv("UNRELATED_SECRET", "never-sent")
    code, out = corral("up", "-d", "--profile", "debug", "--format", "json")
    assert code == 0, out
    stack = json.loads(out)
    assert stack["name"] == "shop"
    assert sorted(s["name"] for s in stack["services"]) == ["debug", "web"]

    code, out = corral("export", "shop", "-o", str(tmp_path / "out"))
    assert code == 0, out
    assert (tmp_path / "out" / "compose.yaml").read_text() == COMPOSE
    answers = (tmp_path / "out" / "answers.txt").read_text()
    assert "GREETING=hello" in answers and "TAG=latest" in answers
    assert "UNRELATED_SECRET" not in answers
    assert "profiles: debug" in out
    code, out = corral("export", "shop", "-o", str(tmp_path / "out"))
    assert code == 1 and "--force" in out
