"""Catalog sources as the server sees them: where each one's files are, loading them (cached), refreshing git ones,
and which template versions a stack installed from a catalog may upgrade to.

Why a service apart from the routes: the stacks API also needs the upgrade offers of a stack (its view shows
`catalog.upgrades`), and the catalog API needs the stacks API's apply path; keeping this in its own module lets both
import it without importing each other. Loading a catalog reads and parses every template, so a loaded catalog is
kept until its commit (git) or the newest modification time under its folder (dir, builtin) changes.

`dir` catalogs and `file://` git catalogs read the server's own file system, so they are refused unless the
operator allows them (`CORRAL_CATALOG_ALLOW_LOCAL=1`); the shipped catalog is always there. Rendering a template
runs in a worker thread (the routes are synchronous) within the budgets of `catalog/gotemplate/budget.py`, its wall
time from `CORRAL_TEMPLATE_RENDER_SECONDS`.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corral.catalog.gotemplate import Limits
from corral.catalog.loader import default_catalog_root, load_catalog
from corral.catalog.model import Catalog, Template, TemplateVersion, folder_order
from corral.catalog.render import render_version
from corral.catalog.versions import admits, compare
from corral.fetch.git import refresh_checkout, remove_checkout, validate_branch, validate_git_url
from corral.model.errors import CorralError, InvalidInput, NotFound, Unavailable
from corral.model.names import validate_name
from corral.store.catalogs import CatalogSource, CatalogStore
from corral.store.repository import Store

log = logging.getLogger("corral.server.catalog")
BUILTIN_NAME = "library"
DEFAULT_BRANCH = "master"
RENDER_CONCURRENCY = 2
LOCAL_OFF = "dir catalogs are off on this server (the operator allows them with CORRAL_CATALOG_ALLOW_LOCAL=1)"


@dataclass(frozen=True)
class _Cached:
    signature: tuple[Any, ...]
    catalog: Catalog


class CatalogService:
    def __init__(
        self,
        store: Store,
        data_dir: Path,
        builtin_root: Path | None = None,
        *,
        allow_local: bool = False,
        render_seconds: float = 5.0,
    ) -> None:
        self.sources = CatalogStore(store)
        self.data_dir = data_dir
        self.builtin_root = builtin_root or default_catalog_root()
        self.allow_local = allow_local
        self.limits = Limits(seconds=render_seconds)
        self._renders = threading.BoundedSemaphore(RENDER_CONCURRENCY)
        self._cache: dict[str, _Cached] = {}
        self._lock = threading.Lock()

    # -- sources ------------------------------------------------------------------------------------------------

    def ensure_builtin(self) -> None:
        """The catalog shipped with Corral is the global catalog `library` (registered at server start)."""
        if self.sources.find_global(BUILTIN_NAME) is None:
            self.sources.create(name=BUILTIN_NAME, kind="builtin", url="")

    def add(self, *, name: str, kind: str, url: str, branch: str, environment_id: str) -> CatalogSource:
        """Check and store a source; a git source is cloned at once, and a failure is kept as its `error`."""
        name = validate_name(name)
        if kind == "dir" and not self.allow_local:
            raise InvalidInput(
                "a dir catalog reads the server's own files and is off on this server; "
                "the operator allows it with CORRAL_CATALOG_ALLOW_LOCAL=1",
                field="url",
            )
        if kind == "dir":
            path = Path(url)
            if not url or not path.is_absolute():
                raise InvalidInput(f"catalog directory {url!r} must be an absolute path", field="url")
            if not (path / "templates").is_dir():
                raise InvalidInput(f"catalog directory {url} has no templates/ folder", field="url")
            branch = ""
        elif kind == "git":
            url = validate_git_url(url, allow_local=self.allow_local)
            branch = validate_branch(branch or DEFAULT_BRANCH)
        else:
            raise InvalidInput(f"catalog kind {kind!r}: use 'dir' or 'git'", field="kind")
        source = self.sources.create(name=name, kind=kind, url=url, branch=branch, environment_id=environment_id)
        return self.refresh(source.id) if kind == "git" else source

    def render(self, version: TemplateVersion, answers: dict[str, str], *, stack_name: str) -> dict[str, str]:
        """The version's files rendered with the answers, within this server's template budgets; at most
        RENDER_CONCURRENCY at once, so that renderings never take every core (or every worker thread)."""
        if not self._renders.acquire(timeout=self.limits.seconds):
            raise Unavailable("the server is busy rendering other templates; try again in a few seconds")
        try:
            return render_version(version, answers, stack_name=stack_name, limits=self.limits)
        finally:
            self._renders.release()

    def refresh(self, catalog_id: str) -> CatalogSource:
        """Fetch a git source (or re-read a directory); a failure is stored as the source's error, never raised."""
        source = self.sources.get(catalog_id)
        if source.kind == "dir" and not self.allow_local:
            return self.sources.record_refresh(source.id, commit=None, error=LOCAL_OFF)
        if source.kind != "git":
            self._cache.pop(source.id, None)
            error = "" if (self.root(source) / "templates").is_dir() else f"no templates/ folder in {self.root(source)}"
            return self.sources.record_refresh(source.id, commit=None, error=error)
        try:
            commit = refresh_checkout(
                source.url, source.branch, self.checkout_dir(source), allow_local=self.allow_local
            )
        except CorralError as exc:
            log.warning("catalog %s: refresh failed: %s", source.name, exc.message)
            return self.sources.record_refresh(source.id, commit=None, error=exc.message)
        return self.sources.record_refresh(source.id, commit=commit, error="")

    def remove(self, catalog_id: str) -> None:
        source = self.sources.get(catalog_id)
        if source.kind == "builtin":
            raise InvalidInput(f"catalog {source.name} ships with Corral and cannot be removed", field="catalog")
        self.sources.delete(source.id)
        self._cache.pop(source.id, None)
        if source.kind == "git":
            remove_checkout(self.checkout_dir(source))

    def checkout_dir(self, source: CatalogSource) -> Path:
        return self.data_dir / "catalogs" / source.id

    def root(self, source: CatalogSource) -> Path:
        if source.kind == "builtin":
            return self.builtin_root
        if source.kind == "git":
            return self.checkout_dir(source)
        return Path(source.url)

    def visible(self, environment_id: str) -> list[CatalogSource]:
        """The global sources and the environment's own; an environment's source hides a global one of its name."""
        by_name: dict[str, CatalogSource] = {}
        for source in self.sources.list_sources(environment_id):
            if source.name not in by_name or source.environment_id:
                by_name[source.name] = source
        return [by_name[name] for name in sorted(by_name)]

    def source_named(self, environment_id: str, name: str) -> CatalogSource:
        for source in self.visible(environment_id):
            if source.name == name:
                return source
        raise NotFound(f"catalog {name!r} not found in this environment", field="catalog")

    # -- contents -----------------------------------------------------------------------------------------------

    def load(self, source: CatalogSource) -> Catalog:
        if source.kind == "dir" and not self.allow_local:  # added while allowed; the operator has switched it off
            return Catalog(name=source.name, problems={"catalog": LOCAL_OFF})
        root = self.root(source)
        signature = (source.commit,) if source.kind == "git" else _newest_change(root)
        with self._lock:
            cached = self._cache.get(source.id)
            if cached is not None and cached.signature == signature:
                return cached.catalog
        catalog = load_catalog(root, source.name)
        with self._lock:
            self._cache[source.id] = _Cached(signature, catalog)
        return catalog

    def template(self, environment_id: str, catalog_name: str, template_name: str) -> Template:
        catalog = self.load(self.source_named(environment_id, catalog_name))
        template = catalog.templates.get(template_name)
        if template is None:
            reason = catalog.problems.get(template_name)
            detail = f": {reason}" if reason else ""
            raise NotFound(f"template {catalog_name}/{template_name} not found{detail}", field="template")
        return template

    def upgrade_offers(self, environment_id: str, origin: dict[str, Any]) -> list[str]:
        """Folders of the origin's template that a stack at the origin's version may upgrade to (oldest first)."""
        if not origin:
            return []
        try:
            template = self.template(environment_id, str(origin["catalog"]), str(origin["template"]))
        except (CorralError, KeyError):
            return []
        current = template.versions.get(str(origin.get("version", "")))
        if current is None:
            return []
        return [
            v.folder
            for v in sorted(template.versions.values(), key=lambda v: folder_order(v.folder))
            if may_upgrade(current, v)
        ]


