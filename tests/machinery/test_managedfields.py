"""Server-side apply and managedFields: SMD's typed and merge tests, Kubernetes' field manager tests
and real managedFields of Deployments, Services and ConfigMaps, on small OpenAPI v3 schemas."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from machinery import managedfields as mf
from machinery.errors import BadRequestError, InternalError
from machinery.fieldpath import FieldSet, Value, make_path, path_string
from machinery.schemaview import Schema

# --------------------------------------------------------------------------- schemas


def ref(name: str, **extra: Any) -> dict[str, Any]:
    return {"allOf": [{"$ref": f"#/components/schemas/{name}"}], **extra}


STR = {"type": "string"}
INT = {"type": "integer"}
BOOL = {"type": "boolean"}
STRMAP = {"type": "object", "additionalProperties": STR}
INT_OR_STRING = {"x-kubernetes-int-or-string": True}

DEFS: dict[str, Any] = {
    "ObjectMeta": {"type": "object", "properties": {
        "name": STR, "namespace": STR, "uid": STR, "resourceVersion": STR, "generation": INT, "creationTimestamp": STR,
        "labels": STRMAP, "annotations": STRMAP,
        "finalizers": {"type": "array", "items": STR, "x-kubernetes-list-type": "set",
                       "x-kubernetes-patch-strategy": "merge"},
        "ownerReferences": {"type": "array", "items": ref("OwnerReference", default={}),
                            "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["uid"]},
        "managedFields": {"type": "array", "items": {"type": "object"}}}},
    "OwnerReference": {"type": "object", "required": ["uid", "name"], "properties": {
        "apiVersion": STR, "kind": STR, "name": STR, "uid": STR, "controller": BOOL}},
    "LabelSelector": {"type": "object", "x-kubernetes-map-type": "atomic", "properties": {
        "matchLabels": STRMAP, "matchExpressions": {"type": "array", "items": {"type": "object"}}}},
    "Deployment": {"type": "object", "properties": {
        "apiVersion": STR, "kind": STR, "metadata": ref("ObjectMeta", default={}),
        "spec": ref("DeploymentSpec", default={}), "status": ref("DeploymentStatus", default={})}},
    "DeploymentSpec": {"type": "object", "required": ["selector", "template"], "properties": {
        "replicas": INT, "selector": ref("LabelSelector"), "template": ref("PodTemplateSpec", default={}),
        "strategy": ref("DeploymentStrategy", default={}), "revisionHistoryLimit": INT,
        "progressDeadlineSeconds": INT, "paused": BOOL}},
    "DeploymentStrategy": {"type": "object", "properties": {"type": STR, "rollingUpdate": ref("RollingUpdate")}},
    "RollingUpdate": {"type": "object", "properties": {"maxSurge": INT_OR_STRING, "maxUnavailable": INT_OR_STRING}},
    "DeploymentStatus": {"type": "object", "properties": {
        "observedGeneration": INT, "replicas": INT, "readyReplicas": INT, "availableReplicas": INT,
        "updatedReplicas": INT,
        "conditions": {"type": "array", "items": ref("Condition", default={}), "x-kubernetes-list-type": "map",
                       "x-kubernetes-list-map-keys": ["type"], "x-kubernetes-patch-merge-key": "type",
                       "x-kubernetes-patch-strategy": "merge"}}},
    "Condition": {"type": "object", "required": ["type", "status"], "properties": {
        "type": STR, "status": STR, "reason": STR, "message": STR, "lastUpdateTime": STR, "lastTransitionTime": STR}},
    "PodTemplateSpec": {"type": "object", "properties": {
        "metadata": ref("ObjectMeta", default={}), "spec": ref("PodSpec", default={})}},
    "PodSpec": {"type": "object", "required": ["containers"], "properties": {
        "containers": {"type": "array", "items": ref("Container", default={}), "x-kubernetes-list-type": "map",
                       "x-kubernetes-list-map-keys": ["name"], "x-kubernetes-patch-merge-key": "name",
                       "x-kubernetes-patch-strategy": "merge"},
        "dnsPolicy": STR, "restartPolicy": STR, "schedulerName": STR, "terminationGracePeriodSeconds": INT,
        "securityContext": ref("PodSecurityContext"),
        "nodeSelector": {**STRMAP, "x-kubernetes-map-type": "atomic"},
        "tolerations": {"type": "array", "items": {"type": "object", "properties": {"key": STR, "effect": STR}}}}},
    "PodSecurityContext": {"type": "object", "properties": {"runAsUser": INT}},
    "Container": {"type": "object", "required": ["name"], "properties": {
        "name": STR, "image": STR, "imagePullPolicy": STR, "terminationMessagePath": STR,
        "terminationMessagePolicy": STR, "args": {"type": "array", "items": STR, "x-kubernetes-list-type": "atomic"},
        "resources": ref("ResourceRequirements", default={}),
        # no list-type: the patch strategy makes it a map keyed by name, as kube-openapi converts it
        "env": {"type": "array", "items": ref("EnvVar", default={}), "x-kubernetes-patch-merge-key": "name",
                "x-kubernetes-patch-strategy": "merge"},
        "ports": {"type": "array", "items": ref("ContainerPort", default={}), "x-kubernetes-list-type": "map",
                  "x-kubernetes-list-map-keys": ["containerPort", "protocol"]}}},
    "EnvVar": {"type": "object", "required": ["name"], "properties": {"name": STR, "value": STR}},
    "ContainerPort": {"type": "object", "required": ["containerPort"], "properties": {
        "name": STR, "containerPort": INT, "protocol": {"type": "string", "default": "TCP"}}},
    "ResourceRequirements": {"type": "object", "properties": {"limits": STRMAP, "requests": STRMAP}},
    "Service": {"type": "object", "properties": {
        "apiVersion": STR, "kind": STR, "metadata": ref("ObjectMeta", default={}),
        "spec": {"type": "object", "default": {}, "properties": {
            "type": STR, "selector": {**STRMAP, "x-kubernetes-map-type": "atomic"},
            "ports": {"type": "array", "items": ref("ServicePort", default={}), "x-kubernetes-list-type": "map",
                      "x-kubernetes-list-map-keys": ["port", "protocol"]}}}}},
    "ServicePort": {"type": "object", "required": ["port"], "properties": {
        "name": STR, "port": INT, "protocol": {"type": "string", "default": "TCP"}, "targetPort": INT_OR_STRING}},
    "ConfigMap": {"type": "object", "properties": {
        "apiVersion": STR, "kind": STR, "metadata": ref("ObjectMeta", default={}), "data": STRMAP}},
    "Scale": {"type": "object", "properties": {
        "apiVersion": STR, "kind": STR, "metadata": ref("ObjectMeta", default={}),
        "spec": {"type": "object", "default": {}, "properties": {"replicas": INT}},
        "status": {"type": "object", "default": {}, "properties": {"replicas": INT, "selector": STR}}}},
    # SMD typed/merge_test.go "associative list" and "set" schemas
    "MyRoot": {"type": "object", "properties": {
        "list": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["key", "id"],
                 "items": {"type": "object", "properties": {
                     "key": STR, "id": {"type": "number"}, "value": STRMAP, "bv": BOOL, "nv": {"type": "number"}}}},
        "atomicList": {"type": "array", "items": STR},
        "setStr": {"type": "array", "items": STR, "x-kubernetes-list-type": "set"},
        "setBool": {"type": "array", "items": BOOL, "x-kubernetes-list-type": "set"},
        "setNumeric": {"type": "array", "items": {"type": "number"}, "x-kubernetes-list-type": "set"},
        "string": STR, "numeric": {"type": "number"}, "bool": BOOL}},
}


def schema(name: str) -> Schema:
    return Schema(DEFS[name], DEFS)


DEPLOYMENT = schema("Deployment")
SERVICE = schema("Service")
CONFIGMAP = schema("ConfigMap")
SCALE = schema("Scale")
ROOT = schema("MyRoot")
STATUS = FieldSet.from_paths([make_path("status")])
NOW = "2024-05-01T10:00:00Z"
LATER = "2024-05-01T10:05:00Z"


def Y(text: str) -> Any:
    return yaml.safe_load(text)


def S(*paths: tuple[Any, ...]) -> FieldSet:
    return FieldSet.from_paths(make_path(*p) for p in paths)


def fields_json(entry: dict[str, Any]) -> str:
    return json.dumps(entry["fieldsV1"], separators=(",", ":"), ensure_ascii=False)


def entries(managers: mf.Managers) -> list[Any]:
    return mf.encode_managed_fields(managers) or []


def by_manager(managers: mf.Managers) -> dict[str, dict[str, Any]]:
    return {e["manager"] + ("/" + e["subresource"] if "subresource" in e else ""): e for e in entries(managers)}


NGINX = Y("""
apiVersion: apps/v1
kind: Deployment
metadata: {name: nginx-deployment, namespace: default, labels: {app: nginx}}
spec:
  replicas: 3
  selector: {matchLabels: {app: nginx}}
  template:
    metadata: {labels: {app: nginx}}
    spec:
      containers:
      - name: nginx
        image: nginx:1.14.2
        ports: [{containerPort: 80}]
