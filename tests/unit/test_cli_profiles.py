"""The CLI config file (cli/profiles.py): profiles saved 0600, the current one, errors naming the file."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest

from corral.cli import profiles
from corral.model.errors import InvalidInput


def test_profiles_are_saved_private_and_picked_by_name_or_as_current(tmp_path: Path) -> None:
    path = tmp_path / "corral" / "cli.json"
    assert profiles.profile(None, path) == profiles.Profile()  # no file: nothing configured
    profiles.save("prod", profiles.Profile(url="https://p:8080", access_key="UA", secret_key="s1"), path=path)
    profiles.save("lab", profiles.Profile(url="https://l:8080", environment="edge"), make_current=False, path=path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert profiles.profile(None, path).url == "https://p:8080"
    assert profiles.profile("lab", path).environment == "edge"
    profiles.use("lab", path)
    assert json.loads(path.read_text())["current"] == "lab"
    profiles.remove("lab", path)
    assert profiles.profile(None, path) == profiles.Profile()
    with pytest.raises(InvalidInput, match=r"no profile 'lab'.*profiles: prod"):
        profiles.profile("lab", path)


def test_a_broken_file_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "cli.json"
    path.write_text("{not json")
    with pytest.raises(InvalidInput, match=re.escape(str(path))):
        profiles.profile(None, path)
    path.write_text('{"profiles": []}')
    with pytest.raises(InvalidInput, match="expected"):
        profiles.load(path)


def test_the_path_follows_corral_config_then_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CORRAL_CONFIG", str(tmp_path / "explicit.json"))
    assert profiles.config_path() == tmp_path / "explicit.json"
    monkeypatch.delenv("CORRAL_CONFIG")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert profiles.config_path() == tmp_path / "xdg" / "corral" / "cli.json"
