"""`corral server`: open the store, mint the first admin key, start the local driver's bridge, serve HTTPS.

TLS on every listener (loopback included) with the server's own CA (server/security/tls.py), unless `--insecure-http`.
The admin key pair is never printed: it is in `admin.env`, which also names the URL and the CA file to trust.

Why the extra listener: agents of local hosts live in network namespaces and reach the server through the local
bridge's gateway address, so when the local driver is available the server listens there too (same port).
"""

from __future__ import annotations

import faulthandler
import logging
import os
import shutil
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import uvicorn
from fastapi import FastAPI

from corral.config import Settings
from corral.model.errors import CorralError
from corral.provision.local import LocalHostDriver
from corral.server.app import create_app
from corral.server.bootstrap import ensure_admin_key, ensure_default_environment, open_store, update_admin_env
from corral.server.security.tls import ServerTls, server_names, split_sans
from corral.server.shared.advertise import (
    advertised_url,
    checked_advertise_url,
    loopback_warning,
    primary_address,
    url_host,
)

log = logging.getLogger("corral.server")


def local_driver_for(settings: Settings) -> LocalHostDriver | None:
    if not settings.local_driver:
        return None
    search_path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"])
    missing = [
        tool for tool in ("ip", "dockerd", "nsenter", "iptables") if shutil.which(tool, path=search_path) is None
    ]
    if os.geteuid() != 0 or missing:
        why = "not running as root" if os.geteuid() != 0 else f"missing {', '.join(missing)}"
        log.warning("local host driver disabled: %s", why)
        return None
    return LocalHostDriver(
        root_dir=settings.local_hosts_dir,
        bridge=settings.local_bridge,
        subnet=settings.local_subnet,
        prefix=settings.local_prefix,
        image_patterns=[p.strip() for p in settings.local_images.split(",") if p.strip()],
        source_docker_host=settings.docker_host,
    )


def _listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def server_tls(settings: Settings, listen: list[str]) -> ServerTls:
    """The server's certificate (made or checked now) for its names and the addresses it listens on."""

    def given(value: str) -> Path | None:
        return Path(value).expanduser() if value else None

    tls = ServerTls(
        settings.data_dir,
        cert_file=given(settings.tls_cert),
        key_file=given(settings.tls_key),
        ca_file=given(settings.tls_ca),
    )
    tls.ensure(server_names(listen, split_sans(settings.tls_sans)))
    return tls


def run_server(
    host: str,
    port: int,
    settings: Settings,
    extend: Callable[[FastAPI, str, Path | None], None] | None = None,
) -> int:
    """Serve until stopped. `extend(app, api_url, ca_file)` may add routes (the web UI) that reach `/v1` at
    `api_url`, trusting `ca_file` (None for plain HTTP)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1 <pid>`: every thread's stack on stderr
    scheme = "http" if settings.insecure_http else "https"
    try:
        if settings.advertise_url:  # refused before anything is made
            checked_advertise_url(settings.advertise_url, scheme)
        primary = primary_address() if host in ("0.0.0.0", "::") and not settings.advertise_url else None
        store = open_store(settings)
        created = ensure_admin_key(store, settings.data_dir)
        if created is not None:
            ensure_default_environment(store, settings)
        sockets = [_listen(host, port)]
        port = sockets[0].getsockname()[1]
        driver = local_driver_for(settings)
        agent_url = ""
        public_url = advertised_url(scheme, host, port, settings.advertise_url, primary)
        settings = settings.model_copy(update={"advertise_url": public_url})
        listen = [host, urlsplit(public_url).hostname or host]  # the certificate is for the advertised name too
        if driver is not None:
            try:
                gateway = driver.ensure_bridge()
            except CorralError as exc:
                log.warning("local host driver disabled: %s", exc.message)
                driver = None
            else:
                agent_url = f"{scheme}://{url_host(gateway)}:{port}"
                listen.append(gateway)
                if host not in ("0.0.0.0", "::", gateway):
                    sockets.append(_listen(gateway, port))
        tls = None if settings.insecure_http else server_tls(settings, listen)
    except CorralError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: cannot listen on {host}:{port}: {exc.strerror}", file=sys.stderr)
        return 1
    local = host in ("0.0.0.0", "::", "localhost") or host.startswith("127.")
    api_url = f"{scheme}://127.0.0.1:{port}" if local else f"{scheme}://{url_host(host)}:{port}"
    ca_file = tls.ca_path if tls is not None else None
    admin_env = update_admin_env(settings.data_dir, api_url, ca_file)
    app = create_app(settings, store, driver, agent_url, tls, warm_up=True)
    if extend is not None:
        extend(app, api_url, ca_file)
    print(
        f"Corral server listening on {scheme}://{url_host(host)}:{port}"
        + (f" (agents: {agent_url})" if agent_url else ""),
        flush=True,
    )
    if tls is not None:
        print(f"  CA {tls.ca_digest} ({ca_file}); join tokens carry this digest", flush=True)
    else:
        where = "on loopback only" if _is_loopback(host) else f"on {host}: keys and secrets cross the network in clear"
        print(f"WARNING: --insecure-http: serving plain HTTP {where}", flush=True)
    print(
        f"  Agents of other machines: {settings.advertise_url} (`corral tokens create` prints the command)", flush=True
    )
    warning = loopback_warning(settings.advertise_url)
    if warning is not None:
        print(f"  Note: {warning}", flush=True)
    if admin_env is not None:
        what = "Created the admin API key" if created is not None else "Admin API key"
        print(f"  {what}: in {admin_env} (mode 0600; `set -a; . {admin_env}; set +a` for the CLI)", flush=True)
    config = uvicorn.Config(
        app,
        log_level="warning",
        ws_max_size=16 * 1024 * 1024,
        timeout_graceful_shutdown=5,
        ssl_context_factory=(lambda _config, _default: tls.context()) if tls is not None else None,
    )
    server = uvicorn.Server(config)
    server.run(sockets=sockets)
    return 0