""")

NGINX_APPLIED_FIELDS = (
    '{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:replicas":{},"f:selector":{},"f:template":{"f:metadata":'
    '{"f:labels":{"f:app":{}}},"f:spec":{"f:containers":{"k:{\\"name\\":\\"nginx\\"}":{".":{},"f:image":{},'
    '"f:name":{},"f:ports":{"k:{\\"containerPort\\":80,\\"protocol\\":\\"TCP\\"}":{".":{},"f:containerPort":{}}}}}}}}}')


def apply_(live: Any, config: Any, manager: str = "kubectl", *, force: bool = False, now: str = NOW,
           schema_: Schema | None = DEPLOYMENT, api_version: str = "apps/v1", **kw: Any) -> dict[str, Any]:
    """One server-side apply as the API server does it; returns the stored object."""
    obj, managers = mf.apply(live, config, None, manager=manager, api_version=api_version, schema=schema_,
                             force=force, now=now, **kw)
    return mf.set_managed_fields(obj, managers)


def update_(live: Any, new: Any, manager: str, *, now: str = LATER, schema_: Schema = DEPLOYMENT,
            api_version: str = "apps/v1", **kw: Any) -> dict[str, Any]:
    managers = mf.update(live, new, None, manager=manager, api_version=api_version, schema=schema_, now=now, **kw)
    return mf.set_managed_fields(new, managers)


def edit(obj: dict[str, Any], change: Any) -> dict[str, Any]:
    copy = json.loads(json.dumps(obj))
    change(copy)
    return copy


# --------------------------------------------------------------------------- ToFieldSet


@pytest.mark.parametrize(("obj", "expected"), [
    # declared struct fields with content are parents only; their leaves are members
    ({"spec": {"replicas": 1, "paused": False}}, S(("spec", "replicas"), ("spec", "paused"))),
    # map keys (labels) are members, the labels field is not
    ({"metadata": {"labels": {"a": "1"}}}, S(("metadata", "labels", "a"))),
    # null and empty maps are leaves
    ({"metadata": {"labels": None, "annotations": {}}}, S(("metadata", "labels"), ("metadata", "annotations"))),
    # atomic map (selector) and atomic list (args) are one leaf
    ({"spec": {"selector": {"matchLabels": {"a": "b"}}}}, S(("spec", "selector"))),
    # list items are members and so are their children; an empty associative list is nothing
    ({"spec": {"template": {"spec": {"containers": [{"name": "c", "args": ["x"], "resources": {}}], "tolerations": []}}}},
     S(("spec", "template", "spec", "containers", {"name": "c"}),
       ("spec", "template", "spec", "containers", {"name": "c"}, "name"),
       ("spec", "template", "spec", "containers", {"name": "c"}, "args"),
       ("spec", "template", "spec", "containers", {"name": "c"}, "resources"),
       ("spec", "template", "spec", "tolerations"))),
    ({"spec": {"template": {"spec": {"containers": []}}}}, S()),
    # a list-map key missing in the item takes the schema default
    ({"spec": {"template": {"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}]}]}}}},
     S(*[("spec", "template", "spec", "containers", {"name": "c"}, *rest) for rest in [
         (), ("name",), ("ports", {"containerPort": 80, "protocol": "TCP"}),
         ("ports", {"containerPort": 80, "protocol": "TCP"}, "containerPort")]])),
    # env has no list-type, only a patch merge key: keyed by name
    ({"spec": {"template": {"spec": {"containers": [{"name": "c", "env": [{"name": "A", "value": "1"}]}]}}}},
     S(*[("spec", "template", "spec", "containers", {"name": "c"}, *rest) for rest in [
         (), ("name",), ("env", {"name": "A"}), ("env", {"name": "A"}, "name"), ("env", {"name": "A"}, "value")]])),
    # sets: items are values
    ({"metadata": {"finalizers": ["a", "b"]}}, S(("metadata", "finalizers", Value("a")), ("metadata", "finalizers", Value("b")))),
    # fields the schema does not know are deduced: members, their lists atomic
    ({"spec": {"unknown": {"x": [1, 2]}}}, S(("spec", "unknown"), ("spec", "unknown", "x"))),
])
def test_to_field_set(obj: dict[str, Any], expected: FieldSet) -> None:
    assert mf.to_field_set(obj, DEPLOYMENT) == expected


def test_key_fields_are_written_sorted_by_name_whatever_the_list_map_keys_order() -> None:
    # MyRoot.list is keyed by [key, id]; SMD sorts the key's FieldList by name.
    fields = mf.to_field_set({"list": [{"key": "a", "id": 1, "nv": 2}]}, ROOT)
    assert json.dumps(fields.to_fields_v1(), separators=(",", ":")) == (
        '{"f:list":{"k:{\\"id\\":1,\\"key\\":\\"a\\"}":{".":{},"f:id":{},"f:key":{},"f:nv":{}}}}')


def test_to_field_set_without_schema_is_deduced() -> None:
    obj = {"spec": {"list": [{"a": 1}], "map": {"k": "v"}, "empty": {}}}
    assert mf.to_field_set(obj, None) == S(("spec",), ("spec", "list"), ("spec", "map"), ("spec", "map", "k"),
                                           ("spec", "empty"))


def test_to_field_set_duplicates_are_one_member_without_children() -> None:
    obj = {"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}, {"uid": "1", "name": "b"}, {"uid": "2", "name": "c"}]}}
    assert mf.to_field_set(obj, DEPLOYMENT) == S(
        ("metadata", "ownerReferences", {"uid": "1"}), ("metadata", "ownerReferences", {"uid": "2"}),
        ("metadata", "ownerReferences", {"uid": "2"}, "uid"), ("metadata", "ownerReferences", {"uid": "2"}, "name"))


# --------------------------------------------------------------------------- Compare


def test_compare_added_nodes_with_children_are_members_too() -> None:
    old = {"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x"}]}}}}
    new = {"metadata": {"labels": {"app": "x"}}, "spec": {"replicas": 2, "template": {"spec": {"containers": [
        {"name": "a", "image": "y"}, {"name": "b", "image": "z", "resources": {}}]}}}}
    c = mf.compare(old, new, DEPLOYMENT)
    containers = ("spec", "template", "spec", "containers")
    assert c.added == S(("metadata",), ("metadata", "labels"), ("metadata", "labels", "app"), ("spec", "replicas"),
                        (*containers, {"name": "b"}), (*containers, {"name": "b"}, "name"),
                        (*containers, {"name": "b"}, "image"), (*containers, {"name": "b"}, "resources"))
    assert c.modified == S((*containers, {"name": "a"}, "image"))
    assert c.removed.empty()
    back = mf.compare(new, old, DEPLOYMENT)
    assert back.removed == c.added and back.modified == c.modified and back.added.empty()


@pytest.mark.parametrize(("old", "new", "added", "modified", "removed"), [
    ({"a": 1}, {"a": 1}, S(), S(), S()),
    ({"spec": {"replicas": 1}}, {"spec": {"replicas": 1.0}}, S(), S(), S()),  # SMD: 1 equals 1.0
    ({"spec": {"replicas": "1"}}, {"spec": {"replicas": 1}}, S(), S(("spec", "replicas")), S()),
    ({"metadata": {"labels": None}}, {"metadata": {"labels": {}}}, S(), S(("metadata", "labels")), S()),
    ({"metadata": {"labels": None}}, {"metadata": {"labels": {"a": "b"}}}, S(("metadata", "labels", "a")), S(), S()),
    ({"spec": {"selector": {"matchLabels": {"a": "1"}}}}, {"spec": {"selector": {"matchLabels": {"a": "2"}}}},
     S(), S(("spec", "selector")), S()),
    ({"metadata": {"finalizers": ["a", "b"]}}, {"metadata": {"finalizers": ["b", "c"]}},
     S(("metadata", "finalizers", Value("c"))), S(), S(("metadata", "finalizers", Value("a")))),
    ({"spec": {"template": {"spec": {"containers": [{"name": "a", "args": ["1"]}]}}}},
     {"spec": {"template": {"spec": {"containers": [{"name": "a", "args": ["1", "2"]}]}}}},
     S(), S(("spec", "template", "spec", "containers", {"name": "a"}, "args")), S()),
    # a type change is one modified leaf
    ({"spec": {"x": {"a": 1}}}, {"spec": {"x": "flat"}}, S(), S(("spec", "x")), S()),
])
def test_compare(old: Any, new: Any, added: FieldSet, modified: FieldSet, removed: FieldSet) -> None:
    c = mf.compare(old, new, DEPLOYMENT)
    assert (c.added, c.modified, c.removed) == (added, modified, removed)


def test_compare_duplicates() -> None:
    refs = ("metadata", "ownerReferences")
    dup = {"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}, {"uid": "1", "name": "b"}]}}
    single = {"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}]}}
    item = S((*refs, {"uid": "1"}), (*refs, {"uid": "1"}, "uid"), (*refs, {"uid": "1"}, "name"))
    c = mf.compare(single, dup, DEPLOYMENT)  # new duplicates: the old item goes, the marker comes
    assert c.added == S((*refs, {"uid": "1"}))
    assert c.removed == item
    c = mf.compare(dup, single, DEPLOYMENT)  # duplicates gone: the marker goes, the single item comes
    assert c.removed == S((*refs, {"uid": "1"}))
    assert c.added == item


def test_comparison_exclude_is_recursive() -> None:
    c = mf.compare({}, {"spec": {"replicas": 1}, "status": {"replicas": 1}}, DEPLOYMENT).exclude(STATUS)
    assert c.added == S(("spec",), ("spec", "replicas"))


# --------------------------------------------------------------------------- Merge

MERGE_TRIPLETS = [
    # SMD typed/merge_test.go: scalars, sets and the associative list (keys key, id)
    ('{"numeric":1}', '{"numeric":3.14159}', '{"numeric":3.14159}'),
    ('{"string":"aoeu"}', '{"bool":true}', '{"string":"aoeu","bool":true}'),
    ('{"setStr":["a","b","c"]}', '{"setStr":["a","b"]}', '{"setStr":["a","b","c"]}'),
    ('{"setStr":["a","b"]}', '{"setStr":["a","b","c"]}', '{"setStr":["a","b","c"]}'),
    ('{"setStr":["a","b","c"]}', '{"setStr":[]}', '{"setStr":["a","b","c"]}'),
    ('{"setStr":[]}', '{"setStr":["a","b","c"]}', '{"setStr":["a","b","c"]}'),
    ('{"setStr":["a","b"]}', '{"setStr":["b","a"]}', '{"setStr":["b","a"]}'),
    ('{"setStr":["a","b","c"]}', '{"setStr":["d","e","f"]}', '{"setStr":["a","b","c","d","e","f"]}'),
    ('{"setStr":["a","b","c","g","f"]}', '{"setStr":["c","d","e","f"]}', '{"setStr":["a","b","c","g","d","e","f"]}'),
    ('{"setStr":["c","d","e","f"]}', '{"setStr":["a","c","e"]}', '{"setStr":["a","c","d","e","f"]}'),
    ('{"setStr":["a","b","c","x","y","z"]}', '{"setStr":["d","e","f","x","y","z"]}',
     '{"setStr":["a","b","c","d","e","f","x","y","z"]}'),
    ('{"setStr":["c","a","g","f"]}', '{"setStr":["c","f","a","g"]}', '{"setStr":["c","f","a","g"]}'),
    ('{"setStr":["a","b","c","d"]}', '{"setStr":["d","e","f","a"]}', '{"setStr":["b","c","d","e","f","a"]}'),
    ('{"setStr":["c","d","e","f","g","h","i","j"]}', '{"setStr":["2","h","3","e","4","k","l"]}',
     '{"setStr":["c","d","f","g","2","h","i","j","3","e","4","k","l"]}'),
    ('{"setStr":["a","b","c","d","e","f","g","h","i","j"]}', '{"setStr":["1","b","2","h","3","e","4","k","l"]}',
     '{"setStr":["a","1","b","c","d","f","g","2","h","i","j","3","e","4","k","l"]}'),
    ('{"setStr":["a","b","b"]}', '{"setStr":["c"]}', '{"setStr":["a","b","b","c"]}'),
    ('{"setStr":["a","b","b"]}', '{"setStr":["b"]}', '{"setStr":["a","b"]}'),
    ('{"setStr":["a","b","b"]}', '{"setStr":["a"]}', '{"setStr":["a","b","b"]}'),
    ('{"setStr":["a","b","c","d","e","c"]}', '{"setStr":["1","b","2","e","d"]}',
     '{"setStr":["a","1","b","c","2","e","c","d"]}'),
    ('{"setStr":["a","b","c","d","e","c"]}', '{"setStr":["1","b","2","c","e","d"]}',
     '{"setStr":["a","1","b","2","c","e","d"]}'),
    ('{"setStr":["a","a","b","b"]}', '{"setStr":["b","c","d"]}', '{"setStr":["a","a","b","c","d"]}'),
    ('{"setStr":["a","a","b","b"]}', '{"setStr":[]}', '{"setStr":["a","a","b","b"]}'),
    ('{"setBool":[true]}', '{"setBool":[false]}', '{"setBool":[true,false]}'),
    ('{"setNumeric":[1,2,3.14159]}', '{"setNumeric":[1,2,3]}', '{"setNumeric":[1,2,3.14159,3]}'),
    ('{"setStr":["c","a","g","f","c","a"]}', '{"setStr":["c","f","a","g"]}', '{"setStr":["c","f","a","g"]}'),
    ('{"setNumeric":[1,2,3.14159,1,2]}', '{"setNumeric":[1,2,3]}', '{"setNumeric":[1,2,3.14159,3]}'),
    ('{"setBool":[true,false,true]}', '{"setBool":[false]}', '{"setBool":[true,false,true]}'),
    ('{"setBool":[true,false,true]}', '{"setBool":[true]}', '{"setBool":[true,false]}'),
    ('{"list":[{"key":"a","id":1,"value":{"a":"a"}}]}', '{"list":[{"key":"a","id":2,"value":{"a":"a"}}]}',
     '{"list":[{"key":"a","id":1,"value":{"a":"a"}},{"key":"a","id":2,"value":{"a":"a"}}]}'),
    ('{"list":[{"key":"a","id":1},{"key":"b","id":1}]}', '{"list":[{"key":"a","id":1},{"key":"a","id":2}]}',
     '{"list":[{"key":"a","id":1},{"key":"b","id":1},{"key":"a","id":2}]}'),
    ('{"list":[{"key":"b","id":2}]}', '{"list":[{"key":"a","id":1},{"key":"b","id":2},{"key":"c","id":3}]}',
     '{"list":[{"key":"a","id":1},{"key":"b","id":2},{"key":"c","id":3}]}'),
    ('{"list":[{"key":"a","id":1},{"key":"b","id":2},{"key":"c","id":3}]}', '{"list":[{"key":"c","id":3},{"key":"b","id":2}]}',
     '{"list":[{"key":"a","id":1},{"key":"c","id":3},{"key":"b","id":2}]}'),
    ('{"list":[{"key":"a","id":1},{"key":"b","id":2},{"key":"c","id":3}]}', '{"list":[{"key":"c","id":3},{"key":"a","id":1}]}',
     '{"list":[{"key":"b","id":2},{"key":"c","id":3},{"key":"a","id":1}]}'),
    ('{"atomicList":["a","a","a"]}', '{"atomicList":null}', '{"atomicList":null}'),
    ('{"atomicList":["a","b","c"]}', '{"atomicList":[]}', '{"atomicList":[]}'),
    ('{"list":[{"key":"a","id":1,"bv":true},{"key":"b","id":2},{"key":"a","id":1,"bv":false,"nv":2}]}',
     '{"list":[{"key":"a","id":1,"nv":3},{"key":"c","id":3},{"key":"b","id":2}]}',
     '{"list":[{"key":"a","id":1,"nv":3},{"key":"c","id":3},{"key":"b","id":2}]}'),
    ('{"list":[{"key":"a","id":1,"nv":1},{"key":"a","id":1,"nv":2}]}', '{"list":[]}',
     '{"list":[{"key":"a","id":1,"nv":1},{"key":"a","id":1,"nv":2}]}'),
    ('{"list":[{"key":"a","id":1,"nv":1},{"key":"a","id":1,"nv":2}]}', '{}',
     '{"list":[{"key":"a","id":1,"nv":1},{"key":"a","id":1,"nv":2}]}'),
    # list items merge field by field
    ('{"list":[{"key":"a","id":1,"value":{"x":"1"},"bv":true}]}', '{"list":[{"key":"a","id":1,"value":{"y":"2"}}]}',
     '{"list":[{"key":"a","id":1,"value":{"x":"1","y":"2"},"bv":true}]}'),
]


@pytest.mark.parametrize(("lhs", "rhs", "out"), MERGE_TRIPLETS)
def test_merge(lhs: str, rhs: str, out: str) -> None:
    live, config = json.loads(lhs), json.loads(rhs)
    before = json.dumps(live)
    assert mf.merge(live, config, ROOT) == json.loads(out)
    assert json.dumps(live) == before  # never mutated


def test_merge_null_does_not_clear_a_granular_map_but_replaces_atomic_values() -> None:
    live = {"metadata": {"labels": {"a": "1"}}, "spec": {"selector": {"matchLabels": {"a": "1"}}, "replicas": 2}}
    config = {"metadata": {"labels": None}, "spec": {"selector": {"matchLabels": {"b": "2"}}, "replicas": None}}
    assert mf.merge(live, config, DEPLOYMENT) == {
        "metadata": {"labels": {"a": "1"}}, "spec": {"selector": {"matchLabels": {"b": "2"}}, "replicas": None}}


def test_merge_shares_untouched_subtrees() -> None:
    live: dict[str, Any] = {"spec": {"template": {"spec": {"containers": [{"name": "a"}]}}}, "status": {"replicas": 1}}
    merged = mf.merge(live, {"spec": {"replicas": 2}}, DEPLOYMENT)
    assert merged["status"] is live["status"] and merged["spec"]["template"] is live["spec"]["template"]


KEYLESS = ('.spec.template.spec.containers: element 0: associative list with keys has an element that omits all key '
           'fields ["name"] (and doesn\'t have default values for any key fields)')


def test_merge_rejects_untypable_lists() -> None:
    live = {"spec": {"template": {"spec": {"containers": [{"name": "a"}]}}}}
    with pytest.raises(mf.FieldValueError) as err:
        mf.merge(live, {"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}, DEPLOYMENT)
    assert str(err.value) == KEYLESS
    assert mf.validate({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}}, DEPLOYMENT) == [KEYLESS]


def test_validate_reports_duplicates_as_kubernetes_does() -> None:
    config = Y("""
