"""ResourceQuota: Kubernetes' validation of hard, scopes and scopeSelector; the REQUEST/LIMIT columns."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from apiserver.kinds import validate_object
from apiserver.kinds.core.resourcequota import STRATEGY

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def quota(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q", "namespace": "ns"}, "spec": spec}


def causes(obj: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c.field, c.message) for c in validate_object(STRATEGY, obj)]


@pytest.mark.parametrize("spec", [
    {"hard": {"pods": "10", "requests.cpu": "1", "limits.memory": "2Gi", "count/deployments.apps": "3",
              "requests.example.com/gpu": "2", "hugepages-2Mi": "1Gi", "services.nodeports": "0",
              "gold.storageclass.storage.k8s.io/requests.storage": "10Gi"}},
    {"hard": {"pods": "1", "cpu": "1"}, "scopes": ["NotBestEffort", "Terminating"]},
    {"hard": {"pods": "1"}, "scopeSelector": {"matchExpressions": [
        {"scopeName": "PriorityClass", "operator": "In", "values": ["high"]},
        {"scopeName": "BestEffort", "operator": "Exists"}]}},
])
def test_valid(spec: dict[str, Any]) -> None:
    assert causes(quota(**spec)) == []


@pytest.mark.parametrize("spec, expected", [
    ({"hard": {"pods": "1.5"}}, [("spec.hard[pods]", 'Invalid value: "1.5": must be an integer')]),
    ({"hard": {"cpu": "-1"}}, [("spec.hard[cpu]", 'Invalid value: "-1": must be greater than or equal to 0')]),
    ({"hard": {"gpus": "1"}}, [("spec.hard[gpus]", 'Invalid value: "gpus": must be a standard resource for quota')]),
    ({"hard": {"memory": "lots"}}, [("spec.hard[memory]", 'Invalid value: "lots": quantities must match the '
                                     "regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")]),
    ({"hard": {"services": "1"}, "scopes": ["BestEffort"]},
     [("spec.scopes", 'Invalid value: ["BestEffort"]: unsupported scope applied to resource')]),
    ({"hard": {"pods": "1"}, "scopes": ["Sometimes"]}, [("spec.scopes", 'Invalid value: ["Sometimes"]: unsupported scope')]),
    ({"hard": {"pods": "1"}, "scopes": ["BestEffort", "NotBestEffort"]},
     [("spec.scopes", 'Invalid value: ["BestEffort","NotBestEffort"]: conflicting scopes')]),
    ({"hard": {"pods": "1"}, "scopeSelector": {"matchExpressions": [{"scopeName": "PriorityClass", "operator": "In"}]}},
     [("spec.scopeSelector.matchExpressions[0].values", "Required value: must be at least one value when "
       "`operator` is 'In' or 'NotIn' for scope selector")]),
])
def test_invalid(spec: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert causes(quota(**spec)) == expected


def test_columns_show_used_over_hard() -> None:
    obj = quota(hard={"pods": "2"})
    obj["metadata"]["creationTimestamp"] = "2024-05-01T11:00:00Z"
    obj["status"] = {"hard": {"pods": "2", "requests.cpu": "1", "limits.memory": "1Gi", "limits.cpu": "2"},
                     "used": {"pods": "1", "limits.memory": "536870912"}}
    assert [c.name for c in STRATEGY.columns] == ["Name", "Age", "Request", "Limit"]
    assert STRATEGY.row(obj, NOW) == ["q", "60m", "pods: 1/2, requests.cpu: 0/1",
                                      "limits.cpu: 0/2, limits.memory: 536870912/1Gi"]
    assert STRATEGY.short_names == ("quota",) and STRATEGY.subresources == ("status",)
