"""Lint a catalog directory: every template version loads, renders with default answers and makes a valid stack.

Why: catalog authors run `corral catalog validate` in their CI, and Corral checks the catalogs it ships and the
real community samples the same way. Each version is checked on its own; one failure never hides the others.

The checks are install's (the compose pipeline, then `check_scheduling_labels`), with the default answers.
Required questions without a default get a placeholder valid for their type (`answers.placeholder`), since a
linter cannot know the operator's answer; the result lists which variables got one. Service questions are not
looked up (there is no environment), only their `stack/service` form is checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from corral.catalog.answers import placeholder, resolve_answers
from corral.catalog.loader import load_catalog
from corral.catalog.model import TemplateVersion, folder_order
from corral.catalog.render import COMPOSE, RANCHER, render_version
from corral.compose import ComposeFile, load_stack
from corral.model.errors import CorralError
from corral.orchestrator.stack_checks import check_scheduling_labels


@dataclass(frozen=True)
class ValidationResult:
    template: str
    version: str  # the version's folder, e.g. "3" ("" when the whole template could not be loaded)
    ok: bool
    error: str = ""
    placeholders: tuple[str, ...] = ()  # required variables without a default that got a stand-in value

    def to_dict(self) -> dict[str, object]:
        return {"template": self.template, "version": self.version, "ok": self.ok, "error": self.error}


def validate_catalog(root: Path) -> list[ValidationResult]:
    """One result per template version (and one per template or version that could not even be loaded)."""
    catalog = load_catalog(root, root.name)
    results = [_problem_result(key, reason) for key, reason in catalog.problems.items()]
    for template in catalog.templates.values():
        for version in template.versions.values():
            results.append(validate_version(version))
    results.sort(key=lambda r: (r.template, folder_order(r.version) if r.version else (-1, 0, "")))
    return results


def default_answers(version: TemplateVersion) -> tuple[dict[str, str], tuple[str, ...]]:
    """Answers for linting: the defaults, plus a placeholder for each required question left empty."""
    given: dict[str, str] = {}
    stand_ins: list[str] = []
    for question in version.questions:
        if question.required and question.default == "":
            given[question.variable] = placeholder(question)
            stand_ins.append(question.variable)
    return resolve_answers(version.questions, given, services=None), tuple(stand_ins)


def validate_version(version: TemplateVersion) -> ValidationResult:
    stand_ins: tuple[str, ...] = ()
    try:
        answers, stand_ins = default_answers(version)
        stack_name = _stack_name(version.template)
        files = render_version(version, answers, stack_name=stack_name)
        spec = load_stack(
            stack_name,
            ComposeFile(COMPOSE, files[COMPOSE]),
            ComposeFile(RANCHER, files[RANCHER]) if files[RANCHER].strip() else None,
            answers=answers,
        )
        check_scheduling_labels(spec, COMPOSE)  # what install checks after the pipeline (server/routes/api_stacks.py)
    except CorralError as exc:
        return ValidationResult(version.template, version.folder, False, exc.message, stand_ins)
    return ValidationResult(version.template, version.folder, True, "", stand_ins)


def _problem_result(key: str, reason: str) -> ValidationResult:
    template, _, folder = key.partition("/")
    return ValidationResult(template, folder, False, reason)


def _stack_name(template: str) -> str:
    cleaned = re.sub(r"[^a-z0-9]+", "-", template.lower()).strip("-")
    return cleaned or "stack"
