"""Compose `secrets:`, `configs:` and relative bind mounts: files next to the compose file, sent with the stack.

Why a pass of its own after the pipeline: these keys need bytes from the operator's disk, which only the client
has. `collect_uploads` (the CLI) reads every relative bind source (a file or a small directory), every `file:` of
a top-level secret or config, and every `environment:` source from its own environment; `corral up` sends them
with the compose file. `attach_files` (the server) turns them into `FileMount`s on the launch configs
(model/files.py): configs and uploads carry their bytes (a change of content is a change of config, so `up
--upgrade` replaces the containers); a secret is only named: its value goes to the environment's secret store as
`<stack>_<name>` (`stack_secret_values`), and an `external: true` secret must exist there already.

Compose's meaning is kept: a service sees only the secrets and configs it lists; secrets default to
`/run/secrets/<name>`, configs to `/<name>`; `uid`, `gid`, `mode` (default 0444) apply. One difference, warned:
an uploaded bind is a copy, mounted read-only (writes in the container would not reach the operator's disk).
Larger data gets an error that suggests a volume.
"""

from __future__ import annotations

import base64
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from corral.compose.interpolate import Interpolator
from corral.compose.location import Loc
from corral.compose.yamlsafe import load_yaml
from corral.model.errors import InvalidInput
from corral.model.files import (
    MAX_SECRET_BYTES,
    MAX_UPLOAD_BYTES,
    MAX_UPLOAD_FILE_BYTES,
    MAX_UPLOAD_FILES,
    SECRETS_DIR,
    FileMount,
    container_path,
    validate_secret_name,
)
from corral.model.stack import ServiceSpec, StackSpec, VolumeSpec

_DECLARED_KEYS = frozenset(
    {"file", "environment", "content", "external", "name", "labels", "driver", "template_driver"}
)
_REFERENCE_KEYS = frozenset({"source", "target", "uid", "gid", "mode"})
VOLUME_ADVICE = "put larger data in a named volume"


@dataclass(frozen=True)
class Declared:
    """A top-level secret or config."""

    kind: str  # "secret" | "config"
    key: str
    file: str = ""
    environment: str = ""
    content: str | None = None
    external: bool = False
    name: str = ""  # `name:` (an external secret's name in the store)


@dataclass(frozen=True)
class Uploads:
    """What a client sends with the compose file: bytes by normalised relative path, and environment values."""

    files: Mapping[str, bytes]
    environment: Mapping[str, str]

    def to_wire(self) -> tuple[dict[str, str], dict[str, str]]:
        return {k: base64.b64encode(v).decode() for k, v in self.files.items()}, dict(self.environment)

    @classmethod
    def from_wire(cls, files: Mapping[str, str], environment: Mapping[str, str]) -> Uploads:
        decoded: dict[str, bytes] = {}
        for key, text in files.items():
            try:
                decoded[upload_key(key)] = base64.b64decode(text, validate=True)
            except ValueError as exc:
                raise InvalidInput(f"upload {key!r} is not base64", field="uploads") from exc
        check_upload_sizes(decoded)
        return cls(decoded, dict(environment))


def upload_key(path: str) -> str:
    """The key of a path relative to the compose file ("./conf/a.conf" -> "conf/a.conf")."""
    return posixpath.normpath(path)


def check_upload_sizes(files: Mapping[str, bytes]) -> None:
    if len(files) > MAX_UPLOAD_FILES:
        raise InvalidInput(
            f"{len(files)} files to upload, at most {MAX_UPLOAD_FILES}: {VOLUME_ADVICE}", field="uploads"
        )
    for key, data in files.items():
        if len(data) > MAX_UPLOAD_FILE_BYTES:
            raise InvalidInput(
                f"{key} holds {len(data)} bytes, an uploaded file at most {MAX_UPLOAD_FILE_BYTES}: {VOLUME_ADVICE}",
                field="uploads",
            )
    total = sum(len(d) for d in files.values())
    if total > MAX_UPLOAD_BYTES:
        raise InvalidInput(
            f"the files to upload hold {total} bytes, at most {MAX_UPLOAD_BYTES} per stack: {VOLUME_ADVICE}",
            field="uploads",
        )


# -- reading the compose file


def _document(compose_name: str, compose_text: str) -> dict[str, Any]:
    doc = load_yaml(compose_text, compose_name, warnings=[])  # the pipeline reports duplicates
    return doc if isinstance(doc, dict) else {}


def _raw_services(doc: Mapping[str, Any]) -> dict[str, Any]:
    services = doc.get("services")
    if isinstance(services, dict):
        return services
    if "version" in doc:
        return {}
    return {k: v for k, v in doc.items() if isinstance(k, str) and isinstance(v, dict) and not k.startswith("x-")}


