"""REST routes of access control (issue 16): sign-in, users, environment members, API keys, the audit log.

Why thin: who may call each route is declared in server/security/access_rules.py and checked before the handler runs;
these handlers validate input, apply the one rule the table cannot express (nobody grants a role above their own,
CVE-2022-31247) and render views. A key's secret is returned once, by the call that creates it.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from corral.model.access import (
    Action,
    KeyInfo,
    Resource,
    Role,
    User,
    may_grant,
    parse_role,
    permits,
    validate_password,
    validate_username,
)
from corral.model.admission import parse_lifetime
from corral.model.entities import KeyKind, Principal
from corral.model.errors import Forbidden, InvalidInput, NotFound, TooManyRequests, Unauthorized
from corral.server.security.audit import ACTOR_SCOPE_KEY
from corral.server.security.auth import client_address, require_admin, throttle_of
from corral.server.security.authorization import require_user, role_in, roles_of, visible_environment_ids
from corral.server.security.guard import FORWARD_TOKEN, FORWARDED_FOR
from corral.server.shared.bodies import Strict
from corral.store.access import AccessStore

router = APIRouter(prefix="/v1")
Caller = Annotated[Principal, Depends(require_admin)]
MAX_AUDIT_PAGE = 500


class LoginBody(Strict):
    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)


class UserCreate(Strict):
    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)
    admin: bool = False


class UserUpdate(Strict):
    disabled: bool | None = None
    admin: bool | None = None
    password: str | None = Field(default=None, max_length=1024)


class MemberSet(Strict):
    user: str | None = Field(default=None, max_length=64)  # a user name (or id)
    group: str | None = Field(default=None, max_length=255)  # an LDAP group name
    role: str = Field(max_length=16)


class KeyCreate(Strict):
    description: str = Field(default="", max_length=2000)
    expires: str = Field(default="never", max_length=32)  # "30d", "never"


class EnvironmentKeyCreate(KeyCreate):
    role: str = Field(default=Role.READ_ONLY.value, max_length=16)


def access_of(request: Request) -> AccessStore:
    store: AccessStore = request.app.state.access
    return store


def user_view(user: User) -> dict[str, Any]:
    return asdict(user)


def key_view(key: KeyInfo) -> dict[str, Any]:
    return asdict(key)


def _expires_at(text: str) -> float | None:
    lifetime = parse_lifetime(text)
    return time.time() + lifetime if lifetime is not None else None


# -- sign-in ----------------------------------------------------------------------------------------------------


@router.post("/login", status_code=201)
async def login(request: Request, body: LoginBody) -> dict[str, Any]:
    """A user name and password for a session key pair (the UI keeps it server-side, never in the browser)."""
    request.scope[ACTOR_SCOPE_KEY] = body.username[:64]
    throttle = throttle_of(request.app.state)
    address = client_address(
        request.app.state,
        request.client.host if request.client else "",
        request.headers.get(FORWARDED_FOR.decode()),  # the UI names the browser it signs in for
        request.headers.get(FORWARD_TOKEN.decode()),
    )
    wait = throttle.retry_after(address)
    if wait > 0:
        raise TooManyRequests(f"too many failed sign-ins from {address}; try again in {wait:.0f} s", retry_after=wait)
    try:
        user = await run_in_threadpool(_sign_in, request, body.username.strip(), body.password)
    except Unauthorized:
        throttle.failed(address)
        raise
    access = access_of(request)
    await run_in_threadpool(access.delete_keys, expired_before=time.time())  # old sessions do not pile up
    hours = request.app.state.settings.session_hours
    key, secret = await run_in_threadpool(
        access.create_key,
        KeyKind.SESSION,
        user_id=user.id,
        description="UI session",
        expires_at=time.time() + hours * 3600,
    )
    return {"access_key": key.access_key, "secret_key": secret, "expires_at": key.expires_at, "user": user_view(user)}


def _sign_in(request: Request, username: str, password: str) -> User:
    """A local user by their password; otherwise, with LDAP configured, a directory user (recorded on first
    sign-in with source `ldap` and no password, so that memberships and keys can name them)."""
    access = access_of(request)
    identity = getattr(request.app.state, "ldap", None)
    known = access.find_user(username)
    if identity is None or (known is not None and known.source == "local"):
        return access.verify_password(username, password)
    identity.authenticate(username, password)
    user = known or access.create_user(validate_username(username), None, source="ldap")
    if user.disabled:
        raise Unauthorized("wrong user name or password, or the user is disabled")
    return user


@router.post("/logout", status_code=204)
def logout(request: Request, caller: Caller) -> Response:
    """End the calling session (a session key removes itself; other keys are removed with `keys rm`)."""
    if caller.kind is KeyKind.SESSION:
        access_of(request).delete_key(caller.access_key)
    return Response(status_code=204)


@router.get("/me")
def me(request: Request, caller: Caller) -> dict[str, Any]:
    store = request.app.state.store
    names = {env.id: env.name for env in store.list_environments()}
    roles = {env_id: Role.OWNER for env_id in names} if caller.admin else roles_of(request.app.state, caller)
    return {
        "username": caller.username,
        "user_id": caller.user_id,
        "kind": caller.kind.value,
        "access_key": caller.access_key,
        "admin": caller.admin,
        "environments": [
            {"id": env_id, "name": names.get(env_id, env_id), "role": role.value}
            for env_id, role in sorted(roles.items(), key=lambda item: names.get(item[0], item[0]))
        ],
    }


# -- users (admins) ---------------------------------------------------------------------------------------------


@router.get("/users")
def list_users(request: Request, _: Caller) -> dict[str, Any]:
    return {"data": [user_view(u) for u in access_of(request).list_users()]}


@router.post("/users", status_code=201)
def create_user(request: Request, body: UserCreate, _: Caller) -> dict[str, Any]:
    username = validate_username(body.username)
    user = access_of(request).create_user(username, validate_password(body.password), admin=body.admin)
    return user_view(user)


@router.get("/users/{user_ref}")
def get_user(request: Request, user_ref: str, _: Caller) -> dict[str, Any]:
    return user_view(access_of(request).get_user(user_ref))


@router.patch("/users/{user_ref}")
def update_user(request: Request, user_ref: str, body: UserUpdate, _: Caller) -> dict[str, Any]:
    password = validate_password(body.password) if body.password is not None else None
    user = access_of(request).update_user(user_ref, disabled=body.disabled, admin=body.admin, password=password)
    return user_view(user)


@router.delete("/users/{user_ref}", status_code=204)
def delete_user(request: Request, user_ref: str, _: Caller) -> Response:
    access_of(request).delete_user(user_ref)
    return Response(status_code=204)


# -- members ----------------------------------------------------------------------------------------------------


def _member_view(request: Request, grant_subject_kind: str, subject: str, role: Role) -> dict[str, Any]:
    name = subject
    if grant_subject_kind == "user":
        try:
            name = access_of(request).get_user(subject).username
        except NotFound:
            name = subject
    return {"kind": grant_subject_kind, "subject": subject, "name": name, "role": role.value}


@router.get("/environments/{ref}/members")
def list_members(request: Request, ref: str, _: Caller) -> dict[str, Any]:
    env = request.app.state.store.get_environment(ref)
    grants = access_of(request).list_members(env.id)
    return {"data": [_member_view(request, g.subject_kind, g.subject, g.role) for g in grants]}


@router.put("/environments/{ref}/members")
def set_member(request: Request, ref: str, body: MemberSet, caller: Caller) -> dict[str, Any]:
    env = request.app.state.store.get_environment(ref)
    role = parse_role(body.role)
    if (body.user is None) == (body.group is None):
        raise InvalidInput("name either a user or a group", field="user")
    if not may_grant(role_in(request.app.state, caller, env.id), role, admin=caller.admin):
        raise Forbidden(f"you may not grant the {role.value} role: it is above your own")
    access = access_of(request)
    if body.user is not None:
        subject_kind, subject = "user", access.get_user(body.user.strip()).id
    else:
        subject_kind, subject = "group", (body.group or "").strip()
        if not subject:
            raise InvalidInput("a group name is required", field="group")
    grant = access.set_member(env.id, subject_kind, subject, role)
    return _member_view(request, grant.subject_kind, grant.subject, grant.role)


@router.delete("/environments/{ref}/members/{subject_kind}/{subject}", status_code=204)
def remove_member(request: Request, ref: str, subject_kind: str, subject: str, _: Caller) -> Response:
    env = request.app.state.store.get_environment(ref)
    if subject_kind not in ("user", "group"):
        raise InvalidInput("a member is a `user` or a `group`", field="kind")
    access = access_of(request)
    if subject_kind == "user":
        subject = access.get_user(subject).id
    access.remove_member(env.id, subject_kind, subject)
    return Response(status_code=204)


# -- keys -------------------------------------------------------------------------------------------------------


@router.get("/keys")
def list_own_keys(request: Request, caller: Caller) -> dict[str, Any]:
    """The caller's account keys and the environment keys they created (an admin key without a user: all)."""
    user_id = None if caller.admin and caller.user_id is None else require_user(caller)
    return {"data": [key_view(k) for k in access_of(request).list_keys(user_id=user_id)]}


