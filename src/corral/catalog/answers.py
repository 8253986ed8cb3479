"""Answers to a template version's questions: defaults applied, types and bounds checked, errors naming the question.

Why in one place: the API, `corral catalog install --answer K=V`, answers files and the catalog linter must agree
on what a valid answer is, and the loader reuses the same per-type check on each question's default.

Rules per type (values are always strings, as in Rancher):
- string, password, multiline: any text; `min_length`/`max_length`, `valid_chars`/`invalid_chars` when given.
- int: a whole number (`-12`, `8080`), within `min`/`max` when given.
- boolean: `true` or `false` (any case; normalised to lower case, which `.tpl` files compare against).
- enum: one of `options`.
- service: `stack/service` of the environment (`services`); `services=None` skips that lookup (the linter).
- certificate: a certificate of the environment's store (`certificates`; None skips that lookup: the linter).
- secret: a non-empty name (not looked up).
An empty answer to a question that is not required is accepted for every type (nothing to check); an empty answer
to a required question is an error. Answers to variables no question asks are passed through unchanged: Rancher
used them as extra `${VAR}` values, and catalogs rely on it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping

from corral.catalog.model import Question
from corral.compose.envfile import parse_answers
from corral.model.errors import InvalidInput

_INT = re.compile(r"[+-]?[0-9]+")
_SERVICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def parse_answers_file(text: str, filename: str) -> dict[str, str]:
    """`KEY=VALUE` lines (answers.txt); `#` comments and blank lines skipped; errors name the file and line."""
    return parse_answers(text, file_name=filename)


def resolve_answers(
    questions: Iterable[Question],
    given: Mapping[str, str],
    *,
    services: Collection[str] | None = (),
    certificates: Collection[str] | None = None,
) -> dict[str, str]:
    """Every question's variable with its answer (given, else the default, else ""), plus the extra answers.

    Raises `InvalidInput` with field `answers.VARIABLE` naming the question's label and variable and the reason.
    """
    resolved: dict[str, str] = {}
    for question in questions:
        value = given.get(question.variable)
        if value is None:
            value = question.default
        value = _normalise(question, str(value))
        if question.type == "service" and services is not None:
            value = resolve_service(value, services) if problem(question, value, services=services) is None else value
        reason = problem(question, value, services=services)
        unknown = question.type == "certificate" and certificates is not None and value not in certificates
        if reason is None and value and unknown:
            reason = f"no certificate {value!r} in this environment (corral certs ls; corral certs create)"
        if reason is not None:
            raise InvalidInput(f"answers: question {question.title}: {reason}", field=f"answers.{question.variable}")
        resolved[question.variable] = value
    for key, value in given.items():
        resolved.setdefault(key, str(value))
    return resolved


def problem(question: Question, value: str, *, services: Collection[str] | None) -> str | None:
    """Why `value` is not a valid answer to `question` (None when it is)."""
    if value == "":
        return "an answer is required" if question.required else None
    kind = question.type
    if kind == "int":
        return _int_problem(question, value)
    if kind == "boolean":
        return None if value.lower() in ("true", "false") else f"{value!r} is not true or false"
    if kind == "enum":
        if value not in question.options:
            return f"{value!r} is not one of the options ({', '.join(question.options)})"
        return None
    if kind == "service":
        if "/" not in value.strip("/"):
            # Rancher 1.6 templates default to a bare service name; install resolves it (`resolve_service`)
            if services is None:
                return None if _SERVICE_NAME.fullmatch(value) else f"{value!r} is not a service as stack/service"
            return None if resolve_service(value, services) != value else _bare_problem(value, services)
        if services is not None and value not in services:
            return f"no service {value!r} in this environment"
        return None
    return _text_problem(question, value)


def resolve_service(value: str, services: Collection[str]) -> str:
    """A bare service name as the one `stack/service` of the environment with that name (else unchanged)."""
    if "/" in value:
        return value
    matches = [s for s in services if s.partition("/")[2] == value]
    return matches[0] if len(matches) == 1 else value


def _bare_problem(value: str, services: Collection[str]) -> str:
    count = sum(1 for s in services if s.partition("/")[2] == value)
    if count == 0:
        return f"{value!r} is not a service as stack/service, and no service of this environment is named so"
    return f"{value!r} names {count} services of this environment: answer as stack/service"


def placeholder(question: Question) -> str:
    """A value valid for the question's type, for linting a required question that has no default."""
    if question.type == "int":
        number = question.min if question.min is not None else 1
        if question.max is not None and number > question.max:
            number = question.max
        return str(number)
    if question.type == "boolean":
        return "false"
    if question.type == "enum":
        return question.options[0]
    if question.type == "service":
        return "placeholder/service"
    text = "placeholder"
    if question.valid_chars:
        text = question.valid_chars[0] * len(text)
    if question.min_length is not None and len(text) < question.min_length:
        text = text + text[0] * (question.min_length - len(text))
    if question.max_length is not None:
        text = text[: max(question.max_length, 1)]
    return text


def _normalise(question: Question, value: str) -> str:
    if question.type == "boolean" and value.lower() in ("true", "false"):
        return value.lower()
    if question.type == "int" and _INT.fullmatch(value.strip()):
        return value.strip()
    return value


def _int_problem(question: Question, value: str) -> str | None:
    if not _INT.fullmatch(value):
        return f"{value!r} is not a whole number"
    number = int(value)
    if question.min is not None and number < question.min:
        return f"{number} is less than the minimum {question.min}"
    if question.max is not None and number > question.max:
        return f"{number} is more than the maximum {question.max}"
    return None


def _text_problem(question: Question, value: str) -> str | None:
    if question.min_length is not None and len(value) < question.min_length:
        return f"shorter than {question.min_length} characters"
    if question.max_length is not None and len(value) > question.max_length:
        return f"longer than {question.max_length} characters"
    if question.valid_chars:
        bad = sorted({ch for ch in value if ch not in question.valid_chars})
        if bad:
            return f"characters not allowed: {''.join(bad)!r}"
    if question.invalid_chars:
        bad = sorted({ch for ch in value if ch in question.invalid_chars})
        if bad:
            return f"characters not allowed: {''.join(bad)!r}"
    return None
