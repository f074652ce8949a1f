"""The RBAC authorizer over in-memory caches: bindings, reasons, missing roles, rules_for, re-indexing;
and ``build_authorizer``'s chain (system:masters first, modes in order)."""

from __future__ import annotations

from typing import Any

import pytest

from apiserver.auth.attributes import request_attributes
from apiserver.auth.authorizer import Decision
from apiserver.auth.authz import parse_modes
from apiserver.auth.rbac import CLUSTER_ROLE_BINDINGS, CLUSTER_ROLES, ROLE_BINDINGS, ROLES, RBACAuthorizer
from machinery.userinfo import UserInfo

from .fakesnapshots import FakeSnapshots

G = "rbac.authorization.k8s.io"
ALICE = UserInfo("alice", groups=("system:authenticated",))
BOB = UserInfo("bob", groups=("developers", "system:authenticated"))
SA = UserInfo("system:serviceaccount:a:robot", groups=("system:serviceaccounts", "system:serviceaccounts:a"))


def role(name: str, rules: list[dict[str, Any]], namespace: str = "") -> dict[str, Any]:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"metadata": meta, "rules": rules}


def bind(name: str, kind: str, role_name: str, subjects: list[dict[str, Any]], namespace: str = "") -> dict[str, Any]:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"metadata": meta, "roleRef": {"apiGroup": G, "kind": kind, "name": role_name}, "subjects": subjects}


POD_READER = [{"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["pods"]}]


@pytest.fixture
def snapshots() -> FakeSnapshots:
    return FakeSnapshots({
        ROLES: [role("pod-reader", POD_READER, "a")],
        CLUSTER_ROLES: [role("secret-reader", [{"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"]}]),
                        role("health", [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}])],
        ROLE_BINDINGS: [bind("read-pods", "Role", "pod-reader", [{"kind": "User", "apiGroup": G, "name": "alice"},
                                                                 {"kind": "ServiceAccount", "name": "robot"}], "a"),
                        bind("devs-secrets", "ClusterRole", "secret-reader",
                             [{"kind": "Group", "apiGroup": G, "name": "developers"}], "b")],
        CLUSTER_ROLE_BINDINGS: [bind("health", "ClusterRole", "health",
                                     [{"kind": "Group", "apiGroup": G, "name": "system:authenticated"}])],
    })


def decide(authz: RBACAuthorizer, user: UserInfo, method: str, path: str) -> tuple[Decision, str]:
    return authz.authorize(request_attributes(user, method, path, {}))


def test_a_role_binding_grants_only_in_its_namespace(snapshots: FakeSnapshots) -> None:
    authz = RBACAuthorizer(snapshots)
    assert decide(authz, ALICE, "GET", "/api/v1/namespaces/a/pods") == (
        Decision.ALLOW, 'RBAC: allowed by RoleBinding "read-pods/a" of Role "pod-reader" to User "alice"')
    assert decide(authz, ALICE, "GET", "/api/v1/namespaces/b/pods") == (Decision.NO_OPINION, "")
    assert decide(authz, ALICE, "GET", "/api/v1/pods")[0] is Decision.NO_OPINION  # all namespaces
    assert decide(authz, ALICE, "DELETE", "/api/v1/namespaces/a/pods/p")[0] is Decision.NO_OPINION


def test_groups_service_accounts_and_cluster_roles_in_a_namespace(snapshots: FakeSnapshots) -> None:
    authz = RBACAuthorizer(snapshots)
    assert decide(authz, BOB, "GET", "/api/v1/namespaces/b/secrets/s")[1] == \
        'RBAC: allowed by RoleBinding "devs-secrets/b" of ClusterRole "secret-reader" to Group "developers"'
    assert decide(authz, BOB, "GET", "/api/v1/namespaces/a/secrets/s")[0] is Decision.NO_OPINION
    assert decide(authz, SA, "GET", "/api/v1/namespaces/a/pods/p")[1] == \
        'RBAC: allowed by RoleBinding "read-pods/a" of Role "pod-reader" to ServiceAccount "robot/a"'
    assert decide(authz, BOB, "GET", "/healthz")[1] == \
        'RBAC: allowed by ClusterRoleBinding "health" of ClusterRole "health" to Group "system:authenticated"'


def test_a_missing_role_is_named_in_the_reason(snapshots: FakeSnapshots) -> None:
    snapshots.put(ROLE_BINDINGS, bind("dangling", "Role", "gone", [{"kind": "User", "apiGroup": G, "name": "alice"}], "c"))
    authz = RBACAuthorizer(snapshots)
    assert decide(authz, ALICE, "GET", "/api/v1/namespaces/c/pods") == (
        Decision.NO_OPINION, 'RBAC: role.rbac.authorization.k8s.io "gone" not found')


def test_the_index_is_rebuilt_only_when_a_revision_moves(snapshots: FakeSnapshots) -> None:
    authz = RBACAuthorizer(snapshots)
    assert decide(authz, ALICE, "GET", "/api/v1/namespaces/b/pods")[0] is Decision.NO_OPINION
    reads = snapshots.reads
    for _ in range(100):
        decide(authz, ALICE, "GET", "/api/v1/namespaces/b/pods")
    assert snapshots.reads == reads
    snapshots.put(ROLE_BINDINGS, bind("late", "Role", "pod-reader-b", [{"kind": "User", "apiGroup": G, "name": "alice"}], "b"))
    snapshots.put(ROLES, role("pod-reader-b", POD_READER, "b"))
    assert decide(authz, ALICE, "GET", "/api/v1/namespaces/b/pods")[0] is Decision.ALLOW
    assert snapshots.reads == reads + 4


def test_rules_for(snapshots: FakeSnapshots) -> None:
    authz = RBACAuthorizer(snapshots)
    resource, non_resource, incomplete = authz.rules_for(ALICE, "a")
    assert resource == [{"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["pods"]}]
    assert non_resource == [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]
    assert incomplete is False
    assert authz.rules_for(ALICE, "b")[0] == []
    snapshots.put(CLUSTER_ROLE_BINDINGS, bind("x", "ClusterRole", "missing", [{"kind": "User", "apiGroup": G, "name": "alice"}]))
    assert authz.rules_for(ALICE, "b")[2] is True


@pytest.mark.parametrize("modes,expected", [
    ("Node,RBAC", ["Node", "RBAC"]), ("RBAC", ["RBAC"]), (" AlwaysAllow ", ["AlwaysAllow"]),
    ("Node,RBAC,AlwaysDeny", ["Node", "RBAC", "AlwaysDeny"]),
])
def test_modes(modes: str, expected: list[str]) -> None:
    assert parse_modes(modes) == expected


@pytest.mark.parametrize("modes", ["", "Webhook", "RBAC,RBAC", "rbac"])
def test_bad_modes(modes: str) -> None:
    with pytest.raises(ValueError):
        parse_modes(modes)
