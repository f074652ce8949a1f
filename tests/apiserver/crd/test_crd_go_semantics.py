"""The Go behaviours CRD validation inherits: RE2 patterns, strfmt formats, Go's value renderings."""

from __future__ import annotations

from typing import Any

import pytest

from apiserver.crd.formats import effective_format, format_ok
from apiserver.crd.gofmt import enum_matches, field_value, go_deep_equal
from apiserver.crd.goregex import compile_go, go_regex_error


@pytest.mark.parametrize("pattern, text, matches", [
    ("^[a-z]+$", "abc", True),
    ("^[a-z]+$", "abc\n", False),        # Go's $ is the end of the text
    ("[a-z]+", "123abc", True),          # MatchString is unanchored
    (r"^\d+$", "\u0663", False),         # \d is ASCII in RE2
    (r"^\w+$", "é", False),
    (r"^\s$", "\v", False),              # RE2's \s has no \v
    ("a(?i)b|c", "aB", True),            # flags last to the end of the group
    ("a(?i)b|c", "C", True),
    ("a(?i)b|c", "AB", False),
    ("x{,3}", "x{,3}", True),            # {,n} is a literal in Go
    ("^[[:alpha:]]+$", "abc", True),
    ("^[[:digit:]]+$", "abc", False),
    (r"^\Qa.b\E$", "a.b", True),
    (r"^\Qa.b\E$", "axb", False),
    (r"^\x{41}\101$", "AA", True),
    (r"(?P<n>a)(?<m>b)", "ab", True),
    (r"^(?s:.)$", "\n", True),
    (r"\bcat\b", "a cat!", True),
])
def test_patterns_match_as_re2(pattern: str, text: str, matches: bool) -> None:
    compiled = compile_go(pattern)
    assert compiled.enforced
    assert compiled.matches(text) is matches


def test_valid_patterns_python_cannot_express_are_accepted_not_enforced() -> None:
    assert go_regex_error(r"^\p{Greek}+$") is None
    assert not compile_go(r"^\p{Greek}+$").enforced
    assert compile_go(r"^\p{Greek}+$").matches("anything")


@pytest.mark.parametrize("pattern, error", [
    ("(?=a)", "invalid or unsupported Perl syntax: `(?=`"),
    ("(?>a)", "invalid or unsupported Perl syntax: `(?>`"),
    ("a(?<=b)", "invalid named capture: `(?<=b)`"),
    ("(a)\\1", "invalid escape sequence: `\\1`"),
    ("\\e", "invalid escape sequence: `\\e`"),
    ("a**", "invalid nested repetition operator: `**`"),
    ("a*+", "invalid nested repetition operator: `*+`"),
    ("*a", "missing argument to repetition operator: `*`"),
    ("a{1001}", "invalid repeat count: `{1001}`"),
    ("a{3,2}", "invalid repeat count: `{3,2}`"),
    ("(a", "missing closing ): `(a`"),
    ("a)", "unexpected ): `a)`"),
    ("[a-z", "missing closing ]: `[a-z`"),
    ("[z-a]", "invalid character class range: `z-a`"),
    ("[[:word2:]]", "invalid character class range: `[:word2:]`"),
    ("a\\", "trailing backslash at end of expression: ``"),
])
def test_invalid_patterns_fail_with_gos_message(pattern: str, error: str) -> None:
    assert go_regex_error(pattern) == f"error parsing regexp: {error}"


@pytest.mark.parametrize("name, text, ok", [
    ("uuid", "123e4567-e89b-12d3-a456-426614174000", True), ("uuid", "123e4567", False),
    ("date", "2024-02-29", True), ("date", "2023-02-29", False),
    ("date-time", "2024-01-01T10:00:00.5+02:00", True), ("datetime", "2024-01-01 10:00:00", False),
    ("hostname", "example.com", True), ("hostname", "-bad.com", False),
    ("ipv4", "10.0.0.1", True), ("ipv4", "::1", False), ("ipv6", "::1", True), ("ipv6", "10.0.0.1", False),
    ("cidr", "10.0.0.0/8", True), ("cidr", "10.0.0.0/33", False),
    ("mac", "00:00:5e:00:53:01", True), ("mac", "00:00:5e", False),
    ("email", "a@example.com", True), ("email", "Bob <bob@example.com>", True), ("email", "bob", False),
    ("byte", "aGVsbG8=", True), ("byte", "not base64!", False),
    ("duration", "1h30m", True), ("duration", "3 days", True), ("duration", "soon", False),
    ("uri", "https://example.com/x", True), ("uri", "example", False),
    ("k8s-short-name", "my-name", True), ("k8s-short-name", "My-Name", False),
    ("k8s-long-name", "a.b.c", True), ("k8s-long-name", "a..b", False),
    ("password", "anything", True),
])
def test_formats(name: str, text: str, ok: bool) -> None:
    assert format_ok(name, text) is ok


