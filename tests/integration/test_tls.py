"""TLS with a pinned CA, on real processes: nothing secret crosses the wire in clear (tcpdump), a man in the middle
and a server with another CA are refused with one line, `http://` needs `--insecure`, and the server certificate
is rotated under connected agents.

The man in the middle is a small asyncio TLS proxy in this process (its own CA, forwarding to the real server);
custom agents drive the machine's own engine with the overlay off (as in test_hosts.py). tcpdump runs on every
interface with a filter on the server's port and is stopped by its PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from corral.agent.credentials_store import load_credentials
from corral.model.join_token import parse_join_token
from corral.server.security.tls import new_ca, new_server_certificate
from tests.integration.conftest import _missing_prerequisite, skip_or_fail
from tests.integration.servers import ServerProcess, wait_until

pytestmark = pytest.mark.integration

PASSWORD = "Wire-pa55word-Xq9z-never-in-clear"
MITM = "refusing: possible man in the middle"


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    reason = _missing_prerequisite()
    if reason is not None:
        skip_or_fail(reason)
    data_dir = tmp_path_factory.mktemp("tls") / "data"
    data_dir.mkdir()
    server = ServerProcess(data_dir)
    server.start()
    try:
        yield server
    finally:
        server.teardown()


class AgentProcess:
    """A custom agent on the machine's own engine (overlay off: no VXLAN or DNS in the root netns); its log in a
    file."""

    def __init__(self, server: ServerProcess, url: str, state_dir: Path, name: str, *extra: str) -> None:
        self.log_path = state_dir.with_name(state_dir.name + ".log")
        command = [sys.executable, "-m", "corral", "agent", "--url", url, "--state-dir", str(state_dir)]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [*command, "--name", name, *extra],
                env={**server.env, "CORRAL_AGENT_OVERLAY": "0"},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"agent still running after {timeout}s; its log:\n{self.log}") from None

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.log


def _host_state(server: ServerProcess, name: str) -> str:
    with server.client() as client:
        return next((h["state"] for h in client.list_hosts() if h["name"] == name), "")


def _token(server: ServerProcess, env: str = "default") -> str:
    token: str = json.loads(server.cli("tokens", "create", "--env", env, "--format", "json").stdout)["token"]
    return token


def _serial(server: ServerProcess) -> int:
    """The serial of the certificate the server presents now (verified against its CA)."""
    context = server.ssl_context()
    assert context is not None
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


# -- credentials never in clear ------------------------------------------------------------------------------


@contextlib.contextmanager
def capture(port: int, path: Path) -> Iterator[None]:
    tcpdump = shutil.which("tcpdump")
    if tcpdump is None:
        skip_or_fail("tcpdump is not installed (run `make setup`)")
    assert tcpdump is not None
    process = subprocess.Popen(
        [tcpdump, "-i", "any", "-U", "-s", "0", "-w", str(path), "tcp", "port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until("tcpdump to start", lambda: path.exists() and path.stat().st_size > 0, timeout=10)
        yield
    finally:
        time.sleep(0.5)  # the last packets reach the file (-U writes each packet as it comes)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_no_secret_crosses_the_wire_in_clear(tls_server: ServerProcess, tmp_path: Path) -> None:
    server = tls_server
    pcap = tmp_path / "wire.pcap"
    gateway = server.env["CORRAL_LOCAL_SUBNET"].rsplit(".", 1)[0] + ".1"
    registry = f"{gateway}:5999"  # nothing listens there: the password only has to reach the host in `desired`
    compose = tmp_path / "wire.yml"
    compose.write_text(
        f"version: '2'\nservices:\n  app:\n    image: {registry}/private/app:1\n    command: [sleep, '3600']\n"
    )
    with capture(server.port, pcap):
        with server.client() as client:
            client.add_registry("default", registry, "puller", PASSWORD)
            client.create_environment("wire-custom")
        server.cli("hosts", "create", "--driver", "local", "wire1")
        server.cli("up", "-f", str(compose), "-s", "wire", "-d")
        token = _token(server, "wire-custom")
        custom = AgentProcess(server, server.url, tmp_path / "custom", "wire-custom-1", "--token", token)
        try:
            wait_until("the custom host active", lambda: _host_state(server, "wire-custom-1") == "active", timeout=30)
            record = server.driver().load("wire1")
            assert record is not None
            agent_log = Path(record.host_dir) / "agent.log"
            wait_until(
                "the local host's desired set with the registry's credentials",
                lambda: "1 registries" in agent_log.read_text(),
                timeout=90,
            )
        finally:
            custom.stop()
    wire = pcap.read_bytes()
    local_credentials = load_credentials(server.data_dir / "agents" / "wire1")
    custom_credentials = load_credentials(tmp_path / "custom")
    assert local_credentials is not None and custom_credentials is not None
    secrets = {
        "registry password": PASSWORD,
        "admin secret": server.secret_key,
        "local agent secret": local_credentials.secret_key,
        "custom agent secret": custom_credentials.secret_key,
        "registration token secret": parse_join_token(token).secret,
    }
    for what, value in secrets.items():
        assert value.encode() not in wire, f"the {what} crossed the wire in clear"
    # ... while the capture does hold the traffic: TLS ClientHellos (record 0x16, handshake type 1) to the port
    hellos = sum(1 for i in range(len(wire) - 6) if wire[i : i + 2] == b"\x16\x03" and wire[i + 5] == 1)
    assert hellos >= 3, f"only {hellos} TLS ClientHellos in {len(wire)} captured bytes"
    assert b"HTTP/1.1" not in wire and b"Authorization" not in wire


# -- a man in the middle ---------------------------------------------------------------------------------------


class TlsProxy:
    """A TLS endpoint with a certificate of its own CA that forwards to the real server (over TLS). It records
    what clients sent after decryption; with `own_ca`, it answers `GET /v1/ca` itself with its own CA."""

    def __init__(self, workdir: Path, upstream_port: int, *, own_ca: bool) -> None:
        ca, ca_key = new_ca()
        cert, key = new_server_certificate(ca, ca_key, ["127.0.0.1", "localhost"])
        workdir.mkdir()
        (workdir / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (workdir / "key.pem").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        self.ca_pem = ca.public_bytes(serialization.Encoding.PEM)
        self.cert_digest = "sha256:" + hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(workdir / "cert.pem", workdir / "key.pem")
        self.upstream_port = upstream_port
        self.own_ca = own_ca
        self.seen = bytearray()
        self.port = 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: asyncio.Server | None = None

    def __enter__(self) -> TlsProxy:
        self.thread.start()
        future = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.context), self.loop
        )
        self.server = future.result(timeout=10)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *_: object) -> None:
        async def close() -> None:
            assert self.server is not None
            self.server.close()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            first = await reader.read(65536)
            self.seen += first
            if self.own_ca and first.startswith(b"GET ") and b"/v1/ca " in first.split(b"\r\n", 1)[0]:
                head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(self.ca_pem)}\r\nConnection: close\r\n\r\n"
                writer.write(head.encode() + self.ca_pem)
                await writer.drain()
                return
            upstream = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            upstream.check_hostname, upstream.verify_mode = False, ssl.CERT_NONE
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port, ssl=upstream)
            up_writer.write(first)
            await asyncio.gather(self._pipe(reader, up_writer, record=True), self._pipe(up_reader, writer))
        except (OSError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, record: bool = False) -> None:
        with contextlib.suppress(OSError, ssl.SSLError):
            while chunk := await reader.read(65536):
                if record:
                    self.seen += chunk
                writer.write(chunk)
                await writer.drain()
        writer.close()


@pytest.mark.parametrize("own_ca", [False, True], ids=["forwards-the-real-ca", "serves-its-own-ca"])
def test_a_man_in_the_middle_is_refused_before_the_token_is_sent(
    tls_server: ServerProcess, tmp_path: Path, own_ca: bool
) -> None:
    server = tls_server
    token = _token(server)
    with TlsProxy(tmp_path / "proxy", server.port, own_ca=own_ca) as proxy:
        agent = AgentProcess(server, f"https://127.0.0.1:{proxy.port}", tmp_path / "state", "mitm", "--token", token)
        code = agent.wait(timeout=30)
    output = agent.log
    assert code == 1, output
    refusals = [line for line in output.splitlines() if MITM in line]
    assert len(refusals) == 1, output
    assert server.ca_digest in refusals[0]  # the expected digest ...
    if own_ca:  # ... and the one seen: the impostor's CA
        own = "sha256:" + hashlib.sha256(ssl.PEM_cert_to_DER_cert(proxy.ca_pem.decode())).hexdigest()
        assert own in refusals[0]
    else:  # ... or the certificate the proxy presented, which the real CA did not sign
        assert proxy.cert_digest in refusals[0]
    assert parse_join_token(token).secret.encode() not in proxy.seen  # the secret never reached the impostor
    assert not (tmp_path / "state" / "ca.pem").exists() or not own_ca  # a wrong CA is never pinned
    assert _host_state(server, "mitm") == ""


def test_a_registered_agent_refuses_a_server_with_another_ca(server: ServerProcess, tmp_path: Path) -> None:
    agent = AgentProcess(server, server.url, tmp_path / "state", "pinned", "--token", _token(server))
    try:
        wait_until("pinned active", lambda: _host_state(server, "pinned") == "active", timeout=30)
        pinned = (tmp_path / "state" / "ca.pem").read_text()
        assert oct((tmp_path / "state" / "ca.pem").stat().st_mode & 0o777) == "0o600"
        old_digest = server.ca_digest
        server.stop()
        shutil.rmtree(server.data_dir / "tls")  # the next start makes another CA
        server.start()
        assert server.ca_digest != old_digest
        assert agent.wait(timeout=30) == 1
    finally:
        output = agent.stop()
    refusals = [line for line in output.splitlines() if MITM in line]
    assert len(refusals) == 1 and old_digest in refusals[0], output
    assert (tmp_path / "state" / "ca.pem").read_text() == pinned  # still pinned: the agent never trusts the new CA
    assert (tmp_path / "state" / "credentials.json").exists()  # and keeps its credentials


# -- plain HTTP ---------------------------------------------------------------------------------------------------


def test_plain_http_needs_insecure_on_both_sides_and_warns(server_with, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server: ServerProcess = server_with(CORRAL_INSECURE_HTTP="1")
    assert server.url.startswith("http://")
    created = json.loads(server.cli("tokens", "create", "--format", "json").stdout)
    assert created["command"].endswith(" --insecure") and not created["token"].startswith("CORRAL1-")
    assert "plain HTTP" in server.cli("env", "ls").stderr  # the CLI warns
    refused = AgentProcess(server, server.url, tmp_path / "refused", "plain-1", "--token", created["token"])
    assert refused.wait(timeout=30) == 1
    lines = [line for line in refused.log.splitlines() if "plain HTTP" in line]
    assert len(lines) == 1 and "--insecure" in lines[0]
    agent = AgentProcess(server, server.url, tmp_path / "allowed", "plain-2", "--token", created["token"], "--insecure")
    try:
        wait_until("plain-2 active", lambda: _host_state(server, "plain-2") == "active", timeout=30)
    finally:
        agent.stop()
    with urllib_get(server.url + "/ui/login") as page:
        assert "--insecure-http" in page  # the UI's warning banner


@contextlib.contextmanager
def urllib_get(url: str) -> Iterator[str]:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as response:
        yield response.read().decode()


def test_tls_port_refuses_plain_http(tls_server: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = sock.recv(4096)
    assert b"200 OK" not in answer and b'"status"' not in answer


# -- rotation -----------------------------------------------------------------------------------------------------


def test_rotation_serves_a_new_certificate_and_agents_reconnect(tls_server: ServerProcess, tmp_path: Path) -> None:
    server = tls_server
    agent = AgentProcess(server, server.url, tmp_path / "state", "rotor", "--token", _token(server))
    try:
        wait_until("rotor active", lambda: _host_state(server, "rotor") == "active", timeout=30)
        before = _serial(server)
        result = server.cli("server", "rotate-cert")
        after = _serial(server)
        assert after != before and f"serial {after:x}" in result.stdout
        assert re.search(r"[1-9]\d* agents reconnecting", result.stdout), result.stdout
        wait_until("the agent to reconnect", lambda: agent.log.count("connected to wss://") >= 2, timeout=30)
        wait_until("rotor active again", lambda: _host_state(server, "rotor") == "active", timeout=30)
        assert agent.process.poll() is None  # nobody restarted it
    finally:
        output = agent.stop()
    assert "server certificate rotated" in output and MITM not in output
