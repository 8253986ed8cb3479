"""`make test` runs the role matrix and the CVE suite: the pytest call of scripts/test.sh, with its own paths and
marker expression, collects every test of tests/security (none is deselected or left out); and it runs the browser
tests as one unit of work, on one xdist worker, beside the integration modules."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.conftest import xdist_scope

ROOT = Path(__file__).resolve().parents[2]


def _pytest_calls_of_make_test() -> list[list[str]]:
    """The pytest calls `make test` makes, as scripts/test.sh prints them in its dry run."""
    assert "bash scripts/test.sh" in (ROOT / "Makefile").read_text()
    printed = subprocess.run(
        ["bash", "scripts/test.sh"],
        cwd=ROOT,
        env={**os.environ, "CORRAL_TEST_DRY_RUN": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    calls = [shlex.split(line)[1:] for line in printed.splitlines() if line.startswith("pytest ")]
    assert calls, printed
    return calls


def _security_selection(args: list[str], folder: str = "tests/security") -> list[str] | None:
    """The call's options with its paths narrowed to `folder`, or None when it does not reach that folder."""
    paths = [a for a in args if a.startswith("tests") and not a.startswith("-")]
    if "tests" not in paths and folder not in paths:
        return None
    ignored = [a.split("=", 1)[1] for a in args if a.startswith("--ignore=")]
    ignored += [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--ignore"]
    if any(f"{folder}/".startswith(f"{path.rstrip('/')}/") for path in ignored):
        return None  # pytest ignores --ignore for the paths it is given, so the narrowing must honour it here
    options: list[str] = []
    skip_value = False
    for arg in args:
        if skip_value:
            skip_value = False
        elif arg in ("-n", "--dist"):
            skip_value = True  # parallelism does not change what is collected
        elif arg in paths or arg in ("-q", "-s") or arg.startswith("--durations"):
            continue
        else:
            options.append(arg)
    return [*options, folder]


def _collect_only(args: list[str]) -> subprocess.CompletedProcess[str]:
    """`pytest --collect-only -q` with these arguments (its output: one test id per line)."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _collected(args: list[str]) -> set[str]:
    return set(re.findall(r"^(tests/security/\S+::\S+)$", _collect_only(args).stdout, re.MULTILINE))


def test_make_test_collects_the_matrix_and_every_cve_test() -> None:
    names: set[str] = set()
    for call in _pytest_calls_of_make_test():
        selection = _security_selection(call)
        if selection is not None:
            names |= _collected(selection)
    all_names = _collected(["tests/security"])
    assert any("test_role_matrix.py::test_every_route_with_every_role" in n for n in names), sorted(names)
    assert sum("test_cves.py::test_cve_" in n for n in names) >= 10
    assert names == all_names, sorted(all_names - names)


def test_make_test_runs_the_browser_tests_together_on_one_worker() -> None:
    """One call of `make test` runs tests/browser; when it spreads tests over xdist workers it does so with
    `--dist loadfile`, where tests/conftest.py's scheduler makes every browser test one unit of work (their
    package-scoped server with two netns hosts must start once, on one worker) and every other module one unit."""
    calls = [call for call in _pytest_calls_of_make_test() if _security_selection(call, "tests/browser") is not None]
    assert len(calls) == 1, calls
    call = calls[0]
    if "-n" in call and call[call.index("-n") + 1] != "1":
        assert "--dist" in call and call[call.index("--dist") + 1] == "loadfile", call
    options = [a for a in call if a not in ("-q", "-s") and not a.startswith("--durations")]
    for flag in ("-n", "--dist"):  # collect in this process: xdist only spreads what is collected
        if flag in options:
            del options[options.index(flag) : options.index(flag) + 2]
    listing = _collect_only(options)
    nodeids = re.findall(r"^(tests/\S+::\S+)$", listing.stdout, re.MULTILINE)
    scopes = {nodeid: xdist_scope(nodeid, ROOT) for nodeid in nodeids}
    browser = {scope for nodeid, scope in scopes.items() if nodeid.startswith("tests/browser/")}
    assert browser == {"tests/browser"}, listing.stdout[-3000:] + listing.stderr[-3000:]
    others = {nodeid: scope for nodeid, scope in scopes.items() if not nodeid.startswith("tests/browser/")}
    assert others, listing.stdout[-3000:]
    assert others == {nodeid: nodeid.split("::", 1)[0] for nodeid in others}
