"""Go's renderings and comparisons of JSON values, so CRD errors read byte for byte as Kubernetes writes them.

Role: custom objects are arbitrary JSON, and Kubernetes prints their values through Go: ``%v`` of a
float64 (``1e+06``, ``1.5``), ``%q`` of a string, ``encoding/json`` for maps and lists (sorted keys,
``<`` escaped as ``\\u003c``), and apimachinery's ``field.Error`` body, which picks one of these by the
value's type. ``apiserver.validation`` renders floats with Python's ``repr`` and spells TooLong the
way an older apimachinery did, so the field errors whose value or wording differs are built here:
``type_invalid``, ``too_long``, ``too_many`` and ``invalid`` (FieldValueInvalid with the Go value).

Data flow: validators hand a path, a JSON value and a detail to these constructors -> one
``StatusCause`` each, ready for ``machinery.errors.invalid``.

Python's JSON decoding gives ``int`` where Go's unstructured decoding gives ``int64`` and ``float``
where Go gives ``float64``; an int beyond int64 decodes to float64 in Go, so ``go_number`` maps it
to a float before anything looks at its type. ``go_deep_equal`` is reflect.DeepEqual on such values
(int64 1 and float64 1 differ) and ``enum_matches`` kube-openapi's enum comparison.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from machinery.errors import StatusCause

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
JSON_FLOAT_MAX = float((1 << 53) - 1)


def go_number(value: Any) -> Any:
    """An int outside int64 is a float64 in Go's unstructured JSON; everything else is unchanged."""
    if isinstance(value, int) and not isinstance(value, bool) and not INT64_MIN <= value <= INT64_MAX:
        return float(value)
    return value


def _digits(value: float) -> tuple[str, int]:
    """Shortest round-trip digits of a finite non-zero float, and the point: value = 0.<digits> * 10**point."""
    parts = Decimal(repr(abs(value))).as_tuple()
    digits = "".join(map(str, parts.digits)).lstrip("0")
    point = len(digits) + int(parts.exponent)
    return digits.rstrip("0"), point


def _special(value: float) -> str | None:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return None


def _exp_form(neg: bool, digits: str, point: int, *, min_exp_digits: int) -> str:
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    exp = point - 1
    sign = "-" if exp < 0 else "+"
    return ("-" if neg else "") + f"{mantissa}e{sign}{abs(exp):0{min_exp_digits}d}"


def format_float_f(value: float) -> str:
    """strconv.FormatFloat(f, 'f', -1, 64): shortest digits, never an exponent."""
    special = _special(value)
    if special:
        return special
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    digits, point = _digits(value)
    neg = value < 0
    if point <= 0:
        text = "0." + "0" * -point + digits
    elif point >= len(digits):
        text = digits + "0" * (point - len(digits))
    else:
        text = digits[:point] + "." + digits[point:]
    return ("-" if neg else "") + text


def go_float_v(value: float) -> str:
    """fmt's %v of a float64 (%g, shortest): ``1``, ``1.5``, ``1e+06``, ``1e-05``."""
    special = _special(value)
    if special:
        return special
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    digits, point = _digits(value)
    exp = point - 1
    if exp < -4 or exp >= 6:  # shortest %g decides with precision 6
        return _exp_form(value < 0, digits, point, min_exp_digits=2)
    return format_float_f(value)


def _json_float(value: float) -> str:
    """encoding/json's float64: 'f' form, or 'e' below 1e-6 and from 1e21 (with e-07 cleaned to e-7)."""
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    if abs(value) < 1e-6 or abs(value) >= 1e21:
        digits, point = _digits(value)
        return _exp_form(value < 0, digits, point, min_exp_digits=1)
    return format_float_f(value)


_JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t",
                 "<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _json_string(text: str) -> str:
    out = []
    for ch in text:
        if ch in _JSON_ESCAPES:
            out.append(_JSON_ESCAPES[ch])
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def go_json(value: Any) -> str:
    """json.Marshal of an unstructured value: compact, map keys sorted, Go's escaping and floats."""
    value = go_number(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _json_float(value)
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{_json_string(str(k))}:{go_json(value[k])}" for k in sorted(value, key=str)) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(go_json(v) for v in value) + "]"
    return _json_string(str(value))


def go_quote(text: str) -> str:
    """strconv.Quote / %q: printable runes stay, the rest are escaped Go's way."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch.isprintable():
            out.append(ch)
        elif ch in "\a\b\f\n\r\t\v":
            out.append({"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}[ch])
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code > 0xFFFF:
            out.append(f"\\U{code:08x}")
        else:
            out.append(f"\\u{code:04x}")
    out.append('"')
    return "".join(out)


def go_sprint(value: Any) -> str:
    """fmt's %v of an unstructured value: ``foo``, ``1.5``, ``map[a:1]``, ``[a b]``, ``<nil>``."""
    value = go_number(value)
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float_v(value)
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_sprint(value[k])}" for k in sorted(value, key=str)) + "]"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(go_sprint(v) for v in value) + "]"
    return str(value)


def go_type_name(value: Any) -> str:
    """%T of an unstructured value."""
    value = go_number(value)
    if value is None:
        return "<nil>"
    return {bool: "bool", int: "int64", float: "float64", str: "string", dict: "map[string]interface {}",
            list: "[]interface {}"}.get(type(value), type(value).__name__)


def field_value(value: Any) -> str:
    """The bad value as field.Error's ErrorBody prints it: %v for numbers and bools, %q for strings, JSON else."""
    value = go_number(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float_v(value)
    if isinstance(value, str):
        return go_quote(value)
    return go_json(value)


# ============================================================================ Go semantics

def go_kind(value: Any) -> str:
    """The Go reflect kind of an unstructured value."""
    value = go_number(value)
    if value is None:
        return "nil"
    return {bool: "bool", int: "int", float: "float", str: "string", list: "slice", dict: "map"}.get(type(value), "?")


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


def too_long(path: str, max_length: int) -> StatusCause:
    """field.TooLong as apimachinery spells it today ("may not be more than 5 bytes")."""
    if max_length >= 0:
        detail = f"may not be more than {max_length} {'byte' if max_length == 1 else 'bytes'}"
    else:
        detail = "value is too long"
    return StatusCause("FieldValueTooLong", f"Too long: {detail}", path)


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
