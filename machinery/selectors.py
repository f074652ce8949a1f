"""Label and field selectors, parsed and matched exactly as Kubernetes' apimachinery does.

Data flow:
- the apiserver parses ``?labelSelector=`` with ``parse_label_selector`` and ``?fieldSelector=``
  with ``parse_field_selector``, rejects field labels its kind does not expose via
  ``FieldSelector.unknown_fields``, and filters list/watch results with ``.matches``;
- controllers turn an object's ``spec.selector`` (the API dict form) into a ``LabelSelector`` with
  ``label_selector_from_dict`` and match pod labels against it;
- the CLI prints a dict selector with ``format_label_selector`` (kubectl describe's form).

The string grammar, error messages, canonical ``str()`` form and matching rules follow
``k8s.io/apimachinery/pkg/labels/selector.go`` and ``pkg/fields/selector.go``. A
``SelectorError`` is a ``ValueError`` the apiserver answers with 400 BadRequest.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, NamedTuple


class SelectorError(ValueError):
    """A label or field selector that cannot be parsed or is semantically invalid."""


# --------------------------------------------------------------------------- label validation

_QNAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QNAME_RE = re.compile(f"^{_QNAME_FMT}$")
_QNAME_ERR = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character"
)
_LABEL_VALUE_FMT = f"({_QNAME_FMT})?"
_LABEL_VALUE_RE = re.compile(f"^{_LABEL_VALUE_FMT}$")
_LABEL_VALUE_ERR = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = f"{_DNS1123_LABEL_FMT}(\\.{_DNS1123_LABEL_FMT})*"
_DNS1123_SUBDOMAIN_RE = re.compile(f"^{_DNS1123_SUBDOMAIN_FMT}$")
_DNS1123_SUBDOMAIN_ERR = (
    "a DNS-1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character"
)
_MAX_NAME = 63
_MAX_SUBDOMAIN = 253


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    """validation.RegexError: Kubernetes' wording, so clients see the messages they know."""
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


