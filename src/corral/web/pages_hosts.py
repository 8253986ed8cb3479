"""UI pages: environments (list, create, delete, switch, host approval on or off), the hosts of the current
environment (a live table with approve / cordon / activate / evacuate / remove, and the "Add host" panel with its
registration tokens: create, list with their state, revoke) and one host's page (facts, editable labels, the
containers it runs).

Why plain forms that post and redirect: every action works without JavaScript and carries the CSRF field; htmx only
refreshes the live hosts table and fetches a registration command in place. Errors from the API are shown next to
the field they name, with the form refilled.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from corral.model.entities import Orchestration
from corral.model.errors import CorralError, InvalidInput, NotFound
from corral.model.names import parse_label_pairs
from corral.model.policy import ALL, SETTINGS
from corral.web.rendering import environments_of, render
from corral.web.sessions import Session
from corral.web.shared import PageSession, PostSession

router = APIRouter()

ORCHESTRATIONS = [o.value for o in Orchestration]
HOST_ACTIONS = ("activate", "deactivate", "evacuate", "approve")
TOKEN_LIFETIMES = ("1h", "24h", "7d", "never")
HOST_PAGE_PARTS = ("facts", "labels", "containers")
CORRAL_CONTAINER_LABEL = "io.corral.container"
LABEL_SEPARATORS = re.compile(r"[\s,]+")

FormText = Annotated[str, Form()]
FormList = Annotated[list[str] | None, Form()]
POLICY_SETTINGS = [*SETTINGS, ALL]


def field_of(exc: CorralError, fields: tuple[str, ...], default: str) -> str:
    """Which form field an API error belongs to: `network.subnet` → `subnet`, `labels.k` → `labels`."""
    name = (exc.field or "").removeprefix("network.").split(".")[0]
    return name if name in fields else default


def _see(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _current_environment(session: Session) -> str:
    if not session.environment_id:
        environments_of(session)
    return session.environment_id


# -- environments ---------------------------------------------------------------------------------------------


def _environments_page(
    request: Request,
    session: Session,
    status_code: int = 200,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    client = session.client()
    rows = client.list_environments()
    host_counts = Counter(host["environment_id"] for host in client.list_hosts())
    return render(
        request,
        session,
        "environments.html",
        status_code,
        rows=rows,
        host_counts=host_counts,
        orchestrations=ORCHESTRATIONS,
        settings=POLICY_SETTINGS,
        form=form or {"name": "", "orchestration": "cattle", "subnet": "", "require_approval": "", "encryption": "on"},
        errors=errors or {},
    )


@router.get("/environments")
def environments_page(request: Request, session: PageSession) -> HTMLResponse:
    return _environments_page(request, session)


@router.post("/environments")
def create_environment(
    request: Request,
    session: PostSession,
    name: FormText = "",
    orchestration: FormText = "cattle",
    subnet: FormText = "",
    allow: FormList = None,
    require_approval: FormText = "",
    encryption: FormText = "on",
) -> Response:
    form = {
        "name": name.strip(),
        "orchestration": orchestration,
        "subnet": subnet.strip(),
        "allow": ",".join(allow or []),
        "require_approval": require_approval,
        "encryption": encryption,
    }
    try:
        if not form["name"]:
            raise InvalidInput("name is required", field="name")
        if encryption not in ("on", "off"):
            raise InvalidInput(f"overlay encryption must be on or off, not {encryption!r}", field="encryption")
        network: dict[str, object] = {"subnet": form["subnet"]} if form["subnet"] else {}
        if encryption == "off":
            network["encryption"] = False
        session.client().create_environment(
            form["name"],
            form["orchestration"],
            network=network or None,
            allow=allow or [],
            require_approval=bool(require_approval),
        )
    except CorralError as exc:
        errors = {field_of(exc, ("name", "orchestration", "subnet", "allow", "encryption"), "name"): exc.message}
        return _environments_page(request, session, exc.status if exc.status < 500 else 422, form, errors)
    return _see("/ui/environments")


@router.post("/environments/{environment_id}/policy")
def update_policy(request: Request, environment_id: str, session: PostSession, allow: FormList = None) -> Response:
    """The environment's allowed dangerous container settings: exactly the boxes ticked (none: locked)."""
    try:
        session.client().update_environment(environment_id, allow=allow or [])
    except CorralError as exc:
        status = exc.status if exc.status < 500 else 422
        return _environments_page(request, session, status, errors={"policy": exc.message})
    return _see("/ui/environments")


