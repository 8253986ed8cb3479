"""REST routes for catalogs: sources (dir, git, the built-in `library`), templates, icons, install and upgrade.

Why install goes through `apply_stack` (services/stacks.py): a template version, once its answers are checked and its
`.tpl` files rendered, is just compose files + answers, so it takes exactly the path of `corral up` (same compose
checks, same 422s naming file/service/field, nothing stored on error), and an upgrade is `corral up --upgrade`: a
rolling upgrade. The stack remembers its origin (catalog, template, version, answers) so that upgrades can be offered
and merged.
"""

from __future__ import annotations

import mimetypes
from pathlib import PurePath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import Field

from corral.catalog.answers import resolve_answers
from corral.catalog.loader import read_icon
from corral.catalog.model import Template, TemplateVersion, folder_order
from corral.fetch.git import redact_url
from corral.model.entities import Principal
from corral.model.errors import InvalidInput, NotFound
from corral.model.policy import allowed_findings, violations
from corral.model.stack import Stack
from corral.server.routes.common import stack_result
from corral.server.security.auth import require_admin
from corral.server.services.catalog_service import CatalogService, find_version, may_upgrade
from corral.server.services.stack_requests import StackFiles, UpgradeRequest
from corral.server.services.stacks import parse_stack_files, stack_service_of, store_of
from corral.server.shared.bodies import Strict
from corral.store.catalogs import CatalogSource
from corral.store.stacks import StackStore

router = APIRouter(prefix="/v1")
Admin = Annotated[Principal, Depends(require_admin)]
SECRET_TYPES = ("password", "secret")
ICON_TYPES = {".svg": "image/svg+xml", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
MAX_ANSWER_BYTES = 256 * 1024


class CatalogCreate(Strict):
    name: str
    kind: str = "git"
    url: str = Field(max_length=4096)
    branch: str = ""
    environment: str | None = None  # None: a global catalog


class InstallRequest(Strict):
    stack: str
    version: str | None = None  # a folder ("3") or a catalog version ("2.0.1"); default: the template's version
    answers: dict[str, str] = Field(default_factory=dict)


class CatalogUpgradeRequest(Strict):
    version: str | None = None  # default: the newest version it may upgrade to
    answers: dict[str, str] = Field(default_factory=dict)  # merged over the stack's answers
    batch_size: int | None = None
    interval_ms: int | None = None
    start_first: bool | None = None


def catalogs_of(request: Request) -> CatalogService:
    catalogs: CatalogService = request.app.state.catalogs
    return catalogs


def _source_view(source: CatalogSource) -> dict[str, Any]:
    return {
        "id": source.id,
        "name": source.name,
        "kind": source.kind,
        "url": redact_url(source.url),
        "branch": source.branch,
        "environment_id": source.environment_id,
        "commit": source.commit,
        "refreshed_at": source.refreshed_at,
        "error": source.error,
        "created_at": source.created_at,
    }


# -- sources ----------------------------------------------------------------------------------------------------


@router.get("/catalogs")
def list_catalogs(request: Request, _: Admin, environment: Annotated[str | None, Query()] = None) -> dict[str, Any]:
    catalogs = catalogs_of(request)
    if environment:
        sources = catalogs.visible(store_of(request).get_environment(environment).id)
    else:
        sources = catalogs.sources.list_sources()
    return {"data": [_source_view(s) for s in sources]}


@router.post("/catalogs", status_code=201)
def create_catalog(request: Request, body: CatalogCreate, _: Admin) -> dict[str, Any]:
    env_id = store_of(request).get_environment(body.environment).id if body.environment else ""
    source = catalogs_of(request).add(
        name=body.name, kind=body.kind, url=body.url, branch=body.branch, environment_id=env_id
    )
    return _source_view(source)


@router.get("/catalogs/{catalog_id}")
def get_catalog(request: Request, catalog_id: str, _: Admin) -> dict[str, Any]:
    return _source_view(catalogs_of(request).sources.get(catalog_id))


@router.delete("/catalogs/{catalog_id}", status_code=204)
def delete_catalog(request: Request, catalog_id: str, _: Admin) -> Response:
    catalogs_of(request).remove(catalog_id)
    return Response(status_code=204)


@router.post("/catalogs/{catalog_id}/refresh")
def refresh_catalog(request: Request, catalog_id: str, _: Admin) -> dict[str, Any]:
    return _source_view(catalogs_of(request).refresh(catalog_id))


# -- templates --------------------------------------------------------------------------------------------------


def _icon_url(catalog: str, template: Template, environment: str) -> str:
    return f"/v1/templates/{catalog}/{template.name}/icon?environment={environment}" if template.icon else ""


def _template_summary(catalog: str, template: Template, environment: str) -> dict[str, Any]:
    return {
        "catalog": catalog,
        "name": template.name,
        "id": f"{catalog}/{template.name}",
        "display_name": template.display_name or template.name,
        "description": template.description,
        "category": template.category,
        "categories": list(template.categories),
        "maintainer": template.maintainer,
        "license": template.license,
        "project_url": template.project_url,
        "labels": dict(template.labels),
        "icon": _icon_url(catalog, template, environment),
        "default_version": template.default_folder() or "",
        "versions": [{"folder": v.folder, "version": v.version} for v in _ordered(template)],
    }


def _ordered(template: Template) -> list[TemplateVersion]:
    return sorted(template.versions.values(), key=lambda v: folder_order(v.folder))


def _version_view(version: TemplateVersion) -> dict[str, Any]:
    return {
        "folder": version.folder,
        "version": version.version,
        "name": version.name,
        "description": version.description,
        "minimum_version": version.minimum_version,
        "maximum_version": version.maximum_version,
        "upgrade_from": version.upgrade_from,
        "readme": version.readme,
        "files": sorted(version.files),
        "questions": [
            {
                "variable": q.variable,
                "label": q.label,
                "description": q.description,
                "type": q.type,
                "required": q.required,
                "default": "" if q.type in SECRET_TYPES else q.default,
                "options": list(q.options),
                "min": q.min,
                "max": q.max,
                "min_length": q.min_length,
                "max_length": q.max_length,
                "group": q.group,
            }
            for q in version.questions
        ],
    }


@router.get("/environments/{ref}/templates")
def list_templates(request: Request, ref: str, _: Admin) -> dict[str, Any]:
    env = store_of(request).get_environment(ref)
    catalogs = catalogs_of(request)
    data, problems = [], {}
    for source in catalogs.visible(env.id):
        catalog = catalogs.load(source)
        data += [_template_summary(source.name, t, env.name) for t in catalog.templates.values()]
        problems.update({f"{source.name}/{key}": reason for key, reason in catalog.problems.items()})
        if source.error:
            problems[source.name] = source.error
    return {"data": data, "problems": problems}


@router.get("/templates/{catalog}/{template}")
def get_template(
    request: Request, catalog: str, template: str, _: Admin, environment: Annotated[str, Query()] = "default"
) -> dict[str, Any]:
    env = store_of(request).get_environment(environment)
    found = catalogs_of(request).template(env.id, catalog, template)
    summary = _template_summary(catalog, found, env.name)
    return {**summary, "versions": [_version_view(v) for v in _ordered(found)]}


@router.get("/templates/{catalog}/{template}/icon")
def get_icon(
    request: Request, catalog: str, template: str, _: Admin, environment: Annotated[str, Query()] = "default"
) -> Response:
    env = store_of(request).get_environment(environment)
    catalogs = catalogs_of(request)
    source = catalogs.source_named(env.id, catalog)
    found = catalogs.template(env.id, catalog, template)
    content = read_icon(catalogs.root(source), found.name, found.icon) if found.icon else None
    if content is None:  # never a file outside the template folder, nor through a symbolic link
        raise NotFound(f"template {catalog}/{template} has no icon", field="icon")
    suffix = PurePath(found.icon).suffix.lower()
    media = ICON_TYPES.get(suffix) or mimetypes.guess_type(found.icon)[0] or "application/octet-stream"
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    }
    return Response(content=content, media_type=media, headers=headers)


