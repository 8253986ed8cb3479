"""The loader on the real community samples and on broken catalogs built in tmp_path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from corral.catalog.loader import default_catalog_root, load_catalog, load_version
from corral.model.errors import InvalidInput

SAMPLES = Path(os.environ.get("CORRAL_CATALOG_SAMPLES", "/work/shared/catalog-samples"))
needs_samples = pytest.mark.skipif(not (SAMPLES / "templates").is_dir(), reason=f"no catalog samples at {SAMPLES}")

CONFIG = "name: Demo\ndescription: |\n  A demo.\nversion: '1.0'\ncategory: Tests\n"
COMPOSE = "version: '2'\nservices:\n  web:\n    image: busybox\n"


def write_template(root: Path, name: str, versions: dict[str, dict[str, str]], config: str = CONFIG) -> Path:
    folder = root / "templates" / name
    folder.mkdir(parents=True)
    (folder / "config.yml").write_text(config)
    for number, files in versions.items():
        (folder / number).mkdir()
        for file_name, text in files.items():
            (folder / number / file_name).write_text(text)
    return folder


def rancher_with(questions: str) -> str:
    return "version: '2'\ncatalog:\n  name: Demo\n  version: '1.0'\n  questions:\n" + questions


@needs_samples
def test_all_ten_sample_versions_load() -> None:
    catalog = load_catalog(SAMPLES, "samples")
    assert catalog.problems == {}
    assert sum(len(t.versions) for t in catalog.templates.values()) == 10
    assert set(catalog.templates) == {
        "MongoDB", "artifactory-oss", "awx", "drone", "etcd-ha", "gocd", "kafka", "minio", "sonarqube", "traefik",
    }  # fmt: skip


@needs_samples
def test_sample_details() -> None:
    catalog = load_catalog(SAMPLES, "samples")
    gocd = catalog.templates["gocd"]
    assert (gocd.display_name, gocd.category, gocd.license, gocd.project_url) == (
        "GoCD", "Continuous Integration", "Apache License", "https://www.gocd.io/",
    )  # fmt: skip
    assert gocd.maintainer.startswith("Sebastien Langoureaux")
    assert gocd.default_version == "17.3.0-rancher1" and gocd.default_folder() == "0"

    etcd = catalog.templates["etcd-ha"].versions["7"]  # v1 file: `.catalog:` at the top
    assert (etcd.version, etcd.upgrade_from, etcd.minimum_version) == ("3.2.9-1", "2.3.7-build.11", "v1.2.0")
    embedded = etcd.question("EMBEDDED_BACKUPS")
    assert embedded is not None and (embedded.type, embedded.default, embedded.required) == ("boolean", "true", True)
    assert "docker-compose.yml" in etcd.files and etcd.readme == etcd.files["README.md"]

    minio = catalog.templates["minio"].versions["4"]
    scale = minio.question("MINIO_SCALE")
    assert scale is not None and scale.options[:3] == ("1", "4", "6") and scale.default == "1"
    assert "docker-compose.yml.tpl" in minio.files

    traefik = catalog.templates["traefik"].versions["33"]
    exporter = traefik.question("metrics_exporter")
    assert exporter is not None and exporter.default == "" and not exporter.has_default
    https = traefik.question("https_enable")
    assert https is not None and https.options == ("false", "true", "only") and https.default == "false"

    mongo = catalog.templates["MongoDB"].versions["3"]
    assert (mongo.uuid, mongo.name, mongo.description) == ("mongodb-1", "MongoDB", "MongoDB Replica Set")
    label = mongo.question("host_label")
    assert label is not None and label.title == "Host Label to MongoDB Tags (host_label)"


def test_default_catalog_loads_cleanly() -> None:
    catalog = load_catalog(default_catalog_root(), "library")
    assert catalog.problems == {}
    assert len(catalog.templates) >= 3


def test_icon_categories_and_labels(tmp_path: Path) -> None:
    config = CONFIG + "categories: [Tests, Demo]\nlabels:\n  io.rancher.certified: partner\n  n: 1\n"
    folder = write_template(tmp_path, "demo", {"0": {"docker-compose.yml": COMPOSE}}, config=config)
    (folder / "catalogIcon-demo.svg").write_text("<svg/>")
    template = load_catalog(tmp_path, "c").templates["demo"]
    assert template.icon == "catalogIcon-demo.svg"
    assert template.categories == ("Tests", "Demo") and template.category == "Tests"
    assert template.labels == {"io.rancher.certified": "partner", "n": "1"}
    assert template.versions["0"].version == "0"  # no catalog section: the folder is the version
    assert template.versions["0"].questions == ()


def test_versions_sort_numerically(tmp_path: Path) -> None:
    write_template(tmp_path, "demo", {n: {"docker-compose.yml": COMPOSE} for n in ("10", "2", "1")})
    template = load_catalog(tmp_path, "c").templates["demo"]
    assert list(template.versions) == ["1", "2", "10"]
    assert template.default_folder() == "10"  # config.yml's version matches none: the newest


BROKEN = {
    "bad-yaml": ("version: '2'\ncatalog: [1\n", "rancher-compose.yml: invalid YAML at line 3"),
    "unknown-type": (rancher_with("    - variable: A\n      type: colour\n"), "question A: unknown type 'colour'"),
    "enum-no-options": (rancher_with("    - variable: B\n      type: enum\n"), "question B: type enum needs options"),
    "default-not-option": (
        rancher_with("    - variable: C\n      type: enum\n      options: [x, y]\n      default: z\n"),
        "question C: default: 'z' is not one of the options (x, y)",
    ),
    "int-default": (
        rancher_with("    - variable: D\n      type: int\n      default: many\n"),
        "question D: default: 'many' is not a whole number",
    ),
    "twice": (rancher_with("    - variable: E\n    - variable: E\n"), "question E: asked twice"),
    "no-variable": (rancher_with("    - label: Nameless\n"), "questions[0]: 'variable' is missing"),
    "bad-min": (rancher_with("    - variable: F\n      type: int\n      min: low\n"), "question F: min: must be"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_versions_are_problems_not_exceptions(tmp_path: Path, case: str) -> None:
    rancher, expected = BROKEN[case]
    write_template(tmp_path, "demo", {"0": {"docker-compose.yml": COMPOSE, "rancher-compose.yml": rancher}})
    write_template(tmp_path, "fine", {"0": {"docker-compose.yml": COMPOSE}})
    catalog = load_catalog(tmp_path, "c")
    assert list(catalog.problems) == ["demo/0"]
    assert catalog.problems["demo/0"].startswith("rancher-compose.yml: ")
    assert expected in catalog.problems["demo/0"]
    assert "fine" in catalog.templates and catalog.templates["demo"].versions == {}


def test_template_and_folder_problems(tmp_path: Path) -> None:
    (tmp_path / "templates" / "no-config").mkdir(parents=True)
    write_template(tmp_path, "bad-config", {}, config="name: [x\n")
    write_template(tmp_path, "empty-version", {"1": {"README.md": "hi"}, "2": {"docker-compose.yml": COMPOSE}})
    write_template(tmp_path, "both", {"0": {"docker-compose.yml": COMPOSE, "docker-compose.yml.tpl": COMPOSE}})
    catalog = load_catalog(tmp_path, "c")
    assert catalog.problems["no-config"] == "config.yml: missing"
    assert catalog.problems["bad-config"].startswith("config.yml: invalid YAML")
    assert catalog.problems["empty-version/1"].startswith("docker-compose.yml: missing")
    assert "keep one" in catalog.problems["both/0"]
    assert list(catalog.templates["empty-version"].versions) == ["2"]


def test_no_templates_folder(tmp_path: Path) -> None:
    assert load_catalog(tmp_path, "c").problems == {"templates": f"no templates/ folder in {tmp_path}"}


def test_tpl_rancher_compose_reads_the_catalog_section_only(tmp_path: Path) -> None:
    rancher = (
        "version: '2'\n"
        ".catalog:\n  version: '2.0'\n  questions:\n    - variable: N\n      type: int\n      default: 2\n"
        'services:\n  web:\n{{- if eq .Values.N "2" }}\n    scale: {{ .Values.N }}\n{{- end }}\n'
    )
    write_template(tmp_path, "demo", {"0": {"docker-compose.yml": COMPOSE, "rancher-compose.yml.tpl": rancher}})
    version = load_catalog(tmp_path, "c").templates["demo"].versions["0"]
    assert version.version == "2.0"
    assert [(q.variable, q.type, q.default) for q in version.questions] == [("N", "int", "2")]


def test_binary_extra_files_are_skipped_but_bad_compose_is_a_problem(tmp_path: Path) -> None:
    folder = write_template(tmp_path, "demo", {"0": {"docker-compose.yml": COMPOSE}, "1": {}})
    (folder / "0" / "diagram.png").write_bytes(b"\x89PNG\xff\xfe")
    (folder / "1" / "docker-compose.yml").write_bytes(b"\xff\xfe")
    catalog = load_catalog(tmp_path, "c")
    assert sorted(catalog.templates["demo"].versions["0"].files) == ["docker-compose.yml"]
    assert catalog.problems == {"demo/1": "docker-compose.yml: not UTF-8 text"}
    with pytest.raises(InvalidInput) as caught:
        load_version(folder / "1", "demo")
    assert caught.value.field == "demo/1"


# -- symbolic links (never followed) --------------------------------------------------------------------------


def test_a_symlinked_file_makes_its_version_a_problem_naming_it_and_is_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "registry.key"
    secret.write_text("SERVER-SECRET")
    root = tmp_path / "cat"
    folder = write_template(root, "leaky", {"0": {"docker-compose.yml": COMPOSE}, "1": {"docker-compose.yml": COMPOSE}})
    (folder / "0" / "README.md").symlink_to("../../../../registry.key")
    (folder / "1" / "notes.txt").symlink_to(secret)
    catalog = load_catalog(root, "local")
    assert catalog.problems["leaky/0"].startswith("README.md: is a symbolic link")
    assert catalog.problems["leaky/1"].startswith("notes.txt: is a symbolic link")
    assert catalog.templates["leaky"].versions == {}
    assert "SERVER-SECRET" not in repr(catalog)


def test_symlinked_folders_and_template_files_are_problems(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write_template(outside, "elsewhere", {"0": {"docker-compose.yml": COMPOSE}})
    root = tmp_path / "cat"
    write_template(root, "fine", {"0": {"docker-compose.yml": COMPOSE}})
    (root / "templates" / "linked").symlink_to(outside / "templates" / "elsewhere")
    version_link = write_template(root, "vlink", {"0": {"docker-compose.yml": COMPOSE}})
    (version_link / "1").symlink_to(outside / "templates" / "elsewhere" / "0")
    config_link = write_template(root, "clink", {"0": {"docker-compose.yml": COMPOSE}})
    (config_link / "config.yml").unlink()
    (config_link / "config.yml").symlink_to(outside / "templates" / "elsewhere" / "config.yml")
    catalog = load_catalog(root, "local")
    assert set(catalog.templates) == {"fine"}
    for name, link in (("linked", "linked"), ("vlink", "1"), ("clink", "config.yml")):
        assert catalog.problems[name].startswith(f"{link}: is a symbolic link"), catalog.problems
    linked_root = tmp_path / "rootlink"
    linked_root.mkdir()
    (linked_root / "templates").symlink_to(root / "templates")
    assert "symbolic link" in load_catalog(linked_root, "x").problems["templates"]


def test_icons_are_read_only_as_regular_files_of_the_template_folder(tmp_path: Path) -> None:
    from corral.catalog.loader import read_icon

    root = tmp_path / "cat"
    folder = write_template(root, "pic", {"0": {"docker-compose.yml": COMPOSE}})
    (folder / "catalogIcon-pic.svg").write_text("<svg/>")
    (tmp_path / "secret.svg").write_text("SECRET")
    assert read_icon(root, "pic", "catalogIcon-pic.svg") == b"<svg/>"
    (folder / "icon.svg").symlink_to(tmp_path / "secret.svg")
    assert read_icon(root, "pic", "icon.svg") is None
    assert read_icon(root, "pic", "../../../secret.svg") is None
    assert read_icon(root, "../..", "secret.svg") is None
