"""RBAC escalation prevention (apiserver/auth/escalation.py): a writer grants only what it holds, unless
RBAC gives it ``escalate`` / ``bind``; system:masters (and the plain-HTTP test port) always may."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from apiserver.auth import escalation
from apiserver.auth.context import current_user
from apiserver.auth.rbac import CLUSTER_ROLE_BINDINGS, CLUSTER_ROLES, ROLE_BINDINGS, ROLES
from machinery import errors
from machinery.userinfo import UserInfo

G = "rbac.authorization.k8s.io"
PODS = {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}
SECRETS = {"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"]}
BOB = UserInfo("bob", groups=("system:authenticated",))


def crb(name: str, role: str, user: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "roleRef": {"apiGroup": G, "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "User", "apiGroup": G, "name": user}]}


STORE: dict[str, list[dict[str, Any]]] = {
    CLUSTER_ROLES: [{"metadata": {"name": "pods"}, "rules": [PODS]},
                    {"metadata": {"name": "secrets"}, "rules": [SECRETS]},
                    {"metadata": {"name": "binder"}, "rules": [
                        {"verbs": ["bind"], "apiGroups": [G], "resources": ["clusterroles"], "resourceNames": ["secrets"]}]},
                    {"metadata": {"name": "escalator"}, "rules": [
                        {"verbs": ["escalate"], "apiGroups": [G], "resources": ["roles"]}]}],
    CLUSTER_ROLE_BINDINGS: [crb("bob-pods", "pods", "bob"), crb("carol-binds", "binder", "carol"),
                            crb("dave-escalates", "escalator", "dave")],
    ROLES: [], ROLE_BINDINGS: [],
}


def stored(group_resource: str) -> list[dict[str, Any]]:
    return STORE.get(group_resource, [])


@pytest.fixture
def as_user(request: pytest.FixtureRequest) -> Iterator[None]:
    token = current_user.set(request.param)
    yield
    current_user.reset(token)


def role(rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"metadata": {"name": "r", "namespace": "a"}, "rules": rules}


def binding(role_kind: str, role_name: str) -> dict[str, Any]:
    return {"metadata": {"name": "b", "namespace": "a"}, "roleRef": {"apiGroup": G, "kind": role_kind, "name": role_name},
            "subjects": [{"kind": "User", "apiGroup": G, "name": "eve"}]}


@pytest.mark.parametrize("as_user", [BOB], indirect=True)
def test_a_role_with_only_held_rules_is_fine(as_user: None) -> None:
    escalation.check_role(role([{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]), stored, cluster=False)


@pytest.mark.parametrize("as_user", [BOB], indirect=True)
def test_granting_more_is_forbidden_with_kubernetes_message(as_user: None) -> None:
    with pytest.raises(errors.ForbiddenError) as e:
        escalation.check_role(role([PODS, {**SECRETS, "verbs": ["get", "list"]}]), stored, cluster=False)
    assert e.value.message == (
        'roles.rbac.authorization.k8s.io "r" is forbidden: user "bob" (groups=["system:authenticated"]) is '
        'attempting to grant RBAC permissions not currently held:\n'
        '{APIGroups:[""], Resources:["secrets"], Verbs:["get" "list"]}')


@pytest.mark.parametrize("as_user", [BOB], indirect=True)
def test_bindings_need_the_bound_rules_or_bind(as_user: None) -> None:
    escalation.check_binding(binding("ClusterRole", "pods"), stored, cluster=False)
    with pytest.raises(errors.ForbiddenError, match='rolebindings.rbac.authorization.k8s.io "b" is forbidden'):
        escalation.check_binding(binding("ClusterRole", "secrets"), stored, cluster=False)
    with pytest.raises(errors.BadRequestError, match='role.rbac.authorization.k8s.io "missing" not found'):
        escalation.check_binding(binding("Role", "missing"), stored, cluster=False)


@pytest.mark.parametrize("as_user", [UserInfo("carol")], indirect=True)
def test_bind_allows_binding_a_role_not_held(as_user: None) -> None:
    escalation.check_binding(binding("ClusterRole", "secrets"), stored, cluster=False)
    with pytest.raises(errors.ForbiddenError):
        escalation.check_binding(binding("ClusterRole", "pods"), stored, cluster=False)


@pytest.mark.parametrize("as_user", [UserInfo("dave")], indirect=True)
def test_escalate_allows_writing_any_role(as_user: None) -> None:
    escalation.check_role(role([SECRETS]), stored, cluster=False)
    with pytest.raises(errors.ForbiddenError):
        escalation.check_role({**role([SECRETS]), "metadata": {"name": "c"}}, stored, cluster=True)


def test_the_superuser_and_masters_may_do_anything() -> None:
    escalation.check_role(role([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]), stored, cluster=False)
    token = current_user.set(UserInfo("root", groups=("system:masters",)))
    try:
        escalation.check_binding(binding("ClusterRole", "anything"), stored, cluster=True)
    finally:
        current_user.reset(token)


@pytest.mark.parametrize("as_user", [BOB], indirect=True)
def test_an_aggregation_rule_takes_cluster_admin(as_user: None) -> None:
    aggregated = {"metadata": {"name": "agg"}, "rules": [],
                  "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"x": "y"}}]}}
    with pytest.raises(errors.ForbiddenError, match="must have cluster-admin privileges to use the aggregationRule"):
        escalation.check_role(aggregated, stored, cluster=True)


@pytest.mark.parametrize("as_user", [BOB], indirect=True)
def test_the_garbage_collectors_writes_pass(as_user: None) -> None:
    old = role([SECRETS])
    new = {**old, "metadata": {**old["metadata"], "finalizers": ["x"], "ownerReferences": [{"uid": "u"}]}}
    escalation.check_role(new, stored, cluster=False, old=old)
    with pytest.raises(errors.ForbiddenError):
        escalation.check_role({**new, "rules": [SECRETS, PODS]}, stored, cluster=False, old=old)