spec:
  template:
    spec:
      containers:
      - name: c
        env: [{name: FOO, value: "1"}, {name: FOO, value: "2"}]
        ports: [{containerPort: 93}, {containerPort: 93, protocol: TCP}]
""")
    assert mf.validate(config, DEPLOYMENT) == [
        '.spec.template.spec.containers[name="c"].env: duplicate entries for key [name="FOO"]',
        '.spec.template.spec.containers[name="c"].ports: duplicate entries for key [containerPort=93,protocol="TCP"]']
    assert mf.validate(config, DEPLOYMENT, allow_duplicates=True) == []


# --------------------------------------------------------------------------- RemoveItems


def test_remove_items() -> None:
    obj = {"metadata": {"labels": {"a": "1", "b": "2"}, "finalizers": ["x", "y"]},
           "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "a", "image": "i"}, {"name": "b"}]}}}}
    containers = ("spec", "template", "spec", "containers")
    out = mf.remove_items(obj, S(("metadata", "labels", "a"), ("metadata", "finalizers", Value("y")),
                                 ("spec", "replicas"), (*containers, {"name": "b"}),
                                 (*containers, {"name": "a"}, "image")), DEPLOYMENT)
    assert out == {"metadata": {"labels": {"b": "2"}, "finalizers": ["x"]},
                   "spec": {"template": {"spec": {"containers": [{"name": "a"}]}}}}
    # emptied containers become null, as in SMD; untouched subtrees are shared
    out = mf.remove_items(obj, S(("metadata", "labels", "a"), ("metadata", "labels", "b")), DEPLOYMENT)
    assert out["metadata"]["labels"] is None and out["spec"] is obj["spec"]
    assert mf.remove_items(obj, S(("status",)), DEPLOYMENT) is obj


def test_ensure_named_fields_are_members() -> None:
    fields = S(("spec", "template", "spec", "containers", {"name": "a"}, "image"), ("metadata", "labels", "x"))
    assert mf.ensure_named_fields_are_members(fields, DEPLOYMENT) == fields.union(S(
        ("spec",), ("spec", "template"), ("spec", "template", "spec"), ("spec", "template", "spec", "containers"),
        ("metadata",), ("metadata", "labels")))


def test_zero_object_follows_go_zero_values() -> None:
    assert mf.zero_object(DEPLOYMENT) == {
        "metadata": {}, "spec": {"selector": None, "template": {"metadata": {}, "spec": {"containers": None}},
                                 "strategy": {}}, "status": {}}
    assert mf.zero_object(None) == {}


# --------------------------------------------------------------------------- managedFields on the wire

REAL_ENTRIES = [
    {"manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1", "time": "2024-05-01T10:00:00Z",
     "fieldsType": "FieldsV1", "fieldsV1": json.loads(NGINX_APPLIED_FIELDS)},
    {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "apps/v1",
     "time": "2024-05-01T10:00:03Z", "fieldsType": "FieldsV1",
     "fieldsV1": {"f:status": {"f:replicas": {}, "f:conditions": {".": {}, 'k:{"type":"Available"}': {
         ".": {}, "f:status": {}, "f:type": {}}}}}, "subresource": "status"},
    {"manager": "kubectl-scale", "operation": "Update", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
     "fieldsV1": {"f:spec": {"f:replicas": {}}}, "subresource": "scale"},
]


def test_decode_and_encode_round_trip_real_entries() -> None:
    managers = mf.decode_managed_fields(REAL_ENTRIES)
    assert list(managers) == [
        '{"manager":"kubectl","operation":"Apply"}',
        '{"manager":"kube-controller-manager","operation":"Update","apiVersion":"apps/v1","subresource":"status"}',
        '{"manager":"kubectl-scale","operation":"Update","apiVersion":"apps/v1","subresource":"scale"}']
    encoded = mf.encode_managed_fields(managers)
    # Apply first, then by time (none counts as 0), manager, apiVersion, subresource
    assert [e["manager"] for e in encoded or []] == ["kubectl", "kubectl-scale", "kube-controller-manager"]
    assert sorted(encoded or [], key=lambda e: e["manager"]) == sorted(REAL_ENTRIES, key=lambda e: e["manager"])
    assert list((encoded or [])[1]) == ["manager", "operation", "apiVersion", "fieldsType", "fieldsV1", "subresource"]


DOCS_CONFIGMAP = Y("""
apiVersion: v1
kind: ConfigMap
metadata:
  name: test-cm
  namespace: default
  labels:
    test-label: test
  managedFields:
  - manager: kubectl
    operation: Apply
    time: '2019-03-30T15:00:00.000Z'
    apiVersion: v1
    fieldsType: FieldsV1
    fieldsV1:
      f:metadata:
        f:labels:
          f:test-label: {}
  - manager: kube-controller-manager
    operation: Update
    apiVersion: v1
    time: '2019-03-30T16:00:00.000Z'
    fieldsType: FieldsV1
    fieldsV1:
      f:data:
        f:key: {}
