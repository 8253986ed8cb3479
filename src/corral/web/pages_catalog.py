"""UI pages: the catalog (templates as cards, sources), a template's page with its README, the launch form generated
from its questions, a preview of the rendered compose files, and upgrade offers for stacks installed from it.

Why the form is rebuilt on the server for every preview or failed launch: the API is the only judge of answers
(types, bounds, required), so the page shows its 422 next to the question it names (`answers.VARIABLE`) and keeps
what the user typed; there is no second set of rules in the browser (the form has `novalidate`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from corral.client import CorralClient
from corral.client.access import AccessClient
from corral.model.access import Resource
from corral.model.errors import CorralError
from corral.web.markdown import render_markdown
from corral.web.permissions import may_change
from corral.web.rendering import render
from corral.web.sessions import Session
from corral.web.shared import PageSession, PostSession

router = APIRouter()
ANSWER_PREFIX = "answers."
ICON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "Cache-Control": "private, max-age=300",
}


async def submitted_form(request: Request) -> dict[str, str]:
    """The posted form fields; of repeated names the last wins (a checkbox after its hidden "false")."""
    fields: dict[str, str] = {}
    for name, value in (await request.form()).multi_items():
        if isinstance(value, str):
            fields[name] = value
    return fields


FormFields = Annotated[dict[str, str], Depends(submitted_form)]
FormText = Annotated[str, Form()]


def template_url(catalog: str, template: str) -> str:
    return f"/ui/catalog/{quote(catalog, safe='')}/{quote(template, safe='')}"


def _is_htmx(request: Request) -> bool:
    return bool(request.headers.get("hx-request"))


def _redirect(request: Request, target: str) -> Response:
    if _is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


# -- catalog list ----------------------------------------------------------------------------------------------


def _matches(template: dict[str, Any], text: str, category: str) -> bool:
    if category and category not in (template.get("categories") or [template.get("category", "")]):
        return False
    haystack = " ".join(str(template.get(k, "")) for k in ("display_name", "name", "description", "catalog"))
    return text.lower() in haystack.lower()


@router.get("/catalog")
def catalog_page(request: Request, session: PageSession, q: str = "", category: str = "") -> HTMLResponse:
    return _catalog_page(request, session, q=q, category=category)


def _catalog_page(
    request: Request,
    session: Session,
    status: int = 200,
    *,
    q: str = "",
    category: str = "",
    error: str = "",
    source_form: dict[str, str] | None = None,
) -> HTMLResponse:
    client = session.client()
    listing = client.catalog.templates(session.environment_id) if session.environment_id else {"data": []}
    templates = sorted(listing["data"], key=lambda t: (str(t["display_name"]).lower(), t["catalog"]))
    categories = sorted({c for t in templates for c in (t.get("categories") or [t.get("category")]) if c})
    shown = [t for t in templates if _matches(t, q.strip(), category)]
    me = AccessClient(client).me()
    return render(
        request,
        session,
        "catalog.html",
        status,
        templates=shown,
        total=len(templates),
        categories=categories,
        query=q,
        category=category,
        problems=listing.get("problems", {}),
        sources=client.catalog.sources(session.environment_id or None),
        source_error=error,
        source_form=source_form or {"name": "", "kind": "git", "url": "", "branch": "", "scope": "environment"},
        can_refresh=may_change(session, Resource.STACKS, me),
        can_manage=may_change(session, Resource.ENVIRONMENT, me),
        admin=bool(me.get("admin")),
    )


@router.get("/catalog-icons/{catalog}/{template}")
def catalog_icon(session: PageSession, catalog: str, template: str) -> Response:
    """The template's icon from /v1 (images must be same-origin under the UI's CSP)."""
    content, media_type = session.client().catalog.icon(catalog, template, session.environment_id or "default")
    return Response(content=content, media_type=media_type, headers=ICON_HEADERS)


@router.post("/catalog/sources")
def add_source(
    request: Request,
    session: PostSession,
    name: FormText = "",
    kind: FormText = "git",
    url: FormText = "",
    branch: FormText = "",
    scope: FormText = "environment",
) -> Response:
    """A git repository or a server-side directory of templates, for this environment or (admins) for all."""
    form = {"name": name, "kind": kind, "url": url, "branch": branch, "scope": scope}
    environment = (session.environment_id or "default") if scope != "global" else None
    try:
        session.client().catalog.add(name.strip(), kind, url.strip(), branch=branch.strip(), environment=environment)
    except CorralError as exc:
        status = exc.status if exc.status < 500 else 422
        return _catalog_page(request, session, status, error=exc.message, source_form=form)
    return _redirect(request, "/ui/catalog#sources")


@router.post("/catalog/sources/{catalog_id}/refresh")
def refresh_source(request: Request, session: PostSession, catalog_id: str) -> Response:
    try:
        session.client().catalog.refresh(catalog_id)
    except CorralError as exc:
        return _catalog_page(request, session, exc.status if exc.status < 500 else 422, error=exc.message)
    return _redirect(request, "/ui/catalog#sources")


@router.post("/catalog/sources/{catalog_id}/remove")
def remove_source(request: Request, session: PostSession, catalog_id: str) -> Response:
    try:
        session.client().catalog.remove(catalog_id)
    except CorralError as exc:
        return _catalog_page(request, session, exc.status if exc.status < 500 else 422, error=exc.message)
    return _redirect(request, "/ui/catalog#sources")


# -- a template: README, launch form, preview, upgrades ---------------------------------------------------------


def _version(template: dict[str, Any], wanted: str) -> dict[str, Any]:
    versions: list[dict[str, Any]] = template["versions"]
    for version in versions:
        if wanted in (version["folder"], version["version"]):
            return version
    default = template.get("default_version", "")
    return next((v for v in versions if v["folder"] == default), versions[-1])


def _services(client: CorralClient, environment: str) -> list[str]:
    return sorted(
        f"{stack['name']}/{service['name']}"
        for stack in client.stacks.list_all(environment)
        for service in stack.get("services", [])
    )


def _upgrade_offers(client: CorralClient, environment: str, template: dict[str, Any]) -> list[dict[str, Any]]:
    """Stacks installed from this template, with the versions (folder, name) each may upgrade to."""
    names = {v["folder"]: v["version"] for v in template["versions"]}
    offers = []
    for stack in client.stacks.list_all(environment):
        origin = stack.get("catalog") or {}
        if origin.get("catalog") != template["catalog"] or origin.get("template") != template["name"]:
            continue
        upgrades = [{"folder": f, "version": names.get(f, f)} for f in origin.get("upgrades", [])]
        offers.append({"stack": stack, "current": origin.get("version_name", ""), "upgrades": upgrades})
    return offers


def _form_context(
    client: CorralClient,
    environment: str,
    template: dict[str, Any],
    version: dict[str, Any],
    fields: dict[str, str] | None,
) -> dict[str, Any]:
    """The launch form's questions with their current values (defaults, or what was posted)."""
    values = {
        q["variable"]: (fields.get(ANSWER_PREFIX + q["variable"], "") if fields is not None else str(q["default"]))
        for q in version["questions"]
    }
    wants_services = any(q["type"] == "service" for q in version["questions"])
    return {
        "entry": template,
        "version": version,
        "values": values,
        "stack_name": (fields or {}).get("stack", template["name"] if fields is None else ""),
        "services": _services(client, environment) if wants_services else [],
        "errors": {},
        "error": "",
        "preview": None,
        "action": template_url(template["catalog"], template["name"]),
    }


