"""Field sets and FieldsV1: SMD's fieldpath tests (golden data, path elements, set algebra) and
real managedFields, which must round-trip byte for byte."""

from __future__ import annotations

import json
from typing import Any

import pytest

from machinery.fieldpath import (
    FieldPathError,
    FieldSet,
    Value,
    canonical_element,
    go_value_string,
    make_path,
    path_string,
    value_element,
)


def dumps(fields: dict[str, Any]) -> str:
    """JSON as Kubernetes stores FieldsV1: compact, UTF-8, insertion order."""
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False)


def S(*paths: tuple[Any, ...]) -> FieldSet:
    return FieldSet.from_paths(make_path(*p) for p in paths)


# --------------------------------------------------------------------------- FieldsV1 round trips

SMD_GOLDEN = [
    # sigs.k8s.io/structured-merge-diff fieldpath/serialize_test.go TestSerializeV1GoldenData
    '{"f:aaa":{},"f:aab":{},"f:aac":{},"f:aad":{},"f:aae":{},"f:aaf":{},"k:{\\"name\\":\\"first\\"}":{},'
    '"k:{\\"name\\":\\"second\\"}":{},"k:{\\"port\\":443,\\"protocol\\":\\"tcp\\"}":{},'
    '"k:{\\"port\\":443,\\"protocol\\":\\"udp\\"}":{},"v:1":{},"v:2":{},"v:3":{},"v:\\"aa\\"":{},"v:\\"ab\\"":{},'
    '"v:true":{},"i:1":{},"i:2":{},"i:3":{},"i:4":{}}',
    '{"f:aaa":{"k:{\\"name\\":\\"second\\"}":{"v:3":{"f:aab":{}}},"v:3":{},"v:true":{}},"f:aab":{"f:aaa":{},'
    '"f:aaf":{"k:{\\"port\\":443,\\"protocol\\":\\"udp\\"}":{"k:{\\"port\\":443,\\"protocol\\":\\"tcp\\"}":{}}},'
    '"k:{\\"name\\":\\"first\\"}":{}},"f:aac":{"f:aaa":{"v:1":{}},"f:aac":{},"v:3":{"k:{\\"name\\":\\"second\\"}":{}}},'
    '"f:aad":{"f:aac":{"v:1":{}},"f:aaf":{"k:{\\"name\\":\\"first\\"}":{"k:{\\"name\\":\\"first\\"}":{}}},'
    '"i:1":{"i:1":{},"i:3":{"v:true":{}}}},"f:aae":{"f:aae":{},"k:{\\"port\\":443,\\"protocol\\":\\"tcp\\"}":'
    '{"k:{\\"port\\":443,\\"protocol\\":\\"udp\\"}":{}},"i:4":{"f:aaf":{}}},"f:aaf":{"i:1":{"f:aac":{}},"i:2":{},'
    '"i:3":{}},"k:{\\"name\\":\\"first\\"}":{"f:aad":{"f:aaf":{}}},"k:{\\"port\\":443,\\"protocol\\":\\"tcp\\"}":'
    '{"f:aaa":{"f:aad":{}}},"k:{\\"port\\":443,\\"protocol\\":\\"udp\\"}":{"f:aac":{},"k:{\\"name\\":\\"first\\"}":'
    '{"i:3":{}},"k:{\\"port\\":443,\\"protocol\\":\\"udp\\"}":{"i:4":{}}},"v:1":{"f:aac":{"i:4":{}},"f:aaf":{},'
    '"k:{\\"port\\":443,\\"protocol\\":\\"tcp\\"}":{}},"v:2":{"f:aad":{"f:aaf":{}},"i:1":{}},"v:3":{"f:aaa":{},'
    '"k:{\\"name\\":\\"first\\"}":{},"i:2":{}},"v:\\"aa\\"":{"f:aab":{"f:aaf":{}},"f:aae":{},'
    '"k:{\\"name\\":\\"first\\"}":{"f:aad":{}},"i:2":{}},"v:\\"ab\\"":{"f:aaf":{"i:4":{}},'
    '"k:{\\"port\\":443,\\"protocol\\":\\"tcp\\"}":{},"k:{\\"port\\":443,\\"protocol\\":\\"udp\\"}":{},'
    '"v:1":{"k:{\\"port\\":443,\\"protocol\\":\\"udp\\"}":{}},"i:1":{"f:aae":{"i:4":{}}}},'
    '"v:true":{"k:{\\"name\\":\\"second\\"}":{"f:aaa":{}},"i:2":{"k:{\\"port\\":443,\\"protocol\\":\\"tcp\\"}":{}}},'
    '"i:1":{"i:3":{"f:aaf":{}}},"i:2":{"f:aae":{},"k:{\\"port\\":443,\\"protocol\\":\\"tcp\\"}":{"v:1":{}}},'
    '"i:3":{"f:aab":{"v:true":{"v:\\"aa\\"":{}}},"f:aaf":{},"i:1":{}},"i:4":{"v:\\"aa\\"":{"f:aab":'
    '{"k:{\\"name\\":\\"second\\"}":{}}}}}',
    '{"f:spec":{".":{},"f:apps":{".":{},"k:{\\"name\\":\\" app-💻\\"}":{".":{},"f:container":{".":{},"f:image":{},'
    '"f:name":{},"f:ports":{".":{},"k:{\\"name\\":\\"port 🔑\\"}":{".":{},"f:containerPort":{},"f:name":{}}}},'
    '"f:name":{}},"k:{\\"name\\":\\" app-🚀\\"}":{".":{},"f:container":{".":{},"f:image":{},"f:name":{},'
    '"f:ports":{".":{},"k:{\\"name\\":\\"port-✅ \\"}":{".":{},"f:containerPort":{},"f:name":{}}}},"f:name":{}}}}}',
]