def declarations(
    compose_name: str, doc: Mapping[str, Any], interpolator: Interpolator
) -> dict[tuple[str, str], Declared]:
    """The top-level `secrets:` and `configs:` entries, checked."""
    result: dict[tuple[str, str], Declared] = {}
    for section, kind in (("secrets", "secret"), ("configs", "config")):
        choices = "file, environment, content or external" if kind == "config" else "file, environment or external"
        loc = Loc(compose_name, (section,))
        entries = interpolator.value(doc.get(section), loc)
        if entries is None:
            continue
        if not isinstance(entries, dict):
            raise loc.error(f"top-level {section} must be a mapping of names to definitions")
        for key, body in entries.items():
            where = loc.key(str(key))
            if not isinstance(body, dict):
                raise where.error(f"{kind} {key} must be a mapping with one of {choices}")
            unknown = sorted(set(body) - _DECLARED_KEYS)
            if unknown:
                raise where.error(f"{kind} {key}: unknown keys {', '.join(map(str, unknown))}")
            external = body.get("external")
            if isinstance(external, dict):  # compose v2's `external: {name: x}`
                external_name = str(external.get("name") or "")
                external = True
            else:
                external_name = ""
            declared = Declared(
                kind=kind,
                key=str(key),
                file=str(body.get("file") or ""),
                environment=str(body.get("environment") or ""),
                content=str(body["content"]) if kind == "config" and body.get("content") is not None else None,
                external=external is True or str(external).lower() == "true",
                name=str(body.get("name") or external_name),
            )
            sources = [bool(declared.file), bool(declared.environment), declared.content is not None, declared.external]
            if sum(sources) != 1:
                choices = (
                    "file, environment, content or external" if kind == "config" else "file, environment or external"
                )
                raise where.error(f"{kind} {key} needs exactly one of {choices}")
            if kind == "config" and declared.external:
                raise where.error(
                    f"config {key}: external configs are not supported (Corral keeps no configs); use file or content"
                )
            if kind == "secret":
                validate_secret_name(declared.name or declared.key, field=where.field)
            result[(kind, declared.key)] = declared
    return result


def stored_secret_name(stack: str, declared: Declared) -> str:
    """The name of a declared secret in the environment's store."""
    if declared.external:
        return declared.name or declared.key
    return f"{stack}_{declared.key}"


# -- the client side


def collect_uploads(
    compose_name: str,
    compose_text: str,
    base_dir: str,
    *,
    answers: Mapping[str, str],
    environ: Mapping[str, str],
) -> Uploads:
    """For clients: every file a relative bind, secret or config names (read below `base_dir`), and every
    environment value a secret or config takes from the caller's environment."""
    doc = _document(compose_name, compose_text)
    interpolator = Interpolator(answers)
    files: dict[str, bytes] = {}
    values: dict[str, str] = {}
    for declared in declarations(compose_name, doc, interpolator).values():
        if declared.file:
            _read_into(files, base_dir, declared.file, f"{declared.kind} {declared.key}", directory=False)
        if declared.environment:
            if declared.environment not in environ:
                raise InvalidInput(
                    f"{compose_name}: {declared.kind} {declared.key}: environment variable {declared.environment} "
                    "is not set",
                    field=f"{declared.kind}s.{declared.key}.environment",
                )
            values[declared.environment] = environ[declared.environment]
    for name, body in _raw_services(doc).items():
        loc = Loc(compose_name, ("services", str(name), "volumes"))
        for source in _relative_bind_sources(interpolator.value(body, loc.in_service(str(name))), loc):
            _read_into(files, base_dir, source, f"service {name}: volume {source}", directory=True)
    check_upload_sizes(files)
    return Uploads(files, values)


def _relative_bind_sources(body: Any, loc: Loc) -> list[str]:
    if not isinstance(body, dict) or not isinstance(body.get("volumes"), list):
        return []
    sources: list[str] = []
    for entry in body["volumes"]:
        if isinstance(entry, str):
            source = entry.split(":", 1)[0] if ":" in entry else ""
        elif isinstance(entry, dict) and entry.get("type", "bind") == "bind":
            source = str(entry.get("source") or "")
        else:
            continue
        if source.startswith("."):
            sources.append(source)
    return sources


