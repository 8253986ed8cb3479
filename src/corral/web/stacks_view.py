"""What the stack and service pages show, worked out from the API's JSON: per-stack counts, container rows with the
reason for anything not running, which upgrade actions apply, and the import form's plumbing (which form field an
API error belongs to; `start_on_create: false` for an import that should not start its services).

Why apart from the routes: these are pure functions of API data, tested without a server or a browser.
"""

from __future__ import annotations

from typing import Any

import yaml

from corral.compose.yamlsafe import SourceFloat, SourceInt, load_yaml
from corral.model.errors import CorralError
from corral.model.service_state import UPGRADE_STATES, ServiceState

COMPOSE_NAME = "docker-compose.yml"
RANCHER_COMPOSE_NAME = "rancher-compose.yml"
ANSWERS_NAME = "answers"
IMPORT_FIELDS = ("name", "compose", "rancher_compose", "answers")
_SETTLED = frozenset({"running"})


def stack_summary(stack: dict[str, Any]) -> dict[str, Any]:
    """One row of the stacks table: counts, the reasons of its services and its catalog origin."""
    services = stack.get("services", [])
    catalog = stack.get("catalog") or {}
    version = catalog.get("version_name") or catalog.get("version", "")
    return {
        "id": stack["id"],
        "name": stack["name"],
        "state": stack["state"],
        "reason": "; ".join(f"{s['name']}: {s['reason']}" for s in services if s.get("reason")),
        "services": len(services),
        "running": sum(int(s.get("running", 0)) for s in services),
        "desired": sum(int(s.get("scale", 0)) for s in services),
        "catalog": f"{catalog.get('catalog', '')}/{catalog.get('template', '')} {version}".strip() if catalog else "",
        "origin": catalog,
        "upgrades": [str(folder) for folder in catalog.get("upgrades", [])],
        "created_at": stack.get("created_at", 0),
    }


def container_reason(container: dict[str, Any]) -> str:
    """Why a container is not simply running and healthy ('' when it is)."""
    parts: list[str] = []
    state = container.get("state", "")
    if container.get("retired"):
        parts.append("old container kept for a rollback")
    if state == "exited" and container.get("exit_code") is not None:
        parts.append(f"exit code {container['exit_code']}")
    if container.get("reason"):
        parts.append(str(container["reason"]))
    if container.get("health") not in ("", None, "healthy") and container.get("health_reason"):
        parts.append(str(container["health_reason"]))
    if not parts and state not in _SETTLED and container.get("status"):
        parts.append(str(container["status"]))
    return "; ".join(parts)