# Real managedFields written by Kubernetes: kubectl create, the deployment controller's status, a
# kubelet's pod status, a Service (ports keyed by port and protocol), finalizers (a set).
REAL = [
    '{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:progressDeadlineSeconds":{},"f:replicas":{},'
    '"f:revisionHistoryLimit":{},"f:selector":{},"f:strategy":{"f:rollingUpdate":{".":{},"f:maxSurge":{},'
    '"f:maxUnavailable":{}},"f:type":{}},"f:template":{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":'
    '{"f:containers":{"k:{\\"name\\":\\"nginx\\"}":{".":{},"f:image":{},"f:imagePullPolicy":{},"f:name":{},'
    '"f:resources":{},"f:terminationMessagePath":{},"f:terminationMessagePolicy":{}}},"f:dnsPolicy":{},'
    '"f:restartPolicy":{},"f:schedulerName":{},"f:securityContext":{},"f:terminationGracePeriodSeconds":{}}}}}',
    '{"f:metadata":{"f:annotations":{".":{},"f:deployment.kubernetes.io/revision":{}}},"f:status":'
    '{"f:availableReplicas":{},"f:conditions":{".":{},"k:{\\"type\\":\\"Available\\"}":{".":{},'
    '"f:lastTransitionTime":{},"f:lastUpdateTime":{},"f:message":{},"f:reason":{},"f:status":{},"f:type":{}},'
    '"k:{\\"type\\":\\"Progressing\\"}":{".":{},"f:lastTransitionTime":{},"f:lastUpdateTime":{},"f:message":{},'
    '"f:reason":{},"f:status":{},"f:type":{}}},"f:observedGeneration":{},"f:readyReplicas":{},"f:replicas":{},'
    '"f:updatedReplicas":{}}}',
    '{"f:status":{"f:conditions":{"k:{\\"type\\":\\"ContainersReady\\"}":{".":{},"f:lastProbeTime":{},'
    '"f:lastTransitionTime":{},"f:status":{},"f:type":{}},"k:{\\"type\\":\\"Ready\\"}":{".":{},"f:lastProbeTime":{},'
    '"f:lastTransitionTime":{},"f:status":{},"f:type":{}}},"f:containerStatuses":{},"f:hostIP":{},"f:phase":{},'
    '"f:podIP":{},"f:podIPs":{".":{},"k:{\\"ip\\":\\"10.244.0.5\\"}":{".":{},"f:ip":{}}},"f:startTime":{}}}',
    '{"f:spec":{"f:ports":{".":{},"k:{\\"port\\":80,\\"protocol\\":\\"TCP\\"}":{".":{},"f:port":{},"f:protocol":{},'
    '"f:targetPort":{}}},"f:selector":{},"f:type":{}}}',
    '{"f:metadata":{"f:finalizers":{".":{},"v:\\"foregroundDeletion\\"":{},"v:\\"kubernetes.io/pvc-protection\\"":{}}}}',
    '{}',
]


