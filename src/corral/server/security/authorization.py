"""Who may call which route: the one policy check every /v1 route and websocket goes through.

Why one table: a check written in each handler is the check someone forgets (Rancher's CVE-2017-7297 let any user
turn auth off). Every route is declared in `RULES` (server/security/access_rules.py) by method and path; the route's
environment is found from its path parameters (a host, stack, service, container, registry, token, catalog or key
id), its `environment` query or body field; the caller's role there decides (model/access.py). An id in an
environment the caller has no role in answers 404, as an id that does not exist (CVE-2021-25320). A route missing
from the table is admin-only at run time and fails tests/security/test_route_rules.py.

Lists without an environment: admins see every environment; any other caller is given the one environment they
have (an environment key always its own), or is asked to name one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import Request, WebSocket
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from corral.model.access import Action, Role, permits
from corral.model.entities import KeyKind, Principal
from corral.model.errors import CorralError, Forbidden, InvalidInput, NotFound
from corral.server.security.access_rules import RULES, Rule, RuleKind
from corral.server.security.auth import (
    ACCESS_SCOPE_KEY,
    PRINCIPAL_SCOPE_KEY,
    TOUCHED_ENVIRONMENT_KEY,
    authenticate_request,
)


@dataclass(frozen=True)
class Access:
    principal: Principal | None  # None: a public route, called without credentials
    environment_id: str | None  # the environment the call touches (None: global, or every one for an admin)
    role: Role | None


def rule_for(method: str, path: str) -> Rule | None:
    return RULES.get((method.upper(), path))


def role_in(app_state: Any, principal: Principal, environment_id: str) -> Role | None:
    """The caller's role in one environment: admins own everything; keys bound to an environment carry theirs."""
    if principal.admin:
        return Role.OWNER
    if principal.user_id is None and principal.kind not in (KeyKind.ENVIRONMENT, KeyKind.SERVICE):
        return None
    return roles_of(app_state, principal).get(environment_id)


def roles_of(app_state: Any, principal: Principal) -> dict[str, Role]:
    """Every environment the caller may see, with the role there (admins: not listed, they see all)."""
    if principal.kind in (KeyKind.ENVIRONMENT, KeyKind.SERVICE):
        if not principal.environment_id or not principal.role:
            return {}
        role: Role | None = Role(principal.role)
        if principal.user_id is not None:  # never more than its creator holds there now (demoted, removed)
            creator = app_state.access.get_user(principal.user_id)
            held = Role.OWNER if creator.admin else _user_roles(app_state, principal).get(principal.environment_id)
            role = min(role, held, key=lambda r: r.rank) if held is not None else None
        return {principal.environment_id: role} if role is not None else {}
    if principal.user_id is None:
        return {}
    return _user_roles(app_state, principal)


def _user_roles(app_state: Any, principal: Principal) -> dict[str, Role]:
    """The roles of the user behind a key: their memberships and their directory groups'."""
    assert principal.user_id is not None
    identity = getattr(app_state, "ldap", None)
    groups = identity.groups_of(principal.username) if identity is not None and principal.directory_user else ()
    result: dict[str, Role] = app_state.access.roles_of(principal.user_id, groups)
    return result


def visible_environment_ids(request: Request) -> set[str] | None:
    """The environments a list may show (None: all of them, for an admin)."""
    access = request.scope.get(ACCESS_SCOPE_KEY)
    principal = access.principal if isinstance(access, Access) else request.scope.get(PRINCIPAL_SCOPE_KEY)
    if not isinstance(principal, Principal):
        return set()
    if principal.admin:
        return None
    return set(roles_of(request.app.state, principal))