def container_rows(services: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The containers of these services, by service then slot index, each with its `reason_text`."""
    rows = []
    for service in sorted(services, key=lambda s: s["name"]):
        for container in sorted(service.get("containers", []), key=lambda c: (c.get("retired", False), c["index"])):
            rows.append({**container, "reason_text": container_reason(container)})
    return rows


def service_actions(service: dict[str, Any]) -> dict[str, bool]:
    state = service.get("state", "")
    return {"confirm": state == ServiceState.UPGRADED, "rollback": state in UPGRADE_STATES}


def stack_actions(stack: dict[str, Any]) -> dict[str, bool]:
    """Confirm when every upgrade of the stack is done, roll back while any exists (api_upgrades.py's rules)."""
    states = [s.get("state", "") for s in stack.get("services", [])]
    upgrading = [s for s in states if s in UPGRADE_STATES]
    return {
        "confirm": bool(upgrading) and all(s == ServiceState.UPGRADED for s in upgrading),
        "rollback": bool(upgrading),
    }


_STOPPED = frozenset({"exited", "stopped", "created", "dead"})


def power_actions(containers: list[dict[str, Any]]) -> dict[str, bool]:
    """Stop while any current container is meant to run, start while any is meant to be stopped."""
    live = [c for c in containers if not c.get("retired")]
    return {
        "stop": any(c.get("desired", "running") == "running" for c in live),
        "start": any(c.get("desired") == "stopped" for c in live),
    }


def stack_progress(containers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The stop or start in flight, as "n of m containers done" (none once every container is where it was
    asked to be): containers asked to stop are done when the engine reports them not running, containers asked to
    run when it reports them running."""
    live = [c for c in containers if not c.get("retired")]
    progress = []
    for verb, desired, transitional, done in (
        ("Stopping", "stopped", "stopping", lambda c: c.get("state") in _STOPPED),
        ("Starting", "running", "starting", lambda c: c.get("state") == "running"),
    ):
        asked = [c for c in live if c.get("desired", "running") == desired]
        if any(c.get("state") == transitional for c in asked):
            progress.append({"verb": verb, "done": sum(1 for c in asked if done(c)), "total": len(asked)})
    return progress


def compose_files(exported: dict[str, Any]) -> dict[str, str]:
    """The upgrade form's fields from `GET /v1/stacks/{id}/files`: which stored file is the compose file and which
    the rancher-compose file (by name: a stack may have been applied from `compose.yaml`), and the answers."""
    files = {str(k): str(v) for k, v in dict(exported.get("files") or {}).items()}
    rancher = [name for name in files if "rancher-compose" in name]
    compose = [name for name in files if name not in rancher]
    answers = dict(exported.get("answers") or {})
    return {
        "compose_name": compose[0] if compose else COMPOSE_NAME,
        "compose": files[compose[0]] if compose else "",
        "rancher_compose_name": rancher[0] if rancher else RANCHER_COMPOSE_NAME,
        "rancher_compose": files[rancher[0]] if rancher else "",
        "answers": "".join(f"{k}={v}\n" for k, v in sorted(answers.items())),
    }


def import_field_of(error: CorralError) -> str:
    """The import form field an API error is about ('' for the general error box)."""
    field = error.field or ""
    message = error.message or ""
    for prefix, form_field in (
        (COMPOSE_NAME, "compose"),
        (RANCHER_COMPOSE_NAME, "rancher_compose"),
        (ANSWERS_NAME, "answers"),
    ):
        if field == prefix or field.startswith(prefix + ":") or (not field and message.startswith(prefix + ":")):
            return form_field
    if field in IMPORT_FIELDS:
        return field
    if field == "stack":
        return "name"
    return ""


class _SourceDumper(yaml.SafeDumper):
    """Writes numbers back as they were written (`007` stays `007`: it may be an environment value)."""


def _represent_source(tag: str) -> Any:
    def represent(dumper: yaml.SafeDumper, value: SourceInt | SourceFloat) -> yaml.ScalarNode:
        return dumper.represent_scalar(tag, getattr(value, "yaml_source", str(value)))

    return represent


_SourceDumper.add_representer(SourceInt, _represent_source("tag:yaml.org,2002:int"))
_SourceDumper.add_representer(SourceFloat, _represent_source("tag:yaml.org,2002:float"))


def _service_names(compose: str) -> list[str] | None:
    try:
        doc = load_yaml(compose, COMPOSE_NAME)
    except CorralError:
        return None
    if not isinstance(doc, dict):
        return None
    services = doc.get("services") if ("version" in doc or "services" in doc) else doc
    if not isinstance(services, dict):
        return None
    return [name for name in services if isinstance(name, str) and not name.startswith("x-")]


def without_start(compose: str, rancher_compose: str | None) -> str | None:
    """The rancher-compose text with `start_on_create: false` for every service of `compose`, so the stack is
    created with its containers stopped. Unreadable files are returned unchanged: the API names their error."""
    names = _service_names(compose)
    if not names:
        return rancher_compose
    try:
        doc = load_yaml(rancher_compose, RANCHER_COMPOSE_NAME) if rancher_compose and rancher_compose.strip() else None
    except CorralError:
        return rancher_compose
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        return rancher_compose
    if "version" in doc or "services" in doc:
        if doc.get("services") is None:
            doc["services"] = {}
        entries = doc["services"]
    else:
        entries = doc
    if not isinstance(entries, dict):
        return rancher_compose
    for name in names:
        entry = entries.get(name)
        if entry is None:
            entries[name] = {"start_on_create": False}
        elif isinstance(entry, dict):
            entry["start_on_create"] = False
        else:
            return rancher_compose
    return str(yaml.dump(doc, Dumper=_SourceDumper, sort_keys=False, default_flow_style=False))
