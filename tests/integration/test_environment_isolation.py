"""Two environments on real hosts: what a container or a user of one learns of the other (nothing).

Environment `default` has host `isoa` with stack `shop` (web, client); environment `blue` (its own subnet) has host
`isob` with a stack also named `shop` (web) and a stack `vault` whose service `hidden` carries a marker in its
rancher-compose `metadata:`. Asked from the client in `default`, through the real path (busybox -> Docker's DNS ->
the agent on 169.254.169.250), no name of `blue` resolves and the same names answer only `default`'s addresses; the
metadata service lists only `default`'s stacks, services, containers and hosts, and the marker appears nowhere;
`isob`'s own address answers neither DNS nor metadata. The same questions asked inside `blue` do get `blue`'s
answers, so each refusal is a real one.

Then the CLI as users of `default`: a read-only user lists stacks and hosts and is refused every change and exec;
a restricted user deploys a stack but may not touch hosts; neither sees anything of `blue`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from corral.client.access import AccessClient
from corral.model.network import DNS_LISTEN_PORT, METADATA_LISTEN_PORT
from tests.integration.servers import ServerProcess, wait_until
from tests.integration.test_stacks import _write

pytestmark = pytest.mark.integration

BLUE_SUBNET = "10.77.0.0/16"
MARKER = "blue-only-marker-7f3a"
PASSWORD = "a long enough password"

SHOP_A = """\
version: '2'
services:
  web:
    image: corral/busybox:latest
    command: sleep 3600
  client:
    image: corral/busybox:latest
    command: sleep 3600
"""
SHOP_B = """\
version: '2'
services:
  web:
    image: corral/busybox:latest
    command: sleep 3600
"""
VAULT_B = """\
version: '2'
services:
  hidden:
    image: corral/busybox:latest
    command: sleep 3600
"""
VAULT_B_RANCHER = f"""\
version: '2'
services:
  hidden:
    metadata:
      token: {MARKER}
