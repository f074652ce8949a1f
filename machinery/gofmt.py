"""Go's view of JSON values and Go's renderings of them, byte for byte as Kubernetes writes them.

Role: what Kubernetes prints or stores about a value goes through Go, so what minik8s prints or
stores goes through here: server-side apply's FieldsV1 keys and conflict paths
(``machinery.pathelement``), managedFields' manager identifiers and the last-applied annotation
(``machinery.managedfields*``), and the messages and printer-column cells of custom resources
(``apiserver.crd``). The renderings:

- ``go_json``: encoding/json's ``Marshal`` of an unstructured value (Go 1.22 and later): compact,
  map keys sorted, ``<`` ``>`` ``&`` U+2028 U+2029 escaped, ``\\b`` ``\\f`` ``\\n`` ``\\r`` ``\\t``
  short, other controls ``\\u00XX``; a float64 as ES6 prints it (``1``, ``0.000001``, ``1e-7``,
  ``1e+21``).
- ``jsoniter_json``: json-iterator v1.1.12 in ``ConfigCompatibleWithStandardLibrary``, which
  structured-merge-diff writes the values of FieldsV1 path elements with. Not quite encoding/json:
  ``\\b`` and ``\\f`` come out as ``\\u0008`` and ``\\u000c``, and the exponent of the ``e`` form
  keeps strconv's two digits (``1e-07``).
- ``go_quote``: ``strconv.Quote`` / ``%q``; ``go_sprint``: ``%v`` of an unstructured value;
  ``go_float_v``: ``%v`` of a float64 (strconv ``'g'``, shortest: ``1e+06``, ``1e-05``);
  ``format_float_f``: ``strconv.FormatFloat(f, 'f', -1, 64)``; ``go_type_name``: ``%T``.

Data flow: JSON values as Python decodes them in, text out. Python's ``int`` stands for Go's
``int64`` and ``float`` for ``float64``; an int beyond int64 decodes to float64 in Go's unstructured
JSON, so ``go_number`` makes it a float before anything looks at its type. Python's ``repr`` of a
float has the same shortest round-trip digits as Go's shortest formatting, so every float rendering
starts from them. Pure: no I/O.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class UnsupportedValueError(ValueError):
    """What ``json.Marshal`` refuses: NaN and infinities (UnsupportedValueError) and values of no
    JSON type (UnsupportedTypeError), with Go's messages."""


# --------------------------------------------------------------------------- Go's types


def go_number(value: Any) -> Any:
    """An int outside int64 is a float64 in Go's unstructured JSON; everything else is unchanged."""
    if isinstance(value, int) and not isinstance(value, bool) and not INT64_MIN <= value <= INT64_MAX:
        return float(value)
    return value


_KINDS = {bool: "bool", int: "int", float: "float", str: "string", list: "slice", dict: "map"}
_TYPE_NAMES = {bool: "bool", int: "int64", float: "float64", str: "string", dict: "map[string]interface {}",
               list: "[]interface {}"}


def go_kind(value: Any) -> str:
    """The reflect kind of an unstructured value: nil, bool, int, float, string, slice or map."""
    value = go_number(value)
    if value is None:
        return "nil"
    return _KINDS.get(type(value), "?")


def go_type_name(value: Any) -> str:
    """``%T`` of an unstructured value."""
    value = go_number(value)
    if value is None:
        return "<nil>"
    return _TYPE_NAMES.get(type(value), type(value).__name__)


# --------------------------------------------------------------------------- floats


def _shortest_digits(value: float) -> tuple[str, int]:
    """The shortest round-trip digits of a finite non-zero float and its decimal point:
    ``abs(value) == 0.<digits> * 10**point``."""
    _, digits, exp = Decimal(repr(abs(value))).normalize().as_tuple()
    text = "".join(map(str, digits))
    return text, len(text) + int(exp)


