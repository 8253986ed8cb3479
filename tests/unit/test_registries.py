"""Private registries, pure parts and the store: server spelling, which registry a reference names, credentials on
the wire, the pull failure reason, and the password encrypted at rest (a real SQLite database)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from corral.config import Settings
from corral.model.errors import Conflict, InvalidInput, Unavailable
from corral.model.registries import (
    RegistryCredential,
    credential_for,
    credentials_from_wire,
    credentials_needed,
    registry_of,
    validate_server,
)
from corral.runtime.containers import _pull_failure
from corral.server.bootstrap import ensure_default_environment, open_store
from corral.store.registries import RegistryStore
from corral.store.tables import RegistryRow


@pytest.mark.parametrize(
    ("image", "registry"),
    [
        ("busybox", "docker.io"),
        ("library/busybox:1", "docker.io"),
        ("corral/busybox:latest", "docker.io"),
        ("docker.io/library/busybox", "docker.io"),
        ("index.docker.io/x/y", "docker.io"),
        ("198.18.0.1:5000/private/busybox:1", "198.18.0.1:5000"),
        ("Registry.Example.com/team/app@sha256:abc", "registry.example.com"),
        ("localhost/app", "localhost"),
    ],
)
def test_registry_of_follows_dockers_rule(image: str, registry: str) -> None:
    assert registry_of(image) == registry


@given(
    host=st.from_regex(r"\A[a-z][a-z0-9-]{0,10}(\.[a-z][a-z0-9-]{0,10}){1,3}\Z"),
    port=st.integers(1, 65535),
    path=st.from_regex(r"\A[a-z0-9]{1,8}(/[a-z0-9]{1,8}){0,2}\Z"),
)
def test_a_valid_server_is_the_registry_of_its_images(host: str, port: int, path: str) -> None:
    if host.endswith("-") or any(label.endswith("-") for label in host.split(".")):
        return
    server = validate_server(f"{host}:{port}")
    assert registry_of(f"{server}/{path}:1") == server
    assert credential_for(f"{host}:{port}/{path}", {server: RegistryCredential(server, "u", "p")}) is not None


@pytest.mark.parametrize(
    "server", ["http://r.example.com", "r.example.com/x", "r.example.com:0", "u@r.example.com", ""]
)
def test_invalid_servers_name_the_field(server: str) -> None:
    with pytest.raises(InvalidInput) as info:
        validate_server(server)
    assert info.value.field == "server"


def test_credentials_from_wire() -> None:
    wire = [{"server": "R.example.com:5000", "username": "u", "password": "p"}]
    assert credentials_from_wire(wire) == {"r.example.com:5000": RegistryCredential("r.example.com:5000", "u", "p")}
    assert credentials_from_wire(None) == {}
    with pytest.raises(InvalidInput) as info:
        credentials_from_wire([{"server": "x", "username": "u"}])
    assert info.value.field == "registries[0]"


def test_pull_failure_names_the_registry_and_the_user_never_the_password() -> None:
    credential = RegistryCredential("198.18.0.1:5000", "alice", "hunter2")
    docker_text = 'Head "http://198.18.0.1:5000/v2/private/busybox/manifests/1": unauthorized: authentication required'
    reason = _pull_failure("198.18.0.1:5000/private/busybox:1", docker_text, credential)
    assert "registry 198.18.0.1:5000" in reason and "authentication failed" in reason and "alice" in reason
    assert "unauthorized" in reason and "hunter2" not in reason
    assert "no credentials" in _pull_failure("198.18.0.1:5000/x", docker_text, None)
    assert _pull_failure("busybox", "dial tcp: lookup registry-1.docker.io: no such host", None).startswith("dial")
    assert "hunter2" not in _pull_failure("x", "echo hunter2", credential)


def test_store_encrypts_the_password_and_reads_it_back(tmp_path: Path) -> None:
    store = open_store(Settings(data_dir=tmp_path))
    ensure_default_environment(store)
    env = store.get_environment("default")
    registries = RegistryStore(store, tmp_path)
    added = registries.add(env.id, "r.example.com:5000", "alice", "hunter2-secret")
    assert not hasattr(added, "password")
    with store.session() as session:
        raw = session.scalars(select(RegistryRow)).one().password_encrypted
    assert "hunter2-secret" not in raw
    again = RegistryStore(store, tmp_path)  # a restarted server reads the same key
    assert [c.password for c in again.credentials(env.id)] == ["hunter2-secret"]
    with pytest.raises(Conflict):
        again.add(env.id, "R.EXAMPLE.COM:5000", "bob", "x")
    (tmp_path / "registry.key").write_bytes(Fernet.generate_key())  # a replaced key cannot read old passwords
    assert RegistryStore(store, tmp_path).credentials(env.id) == []
    store.engine.dispose()


def test_a_damaged_key_file_is_a_clear_error(tmp_path: Path) -> None:
    store = open_store(Settings(data_dir=tmp_path))
    ensure_default_environment(store)
    env = store.get_environment("default")
    (tmp_path / "registry.key").write_bytes(b"not a key\n")
    with pytest.raises(Unavailable) as caught:
        RegistryStore(store, tmp_path).add(env.id, "r.example.com", "alice", "pw")
    assert "registry.key is not a valid key" in caught.value.message
    store.engine.dispose()


def test_credentials_needed_are_those_of_the_images_registries_only() -> None:
    private = RegistryCredential("registry.example.com:5000", "a", "p1")
    hub = RegistryCredential("docker.io", "b", "p2")
    unused = RegistryCredential("unused.example.com", "c", "p3")
    everything = [private, hub, unused]
    assert credentials_needed([], everything) == []
    assert credentials_needed(["registry.example.com:5000/x/app:1"], everything) == [private]
    assert credentials_needed(["busybox", "Registry.Example.com:5000/y"], everything) == [private, hub]