@router.post("/keys", status_code=201)
def create_account_key(request: Request, body: KeyCreate, caller: Caller) -> dict[str, Any]:
    """An account key acts as its user in every environment the user may see; the secret is shown once."""
    key, secret = access_of(request).create_key(
        KeyKind.ACCOUNT,
        user_id=require_user(caller),
        description=body.description,
        expires_at=_expires_at(body.expires),
    )
    return {**key_view(key), "secret_key": secret}


@router.get("/environments/{ref}/keys")
def list_environment_keys(request: Request, ref: str, _: Caller) -> dict[str, Any]:
    env = request.app.state.store.get_environment(ref)
    keys = access_of(request).list_keys(environment_id=env.id)
    return {"data": [key_view(k) for k in keys if k.kind == KeyKind.ENVIRONMENT.value]}


@router.post("/environments/{ref}/keys", status_code=201)
def create_environment_key(request: Request, ref: str, body: EnvironmentKeyCreate, caller: Caller) -> dict[str, Any]:
    """An environment key reaches this environment only, with a role no higher than its creator's."""
    env = request.app.state.store.get_environment(ref)
    role = parse_role(body.role)
    if not may_grant(role_in(request.app.state, caller, env.id), role, admin=caller.admin):
        raise Forbidden(f"you may not create a key with the {role.value} role: it is above your own")
    key, secret = access_of(request).create_key(
        KeyKind.ENVIRONMENT,
        user_id=caller.user_id,
        environment_id=env.id,
        role=role,
        description=body.description,
        expires_at=_expires_at(body.expires),
    )
    return {**key_view(key), "secret_key": secret}