def _answers(version: dict[str, Any], fields: dict[str, str]) -> dict[str, str]:
    return {
        q["variable"]: fields[ANSWER_PREFIX + q["variable"]]
        for q in version["questions"]
        if ANSWER_PREFIX + q["variable"] in fields
    }


def _readable(preview: dict[str, Any]) -> dict[str, Any]:
    """Runs of blank lines (where the API blanked the `catalog:` section, keeping line numbers) shown as one."""
    files = {name: re.sub(r"\n\s*\n(\s*\n)+", "\n\n", text) for name, text in preview["files"].items()}
    return {**preview, "files": files}


def _place_error(context: dict[str, Any], exc: CorralError) -> None:
    """The API's error next to the field it names (a question, the stack name, the version), else above the form."""
    field = exc.field or ""
    known = {ANSWER_PREFIX + q["variable"] for q in context["version"]["questions"]}
    if field in known:  # "answers: question Label (VAR): reason" -> the reason, shown under that question
        variable = re.escape(field.removeprefix(ANSWER_PREFIX))
        context["errors"][field] = re.sub(rf"^answers: question (.*\({variable}\)|{variable}): ", "", exc.message)
    elif field in ("stack", "name", "version"):
        context["errors"]["stack" if field == "name" else field] = exc.message
    else:
        context["error"] = exc.message


