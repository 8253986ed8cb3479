"""From an API key row to the principal calling with it: expiry, the user behind it, a service account's
container, usage time.

Why apart from the repository: authentication runs on every request and must see a disabled user, an expired
key or a removed container at once (CVE-2019-6287: access surviving removal); the last-used time is written at
most once a minute so that reads do not turn into a write per call.
"""

from __future__ import annotations

import time

from sqlalchemy.orm import Session

from corral.model.entities import KeyKind, Principal
from corral.model.errors import Unauthorized
from corral.store.tables import ApiKeyRow, SlotRow, UserRow

LAST_USED_RESOLUTION_SECONDS = 60.0


def principal_of_key(session: Session, row: ApiKeyRow) -> Principal:
    now = time.time()
    if row.expires_at is not None and row.expires_at <= now:
        raise Unauthorized("this API key has expired")
    kind = KeyKind(row.kind)
    if kind is KeyKind.SERVICE and (row.container_id is None or session.get(SlotRow, row.container_id) is None):
        raise Unauthorized("this container's credentials were revoked: the container is gone")
    username = ""
    directory_user = False
    admin = kind is KeyKind.ADMIN
    if row.user_id is not None:
        user = session.get(UserRow, row.user_id)
        if user is None or user.disabled:
            raise Unauthorized("this key's user is disabled or removed")
        username = user.username
        directory_user = user.source == "ldap"
        admin = admin or (user.admin and kind in (KeyKind.ACCOUNT, KeyKind.SESSION))
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION_SECONDS:
        row.last_used_at = now
    return Principal(
        access_key=row.access_key,
        kind=kind,
        host_id=row.host_id,
        user_id=row.user_id,
        username=username,
        directory_user=directory_user,
        admin=admin,
        environment_id=row.environment_id,
        role=row.role,
    )
