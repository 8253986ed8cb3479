"""The role matrix: every /v1 route, called by every role, answers as the policy table says.

Routes come from the application itself (tests/security/routes.py, the same list the OpenAPI document gives), so
a new route is called here without anyone writing it down. Expected outcomes come from the table
(server/security/access_rules.py) and the role matrix (model/access.py):
- allowed: anything but 401/403 and never a 500 (a 404 only once an earlier allowed call removed the object);
- the role may not: 403;
- a user of another environment: 404, as for an id that does not exist;
- admin-only routes: 403 for every user that is not an admin.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient

from corral.model import protocol
from corral.model.access import Role, permits
from corral.model.builds import BuildRecord, BuildSpec
from corral.server.hub.builds import Build
from corral.server.security.access_rules import RULES, RuleKind
from corral.server.security.tls import new_ca, new_server_certificate
from tests.api.conftest import basic
from tests.api.test_api import register
from tests.security.conftest import ROLES, People, add_user
from tests.security.routes import v1_routes

COMPOSE = "version: '2'\nservices:\n  web:\n    image: corral/busybox\n"
SKIPPED = {("POST", "/v1/logout")}  # ends the caller's session: tests/security/test_cves.py covers it
LAST = ("DELETE", "/v1/environments/{ref}")
MATRIX_IMAGE = "sha256:" + "ab" * 32
HOST_REMOVAL = ("DELETE", "/v1/hosts/{host_id}")  # late: the volumes its agent reports go with it
# a USER route, but `access_key` is an environment key of `default` (the admin's): besides the admin only an owner
# there revokes it, its other members are refused, and a stranger is told it does not exist
KEY_REVOCATION = ("DELETE", "/v1/keys/{access_key}")


@contextmanager
def objects(api: TestClient) -> Iterator[dict[str, str]]:
    """One object of each kind in environment `default`, named by the path parameter that takes its id, with
    the host's (fake) agent connected so that the stack's container is placed."""
    host = register(api)
    with api.websocket_connect("/v1/agent", headers=basic(host["access_key"], host["secret_key"])) as agent:
        agent.send_text(protocol.Message(protocol.HELLO, {"facts": {"arch": "amd64", "cpus": 2}}).encode())
        agent.send_text(protocol.Message(protocol.SNAPSHOT, {"containers": []}).encode())
        in_use = {"name": "matrix", "driver": "local", "containers": ["shop-web-1"]}  # a removal answers 409 at once
        agent.send_text(protocol.Message(protocol.VOLUMES, {"volumes": [in_use]}).encode())
        image = {"id": MATRIX_IMAGE, "tags": ["shop:1"], "containers": ["shop-web-1"]}  # removal: 409 at once
        agent.send_text(protocol.Message(protocol.IMAGE_LIST, {"images": [image]}).encode())
        yield _created(api, host)


def _created(api: TestClient, host: dict[str, Any]) -> dict[str, str]:
    stack = api.put("/v1/stacks", json={"name": "shop", "compose": COMPOSE, "environment": "default"})
    assert stack.status_code == 201, stack.text
    service = stack.json()["services"][0]
    containers = _containers(api)
    registry = api.post(
        "/v1/environments/default/registries", json={"server": "r.example.com", "username": "a", "password": "pw"}
    ).json()
    catalog = next(c for c in api.get("/v1/catalogs").json()["data"] if not c["environment_id"])
    templates = api.get("/v1/environments/default/templates").json()["data"]
    key = api.post("/v1/environments/default/keys", json={"role": "read-only"}).json()
    secret = api.post("/v1/environments/default/secrets", json={"name": "matrix", "value": "s3cret"}).json()
    ca, ca_key = new_ca()  # a certificate of the same name, for the certificates routes
    cert, cert_key = new_server_certificate(ca, ca_key, ["matrix.example"])
    pem = serialization.Encoding.PEM
    certificate = {
        "name": "matrix",
        "cert": cert.public_bytes(pem).decode(),
        "key": cert_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode(),
    }
    assert api.post("/v1/environments/default/certificates", json=certificate).status_code == 201
    add_user(api, "victim", "default", "read-only")
    return {
        "ref": "default",
        "host_id": host["host_id"],
        "token_id": host["token"]["id"],
        "stack_id": stack.json()["id"],
        "service_id": service["id"],
        "container_id": containers[0]["id"] if containers else "none",
        "build_id": _build(api, stack.json()["id"]),
        "registry_id": registry["id"],
        "name": secret["name"],
        "catalog_id": catalog["id"],
        "catalog": catalog["name"],
        "template": templates[0]["name"] if templates else "none",
        "access_key": key["access_key"],
        "user_ref": "victim",
        "subject_kind": "user",
        "subject": "victim",
        "image": MATRIX_IMAGE,
    }


def _build(api: TestClient, stack_id: str) -> str:
    """A finished build of the stack, as the build coordinator keeps it (building needs a real engine)."""
    image = "corral-build/shop-web:000000000000"
    record = BuildRecord(BuildSpec("."), "0" * 64, image)
    build = Build(image, "x86_64", stack_id, "web", record, state="built")
    api.app.state.builds.history[build.id] = build  # type: ignore[attr-defined]
    return build.id


def _containers(api: TestClient) -> list[dict[str, Any]]:
    """The stack's container slots, once the orchestrator has written them (placed or not)."""
    deadline = time.monotonic() + 30
    while True:
        containers: list[dict[str, Any]] = api.get("/v1/containers", params={"environment": "default"}).json()["data"]
        if containers or time.monotonic() > deadline:
            return containers
        time.sleep(0.1)


