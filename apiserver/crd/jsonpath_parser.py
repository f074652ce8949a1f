"""The parser of kubectl's JSONPath (client-go ``util/jsonpath/parser.go``), node for node.

Role: turns a template (``{.spec.replicas}``) into the node tree that ``jsonpath`` evaluates, and
fails with client-go's own error texts ("unterminated array", "invalid array index x",
"unrecognized character in action: U+0023 '#'"), which is how a printer column path is judged.

Data flow: ``jsonpath.parse(expr)`` -> ``Parser("{" + expr + "}").parse()`` -> ``ListNode``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_DICT_KEY = re.compile(r"^'([^']*)'$")
_SLICE = re.compile(r"^(-?\d*)(:-?\d*)?(:-?\d*)?$")
_FILTER = re.compile(r"^([^!<>=]+)([!<>=]+)(.+?)$", re.S)


class JSONPathError(ValueError):
    """A parse or evaluation error, worded as client-go words it."""


# ============================================================================ nodes

@dataclass
class ListNode:
    nodes: list[Any] = field(default_factory=list)


@dataclass
class TextNode:
    text: str


@dataclass
class FieldNode:
    name: str


@dataclass
class IdentifierNode:
    name: str


@dataclass
class Param:
    value: int = 0
    known: bool = False
    derived: bool = False


@dataclass
class ArrayNode:
    params: tuple[Param, Param, Param]


@dataclass
class FilterNode:
    left: ListNode
    right: ListNode
    operator: str


@dataclass
class NumberNode:
    value: int | float


@dataclass
class BoolNode:
    value: bool


@dataclass
class WildcardNode:
    pass


@dataclass
class RecursiveNode:
    pass


@dataclass
class UnionNode:
    nodes: list[ListNode]


# ============================================================================ parser

def _is_terminator(c: str) -> bool:
    return c in ("", " ", "\t", "\r", "\n", ".", ",", "[", "]", "$", "@", "{", "}")


def _is_alnum(c: str) -> bool:
    return c == "_" or c.isalpha() or c.isdigit()


def _go_rune(c: str) -> str:
    """%#U: ``U+0023 '#'``."""
    return f"U+{ord(c):04X} '{c}'" if c.isprintable() else f"U+{ord(c):04X}"


def _unquote(text: str) -> str:
    """UnquoteExtend: strconv.Unquote that also takes single quotes."""
    if len(text) < 2 or text[0] != text[-1] or text[0] not in "\"'":
        raise JSONPathError("invalid syntax")
    body, quote = text[1:-1], text[0]
    out, i = [], 0
    simple = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", "'": "'", '"': '"'}
    while i < len(body):
        c = body[i]
        if c == quote:
            raise JSONPathError("invalid syntax")
        if c != "\\":
            out.append(c)
            i += 1
            continue
        nxt = body[i + 1:i + 2]
        if nxt in simple:
            out.append(simple[nxt])
            i += 2
        elif nxt in ("x", "u", "U"):
            width = {"x": 2, "u": 4, "U": 8}[nxt]
            digits = body[i + 2:i + 2 + width]
            if len(digits) != width or not re.fullmatch("[0-9A-Fa-f]+", digits):
                raise JSONPathError("invalid syntax")
            out.append(chr(int(digits, 16)))
            i += 2 + width
        elif nxt and nxt in "01234567":
            digits = body[i + 1:i + 4]
            if not re.fullmatch("[0-7]{3}", digits):
                raise JSONPathError("invalid syntax")
            out.append(chr(int(digits, 8)))
            i += 4
        else:
            raise JSONPathError("invalid syntax")
    return "".join(out)


