"""Custom objects through a compiled CRD schema: pruning, defaulting and validation, with Kubernetes' messages.

The schemas are the CronTab examples of "Extend the Kubernetes API with CustomResourceDefinitions"
(kubernetes.io) and small schemas for one keyword each; expected causes are spelled as
apiextensions-apiserver reports them (kube-openapi sentence inside field.Error).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from apiserver.crd import StructuralSchema, scale_errors
from machinery.errors import StatusCause

Obj = dict[str, Any]

CRON_PATTERN = r"^(\d+|\*)(/\d+)?(\s+(\d+|\*)(/\d+)?){4}$"

# The "Validation" section's schema.
CRONTAB_VALIDATION: Obj = {
    "type": "object",
    "properties": {"spec": {"type": "object", "properties": {
        "cronSpec": {"type": "string", "pattern": CRON_PATTERN},
        "image": {"type": "string"},
        "replicas": {"type": "integer", "minimum": 1, "maximum": 10}}}}}

# The "Defaulting" section's schema.
CRONTAB_DEFAULTING: Obj = {
    "type": "object",
    "properties": {"spec": {"type": "object", "properties": {
        "cronSpec": {"type": "string", "pattern": CRON_PATTERN, "default": "5 0 * * *"},
        "image": {"type": "string"},
        "replicas": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1}}}}}


def crontab(**spec: Any) -> Obj:
    return {"apiVersion": "stable.example.com/v1", "kind": "CronTab",
            "metadata": {"name": "my-new-cron-object", "namespace": "default"}, "spec": spec}


def messages(causes: list[StatusCause]) -> list[str]:
    return [str(c) for c in causes]


def spec_schema(**props: Obj) -> StructuralSchema:
    return StructuralSchema.compile({"type": "object", "properties": {"spec": {"type": "object", "properties": props}}})


# ============================================================================ the documented examples

def test_docs_validation_example_is_rejected_with_both_causes() -> None:
    schema = StructuralSchema.compile(CRONTAB_VALIDATION)
    obj = crontab(cronSpec="* * * *", image="my-awesome-cron-image", replicas=15)
    causes = schema.validate(obj)
    assert messages(causes) == [
        'spec.cronSpec: Invalid value: "* * * *": spec.cronSpec in body should match '
        "'^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){4}$'",
        "spec.replicas: Invalid value: 15: spec.replicas in body should be less than or equal to 10",
    ]
    assert [c.reason for c in causes] == ["FieldValueInvalid", "FieldValueInvalid"]


def test_docs_validation_example_accepts_the_valid_object() -> None:
    schema = StructuralSchema.compile(CRONTAB_VALIDATION)
    assert schema.validate(crontab(cronSpec="* * * * */5", image="my-awesome-cron-image", replicas=5)) == []


def test_docs_defaulting_example() -> None:
    schema = StructuralSchema.compile(CRONTAB_DEFAULTING)
    obj = crontab(image="my-awesome-cron-image")
    assert schema.prune(obj) == []
    schema.default(obj)
    assert obj["spec"] == {"cronSpec": "5 0 * * *", "image": "my-awesome-cron-image", "replicas": 1}
    assert schema.validate(obj) == []


def test_docs_defaulting_and_nullable_example() -> None:
    schema = StructuralSchema.compile({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "foo": {"type": "string", "nullable": False, "default": "default"},
        "bar": {"type": "string", "nullable": True},
        "baz": {"type": "string"}}}}})
    obj = {"spec": {"foo": None, "bar": None, "baz": None}}
    schema.prune(obj)
    schema.default(obj)
    assert obj == {"spec": {"foo": "default", "bar": None}}


# ============================================================================ pruning

PRUNING_SCHEMA: Obj = {"type": "object", "properties": {
    "spec": {"type": "object", "properties": {
        "known": {"type": "string"},
        "items": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
        "labels": {"type": "object", "additionalProperties": {"type": "object", "properties": {"v": {"type": "string"}}}},
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                 "properties": {"typed": {"type": "object", "properties": {"a": {"type": "string"}}}}},
        "template": {"type": "object", "x-kubernetes-embedded-resource": True,
                     "x-kubernetes-preserve-unknown-fields": True},
        "strict": {"type": "object", "x-kubernetes-embedded-resource": True,
                   "properties": {"spec": {"type": "object", "properties": {"x": {"type": "string"}}}}},
    }},
    "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}},
}}


@pytest.mark.parametrize("spec, pruned, kept", [
    ({"known": "a", "foo": 1}, ["spec.foo"], {"known": "a"}),
    ({"items": [{"name": "a", "bar": 1}, {"name": "b"}]}, ["spec.items[0].bar"], {"items": [{"name": "a"}, {"name": "b"}]}),
    ({"labels": {"k": {"v": "x", "w": "y"}}}, ["spec.labels.k.w"], {"labels": {"k": {"v": "x"}}}),
    ({"free": {"anything": {"deep": 1}, "typed": {"a": "x", "b": "y"}}}, ["spec.free.typed.b"],
     {"free": {"anything": {"deep": 1}, "typed": {"a": "x"}}}),
    ({"template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"any": 1}}}, [],
     {"template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"any": 1}}}),
    ({"strict": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"x": "1", "y": 2}, "z": 3}},
     ["spec.strict.spec.y", "spec.strict.z"],
     {"strict": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"x": "1"}}}),
    ({"known": "a", "metadata": {"name": "x"}}, ["spec.metadata"], {"known": "a"}),
])
def test_prune_drops_unknown_fields_and_reports_their_paths(spec: Obj, pruned: list[str], kept: Obj) -> None:
    schema = StructuralSchema.compile(PRUNING_SCHEMA)
    obj = {"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "t", "anything": 1}, "spec": spec}
    assert schema.prune(obj) == pruned
    assert obj["spec"] == kept
    assert obj["metadata"] == {"name": "t", "anything": 1}  # the root ObjectMeta is the server's business
    assert obj["apiVersion"] == "example.com/v1" and obj["kind"] == "Thing"


def test_prune_reports_sorted_paths_at_every_level() -> None:
    schema = StructuralSchema.compile(PRUNING_SCHEMA)
    obj = {"spec": {"zzz": 1, "known": "a", "aaa": 2}, "status": {"replicas": 1, "phase": "x"}, "extra": True}
    assert schema.prune(obj) == ["extra", "spec.aaa", "spec.zzz", "status.phase"]
    assert obj == {"spec": {"known": "a"}, "status": {"replicas": 1}}


def test_prune_drops_unknown_metadata_fields_of_embedded_resources() -> None:
    schema = StructuralSchema.compile(PRUNING_SCHEMA)
    obj = {"spec": {"template": {"apiVersion": "v1", "kind": "Pod",
                                 "metadata": {"name": "p", "labels": {"a": "b"}, "bogus": 1, "creationTimestamp": None}}}}
    assert schema.prune(obj) == ["spec.template.metadata.bogus"]
    assert obj["spec"]["template"]["metadata"] == {"name": "p", "labels": {"a": "b"}}


def test_prune_removes_non_nullable_nulls_without_defaults() -> None:
    schema = spec_schema(a={"type": "string"}, b={"type": "string", "nullable": True},
                         c={"type": "string", "default": "x"})
    obj = {"spec": {"a": None, "b": None, "c": None}}
    assert schema.prune(obj) == []
    assert obj == {"spec": {"b": None, "c": None}}


# ============================================================================ defaulting

@pytest.mark.parametrize("schema_props, spec, defaulted", [
    # nested defaults apply inside a defaulted object
    ({"o": {"type": "object", "default": {}, "properties": {"a": {"type": "integer", "default": 3}}}},
     {}, {"o": {"a": 3}}),
    # defaults of array items' fields
    ({"l": {"type": "array", "items": {"type": "object", "properties": {
        "name": {"type": "string"}, "port": {"type": "integer", "default": 80}}}}},
     {"l": [{"name": "a"}, {"name": "b", "port": 8080}]}, {"l": [{"name": "a", "port": 80}, {"name": "b", "port": 8080}]}),
    # a null item of a non-nullable items schema takes the items default
    ({"l": {"type": "array", "items": {"type": "string", "default": "x"}}}, {"l": ["a", None]}, {"l": ["a", "x"]}),
    # additionalProperties values: null takes the default, objects get their fields defaulted
    ({"m": {"type": "object", "additionalProperties": {"type": "object", "default": {"on": True},
                                                       "properties": {"on": {"type": "boolean", "default": False}}}}},
     {"m": {"a": None, "b": {}}}, {"m": {"a": {"on": True}, "b": {"on": False}}}),
    # a present value is never overwritten, and nullable null stays null
    ({"a": {"type": "string", "default": "x"}, "b": {"type": "string", "nullable": True, "default": "y"}},
     {"a": "mine", "b": None}, {"a": "mine", "b": None}),
])
def test_default(schema_props: Obj, spec: Obj, defaulted: Obj) -> None:
    schema = spec_schema(**schema_props)
    obj = {"spec": spec}
    schema.default(obj)
    assert obj["spec"] == defaulted


def test_defaults_are_copies() -> None:
    schema = spec_schema(o={"type": "object", "default": {"l": [1]}, "properties": {"l": {"type": "array", "items": {"type": "integer"}}}})
    first: Obj = {"spec": {}}
    second: Obj = {"spec": {}}
    schema.default(first)
    first["spec"]["o"]["l"].append(2)
    schema.default(second)
    assert second["spec"]["o"] == {"l": [1]}


# ============================================================================ value validation

CASES: list[tuple[str, Obj, Any, list[str]]] = [
    ("type integer", {"type": "integer"}, "string",
     ['spec.x: Invalid value: "string": spec.x in body must be of type integer: "string"']),
    ("integer accepts 2.0", {"type": "integer"}, 2.0, []),
    # kube-openapi >= 2026-01 (vendored by apiextensions) also range-checks the number against its type
    ("integer refuses 1.5", {"type": "integer"}, 1.5,
     ['spec.x: Invalid value: "number": spec.x in body must be of type integer: "number"',
      '<nil>: Invalid value: "": Checked value must be of type integer (default format) in spec.x']),
    ("number accepts an int", {"type": "number"}, 3, []),
    ("boolean", {"type": "boolean"}, "true",
     ['spec.x: Invalid value: "string": spec.x in body must be of type boolean: "string"']),
    ("object", {"type": "object"}, [1],
     ['spec.x: Invalid value: "array": spec.x in body must be of type object: "array"']),
    ("null refused", {"type": "string"}, None,
     ['spec.x: Invalid value: "null": spec.x in body must be of type string: "null"']),
    ("nullable", {"type": "string", "nullable": True}, None, []),
    ("enum", {"type": "string", "enum": ["a", "b"]}, "c",
     ['spec.x: Unsupported value: "c": supported values: "a", "b"']),
    ("enum of numbers", {"type": "integer", "enum": [1, 2]}, 3,
     ['spec.x: Unsupported value: 3: supported values: "1", "2"']),
    ("enum compares 1.0 with 1", {"type": "number", "enum": [1, 2]}, 1.0, []),
    ("minimum", {"type": "integer", "minimum": 1}, 0,
     ["spec.x: Invalid value: 0: spec.x in body should be greater than or equal to 1"]),
    ("exclusiveMinimum", {"type": "integer", "minimum": 0, "exclusiveMinimum": True}, 0,
     ["spec.x: Invalid value: 0: spec.x in body should be greater than 0"]),
    ("exclusiveMaximum", {"type": "number", "maximum": 1.5, "exclusiveMaximum": True}, 1.5,
     ["spec.x: Invalid value: 1.5: spec.x in body should be less than 1.5"]),
    ("maximum of a float prints Go's %v", {"type": "number", "maximum": 1000000}, 2000000.5,
     ["spec.x: Invalid value: 2.0000005e+06: spec.x in body should be less than or equal to 1e+06"]),
    ("multipleOf", {"type": "integer", "multipleOf": 5}, 7,
     ["spec.x: Invalid value: 7: spec.x in body should be a multiple of 5"]),
    ("multipleOf a fraction", {"type": "number", "multipleOf": 0.5}, 0.75,
     ["spec.x: Invalid value: 0.75: spec.x in body should be a multiple of 0.5"]),
    ("maxLength counts characters", {"type": "string", "maxLength": 5}, "héllo", []),
    ("maxLength", {"type": "string", "maxLength": 5}, "toolong", ["spec.x: Too long: may not be more than 5 bytes"]),
    ("maxLength 1", {"type": "string", "maxLength": 1}, "ab", ["spec.x: Too long: may not be more than 1 byte"]),
    ("minLength", {"type": "string", "minLength": 3}, "ab",
     ['spec.x: Invalid value: "ab": spec.x in body should be at least 3 chars long']),
    ("pattern is not anchored", {"type": "string", "pattern": "[a-z]+"}, "123abc", []),
    ("pattern", {"type": "string", "pattern": "^[a-z]+$"}, "abc1",
     ["spec.x: Invalid value: \"abc1\": spec.x in body should match '^[a-z]+$'"]),
    ("pattern $ is the end of the text", {"type": "string", "pattern": "^[a-z]+$"}, "abc\n",
     ["spec.x: Invalid value: \"abc\\n\": spec.x in body should match '^[a-z]+$'"]),
    ("format uuid", {"type": "string", "format": "uuid"}, "nope",
     ['spec.x: Invalid value: "nope": spec.x in body must be of type uuid: "nope"']),
    ("format date-time", {"type": "string", "format": "date-time"}, "2024-01-01T10:00:00Z", []),
    ("format date-time refused", {"type": "string", "format": "date-time"}, "yesterday",
     ['spec.x: Invalid value: "yesterday": spec.x in body must be of type date-time: "yesterday"']),
    ("format on a string that Kubernetes does not support is ignored", {"type": "string", "format": "int32"}, "x", []),
    ("unknown format ignored", {"type": "string", "format": "color"}, "x", []),
    ("format int32 range", {"type": "integer", "format": "int32"}, 2**31,
     ['<nil>: Invalid value: "": Checked value must be of type integer with format int32 in spec.x']),
    ("format int32 against a float", {"type": "integer", "format": "int32"}, 1.5,
     ['spec.x: Invalid value: "float64": spec.x in body must be of type int32: "float64"',
      '<nil>: Invalid value: "": Checked value must be of type integer with format int32 in spec.x']),
    ("minItems", {"type": "array", "items": {"type": "string"}, "minItems": 2}, ["a"],
     ["spec.x: Invalid value: 1: spec.x in body should have at least 2 items"]),
    ("maxItems", {"type": "array", "items": {"type": "string"}, "maxItems": 2}, ["a", "b", "c"],
     ["spec.x: Too many: 3: must have at most 2 items"]),
    ("items", {"type": "array", "items": {"type": "integer"}}, [1, "2"],
     ['spec.x[1]: Invalid value: "string": spec.x[1] in body must be of type integer: "string"']),
    ("minProperties", {"type": "object", "additionalProperties": {"type": "string"}, "minProperties": 2}, {"a": "b"},
     ["spec.x: Invalid value: 1: spec.x in body should have at least 2 properties"]),
    ("maxProperties", {"type": "object", "additionalProperties": {"type": "string"}, "maxProperties": 1},
     {"a": "b", "c": "d"}, ["spec.x: Too many: 2: must have at most 1 item"]),
    ("additionalProperties", {"type": "object", "additionalProperties": {"type": "string"}}, {"a": 1},
     ['spec.x.a: Invalid value: "integer": spec.x.a in body must be of type string: "integer"']),
    ("required", {"type": "object", "required": ["a", "b"], "properties": {"a": {"type": "string"}, "b": {"type": "string"}}},
     {"a": "x"}, ["spec.x.b: Required value"]),
    ("int-or-string", {"x-kubernetes-int-or-string": True}, "80%", []),
    ("int-or-string refuses a bool", {"x-kubernetes-int-or-string": True}, True,
     ['spec.x: Invalid value: "boolean": spec.x in body must be of type integer,string: "boolean"']),
    ("preserve-unknown-fields without type accepts anything", {"x-kubernetes-preserve-unknown-fields": True}, {"a": [1]}, []),
    ("anyOf", {"type": "string", "anyOf": [{"pattern": "^a"}, {"pattern": "^b"}]}, "c",
     ['<nil>: Invalid value: "": "spec.x" must validate at least one schema (anyOf)',
      "spec.x: Invalid value: \"c\": spec.x in body should match '^a'"]),
    ("anyOf satisfied", {"type": "string", "anyOf": [{"pattern": "^a"}, {"pattern": "^b"}]}, "b", []),
    ("oneOf none", {"type": "integer", "oneOf": [{"minimum": 10}, {"maximum": 0}]}, 5,
     ['<nil>: Invalid value: "": "spec.x" must validate one and only one schema (oneOf). Found none valid',
      "spec.x: Invalid value: 5: spec.x in body should be greater than or equal to 10"]),
    ("oneOf two", {"type": "integer", "oneOf": [{"minimum": 1}, {"maximum": 10}]}, 5,
     ['<nil>: Invalid value: "": "spec.x" must validate one and only one schema (oneOf). Found 2 valid alternatives']),
    ("allOf", {"type": "integer", "allOf": [{"minimum": 1}, {"maximum": 3}]}, 5,
     ["spec.x: Invalid value: 5: spec.x in body should be less than or equal to 3",
      '<nil>: Invalid value: "": "spec.x" must validate all the schemas (allOf)']),
    ("not", {"type": "string", "not": {"enum": ["forbidden"]}}, "forbidden",
     ['<nil>: Invalid value: "": "spec.x" must not validate the schema (not)']),
    ("a wrong type is still checked by the other keywords", {"type": "integer", "enum": [1]}, "x",
     ['spec.x: Invalid value: "string": spec.x in body must be of type integer: "string"',
      'spec.x: Unsupported value: "x": supported values: "1"']),
]


@pytest.mark.parametrize("name, schema, value, expected", CASES, ids=[c[0] for c in CASES])
def test_value_validation(name: str, schema: Obj, value: Any, expected: list[str]) -> None:
    assert messages(spec_schema(x=schema).validate({"spec": {"x": value}})) == expected


def test_reasons_follow_apiextensions_conversion() -> None:
    schema = spec_schema(
        t={"type": "integer"}, e={"type": "string", "enum": ["a"]}, l={"type": "string", "maxLength": 1},
        m={"type": "array", "items": {"type": "string"}, "maxItems": 0}, r={"type": "object", "required": ["z"]})
    causes = schema.validate({"spec": {"t": "x", "e": "b", "l": "long", "m": ["a"], "r": {}}})
    assert [(c.field, c.reason) for c in causes] == [
        ("spec.t", "FieldValueTypeInvalid"), ("spec.e", "FieldValueNotSupported"), ("spec.l", "FieldValueTooLong"),
        ("spec.m", "FieldValueTooMany"), ("spec.r.z", "FieldValueRequired")]


def test_required_at_the_root() -> None:
    schema = StructuralSchema.compile({"type": "object", "required": ["spec"],
                                       "properties": {"spec": {"type": "object"}}})
    assert messages(schema.validate({"apiVersion": "a/v1", "kind": "K", "metadata": {"name": "x"}})) == \
        ["spec: Required value"]


def test_schema_may_constrain_metadata_name() -> None:
    schema = StructuralSchema.compile({"type": "object", "properties": {
        "metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 5}}}}})
    assert messages(schema.validate({"metadata": {"name": "toolongname", "namespace": "default"}})) == \
        ["metadata.name: Too long: may not be more than 5 bytes"]
    assert schema.validate({"metadata": {"name": "short"}}) == []


# ============================================================================ list types and embedded resources

LISTS = spec_schema(
    tags={"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
    nums={"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "number"}},
    ports={"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
           "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "port": {"type": "integer"}}}},
    routes={"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["host", "path"],
            "items": {"type": "object", "properties": {"host": {"type": "string", "default": ""},
                                                       "path": {"type": "string", "default": "/"}}}},
)


@pytest.mark.parametrize("spec, expected", [
    ({"tags": ["a", "b", "a", "a", "b"]}, ['spec.tags[2]: Duplicate value: "a"', 'spec.tags[4]: Duplicate value: "b"']),
    ({"nums": [1, 1.0]}, []),  # int64 1 and float64 1 are different set members in Go
    ({"ports": [{"name": "http", "port": 80}, {"name": "http", "port": 81}]},
     ['spec.ports[1]: Duplicate value: {"name":"http"}']),
    ({"routes": [{"host": "a", "path": "/"}, {"host": "a", "path": "/x"}, {"host": "a", "path": "/"}]},
     ['spec.routes[2]: Duplicate value: {"host":"a","path":"/"}']),
    ({"tags": ["a", "b"], "ports": [{"name": "a"}, {"name": "b"}]}, []),
])
def test_list_type_uniqueness(spec: Obj, expected: list[str]) -> None:
    causes = LISTS.validate({"spec": spec})
    assert messages(causes) == expected
    assert all(c.reason == "FieldValueDuplicate" for c in causes)


def test_list_type_map_items_must_be_objects() -> None:
    assert messages(LISTS.validate({"spec": {"ports": [{"name": "a"}, "b"]}}))[-1] == \
        'spec.ports[1]: Invalid value: "b": must be an object for an array of list-type map'


def test_an_update_only_fails_on_duplicates_the_old_object_did_not_have() -> None:
    old = {"spec": {"tags": ["a", "a"]}}
    assert LISTS.validate({"spec": {"tags": ["a", "a", "b"]}}, old=old) == []
    assert messages(LISTS.validate({"spec": {"tags": ["b", "b"]}}, old={"spec": {"tags": ["b"]}})) == \
        ['spec.tags[1]: Duplicate value: "b"']


EMBEDDED = spec_schema(template={"type": "object", "x-kubernetes-embedded-resource": True,
                                 "x-kubernetes-preserve-unknown-fields": True})
DNS1035 = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
           "character, and end with an alphanumeric character (e.g. 'my-name' or 'abc-123', regex used for "
           "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")


@pytest.mark.parametrize("template, expected", [
    ({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}, []),
    ({"apiVersion": "v1", "kind": "Pod"}, []),
    ({"metadata": {}}, ["spec.template.apiVersion: Required value", "spec.template.kind: Required value"]),
    ({"apiVersion": "a/b/c", "kind": "Pod"},
     ['spec.template.apiVersion: Invalid value: "a/b/c": unexpected GroupVersion string: a/b/c']),
    ({"apiVersion": "", "kind": 5},
     ['spec.template.apiVersion: Invalid value: "": must not be empty', "spec.template.kind: Invalid value: 5: must be a string"]),
    ({"apiVersion": "v1", "kind": "Bad_Kind"},
     [f'spec.template.kind: Invalid value: "Bad_Kind": may have mixed case, but should otherwise match: {DNS1035}']),
    ({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a/b"}},
     ["spec.template.metadata.name: Invalid value: \"a/b\": may not contain '/'"]),
])
def test_embedded_resources_are_checked_as_objects(template: Obj, expected: list[str]) -> None:
    assert messages(EMBEDDED.validate({"spec": {"template": template}})) == expected


# ============================================================================ updates, status, scale

def test_ratcheting_keeps_unchanged_invalid_values() -> None:
    schema = StructuralSchema.compile(CRONTAB_VALIDATION)
    old = crontab(cronSpec="* * * *", image="a", replicas=15)
    changed_image = crontab(cronSpec="* * * *", image="b", replicas=15)
    assert schema.validate(changed_image, old=old) == []
    changed_replicas = crontab(cronSpec="* * * *", image="a", replicas=16)
    assert messages(schema.validate(changed_replicas, old=old)) == [
        "spec.replicas: Invalid value: 16: spec.replicas in body should be less than or equal to 10"]


def test_validate_status_checks_only_the_status_under_its_path() -> None:
    schema = StructuralSchema.compile({"type": "object", "properties": {
        "spec": {"type": "object", "properties": {"replicas": {"type": "integer", "minimum": 1}}},
        "status": {"type": "object", "properties": {"replicas": {"type": "integer", "minimum": 0}}}}})
    obj = {"spec": {"replicas": 0}, "status": {"replicas": -1}}
    assert messages(schema.validate_status(obj)) == [
        "status.replicas: Invalid value: -1: replicas in body should be greater than or equal to 0"]


SCALE = {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
         "labelSelectorPath": ".status.labelSelector"}


@pytest.mark.parametrize("obj, status_only, expected", [
    ({"spec": {"replicas": 3}, "status": {"replicas": 2, "labelSelector": "app=x"}}, False, []),
    ({"spec": {}}, False, []),
    ({"spec": {"replicas": -1}}, False, [".spec.replicas: Invalid value: -1: should be a non-negative integer"]),
    ({"spec": {"replicas": 2**31}}, False,
     [".spec.replicas: Invalid value: 2147483648: should be less than or equal to 2147483647"]),
    ({"spec": {"replicas": "3"}}, False,
     [".spec.replicas: Invalid value: 0: .spec.replicas accessor error: 3 is of the type string, expected int64"]),
    ({"spec": {"replicas": "3"}}, True, []),
    ({"spec": 5, "status": {"labelSelector": 1}}, False,
     # NestedFieldNoCopy names the path up to the field it could not look up (fields[:i+1])
     [".spec.replicas: Invalid value: 0: .spec.replicas accessor error: 5 is of the type int64, "
      "expected map[string]interface{}",
      '.status.labelSelector: Invalid value: "": .status.labelSelector accessor error: 1 is of the type int64, expected string']),
])
def test_scale_errors(obj: Obj, status_only: bool, expected: list[str]) -> None:
    assert messages(scale_errors(obj, SCALE, status_only=status_only)) == expected


def test_scale_errors_follow_the_schema_errors_in_validate() -> None:
    schema = StructuralSchema.compile(CRONTAB_VALIDATION)
    obj = crontab(replicas=-1)
    assert messages(schema.validate(obj, scale=SCALE)) == [
        "spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 1",
        ".spec.replicas: Invalid value: -1: should be a non-negative integer"]
    assert schema.validate_status(obj, scale=SCALE) == []


def test_compile_once_and_reuse_does_not_mutate_the_schema() -> None:
    raw = copy.deepcopy(CRONTAB_DEFAULTING)
    schema = StructuralSchema.compile(raw)
    for _ in range(2):
        obj = crontab()
        schema.default(obj)
        obj["spec"]["replicas"] = 7
    assert raw == CRONTAB_DEFAULTING
