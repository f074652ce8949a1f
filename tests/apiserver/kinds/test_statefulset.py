"""StatefulSet: defaults, validation with Kubernetes' messages, the row; create, update, /status and /scale
over the API."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from apiserver.kinds import validate_object
from apiserver.kinds.apps.statefulset import STRATEGY, UPDATE_FORBIDDEN

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def web(**spec: Any) -> dict[str, Any]:
    """The docs' StatefulSet basics example (nginx + volumeClaimTemplates www)."""
    base: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "nginx"}}, "serviceName": "nginx", "replicas": 3,
        "template": {"metadata": {"labels": {"app": "nginx"}},
                     "spec": {"containers": [{
                         "name": "nginx", "image": "registry.k8s.io/nginx-slim:0.24",
                         "volumeMounts": [{"name": "www", "mountPath": "/usr/share/nginx/html"}]}]}},
        "volumeClaimTemplates": [{"metadata": {"name": "www"}, "spec": {
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}],
    }
    base.update(spec)
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web", "namespace": "ns"},
            "spec": base}


def defaulted(**spec: Any) -> dict[str, Any]:
    obj = web(**spec)
    STRATEGY.defaults(obj)
    return obj


def test_defaults() -> None:
    s = defaulted(replicas=None)["spec"]
    assert s["replicas"] == 1 and s["podManagementPolicy"] == "OrderedReady" and s["revisionHistoryLimit"] == 10
    assert s["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert s["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    assert s["template"]["spec"]["restartPolicy"] == "Always"
    claim = s["volumeClaimTemplates"][0]
    assert (claim["apiVersion"], claim["kind"], claim["spec"]["volumeMode"], claim["status"]) == (
        "v1", "PersistentVolumeClaim", "Filesystem", {"phase": "Pending"})
    on_delete = defaulted(updateStrategy={"type": "OnDelete"})["spec"]["updateStrategy"]
    assert on_delete == {"type": "OnDelete"}
    assert validate_object(STRATEGY, defaulted()) == []


@pytest.mark.parametrize(("change", "field", "reason", "message"), [
    ({"selector": {"matchLabels": {"app": "other"}}}, "spec.template.metadata.labels", "FieldValueInvalid",
     "`selector` does not match template `labels`"),
    ({"selector": {}}, "spec.selector", "FieldValueInvalid", "empty selector is invalid for statefulset"),
    ({"podManagementPolicy": "Random"}, "spec.podManagementPolicy", "FieldValueInvalid",
     "must be 'OrderedReady' or 'Parallel'"),
    ({"updateStrategy": {"type": "Sometimes"}}, "spec.updateStrategy", "FieldValueInvalid",
     "must be 'RollingUpdate' or 'OnDelete'"),
    ({"updateStrategy": {"type": "OnDelete", "rollingUpdate": {"partition": 1}}},
     "spec.updateStrategy.rollingUpdate", "FieldValueInvalid", "only allowed for updateStrategy 'RollingUpdate'"),
    ({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": -1}}},
     "spec.updateStrategy.rollingUpdate.partition", "FieldValueInvalid", "must be greater than or equal to 0"),
    ({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0}}},
     "spec.updateStrategy.rollingUpdate.maxUnavailable", "FieldValueInvalid", "cannot be 0"),
    ({"persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Keep", "whenScaled": "Retain"}},
     "spec.persistentVolumeClaimRetentionPolicy.whenDeleted", "FieldValueNotSupported", None),
    ({"replicas": -1}, "spec.replicas", "FieldValueInvalid", "must be greater than or equal to 0"),
    ({"ordinals": {"start": -2}}, "spec.ordinals.start", "FieldValueInvalid", "must be greater than or equal to 0"),
])
def test_invalid_sets(change: dict[str, Any], field: str, reason: str, message: str | None) -> None:
    causes = validate_object(STRATEGY, defaulted(**change))
    found = [(c.field, c.reason) for c in causes]
    assert (field, reason) in found, causes
    if message is not None:
        assert any(message in c.message for c in causes if c.field == field)