def decide(app_state: Any, principal: Principal, rule: Rule, environment_id: str | None, found: bool) -> Access:
    """Pure-ish core of the check (the role lookup reads the store): raises when the call is refused."""
    if principal.kind is KeyKind.AGENT:
        raise Forbidden("host credentials may only hold their host's agent connection")
    if rule.kind is RuleKind.ADMIN or (rule.kind is RuleKind.ENVIRONMENT and not found):
        if not principal.admin:
            raise Forbidden("only an administrator may do this")
        return Access(principal, environment_id, Role.OWNER)
    if rule.kind is RuleKind.USER:
        return Access(principal, environment_id, None)
    if environment_id is None:  # a global resource (a catalog shared by all): read by anyone, changed by admins
        if rule.action is Action.WRITE and not principal.admin:
            raise Forbidden("only an administrator may change resources shared by every environment")
        return Access(principal, None, None)
    role = role_in(app_state, principal, environment_id)
    if role is None:
        raise NotFound("not found (or not in an environment you may see)", field=rule.resource_name)
    assert rule.resource is not None
    if not permits(role, rule.resource, rule.action):
        raise Forbidden(f"the {role.value} role may not {rule.action.value} {rule.resource.value} in this environment")
    return Access(principal, environment_id, role)


async def enforce(connection: HTTPConnection) -> None:
    """The app-wide dependency (server/app.py) in front of every /v1 route and websocket. A refused websocket
    is closed with 4000 + the HTTP status as its close code."""
    if not connection.url.path.startswith("/v1/"):
        return
    if connection.scope["type"] != "websocket":
        await authorize(connection)
        return
    try:
        if not same_origin(connection):  # CVE-2019-13209: a page elsewhere must not drive our sockets
            raise Forbidden("websocket from a foreign origin refused")
        await authorize(connection)
    except CorralError as exc:
        raise SocketRefused(4000 + exc.status, exc.message[:120]) from exc


class SocketRefused(Exception):
    """A websocket the policy refused: accepted, then closed with this code, so clients can read why."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


async def refuse_socket(websocket: WebSocket, exc: Exception) -> None:
    assert isinstance(exc, SocketRefused)
    await websocket.accept()
    await websocket.close(code=exc.code, reason=exc.reason)


def same_origin(connection: HTTPConnection) -> bool:
    """No Origin (a non-browser client) or this server's own host."""
    origin = connection.headers.get("origin")
    if not origin:
        return True
    return urlsplit(origin).netloc.lower() == connection.headers.get("host", "").lower()


async def authorize(connection: HTTPConnection) -> Access:
    """Check the current request or websocket against its route's rule; the result goes into the scope."""
    scope = connection.scope
    route = scope.get("route")
    path = getattr(route, "path_format", "")  # `{image}` for a route declared `{image:path}`, as in the table
    method = "WS" if scope["type"] == "websocket" else str(scope.get("method", "GET"))
    rule = rule_for(method, path)
    if rule is None:
        rule = Rule(RuleKind.ADMIN)  # undeclared: admins only (and a failing test)
    if rule.kind in (RuleKind.PUBLIC, RuleKind.AGENT):  # the hub checks an agent's own key and host
        return Access(None, None, None)
    principal = scope.get(PRINCIPAL_SCOPE_KEY)
    if not isinstance(principal, Principal):
        address = connection.client.host if connection.client else ""
        principal = await authenticate_request(connection.app.state, connection.headers.get("authorization"), address)
        scope[PRINCIPAL_SCOPE_KEY] = principal
    try:
        environment_id, found = await _environment_of(connection, rule, principal)
    except NotFound:
        if not principal.admin:
            raise
        environment_id, found = None, True  # an admin's call: the handler answers for a missing id (404 or 422)
    scope[TOUCHED_ENVIRONMENT_KEY] = environment_id  # the audit log files a refused call under it too
    access = await run_in_threadpool(decide, connection.app.state, principal, rule, environment_id, found)
    scope[ACCESS_SCOPE_KEY] = access
    return access


