"""Label and field selectors: parsing, canonical form, matching and errors as Kubernetes has them."""

from __future__ import annotations

from typing import Any

import pytest

from machinery.selectors import (
    FieldRequirement,
    LabelSelector,
    SelectorError,
    format_label_selector,
    label_selector_from_dict,
    label_selector_from_set,
    parse_field_selector,
    parse_label_selector,
)

# --------------------------------------------------------------------------- label: parsing


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("", ""),
        ("   ", ""),
        ("a=b", "a=b"),
        ("a==b", "a==b"),
        ("a!=b", "a!=b"),
        ("a=", "a="),  # the empty value is a value
        ("a", "a"),
        ("!a", "!a"),
        ("a in (y,x)", "a in (x,y)"),
        ("a notin (x)", "a notin (x)"),
        ("a in ()", "a in ()"),
        ("x in (foo,,baz),y,z notin ()", "x in (,baz,foo),y,z notin ()"),
        ("a in (x,x,y)", "a in (x,y)"),  # a set: duplicates merge
        ("  b = 1 ,  a  in ( x , y )  ", "a in (x,y),b=1"),  # whitespace tolerant, sorted by key
        ("in in (in, notin)", "in in (in,notin)"),  # keywords are plain words in key/value place
        ("example.com/app=web", "example.com/app=web"),
        ("a>1,b<2", "a>1,b<2"),
        ("a=1,a!=2", "a=1,a!=2"),
    ],
)
def test_label_parse_canonical_form(text: str, canonical: str) -> None:
    assert str(parse_label_selector(text)) == canonical


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
        ("a,", "found '', expected: identifier after ','"),
        (",a", "found ',', expected: !, identifier, or 'end of string'"),
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        ("a in x", "unable to parse requirement: found 'x' expected: '('"),
        ("a in (x", "unable to parse requirement: found '', expected: ',' or ')'"),
        ("a in (x y)", "unable to parse requirement: found 'y', expected: ',' or ')'"),
        ("!", "unable to parse requirement: found '', expected: identifier"),
        ("a=(", "unable to parse requirement: found '(', expected: identifier"),
        ("!a=b", "found '=', expected: ',' or 'end of string'"),
        ("-a", 'unable to parse requirement: <nil>: Invalid value: "-a": name part must consist of'),
        ("a/b/c", 'unable to parse requirement: <nil>: Invalid value: "a/b/c": a qualified name must'),
        ("/a", 'unable to parse requirement: <nil>: Invalid value: "/a": prefix part must be non-empty'),
        ("Example.com/a", "prefix part a DNS-1123 subdomain must consist of lower case"),
        ("k" * 64, "name part must be no more than 63 characters"),
        ("a=-b", 'unable to parse requirement: values[0][a]: Invalid value: "-b": a valid label must be'),
        ("a=" + "v" * 64, "must be no more than 63 characters"),
        ("a>x", "for 'Gt', 'Lt' operators, the value must be an integer"),
    ],
)
def test_label_parse_errors(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as err:
        parse_label_selector(text)
    assert message in str(err.value)
    assert isinstance(err.value, ValueError)  # the apiserver maps ValueError subclasses to 400


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("", {}, True),
        ("", None, True),
        ("a=b", {"a": "b"}, True),
        ("a=b", {"a": "c"}, False),
        ("a=b", {}, False),
        ("a==b", {"a": "b", "x": "y"}, True),
        ("a!=b", {"a": "c"}, True),
        ("a!=b", {"a": "b"}, False),
        ("a!=b", {}, True),  # != matches objects lacking the key
        ("a in (x,y)", {"a": "y"}, True),
        ("a in (x,y)", {"a": "z"}, False),
        ("a in (x,y)", {}, False),
        ("a notin (x,y)", {"a": "z"}, True),
        ("a notin (x,y)", {"a": "x"}, False),
        ("a notin (x,y)", {}, True),  # notin matches objects lacking the key
        ("a", {"a": ""}, True),
        ("a", {"b": "x"}, False),
        ("!a", {"b": "x"}, True),
        ("!a", {"a": "x"}, False),
        ("a=", {"a": ""}, True),
        ("a=", {}, False),
        ("a in (,x)", {"a": ""}, True),
        ("a=b,c", {"a": "b"}, False),  # comma is AND
        ("a=b,c", {"a": "b", "c": "d"}, True),
        ("a>1", {"a": "2"}, True),
        ("a>1", {"a": "1"}, False),
        ("a>1", {"a": "x"}, False),
        ("a<1", {"a": "-5"}, True),
        ("a<1", {}, False),
    ],
)
def test_label_matches(text: str, labels: dict[str, str] | None, expected: bool) -> None:
    assert parse_label_selector(text).matches(labels) is expected


