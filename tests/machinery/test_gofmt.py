"""Go's renderings of JSON values (machinery.gofmt), against Go's own outputs.

The rows come from Go's tests and sources where they have them: strconv/ftoa_test.go (``'g'`` and
``'f'`` with precision -1), strconv/quote_test.go (``Quote``), encoding/json/encode.go (Go 1.22
and later: ``\\b`` and ``\\f`` short, ES6 floats with ``e-7`` cleaned up) and json-iterator
v1.1.12's stream_str.go and stream_float.go (structured-merge-diff's path elements: ``\\u0008``,
``\\u000c``, ``e-07`` kept).
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from machinery.gofmt import (
    UnsupportedValueError,
    format_float_f,
    go_float_v,
    go_json,
    go_kind,
    go_number,
    go_quote,
    go_sprint,
    go_type_name,
    jsoniter_json,
)

BELOW_1E23 = 99999999999999974834176.0
ABOVE_1E23 = 100000000000000008388608.0


# --------------------------------------------------------------------------- floats


@pytest.mark.parametrize(("value", "text"), [
    # strconv/ftoa_test.go, FormatFloat(f, 'g', -1, 64): what %v prints
    (1.0, "1"), (20.0, "20"), (1234567.8, "1.2345678e+06"), (200000.0, "200000"), (2000000.0, "2e+06"),
    (0.0, "0"), (-1.0, "-1"), (12.0, "12"), (123456700.0, "1.234567e+08"), (1e23, "1e+23"),
    (BELOW_1E23, "9.999999999999997e+22"), (ABOVE_1E23, "1.0000000000000001e+23"),
    (5e-324, "5e-324"), (-5e-324, "-5e-324"), (32.0, "32"),
    (math.nan, "NaN"), (math.inf, "+Inf"), (-math.inf, "-Inf"),
    (2.2250738585072012e-308, "2.2250738585072014e-308"), (2.2250738585072011e-308, "2.225073858507201e-308"),
    (383260575764816448.0, "3.8326057576481645e+17"),
    # the sign bit of zero is kept (genericFtoa's neg, and fmt keeps a '-' sign)
    (-0.0, "-0"),
    # what SMD prints in conflict paths and CRD messages print
    (1.5, "1.5"), (3.14159, "3.14159"), (1e6, "1e+06"), (123456.0, "123456"), (0.0001, "0.0001"),
    (0.00001, "1e-05"), (-2.5, "-2.5"), (100.0, "100"), (-0.25, "-0.25"), (999999.0, "999999"),
])
def test_go_float_v(value: float, text: str) -> None:
    assert go_float_v(value) == text


@pytest.mark.parametrize(("value", "text"), [
    # strconv/ftoa_test.go, FormatFloat(f, 'f', -1, 64)
    (1e23, "100000000000000000000000"), (BELOW_1E23, "99999999999999970000000"),
    (ABOVE_1E23, "100000000000000010000000"),
    (1.0, "1"), (0.0, "0"), (-0.0, "-0"), (1e21, "1000000000000000000000"), (1e-7, "0.0000001"),
    (-12.5, "-12.5"), (math.nan, "NaN"), (-math.inf, "-Inf"),
])
def test_format_float_f(value: float, text: str) -> None:
    assert format_float_f(value) == text


# --------------------------------------------------------------------------- JSON


@pytest.mark.parametrize(("value", "text"), [
    # floats as ES6 writes them: 'f', or 'e' below 1e-6 and from 1e21, e-07 cleaned up to e-7
    (1.0, "1"), (0.5, "0.5"), (100000.0, "100000"), (1e20, "100000000000000000000"), (1e21, "1e+21"),
    (0.000001, "0.000001"), (1e-7, "1e-7"), (1.5e-7, "1.5e-7"), (1e-10, "1e-10"), (-0.0, "-0"),
    (-2.5e-300, "-2.5e-300"),
    # ints are int64: beyond it, Go's unstructured JSON has a float64
    (15, "15"), (2**63 - 1, "9223372036854775807"), (-(2**63), "-9223372036854775808"),
    (2**63, "9223372036854776000"), (2**70, "1.1805916207174113e+21"),
    (True, "true"), (False, "false"), (None, "null"),
    # strings: encodeStringTests with Go 1.22's short \b and \f; HTML characters and U+2028/9 escaped
    ("\x00", '"\\u0000"'), ("\x01", '"\\u0001"'), ("\x07", '"\\u0007"'), ("\x08", '"\\b"'), ("\x09", '"\\t"'),
    ("\x0a", '"\\n"'), ("\x0b", '"\\u000b"'), ("\x0c", '"\\f"'), ("\x0d", '"\\r"'), ("\x1f", '"\\u001f"'),
    ("\x7f", '"\x7f"'), ('a"b\\c', '"a\\"b\\\\c"'), ("<html>&", '"\\u003chtml\\u003e\\u0026"'),
    ("\u2028 \u2029", '"\\u2028 \\u2029"'), ("é<", '"é\\u003c"'), ("日本🚀", '"日本🚀"'),
    # maps sorted by key, compact
    ({"b": 1, "a": [True, None]}, '{"a":[true,null],"b":1}'), ({"b": 1, "a": "<x>"}, '{"a":"\\u003cx\\u003e","b":1}'),
    ({}, "{}"), ([], "[]"), ([1, 2.5, 1e21], "[1,2.5,1e+21]"), ({"z": {"y": [{}]}}, '{"z":{"y":[{}]}}'),
])
def test_go_json(value: Any, text: str) -> None:
    assert go_json(value) == text


@pytest.mark.parametrize(("value", "text"), [
    # json-iterator v1.1.12: \b and \f as \u00XX, strconv's two-digit exponent kept
    ("\x08", '"\\u0008"'), ("\x0c", '"\\u000c"'), ("a\bb\fc\n", '"a\\u0008b\\u000cc\\n"'),
    ("\\b", '"\\\\b"'), ("\\\x08", '"\\\\\\u0008"'), ({"k": "\f<"}, '{"k":"\\u000c\\u003c"}'),
    (1e-7, "1e-07"), (1.5e-7, "1.5e-07"), (-2.5e-9, "-2.5e-09"), (1e-10, "1e-10"), (1e21, "1e+21"),
    # the rest as encoding/json
    (0.000001, "0.000001"), (80, "80"), (80.0, "80"), ("TCP", '"TCP"'), ("<", '"\\u003c"'),
    ("\u2028", '"\\u2028"'), ({"port": 80, "protocol": "TCP"}, '{"port":80,"protocol":"TCP"}'),
])
def test_jsoniter_json(value: Any, text: str) -> None:
    assert jsoniter_json(value) == text


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, [1, math.nan], {"a": math.inf}, object(), {1, 2}])
@pytest.mark.parametrize("marshal", [go_json, jsoniter_json])
def test_json_refuses_what_go_refuses(marshal: Any, value: Any) -> None:
    # encoding/json: UnsupportedValueError for NaN and the infinities, UnsupportedTypeError else
    with pytest.raises(UnsupportedValueError, match="^json: unsupported (value|type): "):
        marshal(value)


def test_json_unsupported_value_names_it_as_go_does() -> None:
    with pytest.raises(UnsupportedValueError, match=r"^json: unsupported value: \+Inf$"):
        go_json(math.inf)


# --------------------------------------------------------------------------- %q and %v


@pytest.mark.parametrize(("text", "quoted"), [
    # strconv/quote_test.go quotetests (the valid UTF-8 ones)
    ("\a\b\f\r\n\t\v", '"\\a\\b\\f\\r\\n\\t\\v"'), ("\\", '"\\\\"'), ("\u263a", '"☺"'),
    ("\U0010ffff", '"\\U0010ffff"'), ("\x04", '"\\x04"'), ("!\u00a0!\u2000!\u3000!", '"!\\u00a0!\\u2000!\\u3000!"'),
    # more of the same rules: IsPrint excludes the soft hyphen and C1 controls; DEL is \x7f
    ("kubectl", '"kubectl"'), ('a"b', '"a\\"b"'), ("tab\there", '"tab\\there"'), ("\x01", '"\\x01"'),
    ("café", '"café"'), ("\u00a0", '"\\u00a0"'), ("back\\slash", '"back\\\\slash"'), ("\u00ad", '"\\u00ad"'),
    ("\x7f", '"\\x7f"'), ("\x85", '"\\u0085"'), ("\ufeff", '"\\ufeff"'), ("é\x01\n", '"é\\x01\\n"'),
    ("", '""'), ("<&>", '"<&>"'), ("🚀", '"🚀"'),
])
def test_go_quote(text: str, quoted: str) -> None:
    assert go_quote(text) == quoted


@pytest.mark.parametrize(("value", "text"), [
    (None, "<nil>"), (True, "true"), (False, "false"), (15, "15"), (1.0, "1"), (1e6, "1e+06"), (-0.0, "-0"),
    ("a b", "a b"), ({"b": 1, "a": "x"}, "map[a:x b:1]"), (["a", "b"], "[a b]"), ({"a": [1, {"b": None}]}, "map[a:[1 map[b:<nil>]]]"),
    ([], "[]"), ({}, "map[]"), (2**64, "1.8446744073709552e+19"),
])
def test_go_sprint(value: Any, text: str) -> None:
    assert go_sprint(value) == text


# --------------------------------------------------------------------------- Go's types


@pytest.mark.parametrize(("value", "type_name", "kind"), [
    (None, "<nil>", "nil"), (True, "bool", "bool"), (1, "int64", "int"), (2**63, "float64", "float"),
    (1.0, "float64", "float"), ("s", "string", "string"), ({}, "map[string]interface {}", "map"),
    ([], "[]interface {}", "slice"),
])
def test_go_types(value: Any, type_name: str, kind: str) -> None:
    assert go_type_name(value) == type_name
    assert go_kind(value) == kind


def test_go_number_makes_ints_beyond_int64_floats() -> None:
    assert go_number(2**63 - 1) == 2**63 - 1 and isinstance(go_number(2**63 - 1), int)
    assert isinstance(go_number(2**63), float) and isinstance(go_number(-(2**63) - 1), float)
    assert go_number(True) is True and go_number("1") == "1"
