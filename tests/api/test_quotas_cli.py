"""`corral env create/update --quota`, `env ls` showing the quotas in force, and the refusal `corral up` and
`corral scale` print, with the CLI's own client speaking to the in-process application."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.api.test_container_policy_cli import cli, corral  # noqa: F401 - the fixture

COMPOSE = "services:\n  web:\n    image: corral/busybox\n    command: [sleep, '1000']\n    scale: 3\n"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.usefixtures("cli")
def test_env_quota_flags_and_the_refusals_up_and_scale_print(tmp_path: Path) -> None:
    code, out = corral("env", "create", "small", "--quota", "containers_per_stack=2,services_per_stack=5")
    assert code == 0, out
    code, out = corral("env", "ls", "--format", "json")
    small = {e["name"]: e for e in json.loads(out)}["small"]
    assert small["quota_overrides"] == {"services_per_stack": 5, "containers_per_stack": 2}
    code, out = corral("env", "ls")
    assert code == 0 and "services 5/1000 containers 2/10000" in " ".join(out.split())
    code, out = corral("env", "update", "small", "--quota", "pods=3")
    assert code == 1 and "'pods' is not a quota" in out

    compose = tmp_path / "docker-compose.yml"
    compose.write_text(COMPOSE)
    code, out = corral("up", "-d", "--env", "small", "-f", str(compose), "-s", "app")
    assert code == 1
    flat = " ".join(out.split())
    assert 'stack "app" would have 3 containers (total scale) (now 0); quota containers_per_stack' in flat
    assert "corral env update small --quota containers_per_stack=3" in flat
    code, out = corral("env", "update", "small", "--quota", "containers-per-stack=3")
    assert code == 0 and out.startswith("small: quotas services_per_stack=5*,")
    assert "containers_per_stack=3*" in out
    code, out = corral("up", "-d", "--env", "small", "-f", str(compose), "-s", "app")
    assert code == 0, out
    code, out = corral("scale", "--env", "small", "app/web=4")
    assert code == 1 and "quota containers_per_stack" in " ".join(out.split())
    assert corral("env", "update", "small", "--quota", "containers_per_stack=default")[0] == 0
    code, out = corral("scale", "-d", "--env", "small", "app/web=4")  # -d: no host runs them in this test
    assert code == 0, out
