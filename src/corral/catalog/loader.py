"""Read a Rancher-format catalog directory (`templates/NAME/config.yml`, `templates/NAME/N/...`) into a `Catalog`.

Why one module does all the reading: the rest of `corral.catalog` stays pure functions over texts, and this is
the one place that touches a directory it is given. A broken template or version never fails the whole catalog:
it is left out and described in `Catalog.problems` (`"NAME/FOLDER": "file: question X: reason"`), so that one bad
entry in a community catalog does not hide the others.

Files are read without following symbolic links, and only from inside the catalog root: a symlink (say
`README.md -> ../../registry.key`) makes its template or version a problem naming the link, and its target is never
opened, so a catalog cannot serve the server's own files through the API.

The `catalog:` (v2) or `.catalog:` (v1) section is read from rancher-compose.yml. When that file is a `.tpl`, the
template actions are stripped and only the catalog section is parsed: questions cannot depend on answers.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from pathlib import Path
from typing import Any

from corral.catalog.answers import problem
from corral.catalog.model import QUESTION_TYPES, Catalog, Question, Template, TemplateVersion, folder_order
from corral.compose.yamlsafe import load_yaml
from corral.model.errors import InvalidInput

MAX_FILE_BYTES = 1024 * 1024
COMPOSE_NAMES = ("docker-compose.yml.tpl", "docker-compose.yml")
RANCHER_NAMES = ("rancher-compose.yml.tpl", "rancher-compose.yml")
KNOWN_FILES = frozenset({*COMPOSE_NAMES, *RANCHER_NAMES, "README.md"})
_ICON = re.compile(r"(catalogIcon-.*|catalog|icon)\.(svg|png|jpe?g|gif)", re.IGNORECASE)
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_ACTION = re.compile(r"\{\{.*?\}\}", re.DOTALL)
_SECTION_KEYS = ("catalog", ".catalog")


class _Problem(Exception):
    """A reason this template or version cannot be loaded (message already names the file)."""


def load_catalog(root: Path, name: str) -> Catalog:
    """Every template under `root/templates`; what cannot be loaded is in `problems`, keyed by NAME or NAME/FOLDER."""
    templates_dir = root / "templates"
    if templates_dir.is_symlink():
        return Catalog(name=name, problems={"templates": f"templates: {_LINK}"})
    if not templates_dir.is_dir():
        return Catalog(name=name, problems={"templates": f"no templates/ folder in {root}"})
    templates: dict[str, Template] = {}
    problems: dict[str, str] = {}
    for folder in sorted(p for p in templates_dir.iterdir() if not p.name.startswith(".")):
        if folder.is_symlink():
            problems[folder.name] = f"{folder.name}: {_LINK}"
            continue
        if not folder.is_dir():
            continue
        try:
            templates[folder.name] = _template(folder, problems)
        except _Problem as exc:
            problems[folder.name] = str(exc)
    return Catalog(name=name, templates=templates, problems=problems)


_LINK = "is a symbolic link; catalog files and folders must be real ones inside the catalog (not followed)"


def _entries(folder: Path) -> list[Path]:
    """The visible entries of a folder; a symbolic link among them is a problem naming it."""
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    for path in entries:
        if path.is_symlink():
            raise _Problem(f"{path.name}: {_LINK}")
    return entries


def default_catalog_root() -> Path:
    """The catalog shipped with Corral (package data: `corral/catalog/default/templates/...`)."""
    return Path(__file__).resolve().parent / "default"


def load_version(folder: Path, template: str) -> TemplateVersion:
    """One numbered version folder; `InvalidInput` (field `TEMPLATE/FOLDER`) when it cannot be loaded."""
    try:
        return _version(folder, template)
    except _Problem as exc:
        raise InvalidInput(str(exc), field=f"{template}/{folder.name}") from None


MAX_ICON_BYTES = 1024 * 1024


def read_icon(root: Path, template: str, icon: str) -> bytes | None:
    """The bytes of a template's icon (`root/templates/TEMPLATE/ICON`), never through a symbolic link or from
    outside the template's folder; None when there is no such regular file."""
    if not _ICON.fullmatch(icon) or "/" in template or template.startswith("."):
        return None
    folder = root / "templates" / template
    if (root / "templates").is_symlink() or folder.is_symlink():
        return None
    try:
        fd = os.open(folder / icon, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_ICON_BYTES:
            return None
        return handle.read(MAX_ICON_BYTES)


def _template(folder: Path, problems: dict[str, str]) -> Template:
    entries = _entries(folder)
    config_path = folder / "config.yml"
    if not config_path.is_file():
        raise _Problem("config.yml: missing")
    config = _mapping(_yaml(_read(config_path), "config.yml"), "config.yml")
    versions: dict[str, TemplateVersion] = {}
    for sub in sorted((p for p in entries if p.is_dir()), key=_order):
        try:
            versions[sub.name] = _version(sub, folder.name)
        except _Problem as exc:
            problems[f"{folder.name}/{sub.name}"] = str(exc)
    categories = _categories(config)
    icons = sorted(p.name for p in entries if p.is_file() and _ICON.fullmatch(p.name))
    return Template(
        name=folder.name,
        display_name=_text(config.get("name")) or folder.name,
        description=_text(config.get("description")).strip(),
        category=categories[0] if categories else "",
        categories=categories,
        maintainer=_text(config.get("maintainer")),
        license=_text(config.get("license")),
        project_url=_text(config.get("projectURL")),
        labels=_labels(config.get("labels")),
        icon=icons[0] if icons else "",
        default_version=_text(config.get("version")),
        versions=versions,
    )


def _order(path: Path) -> tuple[int, int, str]:
    return folder_order(path.name)


def _categories(config: dict[str, Any]) -> tuple[str, ...]:
    found: list[str] = []
    for key in ("category", "categories"):
        value = config.get(key)
        items = value if isinstance(value, list) else [value]
        for item in items:
            text = _text(item).strip()
            if text and text not in found:
                found.append(text)
    return tuple(found)


def _labels(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): _text(v) for k, v in value.items()}