@pytest.mark.parametrize("types, fmt, kept", [
    (("string",), "date-time", "date-time"), (("string",), "int32", ""), (("string",), "color", ""),
    (("integer",), "int32", "int32"), (("integer",), "date", ""), (("number",), "double", "double"),
    (("boolean",), "byte", ""), (("integer", "string"), "uuid", "uuid"), ((), "date", "date"),
])
def test_formats_kubernetes_strips(types: tuple[str, ...], fmt: str, kept: str) -> None:
    assert effective_format(types, fmt) == kept


@pytest.mark.parametrize("value, rendered", [
    (15, "15"), (1.0, "1"), (1.5, "1.5"), (1e6, "1e+06"), (1234567.0, "1.234567e+06"), (1e-5, "1e-05"),
    (True, "true"), ("a\"b", '"a\\"b"'), (None, "null"), ({"b": 1, "a": "<x>"}, '{"a":"\\u003cx\\u003e","b":1}'),
    ([1, 2.5, 1e21], "[1,2.5,1e+21]"), (2**70, "1.1805916207174113e+21"),
])
def test_field_values_render_as_go(value: Any, rendered: str) -> None:
    assert field_value(value) == rendered


@pytest.mark.parametrize("a, b, equal", [
    (1, 1.0, False), (True, 1, False), ({"a": [1]}, {"a": [1]}, True), ({"a": 1}, {"a": 1.0}, False), ("x", "x", True),
])
def test_go_deep_equal(a: Any, b: Any, equal: bool) -> None:
    assert go_deep_equal(a, b) is equal


@pytest.mark.parametrize("value, choice, matches", [
    (1, 1, True), (1.0, 1, True), (1.7, 1, True),  # Go converts the value to the entry's type first
    (1, 1.5, False), (65, "A", True), ("1", 1, False), (None, None, False), (True, 1, False),
])
def test_enum_matches_like_kube_openapi(value: Any, choice: Any, matches: bool) -> None:
    assert enum_matches(value, choice) is matches


# ============================================================================ never raise on garbage

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from apiserver.crd import StructuralSchema, evaluate, row_cells, structural_errors, validate_crd  # noqa: E402

_KEYS = st.sampled_from(["type", "properties", "items", "additionalProperties", "default", "enum", "pattern",
                         "required", "nullable", "format", "minimum", "maxLength", "anyOf", "not", "spec", "x",
                         "x-kubernetes-list-type", "x-kubernetes-list-map-keys", "x-kubernetes-int-or-string",
                         "x-kubernetes-embedded-resource", "x-kubernetes-preserve-unknown-fields", "metadata",
                         "versions", "names", "schema", "openAPIV3Schema", "apiVersion", "kind", "name"])
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False),
                     st.sampled_from(["object", "array", "string", "integer", "set", "map", "[a-", "(?=x)", "date"]))
_JSON = st.recursive(_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(_KEYS, inner, max_size=5)), max_leaves=30)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema=_JSON, obj=_JSON, old=_JSON)
def test_nothing_raises_on_arbitrary_json(schema: Any, obj: Any, old: Any) -> None:
    structural_errors(schema, "spec.validation.openAPIV3Schema", status_enabled=True)
    compiled = StructuralSchema.compile(schema)
    if isinstance(obj, dict):
        compiled.prune(obj)
        compiled.default(obj)
        compiled.validate(obj, old=old if isinstance(old, dict) else None)
        compiled.validate_status(obj)
        validate_crd({"metadata": {"name": "x"}, "spec": obj, "status": old})
    evaluate(".spec.x[0]", obj)
    row_cells([{"name": "A", "type": "integer", "jsonPath": ".spec"}], {"spec": obj}, now=__import__("datetime").datetime.now())


@settings(max_examples=200, deadline=None)
@given(expr=st.text(alphabet=".[]?()@=!<>'\"*:,-0123456789abc\\{} ", max_size=20))
def test_jsonpath_never_raises_on_arbitrary_paths(expr: str) -> None:
    evaluate(expr, {"a": [{"b": 1}], "c": "d"})