def _special(value: float) -> str | None:
    """strconv's text for the floats with no digits to place (NaN, the infinities and the zeros,
    whose sign is kept), or None."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    return None


def _f_form(neg: bool, digits: str, point: int) -> str:
    if point <= 0:
        text = "0." + "0" * -point + digits
    elif point >= len(digits):
        text = digits + "0" * (point - len(digits))
    else:
        text = digits[:point] + "." + digits[point:]
    return "-" + text if neg else text


def _e_form(neg: bool, digits: str, point: int, *, min_exp_digits: int) -> str:
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    exp = point - 1
    sign = "-" if exp < 0 else "+"
    return ("-" if neg else "") + f"{mantissa}e{sign}{abs(exp):0{min_exp_digits}d}"


def format_float_f(value: float) -> str:
    """``strconv.FormatFloat(f, 'f', -1, 64)``: shortest digits, never an exponent."""
    return _special(value) or _f_form(value < 0, *_shortest_digits(value))


def go_float_v(value: float) -> str:
    """``%v`` of a float64 (``%g``, shortest): ``1``, ``1.5``, ``-0``, ``1e+06``, ``1e-05``, ``+Inf``."""
    special = _special(value)
    if special:
        return special
    digits, point = _shortest_digits(value)
    if not -4 <= point - 1 < 6:  # a shortest %g decides with precision 6
        return _e_form(value < 0, digits, point, min_exp_digits=2)
    return _f_form(value < 0, digits, point)


def _es6_float(value: float, *, min_exp_digits: int) -> str:
    """A float64 as encoding/json and json-iterator write it: ``'f'``, or ``'e'`` below 1e-6 and
    from 1e21; NaN and the infinities are refused."""
    special = _special(value)
    if special:
        if value == 0:
            return special
        raise UnsupportedValueError(f"json: unsupported value: {special}")
    digits, point = _shortest_digits(value)
    if 1e-6 <= abs(value) < 1e21:
        return _f_form(value < 0, digits, point)
    return _e_form(value < 0, digits, point, min_exp_digits=min_exp_digits)


def _json_float(value: float) -> str:
    # encoding/json cleans strconv's e-07 up to e-7 (a positive exponent here has two digits anyway).
    return _es6_float(value, min_exp_digits=1)


def _jsoniter_float(value: float) -> str:
    # json-iterator v1.1.12's WriteFloat64 leaves strconv's e-07 as it is.
    return _es6_float(value, min_exp_digits=2)


# --------------------------------------------------------------------------- strings

_encode_basestring: Callable[[str], str] = (getattr(json.encoder, "c_encode_basestring", None)
                                            or json.encoder.encode_basestring)
# Python escapes '"', '\\', the controls (\b \f \n \r \t short) as encoding/json does; Go escapes these too.
_HTML_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                               "\u2028": "\\u2028", "\u2029": "\\u2029"})
_JSONITER_CONTROLS = {"\b": "\\u0008", "\f": "\\u000c"}
_JSONITER_SPLIT = re.compile("([\b\f])")


def _json_string(text: str) -> str:
    """A string as encoding/json writes it."""
    return _encode_basestring(text).translate(_HTML_ESCAPES)


def _jsoniter_string(text: str) -> str:
    """A string as json-iterator writes it: encoding/json's escapes, but \\b and \\f as \\u00XX."""
    if "\b" not in text and "\f" not in text:
        return _json_string(text)
    parts = _JSONITER_SPLIT.split(text)
    return '"' + "".join(_JSONITER_CONTROLS.get(p) or _json_string(p)[1:-1] for p in parts) + '"'


def _marshal(value: Any, string: Callable[[str], str], number: Callable[[float], str]) -> str:
    if isinstance(value, str):
        return string(value)
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value) if INT64_MIN <= value <= INT64_MAX else number(float(value))
    if isinstance(value, float):
        return number(value)
    if isinstance(value, Mapping):
        return "{" + ",".join(string(str(k)) + ":" + _marshal(value[k], string, number)
                              for k in sorted(value, key=str)) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_marshal(v, string, number) for v in value) + "]"
    raise UnsupportedValueError(f"json: unsupported type: {type(value).__name__}")


def go_json(value: Any) -> str:
    """``json.Marshal`` of an unstructured value (see the module docstring); raises
    ``UnsupportedValueError`` for NaN, the infinities and non-JSON types, as Go returns an error."""
    return _marshal(value, _json_string, _json_float)


def jsoniter_json(value: Any) -> str:
    """json-iterator's ``ConfigCompatibleWithStandardLibrary`` marshal, as structured-merge-diff
    writes path element values: ``go_json`` but for \\b, \\f and the ``e`` exponent's digits."""
    return _marshal(value, _jsoniter_string, _jsoniter_float)


# --------------------------------------------------------------------------- fmt

_SHORT_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def go_quote(text: str) -> str:
    """``strconv.Quote`` / ``%q``: printable runes kept (Go's IsPrint and Python's isprintable
    agree: letters, marks, numbers, punctuation, symbols and the ASCII space), the rest escaped."""
    if text.isprintable() and '"' not in text and "\\" not in text:
        return '"' + text + '"'
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        elif ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def go_sprint(value: Any) -> str:
    """``%v`` of an unstructured value: ``foo``, ``1.5``, ``map[a:1]``, ``[a b]``, ``<nil>``."""
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
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{go_sprint(value[k])}" for k in sorted(value, key=str)) + "]"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(go_sprint(v) for v in value) + "]"
    return str(value)
