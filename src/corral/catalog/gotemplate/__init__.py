"""Go text/template with sprig functions, written in Python for Rancher catalog `.tpl` files.

Why: catalog templates (`docker-compose.yml.tpl`) are Go templates rendered with the answers before `${VAR}`
interpolation; Corral renders them itself, in the pure core, with Go's semantics and FILE:LINE:COL errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from corral.catalog.gotemplate.errors import Source, TemplateError
from corral.catalog.gotemplate.exec import Executor
from corral.catalog.gotemplate.functions import FUNCS
from corral.catalog.gotemplate.parser import parse

__all__ = ["TemplateError", "check", "render"]


def render(text: str, data: Mapping[str, Any], *, filename: str) -> str:
    """Render a Go template with `data` as dot; raises TemplateError (field = filename) on any error."""
    source = Source(text, filename)
    root, templates = parse(source, FUNCS)
    return Executor(source, templates).run(root, data)


def check(text: str, *, filename: str) -> None:
    """Parse only: raises TemplateError for syntax errors, unknown functions and undefined variables."""
    parse(Source(text, filename), FUNCS)
