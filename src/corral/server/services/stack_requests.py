"""The body of `PUT /v1/stacks` (`corral up`), `POST /v1/stacks` and `POST /v1/stacks/plan`: the compose files and
what `corral up` sends with them; and the body of a rolling restart.

Why its own module: the stack routes, the plan route, the catalog (which builds such a body from a template) and
the secrets check of a stack all read it; none of them should import another's routes for it.
"""

from __future__ import annotations

from pydantic import Field

from corral.server.shared.bodies import Strict

MAX_FILE_BYTES = 1024 * 1024


class UpgradeRequest(Strict):
    """`corral up --upgrade`: a rolling upgrade of every service whose launch config changed (unset fields come from
    the service's rancher-compose `upgrade_strategy`, then the defaults: orchestrator/upgrades.py)."""

    batch_size: int | None = None
    interval_ms: int | None = None
    start_first: bool | None = None
    deadline_seconds: float | None = None  # for one batch to become ready (default: 5 min or initializing_timeout)


class StackFiles(Strict):
    environment: str = "default"
    name: str
    compose: str = Field(max_length=MAX_FILE_BYTES)
    compose_name: str = Field(default="docker-compose.yml", max_length=255)
    rancher_compose: str | None = Field(default=None, max_length=MAX_FILE_BYTES)
    rancher_compose_name: str = Field(default="rancher-compose.yml", max_length=255)
    answers: dict[str, str] = Field(default_factory=dict)
    env_files: dict[str, str] = Field(default_factory=dict)
    profiles: list[str] = Field(default_factory=list, max_length=100)  # Compose profiles enabled ("*": all)
    upgrade: UpgradeRequest | None = None
    # relative binds, secret and config files (path -> base64) and `environment:` sources, sent by `corral up`
    uploads: dict[str, str] | None = Field(default=None, repr=False)
    upload_environment: dict[str, str] = Field(default_factory=dict, repr=False)
    # `build:` contexts (sha256 -> base64 tar), which service builds from which, and auto | force | never
    build_contexts: dict[str, str] | None = Field(default=None, repr=False)
    build_context_of: dict[str, str] = Field(default_factory=dict)
    build: str = "auto"


class RollingRestart(Strict):
    """`corral restart STACK/SERVICE --batch-size N --interval MS`: stop and start `batch_size` containers at a
    time, the next batch once the previous one runs (and is healthy, when checked) and `interval_ms` has passed."""

    batch_size: int = 1
    interval_ms: int = 0