data:
  key: new value
""")


def test_the_docs_multi_manager_configmap() -> None:
    # kubernetes.io "Server-Side Apply": an update took data.key from kubectl; an apply of it conflicts.
    managers = mf.decode_managed_fields(DOCS_CONFIGMAP["metadata"]["managedFields"])
    assert [e["time"] for e in entries(managers)] == ["2019-03-30T15:00:00Z", "2019-03-30T16:00:00Z"]  # metav1.Time
    config = Y("{apiVersion: v1, kind: ConfigMap, metadata: {name: test-cm, labels: {test-label: test}}, "
               "data: {key: some value}}")
    with pytest.raises(mf.ApplyConflictError) as err:
        apply_(DOCS_CONFIGMAP, config, schema_=CONFIGMAP, api_version="v1")
    assert err.value.message == ('Apply failed with 1 conflict: conflict with "kube-controller-manager" using v1: '
                                 '.data.key')
    out = apply_(DOCS_CONFIGMAP, edit(config, lambda o: o["data"].update(key="new value")), schema_=CONFIGMAP,
                 api_version="v1", now=LATER)  # shared: the same value
    assert [(e["manager"], fields_json(e)) for e in out["metadata"]["managedFields"]] == [
        ("kubectl", '{"f:data":{"f:key":{}},"f:metadata":{"f:labels":{"f:test-label":{}}}}'),
        ("kube-controller-manager", '{"f:data":{"f:key":{}}}')]


def test_a_status_heartbeat_rewrites_only_the_writers_time() -> None:
    reset = FieldSet.from_paths([make_path("spec")])
    obj = created()
    obj = update_(obj, edit(obj, lambda o: o["status"].update(replicas=1)), "kcm", subresource="status", ignored=reset)
    out = update_(obj, edit(obj, lambda o: o["status"].update(replicas=2)), "kcm", subresource="status",
                  ignored=reset, now="2024-05-01T11:00:00Z")
    before, after = obj["metadata"]["managedFields"], out["metadata"]["managedFields"]
    assert after[0] is before[0]  # kubectl-create's entry: the very same dict
    assert after[1]["time"] == "2024-05-01T11:00:00Z"
    assert after[1]["fieldsV1"] is before[1]["fieldsV1"]  # not re-encoded
    # and decoding an equal copy (fresh from storage) gives equal managers
    assert mf.decode_managed_fields(json.loads(json.dumps(after))) == mf.decode_managed_fields(after)


def test_encode_of_nothing_drops_the_field() -> None:
    assert mf.encode_managed_fields({}) is None
    obj = mf.set_managed_fields({"metadata": {"name": "x", "managedFields": REAL_ENTRIES}}, {})
    assert obj == {"metadata": {"name": "x"}}


@pytest.mark.parametrize(("entry", "message"), [
    ({"manager": "m", "operation": "Patch", "apiVersion": "v1", "fieldsType": "FieldsV1"}, "operation must be `Apply` or `Update`"),
    ({"manager": "m", "operation": "Update", "fieldsType": "FieldsV1"}, "apiVersion must not be empty"),
    ({"manager": "m", "operation": "Update", "apiVersion": "v1"}, "missing fieldsType in managed fields entry 0"),
    ({"manager": "m", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV2"},
     'invalid fieldsType "FieldsV2" in managed fields entry 0'),
])
def test_decode_errors(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(mf.ManagedFieldsError, match=message.replace("`", ".")):
        mf.decode_managed_fields([entry])


@pytest.mark.parametrize(("args", "identifier"), [
    (("kubectl", "Apply", "apps/v1", ""), '{"manager":"kubectl","operation":"Apply"}'),
    (("kubectl", "Update", "apps/v1", ""), '{"manager":"kubectl","operation":"Update","apiVersion":"apps/v1"}'),
    (("kubectl", "Apply", "v1", "status"), '{"manager":"kubectl","operation":"Apply","subresource":"status"}'),
    (("a<b", "Update", "v1", ""), '{"manager":"a\\u003cb","operation":"Update","apiVersion":"v1"}'),
])
def test_manager_identifier(args: tuple[str, str, str, str], identifier: str) -> None:
    assert mf.manager_identifier(*args) == identifier


@pytest.mark.parametrize(("user_agent", "manager"), [
    # handlers/create_test.go TestManagerOrUserAgent
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/72.0.3626.121 Safari/537.36",
     "Mozilla"),
    ("f" * 129 + "/Something", "f" * 128),
    ("🍔" * 60, "🍔" * 32),
    ("a" * 127 + "é/1", "a" * 127),  # 128 bytes at most: é needs two
    ("kubectl/v1.32.4 (linux/amd64) kubernetes/59526cd", "kubectl"),
    ("kube\x00let/v1.30", "kubelet"),
    ("", ""),
    (None, ""),
])
def test_manager_from_user_agent(user_agent: str | None, manager: str) -> None:
    assert mf.manager_from_user_agent(user_agent) == manager


# --------------------------------------------------------------------------- conflict errors


def test_conflict_errors_as_kubernetes_words_them() -> None:
    # internal/conflict_test.go TestNewConflictError
    foo = '{"manager":"foo","operation":"Update","apiVersion":"v1","time":"2001-02-03T04:05:06Z"}'
    bar = '{"manager":"bar","operation":"Apply"}'
    err = mf.ApplyConflictError([mf.Conflict(foo, make_path("spec", "replicas"))])
    assert err.code == 409 and err.reason == "Conflict"
    assert err.message == ('Apply failed with 1 conflict: conflict with "foo" using v1 at 2001-02-03T04:05:06Z: '
                           '.spec.replicas')
    assert err.to_status()["details"] == {"causes": [{
        "reason": "FieldManagerConflict", "message": 'conflict with "foo" using v1 at 2001-02-03T04:05:06Z',
        "field": ".spec.replicas"}]}
    err = mf.ApplyConflictError([mf.Conflict(foo, make_path("spec", "replicas")),
                                 mf.Conflict(bar, make_path("metadata", "labels", "app"))])
    assert err.message == ('Apply failed with 2 conflicts: conflicts with "bar":\n- .metadata.labels.app\n'
                           'conflicts with "foo" using v1 at 2001-02-03T04:05:06Z:\n- .spec.replicas')
    assert [c.field for c in err.causes] == [".spec.replicas", ".metadata.labels.app"]
    scale = '{"manager":"foo","operation":"Update","subresource":"scale","apiVersion":"v1","time":"2001-02-03T04:05:06Z"}'
    err = mf.ApplyConflictError([mf.Conflict(scale, make_path("spec", "replicas"))])
    assert err.message == ('Apply failed with 1 conflict: conflict with "foo" with subresource "scale" using v1 '
                           'at 2001-02-03T04:05:06Z: .spec.replicas')


def test_print_manager_of_something_that_is_not_an_identifier() -> None:
    assert mf.print_manager("apply-one") == '"apply-one"'


# --------------------------------------------------------------------------- Update


KUBECTL_CREATE = Y("""
apiVersion: apps/v1
kind: Deployment
metadata: {name: nginx, namespace: default, labels: {app: nginx}}
spec:
  replicas: 1
  selector: {matchLabels: {app: nginx}}
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 25%, maxUnavailable: 25%}}
  revisionHistoryLimit: 10
  progressDeadlineSeconds: 600
  template:
    metadata: {labels: {app: nginx}}
    spec:
      containers:
      - {name: nginx, image: nginx, imagePullPolicy: Always, resources: {},
         terminationMessagePath: /dev/termination-log, terminationMessagePolicy: File}
      dnsPolicy: ClusterFirst
      restartPolicy: Always
      schedulerName: default-scheduler
      securityContext: {}
      terminationGracePeriodSeconds: 30