@pytest.mark.parametrize("text", SMD_GOLDEN + REAL)
def test_fields_v1_round_trips_byte_for_byte(text: str) -> None:
    fields = FieldSet.from_fields_v1(json.loads(text))
    assert dumps(fields.to_fields_v1()) == text
    assert FieldSet.from_fields_v1(fields.to_fields_v1()) == fields


def test_non_normalized_fields_v1_is_written_in_smd_order() -> None:
    # serialize_test.go TestDeserializeForValidNonNormalized: any key order, spaces in JSON.
    text = ('{"f:aad":{},"f:aaa":{},"f:aab":{},"f:aac":{},"f:aae":{},"f:aaf":{},"k:{\\"name\\":\\"first\\"}":{},'
            '"k:{\\"name\\":\\"second\\"}":{},"k:{\\"port\\":443,\\"protocol\\":\\"tcp\\"}":{},'
            '"k:{ \\"protocol\\":\\"udp\\",\\"port\\":443}":{},"v:1":{},"v:2":{},"v: 3":{},"v:\\"aa\\"":{},'
            '"v:\\"ab\\"":{},"v:true":{},"i:1":{},"i:2":{},"i:3":{},"i:4":{}}')
    expected = ('{"f:aaa":{},"f:aab":{},"f:aac":{},"f:aad":{},"f:aae":{},"f:aaf":{},"k:{\\"name\\":\\"first\\"}":{},'
                '"k:{\\"name\\":\\"second\\"}":{},"k:{\\"port\\":443,\\"protocol\\":\\"tcp\\"}":{},'
                '"k:{\\"port\\":443,\\"protocol\\":\\"udp\\"}":{},"v:1":{},"v:2":{},"v:3":{},"v:\\"aa\\"":{},'
                '"v:\\"ab\\"":{},"v:true":{},"i:1":{},"i:2":{},"i:3":{},"i:4":{}}')
    assert dumps(FieldSet.from_fields_v1(json.loads(text)).to_fields_v1()) == expected


def test_dot_marks_a_member_that_also_has_children() -> None:
    fields = FieldSet.from_fields_v1({"f:metadata": {"f:labels": {".": {}, "f:app": {}}, "f:name": {}}})
    assert fields.has(make_path("metadata", "labels"))
    assert fields.has(make_path("metadata", "labels", "app"))
    assert fields.has(make_path("metadata", "name"))
    assert not fields.has(make_path("metadata"))  # only a parent
    assert fields.to_fields_v1() == {"f:metadata": {"f:labels": {".": {}, "f:app": {}}, "f:name": {}}}


def test_fields_v1_written_from_inserted_paths() -> None:
    fields = S(("spec", "ports", {"protocol": "TCP", "port": 80}), ("spec", "ports", {"port": 80, "protocol": "TCP"}, "port"),
               ("spec", "ports"), ("metadata", "finalizers", Value("x")))
    assert dumps(fields.to_fields_v1()) == (
        '{"f:metadata":{"f:finalizers":{"v:\\"x\\"":{}}},"f:spec":{"f:ports":{".":{},'
        '"k:{\\"port\\":80,\\"protocol\\":\\"TCP\\"}":{".":{},"f:port":{}}}}}')


