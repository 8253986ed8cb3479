"""The client proper. Errors from the server come back as the same error classes the server raised.

Why httpx: a transport seam (`transport=`) lets tests run the client against an in-process app, and the same
client speaks to a real server over TCP. Every mutating call (POST, PUT, PATCH, DELETE) carries an
`Idempotency-Key` (server/security/idempotency.py): sent again with the same key it is applied once and answered with
its first result. With `retry_seconds` (the CLI's), a server that restarts or answers 503 saying its database is
unavailable is waited for: any call is sent again after a refused connection, a lost answer or such a 503, for at
most that long, so `up` and `scale` are applied once and waits resume across a server restart.
"""

from __future__ import annotations

import base64
import json
import secrets
import ssl
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from corral.client.catalog import CatalogClient
from corral.client.certificates import CertificatesClient
from corral.client.errors import error_from, segment
from corral.client.images import ImagesClient
from corral.client.secrets import SecretsClient
from corral.client.standalone import StandaloneClient
from corral.client.volumes import VolumesClient
from corral.model.errors import (
    DATABASE_UNAVAILABLE,
    InvalidInput,
    NotFound,
    Unavailable,
)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT"})
MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
IDEMPOTENCY_HEADER = "Idempotency-Key"
CLI_RETRY_SECONDS = 60.0  # how long the CLI waits for a server that restarts or whose database is unavailable
_MAX_RETRY_DELAY = 5.0
PULL_TIMEOUT_SECONDS = 660.0  # the server waits up to 10 min for the hosts' pulls
LIST_PAGE = 500  # items per page when the client walks a collection (server/views/paging.py allows up to 1,000)


def ssl_context_for(ca: str | Path | None) -> ssl.SSLContext | None:
    """A context that trusts the CA in `ca` (a file, or the PEM text itself); None: the system's CAs."""
    if not ca:
        return None
    text = str(ca)
    try:
        if text.lstrip().startswith("-----BEGIN"):
            return ssl.create_default_context(cadata=text)
        return ssl.create_default_context(cafile=str(Path(text).expanduser()))
    except (OSError, ssl.SSLError) as exc:
        raise InvalidInput(f"cannot load the CA from {text[:120]!r}: {exc}", field="ca") from exc


def basic_auth_header(access_key: str, secret_key: str) -> str:
    return "Basic " + base64.b64encode(f"{access_key}:{secret_key}".encode()).decode()