def _expected(method: str, path: str, role: str | None, *, stranger: bool = False, global_catalog: bool) -> int:
    """0 = allowed, else the status the call must get."""
    rule = RULES[(method, path)]
    if (method, path) == KEY_REVOCATION and role != "admin":
        return 404 if stranger else 0 if role == Role.OWNER else 403
    if rule.kind in (RuleKind.PUBLIC, RuleKind.USER):
        return 0
    if role == "admin":
        return 0
    if rule.kind is RuleKind.ADMIN:
        return 403
    if global_catalog:  # shared by every environment: read by anyone, changed by admins
        return 0 if rule.action.value == "read" else 403
    if stranger:
        return 404
    assert rule.resource is not None and role is not None
    return 0 if permits(Role(role), rule.resource, rule.action) else 403


def _call(api: TestClient, method: str, path: str, values: dict[str, str], headers: dict[str, str]) -> Any:
    url = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)
    has_env_param = "{ref}" in path or re.search(r"\{(host|stack|service|container|registry|token)_id\}", path)
    params = {} if has_env_param else {"environment": "default"}
    body = {"environment": "default"} if method in ("POST", "PUT", "PATCH") else None
    return api.request(method, url, params=params, json=body, headers=headers)


def test_every_route_with_every_role_answers_as_the_table_says(api: TestClient, people: People) -> None:
    with objects(api) as values:
        _check_every_route(api, people, values)


def _check_every_route(api: TestClient, people: People, values: dict[str, str]) -> None:
    routes = sorted(
        (r for r in v1_routes(api.app) if r[0] != "WS" and r not in SKIPPED),  # type: ignore[arg-type]
        key=lambda r: (r == LAST, r == HOST_REMOVAL, r[0] == "DELETE", r[1]),
    )
    callers: list[tuple[str, dict[str, str], bool]] = [
        ("stranger", people.stranger, True),
        *((role, people.by_role[role], False) for role in reversed(ROLES)),
        ("admin", api.admin_auth, False),  # type: ignore[attr-defined]
    ]
    mismatches: list[str] = []
    for method, path in routes:
        if RULES[(method, path)].kind is RuleKind.PUBLIC:
            continue
        removed = False
        for name, headers, stranger in callers:
            global_catalog = "{catalog_id}" in path
            expected = _expected(
                method, path, None if stranger else name, stranger=stranger, global_catalog=global_catalog
            )
            response = _call(api, method, path, values, headers)
            status = response.status_code
            if status >= 500 and status != 503:
                mismatches.append(f"{name} {method} {path}: {status} {response.text[:200]}")
            elif expected == 0:
                ambiguous_404 = removed or RULES[(method, path)].kind is RuleKind.USER or "{template}" in path
                if status in (401, 403) or (status == 404 and not ambiguous_404):
                    mismatches.append(f"{name} {method} {path}: allowed, got {status} {response.text[:200]}")
                removed = removed or (method == "DELETE" and status < 300)
            elif status != expected:
                mismatches.append(f"{name} {method} {path}: expected {expected}, got {status} {response.text[:200]}")
    assert not mismatches, "\n".join(mismatches)


def test_websockets_follow_the_table(api: TestClient, people: People) -> None:
    sockets = {path for method, path in v1_routes(api.app) if method == "WS"}  # type: ignore[arg-type]
    assert sockets == {"/v1/agent", "/v1/events", "/v1/containers/{container_id}/exec"}, "a new socket: test it here"
    with objects(api) as values:
        _check_sockets(api, people, f"/v1/containers/{values['container_id']}/exec?cmd=sh")


def _check_sockets(api: TestClient, people: People, exec_url: str) -> None:
    for role, headers in people.by_role.items():
        allowed = permits(
            Role(role),
            RULES[("WS", "/v1/containers/{container_id}/exec")].resource,
            RULES[  # type: ignore[arg-type]
                ("WS", "/v1/containers/{container_id}/exec")
            ].action,
        )
        code = _close_code(api, exec_url, headers)
        assert (code not in (4401, 4403, 4404)) if allowed else code == 4403, (role, code)
    assert _close_code(api, exec_url, people.stranger) == 4404
    assert _close_code(api, "/v1/events?environment=default", people.stranger) == 4404
    assert _close_code(api, "/v1/agent", people.by_role["owner"]) == 4401  # only an agent's own key


def _close_code(api: TestClient, url: str, headers: dict[str, str]) -> int | None:
    from starlette.websockets import WebSocketDisconnect

    try:
        with api.websocket_connect(url, headers=headers) as ws:
            ws.receive_text()
            ws.receive_text()
    except WebSocketDisconnect as exc:
        return exc.code
    return None
