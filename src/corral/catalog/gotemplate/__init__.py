"""Go text/template with sprig functions, written in Python for Rancher catalog `.tpl` files.

Why: catalog templates (`docker-compose.yml.tpl`) are Go templates rendered with the answers before `${VAR}`
interpolation; Corral renders them itself, in the pure core, with Go's semantics and FILE:LINE:COL errors.
A rendering runs within budgets (`budget.Limits`: steps, output, depth, wall time, value sizes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from corral.catalog.gotemplate.budget import DEFAULT_LIMITS, Limits
from corral.catalog.gotemplate.errors import Source, TemplateError
from corral.catalog.gotemplate.exec import Executor
from corral.catalog.gotemplate.functions import FUNCS
from corral.catalog.gotemplate.nodes import ListNode
from corral.catalog.gotemplate.parser import parse

__all__ = ["DEFAULT_LIMITS", "Limits", "TemplateError", "check", "render"]


def render(text: str, data: Mapping[str, Any], *, filename: str, limits: Limits = DEFAULT_LIMITS) -> str:
    """Render a Go template with `data` as dot; raises TemplateError (field = filename) on any error, also when
    a budget of `limits` runs out."""
    source = Source(text, filename)
    root, templates = _parse(source)
    return Executor(source, templates, limits).run(root, data)


def check(text: str, *, filename: str) -> None:
    """Parse only: raises TemplateError for syntax errors, unknown functions and undefined variables."""
    _parse(Source(text, filename))


def _parse(source: Source) -> tuple[ListNode, dict[str, ListNode]]:
    try:
        return parse(source, FUNCS)
    except RecursionError:
        raise TemplateError(f"{source.filename}: nested too deeply to parse", field=source.filename) from None
