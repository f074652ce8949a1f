"""RBAC's pure matching (apiserver/auth/rbacrules.py): rule tables after Kubernetes' rbac_test.go and
policy_comparator_test.go, subjects, reasons, coverage."""

from __future__ import annotations

from typing import Any

import pytest

from apiserver.auth import rbacrules
from apiserver.auth.attributes import Attributes, request_attributes
from machinery.userinfo import UserInfo

ALICE = UserInfo("alice", groups=("devs", "system:authenticated"))


def req(method: str, path: str, **query: str) -> Attributes:
    return request_attributes(ALICE, method, path, query)


def rule(verbs: list[str], groups: list[str], resources: list[str], names: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"verbs": verbs, "apiGroups": groups, "resources": resources}
    if names:
        out["resourceNames"] = names
    return out


@pytest.mark.parametrize("r,attrs,allowed", [
    (rule(["get"], [""], ["pods"]), req("GET", "/api/v1/namespaces/a/pods/p"), True),
    (rule(["get"], [""], ["pods"]), req("GET", "/api/v1/namespaces/a/pods"), False),  # list
    (rule(["list"], [""], ["pods"]), req("GET", "/api/v1/namespaces/a/pods"), True),
    (rule(["*"], [""], ["pods"]), req("DELETE", "/api/v1/namespaces/a/pods"), True),
    (rule(["get"], ["apps"], ["pods"]), req("GET", "/api/v1/namespaces/a/pods/p"), False),
    (rule(["get"], ["*"], ["deployments"]), req("GET", "/apis/apps/v1/namespaces/a/deployments/d"), True),
    (rule(["get"], [""], ["*"]), req("GET", "/api/v1/namespaces/a/secrets/s"), True),
    (rule(["get"], [""], ["*"]), req("GET", "/api/v1/namespaces/a/pods/p/log"), True),
    # Subresources match exactly or through */sub; pods does not grant pods/log, pods/* is no wildcard.
    (rule(["get"], [""], ["pods"]), req("GET", "/api/v1/namespaces/a/pods/p/log"), False),
    (rule(["get"], [""], ["pods/log"]), req("GET", "/api/v1/namespaces/a/pods/p/log"), True),
    (rule(["get"], [""], ["pods/*"]), req("GET", "/api/v1/namespaces/a/pods/p/log"), False),
    (rule(["get", "update"], ["*"], ["*/scale"]), req("PUT", "/apis/apps/v1/namespaces/a/deployments/d/scale"), True),
    (rule(["get"], ["*"], ["*/scale"]), req("GET", "/apis/apps/v1/namespaces/a/deployments/d"), False),
    # resourceNames: only requests that name the object.
    (rule(["get"], [""], ["configmaps"], ["c1"]), req("GET", "/api/v1/namespaces/a/configmaps/c1"), True),
    (rule(["get"], [""], ["configmaps"], ["c1"]), req("GET", "/api/v1/namespaces/a/configmaps/c2"), False),
    (rule(["create"], [""], ["configmaps"], ["c1"]), req("POST", "/api/v1/namespaces/a/configmaps"), False),
    (rule(["list"], [""], ["configmaps"], ["c1"]), req("GET", "/api/v1/namespaces/a/configmaps"), False),
    (rule(["list"], [""], ["configmaps"], ["c1"]),
     req("GET", "/api/v1/namespaces/a/configmaps", fieldSelector="metadata.name=c1"), True),
    (rule(["watch"], [""], ["configmaps"], ["c1"]),
     req("GET", "/api/v1/namespaces/a/configmaps", watch="1", fieldSelector="metadata.name=c1"), True),
    (rule(["create"], [""], ["pods/exec"]), req("GET", "/api/v1/namespaces/a/pods/p/exec"), True),
    # Resource rules never grant non-resource URLs and back.
    (rule(["get"], ["*"], ["*"]), req("GET", "/healthz"), False),
    ({"verbs": ["get"], "nonResourceURLs": ["/healthz"]}, req("GET", "/healthz"), True),
    ({"verbs": ["get"], "nonResourceURLs": ["/healthz"]}, req("GET", "/healthz/etcd"), False),
    ({"verbs": ["get"], "nonResourceURLs": ["/healthz/*"]}, req("GET", "/healthz/etcd"), True),
    ({"verbs": ["get"], "nonResourceURLs": ["/apis/*"]}, req("GET", "/apis/apps/v1"), True),
    ({"verbs": ["get"], "nonResourceURLs": ["*"]}, req("GET", "/metrics"), True),
    ({"verbs": ["post"], "nonResourceURLs": ["*"]}, req("GET", "/metrics"), False),
    ({"verbs": ["get"], "nonResourceURLs": ["*"]}, req("GET", "/api/v1/namespaces/a/pods/p"), False),
])
def test_rule_allows(r: dict[str, Any], attrs: Attributes, allowed: bool) -> None:
    assert rbacrules.rule_allows(attrs, r) is allowed


