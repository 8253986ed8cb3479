"""Parser for Go text/template: tokens → tree, with Go's parse-time checks (unknown function, undefined variable).

Why: errors such as a missing `{{end}}` or an unknown function must be reported when a catalog is validated, before
anything is deployed, at the exact FILE:LINE:COL.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from corral.catalog.gotemplate.errors import Source, TemplateError
from corral.catalog.gotemplate.lexer import Kind, Token, lex
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
)

_OPERAND_START = {
    Kind.BOOL,
    Kind.CHAR,
    Kind.DOT,
    Kind.FIELD,
    Kind.IDENT,
    Kind.NUMBER,
    Kind.NIL,
    Kind.STRING,
    Kind.VARIABLE,
    Kind.LPAREN,
}
_OCTAL = re.compile(r"[+-]?0[0-7_]+")


def parse_number(text: str) -> tuple[int | float, bool] | None:
    """Value and "is an integer" of a Go number literal, or None when it is not valid Go syntax."""
    if text.endswith("i"):
        return None
    if "__" in text or text.endswith("_") or text.lstrip("+-").startswith("_"):
        return None
    clean = text.replace("_", "")
    body = clean.lstrip("+-")
    sign = -1 if clean.startswith("-") else 1
    try:
        if body[:2].lower() == "0x" and ("." in body or "p" in body.lower()):
            value: float = sign * float.fromhex(body)
            return value, value == int(value)
        if body[:2].lower() in ("0x", "0o", "0b"):
            return sign * int(body, 0), True
        if _OCTAL.fullmatch(clean):
            return sign * int(body, 8), True
        if any(c in body for c in ".eE"):
            value = float(clean)
            return value, value == value and abs(value) != float("inf") and value == int(value)
        return int(clean, 10), True
    except (ValueError, OverflowError):
        return None


class Parser:
    def __init__(self, source: Source, functions: Collection[str]) -> None:
        self.src = source
        self.functions = functions
        self.tokens = lex(source)
        self.i = 0
        self.vars: list[str] = ["$"]
        self.range_depth = 0
        self.templates: dict[str, ListNode] = {}

    # -- token access -------------------------------------------------------------------------------------------
    def next(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def peek(self) -> Token:
        return self.tokens[self.i]

    def next_non_space(self) -> Token:
        token = self.next()
        while token.kind is Kind.SPACE:
            token = self.next()
        return token

    def peek_non_space(self) -> Token:
        j = self.i
        while self.tokens[j].kind is Kind.SPACE:
            j += 1
        return self.tokens[j]

    def error(self, token: Token | int, message: str) -> TemplateError:
        return self.src.error(token if isinstance(token, int) else token.pos, message)

    def unexpected(self, token: Token, context: str) -> TemplateError:
        shown = "EOF" if token.kind is Kind.EOF else repr(token.text) if token.kind is not Kind.KEYWORD else token.text
        return self.error(token, f"unexpected {shown} in {context}")

    # -- structure ----------------------------------------------------------------------------------------------
    def parse(self) -> ListNode:
        root = ListNode(0)
        while True:
            node, stop = self.item(top_level=True)
            if stop is not None:
                if stop.kind is Kind.EOF:
                    return root
                raise self.error(stop, f"unexpected {{{{{stop.text}}}}}")
            if node is not None:
                root.nodes.append(node)

    def item(self, *, top_level: bool = False) -> tuple[Node | None, Token | None]:
        """One text or action; returns (None, stop) at EOF, `{{end}}` or `{{else}}` (stop = that keyword token)."""
        token = self.next()
        if token.kind is Kind.EOF:
            return None, token
        if token.kind is Kind.TEXT:
            return TextNode(token.pos, token.text), None
        head = self.peek_non_space()
        if head.kind is Kind.KEYWORD:
            self.next_non_space()
            word = head.text
            if word in ("end", "else"):
                return None, head
            if word == "define":
                if not top_level:
                    raise self.error(head, "{{define}} is only allowed at the top level")
                self.define(head)
                return None, None
            if word in ("if", "with", "range"):
                return self.control(head), None
            if word in ("template", "block"):
                return self.template(head), None
            if word in ("break", "continue"):
                if self.range_depth == 0:
                    raise self.error(head, f"{{{{{word}}}}} outside {{{{range}}}}")
                self.expect_right(word)
                return (BreakNode(head.pos) if word == "break" else ContinueNode(head.pos)), None
        return ActionNode(token.pos, self.pipeline("command", Kind.RIGHT)), None

    def item_list(self, opener: Token) -> tuple[ListNode, Token]:
        body = ListNode(self.peek().pos)
        while True:
            node, stop = self.item()
            if stop is not None:
                if stop.kind is Kind.EOF:
                    raise self.error(opener, f"{{{{{opener.text}}}}} has no matching {{{{end}}}}")
                return body, stop
            if node is not None:
                body.nodes.append(node)

    def expect_right(self, context: str) -> None:
        token = self.next_non_space()
        if token.kind is not Kind.RIGHT:
            raise self.unexpected(token, context)

    def control(self, head: Token) -> Node:
        mark = len(self.vars)
        word = head.text
        pipe = self.pipeline(word, Kind.RIGHT)
        if word == "range":
            self.range_depth += 1
        body, stop = self.item_list(head)
        if word == "range":
            self.range_depth -= 1
        else_body: ListNode | None = None
        if stop.text == "else":
            nested = self.peek_non_space()
            if word in ("if", "with") and nested.kind is Kind.KEYWORD and nested.text == word:
                # `{{else if ...}}` / `{{else with ...}}`: a nested control that shares the single closing `{{end}}`.
                self.next_non_space()
                else_body = ListNode(nested.pos, [self.control(nested)])
            else:
                self.expect_right("else")
                else_body, stop = self.item_list(head)
                if stop.text != "end":
                    raise self.error(stop, f"expected {{{{end}}}} after {{{{else}}}} of {{{{{word}}}}}")
                self.expect_right("end")
        else:
            self.expect_right("end")
        del self.vars[mark:]
        kinds: dict[str, type[IfNode] | type[WithNode] | type[RangeNode]] = {
            "if": IfNode,
            "with": WithNode,
            "range": RangeNode,
        }
        return kinds[word](head.pos, pipe, body, else_body)

    def template_name(self, head: Token) -> str:
        token = self.next_non_space()
        if token.kind is not Kind.STRING:
            raise self.unexpected(token, f"{{{{{head.text}}}}} name")
        return token.value

    def template(self, head: Token) -> Node:
        name = self.template_name(head)
        pipe: PipeNode | None = None
        if self.peek_non_space().kind is not Kind.RIGHT:
            pipe = self.pipeline(head.text, Kind.RIGHT)
        else:
            self.next_non_space()
        if head.text == "block":
            if pipe is None:
                pipe = PipeNode(head.pos, cmds=[CommandNode(head.pos, [DotNode(head.pos)])])
            saved, self.vars = self.vars, ["$"]
            body, stop = self.item_list(head)
            self.vars = saved
            if stop.text != "end":
                raise self.unexpected(stop, "{{block}}")
            self.expect_right("end")
            self.templates[name] = body
        return TemplateNode(head.pos, name, pipe)

    def define(self, head: Token) -> None:
        name = self.template_name(head)
        self.expect_right("define")
        saved, self.vars = self.vars, ["$"]
        body, stop = self.item_list(head)
        self.vars = saved
        if stop.text != "end":
            raise self.unexpected(stop, "{{define}}")
        self.expect_right("end")
        self.templates[name] = body

    # -- pipelines ----------------------------------------------------------------------------------------------
    def pipeline(self, context: str, end: Kind) -> PipeNode:
        start = self.peek_non_space()
        pipe = PipeNode(start.pos)
        while self.peek_non_space().kind is Kind.VARIABLE:
            save = self.i
            var = self.next_non_space()
            after = self.peek_non_space()
            if after.kind in (Kind.DECLARE, Kind.ASSIGN):
                self.next_non_space()
                pipe.is_assign = after.kind is Kind.ASSIGN
                if pipe.is_assign and var.text not in self.vars:
                    raise self.error(var, f'undefined variable "{var.text}"')
                pipe.decl.append(var.text)
                if not pipe.is_assign:
                    self.vars.append(var.text)
                break
            if after.kind is Kind.COMMA:
                self.next_non_space()
                pipe.decl.append(var.text)
                self.vars.append(var.text)
                if context != "range" or len(pipe.decl) >= 2:
                    raise self.error(after, f"too many declarations in {context}")
                if self.peek_non_space().kind is not Kind.VARIABLE:
                    raise self.error(after, "range can only initialize variables")
                continue
            self.i = save
            break
        while True:
            token = self.peek_non_space()
            if token.kind is end:
                self.next_non_space()
                self.check_pipeline(pipe, context, token)
                return pipe
            if token.kind in _OPERAND_START:
                pipe.cmds.append(self.command())
                continue
            if end is Kind.RPAREN and token.kind is Kind.RIGHT:
                raise self.error(start, "unclosed left paren")
            raise self.unexpected(self.next_non_space(), context)

    def check_pipeline(self, pipe: PipeNode, context: str, token: Token) -> None:
        if not pipe.cmds:
            raise self.error(token, f"missing value for {context}")
        for index, cmd in enumerate(pipe.cmds[1:], start=2):
            if isinstance(cmd.args[0], (BoolNode, DotNode, NilNode, NumberNode, StringNode)):
                raise self.error(cmd.pos, f"non executable command in pipeline stage {index}")

    def command(self) -> CommandNode:
        cmd = CommandNode(self.peek_non_space().pos)
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            token = self.peek()
            if token.kind is Kind.SPACE:
                self.next()
                continue
            if token.kind in (Kind.RIGHT, Kind.RPAREN):
                break
            if token.kind is Kind.PIPE:
                self.next()
                break
            raise self.unexpected(token, "operand")
        if not cmd.args:
            raise self.error(cmd.pos, "empty command")
        return cmd

    def operand(self) -> Node | None:
        node = self.term()
        if node is None or self.peek().kind is not Kind.FIELD:
            return node
        fields: list[str] = []
        while self.peek().kind is Kind.FIELD:
            fields.append(self.next().text[1:])
        if isinstance(node, FieldNode):
            return FieldNode(node.pos, node.names + tuple(fields))
        if isinstance(node, VariableNode):
            return VariableNode(node.pos, node.name, node.fields + tuple(fields))
        if isinstance(node, (BoolNode, StringNode, NumberNode, NilNode, DotNode)):
            raise self.error(node.pos, "unexpected . after term")
        return ChainNode(node.pos, node, tuple(fields))

    def term(self) -> Node | None:
        token = self.next_non_space()
        kind = token.kind
        if kind is Kind.IDENT:
            if token.text not in self.functions:
                raise self.error(token, f'function "{token.text}" not defined')
            return IdentifierNode(token.pos, token.text)
        if kind is Kind.DOT:
            return DotNode(token.pos)
        if kind is Kind.NIL:
            return NilNode(token.pos)
        if kind is Kind.VARIABLE:
            if token.text not in self.vars:
                raise self.error(token, f'undefined variable "{token.text}"')
            return VariableNode(token.pos, token.text)
        if kind is Kind.FIELD:
            return FieldNode(token.pos, (token.text[1:],))
        if kind is Kind.BOOL:
            return BoolNode(token.pos, token.text == "true")
        if kind is Kind.CHAR:
            return NumberNode(token.pos, token.text, ord(token.value), True)
        if kind is Kind.NUMBER:
            parsed = parse_number(token.text)
            if parsed is None:
                raise self.error(token, f"bad number syntax: {token.text!r}")
            return NumberNode(token.pos, token.text, parsed[0], parsed[1])
        if kind is Kind.LPAREN:
            return self.pipeline("parenthesized pipeline", Kind.RPAREN)
        if kind is Kind.STRING:
            return StringNode(token.pos, token.text, token.value)
        self.i -= 1
        return None


def parse(source: Source, functions: Collection[str]) -> tuple[ListNode, dict[str, ListNode]]:
    """The main tree and the `{{define}}`/`{{block}}` templates of a source text."""
    parser = Parser(source, functions)
    root = parser.parse()
    return root, parser.templates