status: {}
""")

# What `kubectl create deployment nginx --image=nginx` leaves in a real cluster (fieldsV1 of kubectl-create).
KUBECTL_CREATE_FIELDS = (
    '{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:progressDeadlineSeconds":{},"f:replicas":{},'
    '"f:revisionHistoryLimit":{},"f:selector":{},"f:strategy":{"f:rollingUpdate":{".":{},"f:maxSurge":{},'
    '"f:maxUnavailable":{}},"f:type":{}},"f:template":{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":'
    '{"f:containers":{"k:{\\"name\\":\\"nginx\\"}":{".":{},"f:image":{},"f:imagePullPolicy":{},"f:name":{},'
    '"f:resources":{},"f:terminationMessagePath":{},"f:terminationMessagePolicy":{}}},"f:dnsPolicy":{},'
    '"f:restartPolicy":{},"f:schedulerName":{},"f:securityContext":{},"f:terminationGracePeriodSeconds":{}}}}}')


def created() -> dict[str, Any]:
    return update_(None, KUBECTL_CREATE, "kubectl-create", now=NOW, ignored=STATUS)


def test_create_records_what_kubectl_create_owns() -> None:
    obj = created()
    [entry] = obj["metadata"]["managedFields"]
    assert {k: v for k, v in entry.items() if k != "fieldsV1"} == {
        "manager": "kubectl-create", "operation": "Update", "apiVersion": "apps/v1", "time": NOW,
        "fieldsType": "FieldsV1"}
    assert fields_json(entry) == KUBECTL_CREATE_FIELDS


def test_status_update_through_the_status_subresource() -> None:
    obj = created()
    reset = FieldSet.from_paths([make_path("spec"), make_path("metadata", "labels")])
    new = edit(obj, lambda o: o.update(status={
        "observedGeneration": 1, "replicas": 1,
        "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}]}))
    new["spec"]["replicas"] = 7  # the status endpoint resets spec; this is not the controller's
    out = update_(obj, new, "kube-controller-manager", subresource="status", ignored=reset)
    entry = by_manager(mf.decode_managed_fields(out["metadata"]["managedFields"]))["kube-controller-manager/status"]
    assert fields_json(entry) == (
        '{"f:status":{"f:conditions":{".":{},"k:{\\"type\\":\\"Available\\"}":{".":{},"f:reason":{},"f:status":{},'
        '"f:type":{}}},"f:observedGeneration":{},"f:replicas":{}}}')
    assert entry["time"] == LATER
    # kubectl-create keeps spec.replicas: the status endpoint's change to it is ignored
    create = by_manager(mf.decode_managed_fields(out["metadata"]["managedFields"]))["kubectl-create"]
    assert fields_json(create) == KUBECTL_CREATE_FIELDS


def test_update_moves_ownership_to_the_writer() -> None:
    obj = created()
    new = edit(obj, lambda o: (o["spec"].update(replicas=3), o["metadata"]["labels"].update(tier="web"),
                               o["spec"]["template"]["spec"].pop("securityContext")))
    out = update_(obj, new, "kubectl-edit")
    managers = by_manager(mf.decode_managed_fields(out["metadata"]["managedFields"]))
    assert fields_json(managers["kubectl-edit"]) == '{"f:metadata":{"f:labels":{"f:tier":{}}},"f:spec":{"f:replicas":{}}}'
    create = FieldSet.from_fields_v1(managers["kubectl-create"]["fieldsV1"])
    assert not create.has(make_path("spec", "replicas"))  # modified by someone else
    assert not create.has(make_path("spec", "template", "spec", "securityContext"))  # removed
    assert create.has(make_path("metadata", "labels"))
    # entries are ordered by time
    assert [e["manager"] for e in out["metadata"]["managedFields"]] == ["kubectl-create", "kubectl-edit"]


def test_a_no_op_update_changes_nothing() -> None:
    obj = created()
    again = update_(obj, edit(obj, lambda o: None), "kubectl-create")
    assert again["metadata"]["managedFields"] == obj["metadata"]["managedFields"]  # time kept
    other = update_(obj, edit(obj, lambda o: None), "someone-else")
    assert other["metadata"]["managedFields"] == obj["metadata"]["managedFields"]  # no empty entry


def test_update_only_touching_stripped_metadata_records_nothing() -> None:
    obj = created()
    new = edit(obj, lambda o: o["metadata"].update(resourceVersion="5", generation=2, uid="u"))
    assert update_(obj, new, "x")["metadata"]["managedFields"] == obj["metadata"]["managedFields"]


def test_updates_of_untracked_objects_stay_untracked() -> None:
    # fieldmanager_test.go TestNoTrackManagedFieldsForClientSideApply, TestResetManagedFieldsEmptyList
    obj = created()
    new = edit(obj, lambda o: (o["metadata"].update(managedFields=[], uid="nonempty")))
    reset = update_(obj, new, "kubectl-replace")
    assert "managedFields" not in reset["metadata"]
    assert "managedFields" not in update_(reset, edit(reset, lambda o: o["spec"].update(replicas=9)), "x")["metadata"]
    reset = update_(obj, edit(obj, lambda o: o["metadata"].update(managedFields=[{}], uid="u")), "x")
    assert "managedFields" not in reset["metadata"]


def test_managed_fields_from_the_request_replace_the_live_ones_except_through_a_subresource() -> None:
    obj = created()
    mine = [{"manager": "mine", "operation": "Apply", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:spec": {"f:paused": {}}}}]
    new = edit(obj, lambda o: o["metadata"].update(managedFields=mine))
    assert list(mf.managers_for_update(obj, new)) == ['{"manager":"mine","operation":"Apply"}']
    assert list(mf.managers_for_update(obj, new, subresource="status")) == [
        '{"manager":"kubectl-create","operation":"Update","apiVersion":"apps/v1"}']
    garbage = edit(obj, lambda o: o["metadata"].update(managedFields=[{"manager": "x"}]))
    assert list(mf.managers_for_update(obj, garbage)) == list(mf.managers_for_update(obj, None))


def test_update_managers_are_capped_into_ancient_changes() -> None:
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}}
    obj = update_(None, obj, "creator", now="2024-01-01T00:00:00Z", schema_=CONFIGMAP, api_version="v1")
    for i in range(12):
        new = edit(obj, lambda o: o["data"].update({f"k{i}": "v"}))
        obj = update_(obj, new, f"writer-{i:02d}", now=f"2024-01-01T00:{i + 1:02d}:00Z", schema_=CONFIGMAP,
                      api_version="v1")
    names = [e["manager"] for e in obj["metadata"]["managedFields"]]
    assert len(names) == 10
    assert names[0] == "ancient-changes" and names[1:] == [f"writer-{i:02d}" for i in range(3, 12)]
    ancient = obj["metadata"]["managedFields"][0]
    assert ancient["time"] == "2024-01-01T00:03:00Z"
    # creator (who owned the empty data map) and writers 0-2 went into the bucket, oldest first
    assert FieldSet.from_fields_v1(ancient["fieldsV1"]) == S(("data",), ("data", "k0"), ("data", "k1"), ("data", "k2"))


# --------------------------------------------------------------------------- Apply


def test_server_side_apply_creates_with_one_apply_entry() -> None:
    obj = apply_(None, NGINX)
    [entry] = obj["metadata"]["managedFields"]
    assert {k: v for k, v in entry.items() if k != "fieldsV1"} == {
        "manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1", "time": NOW, "fieldsType": "FieldsV1"}
    assert fields_json(entry) == NGINX_APPLIED_FIELDS
    assert obj["spec"]["template"]["spec"]["containers"][0]["ports"] == [{"containerPort": 80}]


def scale_via_main_resource(obj: dict[str, Any], replicas: int) -> dict[str, Any]:
    return update_(obj, edit(obj, lambda o: o["spec"].update(replicas=replicas)), "kubectl-scale")


def test_apply_conflicts_with_kubectl_scale() -> None:
    obj = scale_via_main_resource(apply_(None, NGINX), 5)
    with pytest.raises(mf.ApplyConflictError) as err:
        apply_(obj, NGINX, now=LATER)
    assert err.value.message == 'Apply failed with 1 conflict: conflict with "kubectl-scale" using apps/v1: .spec.replicas'
    assert [c.to_dict() for c in err.value.causes] == [{
        "reason": "FieldManagerConflict", "message": 'conflict with "kubectl-scale" using apps/v1',
        "field": ".spec.replicas"}]


def test_apply_with_force_takes_the_field() -> None:
    obj = scale_via_main_resource(apply_(None, NGINX), 5)
    out = apply_(obj, NGINX, force=True, now=LATER)
    assert out["spec"]["replicas"] == 3
    managers = by_manager(mf.decode_managed_fields(out["metadata"]["managedFields"]))
    assert set(managers) == {"kubectl"}  # kubectl-scale owned nothing else
    assert fields_json(managers["kubectl"]) == NGINX_APPLIED_FIELDS and managers["kubectl"]["time"] == LATER


def test_applying_the_live_value_shares_ownership_without_conflict() -> None:
    obj = scale_via_main_resource(apply_(None, NGINX), 5)
    config = edit(NGINX, lambda o: o["spec"].update(replicas=5))
    out = apply_(obj, config, now=LATER)
    managers = mf.decode_managed_fields(out["metadata"]["managedFields"])
    owners = [e.manager for e in managers.values() if e.fields.has(make_path("spec", "replicas"))]
    assert sorted(owners) == ["kubectl", "kubectl-scale"]
    # now the shared field can change through neither of them without a conflict
    with pytest.raises(mf.ApplyConflictError):
        apply_(out, NGINX, now=LATER)
    other = Y("{apiVersion: apps/v1, kind: Deployment, metadata: {name: nginx-deployment}, spec: {replicas: 9}}")
    with pytest.raises(mf.ApplyConflictError) as err:
        apply_(out, other, manager="hpa")
    assert err.value.message == (
        'Apply failed with 2 conflicts: conflicts with "kubectl":\n- .spec.replicas\n'
        'conflicts with "kubectl-scale" using apps/v1:\n- .spec.replicas')


def test_a_no_op_apply_returns_the_live_object_and_keeps_the_time() -> None:
    obj = apply_(None, NGINX)
    live = mf.decode_managed_fields(obj["metadata"]["managedFields"])
    out, managers = mf.apply(obj, NGINX, None, manager="kubectl", api_version="apps/v1", schema=DEPLOYMENT, now=LATER)
    assert out["spec"] == obj["spec"]
    assert entries(managers) == entries(live)  # time not bumped
    assert entries(managers)[0] is obj["metadata"]["managedFields"][0]  # nor re-encoded


def test_apply_prunes_what_the_applier_no_longer_applies() -> None:
    two = edit(NGINX, lambda o: (o["metadata"]["labels"].update(tier="web"),
                                 o["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "busybox"})))
    obj = apply_(None, two)
    out = apply_(obj, NGINX, now=LATER)  # the label and the sidecar are gone from the configuration
    assert out["metadata"]["labels"] == {"app": "nginx"}
    assert [c["name"] for c in out["spec"]["template"]["spec"]["containers"]] == ["nginx"]
    assert fields_json(out["metadata"]["managedFields"][0]) == NGINX_APPLIED_FIELDS


def test_apply_does_not_prune_what_another_manager_owns() -> None:
    two = edit(NGINX, lambda o: o["metadata"]["labels"].update(tier="web"))
    obj = apply_(None, two)
    obj = apply_(obj, Y("{apiVersion: apps/v1, kind: Deployment, metadata: {name: nginx-deployment, "
                        "labels: {tier: web}}}"), manager="labeler")
    out = apply_(obj, NGINX, now=LATER)
    assert out["metadata"]["labels"] == {"app": "nginx", "tier": "web"}  # labeler still owns tier


def test_apply_does_not_prune_fields_it_never_applied() -> None:
    obj = update_(apply_(None, NGINX), edit(apply_(None, NGINX), lambda o: o["spec"].update(paused=True)), "pauser")
    out = apply_(obj, edit(NGINX, lambda o: o["spec"].pop("replicas")), now=LATER)
    assert out["spec"]["paused"] is True and "replicas" not in out["spec"]


def test_apply_does_not_prune_fields_nobody_owns() -> None:
    # addBackDanglingItems: only what the applier owned last time may go, not unowned neighbours.
    obj = edit(apply_(None, NGINX), lambda o: o["spec"].update(paused=True))  # written untracked
    out = apply_(obj, edit(NGINX, lambda o: o["spec"].pop("replicas")), now=LATER)
    assert out["spec"]["paused"] is True and "replicas" not in out["spec"]


def test_dropping_the_last_applied_field_removes_the_entry() -> None:
    obj = apply_(None, NGINX)
    obj = apply_(obj, Y("{apiVersion: apps/v1, kind: Deployment, metadata: {name: nginx-deployment}, "
                        "spec: {paused: true}}"), manager="pauser")
    out = apply_(obj, Y("{apiVersion: apps/v1, kind: Deployment, metadata: {name: nginx-deployment}}"),
                 manager="pauser", now=LATER)
    assert "paused" not in out["spec"]
    assert [e["manager"] for e in out["metadata"]["managedFields"]] == ["kubectl"]


def test_finalizers_are_a_set_shared_between_appliers() -> None:
    meta = "{apiVersion: apps/v1, kind: Deployment, metadata: {name: nginx-deployment, finalizers: [%s]}}"
    obj = apply_(None, Y(meta % "a, b"), manager="one")
    obj = apply_(obj, Y(meta % "b, c"), manager="two")
    assert obj["metadata"]["finalizers"] == ["a", "b", "c"]
    obj = apply_(obj, Y(meta % "a"), manager="one", now=LATER)  # b stays: two still owns it
    assert obj["metadata"]["finalizers"] == ["a", "b", "c"]
    obj = apply_(obj, Y(meta % ""), manager="two", now=LATER)
    assert obj["metadata"]["finalizers"] == ["a"]
    one = by_manager(mf.decode_managed_fields(obj["metadata"]["managedFields"]))["one"]
    assert fields_json(one) == '{"f:metadata":{"f:finalizers":{"v:\\"a\\"":{}}}}'


def test_defaulted_key_fields_identify_items_and_conflict() -> None:
    # SMD merge/default_keys_test.go apply_missing_defaulted_key_with_conflict, on a Service
    base = "{apiVersion: v1, kind: Service, metadata: {name: s}, spec: {ports: [%s]}}"
    obj = apply_(None, Y(base % "{port: 80, protocol: TCP, name: foo}"), manager="apply-one", schema_=SERVICE,
                 api_version="v1")
    with pytest.raises(mf.ApplyConflictError) as err:
        apply_(obj, Y(base % "{port: 80, name: bar}"), manager="apply-two", schema_=SERVICE, api_version="v1")
    assert err.value.message == ('Apply failed with 1 conflict: conflict with "apply-one": '
                                 '.spec.ports[port=80,protocol="TCP"].name')
    shared = apply_(obj, Y(base % "{port: 80, name: foo}"), manager="apply-two", schema_=SERVICE, api_version="v1")
    assert shared["spec"]["ports"] == [{"port": 80, "protocol": "TCP", "name": "foo"}]
    two = by_manager(mf.decode_managed_fields(shared["metadata"]["managedFields"]))["apply-two"]
    assert fields_json(two) == ('{"f:spec":{"f:ports":{"k:{\\"port\\":80,\\"protocol\\":\\"TCP\\"}":'
                                '{".":{},"f:name":{},"f:port":{}}}}}')


def test_apply_to_an_object_without_managed_fields_records_before_first_apply() -> None:
    live = edit(KUBECTL_CREATE, lambda o: o["metadata"].update(uid="u1"))
    out = apply_(live, Y("{apiVersion: apps/v1, kind: Deployment, metadata: {name: nginx}, spec: {replicas: 2}}"),
                 manager="scaler", force=True)
    managers = out["metadata"]["managedFields"]
    assert [(e["manager"], e["operation"]) for e in managers] == [("scaler", "Apply"), ("before-first-apply", "Update")]
    assert fields_json(managers[1]) == KUBECTL_CREATE_FIELDS.replace('"f:replicas":{},', "")


def test_apply_through_the_status_subresource() -> None:
    obj = apply_(None, NGINX)
    reset = FieldSet.from_paths([make_path("spec"), make_path("metadata", "labels")])
    status = Y("{apiVersion: apps/v1, kind: Deployment, metadata: {name: nginx-deployment, labels: {x: y}}, "
               "spec: {replicas: 1}, status: {replicas: 3}}")
    out = apply_(obj, status, manager="controller", subresource="status", ignored=reset, force=True)
    managers = by_manager(mf.decode_managed_fields(out["metadata"]["managedFields"]))
    assert fields_json(managers["controller/status"]) == '{"f:status":{"f:replicas":{}}}'
    assert fields_json(managers["kubectl"]) == NGINX_APPLIED_FIELDS  # lost nothing


def test_apply_errors() -> None:
    with pytest.raises(BadRequestError, match="Incorrect version specified in apply patch. Specified patch "
                                              "version: apps/v1beta1, expected: apps/v1"):
        apply_(None, edit(NGINX, lambda o: o.update(apiVersion="apps/v1beta1")))
    with pytest.raises(BadRequestError, match="^invalid object type: apps/v1beta1, Kind=Deployment$"):
        apply_(None, edit(NGINX, lambda o: o.update(apiVersion="apps/v1beta1")), kind="Deployment")
    with pytest.raises(BadRequestError, match="^invalid object type: /, Kind=$"):
        apply_(None, {}, kind="Deployment")
    with pytest.raises(BadRequestError, match="^metadata.managedFields must be nil$"):
        apply_(None, edit(NGINX, lambda o: o["metadata"].update(managedFields=[{"manager": "test"}])))
    dup = edit(NGINX, lambda o: o["spec"]["template"]["spec"]["containers"].append({"name": "nginx"}))
    with pytest.raises(InternalError) as err:
        apply_(None, dup)
    assert err.value.message == ('failed to create typed patch object (default/nginx-deployment; apps/v1, '
                                 'Kind=Deployment): .spec.template.spec.containers: duplicate entries for key '
                                 '[name="nginx"]')


def test_apply_to_objects_with_duplicates_written_by_updates() -> None:
    # liggitt: "you can't SSA duplicate items, but you can SSA to objects which have duplicate items"
    obj = apply_(None, NGINX)
    dup = edit(obj, lambda o: o["spec"]["template"]["spec"]["containers"][0].update(
        env=[{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]))
    obj = update_(obj, dup, "editor")
    out = apply_(obj, edit(NGINX, lambda o: o["spec"].update(replicas=4)), now=LATER)
    assert out["spec"]["replicas"] == 4
    assert out["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]


# --------------------------------------------------------------------------- scale subresource

REPLICAS = {"apps/v1": make_path("spec", "replicas")}


def test_kubectl_scale_through_the_scale_subresource() -> None:
    obj = apply_(None, NGINX)
    parent = mf.decode_managed_fields(obj["metadata"]["managedFields"])
    scale_managers = mf.managers_to_scale(parent, REPLICAS)
    assert [(e.manager, e.api_version) for e in scale_managers.values()] == [("kubectl", "autoscaling/v1")]
    old_scale = {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "nginx-deployment"},
                 "spec": {"replicas": 3}, "status": {"replicas": 3}}
    new_scale = edit(old_scale, lambda o: o["spec"].update(replicas=5))
    after = mf.update(old_scale, new_scale, scale_managers, manager="kubectl-scale", api_version="autoscaling/v1",
                      subresource="scale", schema=SCALE, now=LATER, ignored=STATUS)
    managers = mf.managers_from_scale(parent, after, api_version="apps/v1", replicas_paths=REPLICAS)
    stored = mf.set_managed_fields(edit(obj, lambda o: o["spec"].update(replicas=5)), managers)
    by = by_manager(mf.decode_managed_fields(stored["metadata"]["managedFields"]))
    assert {k: v for k, v in by["kubectl-scale/scale"].items() if k != "fieldsV1"} == {
        "manager": "kubectl-scale", "operation": "Update", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
        "subresource": "scale"}  # no time, as ToParent leaves it
    assert fields_json(by["kubectl-scale/scale"]) == '{"f:spec":{"f:replicas":{}}}'
    assert not FieldSet.from_fields_v1(by["kubectl"]["fieldsV1"]).has(make_path("spec", "replicas"))
    with pytest.raises(mf.ApplyConflictError) as err:
        apply_(stored, NGINX, now=LATER)
    assert err.value.message == ('Apply failed with 1 conflict: conflict with "kubectl-scale" with subresource '
                                 '"scale" using apps/v1: .spec.replicas')


# --------------------------------------------------------------------------- client-side -> server-side


def client_side_applied(last_applied: Any, original: Any, manager: str = "kubectl-client-side-apply") -> dict[str, Any]:
    """What `kubectl apply` (client-side) leaves: the object and its annotation, written by an update."""
    obj = json.loads(json.dumps(original))
    annotation = last_applied if isinstance(last_applied, str) else json.dumps(last_applied) + "\n"
    obj["metadata"].setdefault("annotations", {})[mf.LAST_APPLIED_ANNOTATION] = annotation
    return update_(None, obj, manager, now=NOW)


CSA_LAST = Y("""
apiVersion: apps/v1
kind: Deployment
metadata: {name: my-deployment}
spec:
  replicas: 3
  selector: {matchLabels: {app: my-app}}
  template:
    metadata: {labels: {app: my-app}}
    spec:
      containers: [{name: my-c, image: my-image-v1}, {name: my-c2, image: my-image2}]
