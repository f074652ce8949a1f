"""The four RBAC kinds: validation and defaults (tables after pkg/apis/rbac/validation), their kubectl
tables, and over a real API server: the bootstrap policy is there, kubectl shows and creates them."""

from __future__ import annotations

import json
import subprocess
import uuid
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from apiserver.auth import bootstrappolicy
from apiserver.auth.bootstrapreconcile import reconcile_binding, reconcile_role
from apiserver.kinds import by_kind, validate_object

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
G = "rbac.authorization.k8s.io"
RULE = {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}


def causes(kind: str, obj: dict[str, Any], old: dict[str, Any] | None = None) -> set[tuple[str, str]]:
    strategy = by_kind(kind, G)
    strategy.defaults(obj)
    return {(c.field, c.reason) for c in validate_object(strategy, obj, old=old)}


def role(kind: str = "Role", **fields: Any) -> dict[str, Any]:
    meta = {"name": "r", **({"namespace": "a"} if kind == "Role" else {})}
    return {"apiVersion": f"{G}/v1", "kind": kind, "metadata": meta, **fields}


def binding(kind: str = "RoleBinding", **fields: Any) -> dict[str, Any]:
    meta = {"name": "b", **({"namespace": "a"} if kind == "RoleBinding" else {})}
    return {"apiVersion": f"{G}/v1", "kind": kind, "metadata": meta,
            "roleRef": {"kind": "ClusterRole", "name": "view"}, **fields}