def test_unknown_element_kinds_are_dropped_and_their_parent_stays_a_member() -> None:
    # DeserializePathElement returns ErrUnknownPathElementType; readIterV1 skips the key.
    fields = FieldSet.from_fields_v1({"f:a": {"r:Hello": {}}, "r:top": {}, "f:b": {}})
    assert fields == S(("a",), ("b",))


@pytest.mark.parametrize("bad", [{"f:a": 1}, {"f:a": {"v:invalid json": {}}}, {"x": {}}, {"f:a": {"i:1.5": {}}}])
def test_malformed_fields_v1_raises(bad: dict[str, Any]) -> None:
    with pytest.raises(FieldPathError):
        FieldSet.from_fields_v1(bad)


# --------------------------------------------------------------------------- path elements


@pytest.mark.parametrize("text", [
    # serialize-pe_test.go TestPathElementRoundTrip
    "i:0", "i:1234", "f:", "f:spec", "f:more-complicated-string", "f: string-with-spaces   ",
    'k:{"name":"my-container"}', 'k:{"name":"   name with spaces   "}', 'k:{"port":"8080","protocol":"TCP"}',
    'k:{"optionalField":null}', 'k:{"jsonField":{"A":1,"B":null,"C":"D","E":{"F":"G"}}}',
    'k:{"listField":["1","2","3"]}', "v:null", 'v:"some-string"', "v:1234", 'v:{"some":"json"}',
    'v:{"some":" some  with spaces  "}', 'k:{"name":"app-🚀"}', 'k:{"name":"你好世界"}', 'k:{"name":"Привет, мир"}',
    "f:spec-🚀", "f:spec-\\n",
])
def test_path_element_round_trip(text: str) -> None:
    assert canonical_element(text) == text
    assert dumps(FieldSet.from_fields_v1({text: {}}).to_fields_v1()) == dumps({text: {}})


@pytest.mark.parametrize(("text", "canonical"), [
    ('k:{ "protocol":"udp","port":443}', 'k:{"port":443,"protocol":"udp"}'),
    ("v: 3", "v:3"),
    ("v:1.0", "v:1"),
    ('v:"a<b&c>"', 'v:"a\\u003cb\\u0026c\\u003e"'),  # Go escapes HTML characters
    ("i:+7", "i:7"),
])
def test_path_elements_are_normalized(text: str, canonical: str) -> None:
    assert canonical_element(text) == canonical


@pytest.mark.parametrize("text", [
    # serialize-pe_test.go TestDeserializePathElementError
    "", "no-colon", "i:index is not a number", "i:1.23", "i:", "v:invalid json", "v:", "k:invalid json",
    'k:{"name":invalid}', "v", "k", "i", 'v:{"a":"b"', 'k:{"a":"b"', "i: 0", "i:0 ",
    'v:{"some":"json"} {"other":"json"}', 'k:{"name":"my-container"} {"other":"my-container"}',
    'v:{"some":"json"} garbage', 'k:["not", "an", "object"]', "v:NaN",
])
def test_invalid_path_elements(text: str) -> None:
    with pytest.raises(FieldPathError):
        canonical_element(text)


def test_unknown_path_element_kind() -> None:
    assert canonical_element("r:Hello") is None


