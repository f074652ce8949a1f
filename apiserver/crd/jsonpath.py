"""kubectl's JSONPath (client-go ``util/jsonpath``), as CRD printer columns evaluate it.

Role: ``additionalPrinterColumns[].jsonPath`` is parsed by client-go's parser as ``{<jsonPath>}``
and evaluated with missing keys allowed. This is a port of that parser and evaluator: fields
(``.spec.replicas``, ``.metadata.labels.app``, escaped dots ``.metadata.annotations.a\\.b/c``),
quoted keys (``['app.kubernetes.io/name']`` names a field, but as in client-go a dot inside still
splits it), indexes and slices (``[0]``, ``[-1]``, ``[1:3]``, ``[::2]``), ``[*]`` and ``.*``, unions
(``[0,2]``), recursive descent (``..name``) and filters (``[?(@.type=="Ready")]`` with
``== != < > <= >=``, or existence ``[?(@.ready)]``), with client-go's error texts. ``range``/``end``
belong to kubectl templates, not to column paths, and are rejected.

Data flow: ``parse(expr)`` (``jsonpath_parser``) -> node list (or ``JSONPathError``) ->
``find_results(nodes, obj)`` -> a list of result lists (one per top-level template node);
``evaluate(expr, obj)`` is the common case: the values the path selects, ``[]`` when nothing
matches. ``columns`` turns results into table cells (the table convertor's formatting).
"""

from __future__ import annotations

from typing import Any

from machinery.gofmt import go_json, go_kind, go_sprint, go_type_name

from .jsonpath_parser import (ArrayNode, BoolNode, FieldNode, FilterNode, IdentifierNode, JSONPathError, ListNode,
                              NumberNode, Param, Parser, RecursiveNode, TextNode, UnionNode, WildcardNode)

__all__ = ["JSONPathError", "evaluate", "find_results", "parse", "print_value", "validate_jsonpath"]


def parse(expr: str) -> ListNode:
    """client-go's ``Parse("{" + expr + "}")``, as the CRD table convertor calls it."""
    return Parser("{" + expr + "}").parse()


def validate_jsonpath(expr: str) -> str | None:
    """The parse error of a printer column's path (None when it parses)."""
    try:
        parse(expr)
    except JSONPathError as err:
        return str(err)
    return None


# ============================================================================ evaluation

def _compare(left: Any, right: Any, op: str) -> bool:
    """The forked text/template comparisons: same basic kind (bool, int, float, string) or an error."""
    def kind(v: Any) -> str:
        k = go_kind(v)
        if k not in ("bool", "int", "float", "string"):
            raise JSONPathError("invalid type for comparison")
        return k

    k1, k2 = kind(left), kind(right)
    if k1 != k2:
        raise JSONPathError("incompatible types for comparison")
    if op in ("==", "!="):
        return (left == right) == (op == "==")
    if k1 == "bool":
        raise JSONPathError("invalid type for comparison")
    less = left < right
    if op == "<":
        return bool(less)
    if op == ">=":
        return not less
    if op == "<=":
        return bool(less or left == right)
    if op == ">":
        return not (less or left == right)
    raise JSONPathError(f"unrecognized filter operator {op}")


