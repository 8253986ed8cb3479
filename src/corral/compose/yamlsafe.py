"""A YAML loader for untrusted compose files: bounded, strict about duplicates, and YAML 1.2-ish about scalars.

Why not plain `yaml.safe_load`: the server parses files uploaded by users, so size and alias expansion ("billion
laughs") are bounded before anything walks the data; a duplicate key silently overriding the first is a common
and invisible mistake, so it is an error; and YAML 1.1's implicit types bite compose users (`22:22` is the base-60
number 1342, `NO` is false, `2020-01-01` a date). Scalars follow the YAML 1.2 core schema instead, and numbers
remember their source text so that `VERSION: 1.10` stays "1.10" when used as an environment value.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from corral.model.errors import InvalidInput

MAX_DOCUMENT_BYTES = 1024 * 1024
MAX_ALIASES = 1000
MAX_EXPANDED_NODES = 1_000_000

_MERGE_TAG = "tag:yaml.org,2002:merge"


class SourceInt(int):
    """An int read from YAML that keeps its text (`007` stays "007" as an environment value)."""

    yaml_source: str


class SourceFloat(float):
    """A float read from YAML that keeps its text (`1.10` stays "1.10" as an environment value)."""

    yaml_source: str


def _construct_int(loader: yaml.SafeLoader, node: ScalarNode) -> int:
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


def _construct_float(loader: yaml.SafeLoader, node: ScalarNode) -> float:
    text = str(loader.construct_scalar(node))
    value = SourceFloat(loader.construct_yaml_float(node))
    value.yaml_source = text
    return value


class _Loader(yaml.SafeLoader):
    """Safe loading with YAML 1.2 core scalars (no sexagesimal numbers, no yes/no/on/off, no timestamps),
    counted aliases and an error on duplicate keys."""

    yaml_implicit_resolvers: dict[Any, list[tuple[str, re.Pattern[str]]]] = {}

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.alias_count = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if self.check_event(AliasEvent):
            self.alias_count += 1
            if self.alias_count > MAX_ALIASES:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise ComposerError(None, None, f"more than {MAX_ALIASES} aliases", mark)
        return super().compose_node(parent, index)

    def compose_mapping_node(self, anchor: Any) -> MappingNode:
        node = super().compose_mapping_node(anchor)
        seen: set[tuple[str, str]] = set()
        for key_node, _value in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == _MERGE_TAG:
                continue
            key = (key_node.tag, key_node.value)
            if key in seen:
                raise ComposerError(None, None, f"duplicate key {key_node.value!r}", key_node.start_mark)
            seen.add(key)
        return node


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver("tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+.0123456789"),
)
_Loader.add_implicit_resolver(_MERGE_TAG, re.compile(r"^(?:<<)$"), ["<"])
_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)


def _expanded_size(root: Node) -> int:
    """Count nodes as if every alias were copied; reject recursive aliases."""
    sizes: dict[int, int] = {}
    visiting: set[int] = set()

    def size(node: Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in visiting:
            raise InvalidInput("recursive alias")
        visiting.add(key)
        total = 1
        if isinstance(node, SequenceNode):
            for child in node.value:
                total += size(child)
                if total > MAX_EXPANDED_NODES:
                    break
        elif isinstance(node, MappingNode):
            for key_node, value_node in node.value:
                total += size(key_node) + size(value_node)
                if total > MAX_EXPANDED_NODES:
                    break
        visiting.discard(key)
        sizes[key] = total
        return total

    return size(root)


def load_yaml(text: str, file_name: str) -> Any:
    """Parse one YAML document; every failure is an `InvalidInput` naming the file (and line and column)."""
    if len(text.encode("utf-8", errors="replace")) > MAX_DOCUMENT_BYTES:
        raise InvalidInput(f"{file_name}: file is larger than {MAX_DOCUMENT_BYTES // 1024} KiB", field=file_name)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        try:
            expanded = _expanded_size(node)
        except InvalidInput as exc:
            raise InvalidInput(f"{file_name}: {exc.message}", field=file_name) from None
        if expanded > MAX_EXPANDED_NODES:
            raise InvalidInput(f"{file_name}: aliases expand to more than {MAX_EXPANDED_NODES} values", field=file_name)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        raise InvalidInput(f"{file_name}: invalid YAML{_where(exc)}: {_problem(exc)}", field=file_name) from None
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{file_name}: invalid YAML: {exc}", field=file_name) from None
    except RecursionError:
        raise InvalidInput(f"{file_name}: YAML is nested too deeply", field=file_name) from None
    finally:
        loader.dispose()


def _where(exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    if mark is None:
        return ""
    return f" at line {mark.line + 1}, column {mark.column + 1}"


def _problem(exc: yaml.MarkedYAMLError) -> str:
    parts = [p for p in (exc.context, exc.problem) if p]
    return "; ".join(parts) if parts else "cannot parse"
