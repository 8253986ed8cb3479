"""Compose `build:` for real: a two-service project whose images are built from Dockerfiles `FROM corral/busybox`
runs on three netns hosts, one of them arm64 (qemu-user-static): each image is built once per architecture on a
host of that architecture, the x86_64 image travels to the other x86_64 host through the server, an unchanged
context is not built again, each build's log stays readable through the API, a twice superseded image leaves every
host (and its context and saved image the server's disk) while the previous one stays for a rollback, and a failing
Dockerfile step is named by `corral up` and on the service.

On the arm64 host `corral/busybox` is the arm64 busybox (tagged so in its engine, as it would be on an arm64
machine), so `RUN uname -m` runs under qemu and prints aarch64."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker.errors
import pytest

from tests.integration.servers import ServerProcess, wait_until
from tests.integration.test_heterogeneous import ARM_IMAGE, arm64_ready  # noqa: F401 (autouse fixture)
from tests.integration.test_stacks import _containers, _create_hosts, _engine, _write

pytestmark = pytest.mark.integration


@pytest.fixture
def server(prerequisites: None, tmp_path: Path) -> Iterator[ServerProcess]:
    """The usual server, with the build cleanup looking every 2 s and removing unneeded files after 5 s."""
    process = ServerProcess(tmp_path / "data", CORRAL_BUILD_CLEANUP_SECONDS="2", CORRAL_BUILD_FILE_GRACE_SECONDS="5")
    process.data_dir.mkdir()
    process.start()
    try:
        yield process
    finally:
        process.teardown()


COMPOSE = """
services:
  web:
    build: ./web
    labels:
      io.rancher.scheduler.global: 'true'
  worker:
    build:
      context: ./worker
      dockerfile: Dockerfile.worker
      args:
        GREETING: hello-from-args
      target: final
      labels:
        org.example.role: worker
    labels:
      io.rancher.scheduler.global: 'true'