def test_restart_policy_and_deadline_of_the_template() -> None:
    obj = defaulted()
    obj["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    obj["spec"]["template"]["spec"]["activeDeadlineSeconds"] = 5
    found = {(c.field, c.reason) for c in validate_object(STRATEGY, obj)}
    assert ("spec.template.spec.restartPolicy", "FieldValueNotSupported") in found
    assert ("spec.template.spec.activeDeadlineSeconds", "FieldValueForbidden") in found


@pytest.mark.parametrize(("field", "value", "allowed"), [
    ("replicas", 5, True), ("template", None, True), ("minReadySeconds", 3, True), ("ordinals", {"start": 1}, True),
    ("updateStrategy", {"type": "OnDelete"}, True),
    ("persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Delete", "whenScaled": "Delete"}, True),
    ("serviceName", "other", False), ("podManagementPolicy", "Parallel", False), ("volumeClaimTemplates", [], False),
    ("selector", {"matchLabels": {"app": "nginx", "x": "y"}}, False),
])
def test_which_fields_an_update_may_change(field: str, value: Any, allowed: bool) -> None:
    old = defaulted()
    new = copy.deepcopy(old)
    if field == "template":
        new["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    else:
        new["spec"][field] = value
    forbidden = [c for c in STRATEGY.validate_update(new, old) if c.field == "spec"]
    assert (not forbidden) == allowed
    if not allowed:
        assert forbidden[0].reason == "FieldValueForbidden" and forbidden[0].message == f"Forbidden: {UPDATE_FORBIDDEN}"


def test_status_rules() -> None:
    old = defaulted()
    old["status"] = {"replicas": 2, "collisionCount": 1}
    new = copy.deepcopy(old)
    new["status"] = {"replicas": 1, "readyReplicas": 2, "availableReplicas": 2, "collisionCount": 0}
    found = {(c.field, c.message) for c in STRATEGY.validate_status_update(new, old)}
    assert ("status.readyReplicas", "Invalid value: 2: cannot be greater than status.replicas") in found
    assert ("status.availableReplicas", "Invalid value: 2: cannot be greater than status.replicas") in found
    assert ("status.collisionCount", "Invalid value: 0: cannot be decremented") in found


def test_row_and_columns() -> None:
    obj = defaulted()
    obj["metadata"]["creationTimestamp"] = "2024-05-01T11:58:00Z"
    obj["status"] = {"replicas": 3, "readyReplicas": 2}
    assert [c.name for c in STRATEGY.columns] == ["Name", "Ready", "Age", "Containers", "Images"]
    assert [c.priority for c in STRATEGY.columns] == [0, 0, 0, 1, 1]
    assert STRATEGY.row(obj, NOW) == ["web", "2/3", "2m", "nginx", "registry.k8s.io/nginx-slim:0.24"]


def test_statefulsets_over_the_api(http: httpx.Client, namespace: str) -> None:
    url = f"/apis/apps/v1/namespaces/{namespace}/statefulsets"
    body = web()
    body["metadata"]["namespace"] = namespace
    r = http.post(url, json=body)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["status"] == {"replicas": 0, "availableReplicas": 0}
    assert created["metadata"]["generation"] == 1
    assert created["spec"]["volumeClaimTemplates"][0]["spec"]["volumeMode"] == "Filesystem"
    changed = copy.deepcopy(created)
    changed["spec"]["serviceName"] = "other"
    r = http.put(f"{url}/web", json=changed)
    assert r.status_code == 422, r.text
    assert r.json()["details"]["causes"][0] == {
        "reason": "FieldValueForbidden", "message": f"Forbidden: {UPDATE_FORBIDDEN}", "field": "spec"}
    r = http.patch(f"{url}/web/scale", json={"spec": {"replicas": 5}},
                   headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    assert r.json()["spec"]["replicas"] == 5 and r.json()["status"]["selector"] == "app=nginx"
    current = http.get(f"{url}/web").json()
    assert current["metadata"]["generation"] == 2
    current["status"] = {"replicas": 1, "readyReplicas": 3, "availableReplicas": 0}
    r = http.put(f"{url}/web/status", json=current)
    assert r.status_code == 422 and "cannot be greater than status.replicas" in r.text
    # maxUnavailable needs the MaxUnavailableStatefulSet gate (alpha, off): dropped on create.
    staged = web(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 1, "maxUnavailable": 2}})
    staged["metadata"] = {"name": "staged"}
    r = http.post(url, json=staged)
    assert r.status_code == 201, r.text
    assert r.json()["spec"]["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}
    bad = web(podManagementPolicy="Sometimes")
    bad["metadata"] = {"name": "bad.name"}
    r = http.post(url, json=bad)
    assert r.status_code == 422
    fields = {c["field"] for c in r.json()["details"]["causes"]}
    assert {"metadata.name", "spec.podManagementPolicy"} <= fields
    table = http.get(url, headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}).json()
    assert [row["cells"][:2] for row in table["rows"]] == [["staged", "0/3"], ["web", "0/5"]]
    resources = {x["name"]: x for x in http.get("/apis/apps/v1").json()["resources"]}
    assert resources["statefulsets"]["shortNames"] == ["sts"] and "statefulsets/scale" in resources