@router.get("/catalog/{catalog}/{template}")
def template_page(
    request: Request, session: PageSession, catalog: str, template: str, version: str = ""
) -> HTMLResponse:
    client = session.client()
    environment = session.environment_id or "default"
    found = client.catalog.template(catalog, template, environment)
    chosen = _version(found, version)
    return render(
        request,
        session,
        "template.html",
        readme=render_markdown(chosen.get("readme") or ""),
        offers=_upgrade_offers(client, environment, found),
        upgrade_error="",
        **_form_context(client, environment, found, chosen, None),
    )


def _launch_or_preview(
    request: Request, session: Session, catalog: str, template: str, fields: dict[str, str], *, install: bool
) -> Response:
    client = session.client()
    environment = session.environment_id or "default"
    found = client.catalog.template(catalog, template, environment)
    chosen = _version(found, fields.get("version", ""))
    context = _form_context(client, environment, found, chosen, fields)
    stack_name = fields.get("stack", "").strip()
    context["stack_name"] = stack_name
    answers = _answers(chosen, fields)
    try:
        if install:
            stack = client.catalog.install(
                environment, catalog, template, stack_name, version=chosen["folder"], answers=answers
            )
            return _redirect(request, f"/ui/stacks/{quote(str(stack['id']), safe='')}")
        context["preview"] = _readable(
            client.catalog.preview(
                environment, catalog, template, stack_name or found["name"], version=chosen["folder"], answers=answers
            )
        )
        status = 200
    except CorralError as exc:
        _place_error(context, exc)
        status = exc.status if 400 <= exc.status < 500 else 422
    if _is_htmx(request):
        return render(request, session, "_launch.html", status, **context)
    return render(
        request,
        session,
        "template.html",
        status,
        readme=render_markdown(chosen.get("readme") or ""),
        offers=_upgrade_offers(client, environment, found),
        upgrade_error="",
        **context,
    )


@router.post("/catalog/{catalog}/{template}/launch")
def launch(request: Request, session: PostSession, fields: FormFields, catalog: str, template: str) -> Response:
    return _launch_or_preview(request, session, catalog, template, fields, install=True)


@router.post("/catalog/{catalog}/{template}/preview")
def preview(request: Request, session: PostSession, fields: FormFields, catalog: str, template: str) -> Response:
    return _launch_or_preview(request, session, catalog, template, fields, install=False)


@router.post("/catalog/{catalog}/{template}/upgrade")
def upgrade(request: Request, session: PostSession, fields: FormFields, catalog: str, template: str) -> Response:
    """Upgrade a stack installed from this template (a rolling upgrade), then show the stack."""
    client = session.client()
    stack_id = fields.get("stack_id", "")
    try:
        client.catalog.upgrade(stack_id, version=fields.get("version") or None)
    except CorralError as exc:
        environment = session.environment_id or "default"
        found = client.catalog.template(catalog, template, environment)
        offers = _upgrade_offers(client, environment, found)
        status = exc.status if 400 <= exc.status < 500 else 422
        if _is_htmx(request):
            return render(
                request, session, "_upgrades.html", status, offers=offers, upgrade_error=exc.message, entry=found
            )
        chosen = _version(found, "")
        return render(
            request,
            session,
            "template.html",
            status,
            readme=render_markdown(chosen.get("readme") or ""),
            offers=offers,
            upgrade_error=exc.message,
            **_form_context(client, environment, found, chosen, None),
        )
    return _redirect(request, f"/ui/stacks/{quote(stack_id, safe='')}")
