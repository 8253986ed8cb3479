"""First start of a server: data directory, database schema, and the admin API key in `admin.env`.

Why: there is no anonymous access, so the very first start must hand the operator a key. Only the digest is
stored; the key pair is written to CORRAL_DATA_DIR/admin.env with mode 0600 (never printed: server output ends up
in logs), together with the server's URL and CA file, so `set -a; . admin.env` is all a CLI on this machine needs.
The data directory holds keys and secrets: it and the files in it are made 0700/0600 at every start, whatever
modes they had before (the local hosts' engine data roots under `hosts/` keep Docker's own modes).
"""

from __future__ import annotations

import os
from pathlib import Path

from corral.config import Settings
from corral.model.entities import KeyKind, Orchestration
from corral.model.network import NetworkSettings, random_vni
from corral.store.access import AccessStore
from corral.store.database import migrate, open_engine
from corral.store.repository import Store

ADMIN_ENV_FILE = "admin.env"
DEFAULT_ENVIRONMENT = "default"


PRIVATE_SUBDIRS = ("tls", "agents")  # walked to fix modes; `hosts/` (engine data roots) is not


def secure_data_dir(data_dir: Path) -> None:
    """The data dir 0700 and its files 0600, with the subdirectories holding keys and credentials."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(data_dir, 0o700)
    for entry in data_dir.iterdir():
        if entry.is_symlink():
            continue
        if entry.is_file():
            os.chmod(entry, 0o600)
        elif entry.is_dir():
            os.chmod(entry, 0o700)
            if entry.name in PRIVATE_SUBDIRS:
                for path in entry.rglob("*"):
                    if not path.is_symlink():
                        os.chmod(path, 0o700 if path.is_dir() else 0o600)


def open_store(settings: Settings) -> Store:
    secure_data_dir(settings.data_dir)
    engine = open_engine(settings.resolved_database_url)
    migrate(engine)
    secure_data_dir(settings.data_dir)  # the SQLite files just created (its -wal/-shm follow the db's mode)
    return Store(engine)


def _write_env(path: Path, values: dict[str, str]) -> None:
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("".join(f"{key}={value}\n" for key, value in values.items()))
    os.chmod(temp, 0o600)
    os.replace(temp, path)


def read_env(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            values[key] = value
    return values


def ensure_admin_key(store: Store, data_dir: Path) -> tuple[str, str] | None:
    """Create the first admin key pair on an empty database only; returns it (only on that first time).

    A bootstrap key an admin removed stays removed across restarts (CVE-2019-11202): once the database has any
    key, user or environment, nothing is created."""
    if store.count_api_keys(None) > 0 or store.list_environments() or AccessStore(store).count_users() > 0:
        return None
    access_key, secret = store.create_api_key(KeyKind.ADMIN, description="created on first start")
    _write_env(data_dir / ADMIN_ENV_FILE, {"CORRAL_ACCESS_KEY": access_key, "CORRAL_SECRET_KEY": secret})
    return access_key, secret


def update_admin_env(data_dir: Path, url: str, ca_file: Path | None) -> Path | None:
    """Point admin.env at this start's URL and CA file (the key pair in it is kept); None if there is none."""
    path = data_dir / ADMIN_ENV_FILE
    try:
        values = read_env(path)
    except FileNotFoundError:
        return None
    values["CORRAL_URL"] = url
    values.pop("CORRAL_CA_FILE", None)
    if ca_file is not None:
        values["CORRAL_CA_FILE"] = str(ca_file)
    _write_env(path, values)
    return path


def ensure_default_environment(store: Store, settings: Settings | None = None) -> None:
    """A fresh server has one Cattle environment, `default`, as the system we model had; its overlay subnet is
    `CORRAL_DEFAULT_SUBNET`."""
    if not store.list_environments():
        network = NetworkSettings(subnet=(settings or Settings()).default_subnet, vni=random_vni())
        store.create_environment(DEFAULT_ENVIRONMENT, Orchestration.CATTLE, "created on first start", network)
