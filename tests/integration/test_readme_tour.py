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

import contextlib
import os
import re
import secrets
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from corral.provision.local import LocalHostDriver
from tests.integration.servers import free_port

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
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
    run_id = secrets.token_hex(3)
    data_dir = tmp_path / "data"
    env = {
        **os.environ,
        "CORRAL_DATA_DIR": str(data_dir),
        "CORRAL_PORT": str(free_port()),
        "CORRAL_LOCAL_BRIDGE": f"crr{run_id}",
        "CORRAL_LOCAL_SUBNET": f"198.18.{130 + secrets.randbelow(100)}.0/24",
        "CORRAL_LOCAL_PREFIX": f"cr{run_id}",
        "COLUMNS": "200",
    }
    driver = LocalHostDriver(
        root_dir=data_dir / "hosts",
        bridge=env["CORRAL_LOCAL_BRIDGE"],
        subnet=env["CORRAL_LOCAL_SUBNET"],
        prefix=env["CORRAL_LOCAL_PREFIX"],
        image_patterns=["corral/*"],
        source_docker_host="unix:///var/run/docker.sock",
    )
    demo = subprocess.Popen(
        ["bash", "scripts/demo.sh"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        assert demo.stdout is not None
        started: list[str] = []
        deadline = time.monotonic() + 240
        for line in demo.stdout:
            started.append(line)
            if "Press Ctrl-C" in line or time.monotonic() > deadline:
                break
        assert "Press Ctrl-C" in "".join(started), "".join(started)

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
        assert driver.records() == []
        netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert env["CORRAL_LOCAL_PREFIX"] not in netns
        links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
        assert env["CORRAL_LOCAL_BRIDGE"] not in links
        rules = subprocess.run(["iptables", "-S", "FORWARD"], capture_output=True, text=True).stdout
        assert env["CORRAL_LOCAL_BRIDGE"] not in rules
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
        server_pid = data_dir / "server.pid"  # the demo's server runs in a session of its own
        if server_pid.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(server_pid.read_text().strip()), signal.SIGKILL)
        for record in driver.records():
            driver.remove(record.name)
        driver.cleanup_leftovers(remove_dead=True)
        driver.remove_bridge()
