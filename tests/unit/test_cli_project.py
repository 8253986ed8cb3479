"""A compose project read as Docker Compose v2 reads it (cli/project.py): discovery, `.env`, the caller's
variables (only those the files read), COMPOSE_PROJECT_NAME, profiles, extends files sent with the stack."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.cli.project import discover, load_project
from corral.model.errors import InvalidInput

COMPOSE = """\
services:
  web:
    image: nginx:${TAG}
    environment: [FROM_SHELL, NOT_SET]
    extends: {file: base.yml, service: base}
"""


def _project(tmp_path: Path, name: str = "compose.yaml") -> Path:
    folder = tmp_path / "My_App"
    folder.mkdir()
    (folder / name).write_text(COMPOSE)
    (folder / "base.yml").write_text("services:\n  base:\n    image: x\n    env_file: [web.env]\n")
    (folder / "web.env").write_text("BARE_IN_ENV_FILE\n")
    (folder / ".env").write_text("TAG=1.25 # comment dropped\nFROM_SHELL=from-dotenv\n")
    return folder


def test_discovery_prefers_compose_yaml_and_finds_rancher_compose(tmp_path: Path) -> None:
    folder = _project(tmp_path)
    (folder / "docker-compose.yml").write_text(COMPOSE)
    (folder / "rancher-compose.yml").write_text("")
    assert discover([], folder) == (folder / "compose.yaml", folder / "rancher-compose.yml")
    with pytest.raises(InvalidInput, match="no compose file in"):
        discover([], tmp_path)


def test_variables_come_from_the_shell_over_dotenv_and_only_those_the_files_read(tmp_path: Path) -> None:
    folder = _project(tmp_path)
    shell = {"FROM_SHELL": "from-shell", "SECRET_TOKEN": "never-sent", "BARE_IN_ENV_FILE": "b"}
    project = load_project([folder / "compose.yaml"], environ=shell)
    assert project.variables == {"TAG": "1.25", "FROM_SHELL": "from-shell", "BARE_IN_ENV_FILE": "b"}
    assert set(project.env_files) == {"base.yml", "web.env"}
    assert project.name == "my-app"


def test_project_name_and_profiles_from_the_environment(tmp_path: Path) -> None:
    folder = _project(tmp_path)
    environ = {"COMPOSE_PROJECT_NAME": "shop", "COMPOSE_PROFILES": "debug, ops"}
    project = load_project([folder / "compose.yaml"], environ=environ)
    assert (project.name, project.profiles) == ("shop", ["debug", "ops"])
    assert load_project([folder / "compose.yaml"], stack="given", profiles=["x"], environ=environ).name == "given"
    (folder / "compose.yaml").write_text("name: Named\n" + COMPOSE)
    assert load_project([folder / "compose.yaml"], environ={}).name == "named"


def test_an_answers_file_wins_over_shell_and_dotenv(tmp_path: Path) -> None:
    folder = _project(tmp_path)
    (tmp_path / "answers.txt").write_text("TAG=2\nEXTRA=kept\n")
    project = load_project([folder / "compose.yaml"], answers_file=tmp_path / "answers.txt", environ={"TAG": "9"})
    assert project.variables["TAG"] == "2" and project.variables["EXTRA"] == "kept"