# -- install and upgrade ----------------------------------------------------------------------------------------


def _environment_services(request: Request, environment_id: str) -> list[str]:
    stacks: StackStore = request.app.state.stacks
    return [f"{s.stack}/{s.name}" for s in stacks.list_services(environment_id=environment_id)]


def _stack_files(
    request: Request, environment_id: str, stack_name: str, version: TemplateVersion, given: dict[str, str]
) -> tuple[dict[str, str], StackFiles]:
    """The answers resolved and checked, and the version's files rendered with them (what install deploys)."""
    if sum(len(k) + len(v) for k, v in given.items()) > MAX_ANSWER_BYTES:
        raise InvalidInput("answers are too large", field="answers")
    certificates = [c.name for c in request.app.state.certificates.list(environment_id)]
    answers = resolve_answers(
        version.questions, given, services=_environment_services(request, environment_id), certificates=certificates
    )
    rendered = catalogs_of(request).render(version, answers, stack_name=stack_name)
    if "docker-compose.yml" not in rendered:
        raise InvalidInput(f"template {version.key} has no docker-compose.yml", field="files")
    body = StackFiles(
        environment=environment_id,
        name=stack_name,
        compose=rendered["docker-compose.yml"],
        rancher_compose=rendered.get("rancher-compose.yml") or None,
        answers=answers,
    )
    return answers, body