def _read_into(files: dict[str, bytes], base_dir: str, path: str, what: str, *, directory: bool) -> None:
    full = Path(base_dir, path) if not path.startswith("/") else Path(path)
    key = upload_key(path)
    try:
        if full.is_dir() and directory:
            for child in sorted(full.rglob("*")):
                if child.is_file():
                    files[posixpath.join(key, child.relative_to(full).as_posix())] = _read_small(child, what)
                if len(files) > MAX_UPLOAD_FILES:
                    raise InvalidInput(
                        f"{what}: {full} holds more than {MAX_UPLOAD_FILES} files: {VOLUME_ADVICE}", field="uploads"
                    )
            return
        files[key] = _read_small(full, what)
    except OSError as exc:
        raise InvalidInput(f"{what}: cannot read {full}: {exc.strerror or exc}", field="uploads") from exc


def _read_small(path: Path, what: str) -> bytes:
    size = path.stat().st_size
    if size > MAX_UPLOAD_FILE_BYTES:
        raise InvalidInput(
            f"{what}: {path} holds {size} bytes, an uploaded file at most {MAX_UPLOAD_FILE_BYTES}: {VOLUME_ADVICE}",
            field="uploads",
        )
    return path.read_bytes()


# -- the server side


def attach_files(
    spec: StackSpec,
    compose_name: str,
    compose_text: str,
    *,
    answers: Mapping[str, str],
    uploads: Uploads | None,
) -> StackSpec:
    """`spec` with each service's secrets, configs and relative binds as `FileMount`s; InvalidInput naming file,
    service and field for an undeclared name, a missing upload, or a bad uid/gid/mode/target."""
    doc = _document(compose_name, compose_text)
    interpolator = Interpolator(answers)
    declared = declarations(compose_name, doc, interpolator)
    raw = _raw_services(doc)
    warnings = list(spec.warnings)
    services: list[ServiceSpec] = []
    for service in spec.services:
        loc = Loc(compose_name, ("services", service.name))
        body = interpolator.value(raw.get(service.name), loc)
        body = body if isinstance(body, dict) else {}
        mounts: list[FileMount] = []
        for section, kind in (("secrets", "secret"), ("configs", "config")):
            for position, entry in enumerate(_entries(body.get(section), loc.key(section))):
                mounts.append(_reference(entry, kind, declared, spec.name, uploads, loc.key(section).key(position)))
        volumes: list[VolumeSpec] = []
        for position, volume in enumerate(service.launch.volumes):
            if volume.kind == "bind" and volume.source and not volume.source.startswith("/"):
                mounts += _uploaded_bind(volume, uploads, loc.key("volumes").key(position))
                if not volume.read_only:
                    warnings.append(
                        f"{compose_name}: service {service.name}: {volume.source} is uploaded with the stack and "
                        f"mounted read-only at {volume.target} (a copy: writes would not reach your disk)"
                    )
            else:
                volumes.append(volume)
        if mounts or len(volumes) != len(service.launch.volumes):
            targets = [m.target for m in mounts]
            duplicate = next((t for t in targets if targets.count(t) > 1), None)
            if duplicate is not None:
                raise loc.error(f"two secrets, configs or uploaded files are mounted at {duplicate}")
            launch = replace(service.launch, volumes=tuple(volumes), files=tuple(mounts))
            service = replace(service, launch=launch)
        services.append(service)
    return replace(spec, services=tuple(services), warnings=tuple(dict.fromkeys(warnings)))


def secrets_named(spec: StackSpec) -> set[str]:
    """The stored names of the secrets the stack's services mount."""
    return {m.source for s in spec.services for m in s.launch.files if m.kind == "secret"}


def stack_secret_values(
    stack: str,
    compose_name: str,
    compose_text: str,
    *,
    answers: Mapping[str, str],
    uploads: Uploads | None,
    used: set[str],
) -> dict[str, str]:
    """Stored name -> value of the secrets in `used` that the compose file defines from a file or the caller's
    environment."""
    doc = _document(compose_name, compose_text)
    values: dict[str, str] = {}
    for declared in declarations(compose_name, doc, Interpolator(answers)).values():
        if declared.kind != "secret" or declared.external or stored_secret_name(stack, declared) not in used:
            continue
        loc = Loc(compose_name, ("secrets", declared.key))
        data = _declared_bytes(declared, uploads, loc)
        if len(data) > MAX_SECRET_BYTES:
            raise loc.error(f"secret {declared.key} holds {len(data)} bytes, at most {MAX_SECRET_BYTES}")
        try:
            values[stored_secret_name(stack, declared)] = data.decode()
        except UnicodeDecodeError as exc:
            raise loc.error(f"secret {declared.key} is not UTF-8 text") from exc
    return values