class Parser:
    def __init__(self, text: str) -> None:
        self.input = text
        self.pos = 0
        self.start = 0
        self.root = ListNode()

    def next(self) -> str:
        if self.pos >= len(self.input):
            return ""
        self.pos += 1
        return self.input[self.pos - 1]

    def backup(self) -> None:
        self.pos -= 1

    def peek(self) -> str:
        return self.input[self.pos] if self.pos < len(self.input) else ""

    def consume(self) -> str:
        value = self.input[self.start:self.pos]
        self.start = self.pos
        return value

    def parse(self) -> ListNode:
        self.parse_text()
        return self.root

    def parse_text(self) -> None:
        while True:
            if self.input.startswith("{", self.pos):
                if self.pos > self.start:
                    self.root.nodes.append(TextNode(self.consume()))
                self.pos += 1
                self.consume()
                action = ListNode()
                self.root.nodes.append(action)
                if self.parse_inside_action(action):
                    continue  # the action closed: back to text
                return
            if self.next() == "":
                break
        if self.pos > self.start:
            self.root.nodes.append(TextNode(self.consume()))

    def parse_inside_action(self, cur: ListNode) -> bool:
        """Parse up to the closing ``}``; True when it was found (the caller resumes text)."""
        while True:
            rest = self.input[self.pos:]
            if rest.startswith("}"):
                self.pos += 1
                self.consume()
                return True
            if rest.startswith("[?("):
                self.parse_filter(cur)
                continue
            if rest.startswith(".."):
                if cur.nodes and isinstance(cur.nodes[-1], RecursiveNode):
                    raise JSONPathError("invalid multiple recursive descent")
                self.pos += 2
                self.consume()
                cur.nodes.append(RecursiveNode())
                if _is_alnum(self.peek()):
                    self.parse_field(cur)
                continue
            r = self.next()
            if r == "" or r in "\r\n":
                raise JSONPathError("unclosed action")
            if r == " ":
                self.consume()
            elif r in "@$":
                self.consume()
            elif r == "[":
                self.parse_array(cur)
            elif r in "\"'":
                self.parse_quote(cur, r)
            elif r == ".":
                self.parse_field(cur)
            elif r in "+-" or r.isdigit():
                self.backup()
                self.parse_number(cur)
            elif _is_alnum(r):
                self.backup()
                self.parse_identifier(cur)
            else:
                raise JSONPathError(f"unrecognized character in action: {_go_rune(r)}")

    def parse_identifier(self, cur: ListNode) -> None:
        while True:
            r = self.next()
            if _is_terminator(r):
                if r:
                    self.backup()
                break
        value = self.consume()
        cur.nodes.append(BoolNode(value == "true") if value in ("true", "false") else IdentifierNode(value))

    def parse_number(self, cur: ListNode) -> None:
        if self.peek() in ("+", "-"):
            self.next()
        while True:
            r = self.next()
            if r != "." and not r.isdigit():
                if r:
                    self.backup()
                break
        value = self.consume()
        if re.fullmatch(r"[+-]?\d+", value):
            cur.nodes.append(NumberNode(int(value)))
            return
        try:
            cur.nodes.append(NumberNode(float(value)))
        except ValueError:
            raise JSONPathError(f"cannot parse number {value}") from None

    def parse_array(self, cur: ListNode) -> None:
        while True:
            r = self.next()
            if r in ("", "\n"):
                raise JSONPathError("unterminated array")
            if r == "]":
                break
        text = self.consume()[1:-1]
        if text == "*":
            text = ":"
        parts = text.split(",")
        if len(parts) > 1:
            cur.nodes.append(UnionNode([parse_action(f"[{p.strip(' ')}]") for p in parts]))
            return
        key = _DICT_KEY.match(text)
        if key:
            cur.nodes.extend(parse_action(f".{key.group(1)}").nodes)
            return
        m = _SLICE.match(text)
        if not m:
            raise JSONPathError(f"invalid array index {text}")
        params = [Param(), Param(), Param()]
        for i, raw in enumerate(m.groups()):
            raw = raw or ""
            if raw:
                if i > 0:
                    raw = raw[1:]
                if i > 0 and raw == "":
                    params[i].known = False
                else:
                    try:
                        params[i] = Param(int(raw), True)
                    except ValueError:
                        raise JSONPathError(f"array index {raw} is not a number") from None
            elif i == 1:
                params[i] = Param(params[0].value + 1, True, True)
        cur.nodes.append(ArrayNode((params[0], params[1], params[2])))

    def parse_filter(self, cur: ListNode) -> None:
        self.pos += 3
        self.consume()
        begin = end = False
        pair = ""
        while True:
            r = self.next()
            if r in ("", "\n"):
                raise JSONPathError("unterminated filter")
            if r in "\"'":
                if not begin:
                    begin, pair = True, r
                    continue
                if self.input[self.pos - 2] != "\\" and r == pair:
                    end = True
            elif r == ")" and begin == end:
                break
        if self.next() != "]":
            raise JSONPathError("unclosed array expect ]")
        text = self.consume()[:-2]
        m = _FILTER.match(text)
        if m is None:
            cur.nodes.append(FilterNode(parse_action(text), ListNode(), "exists"))
        else:
            cur.nodes.append(FilterNode(parse_action(m.group(1)), parse_action(m.group(3)), m.group(2)))

    def parse_quote(self, cur: ListNode, end: str) -> None:
        while True:
            r = self.next()
            if r in ("", "\n"):
                raise JSONPathError("unterminated quoted string")
            if r == end and self.input[self.pos - 2] != "\\":
                break
        value = self.consume()
        try:
            cur.nodes.append(TextNode(_unquote(value)))
        except JSONPathError as err:
            raise JSONPathError(f"unquote string {value} error {err}") from None

    def parse_field(self, cur: ListNode) -> None:
        self.consume()
        while True:
            r = self.next()
            if r == "\\":
                self.next()
            elif _is_terminator(r):
                if r:
                    self.backup()
                break
        value = self.consume()
        cur.nodes.append(WildcardNode() if value == "*" else FieldNode(value.replace("\\", "")))


def parse_action(text: str) -> ListNode:
    root = Parser("{" + text + "}").parse()
    node = root.nodes[0]
    assert isinstance(node, ListNode)
    return node
