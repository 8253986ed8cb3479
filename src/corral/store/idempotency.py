"""Stored answers of mutating calls by Idempotency-Key: (key, caller) -> (method, path, body digest, answer).

Why Core statements on the engine: like the event history, a stored answer is a record of a call, not a change of
the cluster; writing it through a session would move the store's write version and make cached views stale.
Answers are kept `KEEP_SECONDS` (a day); older ones are pruned as new ones are stored.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.exc import IntegrityError

from corral.store.outage import outage_as_unavailable
from corral.store.repository import Store
from corral.store.tables import IdempotencyRow

KEEP_SECONDS = 24 * 3600


@dataclass(frozen=True)
class StoredAnswer:
    method: str
    path: str
    body_digest: str
    status: int
    content_type: str
    body: bytes


class IdempotencyStore:
    def __init__(self, store: Store, keep_seconds: float = KEEP_SECONDS) -> None:
        self.engine = store.engine
        self.keep_seconds = keep_seconds

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        with outage_as_unavailable(), self.engine.begin() as connection:
            yield connection

    def find(self, key: str, caller: str) -> StoredAnswer | None:
        """The answer stored for the caller's key, if it is younger than the retention."""
        with self._connection() as connection:
            row = connection.execute(
                select(IdempotencyRow).where(
                    IdempotencyRow.key == key,
                    IdempotencyRow.caller == caller,
                    IdempotencyRow.created_at > time.time() - self.keep_seconds,
                )
            ).first()
        if row is None:
            return None
        return StoredAnswer(
            row.method, row.path, row.body_digest, row.status, row.content_type, row.body.encode("latin-1")
        )

    def keep(self, key: str, caller: str, answer: StoredAnswer) -> None:
        """Store the answer (a key already stored, e.g. by a concurrent call, keeps its first answer)."""
        now = time.time()
        try:
            with self._connection() as connection:
                connection.execute(delete(IdempotencyRow).where(IdempotencyRow.created_at <= now - self.keep_seconds))
                connection.execute(
                    insert(IdempotencyRow).values(
                        key=key,
                        caller=caller,
                        method=answer.method,
                        path=answer.path,
                        body_digest=answer.body_digest,
                        status=answer.status,
                        content_type=answer.content_type,
                        body=answer.body.decode("latin-1"),
                        created_at=now,
                    )
                )
        except IntegrityError:
            return
