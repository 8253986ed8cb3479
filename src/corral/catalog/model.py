"""What a catalog is once loaded: templates, their numbered versions, and each version's questions and files.

Why plain frozen dataclasses: the loader builds them from a directory, the server keeps them in memory and serves
them, the CLI prints them, and rendering/answer checks read them; none of that needs behaviour on the objects.
All values are already normalised (strings for defaults and options, ints for bounds) so that consumers never
have to re-interpret YAML scalars.
"""

from __future__ import annotations

from dataclasses import dataclass, field

QUESTION_TYPES = frozenset(
    {"string", "int", "boolean", "enum", "password", "multiline", "service", "certificate", "secret"}
)


@dataclass(frozen=True)
class Question:
    """One entry of `questions:`; `default` is "" when the template gives none (see `has_default`)."""

    variable: str
    label: str = ""
    description: str = ""
    type: str = "string"
    required: bool = False
    default: str = ""
    has_default: bool = False
    options: tuple[str, ...] = ()
    min: int | None = None
    max: int | None = None
    min_length: int | None = None
    max_length: int | None = None
    group: str = ""
    invalid_chars: str = ""
    valid_chars: str = ""

    @property
    def title(self) -> str:
        """How errors name the question: `label (VARIABLE)`, or the variable alone."""
        return f"{self.label} ({self.variable})" if self.label else self.variable


@dataclass(frozen=True)
class TemplateVersion:
    template: str  # the template's folder name
    folder: str  # the numbered folder, e.g. "3"
    version: str  # catalog.version, or the folder when the section has none
    name: str = ""
    description: str = ""
    uuid: str = ""
    minimum_version: str = ""
    maximum_version: str = ""
    upgrade_from: str = ""
    questions: tuple[Question, ...] = ()
    files: dict[str, str] = field(default_factory=dict)  # file name as on disk -> text
    readme: str = ""

    @property
    def key(self) -> str:
        return f"{self.template}/{self.folder}"

    def question(self, variable: str) -> Question | None:
        return next((q for q in self.questions if q.variable == variable), None)


@dataclass(frozen=True)
class Template:
    name: str  # folder name
    display_name: str = ""
    description: str = ""
    category: str = ""
    categories: tuple[str, ...] = ()
    maintainer: str = ""
    license: str = ""
    project_url: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    icon: str = ""  # "" or the icon file's name inside the template folder
    default_version: str = ""  # config.yml `version`
    versions: dict[str, TemplateVersion] = field(default_factory=dict)  # keyed by folder

    def default_folder(self) -> str | None:
        """The folder whose catalog version (or folder name) is config.yml's `version`, else the newest folder."""
        for folder, version in self.versions.items():
            if self.default_version and self.default_version in (version.version, folder):
                return folder
        return latest_folder(self.versions)


@dataclass(frozen=True)
class Catalog:
    name: str
    templates: dict[str, Template] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)  # "NAME" or "NAME/FOLDER" -> reason


def folder_order(folder: str) -> tuple[int, int, str]:
    """Numbered folders sort by number; anything else after them, by name."""
    return (0, int(folder), "") if folder.isdigit() else (1, 0, folder)


def latest_folder(versions: dict[str, TemplateVersion]) -> str | None:
    return max(versions, key=folder_order) if versions else None
