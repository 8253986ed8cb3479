"""Logs and exec of stack containers, relayed by the agents of their hosts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.servers import ServerProcess
from tests.integration.test_stacks import _create_hosts, _wait_running, _write

pytestmark = pytest.mark.integration


TALKER = """
services:
  talker:
    image: corral/busybox:latest
    command: sh -c 'echo to-stdout; echo to-stderr >&2; i=0; while true; do i=$$((i+1)); echo tick $$i; sleep 1; done'
    scale: 2
"""


def test_logs_and_exec_reach_containers_through_their_agents(server: ServerProcess, tmp_path: Path) -> None:
    _create_hosts(server, "s1", "s2")
    compose = _write(tmp_path, "docker-compose.yml", "version: '2.1'\n" + TALKER.replace("    scale: 2\n", ""))
    rancher = _write(tmp_path, "rancher-compose.yml", "version: '2'\nservices:\n  talker:\n    scale: 2\n")
    server.cli("up", "-f", str(compose), "-f", str(rancher), "-s", "chat")
    talkers = _wait_running(server, "chat", "talker", 2)
    assert {c["host"] for c in talkers} == {"s1", "s2"}

    one = server.cli("logs", "--tail", "100", "chat-talker-1").stdout
    assert "to-stdout" in one and "to-stderr" in one and "tick 1" in one
    both = server.cli("logs", "chat/talker").stdout
    assert "chat-talker-1 | to-stdout" in both and "chat-talker-2 | to-stdout" in both

    follow = subprocess.Popen(
        [sys.executable, "-m", "corral", "logs", "-f", "--tail", "0", "chat-talker-2"],
        env=server.cli_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert follow.stdout is not None
        line = follow.stdout.readline()
        assert line.startswith("tick ")
    finally:
        follow.terminate()
        follow.wait(timeout=10)

    result = server.cli("exec", "chat-talker-1", "--", "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")

    interactive = subprocess.run(
        [sys.executable, "-m", "corral", "exec", "-i", "chat-talker-2", "--", "cat"],
        env=server.cli_env(),
        input="hello through the agent\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert interactive.returncode == 0, interactive.stderr
    assert interactive.stdout == "hello through the agent\n"

    missing = server.cli("exec", "chat-talker-1", "--", "no-such-command", check=False)
    assert missing.returncode != 0
