"""Where a value sits in a compose file, so every error and warning names the file, the service and the field.

Why one small type: the pipeline reports problems from many places (interpolation, each key's parser, the merge),
and users fix files by looking at the path. `Loc.field` is the machine-readable dotted path the API returns
(`docker-compose.yml:services.web.ports[0]`); `Loc.error` builds the human message from the same parts.
"""

from __future__ import annotations

from dataclasses import dataclass

from corral.model.errors import InvalidInput

PathPart = str | int


def dotted(path: tuple[PathPart, ...]) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


@dataclass(frozen=True)
class Loc:
    file: str
    path: tuple[PathPart, ...] = ()
    service: str | None = None
    service_depth: int = 0  # length of `path` up to and including the service name

    def key(self, name: PathPart) -> Loc:
        return Loc(self.file, (*self.path, name), self.service, self.service_depth)

    def in_service(self, name: str) -> Loc:
        path = (*self.path, name)
        return Loc(self.file, path, name, len(path))

    @property
    def field(self) -> str:
        return f"{self.file}:{dotted(self.path)}" if self.path else self.file

    @property
    def relative(self) -> str:
        """The path below the service (or the whole path outside services)."""
        return dotted(self.path[self.service_depth :]) if self.service is not None else dotted(self.path)

    def prefix(self) -> str:
        parts = [self.file]
        if self.service is not None:
            parts.append(f"service {self.service}")
        if self.relative:
            parts.append(self.relative)
        return ": ".join(parts)

    def error(self, reason: str) -> InvalidInput:
        return InvalidInput(f"{self.prefix()}: {reason}", field=self.field)

    def service_prefix(self) -> str:
        return f"{self.file}: service {self.service}" if self.service is not None else self.file


Reference = tuple[str, Loc, str]  # a service named elsewhere in the file: (its name, where, how: "links", ...)
