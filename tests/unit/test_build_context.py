"""Build contexts as `corral up` packs them: `.dockerignore` as Docker reads it, the size limits with errors that
name the service and the limit, and a digest that depends on the files' contents only."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from corral.cli.build_context import ignored, pack_context, pack_contexts, parse_dockerignore
from corral.model.builds import BuildSpec
from corral.model.errors import InvalidInput


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return [m.name for m in tar.getmembers() if not m.isdir()]


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("*.log", "a.log", True),
        ("*.log", "sub/a.log", False),  # `*` never crosses a folder
        ("**/*.log", "sub/deep/a.log", True),
        ("**/*.log", "a.log", True),  # `**/` is zero or more folders
        ("node_modules", "node_modules/x/index.js", True),  # a folder excludes what is below it
        ("/build", "build/out.o", True),  # a leading slash means the context's root
        ("docs/?.md", "docs/a.md", True),
        ("docs/?.md", "docs/ab.md", False),
        ("[a-c].txt", "b.txt", True),
        ("[!a-c].txt", "b.txt", False),
        ("tmp/**", "tmp/x/y", True),
    ],
)
def test_dockerignore_patterns(pattern: str, path: str, expected: bool) -> None:
    assert ignored(path, parse_dockerignore(pattern)) is expected


def test_dockerignore_exceptions_comments_and_the_last_matching_line_wins() -> None:
    rules = parse_dockerignore("# comment\n\n*.md\n!README.md\nREADME*\n!README.md\n")
    assert ignored("CHANGES.md", rules)
    assert not ignored("README.md", rules)
    assert ignored("README.txt", rules)
    assert not ignored("main.py", rules)


def test_pack_leaves_out_ignored_files_but_always_sends_the_dockerfile_and_dockerignore(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        {
            "Dockerfile": "FROM corral/busybox\n",
            ".dockerignore": "Dockerfile\n.dockerignore\n*.secret\nlogs\n!logs/keep.txt\n",
            "app/main.sh": "echo hi\n",
            "db.secret": "x",
            "logs/old.txt": "x",
            "logs/keep.txt": "kept",
        },
    )
    packed = pack_context(tmp_path)
    assert _names(packed.data) == [".dockerignore", "Dockerfile", "app/main.sh", "logs/keep.txt"]
    assert packed.files == 4


def test_the_digest_depends_on_contents_not_on_times_owners_or_order(tmp_path: Path) -> None:
    first = _tree(tmp_path / "one", {"Dockerfile": "FROM x\n", "b.txt": "b", "a/c.txt": "c"})
    second = _tree(tmp_path / "two", {"a/c.txt": "c", "b.txt": "b", "Dockerfile": "FROM x\n"})
    os.utime(second / "b.txt", (1_000_000, 1_000_000))
    assert pack_context(first).digest == pack_context(second).digest
    assert pack_context(first).data == pack_context(first).data
    (second / "b.txt").write_text("B")
    assert pack_context(first).digest != pack_context(second).digest
    (second / "b.txt").write_text("b")
    (second / "b.txt").chmod(0o755)  # the mode is part of the image, so of the digest
    assert pack_context(first).digest != pack_context(second).digest


def test_an_ignored_file_does_not_change_the_digest(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"Dockerfile": "FROM x\n", ".dockerignore": "*.log\n", "app.log": "1"})
    before = pack_context(root).digest
    (root / "app.log").write_text("2")
    assert pack_context(root).digest == before


def test_a_context_over_the_limit_names_the_service_the_size_and_the_limit(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"Dockerfile": "FROM x\n", "big.bin": "x" * 20000})
    with pytest.raises(InvalidInput) as caught:
        pack_context(root, service="web", limit=16384)
    message = caught.value.message
    assert message.startswith(f"service web: build context {root} holds more than 16384 bytes after .dockerignore")
    assert "at most 16384 (16 KiB): list what the image does not need in the context's .dockerignore" in message
    _tree(root, {".dockerignore": "big.bin\n"})
    assert pack_context(root, service="web", limit=16384).files == 2  # ignoring it is the way out


def test_missing_folder_or_dockerfile_is_an_error_naming_the_service(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"^service api: build context .* is not a folder"):
        pack_context(tmp_path / "nope", service="api")
    _tree(tmp_path / "ctx", {"main.sh": ""})
    with pytest.raises(InvalidInput, match=r"^service api: build context .* has no Dockerfile.dev"):
        pack_context(tmp_path / "ctx", dockerfile="Dockerfile.dev", service="api")


def test_contexts_shared_by_services_are_packed_once_and_the_total_is_limited(tmp_path: Path) -> None:
    _tree(tmp_path / "app", {"Dockerfile": "FROM x\n", "data": "y" * 3000})
    builds = {"web": BuildSpec(context="app"), "worker": BuildSpec(context="./app")}
    packed = pack_contexts(tmp_path, builds)
    assert packed["web"].digest == packed["worker"].digest
    _tree(tmp_path / "other", {"Dockerfile": "FROM x\n", "data": "z" * 3000})
    builds["other"] = BuildSpec(context="other")
    with pytest.raises(InvalidInput, match=r"the build contexts hold .* bytes in all, at most 12000 per `corral up`"):
        pack_contexts(tmp_path, builds, limit=12000)
