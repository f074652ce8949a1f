"""PodDisruptionBudget (policy/v1): validation messages, status rules and the table; over the real API too."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from apiserver.kinds import validate_object
from apiserver.kinds.policy.poddisruptionbudget import STRATEGY

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


def budget(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "web", "namespace": "ns", "creationTimestamp": "2026-01-01T11:00:00Z"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec}}


def messages(obj: dict[str, Any]) -> set[str]:
    return {str(c) for c in validate_object(STRATEGY, obj)}


@pytest.mark.parametrize("spec", [
    {"minAvailable": 2}, {"minAvailable": "50%"}, {"maxUnavailable": 0}, {"maxUnavailable": "100%"},
    {"minAvailable": 1, "unhealthyPodEvictionPolicy": "AlwaysAllow"},
    {"maxUnavailable": 1, "unhealthyPodEvictionPolicy": "IfHealthyBudget"},
    {"selector": {}},  # policy/v1: every pod of the namespace
])
def test_valid_budgets(spec: dict[str, Any]) -> None:
    assert messages(budget(**spec)) == set()


@pytest.mark.parametrize("spec,expected", [
    ({"minAvailable": -1}, "spec.minAvailable: Invalid value: -1: must be greater than or equal to 0"),
    ({"maxUnavailable": "120%"}, 'spec.maxUnavailable: Invalid value: "120%": must not be greater than 100%'),
    ({"minAvailable": "half"},
     "spec.minAvailable: Invalid value: \"half\": a valid percent string must be a numeric string followed by an "
     "ending '%' (e.g. '1%' or '93%', regex used for validation is '[0-9]+%')"),
    ({"unhealthyPodEvictionPolicy": "Never"},
     'spec.unhealthyPodEvictionPolicy: Unsupported value: "Never": supported values: "AlwaysAllow", "IfHealthyBudget"'),
    ({"selector": {"matchExpressions": [{"key": "app", "operator": "In"}]}},
     "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"),
])
def test_invalid_budgets_say_what_kubernetes_says(spec: dict[str, Any], expected: str) -> None:
    assert expected in messages(budget(**spec))


def test_both_min_and_max_is_invalid() -> None:
    got = messages(budget(minAvailable=1, maxUnavailable=1))
    assert any(m.startswith("spec: Invalid value: ") and m.endswith("minAvailable and maxUnavailable cannot be both set")
               for m in got), got


@pytest.mark.parametrize("spec,cells", [
    ({"minAvailable": 2}, ["web", "2", "N/A", 1, "60m"]),
    ({"maxUnavailable": "25%"}, ["web", "N/A", "25%", 1, "60m"]),
])
def test_table_row(spec: dict[str, Any], cells: list[Any]) -> None:
    obj = budget(**spec)
    obj["status"] = {"disruptionsAllowed": 1}
    assert STRATEGY.row(obj, NOW) == cells
    assert [c.name for c in STRATEGY.columns] == ["Name", "Min Available", "Max Unavailable", "Allowed Disruptions",
                                                  "Age"]


def test_status_counters_may_not_go_negative() -> None:
    old = budget(minAvailable=1)
    new = budget(minAvailable=1)
    new["status"] = {"disruptionsAllowed": -1, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0}
    assert [str(c) for c in STRATEGY.validate_status_update(new, old)] == [
        "status.disruptionsAllowed: Invalid value: -1: must be greater than or equal to 0"]


# ------------------------------------------------------------------------------ over the API
def test_create_update_and_status_over_the_api(http: httpx.Client, namespace: str) -> None:
    base = f"/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets"
    body = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "web"},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}},
            "status": {"disruptionsAllowed": 9}}
    r = http.post(base, json=body)
    assert r.status_code == 201, r.text
    created = r.json()
    # The client's status is dropped: Kubernetes' zero status.
    assert created["status"] == {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0}
    assert created["metadata"]["generation"] == 1
    created["spec"]["minAvailable"] = "50%"
    updated = http.put(f"{base}/web", json=created).json()
    assert updated["metadata"]["generation"] == 2  # the spec may change; the generation says so
    updated["status"]["disruptionsAllowed"] = -1
    r = http.put(f"{base}/web/status", json=updated)
    assert r.status_code == 422 and r.json()["details"]["causes"][0]["field"] == "status.disruptionsAllowed"
    bad = {**body, "metadata": {"name": "bad"}, "spec": {**body["spec"], "maxUnavailable": 1}}
    r = http.post(base, json=bad)
    assert r.status_code == 422 and "minAvailable and maxUnavailable cannot be both set" in r.json()["message"]
    resources = http.get("/apis/policy/v1").json()["resources"]
    entry = next(x for x in resources if x["name"] == "poddisruptionbudgets")
    assert entry["shortNames"] == ["pdb"] and entry["kind"] == "PodDisruptionBudget"
    table = http.get(base, headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}).json()
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Min Available", "Max Unavailable",
                                                               "Allowed Disruptions", "Age"]
    assert table["rows"][0]["cells"][:4] == ["web", "50%", "N/A", 0]
