"""ClusterRole aggregation: the plan (pure table) and the controller against a real API server, which
fills the bootstrap policy's admin / edit / view and follows a labelled role's changes."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from controllers import clusterroleaggregation
from controllers.clusterroleaggregation import CLUSTER_ROLES
from controllers.clusterroleaggregationplan import aggregated_rules, plan
from tests.controllers.controller_helpers import eventually, running

R1 = {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}
R2 = {"verbs": ["list"], "apiGroups": [""], "resources": ["pods"]}
R3 = {"verbs": ["get"], "apiGroups": ["apps"], "resources": ["deployments"]}


def role(name: str, rules: list[dict[str, Any]], labels: dict[str, str] | None = None,
         selectors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"metadata": {"name": name, "labels": labels or {}}, "rules": rules}
    if selectors is not None:
        out["aggregationRule"] = {"clusterRoleSelectors": selectors}
    return out


SEL_A = {"matchLabels": {"agg": "a"}}
SEL_B = {"matchExpressions": [{"key": "agg", "operator": "In", "values": ["b"]}]}


@pytest.mark.parametrize("target,others,expected", [
    (role("t", [], selectors=[SEL_A]), [role("x", [R1], {"agg": "a"}), role("y", [R2], {"agg": "z"})], [R1]),
    # Sorted by name within a selector, duplicates once, selectors in order.
    (role("t", [], selectors=[SEL_A, SEL_B]),
     [role("b", [R2, R1], {"agg": "a"}), role("a", [R1], {"agg": "a"}), role("c", [R3, R1], {"agg": "b"})],
     [R1, R2, R3]),
    # Its own rules and labels never feed itself; stale rules are dropped.
    (role("t", [R3], {"agg": "a"}, selectors=[SEL_A]), [role("x", [R1], {"agg": "a"})], [R1]),
    (role("t", [R1], selectors=[SEL_A]), [], []),
])
def test_aggregated_rules(target: dict[str, Any], others: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    assert aggregated_rules(target, [target, *others]) == expected


def test_plan_writes_only_changes() -> None:
    target = role("t", [R1], selectors=[SEL_A])
    assert plan(target, [target, role("x", [R1], {"agg": "a"})]) is None
    assert plan(role("plain", [R1]), []) is None
    assert plan(target, [target, role("x", [R2], {"agg": "a"})]) == [R2]


async def test_the_default_roles_are_aggregated_and_follow_changes(apiserver: Any) -> None:
    label = "rbac.authorization.k8s.io/aggregate-to-view"
    extra = f"agg-{uuid.uuid4().hex[:8]}"
    async with running(clusterroleaggregation, apiserver.url) as client:
        async def rules_of(name: str) -> list[dict[str, Any]]:
            return list((await client.get(CLUSTER_ROLES, name)).get("rules") or [])

        async def through() -> bool:
            # view into edit into admin: admin may be aggregated from an edit not yet aggregated
            # (CI saw that), and is again once edit changes, so this is waited for, not read once.
            view, edit, admin = await rules_of("view"), await rules_of("edit"), await rules_of("admin")
            return (bool(view) and view == await rules_of("system:aggregate-to-view")
                    and all(r in edit for r in view) and all(r in admin for r in edit))
        await eventually(through, what="view aggregated, into edit and into admin")
        view, edit = await rules_of("view"), await rules_of("edit")
        assert any("secrets" in r["resources"] and "create" in r["verbs"] for r in edit)
        assert not any("secrets" in r["resources"] for r in view)

        crd_rule = {"verbs": ["get", "list", "watch"], "apiGroups": ["example.com"], "resources": [extra]}
        await client.create(CLUSTER_ROLES, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                                            "metadata": {"name": extra, "labels": {label: "true"}},
                                            "rules": [crd_rule]})

        async def everywhere() -> bool:
            return all([crd_rule in await rules_of(n) for n in ("view", "edit", "admin")])
        await eventually(everywhere, what="a new aggregate-to-view role reaching view, edit and admin")
        await client.delete(CLUSTER_ROLES, extra)

        async def gone() -> bool:
            return not any([crd_rule in await rules_of(n) for n in ("view", "edit", "admin")])
        await eventually(gone, what="the deleted role's rules gone again")
