"""README.md's tour, run as printed against `make demo` (scripts/demo.sh, on its own bridge, subnet, port and data
dir): every command of the tour's ```console blocks exits 0 and prints the lines the README shows under it; then
Ctrl-C removes everything the demo and the tour created, the bridge and its firewall rule included.

The README's format (stated in a comment under its "A short tour" heading): in that section, each ```console
block holds commands on lines starting with "$ " and, under each, lines of its output. Output lines must appear in
that order among the lines the command prints (others may come between); runs of spaces compare as one; `<word>`
stands for any text without spaces (ids, addresses, times). `/var/lib/corral` is the demo's data dir. Commands that
only set variables (`set -a; . FILE; set +a`, `export`) apply to every later command, as in one shell.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.integration.demo_run import REPO, demo_run

pytestmark = pytest.mark.integration
README = REPO / "README.md"
DATA_DIR_IN_README = "/var/lib/corral"
PLACEHOLDER = re.compile(r"<[^<>\s]+>")


@dataclass
class Step:
    command: str
    expected: list[str] = field(default_factory=list)


def tour_steps(text: str) -> list[Step]:
    """The commands of the README's tour with the output lines shown under each, in order."""
    section = text.split("\n## A short tour\n", 1)[1].split("\n## ", 1)[0]
    steps: list[Step] = []
    for block in re.findall(r"^```console\n(.*?)^```$", section, flags=re.MULTILINE | re.DOTALL):
        for line in block.splitlines():
            if line.startswith("$ "):
                steps.append(Step(line[2:].strip()))
            elif line.strip():
                assert steps, f"output before any command in the tour: {line!r}"
                steps[-1].expected.append(line)
    return steps


def line_pattern(expected: str) -> re.Pattern[str]:
    words = []
    for word in expected.split():
        parts = PLACEHOLDER.split(word)
        words.append(r"\S+".join(re.escape(part) for part in parts))
    return re.compile(r"\s+".join(words))


def missing_lines(expected: list[str], output: str) -> list[str]:
    """The expected lines not found, in order, among the output's lines ([] when all are there)."""
    lines = [line.strip() for line in output.splitlines()]
    position = 0
    for index, wanted in enumerate(expected):
        pattern = line_pattern(wanted)
        while position < len(lines) and not pattern.fullmatch(lines[position]):
            position += 1
        if position == len(lines):
            return expected[index:]
        position += 1
    return []


def test_the_format_of_the_tour_is_what_the_test_reads() -> None:
    """The parser and matcher themselves (no Docker): a wrong line is reported, placeholders span one word."""
    steps = tour_steps(README.read_text())
    assert len(steps) >= 15 and all(step.command for step in steps)
    assert line_pattern("host1  active  <ip>").fullmatch("host1 active 198.18.0.11")
    assert not line_pattern("host1  active  <ip>").fullmatch("host1 active 198.18.0.11 extra")
    assert line_pattern("--url https://<address> --token CORRAL1-<token>").fullmatch(
        "--url https://127.0.0.1:8080 --token CORRAL1-abc-def"
    )
    assert missing_lines(["a <x>", "c"], "a 1\nb\nc\n") == []
    assert missing_lines(["c", "a <x>"], "a 1\nb\nc\n") == ["a <x>"]


def _run_step(step: Step, prelude: list[str], env: dict[str, str], data_dir: Path) -> str:
    command = step.command.replace(DATA_DIR_IN_README, str(data_dir))
    script = "\n".join([*prelude, command])
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"$ {step.command}\nexit {result.returncode}\n{result.stdout}{result.stderr}"
    missing = missing_lines(step.expected, result.stdout)
    assert not missing, f"$ {step.command}\ndid not print {missing!r}; it printed:\n{result.stdout}{result.stderr}"
    return command


def test_the_readme_tour_runs_as_printed_and_ctrl_c_removes_what_it_made(prerequisites: None, tmp_path: Path) -> None:
    steps = tour_steps(README.read_text())
    data_dir = tmp_path / "data"
    with demo_run(data_dir, "r", COLUMNS="200") as run:
        env, demo = run.env, run.process
        assert "Press Ctrl-C" in run.started, run.started

        prelude: list[str] = []
        tour_env = {key: value for key, value in env.items() if not key.startswith("CORRAL_LOCAL_")}
        for step in steps:
            command = _run_step(step, prelude, tour_env, data_dir)
            if re.match(r"(set -a\b|export |\. )", command):
                prelude.append(command)

        os.killpg(demo.pid, signal.SIGINT)
        rest, _ = demo.communicate(timeout=180)
        assert demo.returncode == 0, rest
        # what the demo made and what the tour left (README: "Ctrl-C ... now removes ...")
        assert re.search(r"removing the stacks this run created: (demo mystack|mystack demo)\n", rest), rest
        assert re.search(r"removing the hosts this run created: host1 host2 host3\n", rest), rest
        assert "removing the environments this run created: edge\n" in rest, rest
        assert f"removed the bridge {env['CORRAL_LOCAL_BRIDGE']} and its firewall rule" in rest, rest
        assert f"kept {data_dir}" in rest, rest
        assert run.driver.records() == []
        netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert env["CORRAL_LOCAL_PREFIX"] not in netns
        links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
        assert env["CORRAL_LOCAL_BRIDGE"] not in links
        rules = subprocess.run(["iptables", "-w", "5", "-S", "FORWARD"], capture_output=True, text=True).stdout
        assert env["CORRAL_LOCAL_BRIDGE"] not in rules
