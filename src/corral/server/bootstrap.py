"""First start of a server: data directory, database schema, and the admin API key printed once.

Why: there is no anonymous access, so the very first start must hand the operator a key. Only the digest is
stored; the key pair is printed once and written to CORRAL_DATA_DIR/admin.env with mode 0600.
"""

from __future__ import annotations

import os
from pathlib import Path

from corral.config import Settings
from corral.model.entities import KeyKind, Orchestration
from corral.model.network import NetworkSettings, random_vni
from corral.store.database import migrate, open_engine
from corral.store.repository import Store

ADMIN_ENV_FILE = "admin.env"
DEFAULT_ENVIRONMENT = "default"


def open_store(settings: Settings) -> Store:
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    engine = open_engine(settings.resolved_database_url)
    migrate(engine)
    return Store(engine)


def ensure_admin_key(store: Store, data_dir: Path) -> tuple[str, str] | None:
    """Create the first admin key pair if there is none; returns it (only on that first time)."""
    if store.count_api_keys(KeyKind.ADMIN) > 0:
        return None
    access_key, secret = store.create_api_key(KeyKind.ADMIN, description="created on first start")
    path = data_dir / ADMIN_ENV_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(f"CORRAL_ACCESS_KEY={access_key}\nCORRAL_SECRET_KEY={secret}\n")
    os.chmod(path, 0o600)
    return access_key, secret


def ensure_default_environment(store: Store, settings: Settings | None = None) -> None:
    """A fresh server has one Cattle environment, `default`, as the system we model had; its overlay subnet is
    `CORRAL_DEFAULT_SUBNET`."""
    if not store.list_environments():
        network = NetworkSettings(subnet=(settings or Settings()).default_subnet, vni=random_vni())
        store.create_environment(DEFAULT_ENVIRONMENT, Orchestration.CATTLE, "created on first start", network)
