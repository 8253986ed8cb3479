"""A YAML loader for untrusted compose files: bounded, strict about duplicates, and YAML 1.2-ish about scalars.

Why not plain `yaml.safe_load`: the server parses files uploaded by users, so size, nesting, node count and alias
expansion ("billion laughs") are bounded before anything walks the data; a duplicate key silently overriding the
first is a common and invisible mistake, so it is an error; and YAML 1.1's implicit types bite compose users
(`22:22` is the base-60 number 1342, `NO` is false, `2020-01-01` a date). Scalars follow the YAML 1.2 core schema
instead, and numbers remember their source text so that `VERSION: 1.10` stays "1.10" as an environment value.

Parsing uses libyaml when it is new enough to bound nesting itself (0.2.5+; pure-Python PyYAML is ~10x slower on
hostile input), else PyYAML's Python parser with a node budget; the checks run on the composed node graph, before
any Python object is built.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from corral.model.errors import InvalidInput

MAX_DOCUMENT_BYTES = 1024 * 1024
MAX_ALIASES = 1000
MAX_EXPANDED_NODES = 100_000
MAX_DEPTH = 64

_MERGE_TAG = "tag:yaml.org,2002:merge"


class SourceInt(int):
    """An int read from YAML that keeps its text (`007` stays "007" as an environment value)."""

    yaml_source: str


class SourceFloat(float):
    """A float read from YAML that keeps its text (`1.10` stays "1.10" as an environment value)."""

    yaml_source: str


def _construct_int(loader: Any, node: ScalarNode) -> int:
    text = str(loader.construct_scalar(node))
    if text.startswith("0o"):
        number = int(text[2:], 8)
    elif text.startswith("0x"):
        number = int(text[2:], 16)
    else:
        number = int(text, 10)
    value = SourceInt(number)
    value.yaml_source = text
    return value


def _construct_float(loader: Any, node: ScalarNode) -> float:
    text = str(loader.construct_scalar(node))
    value = SourceFloat(loader.construct_yaml_float(node))
    value.yaml_source = text
    return value


_RESOLVERS: list[tuple[str, re.Pattern[str], list[str]]] = [
    ("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")),
    ("tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")),
    (
        "tag:yaml.org,2002:float",
        re.compile(
            r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
        ),
        list("-+.0123456789"),
    ),
    (_MERGE_TAG, re.compile(r"^(?:<<)$"), ["<"]),
]


class _PyLoader(yaml.SafeLoader):
    """PyYAML's Python parser with a node budget, so hostile input stops early instead of being parsed whole."""

    yaml_implicit_resolvers: dict[Any, list[tuple[str, re.Pattern[str]]]] = {}

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.node_count = 0
        self.depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        self.node_count += 1
        self.depth += 1
        if self.node_count > MAX_EXPANDED_NODES or self.depth > MAX_DEPTH + 1:
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            problem = f"more than {MAX_EXPANDED_NODES} values" if self.depth <= MAX_DEPTH + 1 else "nested too deeply"
            raise ComposerError(None, None, problem, mark)
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


_LOADERS: list[Any] = [_PyLoader]
if getattr(yaml, "__with_libyaml__", False) and yaml._yaml.get_version() >= (0, 2, 5):  # bounded nesting

    class _CLoader(yaml.CSafeLoader):
        yaml_implicit_resolvers: dict[Any, list[tuple[str, re.Pattern[str]]]] = {}

    _LOADERS.insert(0, _CLoader)

for _loader in _LOADERS:
    for _tag, _pattern, _first in _RESOLVERS:
        _loader.add_implicit_resolver(_tag, _pattern, _first)
    _loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
    _loader.add_constructor("tag:yaml.org,2002:float", _construct_float)
