"""Rancher 1.6 catalog leniencies (issue 17 item 8): each template below is one Rancher ran; Corral validates and
loads it, with a warning where the meaning had to be guessed, and `catalog validate` checks what install checks."""

from __future__ import annotations

from pathlib import Path

from corral.catalog.answers import resolve_answers
from corral.catalog.loader import load_catalog
from corral.catalog.render import COMPOSE, RANCHER, render_version
from corral.catalog.validate import validate_catalog
from corral.compose import ComposeFile, load_stack
from corral.model.stack import StackSpec

from .test_loader import write_template

LENIENT_COMPOSE = """\
version: '2'
services:
  MyApp:
    image: nginx
    expose: ["8080:80"]
    labels:
      io.rancher.scheduler.affinity:host_label: ${HOST_LABEL}
    depends_on: [Cache]
  Cache:
    image: redis
    image: redis:7
"""
LENIENT_RANCHER = """\
version: '2'
catalog:
  name: lenient
  version: '1'
  questions:
  - variable: HOST_LABEL
    type: string
    default: ""
  - variable: UPSTREAM
    type: service
    default: cache
services:
  MyApp:
    scale: 2
    health_check:
      port: 80
      request_line: GET "/health" "HTTP/1.0"
      interval: 2000
  lb:
    scale: 1
"""


def _install_like(root: Path) -> StackSpec:
    version = load_catalog(root, "lenient").templates["lenient"].versions["0"]
    answers = resolve_answers(version.questions, {}, services=["lenient/cache"])
    files = render_version(version, answers, stack_name="lenient")
    return load_stack(
        "lenient", ComposeFile(COMPOSE, files[COMPOSE]), ComposeFile(RANCHER, files[RANCHER]), answers=answers
    )


def test_a_template_using_every_rancher_leniency_validates_and_installs_with_warnings(tmp_path: Path) -> None:
    write_template(tmp_path, "lenient", {"0": {"docker-compose.yml": LENIENT_COMPOSE, RANCHER: LENIENT_RANCHER}})
    assert [r.ok for r in validate_catalog(tmp_path)] == [True], validate_catalog(tmp_path)
    spec = _install_like(tmp_path)
    app = spec.service("myapp")
    assert app is not None and app.scale == 2  # mixed case lowercased; its rancher-compose entry follows it
    assert app.launch.expose == ("80",)
    assert app.depends_on == ("cache",)
    assert app.health_check is not None and app.health_check["request_line"] == "GET /health HTTP/1.0"
    cache = spec.service("cache")
    assert cache is not None and cache.launch.image == "redis:7"  # duplicate key: the last one
    warnings = "\n".join(spec.warnings)
    for expected in (
        "service 'MyApp' is named 'myapp'",
        "duplicate key 'image' at line 11: the last one is used",
        "'8080:80' names a host port",
        "an empty affinity is no constraint",
        "quotes removed",
        "service 'lb' is not defined in docker-compose.yml; its settings were ignored",
    ):
        assert expected in warnings


def test_the_bare_service_default_resolves_at_install(tmp_path: Path) -> None:
    write_template(tmp_path, "lenient", {"0": {"docker-compose.yml": LENIENT_COMPOSE, RANCHER: LENIENT_RANCHER}})
    version = load_catalog(tmp_path, "lenient").templates["lenient"].versions["0"]
    assert resolve_answers(version.questions, {}, services=["other/cache"])["UPSTREAM"] == "other/cache"


def test_validate_refuses_what_install_refuses(tmp_path: Path) -> None:
    bad_label = (
        "version: '2'\nservices:\n  web:\n    image: nginx\n    labels:\n"
        "      io.rancher.scheduler.affinity:host_label: nokeyvalue\n"
    )
    host_ports = "version: '2'\nservices:\n  web:\n    image: nginx\n    network_mode: host\n    ports: ['80:80']\n"
    versions = {"0": {"docker-compose.yml": bad_label}, "1": {"docker-compose.yml": host_ports}}
    write_template(tmp_path, "strict", versions)
    results = {r.version: r for r in validate_catalog(tmp_path)}
    assert not results["0"].ok and "'nokeyvalue' is not key=value" in results["0"].error
    assert not results["1"].ok and "cannot publish ports" in results["1"].error