class _Evaluator:
    def __init__(self, allow_missing_keys: bool) -> None:
        self.allow_missing = allow_missing_keys

    def walk(self, values: list[Any], node: Any) -> list[Any]:
        if isinstance(node, ListNode):
            for sub in node.nodes:
                values = self.walk(values, sub)
            return values
        if isinstance(node, TextNode):
            return [node.text]
        if isinstance(node, (NumberNode, BoolNode)):
            return [node.value for _ in values]
        if isinstance(node, FieldNode):
            return self.field(values, node)
        if isinstance(node, ArrayNode):
            return self.array(values, node)
        if isinstance(node, FilterNode):
            return self.filter(values, node)
        if isinstance(node, WildcardNode):
            return [v for value in values if value is not None for v in _children(value)]
        if isinstance(node, RecursiveNode):
            return self.recursive(values)
        if isinstance(node, UnionNode):
            return [v for member in node.nodes for v in self.walk(values, member)]
        if isinstance(node, IdentifierNode):
            if node.name == "end":
                raise JSONPathError("not in range, nothing to end")
            raise JSONPathError(f"unrecognized identifier {node.name}")
        raise JSONPathError(f"unexpected Node {node}")

    def field(self, values: list[Any], node: FieldNode) -> list[Any]:
        results = [v[node.name] for v in values if isinstance(v, dict) and node.name in v]
        if not results and values and not self.allow_missing:
            raise JSONPathError(f"{node.name} is not found")
        return results

    def array(self, values: list[Any], node: ArrayNode) -> list[Any]:
        result: list[Any] = []
        for value in values:
            if value is None:
                continue
            if not isinstance(value, list):
                raise JSONPathError(f"{go_type_name(value)} is not array or slice")
            p0, p1, p2 = (Param(p.value, p.known, p.derived) for p in node.params)
            length = len(value)
            if not p0.known:
                p0.value = 0
            if p0.value < 0:
                p0.value += length
            if not p1.known:
                p1.value = length
            if p1.value < 0 or (p1.value == 0 and p1.derived):
                p1.value += length
            if p1.value == p0.value:
                return result
            if p0.value >= length or p0.value < 0:
                raise JSONPathError(f"array index out of bounds: index {p0.value}, length {length}")
            if p1.value > length or p1.value < 0:
                raise JSONPathError(f"array index out of bounds: index {p1.value - 1}, length {length}")
            if p0.value > p1.value:
                raise JSONPathError(f"starting index {p0.value} is greater than ending index {p1.value}")
            step = 1
            if p2.known:
                if p2.value <= 0:
                    raise JSONPathError("step must be > 0")
                step = p2.value
            result.extend(value[p0.value:p1.value][::step])
        return result

    def filter(self, values: list[Any], node: FilterNode) -> list[Any]:
        results: list[Any] = []
        for value in values:
            if not isinstance(value, list):
                raise JSONPathError(f"{go_sprint(value)} is not array or slice and cannot be filtered")
            for item in value:
                try:
                    lefts = self.walk([item], node.left)
                except JSONPathError:
                    if node.operator == "exists":
                        continue
                    raise
                if node.operator == "exists":
                    if lefts:
                        results.append(item)
                    continue
                if not lefts:
                    continue
                if len(lefts) > 1:
                    raise JSONPathError("can only compare one element at a time")
                rights = self.walk([item], node.right)
                if not rights:
                    continue
                if len(rights) > 1:
                    raise JSONPathError("can only compare one element at a time")
                if _compare(lefts[0], rights[0], node.operator):
                    results.append(item)
        return results

    def recursive(self, values: list[Any]) -> list[Any]:
        result: list[Any] = []
        for value in values:
            if value is None:
                continue
            children = list(_children(value))
            if children:
                result.append(value)
                result.extend(self.recursive(children))
        return result


def _children(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, list):
        return list(value)
    if isinstance(value, str):  # Go indexes a string by byte
        return list(value.encode())
    return []


def find_results(nodes: ListNode, data: Any, *, allow_missing_keys: bool = True) -> list[list[Any]]:
    """FindResults: one result list per top-level node (text or ``{...}`` action), each from ``data``."""
    evaluator = _Evaluator(allow_missing_keys)
    return [evaluator.walk([data], node) for node in nodes.nodes]


def evaluate(expr: str, obj: Any) -> list[Any]:
    """The values ``expr`` (a printer column path) selects in ``obj``; ``[]`` when none or on an error."""
    try:
        results = find_results(parse(expr), obj)
    except JSONPathError:
        return []
    return [v for group in results for v in group]


def print_value(value: Any) -> str:
    """PrintResults of one value: maps and lists as JSON, the rest as fmt.Fprint prints them."""
    if isinstance(value, (dict, list)):
        return go_json(value)
    if value is None:
        return "<no value>"
    return go_sprint(value)