def _deploy(
    request: Request,
    *,
    environment_id: str,
    stack_name: str,
    catalog: str,
    version: TemplateVersion,
    given: dict[str, str],
    upgrade: UpgradeRequest | None,
    create_only: bool,
) -> Stack:
    """Answers checked, `.tpl` rendered, then `corral up` with the origin stored; any error leaves nothing behind."""
    answers, body = _stack_files(request, environment_id, stack_name, version, given)
    body.upgrade = upgrade
    origin = {
        "catalog": catalog,
        "template": version.template,
        "version": version.folder,
        "version_name": version.version,
        "answers": answers,
        "secrets": [q.variable for q in version.questions if q.type in SECRET_TYPES],
    }
    stack, _changed, _created = stack_service_of(request).apply(body, catalog=origin, create_only=create_only)
    return stack


@router.post("/environments/{ref}/templates/{catalog}/{template}/install", status_code=201)
def install_template(
    request: Request, ref: str, catalog: str, template: str, body: InstallRequest, _: Admin
) -> dict[str, Any]:
    env = store_of(request).get_environment(ref)
    found = catalogs_of(request).template(env.id, catalog, template)
    version = find_version(found, body.version)
    stack = _deploy(
        request,
        environment_id=env.id,
        stack_name=body.stack,
        catalog=catalog,
        version=version,
        given=body.answers,
        upgrade=None,
        create_only=True,
    )
    return stack_result(request, stack.id)


@router.post("/environments/{ref}/templates/{catalog}/{template}/preview")
def preview_template(
    request: Request, ref: str, catalog: str, template: str, body: InstallRequest, _: Admin
) -> dict[str, Any]:
    """What install would deploy for these answers (rendered files, resolved answers, services), storing nothing.

    The same checks as install run (answers, `.tpl` rendering, the compose pipeline), so their 422s name the same
    question or file; only the check that no stack of that name exists is left to install.
    """
    env = store_of(request).get_environment(ref)
    found = catalogs_of(request).template(env.id, catalog, template)
    version = find_version(found, body.version)
    answers, files = _stack_files(request, env.id, body.stack, version, body.answers)
    spec, _stored = parse_stack_files(files)
    policy = stack_service_of(request).environment_policy(env)
    allowed = [f.warning(env.name) for f in allowed_findings(spec, policy)]
    secret = {q.variable for q in version.questions if q.type in SECRET_TYPES}
    hidden = {v for k, v in answers.items() if k in secret and v}

    def masked(value: str) -> str:
        return "********" if value in hidden else value

    return {
        "template": f"{catalog}/{found.name}",
        "version": {"folder": version.folder, "version": version.version},
        "files": {"docker-compose.yml": files.compose, "rancher-compose.yml": files.rancher_compose or ""},
        "answers": {k: masked(v) if k in secret else v for k, v in answers.items()},
        "services": [
            {
                "name": s.name,
                "image": s.launch.image,
                "scale": s.scale,
                "environment": {k: masked(v) for k, v in s.launch.environment},
            }
            for s in spec.services
        ],
        "warnings": [*spec.warnings, *allowed],
        # dangerous fields (model/policy.py): allowed ones are warnings above; refused ones make install fail
        "policy": {"allowed": allowed, "refused": [f.refusal(env.name) for f in violations(spec, policy)]},
    }


@router.post("/stacks/{stack_id}/catalog-upgrade")
def catalog_upgrade(request: Request, stack_id: str, body: CatalogUpgradeRequest, _: Admin) -> dict[str, Any]:
    stacks: StackStore = request.app.state.stacks
    stack = stacks.get_stack(stack_id)
    origin = stack.catalog
    if not origin:
        raise InvalidInput(f"stack {stack.name} was not installed from a catalog", field="stack")
    catalogs = catalogs_of(request)
    found = catalogs.template(stack.environment_id, str(origin["catalog"]), str(origin["template"]))
    current = found.versions.get(str(origin.get("version", "")))
    if body.version:
        target = find_version(found, body.version)
    else:
        offers = catalogs.upgrade_offers(stack.environment_id, origin)
        if not offers:
            raise InvalidInput(f"stack {stack.name}: no newer version of {found.name} may upgrade it", field="version")
        target = found.versions[offers[-1]]
    current_name = current.version if current is not None else str(origin.get("version_name", ""))
    allowed = may_upgrade(current, target) if current is not None else target.folder != origin.get("version")
    if not allowed:
        rule = f" (upgrade_from {target.upgrade_from!r})" if target.upgrade_from else ""
        raise InvalidInput(
            f"stack {stack.name} runs {found.name} {current_name}; version {target.folder} ({target.version}) "
            f"cannot upgrade it{rule}",
            field="version",
        )
    old_answers = {str(k): str(v) for k, v in dict(origin.get("answers", {})).items()}
    upgrade = UpgradeRequest(batch_size=body.batch_size, interval_ms=body.interval_ms, start_first=body.start_first)
    _deploy(
        request,
        environment_id=stack.environment_id,
        stack_name=stack.name,
        catalog=str(origin["catalog"]),
        version=target,
        given={**old_answers, **body.answers},
        upgrade=upgrade,
        create_only=False,
    )
    return stack_result(request, stack.id)
