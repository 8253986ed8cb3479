"""Rendering a template version: `.tpl` through the Go-template engine with `.Values` and `.Stack.Name`, the
catalog section blanked out of rancher-compose.yml, and the result loadable by compose."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.catalog.answers import resolve_answers
from corral.catalog.loader import default_catalog_root, load_catalog
from corral.catalog.model import TemplateVersion
from corral.catalog.render import render_version, strip_catalog_section
from corral.compose import ComposeFile, load_stack
from corral.model.errors import InvalidInput

DEFAULT = load_catalog(default_catalog_root(), "library")


def version(template: str, folder: str) -> TemplateVersion:
    return DEFAULT.templates[template].versions[folder]


def test_catalog_section_is_blanked_keeping_line_numbers() -> None:
    text = "version: '2'\ncatalog:\n  questions:\n  - variable: A\nservices:\n  web:\n    scale: 2\n"
    stripped = strip_catalog_section(text)
    assert stripped.split("\n") == ["version: '2'", "", "", "", "services:", "  web:", "    scale: 2", ""]
    v1 = ".catalog:\n  version: 1\nweb:\n  scale: 1\n"
    assert strip_catalog_section(v1) == "\n\nweb:\n  scale: 1\n"


def test_plain_version_passes_files_through() -> None:
    hello = version("hello-web", "0")
    files = render_version(hello, {"MESSAGE": "hi", "SCALE": "3"}, stack_name="hello")
    assert files["docker-compose.yml"] == hello.files["docker-compose.yml"]
    assert "catalog:" not in files["rancher-compose.yml"] and "scale: ${SCALE}" in files["rancher-compose.yml"]
    assert files["rancher-compose.yml"].count("\n") == hello.files["rancher-compose.yml"].count("\n")


def test_tpl_uses_values_range_if_and_stack_name() -> None:
    fanout = version("fanout", "0")
    answers = resolve_answers(fanout.questions, {"WORKERS": "3", "WITH_WEB": "false"})
    files = render_version(fanout, answers, stack_name="fan")
    spec = load_stack(
        "fan",
        ComposeFile("docker-compose.yml", files["docker-compose.yml"]),
        ComposeFile("rancher-compose.yml", files["rancher-compose.yml"]),
        answers=answers,
    )
    assert sorted(s.name for s in spec.services) == ["worker-0", "worker-1", "worker-2"]
    worker = spec.service("worker-2")
    assert worker is not None and dict(worker.launch.environment) == {"WORKER": "2", "STACK": "fan"}

    answers = resolve_answers(fanout.questions, {"WORKERS": "1", "TITLE": "Jobs"})
    files = render_version(fanout, answers, stack_name="fan")
    spec = load_stack("fan", ComposeFile("docker-compose.yml", files["docker-compose.yml"]), answers=answers)
    web = spec.service("web")
    assert web is not None and dict(web.launch.environment) == {"TITLE": "Jobs"}
    assert "1 workers" in " ".join(web.launch.command or ())


def test_bad_tpl_names_file_line_and_column(tmp_path: Path) -> None:
    bad = TemplateVersion(
        template="demo",
        folder="0",
        version="0",
        files={"docker-compose.yml.tpl": "version: '2'\nservices:\n  web:\n    image: {{ if .Values.X }}busybox\n"},
    )
    with pytest.raises(InvalidInput) as caught:
        render_version(bad, {"X": "1"}, stack_name="demo")
    assert caught.value.message.startswith("docker-compose.yml.tpl:4:")
    assert caught.value.field == "docker-compose.yml.tpl"


keys = st.sampled_from(["version", "services", "catalog", ".catalog", "volumes", "x-extra"])
bodies = st.lists(st.from_regex(r"  [a-z]{1,5}: [a-z0-9]{0,5}", fullmatch=True), max_size=3)


@given(st.lists(st.tuples(keys, bodies), max_size=6))
def test_stripping_keeps_line_numbers_and_every_other_section(sections: list[tuple[str, list[str]]]) -> None:
    lines = [line for key, body in sections for line in (f"{key}:", *body)]
    text = "\n".join(lines) + "\n"
    stripped = strip_catalog_section(text).split("\n")
    assert len(stripped) == len(text.split("\n"))
    row = 0
    for key, body in sections:
        for line in (f"{key}:", *body):
            assert stripped[row] == ("" if key in ("catalog", ".catalog") else line)
            row += 1
