"""Repository of catalog sources (table `catalogs`): a directory, a git repository or the built-in catalog.

Why apart: a catalog source is configuration, not desired state of containers; the server's catalog service reads
it to find template folders, and records here what the last refresh found (the commit, or why it failed).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from corral.model import ids
from corral.model.errors import Conflict, NotFound
from corral.store.repository import Store
from corral.store.tables import CatalogRow

KINDS = ("builtin", "dir", "git")


@dataclass(frozen=True)
class CatalogSource:
    id: str
    environment_id: str  # "" = global: every environment sees it
    name: str
    kind: str  # builtin | dir | git
    url: str  # the directory, or the git URL ("" for builtin)
    branch: str
    commit: str
    refreshed_at: float
    error: str
    created_at: float


class CatalogStore:
    def __init__(self, store: Store) -> None:
        self.session = store.session

    def create(self, *, name: str, kind: str, url: str, branch: str = "", environment_id: str = "") -> CatalogSource:
        if kind not in KINDS:
            raise ValueError(f"unknown catalog kind {kind!r}")
        row = CatalogRow(
            id=ids.new_id("catalog"),
            environment_id=environment_id,
            name=name,
            kind=kind,
            url=url,
            branch=branch,
            created_at=time.time(),
        )
        try:
            with self.session() as session:
                session.add(row)
        except IntegrityError as exc:
            where = "in this environment" if environment_id else "globally"
            raise Conflict(f"a catalog named {name!r} already exists {where}", field="name") from exc
        return _source(row)

    def list_sources(self, environment_id: str | None = None) -> list[CatalogSource]:
        """All sources, or those an environment sees (the global ones and its own) when an id is given."""
        with self.session() as session:
            query = select(CatalogRow).order_by(CatalogRow.name, CatalogRow.environment_id)
            if environment_id is not None:
                query = query.where(CatalogRow.environment_id.in_(("", environment_id)))
            return [_source(row) for row in session.scalars(query)]

    def get(self, ref: str) -> CatalogSource:
        with self.session() as session:
            row = session.get(CatalogRow, ref)
            if row is None:
                raise NotFound(f"catalog {ref!r} not found", field="catalog")
            return _source(row)

    def find_global(self, name: str) -> CatalogSource | None:
        with self.session() as session:
            query = select(CatalogRow).where(CatalogRow.environment_id == "", CatalogRow.name == name)
            row = session.scalars(query).first()
            return _source(row) if row is not None else None

    def record_refresh(self, catalog_id: str, *, commit: str | None, error: str) -> CatalogSource:
        """The result of a refresh: the commit fetched (None keeps the last one) and the error ("" = it worked)."""
        with self.session() as session:
            row = session.get(CatalogRow, catalog_id)
            if row is None:
                raise NotFound(f"catalog {catalog_id!r} not found", field="catalog")
            if commit is not None:
                row.commit = commit
            row.error, row.refreshed_at = error, time.time()
            return _source(row)

    def delete(self, catalog_id: str) -> None:
        with self.session() as session:
            row = session.get(CatalogRow, catalog_id)
            if row is None:
                raise NotFound(f"catalog {catalog_id!r} not found", field="catalog")
            session.delete(row)


def _source(row: CatalogRow) -> CatalogSource:
    return CatalogSource(
        id=row.id,
        environment_id=row.environment_id,
        name=row.name,
        kind=row.kind,
        url=row.url,
        branch=row.branch,
        commit=row.commit,
        refreshed_at=row.refreshed_at,
        error=row.error,
        created_at=row.created_at,
    )