@pytest.mark.parametrize(("path", "expected"), [
    # path_test.go TestPathString
    (make_path("foo", 1), ".foo[1]"),
    (make_path("foo", "bar", 1, "baz"), ".foo.bar[1].baz"),
    (make_path("foo", {"a": "b", "c": 1, "d": 1.5, "e": True}), '.foo[a="b",c=1,d=1.5,e=true]'),
    (make_path("foo", Value("b"), Value(5), Value(False), Value(3.14159)), '.foo[="b"][=5][=false][=3.14159]'),
    (make_path("spec"), ".spec"),
    (make_path("spec", "apps", {"name": "app-🚀"}, "container", "image"), '.spec.apps[name="app-🚀"].container.image'),
    (make_path("spec", "field with space"), ".spec.field with space"),
    (make_path("spec", "apps", Value('app with "quotes"'), "container", "image"),
     '.spec.apps[="app with \\"quotes\\""].container.image'),
    # what conflicts print in Kubernetes
    (make_path("spec", "replicas"), ".spec.replicas"),
    (make_path("spec", "template", "spec", "containers", {"name": "nginx"}, "image"),
     '.spec.template.spec.containers[name="nginx"].image'),
    (make_path("metadata", "finalizers", Value("x")), '.metadata.finalizers[="x"]'),
    (make_path("spec", "ports", {"protocol": "TCP", "port": 80}), '.spec.ports[port=80,protocol="TCP"]'),
    (make_path("metadata", "labels", "app.kubernetes.io/name"), ".metadata.labels.app.kubernetes.io/name"),
])
def test_path_string(path: tuple[str, ...], expected: str) -> None:
    assert path_string(path) == expected


def test_path_string_of_decoded_keys_prints_numbers_as_go_does() -> None:
    # A key read back from managedFields is a float64 in Go; it still prints as 80.
    element = canonical_element('k:{"containerPort":80.0,"protocol":"TCP"}')
    assert element is not None
    assert path_string([element]) == '[containerPort=80,protocol="TCP"]'


@pytest.mark.parametrize(("element", "canonical"), [
    # SMD writes the values in path elements with json-iterator v1.1.12 (machinery.gofmt.jsoniter_json)
    ('v:"a\\bb"', 'v:"a\\u0008b"'), ('v:"\\f"', 'v:"\\u000c"'), ("v:1e-7", "v:1e-07"), ("v:1.5E-8", "v:1.5e-08"),
    ('k:{"name":"<x>","port":80.0}', 'k:{"name":"\\u003cx\\u003e","port":80}'),
])
def test_canonical_element_writes_values_as_smd_does(element: str, canonical: str) -> None:
    assert canonical_element(element) == canonical


@pytest.mark.parametrize(("value", "element"), [
    ("a\bb", 'v:"a\\u0008b"'), (1e-7, "v:1e-07"), (-0.0, "v:-0"), (2**64, "v:18446744073709552000"), (1e6, "v:1000000"),
])
def test_value_elements_are_written_as_smd_writes_them(value: Any, element: str) -> None:
    assert value_element(value) == element


@pytest.mark.parametrize(("value", "printed"), [
    # SMD's value.ToString: %q strings, %v numbers (a float64 -0 keeps its sign; an int beyond int64 is a float64)
    ("a\bb", '"a\\bb"'), (1e-7, "1e-07"), (-0.0, "-0"), (2**64, "1.8446744073709552e+19"), (1e6, "1e+06"),
    (80, "80"), (None, "null"), ([1, "x"], '[1,"x"]'), ({"b": 2, "a": 1.5}, "a=1.5b=2"),
])
def test_go_value_string(value: Any, printed: str) -> None:
    assert go_value_string(value) == printed


def test_make_path_rejects_empty_keys_and_bools() -> None:
    with pytest.raises(FieldPathError):
        make_path("a", {})
    with pytest.raises(FieldPathError):
        make_path(True)


# --------------------------------------------------------------------------- the set


def test_insert_has_and_contains() -> None:
    fields = FieldSet()
    fields.insert(make_path("spec", "replicas"))
    fields.insert(())  # the whole object is never owned
    assert fields.has(make_path("spec", "replicas"))
    assert make_path("spec", "replicas") in fields
    assert not fields.has(make_path("spec"))
    assert not fields.has(())
    assert not fields.has(make_path("spec", "replicas", "x"))
    assert fields.size() == 1 and len(fields) == 1


