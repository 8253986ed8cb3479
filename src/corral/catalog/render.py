"""A template version + answers → the two compose texts a stack is made from.

Why this step is separate from compose: `.tpl` files are Go text/template and must be rendered before YAML even
exists; the `${VAR}` interpolation that follows is compose's job (`corral.compose.load_stack` with the same
answers), exactly as Rancher did it. The data a `.tpl` sees is `.Values.VARIABLE` (every answer, as a string) and
`.Stack.Name`.

The `catalog:`/`.catalog:` section is removed from the rendered rancher-compose.yml (its lines blanked, so line
numbers in later errors still match the source): questions are not part of the stack's configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from corral.catalog.gotemplate import DEFAULT_LIMITS, Limits, render
from corral.catalog.model import TemplateVersion

COMPOSE = "docker-compose.yml"
RANCHER = "rancher-compose.yml"
_SECTION_KEYS = ("catalog", ".catalog")


def template_data(answers: Mapping[str, str], *, stack_name: str) -> dict[str, Any]:
    return {"Values": dict(answers), "Stack": {"Name": stack_name}}


def render_version(
    version: TemplateVersion, answers: Mapping[str, str], *, stack_name: str, limits: Limits = DEFAULT_LIMITS
) -> dict[str, str]:
    """{"docker-compose.yml": text, "rancher-compose.yml": text ("" when the version has none)}.

    Raises `corral.catalog.gotemplate.TemplateError` (an `InvalidInput`) for a bad `.tpl`, naming file:line:col.
    """
    data = template_data(answers, stack_name=stack_name)
    rendered: dict[str, str] = {}
    for base in (COMPOSE, RANCHER):
        template_name = f"{base}.tpl"
        if template_name in version.files:
            rendered[base] = render(version.files[template_name], data, filename=template_name, limits=limits)
        else:
            rendered[base] = version.files.get(base, "")
    rendered[RANCHER] = strip_catalog_section(rendered[RANCHER])
    return rendered


def strip_catalog_section(text: str) -> str:
    """Blank out the lines of a top-level `catalog:`/`.catalog:` key (up to the next top-level key)."""
    lines = text.split("\n")
    inside = False
    for index, line in enumerate(lines):
        if line and not line[0].isspace() and not line.startswith("#"):
            inside = line.split(":", 1)[0].strip().strip("'\"") in _SECTION_KEYS
        if inside:
            lines[index] = ""
    return "\n".join(lines)
