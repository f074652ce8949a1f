"""structural_errors: what apiextensions reports about a CRD version's openAPIV3Schema, path for path."""

from __future__ import annotations

from typing import Any

import pytest

from apiserver.crd import structural_errors

Obj = dict[str, Any]
P = "spec.versions[0].schema.openAPIV3Schema"


def obj(**props: Obj) -> Obj:
    return {"type": "object", "properties": props}


def check(schema: Any, *, status: bool = False) -> list[str]:
    return [str(c) for c in structural_errors(schema, P, status_enabled=status)]


ACCEPTED: list[tuple[str, Obj]] = [
    ("the docs' CronTab", obj(spec=obj(cronSpec={"type": "string", "pattern": r"^(\d+|\*)(/\d+)?(\s+(\d+|\*)(/\d+)?){4}$"},
                                         image={"type": "string"},
                                         replicas={"type": "integer", "minimum": 1, "maximum": 10, "default": 1}))),
    ("metadata restricted to name", obj(metadata={"type": "object", "properties": {"name": {"type": "string", "maxLength": 10}}})),
    ("metadata as a bare object", obj(metadata={"type": "object"}, apiVersion={"type": "string"}, kind={"type": "string"})),
    ("int-or-string needs no type", obj(port={"x-kubernetes-int-or-string": True})),
    ("int-or-string with its anyOf", obj(port={"x-kubernetes-int-or-string": True,
                                              "anyOf": [{"type": "integer"}, {"type": "string"}]})),
    ("int-or-string with its allOf", obj(port={"x-kubernetes-int-or-string": True,
                                              "allOf": [{"anyOf": [{"type": "integer"}, {"type": "string"}]}, {"pattern": "^[0-9]"}]})),
    ("preserve-unknown-fields needs no type", obj(raw={"x-kubernetes-preserve-unknown-fields": True})),
    ("embedded resource", obj(template={"type": "object", "x-kubernetes-embedded-resource": True,
                                        "x-kubernetes-preserve-unknown-fields": True})),
    ("value validation under allOf", obj(spec={"type": "object", "properties": {"a": {"type": "string"}},
                                                 "allOf": [{"properties": {"a": {"maxLength": 3}}}]})),
    ("additionalProperties map", obj(labels={"type": "object", "additionalProperties": {"type": "string"}})),
    ("list-type map", obj(ports={"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                                 "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}})),
    ("list-type set of scalars", obj(tags={"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}})),
    ("object defaults that prune cleanly", obj(spec={"type": "object", "default": {"a": "x"},
                                                     "properties": {"a": {"type": "string"}}})),
    ("valid CEL rule fields (CEL itself not checked)", obj(spec={"type": "object", "x-kubernetes-validations": [
        {"rule": "self.a > 0", "message": "a must be positive"}], "properties": {"a": {"type": "integer"}}})),
]


@pytest.mark.parametrize("name, schema", ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_accepted_schemas(name: str, schema: Obj) -> None:
    assert check(schema) == []


REJECTED: list[tuple[str, Any, list[str]]] = [
    ("no type at the root", {"properties": {"a": {"type": "string"}}},
     [f"{P}.type: Required value: must not be empty at the root"]),
    ("no type on a field", obj(spec={"properties": {"a": {"type": "string"}}}),
     [f"{P}.properties[spec].type: Required value: must not be empty for specified object fields"]),
    ("no type on items", obj(l={"type": "array", "items": {"properties": {"a": {"type": "string"}}}}),
     [f"{P}.properties[l].items.type: Required value: must not be empty for specified array items"]),
    ("a non-object root", {"type": "integer"}, [f'{P}.type: Invalid value: "integer": must be object at the root']),
    ("array without items", obj(l={"type": "array"}), [f"{P}.properties[l].items: Required value: must be specified"]),
    ("additionalProperties at the root", {"type": "object", "additionalProperties": {"type": "string"}},
     [f"{P}.additionalProperties: Forbidden: must not be used at the root"]),
    ("metadata with more than name", obj(metadata={"type": "object", "properties": {"labels": {"type": "object"}}}),
     [f"{P}.properties[metadata]: Forbidden: must not specify anything other than name and generateName, "
      "but metadata is implicitly specified"]),
    ("metadata of the wrong type", obj(metadata={"type": "string"}),
     [f'{P}.properties[metadata].type: Invalid value: "string": must be object']),
    ("kind of the wrong type", obj(kind={"type": "integer"}),
     [f'{P}.properties[kind].type: Invalid value: "integer": must be string']),
    ("types under allOf", obj(spec={"type": "object", "properties": {"a": {"type": "string"}},
                                    "allOf": [{"properties": {"a": {"type": "string", "description": "d"}}}]}),
     [f"{P}.properties[spec].allOf[0].properties[a].description: Forbidden: must be empty to be structural",
      f"{P}.properties[spec].allOf[0].properties[a].type: Forbidden: must be empty to be structural"]),
    ("root junctors name undefined fields", {"type": "object", "properties": {"a": {"type": "string"}},
                                             "anyOf": [{"required": ["b"]}, {"properties": {"b": {"minLength": 1}}}]},
     [f"{P}.properties[b]: Required value: because it is defined in {P}.anyOf[1].properties[b]"]),
    ("metadata in a nested junctor", {"type": "object", "properties": {"metadata": {"type": "object"}},
                                      "not": {"properties": {"metadata": {"required": ["name"]}}}},
     [f"{P}.not.properties[metadata]: Forbidden: must not be specified in a nested context"]),
    ("int-or-string and preserve-unknown-fields",
     obj(p={"x-kubernetes-int-or-string": True, "x-kubernetes-preserve-unknown-fields": True}),
     [f"{P}.properties[p].x-kubernetes-preserve-unknown-fields: Invalid value: true: "
      "must be false if x-kubernetes-int-or-string is true"]),
    ("embedded resource of the wrong type", obj(t={"type": "array", "items": {"type": "string"},
                                                   "x-kubernetes-embedded-resource": True,
                                                   "x-kubernetes-preserve-unknown-fields": True}),
     [f'{P}.properties[t].type: Invalid value: "array": must be object if x-kubernetes-embedded-resource is true']),
    ("embedded resource without fields", obj(t={"type": "object", "x-kubernetes-embedded-resource": True}),
     [f"{P}.properties[t].properties: Required value: must not be empty if x-kubernetes-embedded-resource is "
      "true without x-kubernetes-preserve-unknown-fields"]),
    ("an RE2-invalid pattern", obj(p={"type": "string", "pattern": "^(?!admin).*$"}),
     [f'{P}.properties[p].pattern: Invalid value: "^(?!admin).*$": must be a valid regular expression, '
      "but isn't: error parsing regexp: invalid or unsupported Perl syntax: `(?!`"]),
    ("a default that does not validate", obj(spec=obj(replicas={"type": "integer", "minimum": 1, "default": 0})),
     [f"{P}.properties[spec].properties[replicas].default: Invalid value: 0:  in body should be greater than or equal to 1"]),
    ("an object default field that does not validate", obj(spec={"type": "object", "default": {"a": "toolong"},
                                                                 "properties": {"a": {"type": "string", "maxLength": 3}}}),
     [f"{P}.properties[spec].default.a: Too long: may not be more than 3 bytes"]),
    ("a default with unknown fields", obj(spec={"type": "object", "default": {"a": "x", "b": 2},
                                                "properties": {"a": {"type": "string"}}}),
     [f'{P}.properties[spec].default: Invalid value: {{"a":"x","b":2}}: must not have unknown fields']),
    ("$ref", obj(a={"$ref": "#/definitions/x"}), [f"{P}.properties[a].$ref: Forbidden: $ref is not supported"]),
    ("definitions, dependencies, patternProperties, additionalItems, id",
     {"type": "object", "definitions": {"x": {"type": "string"}}, "dependencies": {"a": ["b"]},
      "patternProperties": {"^x": {"type": "string"}}, "additionalItems": False, "id": "x"},
     [f"{P}.id: Forbidden: id is not supported", f"{P}.additionalItems: Forbidden: additionalItems is not supported",
      f"{P}.patternProperties: Forbidden: patternProperties is not supported",
      f"{P}.definitions: Forbidden: definitions is not supported",
      f"{P}.dependencies: Forbidden: dependencies is not supported"]),
    ("uniqueItems", obj(l={"type": "array", "items": {"type": "string"}, "uniqueItems": True}),
     [f"{P}.properties[l].uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime complexity "
      "becomes quadratic"]),
    ("additionalProperties beside properties", obj(m={"type": "object", "properties": {"a": {"type": "string"}},
                                                      "additionalProperties": {"type": "string"}}),
     [f"{P}.properties[m].additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive"]),
    ("type null", obj(n={"type": "null"}),
     [f'{P}.properties[n].type: Unsupported value: "null": supported values: "array", "boolean", "integer", '
      '"number", "object", "string"',
      f"{P}.properties[n].type: Forbidden: type cannot be set to null, use nullable as an alternative"]),
    ("items as an array", obj(l={"type": "array", "items": [{"type": "string"}]}),
     [f"{P}.properties[l].items: Forbidden: items must be a schema object and not an array"]),
    ("defaults in the top-level metadata", obj(metadata={"type": "object", "properties": {"name": {"type": "string", "default": "x"}}}),
     [f"{P}.properties[metadata].properties[name].default: Forbidden: must not be set in top-level metadata"]),
    ("preserve-unknown-fields false", obj(a={"type": "object", "x-kubernetes-preserve-unknown-fields": False}),
     [f"{P}.properties[a].x-kubernetes-preserve-unknown-fields: Invalid value: false: must be true or undefined"]),
    ("list-type on a string", obj(s={"type": "string", "x-kubernetes-list-type": "set"}),
     [f'{P}.properties[s].type: Invalid value: "string": must be array if x-kubernetes-list-type is specified']),
    ("unknown list-type", obj(l={"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "bag"}),
     [f'{P}.properties[l].x-kubernetes-list-type: Unsupported value: "bag": supported values: "atomic", "set", "map"']),
    ("list-type map without keys", obj(l={"type": "array", "x-kubernetes-list-type": "map",
                                          "items": {"type": "object", "properties": {"a": {"type": "string"}}}}),
     [f"{P}.properties[l].x-kubernetes-list-map-keys: Required value: must not be empty if x-kubernetes-list-type is map"]),
    ("list-map keys that are not item fields", obj(l={"type": "array", "x-kubernetes-list-type": "map",
                                                      "x-kubernetes-list-map-keys": ["nope"],
                                                      "items": {"type": "object", "properties": {"a": {"type": "string"}}}}),
     [f'{P}.properties[l].x-kubernetes-list-map-keys: Invalid value: ["nope"]: entries must all be names of item properties']),
    ("list-map keys neither required nor defaulted", obj(l={"type": "array", "x-kubernetes-list-type": "map",
                                                            "x-kubernetes-list-map-keys": ["name"],
                                                            "items": {"type": "object", "properties": {"name": {"type": "string"}}}}),
     [f"{P}.properties[l].items.properties[name].default: Required value: this property is in "
      "x-kubernetes-list-map-keys, so it must have a default or be a required property"]),
    ("list-map keys without list-type", obj(l={"type": "array", "x-kubernetes-list-map-keys": ["a"],
                                               "items": {"type": "object", "properties": {"a": {"type": "string"}}}}),
     [f"{P}.properties[l].x-kubernetes-list-type: Required value: must be map if x-kubernetes-list-map-keys is non-empty"]),
    ("set of granular objects", obj(l={"type": "array", "x-kubernetes-list-type": "set",
                                       "items": {"type": "object", "properties": {"a": {"type": "string"}}}}),
     [f"{P}.properties[l].items.x-kubernetes-map-type: Invalid value: null: "
      "must be atomic as item of a list with x-kubernetes-list-type=set"]),
    ("map-type on an array", obj(m={"type": "array", "items": {"type": "string"}, "x-kubernetes-map-type": "atomic"}),
     [f'{P}.properties[m].type: Invalid value: "array": must be object if x-kubernetes-map-type is specified']),
    ("empty CEL rule", obj(s={"type": "object", "x-kubernetes-validations": [{"rule": " "}]}),
     [f"{P}.properties[s].x-kubernetes-validations[0].rule: Required value: rule is not specified"]),
    ("CEL rule with an unknown reason", obj(s={"type": "object", "x-kubernetes-validations": [{"rule": "true", "reason": "Nope"}]}),
     [f'{P}.properties[s].x-kubernetes-validations[0].reason: Unsupported value: "Nope": supported values: '
      '"FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired"']),
    ("nullable root", {"type": "object", "nullable": True}, [f"{P}.nullable: Forbidden: nullable cannot be true at the root"]),
    ("a keyword of the wrong JSON type", {"type": "object", "properties": {"a": {"type": 5}}},
     [f"{P}.properties[a].type: Invalid value: 5: must be of type string"]),
    ("not an object at all", "object", [f'{P}: Invalid value: "object": must be of type object']),
]


@pytest.mark.parametrize("name, schema, expected", REJECTED, ids=[r[0] for r in REJECTED])
def test_rejected_schemas(name: str, schema: Any, expected: list[str]) -> None:
    assert check(schema) == expected


def test_structural_errors_are_sorted_like_kubernetes_and_come_before_keyword_errors() -> None:
    schema = {"type": "object", "properties": {
        "z": {"properties": {"a": {"type": "string"}}},
        "a": {"type": "array"},
        "u": {"type": "array", "items": {"type": "string"}, "uniqueItems": True}}}
    assert check(schema) == [
        f"{P}.properties[a].items: Required value: must be specified",
        f"{P}.properties[z].type: Required value: must not be empty for specified object fields",
        f"{P}.properties[u].uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime "
        "complexity becomes quadratic",
    ]


def test_defaults_are_only_checked_once_the_schema_is_structural() -> None:
    schema = obj(spec={"properties": {"r": {"type": "integer", "minimum": 1, "default": 0}}})
    assert check(schema) == [f"{P}.properties[spec].type: Required value: must not be empty for specified object fields"]


@pytest.mark.parametrize("schema, expected", [
    ({"type": "object", "properties": {"status": {"type": "object"}}}, []),
    ({"type": "array", "items": {"type": "string"}},
     [f'{P}.type: Invalid value: "array": only "object" is allowed as the type at the root of the schema if the '
      "status subresource is enabled",
      f'{P}.type: Invalid value: "array": must be object at the root']),
])
def test_status_subresource_root_restrictions(schema: Obj, expected: list[str]) -> None:
    assert check(schema, status=True) == expected


def test_status_subresource_forbids_other_root_keywords() -> None:
    messages = check({"type": "object", "properties": {"a": {"type": "string"}}, "anyOf": [{"required": ["a"]}]}, status=True)
    assert len(messages) == 1
    assert messages[0].startswith(f"{P}: Invalid value: ")
    assert messages[0].endswith(
        ": only [Description Type Format Title Maximum ExclusiveMaximum Minimum ExclusiveMinimum MaxLength "
        "MinLength Pattern MaxItems MinItems UniqueItems MultipleOf Required Items Properties ExternalDocs Example "
        "XPreserveUnknownFields XValidations] fields are allowed at the root of the schema if the status "
        "subresource is enabled")
