"""`corral server`: open the store, mint the first admin key, start the local driver's bridge, serve HTTP.

Why the extra listener: agents of local hosts live in network namespaces and reach the server through the local
bridge's gateway address, so when the local driver is available the server listens there too (same port).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import sys
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from corral.config import Settings
from corral.model.errors import CorralError
from corral.provision.local import LocalHostDriver
from corral.server.app import create_app
from corral.server.bootstrap import ADMIN_ENV_FILE, ensure_admin_key, ensure_default_environment, open_store

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


def run_server(host: str, port: int, settings: Settings, extend: Callable[[FastAPI, str], None] | None = None) -> int:
    """Serve until stopped. `extend(app, api_url)` may add routes (the web UI) that reach `/v1` at `api_url`."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        store = open_store(settings)
        created = ensure_admin_key(store, settings.data_dir)
        if created is not None:
            ensure_default_environment(store, settings)
        sockets = [_listen(host, port)]
        port = sockets[0].getsockname()[1]
        driver = local_driver_for(settings)
        agent_url = ""
        if driver is not None:
            try:
                gateway = driver.ensure_bridge()
            except CorralError as exc:
                log.warning("local host driver disabled: %s", exc.message)
                driver = None
            else:
                agent_url = f"http://{gateway}:{port}"
                if host not in ("0.0.0.0", "::", gateway):
                    sockets.append(_listen(gateway, port))
    except CorralError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: cannot listen on {host}:{port}: {exc.strerror}", file=sys.stderr)
        return 1
    if created is not None:
        access_key, secret = created
        print("Created the admin API key (shown only this once):", flush=True)
        print(f"  CORRAL_ACCESS_KEY={access_key}\n  CORRAL_SECRET_KEY={secret}", flush=True)
        print(f"  saved to {settings.data_dir / ADMIN_ENV_FILE} (mode 0600)", flush=True)
    app = create_app(settings, store, driver, agent_url)
    if extend is not None:
        loopback = host in ("0.0.0.0", "::", "localhost") or host.startswith("127.")
        extend(app, f"http://127.0.0.1:{port}" if loopback else f"http://{host}:{port}")
    print(
        f"Corral server listening on http://{host}:{port}" + (f" (agents: {agent_url})" if agent_url else ""),
        flush=True,
    )
    config = uvicorn.Config(app, log_level="warning", ws_max_size=16 * 1024 * 1024, timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    server.run(sockets=sockets)
    return 0
