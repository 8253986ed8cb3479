"""Which git URLs and branches a catalog source may name (fetch/git.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from corral.fetch.git import redact_url, refresh_checkout, validate_branch, validate_git_url
from corral.model.errors import InvalidInput, Unavailable


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/rancher/community-catalog.git",
        "ssh://git@example.com/org/catalog.git",
        "git@example.com:org/catalog.git",
        "file:///srv/catalog",
        "HTTPS://example.com/x.git",
    ],
)
def test_allowed_urls(url: str) -> None:
    assert validate_git_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/catalog.git",
        "git://example.com/catalog.git",
        "ext::sh -c touch% /tmp/pwned",
        "-uhelp",
        "--upload-pack=touch /tmp/pwned",
        "/srv/catalog",
        "ftp://example.com/x",
        "",
        "https://example.com/x\n--upload-pack=x",
    ],
)
def test_rejected_urls_name_the_field(url: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_git_url(url)
    assert caught.value.field == "url"


@pytest.mark.parametrize("branch", ["master", "main", "release/v1.2", "feature_x-2"])
def test_allowed_branches(branch: str) -> None:
    assert validate_branch(branch) == branch


@pytest.mark.parametrize("branch", ["", "-f", "--upload-pack=x", "a..b", "a b", "x.lock", "x/"])
def test_rejected_branches(branch: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_branch(branch)
    assert caught.value.field == "branch"


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _repo(path: Path) -> Path:
    path.mkdir()
    _git(path, "init", "-q", "-b", "main")
    _git(path, "config", "user.email", "t@example.com")
    _git(path, "config", "user.name", "t")
    (path / "README.md").write_text("one\n")
    _git(path, "add", "README.md")
    _git(path, "commit", "-q", "-m", "one")
    return path


def test_clone_then_fetch_follows_the_branch(tmp_path: Path) -> None:
    origin = _repo(tmp_path / "origin")
    checkout = tmp_path / "data" / "catalogs" / "c1"
    first = refresh_checkout(f"file://{origin}", "main", checkout)
    assert first == _git(origin, "rev-parse", "HEAD")
    assert (checkout / "README.md").read_text() == "one\n"
    (origin / "README.md").write_text("two\n")
    _git(origin, "commit", "-q", "-am", "two")
    second = refresh_checkout(f"file://{origin}", "main", checkout)
    assert second != first
    assert (checkout / "README.md").read_text() == "two\n"


def test_unknown_branch_and_missing_repository_fail_with_gits_reason(tmp_path: Path) -> None:
    origin = _repo(tmp_path / "origin")
    with pytest.raises(Unavailable, match="git fetch failed"):
        refresh_checkout(f"file://{origin}", "nope", tmp_path / "c1")
    with pytest.raises(Unavailable, match="git clone failed"):
        refresh_checkout(f"file://{tmp_path / 'missing'}", "main", tmp_path / "c2")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://bob:s3cret@git.example.com/cat.git", "https://bob:***@git.example.com/cat.git"),
        ("https://bob:s3cret@git.example.com:8443/cat.git", "https://bob:***@git.example.com:8443/cat.git"),
        ("https://bob@git.example.com/cat.git", "https://bob@git.example.com/cat.git"),
        ("https://git.example.com/cat.git", "https://git.example.com/cat.git"),
        ("https://bob:s3cret@git.example.com:99999/x", "https://***@git.example.com:99999/x"),
    ],
)
def test_a_password_in_a_git_url_is_never_shown(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_a_rejected_url_error_hides_the_password() -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_git_url("http://bob:s3cret@git.example.com/cat.git")
    assert "s3cret" not in caught.value.message and "bob:***@" in caught.value.message