def may_upgrade(current: TemplateVersion, target: TemplateVersion) -> bool:
    """A newer version (by folder number, else by version) whose `upgrade_from` admits the current version."""
    if target.folder == current.folder:
        return False
    if current.folder.isdigit() and target.folder.isdigit():
        newer = int(target.folder) > int(current.folder)
    else:
        newer = compare(target.version, current.version) > 0
    try:
        return newer and admits(target.upgrade_from, current.version)
    except InvalidInput:
        return False


def find_version(template: Template, wanted: str | None) -> TemplateVersion:
    """A version by folder or by catalog version; the template's default version when none is asked for."""
    if not wanted:
        folder = template.default_folder()
        if folder is None:
            raise NotFound(f"template {template.name} has no versions", field="version")
        return template.versions[folder]
    if wanted in template.versions:
        return template.versions[wanted]
    for version in template.versions.values():
        if version.version == wanted:
            return version
    known = ", ".join(f"{v.folder} ({v.version})" for v in template.versions.values())
    raise NotFound(f"template {template.name} has no version {wanted!r} (versions: {known})", field="version")


def _newest_change(root: Path) -> tuple[Any, ...]:
    """(count, newest mtime) of the files under root/templates: changes when a file is added, removed or edited."""
    newest, count = 0.0, 0
    templates = root / "templates"
    if templates.is_dir():
        for path in templates.rglob("*"):
            try:
                newest = max(newest, path.stat().st_mtime)
            except OSError:
                continue
            count += 1
    return (count, newest)
