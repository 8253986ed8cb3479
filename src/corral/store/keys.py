"""From an API key row to the principal calling with it: expiry, the user behind it, a service account's
container; usage times written in the background.

Why apart from the repository: authentication runs on every request and must see a disabled user, an expired
key or a removed container at once (CVE-2019-6287: access surviving removal); the last-used time is written at
most once a minute and in the background, so that a call never writes nor waits for a write.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Engine, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from corral.model.entities import KeyKind, Principal
from corral.model.errors import Unauthorized
from corral.model.stack import ContainerSlot
from corral.store.tables import ApiKeyRow, SlotRow, UserRow

log = logging.getLogger("corral.store.keys")
LAST_USED_RESOLUTION_SECONDS = 60.0
MAX_TRACKED_KEYS = 100_000


class KeyUsage:
    """Writes keys' last-used times in the background, at most once a minute per key, so that an authentication
    never writes (reads go on while the database is locked or read-only) and never waits for a write."""

    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self._clock = clock
        self._written: dict[str, float] = {}
        self._lock = threading.Lock()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="key-usage")

    def seen(self, access_key: str) -> None:
        now = self._clock()
        with self._lock:
            if now - self._written.get(access_key, 0.0) < LAST_USED_RESOLUTION_SECONDS:
                return
            if len(self._written) >= MAX_TRACKED_KEYS:
                self._written.clear()
            self._written[access_key] = now
        self._writer.submit(self._write, access_key, now)

    def _write(self, access_key: str, at: float) -> None:
        try:
            with self.engine.begin() as connection:
                connection.execute(update(ApiKeyRow).where(ApiKeyRow.access_key == access_key).values(last_used_at=at))
        except SQLAlchemyError as exc:  # an outage: the time is written at the next use after it
            log.debug("last-used time of %s not written: %s", access_key, type(exc).__name__)
            with self._lock:
                self._written.pop(access_key, None)


def principal_of_key(session: Session, row: ApiKeyRow) -> Principal:
    now = time.time()
    if row.expires_at is not None and row.expires_at <= now:
        raise Unauthorized("this API key has expired")
    kind = KeyKind(row.kind)
    username = ""
    if kind is KeyKind.SERVICE:
        slot = session.get(SlotRow, row.container_id) if row.container_id is not None else None
        if slot is None:
            raise Unauthorized("this container's credentials were revoked: the container is gone")
        username = f"container:{_container_name(slot)}"  # the actor the audit log names: no user has a colon
    directory_user = False
    admin = kind is KeyKind.ADMIN
    if row.user_id is not None:
        user = session.get(UserRow, row.user_id)
        if user is None or user.disabled:
            raise Unauthorized("this key's user is disabled or removed")
        username = user.username
        directory_user = user.source == "ldap"
        admin = admin or (user.admin and kind in (KeyKind.ACCOUNT, KeyKind.SESSION))
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


def _container_name(slot: SlotRow) -> str:
    return ContainerSlot(
        slot.id, slot.environment_id, slot.stack, slot.service, slot.index, slot.host_id, "", slot.generation
    ).name
