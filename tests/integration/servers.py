"""A real `corral server` process for integration tests, with its own data dir, port, bridge, subnet and prefix.

Why a class: tests stop and restart the server (same data dir and port) and must find leftovers by name after a
crash; every name carries a per-run id so that a developer's demo and a test run never collide.
Why a template database: a new server's first act is to run every migration into an empty SQLite file (seconds of
fsyncs on a loaded machine, for each of the suite's many servers); the migrations run once per test process into a
template, and a new server with an empty data dir starts from a copy of it (its own `migrate` finds nothing to do).
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from corral.client import CorralClient
from corral.config import Settings
from corral.model.credentials import CREDENTIALS_FILE, AgentCredentials
from corral.model.errors import CorralError
from corral.model.join_token import ca_digest_of_pem
from corral.provision.local import LocalHostDriver
from corral.store.database import migrate, open_engine

# for the test modules whose stacks run load balancers: HAProxy's image into their hosts too (conftest.py reads it)
LB_SETTINGS = {"CORRAL_LOCAL_IMAGES": "corral/busybox*,corral/haproxy"}
_TEMPLATE: list[Path] = []  # the migrated SQLite file of this test process, made on first use


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(what: str, check: Callable[[], Any], timeout: float, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except CorralError as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


def free_bridge_octet() -> int:
    """X of a 198.18.X.0/24 (128 <= X < 248) that no interface has an address in (a bridge another server or a cut
    off run left behind would take the new hosts' traffic to the gateway)."""
    listing = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True, check=False).stdout
    used = {int(m) for m in re.findall(r"inet 198\.18\.(\d+)\.", listing)}
    free = [octet for octet in range(128, 248) if octet not in used and octet % _WORKERS == _WORKER]
    return free[secrets.randbelow(len(free))]


