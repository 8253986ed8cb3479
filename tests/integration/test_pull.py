"""`corral pull` on a real host: an image pushed to the local test registry (with auth) and removed from the host's
engine is pulled back with the environment's registry credentials, is then in the host's engine, a second pull says
`present`, and an image the registry does not have fails with the engine's reason (exit code 1). Nothing is created.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
from pathlib import Path

import docker
import pytest

from tests.integration.servers import ServerProcess
from tests.integration.test_registry import PASSWORD, USER, _corral, _push_from_host, running_registry

pytestmark = pytest.mark.integration


def test_pull_fetches_the_stack_images_onto_the_host(server: ServerProcess, tmp_path: Path) -> None:
    server.cli("hosts", "create", "--driver", "local", "h1")
    gateway = str(next(ipaddress.IPv4Network(server.env["CORRAL_LOCAL_SUBNET"]).hosts()))
    with running_registry(gateway, tmp_path / "registry") as registry:
        image, missing = f"{registry}/pull/busybox:1", f"{registry}/pull/nothing:1"
        _push_from_host(server, "h1", image)  # pushed, then removed from h1's engine
        subprocess.run(
            [*_corral(), "registries", "add", registry, "--username", USER, "--password-stdin"],
            input=PASSWORD + "\n",
            env=server.cli_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        compose = tmp_path / "docker-compose.yml"
        compose.write_text(
            "services:\n"
            f"  app:\n    image: {image}\n    command: [sleep, '3600']\n    scale: 0\n"
            f"  gone:\n    image: {missing}\n    scale: 0\n"
        )
        server.cli("up", "-d", "-f", str(compose), "-s", "shop")

        pulled = server.cli("pull", "shop", "app", "--format", "json", check=False)
        assert pulled.returncode == 0, pulled.stdout + pulled.stderr
        results = json.loads(pulled.stdout)["results"]
        assert [(r["host"], r["image"], r["status"]) for r in results] == [("h1", image, "pulled")], results
        assert results[0]["id"].startswith("sha256:")

        record = server.driver().load("h1")
        assert record is not None
        client = docker.DockerClient(base_url=record.docker_host, timeout=60)
        try:
            assert client.images.get(image).id == results[0]["id"].split("@")[0]
            assert client.containers.list(all=True, filters={"label": "io.corral.stack=shop"}) == []
        finally:
            client.close()

        again = server.cli("pull", "shop", check=False)
        assert again.returncode == 1, again.stdout + again.stderr
        lines = again.stdout.splitlines()
        assert any(line.startswith(f"h1  app  {image}  present") for line in lines), lines
        failed = next(line for line in lines if f"gone  {missing}  failed" in line)
        assert "not found" in failed or "unknown" in failed, failed

    logs = [server.data_dir / "server.log", *server.data_dir.glob("hosts/*/agent.log")]
    for path in logs:
        assert PASSWORD not in path.read_text(errors="replace"), f"the registry password is in {path}"