_Loader: Any = _LOADERS[0]


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _check_nodes(root: Node, duplicates: list[str] | None = None) -> int:
    """Walk the node graph once (iteratively): duplicate keys, nesting depth, alias uses, recursive aliases, and
    the size of the document with every alias expanded, which is returned. With `duplicates`, a duplicate key is
    recorded there instead of refused (the last one wins, as Compose v1 and Rancher 1.6 read it)."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    alias_uses = 0
    stack: list[tuple[Node, int, bool]] = [(root, 0, False)]
    while stack:
        node, depth, finished = stack.pop()
        key = id(node)
        if finished:
            sizes[key] = min(1 + sum(sizes[id(child)] for child in _children(node)), MAX_EXPANDED_NODES + 1)
            on_path.discard(key)
            continue
        if key in sizes:
            alias_uses += 1
            if alias_uses > MAX_ALIASES:
                raise _Problem(f"more than {MAX_ALIASES} aliases", node)
            continue
        if key in on_path:
            raise _Problem("recursive alias", node)
        if depth > MAX_DEPTH:
            raise _Problem(f"nested more than {MAX_DEPTH} levels deep", node)
        if isinstance(node, MappingNode):
            seen: set[tuple[str, str]] = set()
            for key_node, _value in node.value:
                if isinstance(key_node, ScalarNode) and key_node.tag != _MERGE_TAG:
                    ident = (key_node.tag, key_node.value)
                    if ident in seen:
                        if duplicates is None:
                            raise _Problem(f"duplicate key {key_node.value!r}", key_node)
                        line = key_node.start_mark.line + 1 if key_node.start_mark is not None else 0
                        duplicates.append(f"duplicate key {key_node.value!r} at line {line}: the last one is used")
                    seen.add(ident)
        on_path.add(key)
        stack.append((node, depth, True))
        stack.extend((child, depth + 1, False) for child in reversed(_children(node)))
    return sizes[id(root)]


class _Problem(Exception):
    def __init__(self, message: str, node: Node) -> None:
        super().__init__(message)
        self.message = message
        self.node = node


def load_yaml(text: str, file_name: str, *, warnings: list[str] | None = None) -> Any:
    """Parse one YAML document; every failure is an `InvalidInput` naming the file (and line and column). Given
    `warnings`, duplicate keys are accepted (the last wins) with a warning each, as Compose v1 and Rancher did."""
    if len(text.encode("utf-8", errors="replace")) > MAX_DOCUMENT_BYTES:
        raise InvalidInput(f"{file_name}: file is larger than {MAX_DOCUMENT_BYTES // 1024} KiB", field=file_name)
    loader: Any = None
    try:
        if _Loader is not _PyLoader:
            _count_events(text, file_name)
        loader = _Loader(text)
        node = loader.get_single_node()
        if node is None:
            return None
        try:
            duplicates: list[str] | None = [] if warnings is not None else None
            expanded = _check_nodes(node, duplicates)
            if warnings is not None and duplicates:
                warnings.extend(f"{file_name}: {problem}" for problem in duplicates)
        except _Problem as problem:
            mark = problem.node.start_mark
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            raise InvalidInput(f"{file_name}: invalid YAML{where}: {problem.message}", field=file_name) from None
        if expanded > MAX_EXPANDED_NODES:
            raise InvalidInput(
                f"{file_name}: the document has more than {MAX_EXPANDED_NODES} values (aliases expanded)",
                field=file_name,
            )
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        raise InvalidInput(f"{file_name}: invalid YAML{_where(exc)}: {_problem(exc)}", field=file_name) from None
    except yaml.reader.ReaderError as exc:
        raise InvalidInput(
            f"{file_name}: invalid YAML at character {exc.position + 1}: {exc.reason}", field=file_name
        ) from None
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{file_name}: invalid YAML: {exc}", field=file_name) from None
    except RecursionError:
        raise InvalidInput(f"{file_name}: YAML is nested too deeply", field=file_name) from None
    finally:
        if loader is not None:
            loader.dispose()


def _count_events(text: str, file_name: str) -> None:
    """libyaml's event stream is cheap; building nodes is not: refuse huge documents before composing them."""
    counter = yaml.CSafeLoader(text)
    try:
        count = 0
        while counter.check_event():
            counter.get_event()
            count += 1
            if count > 2 * MAX_EXPANDED_NODES:
                raise InvalidInput(
                    f"{file_name}: the document has more than {MAX_EXPANDED_NODES} values", field=file_name
                )
    finally:
        counter.dispose()


def _where(exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    if mark is None:
        return ""
    return f" at line {mark.line + 1}, column {mark.column + 1}"


def _problem(exc: yaml.MarkedYAMLError) -> str:
    parts = [p for p in (exc.context, exc.problem) if p]
    return "; ".join(parts) if parts else "cannot parse"