def test_label_selector_is_immutable_and_empty_flag() -> None:
    sel = parse_label_selector("a=b")
    with pytest.raises(AttributeError):
        sel.requirements = ()  # type: ignore[misc]
    assert not sel.empty
    assert parse_label_selector("").empty
    assert parse_label_selector("a=b") == parse_label_selector(" a = b ")
    assert hash(sel) == hash(parse_label_selector("a=b"))


@pytest.mark.parametrize(
    ("text", "key", "value"),
    [("a=b,c=d", "c", "d"), ("a in (x)", "a", "x"), ("a in (x,y)", "a", None), ("a!=b", "a", None), ("a=b", "z", None)],
)
def test_label_requires_exact_match(text: str, key: str, value: str | None) -> None:
    assert parse_label_selector(text).requires_exact_match(key) == value


# --------------------------------------------------------------------------- label: dict form


def test_none_selector_matches_nothing_but_empty_matches_everything() -> None:
    nothing = label_selector_from_dict(None)
    assert not nothing.matches({}) and not nothing.matches({"a": "b"})
    assert not nothing.empty  # as labels.Nothing(): not empty, yet selects nothing
    assert str(nothing) == ""
    for empty in ({}, {"matchLabels": {}}, {"matchLabels": None, "matchExpressions": []}):
        sel = label_selector_from_dict(empty)
        assert sel.empty and sel.matches({}) and sel.matches({"a": "b"})
    assert LabelSelector.nothing() == nothing and LabelSelector.everything() == LabelSelector()


@pytest.mark.parametrize(
    ("sel", "canonical"),
    [
        ({"matchLabels": {"tier": "db", "app": "web"}}, "app=web,tier=db"),
        ({"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]}]}, "env in (dev,prod)"),
        ({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["x"]}]}, "env notin (x)"),
        ({"matchExpressions": [{"key": "gpu", "operator": "Exists"}]}, "gpu"),
        ({"matchExpressions": [{"key": "gpu", "operator": "DoesNotExist", "values": []}]}, "!gpu"),
        (
            {"matchLabels": {"app": "nginx"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]}]},
            "app=nginx,tier in (a,b)",
        ),
    ],
)
def test_label_from_dict_canonical(sel: dict[str, Any], canonical: str) -> None:
    assert str(label_selector_from_dict(sel)) == canonical
    # The string form parses back to a selector that behaves the same.
    assert str(parse_label_selector(canonical)) == canonical


@pytest.mark.parametrize(
    ("sel", "labels", "expected"),
    [
        ({"matchLabels": {"app": "web"}}, {"app": "web", "pod-template-hash": "abc"}, True),
        ({"matchLabels": {"app": "web"}}, {"app": "db"}, False),
        ({"matchExpressions": [{"key": "env", "operator": "In", "values": ["a", "b"]}]}, {"env": "b"}, True),
        ({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["a"]}]}, {}, True),
        ({"matchExpressions": [{"key": "env", "operator": "Exists"}]}, {}, False),
        ({"matchExpressions": [{"key": "env", "operator": "DoesNotExist"}]}, {}, True),
        (
            {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "env", "operator": "Exists"}]},
            {"app": "web"},
            False,
        ),
    ],
)
def test_label_from_dict_matches(sel: dict[str, Any], labels: dict[str, str], expected: bool) -> None:
    assert label_selector_from_dict(sel).matches(labels) is expected


@pytest.mark.parametrize(
    ("sel", "message"),
    [
        ({"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["x"]}]}, '"Equals" is not a valid label selector operator'),
        ({"matchExpressions": [{"key": "a", "values": ["x"]}]}, '"" is not a valid label selector operator'),
        ({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}, "values set must be empty for exists and does not exist"),
        ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist", "values": ["x"]}]}, "values set must be empty"),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}, "for 'in', 'notin' operators, values set can't be empty"),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn"}]}, "values set can't be empty"),
        ({"matchLabels": {"-bad": "x"}}, 'key: Invalid value: "-bad"'),
        ({"matchLabels": {"a": "bad value"}}, 'values[0][a]: Invalid value: "bad value"'),
    ],
)
def test_label_from_dict_errors(sel: dict[str, Any], message: str) -> None:
    with pytest.raises(SelectorError) as err:
        label_selector_from_dict(sel)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("sel", "text"),
    [
        ({"matchLabels": {"app": "nginx"}}, "app=nginx"),
        ({"matchLabels": {"app": "nginx"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]}]}, "app=nginx,tier in (a,b)"),
        (None, "<none>"),
        ({}, "<none>"),
        ({"matchExpressions": [{"key": "a", "operator": "Bogus"}]}, "<error>"),
    ],
)
def test_format_label_selector(sel: dict[str, Any] | None, text: str) -> None:
    assert format_label_selector(sel) == text