def _version(folder: Path, template: str) -> TemplateVersion:
    files: dict[str, str] = {}
    for path in (p for p in _entries(folder) if p.is_file()):
        try:
            files[path.name] = _read(path)
        except _Problem:
            if path.name in KNOWN_FILES:
                raise  # other files (images, archives) are not part of the template's text
    if not any(name in files for name in COMPOSE_NAMES):
        raise _Problem("docker-compose.yml: missing (neither docker-compose.yml nor docker-compose.yml.tpl)")
    for plain in ("docker-compose.yml", "rancher-compose.yml"):
        if plain in files and f"{plain}.tpl" in files:
            raise _Problem(f"{plain}: both {plain} and {plain}.tpl exist; keep one")
    section: dict[str, Any] = {}
    rancher_name = next((n for n in RANCHER_NAMES if n in files), None)
    if rancher_name is not None:
        section = _catalog_section(files[rancher_name], rancher_name)
    source = rancher_name or "rancher-compose.yml"
    questions = _questions(section.get("questions"), source)
    return TemplateVersion(
        template=template,
        folder=folder.name,
        version=_text(section.get("version")) or folder.name,
        name=_text(section.get("name")),
        description=_text(section.get("description")).strip(),
        uuid=_text(section.get("uuid")),
        minimum_version=_text(section.get("minimum_rancher_version") or section.get("minimum_version")),
        maximum_version=_text(section.get("maximum_rancher_version") or section.get("maximum_version")),
        upgrade_from=_text(section.get("upgrade_from")),
        questions=questions,
        files=files,
        readme=files.get("README.md", ""),
    )


def _catalog_section(text: str, file_name: str) -> dict[str, Any]:
    """The `catalog:`/`.catalog:` mapping ({} when absent). A `.tpl` file: only that section, actions removed."""
    if file_name.endswith(".tpl"):
        text = _section_text(_ACTION.sub("", text))
        if not text:
            return {}
    doc = _yaml(text, file_name)
    if doc is None:
        return {}
    doc = _mapping(doc, file_name)
    present = [k for k in _SECTION_KEYS if k in doc]
    if len(present) > 1:
        raise _Problem(f"{file_name}: both 'catalog' and '.catalog' sections; keep one")
    if not present:
        return {}
    section = doc[present[0]]
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise _Problem(f"{file_name}: {present[0]}: must be a mapping")
    return section


def _section_text(text: str) -> str:
    """The lines of the top-level `catalog:`/`.catalog:` key, up to the next top-level key."""
    lines = text.splitlines()
    out: list[str] = []
    inside = False
    for line in lines:
        top_level = bool(line) and not line[0].isspace() and not line.startswith("#")
        if top_level:
            inside = line.split(":", 1)[0].strip().strip("'\"") in _SECTION_KEYS
        if inside:
            out.append(line)
    return "\n".join(out) + "\n" if out else ""


