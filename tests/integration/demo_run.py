"""`make demo`'s main job (scripts/demo.sh) started for a test on its own bridge, subnet, port and data dir, read
until it waits for Ctrl-C, and everything it may leave removed afterwards (its server runs in a session of its own,
its hosts are netns hosts of the local driver). Used by test_demo.py and test_readme_tour.py."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from corral.provision.local import LocalHostDriver
from tests.integration.servers import free_bridge_octet, free_port

REPO = Path(__file__).resolve().parents[2]
READY_SECONDS = 240


@dataclass
class DemoRun:
    env: dict[str, str]
    driver: LocalHostDriver
    process: subprocess.Popen[str]
    started: str  # what it printed until "Press Ctrl-C" (or the deadline)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextlib.contextmanager
def demo_run(data_dir: Path, tag: str, **extra_env: str) -> Iterator[DemoRun]:
    run_id = secrets.token_hex(3)
    env = {
        **os.environ,
        "CORRAL_DATA_DIR": str(data_dir),
        "CORRAL_PORT": str(free_port()),
        "CORRAL_LOCAL_BRIDGE": f"cr{tag}{run_id}",
        "CORRAL_LOCAL_SUBNET": f"198.18.{free_bridge_octet()}.0/24",  # clear of other servers' bridges
        "CORRAL_LOCAL_PREFIX": f"c{tag}{run_id}",
        # the demo and the README tour run busybox only: `make demo`'s default (corral/*, about 460 MB with HAProxy,
        # nginx, webdis and redis) would be streamed into each of their four hosts
        "CORRAL_LOCAL_IMAGES": "corral/busybox*",
        **extra_env,
    }
    driver = LocalHostDriver(
        root_dir=data_dir / "hosts",
        bridge=env["CORRAL_LOCAL_BRIDGE"],
        subnet=env["CORRAL_LOCAL_SUBNET"],
        prefix=env["CORRAL_LOCAL_PREFIX"],
        image_patterns=["corral/*"],
        source_docker_host="unix:///var/run/docker.sock",
    )
    process = subprocess.Popen(
        ["bash", "scripts/demo.sh"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        # Ctrl-C as a terminal delivers it: a test run started in the background of a shell inherits SIGINT ignored,
        # and a shell cannot trap a signal it was started ignoring (the demo would never clean up)
        preexec_fn=_default_sigint,
    )
    try:
        assert process.stdout is not None
        started: list[str] = []
        deadline = time.monotonic() + READY_SECONDS
        for line in process.stdout:
            started.append(line)
            if "Press Ctrl-C" in line or time.monotonic() > deadline:
                break
        yield DemoRun(env, driver, process, "".join(started))
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        server_pid = data_dir / "server.pid"
        if server_pid.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(server_pid.read_text().strip()), signal.SIGKILL)
        for record in driver.records():
            driver.remove(record.name)
        driver.cleanup_leftovers(remove_dead=True)
        driver.remove_bridge()