def _xdist_worker() -> tuple[int, int]:
    """(this pytest-xdist worker's number, how many workers), (0, 1) without xdist: each worker picks its bridges'
    octets from its own residue class, so two servers of one run never race for the same free one."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return int(worker.removeprefix("gw") or 0) % count, count


_WORKER, _WORKERS = _xdist_worker()


def migrated_template() -> Path:
    """A SQLite file with every migration applied, made once per test process and removed when it exits."""
    if not _TEMPLATE:
        directory = tempfile.mkdtemp(prefix="corral-template-")
        atexit.register(shutil.rmtree, directory, True)
        path = Path(directory) / "corral.db"
        engine = open_engine(f"sqlite:///{path}")
        try:
            migrate(engine)
        finally:
            engine.dispose()
        _TEMPLATE.append(path)
    return _TEMPLATE[0]


class ServerProcess:
    def __init__(self, data_dir: Path, **overrides: str) -> None:
        run_id = secrets.token_hex(3)
        self.data_dir = data_dir
        self.port = free_port()
        insecure = overrides.get("CORRAL_INSECURE_HTTP", "").lower() in ("1", "true", "yes")
        self.url = f"{'http' if insecure else 'https'}://127.0.0.1:{self.port}"
        self.ca_file = None if insecure else data_dir / "tls" / "ca.pem"  # the server's own CA (server/security/tls.py)
        octet = free_bridge_octet()  # clear of the overlay range 198.18.64.0/18 and of other servers' bridges
        self.env = {
            **os.environ,
            "CORRAL_DATA_DIR": str(data_dir),
            "CORRAL_LOCAL_BRIDGE": f"crt{run_id}",
            "CORRAL_LOCAL_SUBNET": f"198.18.{octet}.0/24",
            "CORRAL_LOCAL_PREFIX": f"ct{run_id}",
            "CORRAL_HEARTBEAT_SECONDS": "1",
            "CORRAL_MISSED_HEARTBEATS": "3",
            "CORRAL_HOST_GRACE_SECONDS": "60",
            "CORRAL_AGENT_MAX_BACKOFF_SECONDS": "2",
            "CORRAL_DEFAULT_SUBNET": "198.18.64.0/18",  # the overlay range kept clear of the bridges
            # busybox (and its arm64 build) into each new local host; HAProxy (116 MB) only for the modules that
            # run load balancers (`SERVER_SETTINGS = LB_SETTINGS`, conftest.py), the real software images (nginx,
            # webdis, redis: about 350 MB) only for the tests that run them (`CORRAL_LOCAL_IMAGES="corral/*"`):
            # every host start streams what it is given (HAProxy alone was 2-6 s of a 3-8 s host start)
            "CORRAL_LOCAL_IMAGES": "corral/busybox*",
            # a developer editing code while tests run must not see test agents restarted (tests/unit covers it)
            "CORRAL_RESTART_OUTDATED_AGENTS": "0",
            **overrides,
        }
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []
        self.access_key = ""
        self.secret_key = ""

    @property
    def settings(self) -> Settings:
        return Settings(
            data_dir=self.data_dir,
            local_bridge=self.env["CORRAL_LOCAL_BRIDGE"],
            local_subnet=self.env["CORRAL_LOCAL_SUBNET"],
            local_prefix=self.env["CORRAL_LOCAL_PREFIX"],
        )

    def driver(self) -> LocalHostDriver:
        s = self.settings
        return LocalHostDriver(
            root_dir=s.local_hosts_dir,
            bridge=s.local_bridge,
            subnet=s.local_subnet,
            prefix=s.local_prefix,
            image_patterns=["corral/*"],
            source_docker_host=s.docker_host,
        )

    def agent_command(self, name: str) -> list[str]:
        """The command the server runs for a local host's agent (to start one by hand in tests)."""
        state_dir = self.data_dir / "agents" / name
        credentials = AgentCredentials.from_json((state_dir / CREDENTIALS_FILE).read_text())
        trust = ["--ca-digest", self.ca_digest] if self.ca_file is not None else ["--insecure"]
        command = [sys.executable, "-m", "corral", "agent", "--url", credentials.url, "--state-dir", str(state_dir)]
        return command + trust

    def ssl_context(self) -> ssl.SSLContext | None:
        """Trusts this server's CA (None for a plain-HTTP server): for urllib and websockets in tests."""
        return ssl.create_default_context(cafile=str(self.ca_file)) if self.ca_file is not None else None

    @property
    def ws_url(self) -> str:
        return self.url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)

    @property
    def ca_digest(self) -> str:
        assert self.ca_file is not None, "a plain-HTTP server has no CA"
        return ca_digest_of_pem(self.ca_file.read_text())

    def start(self) -> None:
        database = self.data_dir / "corral.db"
        if not self.env.get("CORRAL_DATABASE_URL") and not database.exists():
            shutil.copyfile(migrated_template(), database)
        log = open(self.data_dir / "server.log", "a")  # noqa: SIM115 - handed to the child
        self.process = subprocess.Popen(
            [sys.executable, "-m", "corral", "server", "--port", str(self.port)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        log.close()
        wait_until("the server to answer /healthz", self._healthy, timeout=90)
        values = dict(line.split("=", 1) for line in (self.data_dir / "admin.env").read_text().split() if "=" in line)
        self.access_key, self.secret_key = values["CORRAL_ACCESS_KEY"], values["CORRAL_SECRET_KEY"]

    def _healthy(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"server exited with {self.process.returncode}: {self.log()}")
        if self.ca_file is not None and not self.ca_file.exists():
            return False
        try:
            CorralClient(self.url, timeout=2, ca=self.ca_file).health()
        except CorralError:
            return False
        return True

    def log(self) -> str:
        path = self.data_dir / "server.log"
        return path.read_text()[-4000:] if path.exists() else ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def client(self) -> CorralClient:
        return CorralClient(self.url, self.access_key, self.secret_key, ca=self.ca_file)

    def cli_env(self) -> dict[str, str]:
        """Environment for running `corral` against this server."""
        return {
            **self.env,
            "CORRAL_URL": self.url,
            "CORRAL_CA_FILE": str(self.ca_file or ""),
            "CORRAL_ACCESS_KEY": self.access_key,
            "CORRAL_SECRET_KEY": self.secret_key,
            "COLUMNS": "200",
        }

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "corral", *args], env=self.cli_env(), capture_output=True, text=True, timeout=240
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"corral {' '.join(args)} failed ({result.returncode}): {result.stderr}{self._agent_logs(args)}"
            )
        return result

    def cli_all(self, *commands: tuple[str, ...]) -> list[subprocess.CompletedProcess[str]]:
        """`cli(*args)` for every command at once, each checked: for set-up steps that wait on their own and do not
        depend on each other, e.g. `hosts create` of several hosts (each waits for its host to turn active)."""
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "corral", *args],
                env=self.cli_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for args in commands
        ]
        results: list[subprocess.CompletedProcess[str]] = []
        try:
            for args, proc in zip(commands, procs, strict=True):
                stdout, stderr = proc.communicate(timeout=240)
                results.append(subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr))
                if proc.returncode != 0:
                    raise AssertionError(
                        f"corral {' '.join(args)} failed ({proc.returncode}): {stderr}{self._agent_logs(args)}"
                    )
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        return results

    def _agent_logs(self, args: tuple[str, ...]) -> str:
        """The end of each local host's agent log, when a host did not come up (its directory goes with it)."""
        if args[:2] != ("hosts", "create"):
            return ""
        tails = []
        for log_file in sorted((self.data_dir / "hosts").glob("*/agent.log")):
            lines = log_file.read_text(errors="replace").splitlines()[-15:]
            tails.append(f"\n--- {log_file.parent.name}/agent.log ---\n" + "\n".join(lines))
        return "".join(tails)

    def _delete_host(self, host_id: str) -> None:
        with self.client() as client, contextlib.suppress(CorralError):
            client.delete_host(host_id)

    def teardown(self) -> None:
        """Remove every host through the API (all at once: each removal stops a dockerd and an agent, seconds
        apiece), stop the server, then sweep anything a crash left behind."""
        try:
            if self.process is not None and self.process.poll() is None:
                with self.client() as client:
                    hosts = client.list_hosts()
                if hosts:
                    with concurrent.futures.ThreadPoolExecutor(min(len(hosts), 4)) as pool:
                        list(pool.map(self._delete_host, [host["id"] for host in hosts]))
        finally:
            self.stop()
            driver = self.driver()
            for record in driver.records():
                driver.remove(record.name)
            driver.cleanup_leftovers(remove_dead=True)
            driver.remove_bridge()
