"""Tests for machinery.patch as the API server uses it: RFC 7386 and RFC 6902 appendix examples,
and strategic merge patches shaped like the ones ``kubectl apply`` / ``kubectl patch`` send, over
the schemas the kind strategies publish."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from machinery.patch import PatchError, apply_json_patch, apply_merge_patch
from machinery.patch import apply_strategic_merge_patch as _smp
from tests.apiserver.kindtools import kind_schema


def apply_strategic_merge_patch(target: Any, patch: Any, *, kind: str, api_version: str) -> Any:
    return _smp(target, patch, schema=kind_schema(kind, api_version))


def merge_keys_for(kind: str, path: tuple[str, ...]) -> str | None:
    field = kind_schema(kind).at(path)
    return field.patch_merge_key if field.merges_list else None


def patch_strategy_for(kind: str, path: tuple[str, ...]) -> str | None:
    return kind_schema(kind).at(path).patch_strategy

# ---- RFC 7386 appendix A ---------------------------------------------------------------------

MERGE_PATCH_CASES = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "expected"), MERGE_PATCH_CASES)
def test_merge_patch_rfc7386_examples(target: Any, patch: Any, expected: Any) -> None:
    before = copy.deepcopy((target, patch))
    assert apply_merge_patch(target, patch) == expected
    assert (target, patch) == before


def test_merge_patch_result_does_not_alias_inputs() -> None:
    target, patch = {"a": {"x": [1]}}, {"b": {"y": [2]}}
    result = apply_merge_patch(target, patch)
    result["a"]["x"].append(9)
    result["b"]["y"].append(9)
    assert target == {"a": {"x": [1]}} and patch == {"b": {"y": [2]}}


# ---- RFC 6902 appendix A ---------------------------------------------------------------------

JSON_PATCH_CASES = [
    ("A.1", {"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}], {"baz": "qux", "foo": "bar"}),
    ("A.2", {"foo": ["bar", "baz"]}, [{"op": "add", "path": "/foo/1", "value": "qux"}], {"foo": ["bar", "qux", "baz"]}),
    ("A.3", {"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}], {"foo": "bar"}),
    ("A.4", {"foo": ["bar", "qux", "baz"]}, [{"op": "remove", "path": "/foo/1"}], {"foo": ["bar", "baz"]}),
    ("A.5", {"baz": "qux", "foo": "bar"}, [{"op": "replace", "path": "/baz", "value": "boo"}], {"baz": "boo", "foo": "bar"}),
    (
        "A.6",
        {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
        [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
        {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}},
    ),
    (
        "A.7",
        {"foo": ["all", "grass", "cows", "eat"]},
        [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
        {"foo": ["all", "cows", "eat", "grass"]},
    ),
    (
        "A.8",
        {"baz": "qux", "foo": ["a", 2, "c"]},
        [{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1", "value": 2}],
        {"baz": "qux", "foo": ["a", 2, "c"]},
    ),
    ("A.10", {"foo": "bar"}, [{"op": "add", "path": "/child", "value": {"grandchild": {}}}], {"foo": "bar", "child": {"grandchild": {}}}),
    ("A.11", {"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}], {"foo": "bar", "baz": "qux"}),
    ("A.14", {"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}], {"/": 9, "~1": 10}),
    ("A.16", {"foo": ["bar"]}, [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}], {"foo": ["bar", ["abc", "def"]]}),
    ("root replace", {"a": 1}, [{"op": "replace", "path": "", "value": [1]}], [1]),
    ("copy", {"a": {"b": [1]}}, [{"op": "copy", "from": "/a", "path": "/c"}], {"a": {"b": [1]}, "c": {"b": [1]}}),
    ("append at len", {"a": [1]}, [{"op": "add", "path": "/a/1", "value": 2}], {"a": [1, 2]}),
    ("test 1 == 1.0", {"a": 1}, [{"op": "test", "path": "/a", "value": 1.0}], {"a": 1}),
    ("slash key", {"a/b": 1}, [{"op": "replace", "path": "/a~1b", "value": 2}], {"a/b": 2}),
    (
        "scale replicas",
        {"spec": {"replicas": 1}},
        [{"op": "replace", "path": "/spec/replicas", "value": 3}],
        {"spec": {"replicas": 3}},
    ),
]


@pytest.mark.parametrize(("name", "target", "ops", "expected"), JSON_PATCH_CASES, ids=[c[0] for c in JSON_PATCH_CASES])
def test_json_patch_examples(name: str, target: Any, ops: Any, expected: Any) -> None:
    before = copy.deepcopy((target, ops))
    assert apply_json_patch(target, ops) == expected
    assert (target, ops) == before


JSON_PATCH_ERRORS = [
    ("A.9 test fails", {"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "bar"}], "/baz"),
    ("A.12 nonexistent target", {"foo": "bar"}, [{"op": "add", "path": "/baz/bat", "value": "qux"}], "/baz"),
    ("A.15 string vs number", {"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": "10"}], "/~01"),
    ("test bool vs int", {"a": 1}, [{"op": "test", "path": "/a", "value": True}], "/a"),
    ("remove missing", {"a": 1}, [{"op": "remove", "path": "/b"}], "/b"),
    ("replace missing", {"a": 1}, [{"op": "replace", "path": "/b", "value": 2}], "/b"),
    ("index out of bounds", {"a": [1]}, [{"op": "add", "path": "/a/2", "value": 2}], "/a/2"),
    ("remove past end", {"a": [1]}, [{"op": "remove", "path": "/a/1"}], "/a/1"),
    ("dash outside add", {"a": [1]}, [{"op": "replace", "path": "/a/-", "value": 2}], "/a/-"),
    ("leading zero index", {"a": [1, 2]}, [{"op": "remove", "path": "/a/01"}], "/a/01"),
    ("unknown op", {}, [{"op": "frobnicate", "path": "/a"}], "frobnicate"),
    ("missing value", {}, [{"op": "add", "path": "/a"}], "value"),
    ("missing path", {}, [{"op": "remove"}], "path"),
    ("pointer without slash", {"a": 1}, [{"op": "remove", "path": "a"}], "'/'"),
    ("bad escape", {"a": 1}, [{"op": "remove", "path": "/~2"}], "~"),
    ("move into child", {"a": {"b": 1}}, [{"op": "move", "from": "/a", "path": "/a/b/c"}], "child"),
    ("not a list", {}, {"op": "add", "path": "/a", "value": 1}, "list"),
    ("op not an object", {}, ["add"], "not an object"),
]


@pytest.mark.parametrize(("name", "target", "ops", "message"), JSON_PATCH_ERRORS, ids=[c[0] for c in JSON_PATCH_ERRORS])
def test_json_patch_errors(name: str, target: Any, ops: Any, message: str) -> None:
    before = copy.deepcopy(target)
    with pytest.raises(PatchError, match=message.replace("~", "~").replace("/", "/")):
        apply_json_patch(target, ops)
    assert target == before


def test_json_patch_is_atomic() -> None:
    target = {"a": 1}
    ops = [{"op": "replace", "path": "/a", "value": 2}, {"op": "test", "path": "/a", "value": 1}]
    with pytest.raises(PatchError):
        apply_json_patch(target, ops)
    assert target == {"a": 1}


# ---- strategic merge patch --------------------------------------------------------------------


def deployment(containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web", "tier": "front"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": containers}},
            **spec,
        },
    }


def pod_spec_patch(spec: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {"template": {"spec": spec}}}


NGINX = {"name": "nginx", "image": "nginx:1.25", "env": [{"name": "A", "value": "1"}]}
SIDECAR = {"name": "sidecar", "image": "busybox"}

# (id, target, patch, expected) for Deployments.
STRATEGIC_CASES = [
    (
        "kubectl apply: change image with $setElementOrder",
        deployment([NGINX, SIDECAR]),
        pod_spec_patch(
            {
                "$setElementOrder/containers": [{"name": "nginx"}, {"name": "sidecar"}],
                "containers": [{"image": "nginx:1.26", "name": "nginx"}],
            }
        ),
        deployment([{**NGINX, "image": "nginx:1.26"}, SIDECAR]),
    ),
    (
        "kubectl apply: add env var",
        deployment([NGINX]),
        pod_spec_patch(
            {
                "$setElementOrder/containers": [{"name": "nginx"}],
                "containers": [
                    {"$setElementOrder/env": [{"name": "A"}, {"name": "B"}], "env": [{"name": "B", "value": "2"}], "name": "nginx"}
                ],
            }
        ),
        deployment([{**NGINX, "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}]),
    ),
    (
        "kubectl apply: delete env var",
        deployment([{**NGINX, "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}]),
        pod_spec_patch(
            {
                "$setElementOrder/containers": [{"name": "nginx"}],
                "containers": [{"$setElementOrder/env": [{"name": "A"}], "env": [{"$patch": "delete", "name": "B"}], "name": "nginx"}],
            }
        ),
        deployment([NGINX]),
    ),
    (
        "kubectl apply: delete a container",
        deployment([NGINX, SIDECAR]),
        pod_spec_patch({"$setElementOrder/containers": [{"name": "nginx"}], "containers": [{"$patch": "delete", "name": "sidecar"}]}),
        deployment([NGINX]),
    ),
    (
        "kubectl apply: reorder containers",
        deployment([NGINX, SIDECAR]),
        pod_spec_patch({"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "nginx"}]}),
        deployment([SIDECAR, NGINX]),
    ),
    (
        "setElementOrder: server-only items interleave by live position",
        deployment([NGINX, {"name": "injected", "image": "x"}, SIDECAR]),
        pod_spec_patch({"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "nginx"}]}),
        deployment([{"name": "injected", "image": "x"}, SIDECAR, NGINX]),
    ),
    (
        "kubectl patch: new container goes first without $setElementOrder",
        deployment([NGINX]),
        pod_spec_patch({"containers": [SIDECAR]}),
        deployment([SIDECAR, NGINX]),
    ),
    (
        "replace spec.replicas",
        deployment([NGINX]),
        {"spec": {"replicas": 3}},
        deployment([NGINX], replicas=3),
    ),
    (
        "remove a label with null",
        deployment([NGINX]),
        {"metadata": {"labels": {"tier": None, "new": "x"}}},
        {**deployment([NGINX]), "metadata": {"name": "web", "labels": {"app": "web", "new": "x"}}},
    ),
    (
        "$patch: replace on a map",
        deployment([NGINX]),
        {"metadata": {"labels": {"$patch": "replace", "only": "this"}}},
        {**deployment([NGINX]), "metadata": {"name": "web", "labels": {"only": "this"}}},
    ),
    (
        "$patch: delete on a map empties it",
        deployment([NGINX]),
        {"metadata": {"labels": {"$patch": "delete"}}},
        {**deployment([NGINX]), "metadata": {"name": "web", "labels": {}}},
    ),
    (
        "$patch: replace on a list",
        deployment([NGINX, SIDECAR]),
        pod_spec_patch({"containers": [{"$patch": "replace"}, {"name": "only", "image": "x"}]}),
        deployment([{"name": "only", "image": "x"}]),
    ),
    (
        "$retainKeys switches the deployment strategy",
        deployment([NGINX], strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}),
        {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}},
        deployment([NGINX], strategy={"type": "Recreate"}),
    ),
    (
        "ports merge by containerPort",
        deployment([{"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80, "protocol": "TCP"}]}]),
        pod_spec_patch({"containers": [{"name": "nginx", "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 443}]}]}),
        deployment(
            [
                {
                    "name": "nginx",
                    "image": "nginx",
                    "ports": [{"containerPort": 80, "protocol": "TCP", "name": "http"}, {"containerPort": 443}],
                }
            ]
        ),
    ),
    (
        "atomic list (args) is replaced",
        deployment([{"name": "nginx", "image": "nginx", "args": ["a", "b"]}]),
        pod_spec_patch({"containers": [{"name": "nginx", "args": ["c"]}]}),
        deployment([{"name": "nginx", "image": "nginx", "args": ["c"]}]),
    ),
    (
        "whole new template section has its directives applied",
        {"apiVersion": "apps/v1", "kind": "Deployment", "spec": {}},
        pod_spec_patch(
            {
                "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
                "containers": [
                    {"name": "a", "$setElementOrder/env": [{"name": "X"}], "env": [{"name": "X", "value": None}]},
                    {"name": "b", "$patch": "delete"},
                ],
            }
        ),
        {"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": {"spec": {"containers": [{"name": "a", "env": [{"name": "X"}]}]}}}},
    ),
]


@pytest.mark.parametrize(("name", "target", "patch", "expected"), STRATEGIC_CASES, ids=[c[0] for c in STRATEGIC_CASES])
def test_strategic_merge_patch_deployment(name: str, target: dict[str, Any], patch: dict[str, Any], expected: dict[str, Any]) -> None:
    before = copy.deepcopy((target, patch))
    assert apply_strategic_merge_patch(target, patch, kind="Deployment", api_version="apps/v1") == expected
    assert (target, patch) == before


# (id, kind, apiVersion, target, patch, expected) for other kinds.
OTHER_KINDS = [
    (
        "pod volumes and volumeMounts",
        "Pod",
        "v1",
        {"spec": {"volumes": [{"name": "a", "emptyDir": {}}], "containers": [{"name": "c", "volumeMounts": [{"mountPath": "/a", "name": "a"}]}]}},
        {"spec": {"volumes": [{"name": "b", "configMap": {"name": "cm"}}], "containers": [{"name": "c", "volumeMounts": [{"mountPath": "/b", "name": "b"}]}]}},
        {
            "spec": {
                "volumes": [{"name": "b", "configMap": {"name": "cm"}}, {"name": "a", "emptyDir": {}}],
                "containers": [{"name": "c", "volumeMounts": [{"mountPath": "/b", "name": "b"}, {"mountPath": "/a", "name": "a"}]}],
            }
        },
    ),
    (
        "finalizers merge as a set; $deleteFromPrimitiveList removes",
        "ConfigMap",
        "v1",
        {"metadata": {"finalizers": ["a", "b"]}},
        {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"], "finalizers": ["c"]}},
        {"metadata": {"finalizers": ["c", "b"]}},
    ),
    (
        "finalizers with $setElementOrder",
        "Pod",
        "v1",
        {"metadata": {"finalizers": ["a", "b"]}},
        {"metadata": {"$setElementOrder/finalizers": ["b", "c"], "finalizers": ["c"], "$deleteFromPrimitiveList/finalizers": ["a"]}},
        {"metadata": {"finalizers": ["b", "c"]}},
    ),
    (
        "service ports merge by port",
        "Service",
        "v1",
        {"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}},
        {"spec": {"ports": [{"port": 80, "targetPort": 9090}]}},
        {"spec": {"ports": [{"port": 80, "targetPort": 9090}, {"port": 443}]}},
    ),
    (
        "node conditions merge by type",
        "Node",
        "v1",
        {"status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "DiskPressure", "status": "False"}]}},
        {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
        {"status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "DiskPressure", "status": "False"}]}},
    ),
    (
        "ownerReferences merge by uid",
        "ReplicaSet",
        "apps/v1",
        {"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}]}},
        {"metadata": {"ownerReferences": [{"uid": "2", "name": "b"}]}},
        {"metadata": {"ownerReferences": [{"uid": "2", "name": "b"}, {"uid": "1", "name": "a"}]}},
    ),
    (
        "endpoints subsets are atomic",
        "Endpoints",
        "v1",
        {"subsets": [{"addresses": [{"ip": "10.0.0.1"}]}]},
        {"subsets": [{"addresses": [{"ip": "10.0.0.2"}]}]},
        {"subsets": [{"addresses": [{"ip": "10.0.0.2"}]}]},
    ),
    (
        "scale: plain merge",
        "Scale",
        "autoscaling/v1",
        {"spec": {"replicas": 1}, "status": {"replicas": 1}},
        {"spec": {"replicas": 5}},
        {"spec": {"replicas": 5}, "status": {"replicas": 1}},
    ),
    (
        "unknown kind: lists replace, maps merge",
        "Widget",
        "example.com/v1",
        {"spec": {"containers": [{"name": "a"}], "m": {"x": 1}}},
        {"spec": {"containers": [{"name": "b"}], "m": {"y": 2}}},
        {"spec": {"containers": [{"name": "b"}], "m": {"x": 1, "y": 2}}},
    ),
    (
        "same kind name in another group is unknown",
        "Deployment",
        "example.com/v1",
        {"spec": {"template": {"spec": {"containers": [{"name": "a"}]}}}},
        {"spec": {"template": {"spec": {"containers": [{"name": "b"}]}}}},
        {"spec": {"template": {"spec": {"containers": [{"name": "b"}]}}}},
    ),
    (
        "kubectl apply renames a container next to an injected one: the new one goes last",
        "Pod",
        "v1",
        {"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "injected", "image": "1"}]}},
        {
            "spec": {
                "$setElementOrder/containers": [{"name": "z"}],
                "containers": [{"name": "z", "image": "2"}, {"name": "a", "$patch": "delete"}],
            }
        },
        {"spec": {"containers": [{"name": "injected", "image": "1"}, {"name": "z", "image": "2"}]}},
    ),
    (
        "$setElementOrder names an item in neither list",
        "Pod",
        "v1",
        {"spec": {"containers": [{"name": "a"}, {"name": "b"}]}},
        {"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "zz"}, {"name": "a"}]}},
        {"spec": {"containers": [{"name": "b"}, {"name": "a"}]}},
    ),
    (
        "$patch: delete on a field the target lacks leaves it out",
        "Pod",
        "v1",
        {"spec": {"containers": []}},
        {"spec": {"securityContext": {"$patch": "delete"}}},
        {"spec": {"containers": []}},
    ),
    (
        "nulls inside a new list element are dropped",
        "Pod",
        "v1",
        {"spec": {"containers": [{"name": "a"}]}},
        {"spec": {"containers": [{"name": "b", "image": None, "env": [{"name": "x", "value": None}]}]}},
        {"spec": {"containers": [{"name": "b", "env": [{"name": "x"}]}, {"name": "a"}]}},
    ),
    (
        "volume source switch with $retainKeys inside a list element",
        "Pod",
        "v1",
        {"spec": {"volumes": [{"name": "v", "emptyDir": {}}]}},
        {
            "spec": {
                "$setElementOrder/volumes": [{"name": "v"}],
                "volumes": [{"$retainKeys": ["configMap", "name"], "name": "v", "configMap": {"name": "cm"}}],
            }
        },
        {"spec": {"volumes": [{"name": "v", "configMap": {"name": "cm"}}]}},
    ),
    (
        "podCIDRs merge as a set",
        "Node",
        "v1",
        {"spec": {"podCIDRs": ["10.0.0.0/24", "10.1.0.0/24"]}},
        {"spec": {"podCIDRs": ["10.2.0.0/24", "10.0.0.0/24"]}},
        {"spec": {"podCIDRs": ["10.2.0.0/24", "10.0.0.0/24", "10.1.0.0/24"]}},
    ),
    (
        "top-level $patch: replace",
        "ConfigMap",
        "v1",
        {"metadata": {"name": "x"}, "data": {"a": "1"}},
        {"$patch": "replace", "metadata": {"name": "x"}, "data": {"b": "2"}},
        {"metadata": {"name": "x"}, "data": {"b": "2"}},
    ),
]


@pytest.mark.parametrize(("name", "kind", "api_version", "target", "patch", "expected"), OTHER_KINDS, ids=[c[0] for c in OTHER_KINDS])
def test_strategic_merge_patch_other_kinds(
    name: str, kind: str, api_version: str, target: dict[str, Any], patch: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert apply_strategic_merge_patch(target, patch, kind=kind, api_version=api_version) == expected


STRATEGIC_ERRORS = [
    ("element without merge key", pod_spec_patch({"containers": [{"image": "x"}]}), "merge key 'name'"),
    ("delete element without merge key", pod_spec_patch({"containers": [{"$patch": "delete"}]}), "merge key"),
    ("unknown map directive", {"metadata": {"$patch": "explode"}}, "explode"),
    ("unknown list directive", pod_spec_patch({"containers": [{"$patch": "explode", "name": "x"}]}), "explode"),
    ("field not in $retainKeys", {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}}, "rollingUpdate"),
    ("$retainKeys not a list", {"spec": {"strategy": {"$retainKeys": "type"}}}, "retainKeys"),
    (
        "patch list out of $setElementOrder",
        pod_spec_patch({"$setElementOrder/containers": [{"name": "nginx"}], "containers": [{"name": "other"}]}),
        "setElementOrder",
    ),
    ("$setElementOrder not a list", pod_spec_patch({"$setElementOrder/containers": "nginx"}), "must be a list"),
    ("list of lists", pod_spec_patch({"containers": [["x"]]}), "lists of lists"),
]


@pytest.mark.parametrize(("name", "patch", "message"), STRATEGIC_ERRORS, ids=[c[0] for c in STRATEGIC_ERRORS])
def test_strategic_merge_patch_errors(name: str, patch: dict[str, Any], message: str) -> None:
    target = deployment([NGINX], strategy={"type": "RollingUpdate"})
    with pytest.raises(PatchError, match=message):
        apply_strategic_merge_patch(target, patch, kind="Deployment", api_version="apps/v1")


def test_strategic_error_names_the_path() -> None:
    with pytest.raises(PatchError, match=r"spec\.template\.spec\.containers"):
        apply_strategic_merge_patch(deployment([NGINX]), pod_spec_patch({"containers": [{"image": "x"}]}), kind="Deployment", api_version="apps/v1")


def test_strategic_rejects_non_objects() -> None:
    with pytest.raises(PatchError):
        apply_strategic_merge_patch({}, [], kind="Pod", api_version="v1")  # type: ignore[arg-type]


MERGE_KEYS = [
    ("Deployment", ("spec", "template", "spec", "containers"), "name"),
    ("ReplicaSet", ("spec", "template", "spec", "initContainers"), "name"),
    ("Pod", ("spec", "containers", "ports"), "containerPort"),
    ("Pod", ("spec", "containers", "env"), "name"),
    ("Pod", ("spec", "containers", "volumeMounts"), "mountPath"),
    ("Pod", ("spec", "volumes"), "name"),
    ("Pod", ("spec", "hostAliases"), "ip"),
    ("Pod", ("spec", "topologySpreadConstraints"), "topologyKey"),
    ("Pod", ("status", "conditions"), "type"),
    ("Service", ("spec", "ports"), "port"),
    ("Node", ("status", "addresses"), "type"),
    ("Namespace", ("metadata", "ownerReferences"), "uid"),
    ("Pod", ("metadata", "finalizers"), None),
    ("Pod", ("spec", "tolerations"), None),
    ("Endpoints", ("subsets",), None),
    ("Widget", ("spec", "containers"), None),
    ("Pod", ("spec", "nope", "containers"), None),
]


@pytest.mark.parametrize(("kind", "path", "key"), MERGE_KEYS)
def test_merge_keys_for(kind: str, path: tuple[str, ...], key: str | None) -> None:
    assert merge_keys_for(kind, path) == key


@pytest.mark.parametrize(
    ("kind", "path", "strategy"),
    [
        ("Pod", ("spec", "volumes"), "merge,retainKeys"),
        ("Pod", ("metadata", "finalizers"), "merge"),
        ("Deployment", ("spec", "strategy"), "retainKeys"),
        ("Pod", ("spec", "tolerations"), None),
    ],
)
def test_patch_strategy_for(kind: str, path: tuple[str, ...], strategy: str | None) -> None:
    assert patch_strategy_for(kind, path) == strategy
