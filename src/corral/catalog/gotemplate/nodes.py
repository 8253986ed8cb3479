"""Parse tree of a Go template: text, actions, pipelines, commands, operands and control structures.

Why: the parser and the evaluator meet here; every node keeps its character offset for FILE:LINE:COL errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Node:
    pos: int


@dataclass
class ListNode(Node):
    nodes: list[Node] = field(default_factory=list)


@dataclass
class TextNode(Node):
    text: str


@dataclass
class FieldNode(Node):
    names: tuple[str, ...]  # .A.B -> ("A", "B")


@dataclass
class VariableNode(Node):
    name: str  # "$x" or "$"
    fields: tuple[str, ...] = ()


@dataclass
class IdentifierNode(Node):
    name: str


@dataclass
class DotNode(Node):
    pass


@dataclass
class NilNode(Node):
    pass


@dataclass
class BoolNode(Node):
    value: bool


@dataclass
class NumberNode(Node):
    text: str
    value: int | float
    is_int: bool


@dataclass
class StringNode(Node):
    text: str
    value: str


@dataclass
class CommandNode(Node):
    args: list[Node] = field(default_factory=list)


@dataclass
class PipeNode(Node):
    decl: list[str] = field(default_factory=list)
    is_assign: bool = False
    cmds: list[CommandNode] = field(default_factory=list)


@dataclass
class ChainNode(Node):
    node: Node
    fields: tuple[str, ...]


@dataclass
class ActionNode(Node):
    pipe: PipeNode


@dataclass
class IfNode(Node):
    pipe: PipeNode
    body: ListNode
    else_body: ListNode | None


@dataclass
class WithNode(Node):
    pipe: PipeNode
    body: ListNode
    else_body: ListNode | None


@dataclass
class RangeNode(Node):
    pipe: PipeNode
    body: ListNode
    else_body: ListNode | None


@dataclass
class TemplateNode(Node):
    name: str
    pipe: PipeNode | None


@dataclass
class BreakNode(Node):
    pass


@dataclass
class ContinueNode(Node):
    pass


def describe(node: Node) -> str:
    """Template-like text of an operand, for error messages (`can't give argument to non-function X`)."""
    if isinstance(node, FieldNode):
        return "." + ".".join(node.names)
    if isinstance(node, VariableNode):
        return node.name + "".join("." + f for f in node.fields)
    if isinstance(node, IdentifierNode):
        return node.name
    if isinstance(node, DotNode):
        return "."
    if isinstance(node, NilNode):
        return "nil"
    if isinstance(node, BoolNode):
        return "true" if node.value else "false"
    if isinstance(node, (NumberNode, StringNode)):
        return node.text
    if isinstance(node, ChainNode):
        return describe(node.node) + "".join("." + f for f in node.fields)
    if isinstance(node, PipeNode):
        decl = ", ".join(node.decl) + (" = " if node.is_assign else " := ") if node.decl else ""
        return "(" + decl + " | ".join(" ".join(describe(a) for a in c.args) for c in node.cmds) + ")"
    return type(node).__name__
