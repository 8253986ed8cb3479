"""The policy table: one line per /v1 route (method, path) saying what it touches and how (issue 16).

Why a table: the authorization check (server/security/authorization.py) is written once and reads this; a reviewer reads
the whole API's permissions here in one screen, and tests/security/ calls every route with every role and compares
with it. A new route adds one line: `env(Resource.X, READ|WRITE)` when it belongs to an environment (its id in
the path, or `environment` in the query or body), `ADMIN` for server-wide settings, `USER` for what any signed-in
user may do for themselves. Websockets use the method "WS".
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from corral.model.access import Action, Resource


class RuleKind(enum.StrEnum):
    PUBLIC = "public"  # no credentials (agent registration, the CA certificate, login)
    AGENT = "agent"  # an agent's own connection (the hub checks its key and host)
    ADMIN = "admin"  # server-wide: users, global catalogs, the server's certificate
    USER = "user"  # any signed-in caller, acting on their own things (their keys, their logout)
    ENVIRONMENT = "environment"  # the caller's role in the route's environment decides


@dataclass(frozen=True)
class Rule:
    kind: RuleKind
    resource: Resource | None = None
    action: Action = Action.READ
    body_environment: bool = False  # the environment may come from the JSON body's `environment`
    default_environment: str | None = None  # what the handler assumes when none is named
    list_optional: bool = False  # a list: no environment named = all (admins) or the caller's only one

    @property
    def resource_name(self) -> str:
        return self.resource.value if self.resource is not None else self.kind.value


READ, WRITE = Action.READ, Action.WRITE
PUBLIC, AGENT, ADMIN, USER = (Rule(RuleKind.PUBLIC), Rule(RuleKind.AGENT), Rule(RuleKind.ADMIN), Rule(RuleKind.USER))


def env(resource: Resource, action: Action = READ, **options: object) -> Rule:
    return Rule(RuleKind.ENVIRONMENT, resource, action, **options)  # type: ignore[arg-type]


def listing(resource: Resource) -> Rule:
    return env(resource, READ, list_optional=True)


R = Resource
RULES: dict[tuple[str, str], Rule] = {
    # the server, agents, sign-in
    ("GET", "/v1/"): USER,  # an index of the collections (`/v1` redirects here); each checks its own
    ("GET", "/v1/ca"): PUBLIC,
    ("POST", "/v1/agent/register"): PUBLIC,
    ("POST", "/v1/login"): PUBLIC,
    ("WS", "/v1/agent"): AGENT,
    ("GET", "/v1/server/certificate"): ADMIN,
    ("POST", "/v1/server/certificate/rotate"): ADMIN,
    ("POST", "/v1/server/ca/rotate"): ADMIN,
    ("GET", "/v1/server/ca/rotation"): ADMIN,
    # environments
    ("GET", "/v1/environments"): USER,  # the handler lists only the caller's environments
    ("POST", "/v1/environments"): ADMIN,
    ("GET", "/v1/environments/{ref}"): env(R.ENVIRONMENT),
    ("PATCH", "/v1/environments/{ref}"): env(R.ENVIRONMENT, WRITE),
    ("DELETE", "/v1/environments/{ref}"): env(R.ENVIRONMENT, WRITE),
    ("WS", "/v1/events"): listing(R.STACKS),  # `since_version` replays only the environment's own events
    ("GET", "/v1/events"): listing(R.STACKS),
    # hosts and registration tokens
    ("POST", "/v1/environments/{ref}/registration-tokens"): env(R.HOSTS, WRITE),
    ("GET", "/v1/environments/{ref}/registration-tokens"): env(R.HOSTS),  # no secret: they are never stored
    ("DELETE", "/v1/registration-tokens/{token_id}"): env(R.HOSTS, WRITE),
    ("POST", "/v1/registration-tokens/{token_id}/revoke"): env(R.HOSTS, WRITE),
    ("GET", "/v1/hosts"): listing(R.HOSTS),  # lists take `watch=true&since_version=N`: the same read right
    ("POST", "/v1/hosts"): env(R.HOSTS, WRITE, body_environment=True),
    ("GET", "/v1/hosts/{host_id}"): env(R.HOSTS),
    ("PATCH", "/v1/hosts/{host_id}"): env(R.HOSTS, WRITE),
    ("POST", "/v1/hosts/{host_id}/deactivate"): env(R.HOSTS, WRITE),
    ("POST", "/v1/hosts/{host_id}/evacuate"): env(R.HOSTS, WRITE),
    ("POST", "/v1/hosts/{host_id}/activate"): env(R.HOSTS, WRITE),
    ("POST", "/v1/hosts/{host_id}/approve"): env(R.HOSTS, WRITE),
    ("DELETE", "/v1/hosts/{host_id}"): env(R.HOSTS, WRITE),
    ("GET", "/v1/hosts/{host_id}/containers"): env(R.HOSTS),
    # catalogs (a catalog without an environment is shared by all: read by anyone, changed by admins)
    ("GET", "/v1/catalogs"): listing(R.STACKS),
    ("POST", "/v1/catalogs"): env(R.ENVIRONMENT, WRITE, body_environment=True),
    ("GET", "/v1/catalogs/{catalog_id}"): env(R.STACKS),
    ("DELETE", "/v1/catalogs/{catalog_id}"): env(R.ENVIRONMENT, WRITE),
    ("POST", "/v1/catalogs/{catalog_id}/refresh"): env(R.STACKS, WRITE),
    ("GET", "/v1/environments/{ref}/templates"): env(R.STACKS),
    ("GET", "/v1/templates/{catalog}/{template}"): env(R.STACKS, default_environment="default"),
    ("GET", "/v1/templates/{catalog}/{template}/icon"): env(R.STACKS, default_environment="default"),
    ("POST", "/v1/environments/{ref}/templates/{catalog}/{template}/install"): env(R.STACKS, WRITE),
    ("POST", "/v1/environments/{ref}/templates/{catalog}/{template}/preview"): env(R.STACKS),
    ("POST", "/v1/stacks/{stack_id}/catalog-upgrade"): env(R.STACKS, WRITE),
    # secrets: credentials like registries (the same roles); their values never come back
    ("POST", "/v1/environments/{ref}/secrets"): env(R.REGISTRIES, WRITE),
    ("GET", "/v1/environments/{ref}/secrets"): env(R.REGISTRIES),
    ("DELETE", "/v1/environments/{ref}/secrets/{name}"): env(R.REGISTRIES, WRITE),
    # certificates (issue 19): like secrets, the key never comes back
    ("POST", "/v1/environments/{ref}/certificates"): env(R.REGISTRIES, WRITE),
    ("GET", "/v1/environments/{ref}/certificates"): env(R.REGISTRIES),
    ("GET", "/v1/environments/{ref}/certificates/{name}"): env(R.REGISTRIES),
    ("PUT", "/v1/environments/{ref}/certificates/{name}"): env(R.REGISTRIES, WRITE),
    ("DELETE", "/v1/environments/{ref}/certificates/{name}"): env(R.REGISTRIES, WRITE),
    # volumes: storage of user workloads, with containers' rights (Rancher: restricted manages them too)
    ("GET", "/v1/volumes"): listing(R.STACKS),
    ("POST", "/v1/volumes"): env(R.STACKS, WRITE, body_environment=True, default_environment="default"),
    ("GET", "/v1/volumes/{name}"): env(R.STACKS, default_environment="default"),
    ("DELETE", "/v1/volumes/{name}"): env(R.STACKS, WRITE, default_environment="default"),
    # the images of the hosts' engines (issue 18): part of the hosts; removing one is host management
    ("GET", "/v1/images"): listing(R.HOSTS),
    ("DELETE", "/v1/hosts/{host_id}/images/{image}"): env(R.HOSTS, WRITE),
    # registries
    ("POST", "/v1/environments/{ref}/registries"): env(R.REGISTRIES, WRITE),
    ("GET", "/v1/environments/{ref}/registries"): env(R.REGISTRIES),
    ("GET", "/v1/registries/{registry_id}"): env(R.REGISTRIES),
    ("PUT", "/v1/registries/{registry_id}"): env(R.REGISTRIES, WRITE),
    ("DELETE", "/v1/registries/{registry_id}"): env(R.REGISTRIES, WRITE),
    # stacks, services, containers
    ("POST", "/v1/stacks"): env(R.STACKS, WRITE, body_environment=True, default_environment="default"),
    ("PUT", "/v1/stacks"): env(R.STACKS, WRITE, body_environment=True, default_environment="default"),
    # `up --plan`: changes nothing, but shows what `up` would do with secrets' names and hosts: the right of `up`
    ("POST", "/v1/stacks/plan"): env(R.STACKS, WRITE, body_environment=True, default_environment="default"),
    ("GET", "/v1/stacks"): listing(R.STACKS),
    ("GET", "/v1/stacks/{stack_id}"): env(R.STACKS),
    ("GET", "/v1/stacks/{stack_id}/files"): env(R.STACKS),
    ("DELETE", "/v1/stacks/{stack_id}"): env(R.STACKS, WRITE),
    ("POST", "/v1/stacks/{stack_id}/confirm-upgrade"): env(R.STACKS, WRITE),
    ("POST", "/v1/stacks/{stack_id}/rollback"): env(R.STACKS, WRITE),
    ("POST", "/v1/stacks/{stack_id}/pull"): env(R.STACKS, WRITE),  # stores nothing, but uses hosts' bandwidth
    ("GET", "/v1/services"): listing(R.STACKS),
    ("GET", "/v1/services/{service_id}"): env(R.STACKS),
    ("POST", "/v1/services/{service_id}/scale"): env(R.STACKS, WRITE),
    ("POST", "/v1/services/{service_id}/restart"): env(R.STACKS, WRITE),
    ("POST", "/v1/services/{service_id}/confirm-upgrade"): env(R.STACKS, WRITE),
    ("POST", "/v1/services/{service_id}/rollback"): env(R.STACKS, WRITE),
    ("GET", "/v1/containers"): listing(R.STACKS),
    ("GET", "/v1/containers/{container_id}"): env(R.STACKS),
    # standalone containers (`corral run`): the rights of a service's containers (restricted and up run them)
    ("POST", "/v1/containers"): env(R.STACKS, WRITE, body_environment=True, default_environment="default"),
    ("DELETE", "/v1/containers/{container_id}"): env(R.STACKS, WRITE),
    ("POST", "/v1/containers/{container_id}/stop"): env(R.STACKS, WRITE),
    ("POST", "/v1/containers/{container_id}/start"): env(R.STACKS, WRITE),
    ("POST", "/v1/containers/{container_id}/restart"): env(R.STACKS, WRITE),
    ("GET", "/v1/containers/{container_id}/logs"): env(R.LOGS),
    ("GET", "/v1/stacks/{stack_id}/builds"): env(R.STACKS),
    ("GET", "/v1/stacks/{stack_id}/builds/{build_id}/log"): env(R.LOGS),
    ("GET", "/v1/containers/{container_id}/stats"): env(R.LOGS),
    ("POST", "/v1/containers/{container_id}/exec"): env(R.EXEC, WRITE),
    ("WS", "/v1/containers/{container_id}/exec"): env(R.EXEC, WRITE),
    # access control (server/routes/api_access.py)
    ("POST", "/v1/logout"): USER,
    ("GET", "/v1/me"): USER,
    ("GET", "/v1/users"): ADMIN,
    ("POST", "/v1/users"): ADMIN,
    ("GET", "/v1/users/{user_ref}"): ADMIN,
    ("PATCH", "/v1/users/{user_ref}"): ADMIN,
    ("DELETE", "/v1/users/{user_ref}"): ADMIN,
    ("GET", "/v1/environments/{ref}/members"): env(R.MEMBERS),
    ("PUT", "/v1/environments/{ref}/members"): env(R.MEMBERS, WRITE),
    ("DELETE", "/v1/environments/{ref}/members/{subject_kind}/{subject}"): env(R.MEMBERS, WRITE),
    ("GET", "/v1/keys"): USER,  # the caller's own account keys
    ("POST", "/v1/keys"): USER,
    ("DELETE", "/v1/keys/{access_key}"): USER,  # own account keys; environment keys need keys:write there
    ("GET", "/v1/environments/{ref}/keys"): env(R.KEYS),
    ("POST", "/v1/environments/{ref}/keys"): env(R.KEYS, WRITE),
    ("GET", "/v1/audit"): listing(R.AUDIT),
}