def _dns1123_subdomain_errors(value: str) -> list[str]:
    errs = [f"must be no more than {_MAX_SUBDOMAIN} characters"] if len(value) > _MAX_SUBDOMAIN else []
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        errs.append(_regex_error(_DNS1123_SUBDOMAIN_ERR, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


RegexErrorFn = Callable[..., str]


def qualified_name_errors(
    value: str,
    *,
    noun: str = "a qualified name",
    regex_error: RegexErrorFn = _regex_error,
    subdomain_errors: Callable[[str], list[str]] = _dns1123_subdomain_errors,
) -> list[str]:
    """validation.IsQualifiedName: ``[prefix/]name`` as label keys require; [] when valid.

    The checks are the same everywhere; the wording is not: the selector parser speaks as above,
    while the apiserver's object validation passes its own ``noun``, ``regex_error`` and
    ``subdomain_errors`` (Kubernetes' newer label-key messages).
    """
    name_msg = regex_error(_QNAME_ERR, _QNAME_FMT, "MyName", "my.name", "123-abc")
    parts = value.split("/")
    if len(parts) > 2:
        return [f"{noun} {name_msg} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    errs: list[str] = []
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + message for message in subdomain_errors(prefix))
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > _MAX_NAME:
        errs.append(f"name part must be no more than {_MAX_NAME} characters")
    # fullmatch, not match: Python's $ also matches before a trailing newline, Go's does not.
    if not _QNAME_RE.fullmatch(name):
        errs.append("name part " + name_msg)
    return errs


def label_value_errors(value: str, *, regex_error: RegexErrorFn = _regex_error) -> list[str]:
    """validation.IsValidLabelValue: <= 63 chars of the qualified-name charset, or empty."""
    errs: list[str] = []
    if len(value) > _MAX_NAME:
        errs.append(f"must be no more than {_MAX_NAME} characters")
    if not _LABEL_VALUE_RE.fullmatch(value):
        errs.append(regex_error(_LABEL_VALUE_ERR, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def _go_value(value: str | list[str]) -> str:
    """How field.Invalid prints the bad value: strings quoted, lists as JSON."""
    return json.dumps(value)


def _invalid(path: str, value: str | list[str], detail: str) -> str:
    """field.Invalid(...).Error(): ``path: Invalid value: "v": detail``."""
    return f"{path}: Invalid value: {_go_value(value)}: {detail}"


# --------------------------------------------------------------------------- label requirements


class Operator(str, Enum):
    """selection.Operator; the values are Kubernetes' own operator strings."""

    IN = "in"
    NOT_IN = "notin"
    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="
    GREATER_THAN = "gt"
    LESS_THAN = "lt"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"


_BINARY_OPERATORS = ("in", "notin", "=", "==", "!=", "gt", "lt")

_DICT_OPERATORS: dict[str, Operator] = {
    "In": Operator.IN,
    "NotIn": Operator.NOT_IN,
    "Exists": Operator.EXISTS,
    "DoesNotExist": Operator.DOES_NOT_EXIST,
}


def _parse_int64(text: str) -> int | None:
    """strconv.ParseInt(s, 10, 64): optional sign and decimal digits only, no spaces or '_'."""
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        return None
    number = int(text)
    return number if -(2**63) <= number < 2**63 else None


@dataclass(frozen=True)
class Requirement:
    """One ``key op values`` term of a label selector; build it with ``new_requirement``."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op in (Operator.IN, Operator.EQUALS, Operator.DOUBLE_EQUALS):
            return self.key in labels and labels[self.key] in self.values
        if op in (Operator.NOT_IN, Operator.NOT_EQUALS):
            # Kubernetes: a missing key satisfies != and notin.
            return self.key not in labels or labels[self.key] not in self.values
        if op is Operator.EXISTS:
            return self.key in labels
        if op is Operator.DOES_NOT_EXIST:
            return self.key not in labels
        if self.key not in labels or len(self.values) != 1:
            return False
        have, want = _parse_int64(labels[self.key]), _parse_int64(self.values[0])
        if have is None or want is None:
            return False
        return have > want if op is Operator.GREATER_THAN else have < want

    def __str__(self) -> str:
        op = self.operator
        if op is Operator.EXISTS:
            return self.key
        if op is Operator.DOES_NOT_EXIST:
            return f"!{self.key}"
        values = ",".join(sorted(self.values))
        if op in (Operator.IN, Operator.NOT_IN):
            return f"{self.key} {op.value} ({values})"
        symbol = {Operator.GREATER_THAN: ">", Operator.LESS_THAN: "<"}.get(op, op.value)
        return f"{self.key}{symbol}{values}"


def _requirement_errors(key: str, op: Operator, values: list[str], *, key_path: str) -> list[str]:
    """labels.NewRequirement's checks, as field-error strings."""
    errs: list[str] = []
    key_errs = qualified_name_errors(key)
    if key_errs:
        errs.append(_invalid(key_path, key, "; ".join(key_errs)))
    if op in (Operator.IN, Operator.NOT_IN) and not values:
        errs.append(_invalid("values", values, "for 'in', 'notin' operators, values set can't be empty"))
    elif op in (Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.NOT_EQUALS) and len(values) != 1:
        errs.append(_invalid("values", values, "exact-match compatibility requires one single value"))
    elif op in (Operator.EXISTS, Operator.DOES_NOT_EXIST) and values:
        errs.append(_invalid("values", values, "values set must be empty for exists and does not exist"))
    elif op in (Operator.GREATER_THAN, Operator.LESS_THAN):
        if len(values) != 1:
            errs.append(_invalid("values", values, "for 'Gt', 'Lt' operators, exactly one value is required"))
        for i, value in enumerate(values):
            if _parse_int64(value) is None:
                errs.append(
                    _invalid(f"values[{i}]", value, "for 'Gt', 'Lt' operators, the value must be an integer")
                )
    for i, value in enumerate(values):
        value_errs = label_value_errors(value)
        if value_errs:
            errs.append(_invalid(f"values[{i}][{key}]", value, "; ".join(value_errs)))
    return errs


def new_requirement(key: str, operator: Operator, values: Iterable[str] = ()) -> Requirement:
    """labels.NewRequirement: validate key, values and their count for the operator."""
    vals = list(values)
    errs = _requirement_errors(key, operator, vals, key_path="key")
    if errs:
        raise SelectorError(_aggregate(errs))
    return Requirement(key=key, operator=operator, values=tuple(vals))


def _aggregate(errs: list[str]) -> str:
    """utilerrors.Aggregate's message: one error alone, several in brackets."""
    return errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]"


# --------------------------------------------------------------------------- label selectors


@dataclass(frozen=True)
class LabelSelector:
    """An AND of requirements, sorted by key; or, with ``nothing``, the selector matching no object.

    ``LabelSelector()`` is Kubernetes' ``labels.Everything()``; ``LabelSelector.nothing()`` is
    ``labels.Nothing()`` (what a nil ``spec.selector`` means). Both print as "".
    """

    requirements: tuple[Requirement, ...] = ()
    matches_nothing: bool = False

    @staticmethod
    def everything() -> LabelSelector:
        return LabelSelector()

    @staticmethod
    def nothing() -> LabelSelector:
        return LabelSelector(matches_nothing=True)

    @property
    def empty(self) -> bool:
        """True when the selector restricts nothing (Nothing() is not empty, as in Kubernetes)."""
        return not self.matches_nothing and not self.requirements

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.matches_nothing:
            return False
        have: Mapping[str, str] = labels or {}
        return all(r.matches(have) for r in self.requirements)

    def requires_exact_match(self, key: str) -> str | None:
        """The one value ``key`` must have (``key=v`` or ``key in (v)``), else None."""
        for r in self.requirements:
            if r.key == key:
                exact = r.operator in (Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.IN)
                return r.values[0] if exact and len(r.values) == 1 else None
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def _sorted_by_key(requirements: Iterable[Requirement]) -> tuple[Requirement, ...]:
    return tuple(sorted(requirements, key=lambda r: r.key))


# ----- the string grammar (labels.Parse): a lexer, then a recursive descent parser


class _Tok(Enum):
    END = "end of string"
    CLOSE_PAR = ")"
    COMMA = ","
    NOT = "!"
    DOUBLE_EQUALS = "=="
    EQUALS = "="
    GREATER = ">"
    IDENT = "identifier"
    IN = "in"
    LESS = "<"
    NOT_EQUALS = "!="
    NOT_IN = "notin"
    OPEN_PAR = "("


_LITERAL_TOKENS: dict[str, _Tok] = {
    t.value: t for t in _Tok if t not in (_Tok.END, _Tok.IDENT)
}
_SPECIAL = frozenset("=!(),><")
_WHITESPACE = frozenset(" \t\r\n")


def _lex(text: str) -> list[tuple[_Tok, str]]:
    """Split a selector into (token, literal) pairs, ending with END."""
    items: list[tuple[_Tok, str]] = []
    pos, n = 0, len(text)
    while True:
        while pos < n and text[pos] in _WHITESPACE:
            pos += 1
        if pos >= n:
            items.append((_Tok.END, ""))
            return items
        if text[pos] in _SPECIAL:
            # Longest special-symbol run that is still a known operator ("!=" over "!").
            end = pos + 1
            if end < n and text[pos : end + 1] in _LITERAL_TOKENS:
                end += 1
            literal = text[pos:end]
            items.append((_LITERAL_TOKENS[literal], literal))
            pos = end
            continue
        start = pos
        while pos < n and text[pos] not in _SPECIAL and text[pos] not in _WHITESPACE:
            pos += 1
        word = text[start:pos]
        # Only "in" / "notin" are keyword-shaped; the parser turns them back into identifiers
        # where a value or key is expected ("in in (in)" is valid).
        items.append((_LITERAL_TOKENS.get(word, _Tok.IDENT), word))


class _Parser:
    """labels.Parser: walks the token list; errors carry Kubernetes' messages."""

    def __init__(self, text: str) -> None:
        self._items = _lex(text)
        self._pos = 0

    def _peek(self, *, values: bool = True) -> tuple[_Tok, str]:
        tok, lit = self._items[self._pos]
        if values and tok in (_Tok.IN, _Tok.NOT_IN):
            tok = _Tok.IDENT
        return tok, lit

    def _next(self, *, values: bool = True) -> tuple[_Tok, str]:
        item = self._peek(values=values)
        self._pos += 1
        return item

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            tok, lit = self._peek()
            if tok is _Tok.END:
                return requirements
            if tok not in (_Tok.IDENT, _Tok.NOT):
                raise SelectorError(f"found '{lit}', expected: !, identifier, or 'end of string'")
            try:
                requirements.append(self._requirement())
            except SelectorError as err:
                raise SelectorError(f"unable to parse requirement: {err}") from None
            tok, lit = self._next()
            if tok is _Tok.END:
                return requirements
            if tok is not _Tok.COMMA:
                raise SelectorError(f"found '{lit}', expected: ',' or 'end of string'")
            tok2, lit2 = self._peek()
            if tok2 not in (_Tok.IDENT, _Tok.NOT):
                raise SelectorError(f"found '{lit2}', expected: identifier after ','")

    def _requirement(self) -> Requirement:
        key, inferred = self._key_and_inferred_operator()
        if inferred is not None:
            return self._build(key, inferred, [])
        op = self._operator()
        values = self._set_values() if op in (Operator.IN, Operator.NOT_IN) else self._exact_value()
        return self._build(key, op, sorted(values))

    @staticmethod
    def _build(key: str, op: Operator, values: list[str]) -> Requirement:
        errs = _requirement_errors(key, op, values, key_path="key")
        if errs:
            raise SelectorError(_aggregate(errs))
        return Requirement(key=key, operator=op, values=tuple(values))

    def _key_and_inferred_operator(self) -> tuple[str, Operator | None]:
        operator: Operator | None = None
        tok, lit = self._next()
        if tok is _Tok.NOT:
            operator = Operator.DOES_NOT_EXIST
            tok, lit = self._next()
        if tok is not _Tok.IDENT:
            raise SelectorError(f"found '{lit}', expected: identifier")
        key_errs = qualified_name_errors(lit)
        if key_errs:
            # The parser validates with a nil field path, which Go prints as "<nil>".
            raise SelectorError(_invalid("<nil>", lit, "; ".join(key_errs)))
        if self._peek()[0] in (_Tok.END, _Tok.COMMA) and operator is None:
            operator = Operator.EXISTS
        return lit, operator

    def _operator(self) -> Operator:
        tok, lit = self._next(values=False)
        ops = {
            _Tok.IN: Operator.IN,
            _Tok.EQUALS: Operator.EQUALS,
            _Tok.DOUBLE_EQUALS: Operator.DOUBLE_EQUALS,
            _Tok.GREATER: Operator.GREATER_THAN,
            _Tok.LESS: Operator.LESS_THAN,
            _Tok.NOT_IN: Operator.NOT_IN,
            _Tok.NOT_EQUALS: Operator.NOT_EQUALS,
        }
        if tok not in ops:
            raise SelectorError(f"found '{lit}', expected: {', '.join(_BINARY_OPERATORS)}")
        return ops[tok]

    def _set_values(self) -> set[str]:
        tok, lit = self._next()
        if tok is not _Tok.OPEN_PAR:
            raise SelectorError(f"found '{lit}' expected: '('")
        tok, lit = self._peek()
        if tok is _Tok.CLOSE_PAR:
            self._next()
            return {""}
        if tok not in (_Tok.IDENT, _Tok.COMMA):
            raise SelectorError(f"found '{lit}', expected: ',', ')' or identifier")
        values = self._identifiers_list()
        if self._next()[0] is not _Tok.CLOSE_PAR:
            raise SelectorError(f"found '{lit}', expected: ')'")
        return values

    def _identifiers_list(self) -> set[str]:
        """``a,b``, ``,a``, ``a,,b``, ``a,``: empty slots are the empty value."""
        values: set[str] = set()
        while True:
            tok, lit = self._next()
            if tok is _Tok.IDENT:
                values.add(lit)
                tok2, lit2 = self._peek()
                if tok2 is _Tok.COMMA:
                    continue
                if tok2 is _Tok.CLOSE_PAR:
                    return values
                raise SelectorError(f"found '{lit2}', expected: ',' or ')'")
            if tok is _Tok.COMMA:
                if not values:
                    values.add("")
                tok2 = self._peek()[0]
                if tok2 is _Tok.CLOSE_PAR:
                    values.add("")
                    return values
                if tok2 is _Tok.COMMA:
                    self._next()
                    values.add("")
                continue
            raise SelectorError(f"found '{lit}', expected: ',', or identifier")

    def _exact_value(self) -> set[str]:
        if self._peek()[0] in (_Tok.END, _Tok.COMMA):
            return {""}
        tok, lit = self._next()
        if tok is _Tok.IDENT:
            return {lit}
        raise SelectorError(f"found '{lit}', expected: identifier")


def parse_label_selector(text: str) -> LabelSelector:
    """labels.Parse: the ``?labelSelector=`` / ``kubectl -l`` syntax; "" selects everything.

    Examples: ``app=web,tier!=db``, ``env in (prod, staging)``, ``track notin (canary)``,
    ``gpu``, ``!legacy``, ``replicas>2``. Raises ``SelectorError``.
    """
    return LabelSelector(requirements=_sorted_by_key(_Parser(text).parse()))


def label_selector_from_set(labels: Mapping[str, str] | None) -> LabelSelector:
    """labels.SelectorFromSet: ``k=v`` for each pair (a Service's ``spec.selector``).

    None and {} match everything, as in Kubernetes; nothing is validated.
    """
    reqs = (Requirement(key=k, operator=Operator.EQUALS, values=(v,)) for k, v in (labels or {}).items())
    return LabelSelector(requirements=_sorted_by_key(reqs))


def label_selector_from_dict(sel: Mapping[str, Any] | None) -> LabelSelector:
    """metav1.LabelSelectorAsSelector for the API form of ``spec.selector``.

    ``{"matchLabels": {...}, "matchExpressions": [{"key", "operator", "values"}]}``.
    Kubernetes semantics, deliberately asymmetric: a missing (None) selector matches NOTHING,
    while an empty one ({} or both parts empty) matches EVERYTHING. Raises ``SelectorError`` for an
    unknown operator, values given with Exists/DoesNotExist, no values with In/NotIn, or
    invalid keys/values.
    """
    if sel is None:
        return LabelSelector.nothing()
    match_labels: Mapping[str, str] = sel.get("matchLabels") or {}
    match_expressions: list[Mapping[str, Any]] = list(sel.get("matchExpressions") or [])
    if not match_labels and not match_expressions:
        return LabelSelector.everything()
    requirements = [new_requirement(str(k), Operator.EQUALS, [str(v)]) for k, v in match_labels.items()]
    for expr in match_expressions:
        op_name = expr.get("operator")
        op = _DICT_OPERATORS.get(str(op_name)) if op_name is not None else None
        if op is None:
            shown = json.dumps("" if op_name is None else str(op_name))
            raise SelectorError(f"{shown} is not a valid label selector operator")
        values = [str(v) for v in expr.get("values") or []]
        requirements.append(new_requirement(str(expr.get("key") or ""), op, values))
    return LabelSelector(requirements=_sorted_by_key(requirements))


def format_label_selector(sel: Mapping[str, Any] | None) -> str:
    """metav1.FormatLabelSelector, what kubectl describe prints for a ``spec.selector``.

    ``app=nginx,tier in (a,b)``; "<none>" for a missing or empty selector; "<error>" if invalid.
    """
    try:
        text = str(label_selector_from_dict(sel))
    except SelectorError:
        return "<error>"
    return text or "<none>"


# --------------------------------------------------------------------------- field selectors


class FieldRequirement(NamedTuple):
    """One ``field op value`` term; ``op`` is "=" (also for "==") or "!="."""

    field: str
    op: str
    value: str


_FIELD_OPERATORS = ("!=", "==", "=")


def escape_field_value(value: str) -> str:
    """fields.EscapeValue: backslash-escape ``\\``, ``,`` and ``=`` for a field selector value."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _unescape_field_value(value: str) -> str:
    """fields.UnescapeValue: only ``\\\\``, ``\\,``, ``\\=`` are escapes; a bare ``,``/``=`` is an error."""
    out: list[str] = []
    in_slash = False
    for ch in value:
        if in_slash:
            if ch not in "\\,=":
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{ch}")
            out.append(ch)
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch in ",=":
            # Go prints the rune as its code point (%v of a rune).
            raise SelectorError(f"invalid field selector: unescaped character in value: {ord(ch)}")
        else:
            out.append(ch)
    if in_slash:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_terms(text: str) -> list[str]:
    """Split on commas not preceded by a backslash escape (the escapes stay in the terms)."""
    terms: list[str] = []
    start, in_slash = 0, False
    for i, ch in enumerate(text):
        if in_slash:
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    """The first operator occurrence splits the term; the field name has no escaping."""
    for i in range(len(term)):
        for op in _FIELD_OPERATORS:
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op) :]
    return None


@dataclass(frozen=True)
class FieldSelector:
    """An AND of ``field=value`` / ``field!=value`` terms, in Kubernetes' (sorted) order."""

    requirements: tuple[FieldRequirement, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, fields: Mapping[str, str]) -> bool:
        """A field absent from ``fields`` reads as "" (so ``f!=x`` matches, ``f=`` matches)."""
        for r in self.requirements:
            equal = fields.get(r.field, "") == r.value
            if equal != (r.op == "="):
                return False
        return True

    def unknown_fields(self, allowed: Iterable[str]) -> list[str]:
        """Fields this selector names that are not in ``allowed``, first-seen order, no repeats.

        The apiserver answers the first one with 400 ``field label not supported: <field>``.
        """
        known = set(allowed)
        unknown: list[str] = []
        for r in self.requirements:
            if r.field not in known and r.field not in unknown:
                unknown.append(r.field)
        return unknown

    def requires_exact_match(self, field: str) -> str | None:
        """The value ``field`` must equal (e.g. ``spec.nodeName`` for a kubelet), else None."""
        for r in self.requirements:
            if r.field == field and r.op == "=":
                return r.value
        return None

    def __str__(self) -> str:
        return ",".join(f"{r.field}{r.op}{escape_field_value(r.value)}" for r in self.requirements)


def parse_field_selector(text: str) -> FieldSelector:
    """fields.ParseSelector: ``metadata.name=x,spec.nodeName!=``; "" selects everything.

    Values may contain backslash escapes ``\\,`` ``\\=`` ``\\\\``. Raises ``SelectorError``.
    """
    if not text:
        return FieldSelector()
    requirements: list[FieldRequirement] = []
    # Kubernetes sorts the raw terms before parsing, which fixes the canonical order.
    for term in sorted(_split_terms(text)):
        if not term:
            continue
        split = _split_term(term)
        if split is None:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
        field, op, raw_value = split
        value = _unescape_field_value(raw_value)
        if not field and not value:
            # Transform drops a term whose field and value are both empty ("=" alone).
            continue
        requirements.append(FieldRequirement(field=field, op="!=" if op == "!=" else "=", value=value))
    return FieldSelector(requirements=tuple(requirements))
