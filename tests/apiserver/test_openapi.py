"""Tests for apiserver.openapi: the v3 and v2 documents kubectl reads, built from fake kind descriptors.

Pure tests build the documents for Pod, Namespace, Deployment and a CRD and check what kubectl
relies on: GVK tags, patch extensions, PATCH content types, ``fieldValidation``, resolvable
references, descriptions, content hashes, the swagger 2.0 shape and its gnostic protobuf (read
back with a minimal protobuf wire reader). The ``e2e`` tests serve the documents from a
throwaway HTTP app and run the real ``kubectl`` (explain over v3 and over v2 protobuf; apply
computing a strategic merge patch from the v3 schema, a JSON merge patch for the CRD, and
reporting an unserved kind while creating the others).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from apiserver.openapi import (ATOMIC, MERGED_SET, RETAIN_KEYS, Facts, OpenAPI, build_components, keyed,
                               kind_schema_name, schema_for, swagger_v2, unknown_facts, wants_protobuf)
from apiserver.openapi import names
from apiserver.openapi.components import iter_refs
from apiserver.openapi.v2 import v2_schema
from apiserver.openapi.v2proto import encode
from machinery.schemaview import find_kind_schema

VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class Kind:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True
    subresources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = VERBS
    model: str | None = None
    crd_schema: dict[str, Any] | None = field(default=None, hash=False)
    strategic_merge: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


CRONTAB_SCHEMA: dict[str, Any] = {"type": "object", "description": "A cron job of the example.", "properties": {
    "spec": {"type": "object", "description": "What to run and when.", "properties": {
        "cronSpec": {"type": "string", "description": "The schedule, in cron format."},
        "replicas": {"type": "integer", "description": "How many to run."},
        "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["port"],
                  "items": {"type": "object", "required": ["port"],
                            "properties": {"port": {"type": "integer"}, "name": {"type": "string"}}}}}},
    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}

POD = Kind("", "v1", "Pod", "pods", subresources=("status", "binding", "eviction", "log", "exec"), model="V1Pod")
NAMESPACE = Kind("", "v1", "Namespace", "namespaces", namespaced=False, subresources=("status", "finalize"),
                 model="V1Namespace")
DEPLOYMENT = Kind("apps", "v1", "Deployment", "deployments", subresources=("status", "scale"), model="V1Deployment")
REPLICASET = Kind("apps", "v1", "ReplicaSet", "replicasets", subresources=("status", "scale"), model="V1ReplicaSet")
CRONTAB = Kind("stable.example.com", "v1", "CronTab", "crontabs", subresources=("status", "scale"),
               crd_schema=CRONTAB_SCHEMA, strategic_merge=False)
KINDS = [NAMESPACE, POD, DEPLOYMENT, CRONTAB]

FACTS = {
    "V1ObjectMeta": {"finalizers": MERGED_SET, "ownerReferences": keyed("uid")},
    "V1LabelSelector": {"": ATOMIC, "matchExpressions": Facts(list_type="atomic")},
    "V1PodSpec": {"containers": keyed("name"), "volumes": keyed("name", retain_keys=True),
                  "nodeSelector": Facts(map_type="atomic")},
    "V1Container": {"ports": keyed("containerPort", "protocol"), "env": keyed("name"),
                    "command": Facts(list_type="atomic")},
    "V1ContainerPort": {"protocol": Facts(default="TCP")},
    "V1DeploymentSpec": {"strategy": RETAIN_KEYS},
}


@pytest.fixture(scope="module")
def api() -> OpenAPI:
    return OpenAPI(KINDS, FACTS)


def doc(api: OpenAPI, path: str) -> dict[str, Any]:
    data = api.v3.document(path)
    assert data is not None
    return json.loads(data)


def operations(d: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in d["paths"].items():
        for method, op in item.items():
            if method != "parameters":
                yield path, method, op


# ------------------------------------------------------------------------------ facts and names
def test_keyed_and_validation() -> None:
    assert keyed("containerPort", "protocol").list_extensions() == {
        "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["containerPort", "protocol"],
        "x-kubernetes-patch-merge-key": "containerPort", "x-kubernetes-patch-strategy": "merge"}
    assert keyed("name", retain_keys=True).patch_strategy == "merge,retainKeys"
    assert ATOMIC.list_extensions() == {"x-kubernetes-list-type": "atomic"}
    assert ATOMIC.object_extensions() == {"x-kubernetes-map-type": "atomic"}
    assert not Facts().has_default and Facts(default=None).has_default
    with pytest.raises(ValueError):
        Facts(list_type="map")
    with pytest.raises(ValueError):
        Facts(merge_key="name")


def test_unknown_facts_names_typos() -> None:
    assert unknown_facts(FACTS) == []
    assert unknown_facts({"V1PodSpec": {"containres": keyed("name"), "": ATOMIC}, "V1Nope": {}}) == [
        "V1PodSpec.containres", "V1Nope"]


@pytest.mark.parametrize(("model", "context", "expected"), [
    ("V1Deployment", "apps", "io.k8s.api.apps.v1.Deployment"),
    ("V1PodSpec", "apps", "io.k8s.api.core.v1.PodSpec"),
    ("V1ObjectMeta", "apps", "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"),
    ("V1LabelSelector", "apps", "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"),
    ("V1Scale", "apps", "io.k8s.api.autoscaling.v1.Scale"),
    ("V1Eviction", "core", "io.k8s.api.policy.v1.Eviction"),
    ("CoreV1Event", "core", "io.k8s.api.core.v1.Event"),
    ("EventsV1Event", "events", "io.k8s.api.events.v1.Event"),
    ("V1IngressSpec", "networking", "io.k8s.api.networking.v1.IngressSpec"),
    ("V1TypedLocalObjectReference", "networking", "io.k8s.api.core.v1.TypedLocalObjectReference"),
    ("V1CustomResourceDefinitionSpec", "apiextensions",
     "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionSpec"),
    ("V1beta1CronJob", "batch", "io.k8s.api.batch.v1beta1.CronJob"),
])
def test_model_schema_names(model: str, context: str, expected: str) -> None:
    assert names.model_schema_name(model, context) == expected


def test_kind_names_and_operation_prefixes() -> None:
    assert kind_schema_name(DEPLOYMENT) == "io.k8s.api.apps.v1.Deployment"
    assert kind_schema_name(CRONTAB) == "com.example.stable.v1.CronTab"
    assert names.op_prefix("rbac.authorization.k8s.io", "v1") == "RbacAuthorizationV1"
    assert names.op_prefix("", "v1") == "CoreV1"
    assert names.op_prefix("stable.example.com", "v1beta1") == "StableExampleComV1beta1"
    assert names.tag("apps", "v1") == "apps_v1"


# ------------------------------------------------------------------------------ v3 documents
def test_index_lists_group_versions_with_hashes(api: OpenAPI) -> None:
    index = api.v3.index()["paths"]
    assert set(index) == {"api/v1", "apis/apps/v1", "apis/stable.example.com/v1"}
    for path, entry in index.items():
        assert entry["serverRelativeURL"] == f"/openapi/v3/{path}?hash={api.v3.etag(path)}"
        assert len(api.v3.etag(path) or "") == 128
    assert api.v3.document("apis/batch/v1") is None
    assert api.v3.document("/apis/apps/v1/") == api.v3.document("apis/apps/v1")


def test_operations_are_named_and_tagged_like_kubernetes(api: OpenAPI) -> None:
    apps = doc(api, "apis/apps/v1")
    ops = {op["operationId"]: (path, method, op) for path, method, op in operations(apps)}
    base = "/apis/apps/v1/namespaces/{namespace}/deployments"
    assert ops["listAppsV1NamespacedDeployment"][:2] == (base, "get")
    assert ops["createAppsV1NamespacedDeployment"][:2] == (base, "post")
    assert ops["deleteAppsV1CollectionNamespacedDeployment"][:2] == (base, "delete")
    assert ops["readAppsV1NamespacedDeployment"][:2] == (base + "/{name}", "get")
    assert ops["patchAppsV1NamespacedDeploymentScale"][:2] == (base + "/{name}/scale", "patch")
    assert ops["replaceAppsV1NamespacedDeploymentStatus"][:2] == (base + "/{name}/status", "put")
    assert ops["listAppsV1DeploymentForAllNamespaces"][:2] == ("/apis/apps/v1/deployments", "get")
    assert ops["getAppsV1APIResources"][:2] == ("/apis/apps/v1/", "get")
    assert ops["patchAppsV1NamespacedDeploymentScale"][2]["x-kubernetes-group-version-kind"] == {
        "group": "autoscaling", "kind": "Scale", "version": "v1"}
    assert ops["listAppsV1NamespacedDeployment"][2]["x-kubernetes-action"] == "list"
    assert ops["deleteAppsV1CollectionNamespacedDeployment"][2]["x-kubernetes-action"] == "deletecollection"
    list_params = {p["name"] for p in ops["listAppsV1NamespacedDeployment"][2]["parameters"]}
    assert {"labelSelector", "fieldSelector", "limit", "continue", "resourceVersion", "resourceVersionMatch",
            "timeoutSeconds", "watch", "allowWatchBookmarks"} <= list_params
    delete_params = {p["name"] for p in ops["deleteAppsV1NamespacedDeployment"][2]["parameters"]}
    assert {"dryRun", "gracePeriodSeconds", "propagationPolicy"} <= delete_params

    core = doc(api, "api/v1")
    core_ops = {op["operationId"]: (path, method) for path, method, op in operations(core)}
    assert core_ops["createCoreV1NamespacedPodBinding"] == ("/api/v1/namespaces/{namespace}/pods/{name}/binding", "post")
    assert core_ops["createCoreV1NamespacedPodEviction"][1] == "post"
    assert core_ops["readCoreV1NamespacedPodLog"][1] == "get"
    assert core_ops["connectCoreV1PostNamespacedPodExec"] == ("/api/v1/namespaces/{namespace}/pods/{name}/exec", "post")
    assert core_ops["replaceCoreV1NamespaceFinalize"] == ("/api/v1/namespaces/{name}/finalize", "put")
    assert core_ops["listCoreV1Namespace"] == ("/api/v1/namespaces", "get")
    assert "listCoreV1NamespaceForAllNamespaces" not in core_ops


def test_every_served_kind_is_tagged_and_every_patch_takes_field_validation(api: OpenAPI) -> None:
    for path in api.v3.paths():
        d = doc(api, path)
        schemas = d["components"]["schemas"]
        tagged = [tag for node in schemas.values() for tag in node.get("x-kubernetes-group-version-kind", [])]
        for kind in KINDS:
            if names.gv_path(kind.group, kind.version) == path:
                assert names.gvk(kind.group, kind.version, kind.kind) in tagged
                assert names.gvk(kind.group, kind.version, kind.kind + "List") in tagged
        for _, method, op in operations(d):
            if "x-kubernetes-group-version-kind" in op:
                assert isinstance(op["x-kubernetes-group-version-kind"], dict)  # single object on operations
            if method == "patch" and op.get("x-kubernetes-action") == "patch":
                params = {p["name"]: p for p in op["parameters"]}
                assert params["fieldValidation"]["in"] == "query"
                assert "force" in params and "fieldManager" in params and "dryRun" in params


def test_strategic_merge_patch_is_offered_only_to_builtin_kinds(api: OpenAPI) -> None:
    def patch_types(path: str, kind: str) -> set[str]:
        found = [op for _, method, op in operations(doc(api, path)) if method == "patch"
                 and op["x-kubernetes-group-version-kind"]["kind"] == kind]
        assert found
        types = {frozenset(op["requestBody"]["content"]) for op in found}
        assert len(types) == 1
        return set(next(iter(types)))

    assert patch_types("apis/apps/v1", "Deployment") == {
        "application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json",
        "application/apply-patch+yaml"}
    assert patch_types("apis/stable.example.com/v1", "CronTab") == {
        "application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml"}


def test_every_reference_resolves_and_fields_are_described(api: OpenAPI) -> None:
    for path in api.v3.paths():
        d = doc(api, path)
        schemas = d["components"]["schemas"]
        for ref in iter_refs(d):
            assert ref in schemas, f"{path}: dangling $ref {ref}"
        for name, node in schemas.items():
            if name.startswith("io.k8s.api."):
                assert node.get("description"), name
                for field_name, prop in (node.get("properties") or {}).items():
                    assert prop.get("description"), f"{name}.{field_name}"


def test_schemas_carry_kubernetes_shapes_and_patch_extensions(api: OpenAPI) -> None:
    s = doc(api, "apis/apps/v1")["components"]["schemas"]
    containers = s["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["type"] == "array"
    assert containers["items"] == {"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["x-kubernetes-patch-strategy"] == "merge"
    assert containers["x-kubernetes-list-type"] == "map" and containers["x-kubernetes-list-map-keys"] == ["name"]
    assert s["io.k8s.api.core.v1.PodSpec"]["properties"]["volumes"]["x-kubernetes-patch-strategy"] == "merge,retainKeys"
    assert s["io.k8s.api.core.v1.PodSpec"]["properties"]["nodeSelector"]["x-kubernetes-map-type"] == "atomic"
    ports = s["io.k8s.api.core.v1.Container"]["properties"]["ports"]
    assert ports["x-kubernetes-list-map-keys"] == ["containerPort", "protocol"]
    assert s["io.k8s.api.core.v1.ContainerPort"]["properties"]["protocol"]["default"] == "TCP"
    assert s["io.k8s.api.core.v1.ContainerPort"]["required"] == ["containerPort"]
    assert s["io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"]["x-kubernetes-map-type"] == "atomic"
    strategy = s["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"]
    assert strategy["allOf"] == [{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentStrategy"}]
    assert strategy["x-kubernetes-patch-strategy"] == "retainKeys" and strategy["description"]
    assert set(s["io.k8s.api.apps.v1.DeploymentSpec"]["required"]) == {"selector", "template"}
    max_surge = s["io.k8s.api.apps.v1.RollingUpdateDeployment"]["properties"]["maxSurge"]
    assert max_surge["allOf"][0]["$ref"].endswith("io.k8s.apimachinery.pkg.util.intstr.IntOrString")
    assert s["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["format"] == "int-or-string"
    limits = s["io.k8s.api.core.v1.ResourceRequirements"]["properties"]["limits"]
    assert limits["additionalProperties"]["$ref"].endswith("io.k8s.apimachinery.pkg.api.resource.Quantity")
    created = s["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]["creationTimestamp"]
    assert created["allOf"][0]["$ref"].endswith("meta.v1.Time")
    assert s["io.k8s.apimachinery.pkg.apis.meta.v1.Time"].items() >= {"type": "string", "format": "date-time"}.items()
    assert s["io.k8s.api.autoscaling.v1.Scale"]["x-kubernetes-group-version-kind"] == [
        {"group": "autoscaling", "kind": "Scale", "version": "v1"}]
    assert s["io.k8s.api.apps.v1.DeploymentList"]["required"] == ["items"]
    delete_tags = s["io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"]["x-kubernetes-group-version-kind"]
    assert {"group": "apps", "kind": "DeleteOptions", "version": "v1"} in delete_tags


def test_custom_resource_schema_is_wrapped_like_the_crd_builder(api: OpenAPI) -> None:
    s = doc(api, "apis/stable.example.com/v1")["components"]["schemas"]
    crontab = s["com.example.stable.v1.CronTab"]
    assert crontab["x-kubernetes-group-version-kind"] == [{"group": "stable.example.com", "kind": "CronTab",
                                                           "version": "v1"}]
    assert crontab["properties"]["metadata"]["allOf"][0]["$ref"].endswith("meta.v1.ObjectMeta")
    assert crontab["properties"]["spec"]["properties"]["ports"]["x-kubernetes-list-map-keys"] == ["port"]
    assert crontab["properties"]["apiVersion"]["type"] == "string"
    assert s["com.example.stable.v1.CronTabList"]["properties"]["items"]["items"]["$ref"].endswith("v1.CronTab")
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in s and "io.k8s.api.autoscaling.v1.Scale" in s
    assert CRONTAB_SCHEMA["properties"].keys() == {"spec", "status"}  # the input is not mutated
    frozen = replace(CRONTAB, crd_schema=MappingProxyType({"type": "object", "properties": MappingProxyType(
        {"spec": MappingProxyType({"type": "object"})})}))  # type: ignore[arg-type]
    assert build_components([frozen], {})["com.example.stable.v1.CronTab"]["properties"]["spec"] == {"type": "object"}
    schemaless = replace(CRONTAB, kind="Loose", plural="looses", crd_schema=None)
    loose = build_components([schemaless], {})["com.example.stable.v1.Loose"]
    assert loose["x-kubernetes-preserve-unknown-fields"] is True


def test_schema_for_feeds_schemaview(api: OpenAPI) -> None:
    pod_spec = api.schema_for(DEPLOYMENT).field("spec").field("template").field("spec")
    containers = pod_spec.field("containers")
    assert containers.shape == "list" and containers.merges_list and containers.patch_merge_key == "name"
    assert containers.list_type == "map" and containers.list_map_keys == ("name",)
    ports = containers.items().field("ports")
    assert ports.list_map_keys == ("containerPort", "protocol")
    assert ports.items().field("protocol").default == "TCP"
    assert pod_spec.field("volumes").retains_keys
    assert api.schema_for(DEPLOYMENT).field("spec").field("selector").map_type == "atomic"
    assert api.schema_for(DEPLOYMENT).field("spec").field("strategy").retains_keys
    max_surge = api.schema_for(DEPLOYMENT).field("spec").field("strategy").field("rollingUpdate").field("maxSurge")
    assert max_surge.shape == "scalar"
    assert pod_spec.field("nodeSelector").shape == "map" and pod_spec.field("nodeSelector").map_type == "atomic"
    crontab = schema_for(CRONTAB, FACTS)
    assert crontab.field("spec").field("ports").list_map_keys == ("port",)
    assert crontab.field("metadata").field("labels").shape == "map"
    found = find_kind_schema(doc(api, "apis/apps/v1"), "apps", "v1", "Deployment")
    assert found is not None and found.field("spec").field("replicas").shape == "scalar"


def test_hashes_change_with_the_served_kinds_only() -> None:
    api = OpenAPI(KINDS, FACTS)
    before = {p: api.v3.etag(p) for p in api.v3.paths()}
    v2_before = api.v2.etag()
    assert OpenAPI(KINDS, FACTS).v3.etag("apis/apps/v1") == before["apis/apps/v1"]  # deterministic

    api.update([*KINDS, REPLICASET])
    assert api.v3.etag("apis/apps/v1") != before["apis/apps/v1"]
    assert api.v3.etag("api/v1") == before["api/v1"]
    assert api.v2.etag() != v2_before
    assert b"listAppsV1NamespacedReplicaSet" in (api.v3.document("apis/apps/v1") or b"")

    changed_schema = json.loads(json.dumps(CRONTAB_SCHEMA))
    changed_schema["properties"]["spec"]["properties"]["suspend"] = {"type": "boolean"}
    api.update([NAMESPACE, POD, DEPLOYMENT, replace(CRONTAB, crd_schema=changed_schema)])
    assert api.v3.etag("apis/stable.example.com/v1") != before["apis/stable.example.com/v1"]
    assert api.v3.etag("apis/apps/v1") == before["apis/apps/v1"]
    assert b"suspend" in (api.v3.document("apis/stable.example.com/v1") or b"")

    api.update([NAMESPACE, POD, DEPLOYMENT])
    assert "apis/stable.example.com/v1" not in api.v3.index()["paths"]
    assert api.v3.document("apis/stable.example.com/v1") is None
    assert b"CronTab" not in api.v2.json()


# ------------------------------------------------------------------------------ v2
def test_swagger_v2_shape(api: OpenAPI) -> None:
    d = json.loads(api.v2.json())
    assert d["swagger"] == "2.0"
    text = json.dumps(d)
    assert "#/components/" not in text and '"allOf"' not in text and '"oneOf"' not in text
    for ref in iter_refs(d):
        assert ref in d["definitions"], ref
    defs = d["definitions"]
    assert defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"].items() >= {
        "type": "string", "format": "int-or-string"}.items()
    assert defs["io.k8s.apimachinery.pkg.api.resource.Quantity"]["type"] == "string"
    strategy = defs["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"]
    assert strategy["$ref"] == "#/definitions/io.k8s.api.apps.v1.DeploymentStrategy"
    assert strategy["x-kubernetes-patch-strategy"] == "retainKeys"
    assert defs["io.k8s.api.apps.v1.Deployment"]["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "kind": "Deployment", "version": "v1"}]
    patch = d["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert "application/strategic-merge-patch+json" in patch["consumes"]
    assert {"name": "body", "in": "body", "required": True,
            "schema": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"}} in patch["parameters"]
    assert {"name": "fieldValidation", "in": "query", "type": "string"}.items() <= next(
        p for p in patch["parameters"] if p["name"] == "fieldValidation").items()
    assert patch["responses"]["200"]["schema"] == {"$ref": "#/definitions/io.k8s.api.apps.v1.Deployment"}
    assert patch["x-kubernetes-group-version-kind"] == {"group": "apps", "kind": "Deployment", "version": "v1"}
    crd_patch = d["paths"]["/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}"]["patch"]
    assert "application/strategic-merge-patch+json" not in crd_patch["consumes"]
    for node in _all_schemas(d["definitions"]):
        if node.get("type") == "array":
            assert isinstance(node.get("items"), dict)
        if "$ref" in node:
            assert "type" not in node and "properties" not in node
    assert swagger_v2([DEPLOYMENT], FACTS)["paths"].keys() <= d["paths"].keys()


def _all_schemas(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if "type" in node or "$ref" in node or "properties" in node:
            yield node
        for key, value in node.items():
            if key not in ("enum", "default", "example") and not key.startswith("x-"):
                yield from _all_schemas(value)


def test_v2_schema_drops_what_swagger_cannot_hold() -> None:
    converted = v2_schema({"type": "object", "properties": {
        "a": {"type": "string", "nullable": True},
        "b": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
        "c": {"type": "array"},
        "d": {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {"x": {}}},
        "e": {"type": ["string", "null"]},
        "$ref": {"type": "string"}}})
    props = converted["properties"]
    assert props["a"] == {"type": "string"}
    assert props["b"] == {"x-kubernetes-int-or-string": True}
    assert props["c"] == {"type": "array", "items": {}}
    assert props["d"] == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    assert props["e"] == {}
    assert props["$ref"] == {"type": "string"}


# ------------------------------------------------------------------------------ v2 protobuf
def _fields(data: bytes) -> dict[int, list[Any]]:
    """A minimal protobuf wire reader: field number -> values (bytes for length-delimited)."""
    out: dict[int, list[Any]] = {}
    i = 0

    def varint() -> int:
        nonlocal i
        shift = value = 0
        while True:
            b = data[i]
            i += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return value

    while i < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            value: Any = varint()
        elif wire == 1:
            value, i = data[i:i + 8], i + 8
        elif wire == 2:
            length = varint()
            value, i = data[i:i + length], i + length
        elif wire == 5:
            value, i = data[i:i + 4], i + 4
        else:
            raise AssertionError(f"bad wire type {wire}")
        out.setdefault(number, []).append(value)
    return out


def _named(data: bytes) -> dict[str, bytes]:
    """A repeated Named* message field's entries: name -> value bytes."""
    f = _fields(data)
    return {f[1][0].decode(): f[2][0]}