def external_secrets(compose_name: str, compose_text: str, *, answers: Mapping[str, str]) -> dict[str, str]:
    """Stored name -> compose key of the `external: true` secrets (they must exist in the environment)."""
    doc = _document(compose_name, compose_text)
    return {
        stored_secret_name("", d): d.key
        for d in declarations(compose_name, doc, Interpolator(answers)).values()
        if d.kind == "secret" and d.external
    }


def _entries(value: Any, loc: Loc) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise loc.error("must be a list of names or of {source, target, uid, gid, mode}")
    return value


def _reference(
    entry: Any, kind: str, declared: Mapping[tuple[str, str], Declared], stack: str, uploads: Uploads | None, loc: Loc
) -> FileMount:
    if isinstance(entry, str):
        entry = {"source": entry}
    if not isinstance(entry, dict) or not entry.get("source"):
        raise loc.error(f"a {kind} reference is a name or a mapping with source")
    unknown = sorted(set(entry) - _REFERENCE_KEYS)
    if unknown:
        raise loc.error(f"unknown keys {', '.join(map(str, unknown))}")
    key = str(entry["source"])
    found = declared.get((kind, key))
    if found is None:
        raise loc.key("source").error(f"{kind} {key} is not defined under the top-level {kind}s")
    default_dir = SECRETS_DIR if kind == "secret" else "/"
    try:
        target = container_path(str(entry.get("target") or ""), default_dir=default_dir, name=key)
    except InvalidInput as exc:
        raise loc.key("target").error(exc.message) from exc
    uid, gid = _number(entry.get("uid", 0), loc.key("uid")), _number(entry.get("gid", 0), loc.key("gid"))
    mode = _mode(entry.get("mode", 0o444), loc.key("mode"))
    if kind == "secret":
        return FileMount("secret", stored_secret_name(stack, found), target, uid=uid, gid=gid, mode=mode)
    content = base64.b64encode(_declared_bytes(found, uploads, Loc(loc.file, ("configs", key)))).decode()
    return FileMount("config", key, target, content=content, uid=uid, gid=gid, mode=mode)


def _declared_bytes(declared: Declared, uploads: Uploads | None, loc: Loc) -> bytes:
    if declared.content is not None:
        return declared.content.encode()
    if declared.environment:
        if uploads is None or declared.environment not in uploads.environment:
            raise loc.key("environment").error(
                f"{declared.kind} {declared.key}: the value of {declared.environment} was not sent; run `corral up` "
                "where it is set"
            )
        return uploads.environment[declared.environment].encode()
    return _uploaded(uploads, upload_key(declared.file), declared.file, loc.key("file"))


def _uploaded(uploads: Uploads | None, key: str, written: str, loc: Loc) -> bytes:
    if uploads is None or key not in uploads.files:
        raise loc.error(
            f"{written} was not uploaded with the stack: run `corral up` from the compose file's folder, or use an "
            "absolute path or a named volume"
        )
    return uploads.files[key]


def _uploaded_bind(volume: VolumeSpec, uploads: Uploads | None, loc: Loc) -> list[FileMount]:
    """The FileMounts of a relative bind: one file, or each file of an uploaded directory below its target."""
    key = upload_key(volume.source)
    if uploads is None:
        raise loc.error(
            f"invalid volume {volume.source!r}: a relative host path needs the compose file's directory, which files "
            "uploaded through the API do not have; `corral up` uploads it with the stack, or use an absolute path"
        )
    if key not in uploads.files:
        below = sorted(k for k in uploads.files if k.startswith(key + "/") or key == ".")
        if below:
            return [
                FileMount(
                    "bind",
                    name,
                    posixpath.join(volume.target, posixpath.relpath(name, key)),
                    content=base64.b64encode(uploads.files[name]).decode(),
                )
                for name in below
            ]
    data = _uploaded(uploads, key, volume.source, loc)
    return [FileMount("bind", key, volume.target, content=base64.b64encode(data).decode())]


def _number(value: Any, loc: Loc) -> int:
    text = str(value).strip()
    if not text.isdigit() or int(text) > 2**31:
        raise loc.error(f"{value!r} is not a numeric user or group id")
    return int(text)


def _mode(value: Any, loc: Loc) -> int:
    """Compose writes modes in octal (`0440`); the YAML loader reads that as the number 440, so digits 0-7 are
    taken as octal, as Compose means them."""
    if isinstance(value, int) and not isinstance(value, bool):
        digits = str(value)
        mode = int(digits, 8) if set(digits) <= set("01234567") else value
    else:
        try:
            mode = int(str(value), 8)
        except ValueError:
            raise loc.error(f"mode {value!r} is not an octal file mode") from None
    if not 0 <= mode <= 0o7777:
        raise loc.error(f"mode {value!r} is not a file mode")
    return mode
