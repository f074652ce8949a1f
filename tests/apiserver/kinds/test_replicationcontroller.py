"""ReplicationController: defaults from the template, map-selector validation, the row; /scale over the API."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from apiserver.kinds import validate_object
from apiserver.kinds.core.replicationcontroller import STRATEGY

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def rc(**spec: Any) -> dict[str, Any]:
    """The guestbook's redis-master controller, from the Kubernetes docs."""
    base: dict[str, Any] = {
        "template": {"metadata": {"labels": {"app": "redis", "role": "master"}},
                     "spec": {"containers": [{"name": "master", "image": "redis",
                                              "ports": [{"containerPort": 6379}]}]}}}
    return {"apiVersion": "v1", "kind": "ReplicationController",
            "metadata": {"name": "redis-master", "namespace": "ns"}, "spec": {**base, **spec}}


def test_selector_labels_and_replicas_default_from_the_template() -> None:
    obj = rc()
    STRATEGY.defaults(obj)
    assert obj["spec"]["selector"] == {"app": "redis", "role": "master"}
    assert obj["metadata"]["labels"] == {"app": "redis", "role": "master"}
    assert obj["spec"]["replicas"] == 1
    assert obj["spec"]["template"]["spec"]["restartPolicy"] == "Always"  # the pod template's defaults
    assert validate_object(STRATEGY, obj) == []
    explicit = rc(selector={"app": "redis"}, replicas=3)
    explicit["metadata"]["labels"] = {"tier": "db"}
    STRATEGY.defaults(explicit)
    assert explicit["spec"]["selector"] == {"app": "redis"} and explicit["metadata"]["labels"] == {"tier": "db"}


@pytest.mark.parametrize(("change", "field", "reason"), [
    ({"selector": {"app": "other"}}, "spec.template.metadata.labels", "FieldValueInvalid"),
    ({"replicas": -1}, "spec.replicas", "FieldValueInvalid"),
    ({"template": None, "selector": {"app": "x"}}, "spec.template", "FieldValueRequired"),
    ({"selector": {"bad key!": "x"}}, "spec.selector", "FieldValueInvalid"),
])
def test_invalid_controllers(change: dict[str, Any], field: str, reason: str) -> None:
    obj = rc()
    obj["spec"].update(change)
    if obj["spec"]["template"] is None:
        del obj["spec"]["template"]
    STRATEGY.defaults(obj)
    assert (field, reason) in [(c.field, c.reason) for c in validate_object(STRATEGY, obj)]


def test_selector_may_change_unlike_a_replica_sets() -> None:
    old = rc()
    STRATEGY.defaults(old)
    new = copy.deepcopy(old)
    new["spec"]["selector"] = {"app": "redis"}
    assert validate_object(STRATEGY, new, old=old) == []


def test_row_and_scale_of() -> None:
    obj = rc(replicas=3)
    STRATEGY.defaults(obj)
    obj["metadata"]["creationTimestamp"] = "2024-05-01T11:58:00Z"
    obj["status"] = {"replicas": 2, "readyReplicas": 1}
    assert [c.name for c in STRATEGY.columns] == ["Name", "Desired", "Current", "Ready", "Age", "Containers",
                                                   "Images", "Selector"]
    assert STRATEGY.row(obj, NOW) == ["redis-master", 3, 2, 1, "2m", "master", "redis", "app=redis,role=master"]
    scale = STRATEGY.scale_of(obj)
    assert scale["spec"] == {"replicas": 3} and scale["status"] == {"replicas": 2, "selector": "app=redis,role=master"}


def test_replication_controllers_over_the_api(http: httpx.Client, namespace: str) -> None:
    url = f"/api/v1/namespaces/{namespace}/replicationcontrollers"
    r = http.post(url, json={**rc(), "metadata": {"name": "redis-master"}})
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["spec"]["selector"] == {"app": "redis", "role": "master"}
    assert created["status"] == {"replicas": 0}
    r = http.patch(f"{url}/redis-master/scale", json={"spec": {"replicas": 4}},
                   headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    assert r.json()["spec"]["replicas"] == 4 and r.json()["status"]["selector"] == "app=redis,role=master"
    assert http.get(f"{url}/redis-master").json()["spec"]["replicas"] == 4
    table = http.get(url, headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}).json()
    assert table["rows"][0]["cells"][:4] == ["redis-master", 4, 0, 0]
    resources = {x["name"]: x for x in http.get("/api/v1").json()["resources"]}
    assert resources["replicationcontrollers"]["shortNames"] == ["rc"]
    assert "replicationcontrollers/scale" in resources