class CorralClient:
    def __init__(
        self,
        url: str,
        access_key: str = "",
        secret_key: str = "",
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        headers: dict[str, str] | None = None,
        retry_seconds: float = 0.0,
        ca: str | Path | ssl.SSLContext | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.retry_seconds = retry_seconds
        self._said_retrying = False
        headers = dict(headers or {})
        if access_key or secret_key:
            headers["Authorization"] = basic_auth_header(access_key, secret_key)
        self.auth_headers = headers
        # the server's own CA (admin.env's CORRAL_CA_FILE, `--ca`), else the system's CAs
        self.ssl_context = ca if isinstance(ca, ssl.SSLContext) else ssl_context_for(ca)
        verify: ssl.SSLContext | bool = self.ssl_context if self.ssl_context is not None else True
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport, verify=verify
        )
        self.stacks = StacksClient(self)
        self.catalog = CatalogClient(self)
        self.secrets = SecretsClient(self)
        self.volumes = VolumesClient(self)
        self.images = ImagesClient(self)
        self.standalone = StandaloneClient(self)
        self.certificates = CertificatesClient(self)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CorralClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- plumbing -----------------------------------------------------------------------------------------------

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def list_pages(self, path: str, params: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """Every item of a collection, fetched a page at a time (`limit`/`continue`; a server that does not page
        answers everything at once, without `continue`)."""
        items: list[dict[str, Any]] = []
        query: dict[str, str | int] = {**(params or {}), "limit": LIST_PAGE}
        while True:
            body = self.request("GET", path, params=query)
            items.extend(body["data"])
            token = body.get("continue")
            if not token:
                return items
            query["continue"] = token

    def request_bytes(self, method: str, path: str, **kwargs: Any) -> tuple[bytes, str]:
        """A non-JSON response: (body, media type)."""
        response = self._send(method, path, **kwargs)
        return response.content, response.headers.get("content-type", "application/octet-stream")

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The server's response; a transport failure or an error status raises the matching CorralError."""
        deadline = time.monotonic() + self.retry_seconds
        delay = 0.5
        retryable = method.upper() in IDEMPOTENT_METHODS
        if method.upper() in MUTATING_METHODS:
            headers = dict(kwargs.pop("headers", None) or {})
            headers.setdefault(IDEMPOTENCY_HEADER, secrets.token_urlsafe(18))  # one key for every try of this call
            kwargs["headers"] = headers
            retryable = True
        while True:
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                if "CERTIFICATE_VERIFY_FAILED" in str(exc):
                    raise Unavailable(
                        f"the certificate of {self.url} is not trusted ({exc}): set CORRAL_CA_FILE or --ca to the "
                        "server's CA (tls/ca.pem in its data dir; admin.env names it)"
                    ) from exc
                unsent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                if (unsent or retryable) and self._wait(deadline, delay, str(exc)):
                    delay = min(delay * 2, _MAX_RETRY_DELAY)
                    continue
                raise Unavailable(f"cannot reach the Corral server at {self.url}: {exc}") from exc
            if response.status_code == 503 and retryable:
                error = error_from(response)  # only a database outage is worth waiting for, not a lost agent
                if error.message.startswith(DATABASE_UNAVAILABLE) and self._wait(
                    deadline, _retry_after(response, delay), error.message
                ):
                    delay = min(delay * 2, _MAX_RETRY_DELAY)
                    continue
            if response.status_code >= 400:
                raise error_from(response)
            return response

    def _wait(self, deadline: float, delay: float, why: str) -> bool:
        """Sleep before another try if the retry budget allows it (saying so once on stderr)."""
        if time.monotonic() + delay > deadline:
            return False
        if not self._said_retrying:
            print(f"waiting for the Corral server at {self.url} ({why}) ...", file=sys.stderr, flush=True)
            self._said_retrying = True
        time.sleep(delay)
        return True

    # -- environments -------------------------------------------------------------------------------------------

    def list_environments(self) -> list[dict[str, Any]]:
        return self.list_pages("/v1/environments")

    def create_environment(
        self,
        name: str,
        orchestration: str = "cattle",
        description: str = "",
        *,
        network: dict[str, Any] | None = None,
        allow: list[str] | None = None,
        require_approval: bool = False,
        quotas: dict[str, int | None] | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, "orchestration": orchestration, "description": description}
        if require_approval:
            body["require_approval"] = True
        if network:
            body["network"] = network  # {subnet, host_prefix, mtu, vni}
        if allow:
            body["allow"] = allow  # dangerous container settings (model/policy.py)
        if quotas:
            body["quotas"] = quotas  # model/quotas.py
        result: dict[str, Any] = self.request("POST", "/v1/environments", json=body)
        return result

    def get_environment(self, ref: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/v1/environments/{segment(ref)}")
        return result

    def update_environment(self, ref: str, **changes: Any) -> dict[str, Any]:
        """Change settings: description, allow (replaces the set; [] locks), require_approval."""
        result: dict[str, Any] = self.request("PATCH", f"/v1/environments/{segment(ref)}", json=changes)
        return result

    def delete_environment(self, ref: str) -> None:
        self.request("DELETE", f"/v1/environments/{segment(ref)}")

    # -- registration tokens ------------------------------------------------------------------------------------

    def create_registration_token(
        self, environment: str, description: str = "", *, expires: str | None = None, max_uses: int | None = None
    ) -> dict[str, Any]:
        """`expires`: a duration such as 2h or 7d, or "never" (the server's default: 24h); `max_uses`: None for
        unlimited."""
        body: dict[str, Any] = {"description": description}
        if expires is not None:
            body["expires"] = expires
        if max_uses is not None:
            body["max_uses"] = max_uses
        result: dict[str, Any] = self.request(
            "POST", f"/v1/environments/{segment(environment)}/registration-tokens", json=body
        )
        return result

    def list_registration_tokens(self, environment: str) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self.request(
            "GET", f"/v1/environments/{segment(environment)}/registration-tokens"
        )["data"]
        return data

    def delete_registration_token(self, token_id: str) -> None:
        """Revoke: the token stays listed as `revoked` and admits no more hosts."""
        self.request("DELETE", f"/v1/registration-tokens/{segment(token_id)}")

    def revoke_registration_token(self, token_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", f"/v1/registration-tokens/{segment(token_id)}/revoke")
        return result

    # -- private registries -------------------------------------------------------------------------------------

    def add_registry(self, environment: str, server: str, username: str, password: str) -> dict[str, Any]:
        body = {"server": server, "username": username, "password": password}
        result: dict[str, Any] = self.request("POST", f"/v1/environments/{segment(environment)}/registries", json=body)
        return result

    def list_registries(self, environment: str) -> list[dict[str, Any]]:
        path = f"/v1/environments/{segment(environment)}/registries"
        data: list[dict[str, Any]] = self.request("GET", path)["data"]
        return data

    def find_registry(self, environment: str, ref: str) -> dict[str, Any]:
        """A registry entry of an environment by id or server."""
        for registry in self.list_registries(environment):
            if ref in (registry["id"], registry["server"]):
                return registry
        raise NotFound(f"registry {ref!r} not found in environment {environment!r}", field="registry")

    def update_registry(self, registry_id: str, username: str, password: str) -> dict[str, Any]:
        body = {"username": username, "password": password}
        result: dict[str, Any] = self.request("PUT", f"/v1/registries/{segment(registry_id)}", json=body)
        return result

    def delete_registry(self, registry_id: str) -> None:
        self.request("DELETE", f"/v1/registries/{segment(registry_id)}")

    # -- hosts --------------------------------------------------------------------------------------------------

    def list_hosts(self, environment: str | None = None) -> list[dict[str, Any]]:
        params = {"environment": environment} if environment else {}
        return self.list_pages("/v1/hosts", params)

    def get_host(self, host_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/v1/hosts/{segment(host_id)}")
        return result

    def find_host(self, environment: str, ref: str) -> dict[str, Any]:
        """A host of an environment by id or name."""
        for host in self.list_hosts(environment):
            if ref in (host["id"], host["name"]):
                return host
        raise NotFound(f"host {ref!r} not found in environment {environment!r}", field="host")

    def create_host(
        self,
        environment: str,
        name: str,
        *,
        driver: str = "local",
        labels: dict[str, str] | None = None,
        arch: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"environment": environment, "name": name, "driver": driver, "labels": labels or {}}
        if arch:
            body["arch"] = arch
        result: dict[str, Any] = self.request("POST", "/v1/hosts", json=body)
        return result

    def update_host_labels(self, host_id: str, labels: dict[str, str]) -> dict[str, Any]:
        result: dict[str, Any] = self.request("PATCH", f"/v1/hosts/{segment(host_id)}", json={"labels": labels})
        return result

    def host_action(self, host_id: str, action: str) -> dict[str, Any]:
        if action not in ("activate", "deactivate", "evacuate", "approve"):
            raise InvalidInput(f"unknown host action {action!r}", field="action")
        result: dict[str, Any] = self.request("POST", f"/v1/hosts/{segment(host_id)}/{action}")
        return result

    def delete_host(self, host_id: str) -> None:
        self.request("DELETE", f"/v1/hosts/{segment(host_id)}", timeout=120.0)

    def list_host_containers(self, host_id: str) -> list[dict[str, Any]]:
        return self.list_pages(f"/v1/hosts/{segment(host_id)}/containers")

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/healthz")
        return result

    # -- TLS ------------------------------------------------------------------------------------------------------

    def server_certificate(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/v1/server/certificate")
        return result

    def rotate_ca(self) -> dict[str, Any]:
        """Begin a CA rotation (server/hub/ca_rotation.py); the answer is its status."""
        result: dict[str, Any] = self.request("POST", "/v1/server/ca/rotate")
        return result

    def ca_rotation(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/v1/server/ca/rotation")
        return result

    def events(
        self,
        environment: str | None = None,
        *,
        since: float | None = None,
        resource_type: str | None = None,
        before: int | None = None,
        limit: int = 100,
    ) -> dict[str, Any]:
        """One page of the kept events, newest first: {"data": [...], "next": cursor or None}."""
        wanted = {"environment": environment, "since": since, "type": resource_type, "before": before, "limit": limit}
        result: dict[str, Any] = self.request("GET", "/v1/events", params={k: v for k, v in wanted.items() if v})
        return result

    def rotate_server_certificate(self) -> dict[str, Any]:
        """A new server certificate from the server's CA, served from the next handshake; agents reconnect."""
        result: dict[str, Any] = self.request("POST", "/v1/server/certificate/rotate")
        return result


class StacksClient:
    """Stacks, services and containers; reached as `CorralClient.stacks`."""

    def __init__(self, client: CorralClient) -> None:
        self._client = client

    def up(
        self,
        environment: str,
        name: str,
        compose: str,
        *,
        compose_name: str = "docker-compose.yml",
        rancher_compose: str | None = None,
        rancher_compose_name: str = "rancher-compose.yml",
        answers: dict[str, str] | None = None,
        env_files: dict[str, str] | None = None,
        upgrade: dict[str, Any] | None = None,
        profiles: list[str] | None = None,
        uploads: tuple[dict[str, str], dict[str, str]] | None = None,
        builds: tuple[dict[str, str], dict[str, str], str] | None = None,
        plan: bool = False,
    ) -> dict[str, Any]:
        """Create or update a stack (`plan`: only the preview of what that would do; nothing changes).

        `builds`: the build contexts (sha256 -> base64 tar), which service builds from which, and the mode (auto,
        force, never). `upgrade` ({} or some of batch_size, interval_ms, start_first, deadline_seconds) makes changed
        services upgrade in batches instead of all at once; `profiles` are the Compose profiles to enable;
        `uploads`: the files (path -> base64) and environment values of relative binds, secrets and configs
        (compose/files.py)."""
        body: dict[str, Any] = {
            "environment": environment,
            "name": name,
            "compose": compose,
            "compose_name": compose_name,
            "rancher_compose_name": rancher_compose_name,
            "answers": answers or {},
            "env_files": env_files or {},
        }
        if rancher_compose is not None:
            body["rancher_compose"] = rancher_compose
        if upgrade is not None:
            body["upgrade"] = upgrade
        if profiles:
            body["profiles"] = profiles
        if uploads is not None:
            body["uploads"], body["upload_environment"] = uploads
        if builds is not None:
            body["build_contexts"], body["build_context_of"], body["build"] = builds
        if plan:  # the server does not take contexts for a plan: it stores nothing
            body.pop("build_contexts", None)
        result: dict[str, Any] = self._client.request(
            "POST" if plan else "PUT", "/v1/stacks/plan" if plan else "/v1/stacks", json=body
        )
        return result

    def create(
        self,
        environment: str,
        name: str,
        compose: str,
        *,
        rancher_compose: str | None = None,
        answers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Create a stack (POST): unlike `up`, a stack of that name that exists already is a Conflict on `name`."""
        body: dict[str, Any] = {"environment": environment, "name": name, "compose": compose, "answers": answers or {}}
        if rancher_compose is not None:
            body["rancher_compose"] = rancher_compose
        result: dict[str, Any] = self._client.request("POST", "/v1/stacks", json=body)
        return result

    def list_all(self, environment: str | None = None, *, containers: bool = False) -> list[dict[str, Any]]:
        """Every stack (of the environment); with `containers`, each service holds its containers (a list names
        only their counts otherwise)."""
        params = {"environment": environment} if environment else {}
        if containers:
            params["include"] = "containers"
        return self._client.list_pages("/v1/stacks", params)

    def find(self, environment: str, ref: str) -> dict[str, Any]:
        """A stack by name or id, its services with their containers."""
        for stack in self.list_all(environment, containers=True):
            if ref in (stack["id"], stack["name"]):
                found: dict[str, Any] = stack
                return found
        raise NotFound(f"stack {ref!r} not found in environment {environment!r}", field="stack")

    def get(self, stack_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._client.request("GET", f"/v1/stacks/{segment(stack_id)}")
        return result

    def builds(self, stack_id: str) -> list[dict[str, Any]]:
        """The stack's kept builds, the newest first (service, arch, host, state, digest, times; no log)."""
        result: dict[str, Any] = self._client.request("GET", f"/v1/stacks/{segment(stack_id)}/builds")
        builds: list[dict[str, Any]] = result["data"]
        return builds

    def build_log(self, stack_id: str, build_id: str, offset: int = 0, limit: int = 1000) -> dict[str, Any]:
        """A page of a build's log: `log` (lines) from `offset`, `next_offset`, `cut`, `done`."""
        path = f"/v1/stacks/{segment(stack_id)}/builds/{segment(build_id)}/log"
        result: dict[str, Any] = self._client.request("GET", path, params={"offset": offset, "limit": limit})
        return result

    def files(self, stack_id: str) -> dict[str, Any]:
        """The stack's compose files as last applied (`corral export`): {"files": {name: text}, "warnings": [...]}."""
        result: dict[str, Any] = self._client.request("GET", f"/v1/stacks/{segment(stack_id)}/files")
        return result

    def delete(self, stack_id: str, *, keep_volumes: bool = False) -> None:
        """Remove a stack; its stack and per-container volumes go once its containers are gone, unless kept."""
        params = {"keep_volumes": "true"} if keep_volumes else None
        self._client.request("DELETE", f"/v1/stacks/{segment(stack_id)}", params=params)

    def pull(self, stack_id: str, services: list[str] | None = None) -> dict[str, Any]:
        """Have the hosts pull the stack's images now and wait for them (`corral pull`): {results: [{service,
        image, host, status: pulled|present|failed|skipped, id, reason}], notes, failed}."""
        body = {"services": services} if services else {}
        result: dict[str, Any] = self._client.request(
            "POST", f"/v1/stacks/{segment(stack_id)}/pull", json=body, timeout=PULL_TIMEOUT_SECONDS
        )
        return result

    def get_service(self, service_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._client.request("GET", f"/v1/services/{segment(service_id)}")
        return result

    def find_service(self, environment: str, ref: str) -> dict[str, Any]:
        """A service by `STACK/SERVICE` or id."""
        stack_name, sep, service_name = ref.partition("/")
        for stack in self.list_all(environment, containers=True):
            for service in stack["services"]:
                if service["id"] == ref or (sep and stack["name"] == stack_name and service["name"] == service_name):
                    found: dict[str, Any] = service
                    return found
        raise NotFound(f"service {ref!r} not found in environment {environment!r} (use STACK/SERVICE)", field="service")

    def scale(self, service_id: str, scale: int) -> dict[str, Any]:
        result: dict[str, Any] = self._client.request(
            "POST", f"/v1/services/{segment(service_id)}/scale", json={"scale": scale}
        )
        return result

    def restart_service(
        self, service_id: str, *, batch_size: int | None = None, interval_ms: int = 0
    ) -> dict[str, Any]:
        """Restart all containers of a service at once, or `batch_size` at a time (a rolling restart)."""
        rolling = {"batch_size": batch_size, "interval_ms": interval_ms} if batch_size is not None else None
        result: dict[str, Any] = self._client.request(
            "POST", f"/v1/services/{segment(service_id)}/restart", json=rolling
        )
        return result

    def upgrade_action(self, kind: str, object_id: str, action: str) -> dict[str, Any]:
        """`action` is confirm-upgrade or rollback, of a `kind` "stacks" or "services"."""
        if kind not in ("stacks", "services") or action not in ("confirm-upgrade", "rollback"):
            raise ValueError(f"unknown upgrade action {kind}/{action}")
        result: dict[str, Any] = self._client.request("POST", f"/v1/{kind}/{segment(object_id)}/{action}")
        return result

    def containers(
        self, environment: str | None = None, stack: str | None = None, **filters: str
    ) -> list[dict[str, Any]]:
        """Every container (paged), narrowed by the server's filters: `service`, `host`, `state` (ids or names)."""
        unknown = set(filters) - {"service", "host", "state"}
        if unknown:
            raise InvalidInput(f"no container filter {sorted(unknown)[0]!r}", field="filter")
        params = {k: v for k, v in (("environment", environment), ("stack", stack), *filters.items()) if v}
        return self._client.list_pages("/v1/containers", params)

    def find_container(self, environment: str, ref: str) -> dict[str, Any]:
        for container in self.containers(environment):
            if ref in (container["id"], container["name"]) or (
                container["docker_id"] and container["docker_id"].startswith(ref)
            ):
                return container
        raise NotFound(f"container {ref!r} not found in environment {environment!r}", field="container")

    def get_container(self, container_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._client.request("GET", f"/v1/containers/{segment(container_id)}")
        return result

    def container_action(self, container_id: str, action: str) -> dict[str, Any]:
        if action not in ("start", "stop", "restart"):
            raise InvalidInput(f"unknown container action {action!r}", field="action")
        result: dict[str, Any] = self._client.request("POST", f"/v1/containers/{segment(container_id)}/{action}")
        return result

    # -- logs and exec --------------------------------------------------------------------------------------------

    def logs(
        self,
        container_id: str,
        *,
        follow: bool = False,
        tail: int | None = None,
        since: float | None = None,
        timestamps: bool = False,
    ) -> Iterator[bytes]:
        """The container's output as it arrives (until it ends, or forever with `follow`): the last `tail` lines,
        written at or after `since` (UNIX time), each line prefixed by the engine's time with `timestamps`."""
        params: dict[str, Any] = {"follow": follow}
        if tail is not None:
            params["tail"] = tail
        if since is not None:
            params["since"] = since
        if timestamps:
            params["timestamps"] = True
        path = f"/v1/containers/{segment(container_id)}/logs"
        try:
            with self._client._http.stream("GET", path, params=params, timeout=None) as response:
                if response.status_code >= 400:
                    response.read()
                    raise error_from(response)
                yield from response.iter_bytes()
        except httpx.TransportError as exc:
            raise Unavailable(f"lost the log stream from {self._client.url}: {exc}") from exc

    def stats(self, container_id: str, *, stream: bool = False) -> Iterator[dict[str, Any]]:
        """Resource-use samples (cpu_percent, memory_usage/limit/percent, network_rx/tx, time): one, or about one a
        second while `stream` until the container stops. A failure reported by the server raises Unavailable."""
        path = f"/v1/containers/{segment(container_id)}/stats"
        try:
            with self._client._http.stream("GET", path, params={"stream": stream}, timeout=None) as response:
                if response.status_code >= 400:
                    response.read()
                    raise error_from(response)
                for line in response.iter_lines():
                    if not line.strip():
                        continue
                    sample: dict[str, Any] = json.loads(line)
                    if "error" in sample:
                        raise Unavailable(f"stats of container {container_id}: {sample['error']}")
                    yield sample
        except httpx.TransportError as exc:
            raise Unavailable(f"lost the stats stream from {self._client.url}: {exc}") from exc

    def exec(self, container_id: str, cmd: list[str], *, timeout: float = 60.0) -> dict[str, Any]:
        result: dict[str, Any] = self._client.request(
            "POST",
            f"/v1/containers/{segment(container_id)}/exec",
            json={"cmd": cmd, "timeout": timeout},
            timeout=timeout + 10,
        )
        return result

    def exec_socket(self, container_id: str, cmd: list[str], *, tty: bool) -> tuple[str, dict[str, str]]:
        """URL and headers of the interactive exec websocket (binary frames are stdin/stdout)."""
        pairs: list[tuple[str, str | int | float | bool | None]] = [("cmd", part) for part in cmd]
        pairs.append(("tty", "true" if tty else "false"))
        query = str(httpx.QueryParams(pairs))
        base = self._client.url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        return f"{base}/v1/containers/{segment(container_id)}/exec?{query}", dict(self._client.auth_headers)


def _retry_after(response: httpx.Response, default: float) -> float:
    try:
        return min(max(float(response.headers.get("retry-after", default)), 0.1), _MAX_RETRY_DELAY)
    except ValueError:
        return default