"""


def _exec(server: ServerProcess, env: str, container: str, command: str) -> Any:
    return server.cli("exec", "--env", env, container, "--", "sh", "-c", command, check=False)


def _lookup(server: ServerProcess, env: str, container: str, name: str, via: str = "") -> set[str] | None:
    """The addresses `name` resolves to inside `container` (optionally asking the DNS server `via`); None if none."""
    result = _exec(server, env, container, f"timeout 10 nslookup {name} {via}".strip())
    _, _, answers = result.stdout.partition("Name:")
    found = set(re.findall(r"^Address(?: \d+)?:\s*(\d+\.\d+\.\d+\.\d+)$", answers, re.MULTILINE))
    return found or None


def _metadata(server: ServerProcess, env: str, container: str, path: str, host: str = "169.254.169.250") -> str | None:
    """GET `path` from the metadata service as JSON; None when it does not answer 200."""
    request = f"printf 'GET {path} HTTP/1.0\\r\\nAccept: application/json\\r\\n\\r\\n' | timeout 5 nc {host} 80"
    result = _exec(server, env, container, request)
    if result.returncode != 0 or not result.stdout.startswith("HTTP/1.1 200"):
        return None
    return str(result.stdout.replace("\r\n", "\n").split("\n\n", 1)[1])


def _ps(server: ServerProcess, env: str) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = json.loads(server.cli("ps", "-a", "--env", env, "--format", "json").stdout)
    return [c for c in listed if c["state"] == "running" and c.get("ip")]


def _as(server: ServerProcess, keys: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    env = {**server.cli_env(), "CORRAL_ACCESS_KEY": keys["access_key"], "CORRAL_SECRET_KEY": keys["secret_key"]}
    return subprocess.run(
        [sys.executable, "-m", "corral", *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.timeout(900)  # two hosts, four containers and some forty `corral exec` calls on a shared machine
def test_a_container_of_one_environment_learns_nothing_of_another_by_dns_or_metadata(
    server: ServerProcess, tmp_path: Path
) -> None:
    server.cli("env", "create", "blue", "--subnet", BLUE_SUBNET)
    server.cli_all(
        ("hosts", "create", "--driver", "local", "isoa"),
        ("hosts", "create", "--driver", "local", "--env", "blue", "isob"),
    )
    server.cli("up", "-d", "-f", str(_write(tmp_path, "shop-a.yml", SHOP_A)), "-s", "shop")
    server.cli("up", "-d", "--env", "blue", "-f", str(_write(tmp_path, "shop-b.yml", SHOP_B)), "-s", "shop")
    vault = [str(_write(tmp_path, "vault.yml", VAULT_B)), str(_write(tmp_path, "vault-rancher.yml", VAULT_B_RANCHER))]
    server.cli("up", "-d", "--env", "blue", "-f", vault[0], "-f", vault[1], "-s", "vault")

    wait_until("default's web and client running", lambda: len(_ps(server, "default")) == 2, 180)
    b = wait_until(
        "blue's web and hidden running", lambda: _ps(server, "blue") if len(_ps(server, "blue")) == 2 else None, 180
    )
    a_ips = {c["name"]: c["ip"] for c in _ps(server, "default")}
    b_ips = {c["name"]: c["ip"] for c in b}
    assert all(ip.startswith("10.77.") for ip in b_ips.values()) and not any(
        ip.startswith("10.77.") for ip in a_ips.values()
    )

    # inside blue the names and the marker are there: the refusals below are not a broken DNS or metadata service
    wait_until(
        "blue resolves its own hidden",
        lambda: _lookup(server, "blue", "shop-web-1", "hidden.vault") == {b_ips["vault-hidden-1"]},
        60,
    )
    assert _lookup(server, "blue", "shop-web-1", "web") == {b_ips["shop-web-1"]}
    assert json.loads(_metadata(server, "blue", "shop-web-1", "/latest/services/hidden/metadata") or "null") == {
        "token": MARKER
    }

    # default's client: its own names answer its own addresses only
    wait_until(
        "default resolves its own web",
        lambda: _lookup(server, "default", "shop-client-1", "web") == {a_ips["shop-web-1"]},
        60,
    )
    assert _lookup(server, "default", "shop-client-1", "web.shop") == {a_ips["shop-web-1"]}
    assert _lookup(server, "default", "shop-client-1", "shop-web-1.corral.internal") == {a_ips["shop-web-1"]}
    for name in (
        "hidden",
        "hidden.vault",
        "hidden.vault.corral.internal",
        "vault-hidden-1.corral.internal",
        "vault-hidden-1",
    ):
        assert _lookup(server, "default", "shop-client-1", name) is None, name

    # default's metadata: its own environment only, and blue's marker, stacks, host and addresses nowhere
    everything = _metadata(server, "default", "shop-client-1", "/latest")
    assert everything is not None
    tree = json.loads(everything)
    assert sorted(s["name"] for s in tree["stacks"]) == ["shop"]
    assert sorted(s["name"] for s in tree["services"]) == ["client", "web"]
    assert sorted(c["name"] for c in tree["containers"]) == ["shop-client-1", "shop-web-1"]
    assert [h["name"] for h in tree["hosts"]] == ["isoa"]
    for leak in (MARKER, "vault", "isob", "blue", *b_ips.values()):
        assert leak not in everything, leak
    assert _metadata(server, "default", "shop-client-1", "/latest/stacks/vault") is None
    assert _metadata(server, "default", "shop-client-1", "/latest/services/hidden") is None

    # isob's own address (reachable: hosts share the underlay) answers neither DNS nor metadata
    isob = json.loads(server.cli("hosts", "inspect", "--env", "blue", "isob").stdout)["address"]
    assert _lookup(server, "default", "shop-client-1", "hidden.vault.corral.internal", via=isob) is None
    for port in (80, METADATA_LISTEN_PORT):
        probe = _exec(
            server,
            "default",
            "shop-client-1",
            f"printf 'GET /latest HTTP/1.0\\r\\n\\r\\n' | timeout 5 nc {isob} {port}",
        )
        assert MARKER not in probe.stdout and "vault" not in probe.stdout, port
    dns = _exec(server, "default", "shop-client-1", f"timeout 10 nslookup -port={DNS_LISTEN_PORT} hidden.vault {isob}")
    assert b_ips["vault-hidden-1"] not in dns.stdout

    _cli_roles(server, tmp_path)


def _cli_roles(server: ServerProcess, tmp_path: Path) -> None:
    """The CLI as a read-only and a restricted user of `default`."""
    sessions: dict[str, dict[str, Any]] = {}
    with server.client() as admin:
        access = AccessClient(admin)
        for role in ("read-only", "restricted"):
            access.create_user(f"cli-{role}", PASSWORD)
            access.set_member("default", role, user=f"cli-{role}")
            sessions[role] = access.login(f"cli-{role}", PASSWORD)
    viewer, restricted = sessions["read-only"], sessions["restricted"]
    compose = str(_write(tmp_path, "mine.yml", SHOP_B))

    listed = _as(server, viewer, "ps", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    assert {c["name"] for c in json.loads(listed.stdout)} >= {"shop-web-1", "shop-client-1"}
    hosts = _as(server, viewer, "hosts", "ls", "--format", "json")
    assert hosts.returncode == 0 and [h["name"] for h in json.loads(hosts.stdout)] == ["isoa"], hosts.stderr
    refused = {
        "up": _as(server, viewer, "up", "-d", "-f", compose, "-s", "mine"),
        "rm": _as(server, viewer, "rm", "shop"),
        "scale": _as(server, viewer, "scale", "shop/web=2"),
        "hosts deactivate": _as(server, viewer, "hosts", "deactivate", "isoa"),
        "exec": _as(server, viewer, "exec", "shop-web-1", "--", "touch", "/tmp/written"),
        "keys for the environment": _as(server, viewer, "keys", "create", "--env", "default", "--role", "read-only"),
    }
    for what, result in refused.items():
        assert result.returncode != 0 and "may not" in result.stderr, (what, result.stdout, result.stderr)
    assert _exec(server, "default", "shop-web-1", "test -e /tmp/written").returncode != 0
    for args in (("ps", "--env", "blue"), ("hosts", "ls", "--env", "blue")):
        foreign = _as(server, viewer, *args)
        assert foreign.returncode != 0 and "vault" not in foreign.stdout + foreign.stderr, args

    deployed = _as(server, restricted, "up", "-d", "-f", compose, "-s", "mine")
    assert deployed.returncode == 0, deployed.stderr
    for args in (("hosts", "deactivate", "isoa"), ("hosts", "rm", "isoa"), ("hosts", "label", "isoa", "x=y")):
        result = _as(server, restricted, *args)
        assert result.returncode != 0 and "restricted role may not write hosts" in result.stderr, (args, result.stderr)
    assert _as(server, restricted, "ps", "--env", "blue").returncode != 0
