"""compose/files.py: what `corral up` reads and sends for relative binds, secrets and configs, and what the server
makes of it (FileMounts), with errors naming file, service and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.compose import ComposeFile, load_stack
from corral.compose.files import Uploads, collect_uploads
from corral.model.errors import InvalidInput
from corral.model.files import MAX_UPLOAD_FILE_BYTES

COMPOSE = """
services:
  web:
    image: nginx
    volumes: ['./conf/app.conf:/etc/app.conf:ro', './site:/srv']
    secrets: [token]
    configs: [{source: motd, target: /etc/motd, mode: 0440}]
secrets:
  token: {environment: TOKEN}
configs:
  motd: {file: ./motd.txt}
"""


def project(tmp_path: Path) -> Path:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "app.conf").write_text("a=1")
    (tmp_path / "site" / "css").mkdir(parents=True)
    (tmp_path / "site" / "index.html").write_text("<p>")
    (tmp_path / "site" / "css" / "x.css").write_text("p{}")
    (tmp_path / "motd.txt").write_text("hi")
    return tmp_path


def test_the_client_reads_files_directories_and_environment_values(tmp_path: Path) -> None:
    uploads = collect_uploads("dc.yml", COMPOSE, str(project(tmp_path)), answers={}, environ={"TOKEN": "t"})
    assert sorted(uploads.files) == ["conf/app.conf", "motd.txt", "site/css/x.css", "site/index.html"]
    assert uploads.environment == {"TOKEN": "t"}
    spec = load_stack("app", ComposeFile("dc.yml", COMPOSE), uploads=Uploads.from_wire(*uploads.to_wire()))
    files = {f.target: f for f in spec.services[0].launch.files}
    assert sorted(files) == ["/etc/app.conf", "/etc/motd", "/run/secrets/token", "/srv/css/x.css", "/srv/index.html"]
    assert files["/etc/motd"].mode == 0o440 and files["/etc/motd"].data() == b"hi"
    assert files["/run/secrets/token"].source == "app_token" and files["/run/secrets/token"].content == ""
    assert spec.services[0].launch.volumes == ()
    assert any("./site is uploaded with the stack and mounted read-only at /srv" in w for w in spec.warnings)


def test_a_changed_file_changes_the_config_hash(tmp_path: Path) -> None:
    base = str(project(tmp_path))
    env = {"TOKEN": "t"}

    def config_hash() -> str:
        uploads = collect_uploads("dc.yml", COMPOSE, base, answers={}, environ=env)
        return load_stack("app", ComposeFile("dc.yml", COMPOSE), uploads=uploads).services[0].launch.config_hash()

    before = config_hash()
    (tmp_path / "conf" / "app.conf").write_text("a=2")
    assert config_hash() != before


def test_the_client_names_a_missing_variable_and_a_file_too_large(tmp_path: Path) -> None:
    base = str(project(tmp_path))
    with pytest.raises(InvalidInput, match="secret token: environment variable TOKEN is not set"):
        collect_uploads("dc.yml", COMPOSE, base, answers={}, environ={})
    (tmp_path / "motd.txt").write_bytes(b"x" * (MAX_UPLOAD_FILE_BYTES + 1))
    with pytest.raises(InvalidInput, match=r"an uploaded file at most .*: put larger data in a named volume"):
        collect_uploads("dc.yml", COMPOSE, base, answers={}, environ={"TOKEN": "t"})