@router.post("/environments/{environment_id}/approval")
def set_environment_approval(environment_id: str, session: PostSession, require_approval: FormText = "") -> Response:
    """Switch whether new hosts of the environment wait for an admin's approval."""
    session.client().update_environment(environment_id, require_approval=require_approval == "1")
    return _see("/ui/environments")


@router.post("/environments/{environment_id}/delete")
def delete_environment(environment_id: str, session: PostSession) -> Response:
    session.client().delete_environment(environment_id)
    if session.environment_id == environment_id:
        session.environment_id = ""
    return _see("/ui/environments")


# -- hosts ----------------------------------------------------------------------------------------------------


def _hosts_page(
    request: Request,
    session: Session,
    status_code: int = 200,
    form: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    command: str = "",
    warning: str | None = None,
) -> HTMLResponse:
    environment_id = _current_environment(session)
    client = session.client()
    hosts = client.list_hosts(environment_id) if environment_id else []
    tokens = client.list_registration_tokens(environment_id) if environment_id else []
    return render(
        request,
        session,
        "hosts.html",
        status_code,
        hosts=hosts,
        tokens=tokens,
        lifetimes=TOKEN_LIFETIMES,
        form=form or {"name": "", "labels": ""},
        errors=errors or {},
        command=command,
        warning=warning,
    )


@router.get("/hosts")
def hosts_page(request: Request, session: PageSession) -> HTMLResponse:
    return _hosts_page(request, session)


@router.get("/hosts/rows")
def hosts_rows(request: Request, session: PageSession) -> HTMLResponse:
    """The hosts table's rows, re-fetched by htmx whenever an event arrives."""
    environment_id = _current_environment(session)
    hosts = session.client().list_hosts(environment_id) if environment_id else []
    return render(request, session, "_hosts_rows.html", hosts=hosts)


@router.get("/hosts/tokens")
def registration_token_rows(request: Request, session: PageSession) -> HTMLResponse:
    """The registration tokens' rows, re-fetched by htmx whenever an event arrives."""
    environment_id = _current_environment(session)
    tokens = session.client().list_registration_tokens(environment_id) if environment_id else []
    return render(request, session, "_hosts_tokens.html", tokens=tokens)


@router.post("/hosts/registration-token")
def create_registration_token(
    request: Request, session: PostSession, expires: FormText = "24h", once: FormText = ""
) -> Response:
    """A new token and the exact command that registers a machine with it (the secret is shown only now)."""
    environment_id = _current_environment(session)
    token = session.client().create_registration_token(
        environment_id,
        "created in the web UI",
        expires=expires if expires in TOKEN_LIFETIMES else None,
        max_uses=1 if once else None,
    )
    if request.headers.get("hx-request"):
        return render(request, session, "_hosts_command.html", command=token["command"], warning=token.get("warning"))
    return _hosts_page(request, session, command=token["command"], warning=token.get("warning"))


@router.post("/hosts/registration-tokens/{token_id}/revoke")
def revoke_registration_token(token_id: str, session: PostSession) -> Response:
    session.client().revoke_registration_token(token_id)
    return _see("/ui/hosts#registration-tokens")