@pytest.mark.parametrize("kind,obj,expected", [
    ("Role", role(rules=[RULE]), set()),
    ("Role", role(), set()),
    ("ClusterRole", role("ClusterRole", rules=[{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]), set()),
    ("Role", role(rules=[{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]),
     {("rules[0].nonResourceURLs", "FieldValueInvalid")}),
    ("Role", role(rules=[{"apiGroups": [""], "resources": ["pods"]}]), {("rules[0].verbs", "FieldValueRequired")}),
    ("Role", role(rules=[{"verbs": ["get"], "resources": ["pods"]}]), {("rules[0].apiGroups", "FieldValueRequired")}),
    ("Role", role(rules=[{"verbs": ["get"], "apiGroups": [""]}]), {("rules[0].resources", "FieldValueRequired")}),
    ("Role", role(rules=[{**RULE, "resources": ["pods", "secrets"], "resourceNames": ["x"]}]),
     {("rules[0].resourceNames", "FieldValueRequired")}),
    ("ClusterRole", role("ClusterRole", rules=[{"verbs": ["get"], "nonResourceURLs": ["/x"], "resources": ["pods"]}]),
     {("rules[0].nonResourceURLs", "FieldValueInvalid")}),
    ("ClusterRole", role("ClusterRole", aggregationRule={"clusterRoleSelectors": []}),
     {("aggregationRule.clusterRoleSelectors", "FieldValueRequired")}),
    ("ClusterRole", role("ClusterRole", aggregationRule={"clusterRoleSelectors": [
        {"matchExpressions": [{"key": "a", "operator": "Near"}]}]}),
     {("aggregationRule.clusterRoleSelectors[0].matchExpressions[0].operator", "FieldValueNotSupported")}),
    ("RoleBinding", binding(subjects=[{"kind": "User", "name": "alice"}, {"kind": "Group", "name": "devs"},
                                      {"kind": "ServiceAccount", "name": "default"}]), set()),
    ("RoleBinding", binding(roleRef={"kind": "Role", "name": "r", "apiGroup": "rbac.authorization.k8s.io"}), set()),
    ("RoleBinding", binding(roleRef={"kind": "Secret", "name": "r"}), {("roleRef.kind", "FieldValueNotSupported")}),
    ("RoleBinding", binding(roleRef={"kind": "Role", "name": "r", "apiGroup": "apps"}),
     {("roleRef.apiGroup", "FieldValueNotSupported")}),
    ("RoleBinding", binding(roleRef={"kind": "Role"}), {("roleRef.name", "FieldValueRequired")}),
    ("RoleBinding", binding(roleRef={"kind": "Role", "name": "a/b"}), {("roleRef.name", "FieldValueInvalid")}),
    ("RoleBinding", binding(subjects=[{"kind": "Robot", "name": "x"}]), {("subjects[0].kind", "FieldValueNotSupported")}),
    ("RoleBinding", binding(subjects=[{"kind": "User"}]),
     {("subjects[0].name", "FieldValueRequired"), ("subjects[0].name", "FieldValueInvalid")}),
    ("RoleBinding", binding(subjects=[{"kind": "User", "name": "a", "apiGroup": "v1"}]),
     {("subjects[0].apiGroup", "FieldValueNotSupported")}),
    ("RoleBinding", binding(subjects=[{"kind": "ServiceAccount", "name": "a", "apiGroup": G}]),
     {("subjects[0].apiGroup", "FieldValueNotSupported")}),
    ("RoleBinding", binding(subjects=[{"kind": "ServiceAccount", "name": "Bad_Name"}]),
     {("subjects[0].name", "FieldValueInvalid")}),
    ("ClusterRoleBinding", binding("ClusterRoleBinding", subjects=[{"kind": "ServiceAccount", "name": "a"}]),
     {("subjects[0].namespace", "FieldValueRequired")}),
    ("ClusterRoleBinding", binding("ClusterRoleBinding", roleRef={"kind": "Role", "name": "r"}),
     {("roleRef.kind", "FieldValueNotSupported")}),
])
def test_validation(kind: str, obj: dict[str, Any], expected: set[tuple[str, str]]) -> None:
    assert causes(kind, obj) == expected


def test_names_are_path_segments_so_system_names_are_fine() -> None:
    assert causes("ClusterRole", {**role("ClusterRole"), "metadata": {"name": "system:kube-scheduler"}}) == set()
    assert causes("ClusterRole", {**role("ClusterRole"), "metadata": {"name": "a/b"}}) == {("metadata.name", "FieldValueInvalid")}


def test_defaults_and_the_immutable_role_ref() -> None:
    obj = binding(roleRef={"kind": "ClusterRole", "name": "view"}, subjects=[{"kind": "User", "name": "u"},
                                                                              {"kind": "ServiceAccount", "name": "s"}])
    by_kind("RoleBinding", G).defaults(obj)
    assert obj["roleRef"]["apiGroup"] == G and obj["subjects"][0]["apiGroup"] == G
    assert "apiGroup" not in obj["subjects"][1]
    changed = json.loads(json.dumps(obj))
    changed["roleRef"]["name"] = "edit"
    assert ("roleRef", "FieldValueInvalid") in causes("RoleBinding", changed, old=obj)
    assert causes("RoleBinding", json.loads(json.dumps(obj)), old=obj) == set()


def test_table_rows() -> None:
    obj = binding(subjects=[{"kind": "User", "name": "u1"}, {"kind": "User", "name": "u2"},
                            {"kind": "Group", "name": "g"}, {"kind": "ServiceAccount", "name": "s", "namespace": "n"}])
    obj["metadata"]["creationTimestamp"] = "2024-05-01T11:00:00Z"
    strategy = by_kind("RoleBinding", G)
    assert [c.name for c in strategy.columns] == ["Name", "Role", "Age", "Users", "Groups", "ServiceAccounts"]
    assert strategy.row(obj, NOW) == ["b", "ClusterRole/view", "60m", "u1, u2", "g", "n/s"]
    r = role(rules=[RULE])
    r["metadata"]["creationTimestamp"] = "2024-05-01T11:00:00Z"
    assert [c.name for c in by_kind("Role", G).columns] == ["Name", "Created At"]
    assert by_kind("Role", G).row(r, NOW) == ["r", "2024-05-01T11:00:00Z"]


def test_every_default_object_is_valid() -> None:
    for obj in bootstrappolicy.cluster_roles():
        assert not validate_object(by_kind("ClusterRole", G), obj), obj["metadata"]["name"]
        assert obj["metadata"]["labels"]["kubernetes.io/bootstrapping"] == "rbac-defaults"
    for obj in bootstrappolicy.cluster_role_bindings():
        by_kind("ClusterRoleBinding", G).defaults(obj)
        assert not validate_object(by_kind("ClusterRoleBinding", G), obj), obj["metadata"]["name"]
    for obj in bootstrappolicy.roles():
        assert not validate_object(by_kind("Role", G), obj), obj["metadata"]["name"]
    for obj in bootstrappolicy.role_bindings():
        assert not validate_object(by_kind("RoleBinding", G), obj), obj["metadata"]["name"]


def test_reconcile_adds_what_is_missing_and_keeps_the_rest() -> None:
    expected = bootstrappolicy.cluster_role("r", [RULE, {"verbs": ["list"], "apiGroups": [""], "resources": ["pods"]}])
    existing = {**expected, "rules": [RULE, {"verbs": ["get"], "apiGroups": ["x"], "resources": ["y"]}],
                "metadata": {"name": "r", "labels": {"mine": "1"}}}
    out = reconcile_role(expected, existing)
    assert out is not None
    assert out["rules"] == existing["rules"] + [{"verbs": ["list"], "apiGroups": [""], "resources": ["pods"]}]
    assert out["metadata"]["labels"] == {"mine": "1", "kubernetes.io/bootstrapping": "rbac-defaults"}
    assert reconcile_role(expected, out) is None
    protected = {**existing, "metadata": {"name": "r", "annotations": {bootstrappolicy.AUTOUPDATE: "false"}}}
    assert reconcile_role(expected, protected) is None


def test_reconcile_bindings() -> None:
    expected = bootstrappolicy.binding("b", "view", ("User", "u"))
    assert reconcile_binding(expected, expected) == ("none", None)
    other_role = {**expected, "roleRef": {**expected["roleRef"], "name": "edit"}}
    assert reconcile_binding(expected, other_role) == ("recreate", expected)
    no_subjects = {**expected, "subjects": [{"kind": "User", "apiGroup": G, "name": "extra"}]}
    op, obj = reconcile_binding(expected, no_subjects)
    assert op == "update" and obj is not None and [s["name"] for s in obj["subjects"]] == ["extra", "u"]


# ---------------------------------------------------------------------------------- over the API
def test_the_bootstrap_policy_is_served(http: httpx.Client) -> None:
    r = http.get(f"/apis/{G}/v1/clusterroles/cluster-admin")
    assert r.status_code == 200, r.text
    assert r.json()["rules"] == [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
                                 {"verbs": ["*"], "nonResourceURLs": ["*"]}]
    crb = http.get(f"/apis/{G}/v1/clusterrolebindings/cluster-admin").json()
    assert crb["subjects"] == [{"kind": "Group", "apiGroup": G, "name": "system:masters"}]
    listed = http.get(f"/apis/{G}/v1/clusterroles", params={"labelSelector": "kubernetes.io/bootstrapping=rbac-defaults"})
    names = {i["metadata"]["name"] for i in listed.json()["items"]}
    assert {"admin", "edit", "view", "system:kube-scheduler", "system:node", "system:basic-user"} <= names
    reader = http.get(f"/apis/{G}/v1/namespaces/kube-system/roles/{bootstrappolicy.KUBELET_CREDENTIAL_ROLE}")
    assert reader.status_code == 200 and reader.json()["rules"][0]["resourceNames"] == ["minik8s-kubelet-client"]


def test_kubectl_creates_and_shows_roles_and_bindings(apiserver: Any, namespace: str) -> None:
    def kubectl(*args: str) -> str:
        p = subprocess.run(["kubectl", "--server", apiserver.url, "-n", namespace, *args],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        return p.stdout
    # kubectl create role/rolebinding send protobuf bodies.
    kubectl("create", "role", "pod-reader", "--verb=get,list", "--resource=pods,pods/log")
    kubectl("create", "rolebinding", "read", "--role=pod-reader", "--user=alice", "--group=devs",
            f"--serviceaccount={namespace}:robot")
    role_obj = json.loads(kubectl("get", "role", "pod-reader", "-o", "json"))
    assert role_obj["rules"] == [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods", "pods/log"]}]
    wide = kubectl("get", "rolebindings", "-o", "wide").splitlines()
    assert wide[0].split() == ["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"]
    assert wide[1].split()[:2] == ["read", "Role/pod-reader"] and wide[1].split()[3:] == ["alice", "devs", f"{namespace}/robot"]
    assert kubectl("get", "roles").splitlines()[0].split() == ["NAME", "CREATED", "AT"]
    name = f"h4-{uuid.uuid4().hex[:8]}"
    kubectl("create", "clusterrole", name, "--verb=get", "--non-resource-url=/healthz")
    kubectl("create", "clusterrolebinding", name, f"--clusterrole={name}", "--group=system:authenticated")
    assert kubectl("get", "clusterrolebinding", name, "--no-headers").split()[1] == f"ClusterRole/{name}"
    selected = kubectl("get", "clusterroles", "--field-selector", f"metadata.name={name}", "-o", "name")
    assert selected.strip() == f"clusterrole.rbac.authorization.k8s.io/{name}"
    r = subprocess.run(["kubectl", "--server", apiserver.url, "-n", namespace, "patch", "rolebinding", "read",
                        "--type=merge", "-p", '{"roleRef":{"name":"other"}}'], capture_output=True, text=True)
    assert r.returncode != 0 and "cannot change roleRef" in r.stderr
    kubectl("delete", "clusterrole,clusterrolebinding", name)
    assert kubectl("api-resources", f"--api-group={G}", "-o", "name").split() == [
        f"clusterrolebindings.{G}", f"clusterroles.{G}", f"rolebindings.{G}", f"roles.{G}"]
