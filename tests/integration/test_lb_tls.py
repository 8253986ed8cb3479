"""TLS termination at a load balancer with certificates from the environment's store (issue 19 items 1 and 3), on
a real netns host with real HAProxy: `corral certs create` uploads two certificates; the LB serves the one whose
SANs match the client's SNI and `default_cert` to any other name, decrypts, and routes by Host to service a; a
renewal (`certs replace`) reaches HAProxy without recreating the LB; the key never appears in the server's log or in
`certs ls`."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from corral.server.security.tls import new_ca, new_server_certificate
from tests.integration.servers import LB_SETTINGS, ServerProcess, wait_until
from tests.integration.test_lb import _get
from tests.integration.test_stacks import _containers, _write

pytestmark = pytest.mark.integration
SERVER_SETTINGS = LB_SETTINGS  # HAProxy's image into this module's hosts (conftest.py)

COMPOSE = """\
version: '2'
services:
  lb:
    image: rancher/lb-service-haproxy:v0.9.1
    ports: ["443:443"]
  a:
    image: corral/busybox:latest
    command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"]
"""

RANCHER = """\
version: '2'
services:
  lb:
    lb_config:
      default_cert: site-a
      certs: [site-b]
      port_rules:
      - {source_port: 443, target_port: 8080, service: a, protocol: https}