@router.post("/hosts/local")
def create_local_host(request: Request, session: PostSession, name: FormText = "", labels: FormText = "") -> Response:
    form = {"name": name.strip(), "labels": labels.strip()}
    try:
        if not form["name"]:
            raise InvalidInput("name is required", field="name")
        pairs = [pair for pair in LABEL_SEPARATORS.split(form["labels"]) if pair]
        parsed = parse_label_pairs(pairs, field="labels")
        session.client().create_host(_current_environment(session), form["name"], driver="local", labels=parsed)
    except CorralError as exc:
        errors = {field_of(exc, ("name", "labels"), "name"): exc.message}
        return _hosts_page(request, session, exc.status if exc.status < 500 else 422, form, errors)
    return _see("/ui/hosts")


def _back(next_url: str, default: str) -> str:
    return next_url if next_url.startswith("/ui/") and not next_url.startswith("//") else default


@router.post("/hosts/{host_id}/remove")
def remove_host(host_id: str, session: PostSession) -> Response:
    session.client().delete_host(host_id)
    return _see("/ui/hosts")


@router.post("/hosts/{host_id}/actions/{action}")
def host_action(host_id: str, action: str, session: PostSession, next: FormText = "/ui/hosts") -> Response:
    if action not in HOST_ACTIONS:
        raise InvalidInput(f"unknown host action {action!r}; choose one of {', '.join(HOST_ACTIONS)}", field="action")
    session.client().host_action(host_id, action)
    return _see(_back(next, "/ui/hosts"))


# -- one host -------------------------------------------------------------------------------------------------


def _host_context(session: Session, host_id: str) -> dict[str, Any]:
    client = session.client()
    host = client.get_host(host_id)
    if host["environment_id"] != session.environment_id:
        session.environment_id = host["environment_id"]
    containers = sorted(client.list_host_containers(host_id), key=lambda c: c["name"])
    for container in containers:
        container["corral_id"] = container["labels"].get(CORRAL_CONTAINER_LABEL, "")
    return {"host": host, "containers": containers}


def _host_page(
    request: Request,
    session: Session,
    host_id: str,
    status_code: int = 200,
    label: str = "",
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    context = _host_context(session, host_id)
    return render(request, session, "host.html", status_code, label=label, errors=errors or {}, **context)


@router.get("/hosts/{host_id}")
def host_page(request: Request, host_id: str, session: PageSession) -> Response:
    chosen = request.query_params.get("env")
    if chosen and session.client().get_host(host_id)["environment_id"] != chosen:
        return _see("/ui/hosts")  # the switcher chose another environment: show its hosts
    return _host_page(request, session, host_id)


@router.get("/hosts/{host_id}/part/{part}")
def host_page_part(request: Request, host_id: str, part: str, session: PageSession) -> HTMLResponse:
    """A live region of the host page (facts, labels or containers), re-fetched by htmx on every event."""
    if part not in HOST_PAGE_PARTS:
        raise NotFound(f"no part {part!r} of a host page; choose one of {', '.join(HOST_PAGE_PARTS)}", field="part")
    return render(request, session, f"_host_{part}.html", **_host_context(session, host_id))


@router.post("/hosts/{host_id}/labels")
def add_host_label(request: Request, host_id: str, session: PostSession, label: FormText = "") -> Response:
    """Set one KEY=VALUE label (replacing the key's value if it exists)."""
    client = session.client()
    try:
        labels = dict(client.get_host(host_id)["labels"])
        labels.update(parse_label_pairs([label.strip()], field="label"))
        client.update_host_labels(host_id, labels)
    except CorralError as exc:
        if exc.field is None or not exc.field.startswith(("label", "labels")):
            raise
        return _host_page(request, session, host_id, exc.status, label, {"label": exc.message})
    return _see(f"/ui/hosts/{host_id}")


@router.post("/hosts/{host_id}/labels/remove")
def remove_host_label(host_id: str, session: PostSession, key: FormText = "") -> Response:
    client = session.client()
    labels = dict(client.get_host(host_id)["labels"])
    labels.pop(key, None)
    client.update_host_labels(host_id, labels)
    return _see(f"/ui/hosts/{host_id}")
