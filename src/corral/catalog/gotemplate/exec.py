"""Evaluator for parsed Go templates, with Go's semantics: truth, pipelines, per-block variables, range and with.

Why: catalog templates must render exactly as Rancher rendered them. Two documented choices:
- a missing map key yields "" (Rancher passed answers as map[string]string, whose zero value is "");
- a parenthesised first word followed by more words, e.g. `(ne .A "x") and .B`, evaluates the parenthesised
  pipeline and ignores the rest, as the Go of Rancher's days did (the minio sample relies on it; newer Go rejects it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from corral.catalog.gotemplate.budget import DEFAULT_LIMITS, Budget, BudgetExceeded, Limits
from corral.catalog.gotemplate.errors import Source, TemplateError
from corral.catalog.gotemplate.functions import FUNCS, LAZY, Func, FuncError, truth
from corral.catalog.gotemplate.nodes import (
    ActionNode,
    BoolNode,
    BreakNode,
    ChainNode,
    CommandNode,
    ContinueNode,
    DotNode,
    FieldNode,
    IdentifierNode,
    IfNode,
    ListNode,
    NilNode,
    Node,
    NumberNode,
    PipeNode,
    RangeNode,
    StringNode,
    TemplateNode,
    TextNode,
    VariableNode,
    WithNode,
    describe,
)
from corral.catalog.gotemplate.printf import format_value, go_type


class _NoValue:
    """Marks "no piped value" (Go's missingVal), distinct from nil."""


NO_VALUE = _NoValue()


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


_KIND_NAMES = {"str": "string", "int": "int", "float": "float64", "bool": "bool", "list": "slice", "map": "map"}


class Executor:
    def __init__(self, source: Source, templates: Mapping[str, ListNode], limits: Limits = DEFAULT_LIMITS) -> None:
        self.src = source
        self.templates = templates
        self.vars: list[tuple[str, Any]] = []
        self.out: list[str] = []
        self.depth = 0
        self.budget = Budget(limits)
        self.current: Node | None = None  # the node being walked, for the position of a budget error

    def error(self, node: Node, message: str) -> TemplateError:
        return self.src.error(node.pos, message)

    def run(self, root: ListNode, data: Any) -> str:
        self.vars = [("$", data)]
        try:
            self.walk(data, root)
        except BudgetExceeded as exc:
            raise self.error(self.current or root, str(exc)) from None
        except RecursionError:
            raise self.error(self.current or root, "template budget exceeded: nested too deeply") from None
        return "".join(self.out)

    def tick(self, node: Node) -> None:
        self.current = node
        self.budget.step()

    def emit(self, text: str) -> None:
        self.budget.emit(text)
        self.out.append(text)

    # -- variables ----------------------------------------------------------------------------------------------
    def lookup(self, node: Node, name: str) -> Any:
        for var_name, value in reversed(self.vars):
            if var_name == name:
                return value
        raise self.error(node, f"undefined variable: {name}")

    def assign(self, node: Node, name: str, value: Any) -> None:
        for index in range(len(self.vars) - 1, -1, -1):
            if self.vars[index][0] == name:
                self.vars[index] = (name, value)
                return
        raise self.error(node, f"undefined variable: {name}")

    # -- statements ---------------------------------------------------------------------------------------------
    def walk(self, dot: Any, node: Node) -> None:
        self.tick(node)
        if isinstance(node, TextNode):
            self.emit(node.text)
        elif isinstance(node, ListNode):
            for child in node.nodes:
                self.walk(dot, child)
        elif isinstance(node, ActionNode):
            value = self.eval_pipeline(dot, node.pipe)
            if not node.pipe.decl:
                self.emit(self.printable(node, value))
        elif isinstance(node, (IfNode, WithNode)):
            mark = len(self.vars)
            value = self.eval_pipeline(dot, node.pipe)
            if truth(value):
                self.walk(value if isinstance(node, WithNode) else dot, node.body)
            elif node.else_body is not None:
                self.walk(dot, node.else_body)
            del self.vars[mark:]
        elif isinstance(node, RangeNode):
            self.walk_range(dot, node)
        elif isinstance(node, TemplateNode):
            self.walk_template(dot, node)
        elif isinstance(node, BreakNode):
            raise _Break
        elif isinstance(node, ContinueNode):
            raise _Continue
        else:  # pragma: no cover - every node type is handled above
            raise self.error(node, f"unknown node {type(node).__name__}")

    def printable(self, node: Node, value: Any) -> str:
        if value is None:
            return "<no value>"
        if isinstance(value, str):
            return value
        return format_value(value)

    def walk_range(self, dot: Any, node: RangeNode) -> None:
        mark = len(self.vars)
        value = self.eval_pipeline(dot, node.pipe, declare=False)
        items: list[tuple[Any, Any]]
        if value is None:
            items = []
        elif isinstance(value, Mapping):
            items = [(key, value[key]) for key in sorted(value, key=_sort_key)]
        elif isinstance(value, (list, tuple)):
            items = list(enumerate(value))
        else:
            raise self.error(node, f"range can't iterate over {format_value(value)}")
        for key, element in items:
            decl = node.pipe.decl
            if len(decl) == 1:
                self.vars.append((decl[0], element))
            elif len(decl) == 2:
                self.vars.append((decl[0], key))
                self.vars.append((decl[1], element))
            try:
                self.walk(element, node.body)
            except _Continue:
                pass
            except _Break:
                del self.vars[mark:]
                break
            finally:
                del self.vars[mark:]
        if not items and node.else_body is not None:
            self.walk(dot, node.else_body)
        del self.vars[mark:]

    def walk_template(self, dot: Any, node: TemplateNode) -> None:
        body = self.templates.get(node.name)
        if body is None:
            raise self.error(node, f'no such template "{node.name}"')
        new_dot = self.eval_pipeline(dot, node.pipe) if node.pipe is not None else None
        if self.depth >= self.budget.limits.depth:
            raise self.error(
                node, f"template budget exceeded: more than {self.budget.limits.depth} nested template calls"
            )
        saved = self.vars
        self.vars = [("$", new_dot)]
        self.depth += 1
        try:
            self.walk(new_dot, body)
        finally:
            self.depth -= 1
            self.vars = saved

    # -- expressions --------------------------------------------------------------------------------------------
    def eval_pipeline(self, dot: Any, pipe: PipeNode, *, declare: bool = True) -> Any:
        value: Any = NO_VALUE
        for cmd in pipe.cmds:
            value = self.eval_command(dot, cmd, value)
        if declare:
            for name in pipe.decl:
                if pipe.is_assign:
                    self.assign(pipe, name, value)
                else:
                    self.vars.append((name, value))
        return value

    def eval_command(self, dot: Any, cmd: CommandNode, final: Any) -> Any:
        self.tick(cmd)
        first = cmd.args[0]
        has_args = len(cmd.args) > 1 or final is not NO_VALUE
        if isinstance(first, FieldNode):
            if has_args:
                raise self.error(first, f"{first.names[-1]} is not a method but has arguments")
            return self.fields(first, dot, first.names)
        if isinstance(first, ChainNode):
            if has_args:
                raise self.error(first, f"{first.fields[-1]} is not a method but has arguments")
            return self.fields(first, self.eval_arg(dot, first.node), first.fields)
        if isinstance(first, VariableNode):
            if has_args:
                raise self.error(first, f"can't give argument to non-function {describe(first)}")
            return self.fields(first, self.lookup(first, first.name), first.fields)
        if isinstance(first, IdentifierNode):
            return self.call(dot, first, cmd.args[1:], final)
        if isinstance(first, PipeNode):
            return self.eval_pipeline(dot, first)  # extra words ignored: see the module docstring
        if has_args:
            raise self.error(first, f"can't give argument to non-function {describe(first)}")
        if isinstance(first, NilNode):
            raise self.error(first, "nil is not a command")
        return self.eval_arg(dot, first)

    def fields(self, node: Node, receiver: Any, names: tuple[str, ...]) -> Any:
        for name in names:
            if isinstance(receiver, Mapping):
                receiver = receiver.get(name, "")
            elif receiver is None:
                raise self.error(node, f"nil pointer evaluating {describe(node)}: no field {name}")
            else:
                raise self.error(node, f"can't evaluate field {name} in type {go_type(receiver)}")
        return receiver

    def eval_arg(self, dot: Any, node: Node, kind: str = "any") -> Any:
        if isinstance(node, NumberNode):
            if kind == "int":
                if not node.is_int:
                    raise self.error(node, f"expected integer; found {node.text}")
                return int(node.value)
            if kind == "float":
                return float(node.value)
            if kind in ("any",):
                return node.value
            raise self.error(node, f"expected {_KIND_NAMES[kind]}; found {node.text}")
        if isinstance(node, NilNode):
            if kind in ("any", "list", "map"):
                return None
            raise self.error(node, f"cannot assign nil to {_KIND_NAMES[kind]}")
        if isinstance(node, DotNode):
            value = dot
        elif isinstance(node, (BoolNode, StringNode)):
            value = node.value
        elif isinstance(node, FieldNode):
            value = self.fields(node, dot, node.names)
        elif isinstance(node, VariableNode):
            value = self.fields(node, self.lookup(node, node.name), node.fields)
        elif isinstance(node, ChainNode):
            value = self.fields(node, self.eval_arg(dot, node.node), node.fields)
        elif isinstance(node, PipeNode):
            value = self.eval_pipeline(dot, node)
        elif isinstance(node, IdentifierNode):
            value = self.call(dot, node, [], NO_VALUE)
        else:  # pragma: no cover
            raise self.error(node, f"can't handle {describe(node)} as an argument")
        return self.check_kind(node, value, kind)

    def check_kind(self, node: Node, value: Any, kind: str) -> Any:
        ok = _KIND_CHECKS[kind](value)
        if not ok:
            raise self.error(node, f"wrong type for value; expected {_KIND_NAMES[kind]}; got {go_type(value)}")
        return float(value) if kind == "float" else value

    def call(self, dot: Any, ident: IdentifierNode, args: list[Node], final: Any) -> Any:
        name = ident.name
        func = FUNCS[name]
        count = len(args) + (0 if final is NO_VALUE else 1)
        wanted = len(func.params)
        if count < wanted or (func.variadic is None and count > wanted):
            at_least = "at least " if func.variadic is not None else ""
            raise self.error(ident, f"wrong number of args for {name}: want {at_least}{wanted} got {count}")
        if name in LAZY:
            return self.logic(dot, name, args, final)
        kinds = [*func.params, *([func.variadic or "any"] * (count - wanted))]
        values = [self.eval_arg(dot, node, kind) for node, kind in zip(args, kinds, strict=False)]
        if final is not NO_VALUE:
            values.append(self.check_kind(ident, final, kinds[-1]))
        return self.invoke(ident, func, values)

    def invoke(self, ident: IdentifierNode, func: Func, values: list[Any]) -> Any:
        self.current = ident
        try:
            self.budget.check_args(ident.name, values)
            result = func.fn(*values)
            self.budget.check_value(ident.name, result)
            return result
        except FuncError as exc:
            raise self.error(ident, f"error calling {ident.name}: {exc}") from None
        except (ArithmeticError, ValueError, TypeError, OverflowError) as exc:
            raise self.error(ident, f"error calling {ident.name}: {exc}") from None

    def logic(self, dot: Any, name: str, args: list[Node], final: Any) -> Any:
        """`and`/`or` short-circuit: the first false (and) or true (or) argument, else the last one."""
        want = name == "or"
        value: Any = None
        for node in args:
            value = self.eval_arg(dot, node)
            if truth(value) == want:
                return value
        if final is not NO_VALUE:
            value = final
        return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_KIND_CHECKS: dict[str, Callable[[Any], bool]] = {
    "any": lambda v: True,
    "str": lambda v: isinstance(v, str),
    "int": _is_int,
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "list": lambda v: v is None or isinstance(v, (list, tuple)),
    "map": lambda v: v is None or isinstance(v, Mapping),
}


def _sort_key(key: Any) -> tuple[int, Any]:
    if isinstance(key, (int, float)) and not isinstance(key, bool):
        return (0, key)
    return (1, str(key))