"""


def _issue(directory: Path, name: str, ca: x509.Certificate, ca_key: object, sans: list[str]) -> tuple[Path, Path]:
    cert, key = new_server_certificate(ca, ca_key, sans)  # type: ignore[arg-type]
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def _served(address: str, sni: str, ca_file: Path) -> tuple[str, str] | None:
    """(fingerprint of the certificate served for `sni`, body of GET / with that Host), None on any failure."""
    context = ssl.create_default_context(cafile=str(ca_file))
    context.check_hostname = False  # the default certificate is served to a name it does not hold, on purpose
    try:
        with (
            socket.create_connection((address, 443), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname=sni) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
            assert der is not None
            connection = http.client.HTTPConnection(address, 443, timeout=5)
            connection.sock = tls
            connection.request("GET", "/", headers={"Host": sni})
            response = connection.getresponse()
            if response.status != 200:
                return None
            body = response.read().decode().strip()
    except (OSError, ssl.SSLError):
        return None
    return x509.load_der_x509_certificate(der).fingerprint(_sha256()).hex(), body


def _lb_docker_id(server: ServerProcess) -> str:
    return next(c["docker_id"] for c in _containers(server, "web") if c["service"] == "lb")


def _sha256():  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives import hashes

    return hashes.SHA256()


def _fingerprint(path: Path) -> str:
    return x509.load_pem_x509_certificate(path.read_bytes()).fingerprint(_sha256()).hex()


def test_tls_termination_with_sni_default_cert_and_renewal(server: ServerProcess, tmp_path: Path) -> None:
    ca, ca_key = new_ca()
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    a_cert, a_key = _issue(tmp_path, "a", ca, ca_key, ["a.example"])
    b_cert, b_key = _issue(tmp_path, "b", ca, ca_key, ["b.example", "*.b.example"])
    server.cli("certs", "create", "site-a", "--cert", str(a_cert), "--key", str(a_key))
    server.cli("certs", "create", "site-b", "--cert", str(b_cert), "--key", str(b_key))
    listed = json.loads(server.cli("certs", "ls", "--format", "json").stdout)
    assert [(c["name"], c["sans"]) for c in listed] == [
        ("site-a", ["a.example"]),
        ("site-b", ["b.example", "*.b.example"]),
    ]

    server.cli("hosts", "create", "--driver", "local", "tls1")
    compose = _write(tmp_path, "docker-compose.yml", COMPOSE)
    rancher = _write(tmp_path, "rancher-compose.yml", RANCHER)
    server.cli("up", "-d", "-f", str(compose), "-f", str(rancher), "-s", "web")
    with server.client() as client:
        address = next(h["address"] for h in client.list_hosts() if h["name"] == "tls1")

    a = wait_until("a.example answers over TLS through the LB", lambda: _served(address, "a.example", ca_file), 180)
    a_ids = {c["docker_id"][:12] for c in _containers(server, "web") if c["service"] == "a"}
    assert a[0] == _fingerprint(a_cert) and a[1] in a_ids  # decrypted, routed to a (its hostname)
    b = wait_until("x.b.example gets site-b", lambda: _served(address, "x.b.example", ca_file), 30)
    assert b[0] == _fingerprint(b_cert)  # SNI picked it
    other = wait_until("another name gets the default", lambda: _served(address, "other.example", ca_file), 30)
    assert other[0] == _fingerprint(a_cert)

    # a renewal: the same name, a new certificate; HAProxy reloads with it, the LB container is not recreated
    lb_before = _lb_docker_id(server)
    renewed_cert, renewed_key = _issue(tmp_path, "a2", ca, ca_key, ["a.example"])
    server.cli("certs", "replace", "site-a", "--cert", str(renewed_cert), "--key", str(renewed_key))
    renewed = _fingerprint(renewed_cert)
    wait_until(
        "the renewed certificate is served",
        lambda: (_served(address, "a.example", ca_file) or ("",))[0] == renewed,
        60,
    )
    assert lb_before and _lb_docker_id(server) == lb_before

    secret_lines = [a_key.read_text().splitlines()[1], renewed_key.read_text().splitlines()[1]]
    shown = server.cli("certs", "ls", "--format", "json").stdout + server.cli("certs", "show", "site-a").stdout
    logs = "".join(p.read_text(errors="replace") for p in server.data_dir.rglob("*.log"))
    for line in secret_lines:
        assert line not in shown and line not in logs


def test_the_catalog_routed_site_serves_http_and_https_by_host_and_path(server: ServerProcess, tmp_path: Path) -> None:
    """The library's `routed-site` (issue 19 item 5): its certificate question must name a stored certificate; once
    installed, the LB routes the site host to the site and its /api path to the API, in clear and over TLS."""
    ca, ca_key = new_ca()
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert, key = _issue(tmp_path, "shop", ca, ca_key, ["shop.example"])
    server.cli("hosts", "create", "--driver", "local", "cat1")
    install = ["catalog", "install", "library/routed-site", "-s", "shop", "--answer", "SITE_HOST=shop.example"]
    refused = server.cli(*install, "--answer", "CERTIFICATE=shop", check=False)
    assert refused.returncode != 0 and "no certificate 'shop' in this environment" in refused.stderr
    server.cli("certs", "create", "shop", "--cert", str(cert), "--key", str(key))
    server.cli(*install, "--answer", "CERTIFICATE=shop", "--answer", "MESSAGE=hello-shop")
    with server.client() as client:
        address = next(h["address"] for h in client.list_hosts() if h["name"] == "cat1")

    def plain(path: str) -> str | None:
        try:
            connection = http.client.HTTPConnection(address, 80, timeout=5)
            connection.request("GET", path, headers={"Host": "shop.example"})
            response = connection.getresponse()
            return response.read().decode().strip() if response.status == 200 else None
        except OSError:
            return None

    assert wait_until("the site answers on 80", lambda: plain("/"), 240) == "hello-shop"
    assert wait_until("the API answers on 80", lambda: plain("/api/"), 30) == '{"ok":true}'
    served = wait_until("the site answers over TLS", lambda: _served(address, "shop.example", ca_file), 60)
    assert served == (_fingerprint(cert), "hello-shop")


def test_the_catalog_redis_web_app_runs_nginx_webdis_and_redis_behind_the_lb(
    server_with: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    """The library's `redis-web` (issue 19 item 5) on real software images (Debian's nginx, webdis, Redis): the LB
    routes its host name to nginx, in clear and over TLS with the certificate the question named; nginx passes
    /api/ on to webdis, which keeps a counter in Redis (each request, whichever nginx answers it, counts once); any
    other host name gets HAProxy's 503; webdis refuses FLUSHALL."""
    server = server_with(CORRAL_LOCAL_IMAGES="corral/*")  # the real images into the host, not only busybox
    ca, ca_key = new_ca()
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert, key = _issue(tmp_path, "counter", ca, ca_key, ["counter.example"])
    server.cli("certs", "create", "counter", "--cert", str(cert), "--key", str(key))
    server.cli("hosts", "create", "--driver", "local", "rw1")
    server.cli(
        *("catalog", "install", "library/redis-web", "-s", "counter"),
        *("--answer", "SITE_HOST=counter.example", "--answer", "CERTIFICATE=counter", "--answer", "MESSAGE=hi-nginx"),
    )
    with server.client() as client:
        address = next(h["address"] for h in client.list_hosts() if h["name"] == "rw1")

    def plain(path: str, host: str = "counter.example") -> tuple[int, str] | None:
        return _get(address, host, path)

    def ok(path: str) -> str | None:
        answer = plain(path)
        return answer[1] if answer and answer[0] == 200 else None

    assert wait_until("nginx answers through the LB", lambda: ok("/"), 240) == "hi-nginx"
    images = {c["service"]: c["image"] for c in _containers(server, "counter")}
    assert images == {
        "lb": "corral/haproxy:latest",
        "web": "corral/nginx:latest",
        "api": "corral/webdis:latest",
        "redis": "corral/redis:latest",
    }
    assert (
        wait_until("Redis answers through nginx and webdis", lambda: ok("/api/PING"), 120) == '{"PING":[true,"PONG"]}'
    )
    counts = [json.loads(ok("/api/INCR/hits") or "{}").get("INCR") for _ in range(4)]
    assert counts == [1, 2, 3, 4]
    assert (plain("/api/FLUSHALL") or (0,))[0] == 403
    assert ok("/api/GET/hits") == '{"GET":"4"}'
    assert (plain("/", "other.example") or (0,))[0] == 503
    served = wait_until("the site answers over TLS", lambda: _served(address, "counter.example", ca_file), 60)
    assert served == (_fingerprint(cert), "hi-nginx")
