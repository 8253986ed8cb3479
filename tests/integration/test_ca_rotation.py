"""Rotating the server's CA under connected agents (issue 13 part 1, server/hub/ca_rotation.py): a netns host's agent
and a custom agent learn the new CA over their pinned connection, nobody restarts or re-registers them, the server
then serves a certificate of the new CA alone, join tokens carry the new digest, and a restarted agent reconnects
with what it pinned (also when told the old digest it was first given).
"""

from __future__ import annotations

import json
import socket
import ssl
from pathlib import Path

import pytest
from cryptography import x509

from corral.model.join_token import ca_digest_of_pem, ca_digests_of_bundle, parse_join_token
from tests.integration.servers import ServerProcess, wait_until
from tests.integration.test_tls import MITM, AgentProcess, _host_state, _token

pytestmark = pytest.mark.integration


def _presented_issuer(server: ServerProcess, ca_pem: str) -> x509.Name:
    """The issuer of the certificate the server presents, verified against `ca_pem` alone."""
    context = ssl.create_default_context(cadata=ca_pem)
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).issuer


def test_the_ca_rotates_under_connected_agents_without_a_restart(server: ServerProcess, tmp_path: Path) -> None:
    old_pem = server.ca_file.read_text() if server.ca_file else ""
    old_digest = server.ca_digest
    server.cli("hosts", "create", "--driver", "local", "rot1")
    first_token = _token(server)
    agent = AgentProcess(server, server.url, tmp_path / "state", "rot2", "--token", first_token)
    try:
        for name in ("rot1", "rot2"):
            wait_until(f"{name} active", lambda name=name: _host_state(server, name) == "active", timeout=120)
        result = server.cli("server", "rotate-ca")
        new_digest = server.ca_digest
        assert new_digest != old_digest and f"CA rotated: {new_digest}" in result.stdout, result.stdout
        status = server.client().ca_rotation()
        assert status["state"] == "idle" and status["ca_digest"] == new_digest
        new_pem = server.ca_file.read_text() if server.ca_file else ""
        assert ca_digests_of_bundle(new_pem) == [new_digest]  # the old CA is dropped
        assert _presented_issuer(server, new_pem) != x509.load_pem_x509_certificate(old_pem.encode()).subject
        with pytest.raises(ssl.SSLCertVerificationError):
            _presented_issuer(server, old_pem)
        # both agents pinned the new CA over their connection and stayed up
        pinned = (tmp_path / "state" / "ca.pem").read_text()
        assert ca_digests_of_bundle(pinned) == [new_digest]
        assert old_digest in (tmp_path / "state" / "ca-history").read_text()
        local_pin = server.data_dir / "agents" / "rot1" / "ca.pem"
        wait_until("rot1 pinned the new CA", lambda: ca_digest_of_pem(local_pin.read_text()) == new_digest, timeout=30)
        assert agent.process.poll() is None and "pinned the server's CA bundle" in agent.log
        for name in ("rot1", "rot2"):
            assert _host_state(server, name) == "active"
        # join tokens issued now carry the new digest
        assert parse_join_token(_token(server)).ca_digest == new_digest
        created = json.loads(server.cli("tokens", "create", "--format", "json").stdout)
        assert new_digest.split(":")[1] in created["token"]
    finally:
        output = agent.stop()
    assert MITM not in output
    # restarted with the join token it was first given (the old digest): it connects with the CA it pinned since
    again = AgentProcess(server, server.url, tmp_path / "state", "rot2", "--token", first_token)
    try:
        wait_until("rot2 reconnected", lambda: again.log.count("connected to wss://") >= 1, timeout=60)
        wait_until("rot2 active again", lambda: _host_state(server, "rot2") == "active", timeout=60)
    finally:
        output = again.stop()
    assert MITM not in output


def test_an_agent_registered_before_tls_pins_the_ca_it_is_given_and_stays_the_same_host(
    server_with, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    server: ServerProcess = server_with(CORRAL_INSECURE_HTTP="1")
    token = json.loads(server.cli("tokens", "create", "--format", "json").stdout)["token"]
    state = tmp_path / "state"
    agent = AgentProcess(server, server.url, state, "old-timer", "--token", token, "--insecure")
    try:
        wait_until("old-timer active", lambda: _host_state(server, "old-timer") == "active", timeout=60)
    finally:
        agent.stop()
    host_ids = [h["id"] for h in server.client().list_hosts() if h["name"] == "old-timer"]
    server.stop()  # the same data dir, now with TLS
    del server.env["CORRAL_INSECURE_HTTP"]
    server.url, server.ca_file = server.url.replace("http://", "https://"), server.data_dir / "tls" / "ca.pem"
    server.start()
    refused = AgentProcess(server, server.url, state, "old-timer")  # no CA to pin: one clear line, exit 1
    assert refused.wait(timeout=30) == 1 and "--ca-digest" in refused.log
    again = AgentProcess(server, server.url, state, "old-timer", "--ca-digest", server.ca_digest)
    try:
        wait_until("old-timer active over TLS", lambda: _host_state(server, "old-timer") == "active", timeout=60)
    finally:
        output = again.stop()
    assert [h["id"] for h in server.client().list_hosts() if h["name"] == "old-timer"] == host_ids
    assert ca_digest_of_pem((state / "ca.pem").read_text()) == server.ca_digest and MITM not in output