async def _environment_of(connection: HTTPConnection, rule: Rule, principal: Principal) -> tuple[str | None, bool]:
    """(environment id, whether the route names one). A global resource is (None, True)."""
    if rule.kind is not RuleKind.ENVIRONMENT:
        return None, True
    state = connection.app.state
    for name, value in connection.path_params.items():
        resolver = RESOLVERS.get(name)
        if resolver is not None:
            return await run_in_threadpool(_resolved, resolver, state, str(value), principal), True
    ref = connection.query_params.get("environment")
    if ref is None and rule.body_environment and isinstance(connection, Request):
        ref = await _body_environment(connection)
    if ref is None:
        ref = rule.default_environment
    if ref:
        return await run_in_threadpool(_resolved, _environment, state, ref, principal), True
    if rule.list_optional:
        if principal.admin:
            return None, True  # an admin's list spans every environment
        only = await run_in_threadpool(_only_environment, state, principal)
        _set_query(connection, "environment", only)
        return only, True
    return None, False


def _resolved(resolver: Callable[[Any, str], str | None], state: Any, value: str, principal: Principal) -> str | None:
    """Resolve an id to its environment; an unknown id and an id the caller may not see both read as 404."""
    try:
        return resolver(state, value)
    except CorralError:  # NotFound, or an outage (503)
        raise
    except Exception as exc:
        raise NotFound(f"{value!r} not found") from exc


def _only_environment(state: Any, principal: Principal) -> str:
    environments = sorted(roles_of(state, principal))
    if len(environments) == 1:
        return environments[0]
    if not environments:
        raise Forbidden("you are not a member of any environment")
    raise InvalidInput("name an environment (--env or ?environment=): you are a member of several", field="environment")


async def _body_environment(request: Request) -> str | None:
    try:
        body = json.loads(await request.body() or b"{}")
    except (ValueError, UnicodeDecodeError):
        return None  # the handler's validation reports the body
    value = body.get("environment") if isinstance(body, dict) else None
    return str(value) if isinstance(value, str) and value else None


def _set_query(connection: HTTPConnection, name: str, value: str) -> None:
    """Give a list route the environment the caller is limited to (read before the handler's parameters)."""
    pairs = [(k, v) for k, v in parse_qsl(connection.scope.get("query_string", b"").decode()) if k != name]
    connection.scope["query_string"] = urlencode([*pairs, (name, value)]).encode()
    if hasattr(connection, "_query_params"):
        del connection._query_params


# -- resolvers: from an id in the path to its environment (None: a resource shared by all) ------------------------


def _environment(state: Any, ref: str) -> str | None:
    return str(state.store.get_environment(ref).id)


def _host(state: Any, host_id: str) -> str | None:
    return str(state.store.get_host(host_id).environment_id)


def _stack(state: Any, stack_id: str) -> str | None:
    return str(state.stacks.get_stack(stack_id).environment_id)


def _service(state: Any, service_id: str) -> str | None:
    return str(state.stacks.get_service(service_id).environment_id)


def _container(state: Any, container_id: str) -> str | None:
    """A slot's id, or a standalone container's (its service's id: server/views/standalone_views.py)."""
    try:
        return str(state.stacks.get_slot(container_id).slot.environment_id)
    except NotFound:
        return str(state.stacks.get_service(container_id).environment_id)


def _registry(state: Any, registry_id: str) -> str | None:
    return str(state.registries.get(registry_id).environment_id)


def _token(state: Any, token_id: str) -> str | None:
    for token in state.store.list_registration_tokens():
        if token.id == token_id:
            return str(token.environment_id)
    raise NotFound(f"registration token {token_id!r} not found", field="token")


def _catalog(state: Any, catalog_id: str) -> str | None:
    source = state.catalogs.sources.get(catalog_id)
    return str(source.environment_id) or None


RESOLVERS: dict[str, Callable[[Any, str], str | None]] = {
    "ref": _environment,
    "host_id": _host,
    "stack_id": _stack,
    "service_id": _service,
    "container_id": _container,
    "registry_id": _registry,
    "token_id": _token,
    "catalog_id": _catalog,
}


def require_user(principal: Principal) -> str:
    """The user behind a call (account or session key); keys without a user cannot manage their own keys."""
    if principal.user_id is None:
        raise InvalidInput("this call needs a user's key (an account key or a UI session); this key has no user")
    return principal.user_id
