"""Properties of the Go template engine, and every real `.tpl` sample rendering to YAML with default answers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from corral.catalog.gotemplate import render

SAMPLES = Path(os.environ.get("CORRAL_CATALOG_SAMPLES", "/work/shared/catalog-samples")) / "templates"

plain_text = st.text().filter(lambda t: "{{" not in t)
spaces = st.text(alphabet=" \t\r\n", max_size=5)
words = st.text(alphabet=st.characters(blacklist_characters=" \t\r\n{}", blacklist_categories=("Cs",)), max_size=8)


@given(plain_text)
def test_text_without_actions_renders_to_itself(text: str) -> None:
    assert render(text, {}, filename="t.tpl") == text


@given(words, spaces, spaces, words)
def test_trim_markers_only_remove_whitespace(left: str, before: str, after: str, right: str) -> None:
    template = f"{left}{before}{{{{- .X -}}}}{after}{right}"
    out = render(template, {"X": "v"}, filename="t.tpl")
    assert out == f"{left}v{right}"
    plain = render(f"{left}{before}{{{{ .X }}}}{after}{right}", {"X": "v"}, filename="t.tpl")
    assert "".join(out.split()) == "".join(plain.split())


@given(st.dictionaries(st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,6}", fullmatch=True), st.text(max_size=6)))
def test_rendering_is_deterministic(values: dict[str, str]) -> None:
    template = "{{range $k, $v := .Values}}{{$k}}={{$v | quote}};{{end}}{{keys .Values}}"
    first = render(template, {"Values": values}, filename="t.tpl")
    assert first == render(template, {"Values": dict(reversed(list(values.items())))}, filename="t.tpl")
    assert first.endswith("[" + " ".join(sorted(values)) + "]")


def _default_values(rancher_text: str) -> dict[str, str]:
    doc: dict[str, Any] = yaml.safe_load(rancher_text) or {}
    catalog = doc.get("catalog") or doc.get(".catalog") or {}
    values: dict[str, str] = {}
    for question in catalog.get("questions", []):
        default = question.get("default")
        if default is None:
            values[question["variable"]] = ""
        else:
            values[question["variable"]] = str(default).lower() if isinstance(default, bool) else str(default)
    return values


def _tpl_files() -> list[Path]:
    return sorted(SAMPLES.glob("*/*/*.tpl")) if SAMPLES.is_dir() else []


@pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"no catalog samples at {SAMPLES}")
def test_samples_have_templates() -> None:
    assert len(_tpl_files()) >= 8


@pytest.mark.parametrize("path", _tpl_files(), ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}/{p.name}")
def test_every_sample_template_renders_yaml_with_default_answers(path: Path) -> None:
    values = _default_values((path.parent / "rancher-compose.yml").read_text(encoding="utf-8"))
    text = render(path.read_text(encoding="utf-8"), {"Values": values, "Stack": {"Name": "s"}}, filename=path.name)
    assert "{{" not in text
    doc = yaml.safe_load(text)
    assert isinstance(doc, dict) and doc.get("services")


def test_minio_disk_count_drives_the_range() -> None:
    path = SAMPLES / "minio" / "4" / "docker-compose.yml.tpl"
    if not path.is_file():
        pytest.skip("no minio sample")
    values = _default_values((path.parent / "rancher-compose.yml").read_text(encoding="utf-8"))
    values |= {"MINIO_DISKS": "3", "VOLUME_DRIVER": "local", "DEPLOY_LB": "false", "PUBLISH_PORT": "9000"}
    doc = yaml.safe_load(render(path.read_text(encoding="utf-8"), {"Values": values}, filename=path.name))
    server = doc["services"]["minio-server"]
    assert [v for v in server["volumes"] if v.startswith("minio-data-")] == [
        f"minio-data-{i}:/data/disk{i}" for i in range(3)
    ]
    assert server["ports"] == ["${PUBLISH_PORT}:9000"]
    assert sorted(k for k in doc["volumes"] if k.startswith("minio-data-")) == [f"minio-data-{i}" for i in range(3)]