def _questions(value: Any, file_name: str) -> tuple[Question, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _Problem(f"{file_name}: questions: must be a list")
    questions: list[Question] = []
    seen: set[str] = set()
    for index, raw in enumerate(value):
        question = _question(raw, f"{file_name}: questions[{index}]", file_name)
        if question.variable in seen:
            raise _Problem(f"{file_name}: question {question.variable}: asked twice")
        seen.add(question.variable)
        questions.append(question)
    return tuple(questions)


def _question(raw: Any, where: str, file_name: str) -> Question:
    if not isinstance(raw, dict):
        raise _Problem(f"{where}: must be a mapping with 'variable', 'type', ...")
    variable = _text(raw.get("variable")).strip()
    if not variable:
        raise _Problem(f"{where}: 'variable' is missing")
    if not _VARIABLE.fullmatch(variable):
        raise _Problem(f"{where}: {variable!r} is not a variable name")
    where = f"{file_name}: question {variable}"
    kind = _text(raw.get("type")).strip() or "string"
    if kind not in QUESTION_TYPES:
        raise _Problem(f"{where}: unknown type {kind!r} (known: {', '.join(sorted(QUESTION_TYPES))})")
    options = raw.get("options")
    if options is not None and not isinstance(options, list):
        raise _Problem(f"{where}: options: must be a list")
    option_texts = tuple(_text(o) for o in options or [])
    if kind == "enum" and not option_texts:
        raise _Problem(f"{where}: type enum needs options")
    has_default = raw.get("default") is not None
    default = _text(raw.get("default"))
    bounds = {key: _int_or_none(raw.get(key), f"{where}: {key}") for key in ("min", "max", "min_length", "max_length")}
    question = Question(
        variable=variable,
        label=_text(raw.get("label")).strip(),
        description=_text(raw.get("description")).strip(),
        type=kind,
        required=_bool(raw.get("required"), f"{where}: required"),
        default=default,
        has_default=has_default,
        options=option_texts,
        min=bounds["min"],
        max=bounds["max"],
        min_length=bounds["min_length"],
        max_length=bounds["max_length"],
        group=_text(raw.get("group")),
        invalid_chars=_text(raw.get("invalidChars") or raw.get("invalid_chars")),
        valid_chars=_text(raw.get("validChars") or raw.get("valid_chars")),
    )
    if default:
        _check_default(question, where)
    return question


def _check_default(question: Question, where: str) -> None:
    reason = problem(question, question.default, services=None)
    if reason is not None:
        raise _Problem(f"{where}: default: {reason}")


def _int_or_none(value: Any, where: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise _Problem(f"{where}: must be a whole number, not {value!r}")
    if isinstance(value, int):
        return int(value)
    try:
        return int(str(value).strip())
    except ValueError:
        raise _Problem(f"{where}: must be a whole number, not {value!r}") from None


def _bool(value: Any, where: str) -> bool:
    if value is None or value == "":
        return False
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "false"):
        return text == "true"
    raise _Problem(f"{where}: must be true or false, not {value!r}")


def _text(value: Any) -> str:
    """A YAML scalar as the text a user wrote: booleans lower-case, numbers as written, None as ""."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    source = getattr(value, "yaml_source", None)
    if isinstance(source, str):
        return source
    if isinstance(value, (dict, list)):
        return ""
    return str(value)


def _yaml(text: str, file_name: str) -> Any:
    try:  # duplicate keys as Rancher read them (the last wins); the compose pipeline warns about them at install
        return load_yaml(text, file_name, warnings=[])
    except InvalidInput as exc:
        raise _Problem(exc.message) from None


def _mapping(doc: Any, file_name: str) -> dict[str, Any]:
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise _Problem(f"{file_name}: the top level must be a mapping")
    return {str(k): v for k, v in doc.items()}


def _read(path: Path) -> str:
    """A regular file's text, opened without following a symbolic link (O_NOFOLLOW: a link swapped in after the
    folder was listed fails to open instead of being read)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # the file is a symbolic link
            raise _Problem(f"{path.name}: {_LINK}") from None
        raise _Problem(f"{path.name}: cannot be read ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise _Problem(f"{path.name}: not a regular file")
        if info.st_size > MAX_FILE_BYTES:
            raise _Problem(f"{path.name}: larger than {MAX_FILE_BYTES // 1024} KiB")
        try:
            data = handle.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise _Problem(f"{path.name}: cannot be read ({exc.strerror})") from None
    if len(data) > MAX_FILE_BYTES:
        raise _Problem(f"{path.name}: larger than {MAX_FILE_BYTES // 1024} KiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise _Problem(f"{path.name}: not UTF-8 text") from None