"""
WEB_DOCKERFILE = """FROM corral/busybox
RUN uname -m > /built-on
COPY index.html /www/index.html
CMD ["sleep", "3600"]
"""
WORKER_DOCKERFILE = """FROM corral/busybox AS base
ARG GREETING=unset
ENV GREETING=$GREETING
RUN echo never > /stage
FROM base AS final
COPY job.sh /job.sh
CMD ["sh", "/job.sh"]
"""


def _project(root: Path) -> Path:
    (root / "web").mkdir()
    _write(root / "web", "Dockerfile", WEB_DOCKERFILE)
    _write(root / "web", "index.html", "<h1>built</h1>\n")
    _write(root / "web", ".dockerignore", "secret.txt\n")
    _write(root / "web", "secret.txt", "must not be sent\n")
    (root / "worker").mkdir()
    _write(root / "worker", "Dockerfile.worker", WORKER_DOCKERFILE)
    _write(root / "worker", "job.sh", 'echo "$GREETING"; sleep 3600\n')
    return _write(root, "docker-compose.yml", COMPOSE)


def _stack(server: ServerProcess, name: str) -> dict[str, Any]:
    with server.client() as client:
        return client.stacks.get(client.stacks.find("default", name)["id"])  # the one stack's view has its builds


def _running_by_host(server: ServerProcess, stack: str, service: str, hosts: int) -> dict[str, dict[str, Any]]:
    def check() -> dict[str, dict[str, Any]] | None:
        running = [c for c in _containers(server, stack) if c["service"] == service and c["state"] == "running"]
        by_host = {c["host"]: c for c in running}
        return by_host if len(by_host) == hosts else None

    return wait_until(f"{stack}/{service} running on {hosts} hosts", check, timeout=180)


def _exec(server: ServerProcess, host: str, container: str, *cmd: str) -> str:
    engine = _engine(server, host)
    try:
        return engine.containers.get(container).exec_run(list(cmd)).output.decode().strip()
    finally:
        engine.close()


def test_a_two_service_build_runs_on_three_hosts_including_arm64(server: ServerProcess, tmp_path: Path) -> None:
    _create_hosts(server, "x1", "x2", extra=(("--arch", "aarch64", "arm1"),))
    engine = _engine(server, "arm1")
    try:  # an arm64 machine's corral/busybox is the arm64 one
        engine.images.get(ARM_IMAGE).tag("corral/busybox", "latest")
    finally:
        engine.close()
    compose = _project(tmp_path)

    up = server.cli("up", "-f", str(compose), "-s", "shop", "--timeout", "240")
    assert "web (x86_64) | Step 2/4 : RUN uname -m > /built-on" in up.stderr, up.stderr
    assert "web (aarch64) | Step 2/4 : RUN uname -m > /built-on" in up.stderr, up.stderr

    stack = _stack(server, "shop")
    builds = {(b["service"], b["arch"]): b for b in stack["builds"]}
    assert sorted(builds) == [("web", "aarch64"), ("web", "x86_64"), ("worker", "aarch64"), ("worker", "x86_64")]
    assert {b["state"] for b in builds.values()} == {"built"}
    assert builds["web", "aarch64"]["host"] == "arm1"
    assert builds["web", "x86_64"]["host"] == "x1"  # built once for x86_64; x2 gets it from the server
    images = {s["name"]: s["image"] for s in stack["services"]}
    assert images["web"].startswith("corral-build/shop-web:") and len(images["web"].split(":")[1]) == 12

    web = _running_by_host(server, "shop", "web", 3)
    worker = _running_by_host(server, "shop", "worker", 3)
    assert _exec(server, "arm1", web["arm1"]["name"], "cat", "/built-on") == "aarch64"
    assert _exec(server, "x2", web["x2"]["name"], "cat", "/built-on") == "x86_64"
    assert _exec(server, "x2", web["x2"]["name"], "cat", "/www/index.html") == "<h1>built</h1>"
    assert _exec(server, "x1", web["x1"]["name"], "ls", "/www") == "index.html"
    assert "hello-from-args" in _exec(server, "arm1", worker["arm1"]["name"], "sh", "-c", "echo $GREETING")
    engine = _engine(server, "x2")
    try:
        labels = engine.images.get(images["worker"]).labels
    finally:
        engine.close()
    assert labels.get("org.example.role") == "worker"

    again = server.cli("up", "-f", str(compose), "-s", "shop", "--format", "json")
    assert "Step 1/" not in again.stderr, again.stderr  # the same context: nothing is built again
    assert json.loads(again.stdout)["changed_services"] == []

    (tmp_path / "web" / "index.html").write_text("<h1>v2</h1>\n")
    server.cli("up", "-f", str(compose), "-s", "shop")
    changed = _stack(server, "shop")
    assert {s["name"]: s["image"] for s in changed["services"]}["web"] != images["web"]
    assert {s["name"]: s["image"] for s in changed["services"]}["worker"] == images["worker"]

    # the build's log stays readable through the API after the build
    with server.client() as client:
        kept = client.stacks.builds(stack["id"])
        first = next(b for b in kept if (b["image"], b["arch"]) == (images["web"], "x86_64"))
        log = client.stacks.build_log(stack["id"], first["id"], limit=5000)
    assert first["state"] == "built" and first["host"] == "x1" and first["finished"] >= first["started"] > 0
    assert "Step 2/4 : RUN uname -m > /built-on" in log["log"] and log["done"] is True

    # a third context: the first web image is superseded twice (the second is kept for a rollback), so once its
    # containers are replaced it leaves every host, and its context and saved image leave the server
    (tmp_path / "web" / "index.html").write_text("<h1>v3</h1>\n")
    server.cli("up", "-f", str(compose), "-s", "shop")
    second = {s["name"]: s["image"] for s in changed["services"]}["web"]
    third = {s["name"]: s["image"] for s in _stack(server, "shop")["services"]}["web"]
    assert len({images["web"], second, third}) == 3
    _running_by_host(server, "shop", "web", 3)
    contexts = server.data_dir / "builds" / "contexts"
    wait_until(
        "the first web image gone from every host and its context from the server",
        lambda: (
            not any(_has_image(server, h, images["web"]) for h in ("x1", "x2", "arm1"))
            and not (contexts / f"{first['digest']}.tar").exists()
        ),
        timeout=120,
    )
    for host in ("x1", "x2", "arm1"):
        assert _has_image(server, host, third), host
        assert _has_image(server, host, images["worker"]), host  # unchanged: current, never touched
    assert _has_image(server, "x1", second)  # the previous build stays for a rollback
    saved = hashlib.sha256(images["web"].encode()).hexdigest()[:32]
    assert not list((server.data_dir / "builds" / "images").glob(f"{saved}-*.tar"))


def _has_image(server: ServerProcess, host: str, image: str) -> bool:
    engine = _engine(server, host)
    try:
        engine.images.get(image)
        return True
    except docker.errors.ImageNotFound:
        return False
    finally:
        engine.close()


def test_a_failing_dockerfile_step_is_named_by_up_and_on_the_service(server: ServerProcess, tmp_path: Path) -> None:
    _create_hosts(server, "f1")
    (tmp_path / "app").mkdir()
    _write(tmp_path / "app", "Dockerfile", "FROM corral/busybox\nRUN echo compiling && exit 3\nCMD sleep 3600\n")
    compose = _write(tmp_path, "docker-compose.yml", "services:\n  app:\n    build: ./app\n")

    result = server.cli("up", "-f", str(compose), "-s", "broken", check=False)
    assert result.returncode == 1, result.stderr
    assert "app (x86_64) | compiling" in result.stderr, result.stderr
    assert "build of app for x86_64 failed on f1: Step 2/3 : RUN echo compiling && exit 3:" in result.stderr
    assert "returned a non-zero code: 3" in result.stderr
    service = next(s for s in _stack(server, "broken")["services"] if s["name"] == "app")
    assert service["state"] == "error"
    assert "Step 2/3 : RUN echo compiling && exit 3" in service["reason"], service["reason"]
