"""`make test` runs the role matrix and the CVE suite: the pytest call of scripts/test.sh, with its own paths and
marker expression, collects every test of tests/security (none is deselected or left out)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _pytest_call_of_make_test() -> list[str]:
    assert "bash scripts/test.sh" in (ROOT / "Makefile").read_text()
    script = (ROOT / "scripts/test.sh").read_text()
    match = re.search(r"'\.venv/bin/pytest ([^|']*)\|", script)
    assert match, "scripts/test.sh has no `.venv/bin/pytest ... |` step"
    return shlex.split(match.group(1))


def test_make_test_collects_the_matrix_and_every_cve_test() -> None:
    args = _pytest_call_of_make_test()
    assert "tests" in args, args
    selection = [a for a in args if a not in ("tests", "-q") and not a.startswith("--durations")]
    collected = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            *selection,
            "tests/security",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    names = set(re.findall(r"^(tests/security/\S+::\S+)$", collected.stdout, re.MULTILINE))
    everything = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "tests/security"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    all_names = set(re.findall(r"^(tests/security/\S+::\S+)$", everything.stdout, re.MULTILINE))
    assert any("test_role_matrix.py::test_every_route_with_every_role" in n for n in names), collected.stdout[-2000:]
    assert sum("test_cves.py::test_cve_" in n for n in names) >= 10
    assert names == all_names, sorted(all_names - names)