@router.delete("/keys/{access_key}", status_code=204)
def delete_key(request: Request, access_key: str, caller: Caller) -> Response:
    """Revoke at once. Own keys, or environment keys where the caller may manage keys (their creator, or an
    owner): a member of the key's environment who may not is refused (403), anything else reads as not found."""
    access = access_of(request)
    key = access.get_key(access_key)
    if not _may_revoke(request, caller, key):
        raise NotFound(f"API key {access_key!r} not found", field="key")
    access.delete_key(key.access_key)
    return Response(status_code=204)


def _may_revoke(request: Request, caller: Principal, key: KeyInfo) -> bool:
    if caller.admin:
        return key.kind != KeyKind.AGENT.value
    if key.kind == KeyKind.ACCOUNT.value:
        return key.user_id is not None and key.user_id == caller.user_id
    if key.kind in (KeyKind.ENVIRONMENT.value, KeyKind.SERVICE.value) and key.environment_id:
        role = role_in(request.app.state, caller, key.environment_id)
        if role is None:
            return False  # another environment's key: as one that does not exist
        if not permits(role, Resource.KEYS, Action.WRITE):
            raise Forbidden(f"the {role.value} role may not write keys in this environment")
        if (key.user_id is not None and key.user_id == caller.user_id) or role is Role.OWNER:
            return True
        raise Forbidden("only the key's creator or an owner of its environment may revoke it")
    return False


# -- audit ------------------------------------------------------------------------------------------------------


@router.get("/audit")
def list_audit(
    request: Request,
    _: Caller,
    environment: Annotated[str | None, Query()] = None,
    user: Annotated[str | None, Query(max_length=255)] = None,
    since: Annotated[float | None, Query()] = None,
    before: Annotated[int | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_AUDIT_PAGE)] = 100,
) -> dict[str, Any]:
    """Newest first. Admins see every entry; owners their environment's. `next` pages back in time."""
    env_ids: list[str] | None = None
    if environment:
        env_ids = [request.app.state.store.get_environment(environment).id]
    elif visible_environment_ids(request) is not None:
        raise InvalidInput("name an environment", field="environment")
    entries = access_of(request).audit(environment_ids=env_ids, actor=user, since=since, before_id=before, limit=limit)
    page = [asdict(e) for e in entries]
    return {"data": page, "next": entries[-1].id if len(entries) == limit else None}
