"""What the signed-in caller may change in the session's environment, for the UI to show or hide its forms.

Why here and from the model: the API decides every request (server/security/access_rules.py); the UI only avoids
offering a read-only user buttons that would be refused. It asks `/v1/me` for the caller's role and the model's own
matrix (`model.access.permits`) for what that role may do, so the two can never disagree about the rules.
"""

from __future__ import annotations

from typing import Any

from corral.client.access import AccessClient
from corral.model.access import Action, Resource, Role, permits
from corral.model.errors import CorralError
from corral.web.sessions import Session


def role_here(session: Session, me: dict[str, Any] | None = None) -> Role | None:
    """The caller's role in the session's environment (admins are owners everywhere); None without one."""
    try:
        me = me if me is not None else AccessClient(session.client()).me()
    except CorralError:
        return None
    if me.get("admin"):
        return Role.OWNER
    for environment in me.get("environments") or []:
        if environment.get("id") == session.environment_id:
            try:
                return Role(str(environment.get("role")))
            except ValueError:
                return None
    return None


def may_change(session: Session, resource: Resource, me: dict[str, Any] | None = None) -> bool:
    return permits(role_here(session, me), resource, Action.WRITE)