@pytest.mark.parametrize(("a", "b", "difference", "recursive"), [
    # set_test.go TestSetDifference
    (S(("a",)), S(("a",)), S(), S()),
    (S(("a", "b", "c")), S(("a", "b", "c")), S(), S()),
    (S(("a", "b", "c"), ("b", "b", "c")), S(("a", "b", "c")), S(("b", "b", "c")), S(("b", "b", "c"))),
    (S(("a",)), S(("a", "aa")), S(("a",)), S(("a",))),
    (S(("a", "b", "c")), S(("a",)), S(("a", "b", "c")), S()),
    (S(("a", "aa", "aab"), ("a", "ab", "aba")), S(("a", "aa")), S(("a", "aa", "aab"), ("a", "ab", "aba")),
     S(("a", "ab", "aba"))),
    (S(("a",), ("a", "b")), S(("a",)), S(("a", "b")), S()),
])
def test_difference_and_recursive_difference(a: FieldSet, b: FieldSet, difference: FieldSet,
                                             recursive: FieldSet) -> None:
    assert a.difference(b) == difference
    assert a.recursive_difference(b) == recursive


def test_union_and_intersection() -> None:
    a = S(("a", "b"), ("a", "c"), ("x",))
    b = S(("a", "c"), ("a", "d"), ("y", "z"))
    assert a.union(b) == S(("a", "b"), ("a", "c"), ("a", "d"), ("x",), ("y", "z"))
    assert a.intersection(b) == S(("a", "c"))
    assert S(("a",)).intersection(S(("a", "b"))).empty()  # a member and a child of it share nothing
    assert (a | b) == a.union(b) and (a & b) == a.intersection(b) and (a - b) == S(("a", "b"), ("x",))


def test_operations_return_an_operand_when_nothing_changes() -> None:
    # Lets managedfields reuse an entry's encoded fieldsV1 when a write does not touch it.
    a = S(("spec", "replicas"), ("metadata", "labels", "app"))
    assert a.difference(S(("status", "phase"))) is a
    assert a.difference(S(("spec", "paused"))) is a
    assert a.recursive_difference(S(("status",))) is a
    assert a.union(S(("spec", "replicas"))) is a
    assert a.union(FieldSet()) is a
    assert a.difference(S(("spec", "replicas"))) is not a


def test_leaves() -> None:
    fields = S(("a",), ("a", "b"), ("c",), ("d", "e"))
    assert fields.leaves() == S(("a", "b"), ("c",), ("d", "e"))


def test_equality_ignores_empty_children() -> None:
    a = S(("a", "b"))
    b = FieldSet({"f:x"} - {"f:x"}, {"f:a": FieldSet({"f:b"}), "f:c": FieldSet()})
    assert a == b
    assert a != S(("a", "c"))
    assert FieldSet({"f:z"}, {"f:q": FieldSet()}).empty() is False
    assert FieldSet(set(), {"f:q": FieldSet()}).empty()


def test_iteration_is_smd_order() -> None:
    fields = S(("i", 2), ("k", {"name": "b"}), ("k", {"name": "a"}), ("v", Value("s")), ("v", Value(10)),
               ("v", Value(9)), ("v", Value(True)), ("f",), ("a", "z"))
    assert [path_string(p) for p in fields] == [
        ".f", ".a.z", ".i[2]", '.k[name="a"]', '.k[name="b"]', ".v[=9]", ".v[=10]", '.v[="s"]', ".v[=true]"]


def test_elements_sort_fields_keys_values_indexes() -> None:
    fields = FieldSet({"i:0", 'v:"a"', 'k:{"a":1}', "f:z", "v:2", 'k:{"a":"x"}'})
    assert list(fields.to_fields_v1()) == ["f:z", 'k:{"a":1}', 'k:{"a":"x"}', "v:2", 'v:"a"', "i:0"]