@pytest.mark.parametrize(
    ("labels", "canonical", "probe", "expected"),
    [
        ({"b": "2", "a": "1"}, "a=1,b=2", {"a": "1", "b": "2", "c": "3"}, True),
        ({"a": "1"}, "a=1", {"a": "2"}, False),
        (None, "", {"x": "y"}, True),
        ({}, "", {}, True),
    ],
)
def test_label_selector_from_set(labels: dict[str, str] | None, canonical: str, probe: dict[str, str], expected: bool) -> None:
    sel = label_selector_from_set(labels)
    assert str(sel) == canonical
    assert sel.matches(probe) is expected


# --------------------------------------------------------------------------- field selectors


@pytest.mark.parametrize(
    ("text", "requirements", "canonical"),
    [
        ("", [], ""),
        ("metadata.name=web", [("metadata.name", "=", "web")], "metadata.name=web"),
        ("metadata.name==web", [("metadata.name", "=", "web")], "metadata.name=web"),
        ("spec.nodeName!=", [("spec.nodeName", "!=", "")], "spec.nodeName!="),
        ("status.phase!=Running,spec.nodeName=n1", [("spec.nodeName", "=", "n1"), ("status.phase", "!=", "Running")],
         "spec.nodeName=n1,status.phase!=Running"),
        ("a=x\\,y", [("a", "=", "x,y")], "a=x\\,y"),
        ("a=x\\=y", [("a", "=", "x=y")], "a=x\\=y"),
        ("a=x\\\\y", [("a", "=", "x\\y")], "a=x\\\\y"),
        ("a=b,,c=d", [("a", "=", "b"), ("c", "=", "d")], "a=b,c=d"),  # empty terms are skipped
        ("=", [], ""),  # a term with no field and no value is dropped
    ],
)
def test_field_parse(text: str, requirements: list[tuple[str, str, str]], canonical: str) -> None:
    sel = parse_field_selector(text)
    assert [tuple(r) for r in sel.requirements] == requirements
    assert all(isinstance(r, FieldRequirement) for r in sel.requirements)
    assert str(sel) == canonical
    assert sel.empty is (not requirements)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("metadata.name", "invalid selector: 'metadata.name'; can't understand 'metadata.name'"),
        ("a=b,c", "invalid selector: 'a=b,c'; can't understand 'c'"),
        ("a=b=c", "invalid field selector: unescaped character in value: 61"),
        ("a!==b", "invalid field selector: unescaped character in value: 61"),
        ("a=b\\x", "invalid field selector: invalid escape sequence: \\x"),
        ("a=b\\", "invalid field selector: invalid escape sequence: \\"),
    ],
)
def test_field_parse_errors(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as err:
        parse_field_selector(text)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("text", "fields", "expected"),
    [
        ("", {"a": "b"}, True),
        ("metadata.name=web", {"metadata.name": "web", "metadata.namespace": "default"}, True),
        ("metadata.name=web", {"metadata.name": "db"}, False),
        ("spec.nodeName=", {"spec.nodeName": ""}, True),
        ("spec.nodeName=", {}, True),  # a missing field reads as ""
        ("spec.nodeName!=", {"spec.nodeName": "n1"}, True),
        ("spec.nodeName!=", {"spec.nodeName": ""}, False),
        ("status.phase!=Running", {}, True),
        ("a=1,b=2", {"a": "1", "b": "2"}, True),
        ("a=1,b=2", {"a": "1", "b": "3"}, False),
        ("a=x\\,y", {"a": "x,y"}, True),
    ],
)
def test_field_matches(text: str, fields: dict[str, str], expected: bool) -> None:
    assert parse_field_selector(text).matches(fields) is expected


@pytest.mark.parametrize(
    ("text", "allowed", "unknown"),
    [
        ("metadata.name=a", ["metadata.name", "metadata.namespace"], []),
        ("foo=a", ["metadata.name"], ["foo"]),
        ("foo=a,foo!=b,bar=c,metadata.name=x", ["metadata.name"], ["bar", "foo"]),
        ("", [], []),
    ],
)
def test_field_unknown_fields(text: str, allowed: list[str], unknown: list[str]) -> None:
    assert parse_field_selector(text).unknown_fields(allowed) == unknown


@pytest.mark.parametrize(
    ("text", "field", "value"),
    [("spec.nodeName=n1", "spec.nodeName", "n1"), ("spec.nodeName!=n1", "spec.nodeName", None), ("a=b", "c", None)],
)
def test_field_requires_exact_match(text: str, field: str, value: str | None) -> None:
    assert parse_field_selector(text).requires_exact_match(field) == value