def _extensions(entries: list[bytes]) -> dict[str, Any]:
    out = {}
    for entry in entries:
        named = _fields(entry)
        out[named[1][0].decode()] = json.loads(_fields(named[2][0])[2][0])  # NamedAny -> Any.yaml
    return out


def test_v2_protobuf_decodes_to_the_document(api: OpenAPI) -> None:
    assert wants_protobuf("application/com.github.proto-openapi.spec.v2@v1.0+protobuf")
    assert not wants_protobuf("application/json")
    top = _fields(api.v2.protobuf())
    assert top[1] == [b"2.0"]
    assert _fields(top[2][0])[1] == [b"Kubernetes"]
    paths: dict[str, bytes] = {}
    for entry in _fields(top[8][0])[2]:
        paths.update(_named(entry))
    assert set(paths) == set(json.loads(api.v2.json())["paths"])
    item = _fields(paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"])
    patch = _fields(item[8][0])  # PathItem.patch
    assert patch[5] == [b"patchAppsV1NamespacedDeployment"]
    assert b"application/strategic-merge-patch+json" in patch[7]  # consumes
    assert _extensions(patch[13]) == {"x-kubernetes-action": "patch", "x-kubernetes-group-version-kind": {
        "group": "apps", "kind": "Deployment", "version": "v1"}}
    query_names = []
    for param in patch[8]:  # ParametersItem -> Parameter -> NonBodyParameter -> QueryParameterSubSchema
        parameter = _fields(_fields(param)[1][0])
        if 2 in parameter:
            query = _fields(_fields(parameter[2][0])[3][0])
            assert query[2] == [b"query"]
            query_names.append(query[4][0].decode())
        else:
            body = _fields(parameter[1][0])
            assert body[2] == [b"body"] and body[4] == [1]
            assert _fields(body[5][0])[1] == [b"#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"]
    assert "fieldValidation" in query_names
    responses = _fields(patch[9][0])
    codes = {_fields(r)[1][0].decode(): _fields(r)[2][0] for r in responses[1]}
    response = _fields(_fields(codes["200"])[1][0])
    assert _fields(_fields(response[2][0])[1][0])[1] == [b"#/definitions/io.k8s.api.apps.v1.Deployment"]
    # path-level parameters: the namespace path parameter
    path_params = [_fields(_fields(_fields(p)[1][0])[2][0]) for p in item[9]]
    namespace = next(_fields(p[4][0]) for p in path_params if 4 in p and _fields(p[4][0])[4] == [b"namespace"])
    assert namespace[1] == [1] and namespace[2] == [b"path"] and namespace[5] == [b"string"]

    definitions: dict[str, bytes] = {}
    for entry in _fields(top[9][0])[1]:
        definitions.update(_named(entry))
    deployment = _fields(definitions["io.k8s.api.apps.v1.Deployment"])
    assert _extensions(deployment[31])["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "kind": "Deployment", "version": "v1"}]
    assert _fields(deployment[22][0])[1] == [b"object"]
    props: dict[str, bytes] = {}
    for entry in _fields(deployment[25][0])[1]:
        props.update(_named(entry))
    assert set(props) == {"apiVersion", "kind", "metadata", "spec", "status"}
    spec = _fields(props["spec"])
    assert spec[1] == [b"#/definitions/io.k8s.api.apps.v1.DeploymentSpec"] and spec[4]
    pod_spec_props: dict[str, bytes] = {}
    for entry in _fields(_fields(definitions["io.k8s.api.core.v1.PodSpec"])[25][0])[1]:
        pod_spec_props.update(_named(entry))
    containers = _fields(pod_spec_props["containers"])
    assert _extensions(containers[31])["x-kubernetes-patch-merge-key"] == "name"
    assert _fields(_fields(containers[23][0])[1][0])[1] == [b"#/definitions/io.k8s.api.core.v1.Container"]
    port_props: dict[str, bytes] = {}
    for entry in _fields(_fields(definitions["io.k8s.api.core.v1.ContainerPort"])[25][0])[1]:
        port_props.update(_named(entry))
    assert json.loads(_fields(_fields(port_props["protocol"])[5][0])[2][0]) == "TCP"  # default as Any.yaml


def test_protobuf_scalars_and_booleans() -> None:
    data = encode({"swagger": "2.0", "definitions": {"X": {
        "type": "object", "additionalProperties": False, "maximum": 1.5, "maxLength": 3, "required": ["a", "b"],
        "enum": ["p", 2], "properties": {"a": {"type": "integer", "minimum": -1}}}}})
    x = _fields(_fields(_fields(data)[9][0])[1][0])
    schema = _fields(x[2][0])
    assert schema[19] == [b"a", b"b"]
    assert schema[11] == [3]  # max_length
    assert _fields(schema[21][0]) == {2: [0]}  # additionalProperties: false, written as the oneof's value
    assert [json.loads(_fields(e)[2][0]) for e in schema[20]] == ["p", 2]
    assert struct.unpack("<d", schema[7][0]) == (1.5,)


# ------------------------------------------------------------------------------ kubectl against the documents
KUBECTL = shutil.which("kubectl")


def _serve(kinds: list[Kind], log: list[tuple[str, ...]], store: dict[tuple[Any, ...], Any]) -> Any:
    """A throwaway HTTP app: discovery, the OpenAPI documents, and a dict store for the objects."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from apiserver.openapi import PROTOBUF_CONTENT_TYPE

    api = OpenAPI(kinds, FACTS)

    def reply(data: Any, status: int = 200) -> Response:
        return Response(json.dumps(data), status_code=status, media_type="application/json")

    async def api_versions(_: Request) -> Response:
        return reply({"kind": "APIVersions", "versions": ["v1"],
                      "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})

    async def api_groups(_: Request) -> Response:
        groups = []
        for gv in dict.fromkeys(k.api_version for k in kinds if k.group):
            ver = {"groupVersion": gv, "version": gv.split("/")[1]}
            groups.append({"name": gv.split("/")[0], "versions": [ver], "preferredVersion": ver})
        return reply({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})

    async def v3_index(_: Request) -> Response:
        return reply(api.v3.index())

    async def v3_document(request: Request) -> Response:
        data = api.v3.document(request.path_params["path"])
        return Response(data, media_type="application/json") if data else reply({"kind": "Status", "code": 404}, 404)

    async def v2(request: Request) -> Response:
        log.append(("v2", request.headers.get("accept", "")))
        if wants_protobuf(request.headers.get("accept")):
            return Response(api.v2.protobuf(), media_type=PROTOBUF_CONTENT_TYPE)
        return Response(api.v2.json(), media_type="application/json")

    async def resource(request: Request) -> Response:
        parts = request.url.path.strip("/").split("/")
        gv, rest = (parts[1], parts[2:]) if parts[0] == "api" else (f"{parts[1]}/{parts[2]}", parts[3:])
        if not rest:
            served = [k for k in kinds if k.api_version == gv]
            if not served:
                return reply({"kind": "Status", "code": 404}, 404)
            return reply({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": [
                {"name": k.plural, "singularName": k.kind.lower(), "namespaced": k.namespaced, "kind": k.kind,
                 "verbs": list(k.verbs)} for k in served]})
        if rest == ["customresourcedefinitions"]:  # kubectl's CRD finder, when a kind is unknown
            return reply({"kind": "CustomResourceDefinitionList", "apiVersion": "apiextensions.k8s.io/v1",
                          "metadata": {}, "items": []})
        namespace = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        body = (await request.body()).decode()
        log.append((request.method, request.url.path, request.headers.get("content-type", ""), body))
        key = (gv, namespace, rest[0], rest[1] if len(rest) > 1 else None)
        if request.method == "POST":
            obj = json.loads(body)
            store[(gv, namespace, rest[0], obj["metadata"]["name"])] = obj
            return reply(obj, 201)
        if key in store:
            return reply(store[key])
        return reply({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
                      "message": f'{rest[0]} "{key[3]}" not found', "details": {"name": key[3], "kind": rest[0]}},
                     404)

    methods = ["GET", "POST", "PATCH", "PUT", "DELETE"]
    return Starlette(routes=[
        Route("/api", api_versions), Route("/apis", api_groups), Route("/openapi/v3", v3_index),
        Route("/openapi/v3/{path:path}", v3_document), Route("/openapi/v2", v2),
        Route("/api/{rest:path}", resource, methods=methods), Route("/apis/{rest:path}", resource, methods=methods)])


@dataclass
class _Server:
    url: str
    log: list[tuple[str, ...]]
    home: Path

    def kubectl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "HOME": str(self.home), "KUBECONFIG": str(self.home / "kubeconfig")}
        assert KUBECTL is not None
        return subprocess.run([KUBECTL, "--server", self.url, "--cache-dir", str(self.home / "cache"), *args],
                              input=stdin, env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[_Server]:
    if KUBECTL is None:
        pytest.skip("kubectl is not installed")
    import uvicorn

    log: list[tuple[str, ...]] = []
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    srv = uvicorn.Server(uvicorn.Config(_serve(KINDS, log, {}), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.02)
    (tmp_path / "kubeconfig").write_text("")
    try:
        yield _Server(f"http://127.0.0.1:{port}", log, tmp_path)
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


@pytest.mark.e2e
def test_kubectl_explain_reads_v3_and_v2(server: _Server) -> None:
    p = server.kubectl("explain", "deployment.spec.template.spec.containers")
    assert p.returncode == 0, p.stderr
    assert "KIND:       Deployment" in p.stdout and "FIELD: containers <[]Container>" in p.stdout
    assert "List of containers belonging to the pod." in p.stdout
    assert "ports\t<[]ContainerPort>" in p.stdout
    p = server.kubectl("explain", "crontab.spec")
    assert p.returncode == 0, p.stderr
    assert "cronSpec\t<string>" in p.stdout and "The schedule, in cron format." in p.stdout
    # plaintext-openapiv2 parses the gnostic protobuf with kubectl's own OpenAPI model.
    p = server.kubectl("explain", "deployment.spec.strategy", "--output=plaintext-openapiv2")
    assert p.returncode == 0, p.stderr
    assert "rollingUpdate\t<Object>" in p.stdout and "DeploymentStrategy describes" in p.stdout


def _manifest(image: str, env: list[dict[str, str]]) -> str:
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: default}}
spec:
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - {{name: web, image: "{image}", ports: [{{containerPort: 80}}], env: {json.dumps(env)}}}
      - {{name: side, image: busybox}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: robot, namespace: default}}
---
apiVersion: stable.example.com/v1
kind: CronTab
metadata: {{name: nightly, namespace: default}}
spec: {{cronSpec: "{image}", replicas: 1}}
"""


@pytest.mark.e2e
def test_kubectl_apply_patches_by_schema_and_reports_unserved_kinds(server: _Server) -> None:
    p = server.kubectl("apply", "-f", "-", stdin=_manifest("nginx:1", [{"name": "A", "value": "1"}]))
    # As against Kubernetes: the served objects are created, the unserved kind is reported.
    assert "deployment.apps/web created" in p.stdout and "crontab.stable.example.com/nightly created" in p.stdout
    assert 'no matches for kind "ServiceAccount" in version "v1"' in p.stderr
    assert any(entry[0] == "v2" and "protobuf" in entry[1] for entry in server.log)
    server.log.clear()

    p = server.kubectl("apply", "-f", "-", stdin=_manifest(
        "nginx:2", [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]))
    assert "deployment.apps/web configured" in p.stdout, p.stderr
    assert "warning" not in p.stderr.lower()
    patches = {path: (ctype, json.loads(body)) for method, path, ctype, body in
               [e for e in server.log if e[0] == "PATCH"]}
    ctype, patch = patches["/apis/apps/v1/namespaces/default/deployments/web"]
    assert ctype == "application/strategic-merge-patch+json"
    pod_spec = patch["spec"]["template"]["spec"]
    assert pod_spec["$setElementOrder/containers"] == [{"name": "web"}, {"name": "side"}]
    assert pod_spec["containers"] == [{"$setElementOrder/env": [{"name": "A"}, {"name": "B"}],
                                       "env": [{"name": "B", "value": "2"}], "image": "nginx:2", "name": "web"}]
    ctype, patch = patches["/apis/stable.example.com/v1/namespaces/default/crontabs/nightly"]
    assert ctype == "application/merge-patch+json" and patch["spec"] == {"cronSpec": "nginx:2"}