@pytest.mark.parametrize("subject,binding_ns,user,applies", [
    ({"kind": "User", "name": "alice"}, "", ALICE, True),
    ({"kind": "User", "name": "bob"}, "", ALICE, False),
    ({"kind": "Group", "name": "devs"}, "", ALICE, True),
    ({"kind": "Group", "name": "alice"}, "", ALICE, False),
    ({"kind": "ServiceAccount", "name": "d", "namespace": "a"}, "", UserInfo("system:serviceaccount:a:d"), True),
    ({"kind": "ServiceAccount", "name": "d"}, "a", UserInfo("system:serviceaccount:a:d"), True),
    ({"kind": "ServiceAccount", "name": "d"}, "b", UserInfo("system:serviceaccount:a:d"), False),
    ({"kind": "ServiceAccount", "name": "d"}, "", UserInfo("system:serviceaccount:a:d"), False),
    ({"kind": "ServiceAccount", "name": "d", "namespace": "a"}, "", UserInfo("system:serviceaccount:a:dd"), False),
])
def test_subjects(subject: dict[str, Any], binding_ns: str, user: UserInfo, applies: bool) -> None:
    assert rbacrules.applies_to(user, subject, binding_ns) is applies
    key = rbacrules.subject_keys(subject, binding_ns)
    assert (key is not None and key in rbacrules.user_keys(user)) is applies


def test_allow_reasons_are_kubernetes_own() -> None:
    crb = {"metadata": {"name": "x"}, "roleRef": {"kind": "ClusterRole", "name": "y"}}
    assert rbacrules.describe_binding(crb, {"kind": "User", "name": "z"}) == \
        'ClusterRoleBinding "x" of ClusterRole "y" to User "z"'
    rb = {"metadata": {"name": "rb", "namespace": "a"}, "roleRef": {"kind": "Role", "name": "r"}}
    assert rbacrules.describe_binding(rb, {"kind": "ServiceAccount", "name": "d"}) == \
        'RoleBinding "rb/a" of Role "r" to ServiceAccount "d/a"'


@pytest.mark.parametrize("owner,wanted,covered", [
    ([rule(["*"], ["*"], ["*"])], [rule(["get", "delete"], ["apps"], ["deployments"])], True),
    ([rule(["get"], [""], ["pods"])], [rule(["get", "list"], [""], ["pods"])], False),
    ([rule(["get"], [""], ["pods"])], [rule(["get"], [""], ["pods"], ["p1"])], True),
    ([rule(["get"], [""], ["pods"], ["p1"])], [rule(["get"], [""], ["pods"])], False),
    ([rule(["get"], [""], ["*/status"])], [rule(["get"], [""], ["pods/status"])], True),
    ([{"verbs": ["get"], "nonResourceURLs": ["/api/*"]}], [{"verbs": ["get"], "nonResourceURLs": ["/api/v1"]}], True),
    ([{"verbs": ["get"], "nonResourceURLs": ["/api"]}], [{"verbs": ["get"], "nonResourceURLs": ["/apis"]}], False),
])
def test_covers(owner: list[dict[str, Any]], wanted: list[dict[str, Any]], covered: bool) -> None:
    ok, missing = rbacrules.covers(owner, wanted)
    assert ok is covered and bool(missing) is not covered


def test_breakdown_and_missing_rules() -> None:
    ok, missing = rbacrules.covers([rule(["get"], [""], ["pods"])], [rule(["get", "list"], [""], ["pods", "secrets"])])
    assert not ok
    assert missing == [rule(["list"], [""], ["pods"]), rule(["get"], [""], ["secrets"]),
                       rule(["list"], [""], ["secrets"])]


def test_split_rules_for_selfsubjectrulesreview() -> None:
    resource, non_resource = rbacrules.split_rules([rule(["get"], [""], ["pods"], ["p"]),
                                                    {"verbs": ["get"], "nonResourceURLs": ["/healthz"]}])
    assert resource == [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["p"]}]
    assert non_resource == [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]