""")
CSA_ORIGINAL = Y("""
apiVersion: apps/v1
kind: Deployment
metadata: {name: my-deployment, labels: {app: my-app}}
spec:
  replicas: 100
  selector: {matchLabels: {app: my-app}}
  template:
    metadata: {labels: {app: my-app}}
    spec:
      containers: [{name: my-c, image: my-image-v2}]
""")
CSA_APPLIED = Y("""
apiVersion: apps/v1
kind: Deployment
metadata: {name: my-deployment, labels: {app: my-new-label}}
spec:
  replicas: 333
  selector: {matchLabels: {app: my-new-label}}
  template:
    metadata: {labels: {app: my-new-label}}
    spec:
      containers: [{name: my-c, image: my-image-new}]
""")
CSA_MANAGER = '{"manager":"test_client_side_apply","operation":"Update","apiVersion":"apps/v1"}'


def test_kubectl_takes_over_client_side_apply_fields_that_match_the_annotation() -> None:
    # lastappliedmanager_test.go TestApplyUsingLastAppliedAnnotation, first case: only the fields
    # whose live value differs from last-applied (or that last-applied lacks) conflict.
    obj = client_side_applied(CSA_LAST, CSA_ORIGINAL, "test_client_side_apply")
    with pytest.raises(mf.ApplyConflictError) as err:
        apply_(obj, CSA_APPLIED, now=LATER)
    expected = [mf.Conflict(CSA_MANAGER, p) for p in (
        make_path("metadata", "labels", "app"), make_path("spec", "replicas"),
        make_path("spec", "template", "spec", "containers", {"name": "my-c"}, "image"))]
    assert err.value.conflicts == expected
    assert err.value.message == mf.ApplyConflictError(expected).message == (
        'Apply failed with 3 conflicts: conflicts with "test_client_side_apply" using apps/v1:\n'
        '- .metadata.labels.app\n- .spec.replicas\n- .spec.template.spec.containers[name="my-c"].image')
    out = apply_(obj, CSA_APPLIED, force=True, now=LATER)
    assert out["spec"]["replicas"] == 333


def test_other_managers_get_every_conflict() -> None:
    original = edit(CSA_ORIGINAL, lambda o: o["spec"]["template"]["spec"]["containers"][0].update(image="my-image"))
    obj = client_side_applied(original, original, "test_client_side_apply")
    applied = edit(original, lambda o: (o["metadata"]["labels"].update(app="my-new-label"), o["spec"].update(replicas=3),
                                        o["spec"]["template"]["spec"]["containers"][0].update(image="my-new-image")))
    with pytest.raises(mf.ApplyConflictError) as err:
        apply_(obj, applied, manager="not_kubectl")
    assert [path_string(c.path) for c in err.value.conflicts] == [
        ".metadata.labels.app", ".spec.replicas", '.spec.template.spec.containers[name="my-c"].image']
    out = apply_(obj, applied, manager="kubectl")  # the same apply by kubectl upgrades without conflicts
    assert out["spec"]["replicas"] == 3
    kubectl = by_manager(mf.decode_managed_fields(out["metadata"]["managedFields"]))["kubectl"]
    assert FieldSet.from_fields_v1(kubectl["fieldsV1"]).has(make_path("spec", "replicas"))


SMALL = "{apiVersion: apps/v1, kind: Deployment, metadata: {name: my-deployment}, spec: {replicas: %d}}"


@pytest.mark.parametrize("last_applied", [
    Y("{apiVersion: extensions/v1beta1, kind: Deployment, metadata: {name: my-deployment}, spec: {replicas: 3}}"),
    Y("{apiVerison: foo, kind: bar, spec: expect conflict due to invalid object}"),
    "",
    "not json",
    Y("{apiVersion: apps/v1, metadata: {name: my-deployment}, spec: {replicas: 3}}"),  # no kind
])
def test_unusable_last_applied_annotations_leave_the_conflicts(last_applied: Any) -> None:
    obj = client_side_applied(last_applied, Y(SMALL % 3), "test_client_side_apply")
    with pytest.raises(mf.ApplyConflictError) as err:
        apply_(obj, Y(SMALL % 100))
    assert [path_string(c.path) for c in err.value.conflicts] == [".spec.replicas"]


def test_kubectl_rewrites_the_last_applied_annotation() -> None:
    obj = client_side_applied(CSA_ORIGINAL, CSA_ORIGINAL)
    applied = edit(CSA_ORIGINAL, lambda o: o["spec"].update(replicas=8))
    out = apply_(obj, applied)
    annotation = out["metadata"]["annotations"][mf.LAST_APPLIED_ANNOTATION]
    assert annotation == (
        '{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"labels":{"app":"my-app"},"name":"my-deployment"},'
        '"spec":{"replicas":8,"selector":{"matchLabels":{"app":"my-app"}},"template":{"metadata":{"labels":'
        '{"app":"my-app"}},"spec":{"containers":[{"image":"my-image-v2","name":"my-c"}]}}}}\n')
    # only for kubectl, and only when the annotation exists
    assert apply_(obj, applied, manager="other", force=True)["metadata"]["annotations"][
        mf.LAST_APPLIED_ANNOTATION] == json.dumps(CSA_ORIGINAL) + "\n"
    assert "annotations" not in apply_(None, applied)["metadata"]


def test_invalid_last_applied_is_fixed_by_a_forced_kubectl_apply() -> None:
    # fieldmanager_test.go TestServerSideApplyWithInvalidLastApplied
    original = Y("{apiVersion: apps/v1, kind: Deployment, metadata: {name: my-deployment, labels: {app: my-app-v1}}, "
                 "spec: {replicas: 1}}")
    obj = client_side_applied("invalid-object", original, "kubectl-client-side-apply-test")
    applied = Y("{apiVersion: apps/v1, kind: Deployment, metadata: {name: my-deployment, labels: {app: my-app-v2}}, "
                "spec: {replicas: 100}}")
    with pytest.raises(mf.ApplyConflictError):
        apply_(obj, applied)
    out = apply_(obj, applied, force=True)
    assert "my-app-v2" in out["metadata"]["annotations"][mf.LAST_APPLIED_ANNOTATION]


def test_oversized_last_applied_is_dropped() -> None:
    big = edit(CSA_ORIGINAL, lambda o: o["metadata"].setdefault("annotations", {}).update(big="x" * 140_000))
    obj = client_side_applied(CSA_ORIGINAL, big)
    out = apply_(obj, edit(big, lambda o: o["spec"].update(replicas=8)))
    assert mf.LAST_APPLIED_ANNOTATION not in out["metadata"]["annotations"]
    assert out["metadata"]["annotations"]["big"] == "x" * 140_000


# --------------------------------------------------------------------------- no schema (custom resources)


def test_custom_resource_without_schema_is_deduced() -> None:
    cr = Y("{apiVersion: example.com/v1, kind: Foo, metadata: {name: f}, spec: {data: {key1: val1}, list: [1, 2]}}")
    obj = apply_(None, cr, manager="manager-one", schema_=None, api_version="example.com/v1")
    assert fields_json(obj["metadata"]["managedFields"][0]) == (
        '{"f:spec":{".":{},"f:data":{".":{},"f:key1":{}},"f:list":{}}}')
    with pytest.raises(mf.ApplyConflictError) as err:
        apply_(obj, edit(cr, lambda o: o["spec"].update(list=[3])), manager="manager-two", schema_=None,
               api_version="example.com/v1")
    assert err.value.message == 'Apply failed with 1 conflict: conflict with "manager-one": .spec.list'
