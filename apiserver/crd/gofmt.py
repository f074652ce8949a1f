"""The field errors of CRD validation with Go's value renderings, and the Go comparisons it inherits.

Role: custom objects are arbitrary JSON, and apimachinery's ``field.Error`` body prints a bad value
through Go by its type: ``%v`` for numbers and bools (``1e+06``, ``1.5``), ``%q`` for strings and
``json.Marshal`` for the rest (``field_value``, on ``machinery.gofmt``). ``apiserver.validation``
renders values with Python's ``repr`` and ``json.dumps``, so the field errors that carry a value are
built here: ``invalid``, ``type_invalid``, ``not_supported``, ``duplicate`` and ``too_many``.
``go_deep_equal`` is reflect.DeepEqual on unstructured values (int64 1 and float64 1 differ),
``enum_matches`` kube-openapi's enum comparison and ``is_json_integer`` go-openapi's.

Data flow: validators hand a path, a JSON value and a detail to these constructors -> one
``StatusCause`` each, ready for ``machinery.errors.invalid``.
"""

from __future__ import annotations

import math
from typing import Any

from machinery.errors import StatusCause
from machinery.gofmt import go_json, go_kind, go_number, go_quote, go_sprint

JSON_FLOAT_MAX = float((1 << 53) - 1)


def field_value(value: Any) -> str:
    """The bad value as field.Error's ErrorBody prints it: %v for numbers and bools, %q for strings, JSON else."""
    value = go_number(value)
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, (bool, int, float)):
        return go_sprint(value)
    return go_json(value)


# ============================================================================ Go semantics

def is_json_integer(f: float) -> bool:
    """swag.IsFloat64AJSONInteger."""
    if math.isnan(f) or math.isinf(f) or abs(f) > JSON_FLOAT_MAX:
        return False
    if f == int(f):
        return True
    g = float(int(f))
    diff = abs(f - g)
    return diff / min(abs(f) + abs(g), 1.7976931348623157e308) < 1e-9


def go_deep_equal(a: Any, b: Any) -> bool:
    """reflect.DeepEqual of unstructured values: int64 1 and float64 1 differ, so do true and 1."""
    if go_kind(a) != go_kind(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(go_deep_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(go_deep_equal(x, y) for x, y in zip(a, b))
    return bool(a == b)


def enum_matches(data: Any, choice: Any) -> bool:
    """basicCommonValidator: DeepEqual after converting the value to the enum entry's Go type."""
    if data is None or choice is None:
        return False
    dk, ck = go_kind(data), go_kind(choice)
    if dk == ck:
        return go_deep_equal(data, choice)
    if dk == "int" and ck == "float":
        return float(data) == choice
    if dk == "float" and ck == "int":
        return int(data) == choice if not (math.isnan(data) or math.isinf(data)) else False
    if dk == "int" and ck == "string":  # Go converts an integer to the string of that rune
        return (chr(data) if 0 <= data <= 0x10FFFF and not 0xD800 <= data <= 0xDFFF else "\ufffd") == choice
    return False


# ============================================================================ field errors

def _body(kind: str, value: Any, detail: str) -> str:
    return f"{kind}: {field_value(value)}" + (f": {detail}" if detail else "")


def invalid(path: str, value: Any, detail: str) -> StatusCause:
    """field.Invalid with the value rendered as Go renders it (floats, quoting, JSON)."""
    return StatusCause("FieldValueInvalid", _body("Invalid value", value, detail), path)


def type_invalid(path: str, value: Any, detail: str) -> StatusCause:
    """field.TypeInvalid: reads "Invalid value" like Invalid, reason FieldValueTypeInvalid."""
    return StatusCause("FieldValueTypeInvalid", _body("Invalid value", value, detail), path)


def too_many(path: str, actual: int, max_quantity: int) -> StatusCause:
    """field.TooMany: "Too many: 4: must have at most 3 items"."""
    if max_quantity >= 0:
        detail = f"must have at most {max_quantity} {'item' if max_quantity == 1 else 'items'}"
    else:
        detail = "has too many items"
    head = f"Too many: {actual}" if actual >= 0 else "Too many"
    return StatusCause("FieldValueTooMany", f"{head}: {detail}", path)


def not_supported(path: str, value: Any, supported: list[str]) -> StatusCause:
    """field.NotSupported with Go's value rendering and strconv.Quote'd choices."""
    detail = "supported values: " + ", ".join(go_quote(v) for v in supported) if supported else ""
    return StatusCause("FieldValueNotSupported", _body("Unsupported value", value, detail), path)


def duplicate(path: str, value: Any) -> StatusCause:
    return StatusCause("FieldValueDuplicate", f"Duplicate value: {field_value(value)}", path)
