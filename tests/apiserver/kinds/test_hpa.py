"""HorizontalPodAutoscaler: v2 defaults, validation, v1 <-> v2 conversion, the table row; over the real API too."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from apiserver.kinds import validate_object
from apiserver.kinds.autoscaling.horizontalpodautoscaler import (
    BEHAVIOR_ANNOTATION, METRICS_ANNOTATION, STRATEGY, format_targets, from_v1, to_v1,
)

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def hpa(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                            "maxReplicas": 5}
    base.update(spec)
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "h", "namespace": "ns"}, "spec": base}


def causes(obj: dict[str, Any]) -> list[tuple[str, str, str]]:
    STRATEGY.defaults(obj)
    return [(c.field, c.reason, c.message) for c in validate_object(STRATEGY, obj)]


def test_defaults_min_replicas_and_cpu_80() -> None:
    obj = hpa()
    STRATEGY.defaults(obj)
    assert obj["spec"]["minReplicas"] == 1
    assert obj["spec"]["metrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]
    assert "behavior" not in obj["spec"]  # only a given behavior is filled in


def test_a_given_behavior_gets_kubernetes_rules() -> None:
    obj = hpa(behavior={"scaleDown": {"stabilizationWindowSeconds": 60}})
    STRATEGY.defaults(obj)
    assert obj["spec"]["behavior"] == {
        "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                    "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                                 {"type": "Percent", "value": 100, "periodSeconds": 15}]},
        "scaleDown": {"stabilizationWindowSeconds": 60, "selectPolicy": "Max",
                      "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}}


@pytest.mark.parametrize(("obj", "expected"), [
    (hpa(minReplicas=0), ("spec.minReplicas", "FieldValueInvalid", "Invalid value: 0: must be greater than or equal to 1")),
    (hpa(maxReplicas=0), ("spec.maxReplicas", "FieldValueInvalid", "Invalid value: 0: must be greater than 0")),
    (hpa(minReplicas=4, maxReplicas=2),
     ("spec.maxReplicas", "FieldValueInvalid", "Invalid value: 2: must be greater than or equal to `minReplicas`")),
    (hpa(scaleTargetRef={"name": "x"}), ("spec.scaleTargetRef.kind", "FieldValueRequired", "Required value")),
    (hpa(metrics=[{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                                 "averageUtilization": 0}}}]),
     ("spec.metrics[0].resource.target.averageUtilization", "FieldValueInvalid", "Invalid value: 0: must be greater than 0")),
    (hpa(metrics=[{"type": "Bogus"}]), ("spec.metrics[0].type", "FieldValueNotSupported",
                                        'Unsupported value: "Bogus": supported values: "ContainerResource", "External", "Object", "Pods", "Resource"')),
    (hpa(behavior={"scaleUp": {"stabilizationWindowSeconds": 3601}}),
     ("spec.behavior.scaleUp.stabilizationWindowSeconds", "FieldValueInvalid",
      "Invalid value: 3601: must be less than or equal to 3600")),
    (hpa(behavior={"scaleDown": {"policies": [{"type": "Pods", "value": 0, "periodSeconds": 15}]}}),
     ("spec.behavior.scaleDown.policies[0].value", "FieldValueInvalid", "Invalid value: 0: must be greater than zero")),
    (hpa(behavior={"scaleDown": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 1801}]}}),
     ("spec.behavior.scaleDown.policies[0].periodSeconds", "FieldValueInvalid",
      "Invalid value: 1801: must be less than or equal to 1800")),
])
def test_invalid(obj: dict[str, Any], expected: tuple[str, str, str]) -> None:
    assert expected in causes(obj)


def test_valid_hpa_has_no_causes() -> None:
    assert causes(hpa(behavior={"scaleDown": {"selectPolicy": "Disabled"}})) == []


def test_v1_round_trip_keeps_v2_only_fields_in_annotations() -> None:
    memory = {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}}
    obj = hpa(minReplicas=2, metrics=[{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}, memory],
        behavior={"scaleDown": {"stabilizationWindowSeconds": 10}})
    obj["status"] = {"currentReplicas": 2, "desiredReplicas": 3, "currentMetrics": [
        {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 70, "averageValue": "70m"}}}],
        "conditions": [{"type": "AbleToScale", "status": "True", "reason": "SucceededRescale"}]}
    v1 = to_v1(obj)
    assert v1["apiVersion"] == "autoscaling/v1"
    assert v1["spec"] == {"scaleTargetRef": obj["spec"]["scaleTargetRef"], "minReplicas": 2, "maxReplicas": 5,
                          "targetCPUUtilizationPercentage": 50}
    assert v1["status"] == {"currentReplicas": 2, "desiredReplicas": 3, "currentCPUUtilizationPercentage": 70}
    annotations = v1["metadata"]["annotations"]
    assert METRICS_ANNOTATION in annotations and BEHAVIOR_ANNOTATION in annotations
    back = from_v1(v1)
    assert back["spec"] == obj["spec"]
    assert back["status"]["conditions"] == obj["status"]["conditions"]
    assert "annotations" not in back["metadata"]


def test_targets_column() -> None:
    obj = hpa(metrics=[{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                                  "averageUtilization": 50}}}])
    assert format_targets(obj) == "cpu: <unknown>/50%"
    obj["status"] = {"currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {
        "averageUtilization": 45, "averageValue": "45m"}}}], "currentReplicas": 3}
    assert format_targets(obj) == "cpu: 45%/50%"
    obj["metadata"]["creationTimestamp"] = "2024-05-01T11:00:00Z"
    STRATEGY.defaults(obj)
    assert STRATEGY.row(obj, NOW) == ["h", "Deployment/web", "cpu: 45%/50%", "1", 5, 3, "60m"]


def test_hpa_over_the_api_v2_and_v1(http: httpx.Client, namespace: str) -> None:
    v2 = f"/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers"
    v1 = f"/apis/autoscaling/v1/namespaces/{namespace}/horizontalpodautoscalers"
    body = {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                     "maxReplicas": 4, "targetCPUUtilizationPercentage": 60}}
    r = http.post(v1, json=body)
    assert r.status_code == 201, r.text
    assert r.json()["spec"]["targetCPUUtilizationPercentage"] == 60
    assert r.json()["spec"]["minReplicas"] == 1
    got = http.get(f"{v2}/web").json()
    assert got["apiVersion"] == "autoscaling/v2"
    assert got["spec"]["metrics"][0]["resource"]["target"] == {"type": "Utilization", "averageUtilization": 60}
    # A v2-only field written at v2 survives a v1 read-modify-write.
    got["spec"]["behavior"] = {"scaleDown": {"stabilizationWindowSeconds": 30}}
    r = http.put(f"{v2}/web", json=got)
    assert r.status_code == 200, r.text
    old = http.get(f"{v1}/web").json()
    assert BEHAVIOR_ANNOTATION in old["metadata"]["annotations"]
    changed = copy.deepcopy(old)
    changed["spec"]["maxReplicas"] = 6
    assert http.put(f"{v1}/web", json=changed).status_code == 200
    r = http.patch(f"{v1}/web", json={"spec": {"targetCPUUtilizationPercentage": 70}},
                   headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    got = http.get(f"{v2}/web").json()
    assert got["spec"]["maxReplicas"] == 6
    assert got["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 30
    assert got["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 70
    r = http.post(v2, json={**hpa(minReplicas=0), "metadata": {"name": "bad"}})
    assert r.status_code == 422, r.text
    assert r.json()["details"]["causes"][0]["field"] == "spec.minReplicas"
    groups = {g["name"]: g for g in http.get("/apis").json()["groups"]}
    assert [v["version"] for v in groups["autoscaling"]["versions"]][:2] == ["v2", "v1"]
    table = http.get(v2, headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}).json()
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name", "Reference", "Targets", "MinPods", "MaxPods", "Replicas", "Age"]
    assert table["rows"][0]["cells"][:6] == ["web", "Deployment/web", "cpu: <unknown>/70%", "1", 6, 0]
